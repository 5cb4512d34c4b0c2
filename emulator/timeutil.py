"""Time for the emulator: its clock, Graph's date-time formats and time-zone names.

Owns: the emulator clock (real UTC now unless frozen/shifted by the control API),
parsing of Graph ``dateTimeTimeZone`` values and query-string instants, and rendering
in Graph's shapes (7 fractional digits, no offset; ``...Z`` timestamps; UTC
``originalStart``). Windows zone names are mapped to IANA with
``tzlocal.windows_tz.win_tz`` (a maintained table); IANA names are accepted too.
Invariant: every datetime handed out is timezone-aware.
"""
from __future__ import annotations

import datetime as _dt
import re
import threading
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

UTC = _dt.timezone.utc

_UTC_NAMES = {"utc", "tzone://microsoft/utc", "etc/utc", "gmt", "z", "coordinated universal time"}


class TimeZoneError(ValueError):
    """A time-zone name the emulator (like Exchange) does not know."""


class Clock:
    """Emulator time: real UTC now, optionally frozen or shifted (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: _dt.datetime | None = None
        self._offset = _dt.timedelta(0)

    def now(self) -> _dt.datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return _dt.datetime.now(UTC) + self._offset

    def set_now(self, when: _dt.datetime | None) -> None:
        """Freeze the clock at ``when`` (aware), or go back to real time with None."""
        with self._lock:
            self._frozen = when.astimezone(UTC) if when is not None else None
            self._offset = _dt.timedelta(0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += _dt.timedelta(seconds=seconds)
            else:
                self._offset += _dt.timedelta(seconds=seconds)


def resolve_tz(name: str | None) -> _dt.tzinfo:
    """The tzinfo for a Windows or IANA zone name (``UTC`` when empty)."""
    if name is None or name.strip() == "" or name.strip().lower() in _UTC_NAMES:
        return UTC
    key = name.strip()
    iana = win_tz.get(key)
    if iana is None:
        for win, ian in win_tz.items():
            if win.lower() == key.lower():
                iana = ian
                break
    try:
        return ZoneInfo(iana or key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeZoneError(name) from exc


_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def _parse(value: str) -> tuple[_dt.datetime, _dt.tzinfo | None]:
    value = value.strip()
    if "T" in value and re.search(r"\d \d{2}:?\d{2}$", value):  # an unencoded '+' offset arrives as a space
        value = value[:-6] + "+" + value[-5:] if ":" in value[-5:] else value[:-5] + "+" + value[-4:]
    m = _DT_RE.match(value)
    if not m:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    micro = int((frac or "0").ljust(7, "0")[:6])
    naive = _dt.datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro)
    tz: _dt.tzinfo | None = None
    if off:
        if off == "Z":
            tz = UTC
        else:
            sign = 1 if off[0] == "+" else -1
            digits = off[1:].replace(":", "")
            tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return naive, tz


def localize(naive: _dt.datetime, tz: _dt.tzinfo) -> _dt.datetime:
    """Attach ``tz`` to a wall-clock time; a time in a DST gap moves forward as Exchange does."""
    aware = naive.replace(tzinfo=tz)
    if tz is UTC:
        return aware
    roundtrip = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive:
        # Non-existent (spring-forward gap): read with the offset before the gap, so the
        # time moves *forward* by the gap (01:30 on the London change -> 02:30 BST), as
        # RFC 5545 3.3.5 says. (fold=1 would take the offset after the gap and move it back.)
        aware = aware.astimezone(UTC).astimezone(tz)
    return aware


def gap_shift(obj: object) -> _dt.timedelta:
    """How far a ``dateTimeTimeZone`` wall-clock time moves because it falls in a DST gap.

    Zero for a time that exists (or carries its own offset); one gap's length (usually an
    hour) for a time the clocks skip, which ``localize`` moves forward (RFC 5545 3.3.5).
    """
    if not isinstance(obj, dict) or "dateTime" not in obj:
        return _dt.timedelta(0)
    tz = resolve_tz(obj.get("timeZone") or "UTC")
    naive, off = _parse(str(obj["dateTime"]))
    if off is not None:
        return _dt.timedelta(0)
    return localize(naive, tz).replace(tzinfo=None) - naive


def parse_query_instant(value: str) -> _dt.datetime:
    """A query-string instant (``startDateTime``): its own offset, or UTC when none."""
    naive, tz = _parse(value)
    return naive.replace(tzinfo=tz or UTC).astimezone(UTC)


def parse_dtz(obj: object) -> tuple[_dt.datetime, str]:
    """A Graph ``dateTimeTimeZone`` dict -> (aware UTC datetime, zone name as given)."""
    if not isinstance(obj, dict) or "dateTime" not in obj:
        raise ValueError("dateTimeTimeZone needs dateTime and timeZone")
    tzname = obj.get("timeZone") or "UTC"
    tz = resolve_tz(tzname)
    naive, off = _parse(str(obj["dateTime"]))
    aware = naive.replace(tzinfo=off) if off else localize(naive, tz)
    return aware.astimezone(UTC), tzname


def fmt_dtz(when: _dt.datetime, tzname: str | None) -> dict:
    """Render ``when`` as Graph does: wall time in ``tzname`` (UTC if None), 7 digits, no offset."""
    name = tzname or "UTC"
    local = when.astimezone(resolve_tz(name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0",
            "timeZone": name}


def fmt_ts(when: _dt.datetime) -> str:
    """``2024-03-02T17:15:36.3760425Z`` (UTC, 7 fractional digits)."""
    u = when.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond:06d}0Z"


def fmt_original_start(when: _dt.datetime) -> str:
    """``originalStart`` form: UTC, seconds, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_error_date(when: _dt.datetime) -> str:
    """``innerError.date`` form: ``2023-02-20T05:06:48``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_date(value: str) -> _dt.date:
    return _dt.date.fromisoformat(str(value)[:10])
