"""Recurrence: Graph's ``patternedRecurrence`` as frozen values, and their expansion into
occurrence starts.

Owns:
- ``Pattern``/``Range``/``Recurrence``: validated, canonical values. Validation follows
  Graph (GRAPH.md section 4): required fields per type, "even if a field is ignored, it
  is still validated", 0 means unset. Canonical means fields a type ignores are reset to
  their defaults and days are lower-case, deduplicated and in Sunday..Saturday order, so
  Graph's normalised response and the minimal request it came from compare equal (a new
  ``changeKey`` alone is no change, rules D1/A9). The zone name is kept as written.
- ``parse_recurrence``/``to_graph``: Graph JSON in and (minimal) out; numbered ranges stay
  numbered (rule D4).
- ``expand``: the original starts of the occurrences that touch a window (rules D2, D3),
  plus helpers the engine needs for series splits (rules O2, A2): ``first_occurrence``,
  ``last_occurrence``, ``truncate_before``, ``restart_from``, and occurrenceId parsing.

Semantics (the emulator's instances must agree with these):
- Expansion runs in the series' own zone: ``range.time_zone`` (Windows or IANA), or, when
  that is unset or a legacy custom zone, the zone of ``first_start``. The wall-clock time
  of the series start is kept on every date, so 09:00 Europe/London is 09:00 GMT in
  winter and 09:00 BST in summer. A wall-clock time that does not exist on a date (DST
  gap) is read with the offset in force before the gap (01:30 on the spring-forward
  night in London becomes 02:30 BST, RFC 5545 3.3.5), and such an occurrence moves as a
  whole: it ends ``duration`` after its moved start. A series whose own start is in a gap
  starts at the moved instant and keeps that wall-clock time (a daily 02:00 series first
  on the America/Los_Angeles spring-forward night is a 03:00 series, as Graph returns its
  master's start). An ambiguous time (DST fold) takes its first, earlier instant.
- An all-day series is a series of dates: each occurrence starts at midnight local in
  the series zone (Graph's ``originalStart`` for all-day occurrences is that instant in
  UTC).
- An occurrence lasts ``duration`` of wall-clock time in the series zone; an all-day
  occurrence is whole dates, midnight to midnight even on a 23- or 25-hour day
  (``occurrence_end``).
- Occurrence dates are those the pattern yields on or after ``range.startDate``; the
  start date itself need not be an occurrence (weekly on Monday from a Wednesday starts
  the next Monday). ``numbered`` counts occurrences from the start date; ``endDate`` is
  inclusive of that date in the series zone.
- ``absoluteMonthly`` on day 29..31 falls on the month's last day in shorter months, and
  ``absoluteYearly`` on February 29 falls on February 28 in common years (as Outlook and
  CDO do). ``relative*`` with several days picks the ``index``-th day of the month that
  is any of them ("the first day that satisfies the pattern"); ``last`` picks the last.
- ``weekly`` counts its ``interval`` in weeks that begin on ``firstDayOfWeek``.
- ``first_start`` (the master's start) gives the wall-clock time and must fall, in the
  series zone, on ``range.startDate`` or on the first occurrence (where Exchange may put
  the master); an all-day start may also be read in its own zone, since Graph reports
  all-day times as midnight in whatever zone was asked for.
- A recurrence must yield at least one occurrence (Exchange refuses one that does not,
  ``ErrorRecurrenceHasNoOccurrence``); constructing one that does not raises.

Invariants: pure (no I/O, no clock); every datetime in or out is aware, and every
datetime returned is UTC; failures raise ``RecurrenceError`` naming the field.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Final, Mapping
from zoneinfo import ZoneInfo

from dateutil import rrule as _rr

from core.plan.timezones import UTC, TimeZoneError, is_unset_zone, resolve_zone, windows_name_for

__all__ = [
    "DAYS_OF_WEEK",
    "INDEXES",
    "PATTERN_TYPES",
    "RANGE_TYPES",
    "Pattern",
    "Range",
    "Recurrence",
    "RecurrenceError",
    "expand",
    "first_occurrence",
    "last_occurrence",
    "occurrence_dates",
    "occurrence_id_date",
    "occurrence_id_for",
    "occurrence_start_on",
    "occurrences_before",
    "parse_recurrence",
    "restart_from",
    "series_zone",
    "split_occurrence_id",
    "to_graph",
    "truncate_before",
]

PATTERN_TYPES: Final = (
    "daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly",
)
RANGE_TYPES: Final = ("endDate", "noEnd", "numbered")
DAYS_OF_WEEK: Final = (
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
)
INDEXES: Final = ("first", "second", "third", "fourth", "last")

_PATTERN_BY_FOLD: Final = {name.casefold(): name for name in PATTERN_TYPES}
_RANGE_BY_FOLD: Final = {name.casefold(): name for name in RANGE_TYPES}
_RRULE_DAY: Final = {
    "sunday": _rr.SU, "monday": _rr.MO, "tuesday": _rr.TU, "wednesday": _rr.WE,
    "thursday": _rr.TH, "friday": _rr.FR, "saturday": _rr.SA,
}
_SETPOS: Final = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_NEEDS_DAYS: Final = frozenset({"weekly", "relativeMonthly", "relativeYearly"})
_NEEDS_DAY_OF_MONTH: Final = frozenset({"absoluteMonthly", "absoluteYearly"})
_NEEDS_MONTH: Final = frozenset({"absoluteYearly", "relativeYearly"})
_NEEDS_INDEX: Final = frozenset({"relativeMonthly", "relativeYearly"})
_DATE_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# Any zone's UTC offset is within +-26 h: widening a local window by two days on each
# side always covers every occurrence that can touch the UTC window.
_PAD: Final = timedelta(days=2)


class RecurrenceError(ValueError):
    """An invalid recurrence, or a request that the recurrence cannot satisfy.

    Attributes:
        field: the Graph field at fault (``"pattern.daysOfWeek"``), when there is one.
        value: the offending value.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


# --------------------------------------------------------------------------- values


def _int_field(value: object, name: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecurrenceError(f"{name} must be an integer, got {value!r}", field=name, value=value)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise RecurrenceError(f"{name} must be {bounds}, got {value}", field=name, value=value)
    return value


def _choice(value: object, name: str, choices: Mapping[str, str] | tuple[str, ...]) -> str:
    allowed = choices if isinstance(choices, Mapping) else {c.casefold(): c for c in choices}
    if not isinstance(value, str) or value.strip().casefold() not in allowed:
        listed = ", ".join(allowed.values())
        raise RecurrenceError(f"{name} must be one of {listed}; got {value!r}",
                              field=name, value=value)
    return allowed[value.strip().casefold()]


def _date_field(value: object, name: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise RecurrenceError(f"{name} must be a date, got {value!r}", field=name, value=value)
    return value


@dataclass(frozen=True, slots=True)
class Pattern:
    """How often a series repeats (Graph ``recurrencePattern``), validated and canonical.

    ``day_of_month``/``month`` use 0 for unset; fields that ``type`` ignores are reset to
    their defaults (``()``, 0, ``"first"``, ``"sunday"``) after being validated.
    """

    type: str
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    day_of_month: int = 0
    month: int = 0
    index: str = "first"
    first_day_of_week: str = "sunday"

    def __post_init__(self) -> None:
        kind = _choice(self.type, "pattern.type", _PATTERN_BY_FOLD)
        _int_field(self.interval, "pattern.interval", low=1)
        if isinstance(self.days_of_week, str) or not isinstance(self.days_of_week, (tuple, list)):
            raise RecurrenceError(
                f"pattern.daysOfWeek must be a list of day names, got {self.days_of_week!r}",
                field="pattern.daysOfWeek", value=self.days_of_week)
        given = {_choice(d, "pattern.daysOfWeek", DAYS_OF_WEEK) for d in self.days_of_week}
        days = tuple(d for d in DAYS_OF_WEEK if d in given)
        day_of_month = _int_field(self.day_of_month, "pattern.dayOfMonth", low=0, high=31)
        month = _int_field(self.month, "pattern.month", low=0, high=12)
        index = _choice(self.index, "pattern.index", INDEXES)
        first_day = _choice(self.first_day_of_week, "pattern.firstDayOfWeek", DAYS_OF_WEEK)

        if kind in _NEEDS_DAYS and not days:
            raise RecurrenceError(f"pattern.daysOfWeek is required for a {kind} pattern",
                                  field="pattern.daysOfWeek", value=self.days_of_week)
        if kind in _NEEDS_DAY_OF_MONTH and day_of_month == 0:
            raise RecurrenceError(f"pattern.dayOfMonth (1..31) is required for a {kind} pattern",
                                  field="pattern.dayOfMonth", value=self.day_of_month)
        if kind in _NEEDS_MONTH and month == 0:
            raise RecurrenceError(f"pattern.month (1..12) is required for a {kind} pattern",
                                  field="pattern.month", value=self.month)
        if kind == "absoluteYearly":
            longest = 29 if month == 2 else calendar.monthrange(2001, month)[1]
            if day_of_month > longest:
                raise RecurrenceError(
                    f"pattern.dayOfMonth {day_of_month} does not exist in month {month}",
                    field="pattern.dayOfMonth", value=day_of_month)

        set_ = object.__setattr__
        set_(self, "type", kind)
        set_(self, "days_of_week", days if kind in _NEEDS_DAYS else ())
        set_(self, "day_of_month", day_of_month if kind in _NEEDS_DAY_OF_MONTH else 0)
        set_(self, "month", month if kind in _NEEDS_MONTH else 0)
        set_(self, "index", index if kind in _NEEDS_INDEX else "first")
        set_(self, "first_day_of_week", first_day if kind == "weekly" else "sunday")


@dataclass(frozen=True, slots=True)
class Range:
    """How long a series lasts (Graph ``recurrenceRange``), validated and canonical.

    ``end_date`` is kept only for ``endDate`` ranges and ``number_of_occurrences`` (0 =
    unset) only for ``numbered`` ones. ``time_zone`` is Graph's ``recurrenceTimeZone`` as
    written (Windows or IANA name), ``""`` when unset; it must resolve, unless unset or a
    legacy custom zone.
    """

    type: str
    start_date: date
    end_date: date | None = None
    number_of_occurrences: int = 0
    time_zone: str = ""

    def __post_init__(self) -> None:
        kind = _choice(self.type, "range.type", _RANGE_BY_FOLD)
        start = _date_field(self.start_date, "range.startDate")
        end = None if self.end_date is None else _date_field(self.end_date, "range.endDate")
        count = _int_field(self.number_of_occurrences, "range.numberOfOccurrences", low=0)
        zone_name = "" if self.time_zone is None else self.time_zone
        if not isinstance(zone_name, str):
            raise RecurrenceError(f"range.recurrenceTimeZone must be a string, got {zone_name!r}",
                                  field="range.recurrenceTimeZone", value=zone_name)
        zone_name = zone_name.strip()
        if not is_unset_zone(zone_name):
            try:
                resolve_zone(zone_name, fallback=None)
            except TimeZoneError as exc:
                raise RecurrenceError(f"range.recurrenceTimeZone: {exc}",
                                      field="range.recurrenceTimeZone", value=zone_name) from exc
        if kind == "endDate":
            if end is None:
                raise RecurrenceError("range.endDate is required for an endDate range",
                                      field="range.endDate")
            if end < start:
                raise RecurrenceError(
                    f"range.endDate {end} is before range.startDate {start}",
                    field="range.endDate", value=end)
        if kind == "numbered" and count == 0:
            raise RecurrenceError("range.numberOfOccurrences must be > 0 for a numbered range",
                                  field="range.numberOfOccurrences", value=count)
        set_ = object.__setattr__
        set_(self, "type", kind)
        set_(self, "end_date", end if kind == "endDate" else None)
        set_(self, "number_of_occurrences", count if kind == "numbered" else 0)
        set_(self, "time_zone", zone_name)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated ``patternedRecurrence`` that yields at least one occurrence."""

    pattern: Pattern
    range: Range

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, Pattern):
            raise RecurrenceError(f"pattern must be a Pattern, got {self.pattern!r}",
                                  field="pattern", value=self.pattern)
        if not isinstance(self.range, Range):
            raise RecurrenceError(f"range must be a Range, got {self.range!r}",
                                  field="range", value=self.range)
        if _first_local(self, time()) is None:
            raise RecurrenceError(
                f"the recurrence has no occurrence between {self.range.start_date} and "
                f"{self.range.end_date} ({self.pattern.type})",
                field="range.endDate", value=self.range.end_date)


# --------------------------------------------------------------------------- Graph JSON


def graph_property(obj: Mapping[str, Any], key: str) -> Any:
    """A Graph property, matched case-insensitively (doc and beta samples mix PascalCase)."""
    if key in obj:
        return obj[key]
    folded = key.casefold()
    for k, v in obj.items():
        if isinstance(k, str) and k.casefold() == folded:
            return v
    return None


def _parse_date(value: object, name: str) -> date:
    if not isinstance(value, str) or not (m := _DATE_RE.fullmatch(value.strip())):
        raise RecurrenceError(f"{name} must be a yyyy-MM-dd date, got {value!r}",
                              field=name, value=value)
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise RecurrenceError(f"{name} {value!r} is not a valid date: {exc}",
                              field=name, value=value) from exc


def parse_recurrence(obj: Mapping[str, object]) -> Recurrence:
    """Build a ``Recurrence`` from Graph's ``patternedRecurrence`` JSON.

    Accepts both minimal request bodies and Graph's normalised responses: a 0, null or
    missing number and a null or empty string mean "unset"; ``endDate`` is ignored unless
    the range type is ``endDate``; day names are case-insensitive.

    Raises:
        RecurrenceError: missing or invalid fields, named as Graph names them.
    """
    if not isinstance(obj, Mapping):
        raise RecurrenceError(f"recurrence must be an object, got {obj!r}",
                              field="recurrence", value=obj)
    pattern_obj, range_obj = graph_property(obj, "pattern"), graph_property(obj, "range")
    if not isinstance(pattern_obj, Mapping):
        raise RecurrenceError(f"recurrence.pattern must be an object, got {pattern_obj!r}",
                              field="pattern", value=pattern_obj)
    if not isinstance(range_obj, Mapping):
        raise RecurrenceError(f"recurrence.range must be an object, got {range_obj!r}",
                              field="range", value=range_obj)

    def number(src: Mapping[str, object], key: str) -> object:
        value = graph_property(src, key)
        return 0 if value is None else value

    def text(src: Mapping[str, object], key: str, default: str) -> object:
        value = graph_property(src, key)
        return default if value is None or value == "" else value

    kind = graph_property(pattern_obj, "type")
    if kind is None:
        raise RecurrenceError("pattern.type is required", field="pattern.type")
    interval = number(pattern_obj, "interval")
    if interval == 0:
        raise RecurrenceError("pattern.interval is required (>= 1)", field="pattern.interval",
                              value=graph_property(pattern_obj, "interval"))
    days = graph_property(pattern_obj, "daysOfWeek")
    pattern = Pattern(
        type=kind,  # type: ignore[arg-type]
        interval=interval,  # type: ignore[arg-type]
        days_of_week=() if days is None else days,  # type: ignore[arg-type]
        day_of_month=number(pattern_obj, "dayOfMonth"),  # type: ignore[arg-type]
        month=number(pattern_obj, "month"),  # type: ignore[arg-type]
        index=text(pattern_obj, "index", "first"),  # type: ignore[arg-type]
        first_day_of_week=text(pattern_obj, "firstDayOfWeek", "sunday"),  # type: ignore[arg-type]
    )

    range_kind = graph_property(range_obj, "type")
    if range_kind is None:
        raise RecurrenceError("range.type is required", field="range.type")
    range_kind = _choice(range_kind, "range.type", _RANGE_BY_FOLD)
    start_raw = graph_property(range_obj, "startDate")
    if start_raw is None:
        raise RecurrenceError("range.startDate is required", field="range.startDate")
    end_raw = graph_property(range_obj, "endDate")
    if range_kind == "endDate" and end_raw is None:
        raise RecurrenceError("range.endDate is required for an endDate range",
                              field="range.endDate")
    zone = graph_property(range_obj, "recurrenceTimeZone")
    rng = Range(
        type=range_kind,
        start_date=_parse_date(start_raw, "range.startDate"),
        end_date=_parse_date(end_raw, "range.endDate") if range_kind == "endDate" else None,
        number_of_occurrences=number(range_obj, "numberOfOccurrences"),  # type: ignore[arg-type]
        time_zone="" if zone is None else zone,  # type: ignore[arg-type]
    )
    return Recurrence(pattern, rng)


def to_graph(rec: Recurrence) -> dict[str, dict[str, object]]:
    """The minimal valid ``patternedRecurrence`` for a write.

    Only the fields the pattern and range types use are sent (Graph validates every
    field it receives); a numbered range stays numbered (rule D4); the zone is written
    as a Windows name and left out when unset (Graph then uses the event's zone).

    Raises:
        RecurrenceError: the range's zone has no Windows name.
    """
    p, r = rec.pattern, rec.range
    pattern: dict[str, object] = {"type": p.type, "interval": p.interval}
    if p.type in _NEEDS_MONTH:
        pattern["month"] = p.month
    if p.type in _NEEDS_DAY_OF_MONTH:
        pattern["dayOfMonth"] = p.day_of_month
    if p.type in _NEEDS_DAYS:
        pattern["daysOfWeek"] = list(p.days_of_week)
    if p.type == "weekly":
        pattern["firstDayOfWeek"] = p.first_day_of_week
    if p.type in _NEEDS_INDEX:
        pattern["index"] = p.index
    rng: dict[str, object] = {"type": r.type, "startDate": r.start_date.isoformat()}
    if r.type == "endDate":
        assert r.end_date is not None
        rng["endDate"] = r.end_date.isoformat()
    if r.type == "numbered":
        rng["numberOfOccurrences"] = r.number_of_occurrences
    if not is_unset_zone(r.time_zone):
        try:
            rng["recurrenceTimeZone"] = windows_name_for(r.time_zone)
        except TimeZoneError as exc:
            raise RecurrenceError(f"range.recurrenceTimeZone: {exc}",
                                  field="range.recurrenceTimeZone", value=r.time_zone) from exc
    return {"pattern": pattern, "range": rng}


# --------------------------------------------------------------------------- rules


@lru_cache(maxsize=512)
def _rule(rec: Recurrence, dtstart: datetime) -> _rr.rrule:
    """The dateutil rule for ``rec`` anchored at a naive local ``dtstart``."""
    p, r = rec.pattern, rec.range
    days = tuple(_RRULE_DAY[d] for d in p.days_of_week)
    kwargs: dict[str, object] = {"dtstart": dtstart, "interval": p.interval}
    if r.type == "numbered":
        kwargs["count"] = r.number_of_occurrences
    elif r.type == "endDate":
        assert r.end_date is not None
        kwargs["until"] = datetime.combine(r.end_date, time.max)  # inclusive of the end date
    if p.type == "daily":
        return _rr.rrule(_rr.DAILY, **kwargs)
    if p.type == "weekly":
        return _rr.rrule(_rr.WEEKLY, byweekday=days, wkst=_RRULE_DAY[p.first_day_of_week],
                         **kwargs)
    if p.type in _NEEDS_DAY_OF_MONTH:
        # Day 29..31 falls on the last day of a shorter month: take the last existing
        # day of 28..N in each period (bysetpos applies per month/year).
        if p.day_of_month > 28:
            kwargs["bymonthday"] = tuple(range(28, p.day_of_month + 1))
            kwargs["bysetpos"] = -1
        else:
            kwargs["bymonthday"] = p.day_of_month
        if p.type == "absoluteMonthly":
            return _rr.rrule(_rr.MONTHLY, **kwargs)
        return _rr.rrule(_rr.YEARLY, bymonth=p.month, **kwargs)
    # relativeMonthly / relativeYearly: the index-th day of the period that is any of
    # the days ("the event falls on the first day that satisfies the pattern").
    kwargs["byweekday"] = days
    kwargs["bysetpos"] = _SETPOS[p.index]
    if p.type == "relativeMonthly":
        return _rr.rrule(_rr.MONTHLY, **kwargs)
    return _rr.rrule(_rr.YEARLY, bymonth=p.month, **kwargs)


def _date_rule(rec: Recurrence) -> _rr.rrule:
    return _rule(rec, datetime.combine(rec.range.start_date, time()))


def _first_local(rec: Recurrence, at: time) -> datetime | None:
    return _rule(rec, datetime.combine(rec.range.start_date, at)).after(
        datetime.combine(rec.range.start_date, time()), inc=True)


def _localize(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as aware UTC (gap: offset before it; fold: first)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _naive_local(dt: datetime, zone: ZoneInfo, shift: timedelta) -> datetime:
    """``dt`` as naive wall-clock in ``zone`` plus ``shift``, clamped to datetime's range."""
    try:
        return dt.astimezone(zone).replace(tzinfo=None) + shift
    except OverflowError:
        return datetime.min if shift < timedelta(0) else datetime.max


def _require_aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise RecurrenceError(f"{name} must be a datetime, got {value!r}", field=name, value=value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise RecurrenceError(f"{name} must be timezone-aware, got naive {value.isoformat()}",
                              field=name, value=value)
    return value


def series_zone(rec: Recurrence, first_start: datetime | None = None) -> ZoneInfo:
    """The zone a series expands in: ``range.time_zone``, else ``first_start``'s zone.

    Raises:
        RecurrenceError: the range zone is unset and ``first_start`` is missing, naive or
            not in a ``ZoneInfo`` zone.
    """
    if not is_unset_zone(rec.range.time_zone):
        return resolve_zone(rec.range.time_zone, fallback=None)
    if first_start is None:
        raise RecurrenceError("range.recurrenceTimeZone is unset and no series start was given",
                              field="range.recurrenceTimeZone", value=rec.range.time_zone)
    tz = _require_aware(first_start, "first_start").tzinfo
    if isinstance(tz, ZoneInfo):
        return tz
    if tz is timezone.utc:
        return UTC
    raise RecurrenceError(
        f"range.recurrenceTimeZone is unset and first_start's zone {tz!r} is not a ZoneInfo; "
        "pass first_start in the event's zone", field="range.recurrenceTimeZone",
        value=rec.range.time_zone)


def _anchor(rec: Recurrence, first_start: datetime, is_all_day: bool) -> tuple[ZoneInfo, time]:
    """The series zone and wall-clock start time, checking first_start against startDate."""
    _require_aware(first_start, "first_start")
    zone = series_zone(rec, first_start)
    # Through UTC, so a wall-clock time the clocks skip (an aware datetime in ``zone`` that
    # does not exist, e.g. 02:00 on the America/Los_Angeles spring-forward night) becomes
    # the instant Exchange stores and returns, 03:00 PDT (RFC 5545 3.3.5: moved forward by
    # the gap), and the series keeps that wall-clock time on every date, as Graph's master
    # start says. (``astimezone`` to the datetime's own zone would keep 02:00 as is.)
    local = first_start.astimezone(UTC).astimezone(zone)
    candidates = {local.date()}
    if is_all_day:
        # Graph returns all-day starts as midnight in whatever zone was asked for, so
        # first_start's own date is as good as its date in the series zone.
        candidates.add(first_start.date())
    first = _first_local(rec, time())
    assert first is not None  # Recurrence guarantees at least one occurrence
    allowed = {rec.range.start_date, first.date()}
    if not candidates & allowed:
        raise RecurrenceError(
            f"series start {first_start.isoformat()} falls on {sorted(candidates)[0]} in "
            f"{zone.key}, but range.startDate is {rec.range.start_date} (Graph requires the "
            "start to correspond to range.startDate)",
            field="range.startDate", value=rec.range.start_date)
    at = time() if is_all_day else local.time().replace(fold=0, tzinfo=None)
    return zone, at


# --------------------------------------------------------------------------- expansion


def expand(
    rec: Recurrence,
    first_start: datetime,
    duration: timedelta,
    window_start: datetime,
    window_end: datetime,
    *,
    is_all_day: bool = False,
) -> tuple[datetime, ...]:
    """The original starts (UTC, sorted, unique) of every occurrence touching a window.

    An occurrence ``[start, start + duration]`` is included when it overlaps
    ``[window_start, window_end]`` boundary-inclusively (GRAPH.md section 1: one ending
    exactly at ``window_start`` is returned). These starts are the keys of D2
    exceptions and of D3 deleted instances.

    Args:
        first_start: the series master's start (its date must be ``range.startDate`` or
            the first occurrence's date, in the series zone).
        duration: each occurrence's length (>= 0), in wall-clock time of the series zone.
        is_all_day: occurrences are dates, each starting at midnight in the series zone.

    Raises:
        RecurrenceError: naive datetimes, a negative duration, a reversed window, an
            unresolvable zone, or a start that does not match ``range.startDate``.
    """
    _require_aware(window_start, "window_start")
    _require_aware(window_end, "window_end")
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise RecurrenceError(f"duration must be a timedelta >= 0, got {duration!r}",
                              field="duration", value=duration)
    if window_end < window_start:
        raise RecurrenceError(
            f"window_end {window_end.isoformat()} is before window_start "
            f"{window_start.isoformat()}", field="window_end", value=window_end)
    zone, at = _anchor(rec, first_start, is_all_day)
    rule = _rule(rec, datetime.combine(rec.range.start_date, at))
    low = _naive_local(window_start, zone, -(duration + _PAD))
    high = _naive_local(window_end, zone, _PAD)
    found: set[datetime] = set()
    for local in rule.between(low, high, inc=True):
        start = _localize(local, zone)
        if start > window_end:
            continue
        if _occurrence_end(local, start, duration, zone, is_all_day) >= window_start:
            found.add(start)
    return tuple(sorted(found))


def all_day_span(duration: timedelta) -> int:
    """Whole days an all-day event lasts, from its master's length (23 or 25 hours on a
    DST day count as one day); at least one."""
    return max(1, round(duration / timedelta(days=1)))


def occurrence_end(start: datetime, duration: timedelta, zone: ZoneInfo, *, is_all_day: bool = False) -> datetime:
    """The end of an occurrence that starts at ``start`` and lasts its master's ``duration``.

    An all-day occurrence is whole dates (issue 11 item 7): it ends at midnight, in the
    series zone, ``all_day_span(duration)`` dates after its start date, even across a DST
    change (a 23- or 25-hour day), never a fixed number of hours later. A timed occurrence
    lasts ``duration`` of elapsed time.

    Raises:
        RecurrenceError: a naive ``start``.
    """
    _require_aware(start, "start")
    if not is_all_day:
        return start + duration
    first = start.astimezone(zone).date()
    return _localize(datetime.combine(first + timedelta(days=all_day_span(duration)), time()), zone)


def _occurrence_end(local: datetime, start: datetime, duration: timedelta,
                    zone: ZoneInfo, is_all_day: bool = False) -> datetime:
    if is_all_day:
        return occurrence_end(start, duration, zone, is_all_day=True)
    if start.astimezone(zone).replace(tzinfo=None) != local:
        # The start fell in a DST gap and moved forward by it (RFC 5545 3.3.5): the whole
        # occurrence moves, so it keeps its length (02:30-03:30 on the America/Los_Angeles
        # spring-forward night is 03:30-04:30 PDT), as the emulator's instances do.
        return start + duration
    try:
        end = _localize(local + duration, zone)
    except OverflowError:
        return start + duration
    return end if end >= start else start + duration


def occurrence_dates(rec: Recurrence, *, start: date | None = None,
                     until: date | None = None) -> tuple[date, ...]:
    """The local dates of the occurrences from ``start`` to ``until`` (both inclusive).

    Dates do not depend on the time of day or zone, so none is needed.

    Raises:
        RecurrenceError: the series has no end and ``until`` is None.
    """
    if until is None and rec.range.type == "noEnd":
        raise RecurrenceError("a noEnd series has infinitely many occurrences; pass until",
                              field="until")
    rule = _date_rule(rec)
    low = datetime.combine(start or rec.range.start_date, time())
    if until is None:
        return tuple(d.date() for d in rule if d >= low)
    return tuple(d.date() for d in rule.between(low, datetime.combine(until, time()), inc=True))


def _next_on_or_after(rec: Recurrence, day: date) -> date | None:
    hit = _date_rule(rec).after(datetime.combine(day, time()), inc=True)
    return None if hit is None else hit.date()


def occurrences_before(rec: Recurrence, day: date) -> int:
    """How many occurrences fall on a local date before ``day``."""
    count = 0
    for local in _date_rule(rec):
        if local.date() >= day:
            break
        count += 1
    return count


def occurrence_start_on(rec: Recurrence, first_start: datetime, day: date, *,
                        is_all_day: bool = False) -> datetime:
    """The original start (UTC) of the occurrence on local date ``day``.

    Useful with ``occurrence_id_date`` (an occurrenceId names its slot by date).

    Raises:
        RecurrenceError: no occurrence falls on ``day``.
    """
    zone, at = _anchor(rec, first_start, is_all_day)
    local = datetime.combine(day, at)
    hit = _rule(rec, datetime.combine(rec.range.start_date, at)).after(
        datetime.combine(day, time()), inc=True)
    if hit != local:
        raise RecurrenceError(f"the series has no occurrence on {day}", field="day", value=day)
    return _localize(local, zone)


def first_occurrence(rec: Recurrence, first_start: datetime, *,
                     is_all_day: bool = False) -> datetime:
    """The original start (UTC) of the series' first occurrence."""
    zone, at = _anchor(rec, first_start, is_all_day)
    local = _first_local(rec, at)
    assert local is not None  # Recurrence guarantees at least one occurrence
    return _localize(local, zone)


def last_occurrence(rec: Recurrence, first_start: datetime, *,
                    is_all_day: bool = False) -> datetime | None:
    """The original start (UTC) of the last occurrence; None for a ``noEnd`` series."""
    zone, at = _anchor(rec, first_start, is_all_day)
    if rec.range.type == "noEnd":
        return None
    rule = _rule(rec, datetime.combine(rec.range.start_date, at))
    if rec.range.type == "endDate":
        assert rec.range.end_date is not None
        local = rule.before(datetime.combine(rec.range.end_date, time.max), inc=True)
    else:
        local = None
        for local in rule:  # noqa: B007 - walks to the last occurrence, which is kept
            pass
    assert local is not None  # Recurrence guarantees at least one occurrence
    return _localize(local, zone)


# --------------------------------------------------------------------------- splits


def truncate_before(rec: Recurrence, cut: date) -> Recurrence:
    """The series ended the day before ``cut``, as Outlook's "this and all following" does (O2).

    The result is an ``endDate`` range ending on ``cut - 1 day``. When no occurrence
    falls on or after ``cut`` the series is returned unchanged (nothing to cut; a
    numbered range stays numbered, rule D4).

    Raises:
        RecurrenceError: no occurrence falls before ``cut`` (delete the series instead).
    """
    if not isinstance(cut, date) or isinstance(cut, datetime):
        raise RecurrenceError(f"cut must be a date, got {cut!r}", field="cut", value=cut)
    if _next_on_or_after(rec, cut) is None:
        return rec
    if occurrences_before(rec, cut) == 0:
        raise RecurrenceError(
            f"cutting the series before {cut} leaves no occurrence (it starts "
            f"{rec.range.start_date})", field="cut", value=cut)
    rng = Range("endDate", rec.range.start_date, cut - timedelta(days=1), 0, rec.range.time_zone)
    return Recurrence(rec.pattern, rng)


def restart_from(rec: Recurrence, new_start_date: date) -> Recurrence:
    """The tail of the series from ``new_start_date``: the series Outlook creates in O2.

    The tail starts on the first occurrence on or after ``new_start_date`` (so a series
    with an interval > 1 keeps its phase); its range keeps the original's end, and a
    numbered range keeps the remaining count (rule D4). Together with
    ``truncate_before(rec, new_start_date)`` it partitions the original's occurrences.

    Raises:
        RecurrenceError: no occurrence falls on or after ``new_start_date``.
    """
    if not isinstance(new_start_date, date) or isinstance(new_start_date, datetime):
        raise RecurrenceError(f"new_start_date must be a date, got {new_start_date!r}",
                              field="new_start_date", value=new_start_date)
    first = _next_on_or_after(rec, max(new_start_date, rec.range.start_date))
    if first is None:
        raise RecurrenceError(f"the series has no occurrence on or after {new_start_date}",
                              field="new_start_date", value=new_start_date)
    r = rec.range
    if r.type == "numbered":
        remaining = r.number_of_occurrences - occurrences_before(rec, first)
        rng = Range("numbered", first, None, remaining, r.time_zone)
    else:
        rng = Range(r.type, first, r.end_date, 0, r.time_zone)
    return Recurrence(rec.pattern, rng)


# --------------------------------------------------------------------------- occurrenceId


def split_occurrence_id(occurrence_id: str) -> tuple[str, date]:
    """``OID.{masterId}.{yyyy-MM-dd}`` -> (masterId, date).

    The date is the last dot segment: master ids are base64-like and may contain dots.

    Raises:
        RecurrenceError: not of that form.
    """
    if not isinstance(occurrence_id, str) or not occurrence_id.startswith("OID."):
        raise RecurrenceError(f"occurrenceId {occurrence_id!r} does not start with 'OID.'",
                              field="occurrenceId", value=occurrence_id)
    master, sep, day = occurrence_id[4:].rpartition(".")
    if not sep or not master:
        raise RecurrenceError(f"occurrenceId {occurrence_id!r} is not OID.{{masterId}}.{{date}}",
                              field="occurrenceId", value=occurrence_id)
    return master, _parse_date(day, "occurrenceId")


def occurrence_id_date(occurrence_id: str) -> date:
    """The date of the slot an ``OID.{masterId}.{yyyy-MM-dd}`` occurrenceId names."""
    return split_occurrence_id(occurrence_id)[1]


def occurrence_id_for(master_id: str, day: date) -> str:
    """The occurrenceId Graph gives the occurrence of ``master_id`` on ``day``."""
    if not master_id:
        raise RecurrenceError("master_id is empty", field="master_id", value=master_id)
    return f"OID.{master_id}.{day.isoformat()}"
