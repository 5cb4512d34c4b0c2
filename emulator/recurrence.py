"""Graph ``patternedRecurrence``: validation, normalisation and expansion to dates.

Owns: checking a recurrence the way Exchange does (400 on unsupported values, even
for ignored fields), normalising it the way Graph returns it (every field present,
zeros for unset numbers, lower-cased day names, ``recurrenceTimeZone`` filled in,
``0001-01-01`` as the endDate of non-endDate ranges), and listing the local dates of
a series' slots. Expansion is independent of the app: it uses ``dateutil.rrule``.

Invariants: a series has at most one slot per local date (Outlook's rule), so a slot
is keyed by its local date in the series' zone; ``absoluteMonthly``/``absoluteYearly``
days past the month's end fall on its last day (MS-OXOCAL); several ``daysOfWeek`` in a
relative pattern pick the index-th day that matches any of them.
"""
from __future__ import annotations

import datetime as _dt
from typing import Iterator

from dateutil import rrule

from .timeutil import TimeZoneError, resolve_tz

PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly",
                 "absoluteYearly", "relativeYearly")
RANGE_TYPES = ("endDate", "noEnd", "numbered")
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
INDEXES = ("first", "second", "third", "fourth", "last")
_RR_DAYS = {"sunday": rrule.SU, "monday": rrule.MO, "tuesday": rrule.TU, "wednesday": rrule.WE,
            "thursday": rrule.TH, "friday": rrule.FR, "saturday": rrule.SA}
_SETPOS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
NO_DATE = "0001-01-01"


class RecurrenceError(ValueError):
    """A recurrence Graph would refuse (400)."""


def _int(value: object, name: str, lo: int, hi: int, required: bool) -> int:
    if value is None:
        if required:
            raise RecurrenceError(f"recurrence.{name} is required")
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecurrenceError(f"recurrence.{name} must be an integer")
    if value == 0 and not required:
        return 0
    if not lo <= value <= hi:
        raise RecurrenceError(f"recurrence.{name} is out of range")
    return value


def _day(value: object, name: str) -> str:
    if not isinstance(value, str) or value.lower() not in DAYS:
        raise RecurrenceError(f"recurrence.{name} has an unsupported value: {value!r}")
    return value.lower()


def _date(value: object, name: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError) as exc:
        raise RecurrenceError(f"recurrence.range.{name} is not a date: {value!r}") from exc


def normalize(rec: dict, default_tz: str) -> dict:
    """Validate ``rec`` and return it as Graph returns it.

    Raises:
        RecurrenceError: a missing required field or an unsupported value.
    """
    if not isinstance(rec, dict) or not isinstance(rec.get("pattern"), dict) \
            or not isinstance(rec.get("range"), dict):
        raise RecurrenceError("recurrence needs pattern and range")
    p, r = rec["pattern"], rec["range"]
    ptype = p.get("type")
    if ptype not in PATTERN_TYPES:
        raise RecurrenceError(f"recurrence.pattern.type has an unsupported value: {ptype!r}")
    interval = _int(p.get("interval"), "pattern.interval", 1, 99, True)
    month = _int(p.get("month"), "pattern.month", 1, 12, ptype in ("absoluteYearly", "relativeYearly"))
    dom = _int(p.get("dayOfMonth"), "pattern.dayOfMonth", 1, 31,
               ptype in ("absoluteMonthly", "absoluteYearly"))
    days_in = p.get("daysOfWeek")
    if days_in is None:
        days_in = []
    if not isinstance(days_in, list):
        raise RecurrenceError("recurrence.pattern.daysOfWeek must be a list")
    days = []
    for d in days_in:
        d = _day(d, "pattern.daysOfWeek")
        if d not in days:
            days.append(d)
    if ptype in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise RecurrenceError("recurrence.pattern.daysOfWeek is required for " + ptype)
    fdow = _day(p.get("firstDayOfWeek") or "sunday", "pattern.firstDayOfWeek")
    index = p.get("index") or "first"
    if not isinstance(index, str) or index.lower() not in INDEXES:
        raise RecurrenceError(f"recurrence.pattern.index has an unsupported value: {index!r}")
    index = index.lower()

    rtype = r.get("type")
    if rtype not in RANGE_TYPES:
        raise RecurrenceError(f"recurrence.range.type has an unsupported value: {rtype!r}")
    if not r.get("startDate"):
        raise RecurrenceError("recurrence.range.startDate is required")
    start = _date(r.get("startDate"), "startDate")
    end_s = NO_DATE
    if rtype == "endDate":
        if not r.get("endDate"):
            raise RecurrenceError("recurrence.range.endDate is required for an endDate range")
        end = _date(r["endDate"], "endDate")
        if end < start:
            raise RecurrenceError("recurrence.range.endDate is before startDate")
        end_s = end.isoformat()
    count = r.get("numberOfOccurrences")
    if rtype == "numbered":
        count = _int(count, "range.numberOfOccurrences", 1, 999, True)
    else:
        count = 0
    rtz = r.get("recurrenceTimeZone") or default_tz or "UTC"
    try:
        resolve_tz(rtz)
    except TimeZoneError as exc:
        raise RecurrenceError(f"recurrence.range.recurrenceTimeZone is unknown: {rtz!r}") from exc

    pattern: dict = {"type": ptype, "interval": interval, "month": month, "dayOfMonth": dom}
    if ptype in ("weekly", "relativeMonthly", "relativeYearly"):
        pattern["daysOfWeek"] = days
    pattern["firstDayOfWeek"] = fdow
    pattern["index"] = index
    rng = {"type": rtype, "startDate": start.isoformat(), "endDate": end_s,
           "recurrenceTimeZone": rtz, "numberOfOccurrences": count}
    return {"pattern": pattern, "range": rng}


def _rule(rec: dict) -> rrule.rrule:
    p, r = rec["pattern"], rec["range"]
    start = _dt.date.fromisoformat(r["startDate"])
    kw: dict = {"dtstart": _dt.datetime(start.year, start.month, start.day),
                "interval": p["interval"], "wkst": _RR_DAYS[p["firstDayOfWeek"]].weekday}
    if r["type"] == "endDate":
        end = _dt.date.fromisoformat(r["endDate"])
        kw["until"] = _dt.datetime(end.year, end.month, end.day)
    elif r["type"] == "numbered":
        kw["count"] = r["numberOfOccurrences"]
    days = [_RR_DAYS[d] for d in p.get("daysOfWeek", [])]
    t = p["type"]
    if t == "daily":
        return rrule.rrule(rrule.DAILY, **kw)
    if t == "weekly":
        return rrule.rrule(rrule.WEEKLY, byweekday=days, **kw)
    if t == "relativeMonthly":
        return rrule.rrule(rrule.MONTHLY, byweekday=days, bysetpos=_SETPOS[p["index"]], **kw)
    if t == "relativeYearly":
        return rrule.rrule(rrule.YEARLY, bymonth=p["month"], byweekday=days,
                           bysetpos=_SETPOS[p["index"]], **kw)
    dom = p["dayOfMonth"]
    # a day past the month's end falls on the month's last day: take the last existing
    # day among 28..dom in each month (one per period, so counts stay right)
    monthdays = [dom] if dom <= 28 else list(range(28, dom + 1))
    extra = {"bysetpos": -1} if dom > 28 else {}
    if t == "absoluteMonthly":
        return rrule.rrule(rrule.MONTHLY, bymonthday=monthdays, **extra, **kw)
    return rrule.rrule(rrule.YEARLY, bymonth=p["month"], bymonthday=monthdays, **extra, **kw)


def dates_between(rec: dict, lo: _dt.date, hi: _dt.date) -> list[_dt.date]:
    """Local slot dates of the series with ``lo <= date <= hi`` (ascending)."""
    if hi < lo:
        return []
    rule = _rule(rec)
    return [d.date() for d in rule.between(_dt.datetime(lo.year, lo.month, lo.day),
                                           _dt.datetime(hi.year, hi.month, hi.day), inc=True)]


def iter_dates(rec: dict) -> Iterator[_dt.date]:
    """All local slot dates in order (infinite for ``noEnd``)."""
    for d in _rule(rec):
        yield d.date()


def first_date(rec: dict) -> _dt.date | None:
    for d in iter_dates(rec):
        return d
    return None


def last_date(rec: dict) -> _dt.date | None:
    """The last slot date, or None for ``noEnd`` (or an empty series)."""
    if rec["range"]["type"] == "noEnd":
        return None
    last = None
    for d in iter_dates(rec):
        last = d
    return last


def prev_next(rec: dict, day: _dt.date) -> tuple[_dt.date | None, _dt.date | None]:
    """The slot dates just before and just after ``day``."""
    rule = _rule(rec)
    at = _dt.datetime(day.year, day.month, day.day)
    before = rule.before(at, inc=False)
    after = rule.after(at, inc=False)
    return (before.date() if before else None, after.date() if after else None)


def count_before(rec: dict, day: _dt.date) -> int:
    """How many slots fall strictly before ``day``."""
    n = 0
    for d in iter_dates(rec):
        if d >= day:
            break
        n += 1
    return n
