"""Time zones and Graph date-time values: the one place that turns Graph's zone names
and date-time strings into aware Python datetimes and back.

Owns:
- resolving a zone name as Graph writes it (Windows name, IANA name, ``"UTC"``,
  ``"tzone://Microsoft/Utc"``, or an unset/custom marker) to a ``zoneinfo.ZoneInfo``;
- mapping an IANA zone back to a Windows name for writes;
- parsing Graph ``dateTimeTimeZone`` objects and ``DateTimeOffset`` strings, and
  formatting ``dateTimeTimeZone`` objects for writes.

Invariants:
- Pure: no I/O, no clock. Windows <-> IANA uses tzlocal's maintained CLDR table
  (``tzlocal.windows_tz``), never a hand-written one (STYLE rule 12).
- Every datetime returned is aware and in UTC (``ZoneInfo("UTC")``); every datetime
  accepted must be aware, else ``TimeZoneError``.
- Unknown zone names always raise ``TimeZoneError``; only *unset* names (``None``,
  ``""``, ``"tzone://Microsoft/Custom"``, ``"Customized Time Zone"``) fall back, and only
  when a fallback is given.
- Graph's sentinels are mapped to two fixed values, ``MIN_UTC`` (``0001-01-01``, e.g.
  ``responseStatus.time`` of an organizer) and ``MAX_UTC`` (``9999-12-31``, "never"),
  whatever zone they are labelled with, so callers can test them with ``is_sentinel``.
  They are not shifted by the zone (that would overflow) and round-trip through
  ``format_graph_datetime``.
- Fractions beyond microseconds (Graph sends 7 digits) are truncated, never rounded,
  so ``9999-12-31T23:59:59.9999999`` cannot overflow.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Final, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

__all__ = [
    "MAX_UTC",
    "MIN_UTC",
    "UTC",
    "TimeZoneError",
    "ensure_aware",
    "format_graph_datetime",
    "is_sentinel",
    "is_unset_zone",
    "parse_graph_datetime",
    "parse_utc",
    "resolve_zone",
    "windows_name_for",
]

UTC: Final = ZoneInfo("UTC")

#: Graph's "no value" date-time (``0001-01-01T00:00:00Z``), as an aware UTC datetime.
MIN_UTC: Final = datetime.min.replace(tzinfo=UTC)
#: Graph's "never"/"forever" date-time (``9999-12-31T23:59:59.9999999``), truncated to µs.
MAX_UTC: Final = datetime.max.replace(tzinfo=UTC)

_UTC_NAMES: Final = frozenset(
    {"utc", "tzone://microsoft/utc", "etc/utc", "etc/uct", "uct", "etc/zulu", "zulu",
     "z", "etc/universal", "universal", "gmt", "etc/gmt", "etc/gmt0", "etc/gmt+0",
     "etc/gmt-0", "etc/greenwich", "greenwich", "gmt0", "gmt+0", "gmt-0"}
)
# Graph's markers for "no usable zone here": a legacy custom zone (GRAPH.md section 1,
# event resource docs), the TZID Outlook writes for it, or nothing at all.
_UNSET_NAMES: Final = frozenset({"", "tzone://microsoft/custom", "customized time zone"})

# Names the system zone database may hold that describe the host, not a place.
_MACHINE_NAMES: Final = frozenset({"localtime", "factory", "posixrules"})

_WIN_TO_IANA: Final[Mapping[str, str]] = MappingProxyType(
    {name.casefold(): iana for name, iana in win_tz.items()}
)
_WIN_CANONICAL: Final[Mapping[str, str]] = MappingProxyType(
    {name.casefold(): name for name in win_tz}
)

_DATETIME_RE: Final = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:[T\ ](?P<hour>\d{2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
    )?
    (?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?
    """,
    re.VERBOSE | re.IGNORECASE,
)


class TimeZoneError(ValueError):
    """A zone name or a Graph date-time value that cannot be understood.

    Attributes:
        value: the offending input, as received.
    """

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


def is_unset_zone(name: str | None) -> bool:
    """True when ``name`` means "no usable zone" (None, empty, or a legacy custom zone)."""
    return name is None or name.strip().casefold() in _UNSET_NAMES


def resolve_zone(name: str | None, *, fallback: str | None = "UTC") -> ZoneInfo:
    """Resolve a zone name as Graph writes it to a ``ZoneInfo``.

    Windows names go through tzlocal's CLDR table (case-insensitively), IANA names are
    loaded directly, and every UTC alias (``"UTC"``, ``"tzone://Microsoft/Utc"``,
    ``"Etc/UTC"`` ...) gives ``ZoneInfo("UTC")``. Unset names (see ``is_unset_zone``)
    resolve to ``fallback``, itself resolved the same way.

    Raises:
        TimeZoneError: the name is not a known zone (whatever the fallback: a fallback
            covers a *missing* zone, not a wrong one), or it is unset and ``fallback``
            is None or itself unset.
    """
    if name is not None and not isinstance(name, str):
        raise TimeZoneError(f"zone name must be a string, got {type(name).__name__}", value=name)
    if is_unset_zone(name):
        if fallback is None or is_unset_zone(fallback):
            raise TimeZoneError(f"zone {name!r} is unset or custom and no fallback zone was given",
                                value=name)
        return resolve_zone(fallback, fallback=None)
    assert name is not None
    key = name.strip()
    folded = key.casefold()
    if folded in _UTC_NAMES:
        return UTC
    iana = _WIN_TO_IANA.get(folded)
    if iana is not None:
        return _load_iana(iana, original=name)
    return _load_iana(key, original=name)


def _load_iana(key: str, *, original: str) -> ZoneInfo:
    if key.casefold() in _MACHINE_NAMES:
        raise TimeZoneError(f"zone {original!r} is the host's setting or a placeholder, not a place",
                            value=original)
    try:
        zone = ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise TimeZoneError(f"unknown time zone {original!r} (neither a Windows nor an IANA name)",
                            value=original) from exc
    return UTC if zone.key in ("UTC", "Etc/UTC") else zone


def windows_name_for(zone: ZoneInfo | tzinfo | str) -> str:
    """The Windows zone name to write to Graph for ``zone`` (any UTC zone gives ``"UTC"``).

    Accepts a ``ZoneInfo``, ``datetime.timezone.utc``, an IANA name or a Windows name
    (returned in its canonical spelling).

    Raises:
        TimeZoneError: the zone has no Windows equivalent in the table, or is unset.
    """
    if isinstance(zone, str):
        folded = zone.strip().casefold()
        if folded in _UTC_NAMES:
            return "UTC"
        canonical = _WIN_CANONICAL.get(folded)
        if canonical is not None:
            return canonical
        key = resolve_zone(zone, fallback=None).key
    elif isinstance(zone, ZoneInfo):
        if zone.key is None:
            raise TimeZoneError("a ZoneInfo without a key has no Windows name", value=zone)
        key = zone.key
    elif zone is timezone.utc:
        return "UTC"
    else:
        raise TimeZoneError(f"cannot name zone {zone!r} for Graph: pass a ZoneInfo or a name",
                            value=zone)
    if key.casefold() in _UTC_NAMES:
        return "UTC"
    name = tz_win.get(key)
    if name is None:
        raise TimeZoneError(f"IANA zone {key!r} has no Windows equivalent in the CLDR table",
                            value=zone)
    return name


def ensure_aware(value: datetime, what: str = "datetime") -> datetime:
    """Return ``value`` unchanged if it is an aware datetime; raise otherwise.

    Raises:
        TimeZoneError: ``value`` is not a datetime, or is naive.
    """
    if not isinstance(value, datetime):
        raise TimeZoneError(f"{what} must be a datetime, got {type(value).__name__}", value=value)
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise TimeZoneError(f"{what} must be timezone-aware, got naive {value.isoformat()}",
                            value=value)
    return value


def is_sentinel(value: datetime) -> bool:
    """True for Graph's "no value" (``MIN_UTC``) and "never" (``MAX_UTC``) markers."""
    return value == MIN_UTC or value == MAX_UTC


def _parse_wall(text: str, *, what: str) -> tuple[datetime, timezone | None]:
    """Parse an ISO 8601 date-time: its wall-clock (naive) value and its offset if any."""
    if not isinstance(text, str):
        raise TimeZoneError(f"{what} must be a string, got {type(text).__name__}", value=text)
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise TimeZoneError(f"{what} {text!r} is not an ISO 8601 date-time", value=text)
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")  # truncate 7+ digits, never round
    try:
        wall = datetime(
            int(match["year"]), int(match["month"]), int(match["day"]),
            int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0),
            int(fraction),
        )
    except ValueError as exc:
        raise TimeZoneError(f"{what} {text!r} is not a valid date-time: {exc}", value=text) from exc
    offset_text = match["offset"]
    if offset_text is None:
        return wall, None
    if offset_text.upper() == "Z":
        return wall, timezone.utc
    sign = -1 if offset_text[0] == "-" else 1
    digits = offset_text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise TimeZoneError(f"{what} {text!r} has an invalid UTC offset", value=text)
    return wall, timezone(sign * timedelta(hours=hours, minutes=minutes))


def _sentinel_for(wall: datetime) -> datetime | None:
    if wall.date() == date.min:
        return MIN_UTC
    if wall.date() == date.max:
        return MAX_UTC
    return None


def _to_utc(wall: datetime, zone: tzinfo, *, what: str, original: object) -> datetime:
    try:
        return wall.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError as exc:
        raise TimeZoneError(f"{what} {original!r} is out of range once converted to UTC",
                            value=original) from exc


def parse_graph_datetime(value: Mapping[str, object]) -> datetime:
    """Parse a Graph ``dateTimeTimeZone`` object to an aware UTC datetime.

    ``{"dateTime": "2019-04-16T20:30:00.0000000", "timeZone": "Pacific Standard Time"}``
    -> ``2019-04-17 03:30 UTC``. Keys are matched case-insensitively (a beta doc sample
    writes ``DateTime``/``TimeZone``). An offset or ``Z`` inside ``dateTime`` wins over
    ``timeZone``; otherwise the wall-clock time is read in ``timeZone`` (an unset or
    custom zone is read as UTC, which is what Graph reports times in by default).
    The sentinels ``0001-01-01...`` and ``9999-12-31...`` give ``MIN_UTC``/``MAX_UTC``.

    Raises:
        TimeZoneError: not a mapping, ``dateTime`` missing or malformed, or an unknown zone.
    """
    if not isinstance(value, Mapping):
        raise TimeZoneError(f"dateTimeTimeZone must be an object, got {type(value).__name__}",
                            value=value)
    fields = {str(k).casefold(): v for k, v in value.items()}
    text = fields.get("datetime")
    if text is None:
        raise TimeZoneError(f"dateTimeTimeZone {dict(value)!r} has no dateTime", value=value)
    zone_name = fields.get("timezone")
    if zone_name is not None and not isinstance(zone_name, str):
        raise TimeZoneError(f"dateTimeTimeZone timeZone must be a string, got {zone_name!r}",
                            value=value)
    wall, offset = _parse_wall(text, what="dateTime")  # type: ignore[arg-type]
    sentinel = _sentinel_for(wall)
    if sentinel is not None:
        return sentinel
    zone: tzinfo = offset if offset is not None else resolve_zone(zone_name, fallback="UTC")
    return _to_utc(wall, zone, what="dateTime", original=dict(value))


def parse_utc(value: str) -> datetime:
    """Parse a Graph ``DateTimeOffset`` string (``"2026-01-15T10:00:00Z"``) to aware UTC.

    Used for ``originalStart``, ``lastModifiedDateTime``, ``responseStatus.time``...
    Up to 7 fractional digits; the sentinels give ``MIN_UTC``/``MAX_UTC``.

    Raises:
        TimeZoneError: malformed, or without ``Z``/offset (a DateTimeOffset is never naive).
    """
    wall, offset = _parse_wall(value, what="DateTimeOffset")
    sentinel = _sentinel_for(wall)
    if sentinel is not None:
        return sentinel
    if offset is None:
        raise TimeZoneError(f"DateTimeOffset {value!r} has no 'Z' or UTC offset", value=value)
    return _to_utc(wall, offset, what="DateTimeOffset", original=value)


def format_graph_datetime(dt: datetime, zone: ZoneInfo | tzinfo | str = "UTC") -> dict[str, str]:
    """Format an aware datetime as a Graph ``dateTimeTimeZone`` for a write.

    The wall-clock time in ``zone`` with 7 fractional digits and no offset, and the
    zone's Windows name: ``{"dateTime": "2019-04-16T13:30:00.0000000",
    "timeZone": "Pacific Standard Time"}``. ``MIN_UTC``/``MAX_UTC`` are written as the
    sentinels' own wall-clock text, unshifted.

    Raises:
        TimeZoneError: ``dt`` is naive, or ``zone`` is unknown or has no Windows name.
    """
    ensure_aware(dt, "dt")
    windows = windows_name_for(zone)
    if dt == MIN_UTC:
        return {"dateTime": "0001-01-01T00:00:00.0000000", "timeZone": windows}
    if dt == MAX_UTC:
        return {"dateTime": "9999-12-31T23:59:59.9999999", "timeZone": windows}
    target = zone if isinstance(zone, tzinfo) else resolve_zone(zone, fallback="UTC")
    try:
        local = dt.astimezone(target)
    except OverflowError as exc:
        raise TimeZoneError(f"{dt.isoformat()} is out of range in zone {windows!r}",
                            value=dt) from exc
    wall = local.replace(tzinfo=None, microsecond=0).isoformat(timespec="seconds")
    text = f"{wall}.{local.microsecond * 10:07d}"
    return {"dateTime": text, "timeZone": windows}
