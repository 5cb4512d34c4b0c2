"""Unit tests for core.plan.timezones: zone names, Graph date-time parsing and formatting."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tzlocal.windows_tz import win_tz

from core.plan.timezones import (
    MAX_UTC,
    MIN_UTC,
    UTC,
    TimeZoneError,
    ensure_aware,
    format_graph_datetime,
    is_sentinel,
    is_unset_zone,
    parse_graph_datetime,
    parse_utc,
    resolve_zone,
    windows_name_for,
)

from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def load(name: str) -> dict:
    path = PAYLOADS / name
    assert path.exists(), f"shared payload {name} is missing: ../shared/graph-payloads must sit beside the repo"
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- resolve_zone


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Eastern Standard Time", "America/New_York"),
        ("GMT Standard Time", "Europe/London"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("pacific standard time", "America/Los_Angeles"),
        ("  Pacific Standard Time ", "America/Los_Angeles"),
    ],
)
def test_windows_names_resolve_through_the_maintained_table(name: str, key: str) -> None:
    assert resolve_zone(name).key == key


@pytest.mark.parametrize("name", ["Europe/London", "America/New_York", "Australia/Sydney",
                                  "Asia/Kolkata", "America/Argentina/Buenos_Aires"])
def test_iana_names_resolve_directly(name: str) -> None:
    assert resolve_zone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["UTC", "utc", "tzone://Microsoft/Utc", "Etc/UTC", "Etc/GMT",
                                  "GMT", "Z", "Etc/Zulu"])
def test_every_utc_alias_gives_the_one_utc_zone(name: str) -> None:
    assert resolve_zone(name) is UTC


def test_every_windows_name_in_the_table_resolves_and_maps_back_to_the_same_zone() -> None:
    for name in win_tz:
        zone = resolve_zone(name)
        assert resolve_zone(windows_name_for(zone)) == zone, name


@pytest.mark.parametrize("name", [None, "", "   ", "tzone://Microsoft/Custom",
                                  "TZONE://MICROSOFT/CUSTOM", "Customized Time Zone"])
def test_unset_or_custom_zones_fall_back(name: str | None) -> None:
    assert is_unset_zone(name)
    assert resolve_zone(name) is UTC
    assert resolve_zone(name, fallback="Pacific Standard Time").key == "America/Los_Angeles"
    assert resolve_zone(name, fallback="Europe/London").key == "Europe/London"


@pytest.mark.parametrize("name", [None, "", "tzone://Microsoft/Custom"])
def test_unset_zone_without_fallback_raises(name: str | None) -> None:
    with pytest.raises(TimeZoneError, match="no fallback"):
        resolve_zone(name, fallback=None)
    with pytest.raises(TimeZoneError):
        resolve_zone(name, fallback="")


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Pacific Time", "Not A Zone",
                                  "../../etc/passwd", "localtime", "Factory"])
def test_unknown_names_raise_even_when_a_fallback_is_given(name: str) -> None:
    with pytest.raises(TimeZoneError) as err:
        resolve_zone(name, fallback="UTC")
    assert err.value.value == name
    assert name in str(err.value)


def test_non_string_zone_name_raises() -> None:
    with pytest.raises(TimeZoneError):
        resolve_zone(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- windows_name_for


@pytest.mark.parametrize(
    ("zone", "name"),
    [
        ("America/Los_Angeles", "Pacific Standard Time"),
        (ZoneInfo("Europe/London"), "GMT Standard Time"),
        (ZoneInfo("Australia/Sydney"), "AUS Eastern Standard Time"),
        ("US/Pacific", "Pacific Standard Time"),
        ("Asia/Kolkata", "India Standard Time"),
        (UTC, "UTC"),
        (ZoneInfo("Etc/UTC"), "UTC"),
        (timezone.utc, "UTC"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("pacific standard time", "Pacific Standard Time"),
    ],
)
def test_windows_name_for_writes_graph_names(zone: object, name: str) -> None:
    assert windows_name_for(zone) == name  # type: ignore[arg-type]


def test_windows_name_for_zone_without_windows_equivalent_raises() -> None:
    with pytest.raises(TimeZoneError, match="no Windows equivalent"):
        windows_name_for("Antarctica/Troll")


@pytest.mark.parametrize("zone", ["", "tzone://Microsoft/Custom", "Nowhere/Special",
                                  timezone(timedelta(hours=2))])
def test_windows_name_for_unset_unknown_or_fixed_offset_raises(zone: object) -> None:
    with pytest.raises(TimeZoneError):
        windows_name_for(zone)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- parse_graph_datetime


def test_graph_datetime_in_a_windows_zone_becomes_utc() -> None:
    value = {"dateTime": "2019-04-16T20:30:00.0000000", "timeZone": "Pacific Standard Time"}
    parsed = parse_graph_datetime(value)
    assert parsed == utc(2019, 4, 17, 3, 30)
    assert parsed.tzinfo is UTC


def test_graph_datetime_seven_fractional_digits_are_truncated_not_rounded() -> None:
    parsed = parse_graph_datetime({"dateTime": "2019-04-16T20:30:00.1234569", "timeZone": "UTC"})
    assert parsed == utc(2019, 4, 16, 20, 30, 0, 123456)


@pytest.mark.parametrize("text", ["2019-04-16T20:30:00", "2019-04-16T20:30", "2019-04-16T20:30:00.5"])
def test_graph_datetime_accepts_shorter_forms(text: str) -> None:
    assert parse_graph_datetime({"dateTime": text, "timeZone": "UTC"}).replace(microsecond=0) \
        == utc(2019, 4, 16, 20, 30)


def test_an_offset_inside_the_string_wins_over_the_zone_label() -> None:
    z = parse_graph_datetime({"dateTime": "2019-04-16T20:30:00.0000000Z",
                              "timeZone": "Pacific Standard Time"})
    assert z == utc(2019, 4, 16, 20, 30)
    offset = parse_graph_datetime({"dateTime": "2019-04-16T20:30:00+02:00", "timeZone": "UTC"})
    assert offset == utc(2019, 4, 16, 18, 30)


def test_pascal_case_keys_from_the_beta_sample_are_accepted() -> None:
    item = load("beta_events_delta_docs_page.json")["value"][0]
    assert parse_graph_datetime(item["start"]) == utc(2020, 2, 19, 10)
    assert parse_graph_datetime(item["end"]) == utc(2020, 2, 19, 11)


@pytest.mark.parametrize("zone", ["tzone://Microsoft/Custom", "", None])
def test_graph_datetime_with_custom_or_missing_zone_is_read_as_utc(zone: str | None) -> None:
    value = {"dateTime": "2024-03-05T09:00:00.0000000"}
    if zone is not None:
        value["timeZone"] = zone
    assert parse_graph_datetime(value) == utc(2024, 3, 5, 9)


@pytest.mark.parametrize(
    "value",
    [
        {"dateTime": "0001-01-01T00:00:00.0000000Z", "timeZone": "tzone://Microsoft/Utc"},
        {"dateTime": "0001-01-01T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
        {"dateTime": "0001-01-01T00:00:00", "timeZone": "Pacific Standard Time"},
    ],
)
def test_min_sentinel_maps_to_min_utc_whatever_the_zone(value: dict) -> None:
    parsed = parse_graph_datetime(value)
    assert parsed is MIN_UTC or parsed == MIN_UTC
    assert is_sentinel(parsed)


@pytest.mark.parametrize("zone", ["UTC", "Pacific Standard Time", "Tokyo Standard Time"])
def test_max_sentinel_maps_to_max_utc_without_overflow(zone: str) -> None:
    parsed = parse_graph_datetime({"dateTime": "9999-12-31T23:59:59.9999999", "timeZone": zone})
    assert parsed == MAX_UTC
    assert is_sentinel(parsed)


def test_ordinary_values_are_not_sentinels() -> None:
    assert not is_sentinel(utc(2024, 1, 1))


def test_dst_gap_and_fold_wall_clock_times_take_the_first_reading() -> None:
    # rule D2 keys depend on this being deterministic: fold=0 everywhere.
    gap = parse_graph_datetime({"dateTime": "2026-03-29T01:30:00", "timeZone": "GMT Standard Time"})
    assert gap == utc(2026, 3, 29, 1, 30)
    fold = parse_graph_datetime({"dateTime": "2026-10-25T01:30:00", "timeZone": "Europe/London"})
    assert fold == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"timeZone": "UTC"}, "no dateTime"),
        ({"dateTime": "yesterday", "timeZone": "UTC"}, "not an ISO 8601"),
        ({"dateTime": "2019-02-30T00:00:00", "timeZone": "UTC"}, "not a valid date-time"),
        ({"dateTime": "2019-04-16T25:00:00", "timeZone": "UTC"}, "not a valid date-time"),
        ({"dateTime": "2019-04-16T20:30:00", "timeZone": "Atlantis Standard Time"}, "unknown"),
        ({"dateTime": "2019-04-16T20:30:00", "timeZone": 5}, "must be a string"),
        ({"dateTime": 20190416, "timeZone": "UTC"}, "must be a string"),
        ({"dateTime": "2019-04-16T20:30:00+25:00", "timeZone": "UTC"}, "invalid UTC offset"),
    ],
)
def test_malformed_graph_datetimes_raise_with_context(value: dict, message: str) -> None:
    with pytest.raises(TimeZoneError, match=message):
        parse_graph_datetime(value)


def test_non_mapping_graph_datetime_raises() -> None:
    with pytest.raises(TimeZoneError, match="must be an object"):
        parse_graph_datetime("2019-04-16T20:30:00")  # type: ignore[arg-type]


def test_every_start_and_end_in_the_shared_payloads_parses() -> None:
    seen = 0
    for path in sorted(PAYLOADS.glob("*.json")):
        stack = [json.loads(path.read_text(encoding="utf-8"))]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, child in node.items():
                    if key.casefold() in {"start", "end"} and isinstance(child, dict):
                        assert parse_graph_datetime(child).tzinfo is UTC, path.name
                        seen += 1
                    else:
                        stack.append(child)
            elif isinstance(node, list):
                stack.extend(node)
    assert seen >= 20 or not PAYLOADS.exists()


# --------------------------------------------------------------------------- parse_utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T10:00:00Z", utc(2026, 1, 15, 10)),
        ("2019-04-16T20:30:00.1234567Z", utc(2019, 4, 16, 20, 30, 0, 123456)),
        ("2024-03-02T17:15:36.3760425Z", utc(2024, 3, 2, 17, 15, 36, 376042)),
        ("2026-01-15T12:00:00+02:00", utc(2026, 1, 15, 10)),
        ("2026-01-15T05:00:00-0500", utc(2026, 1, 15, 10)),
        ("2026-01-15t10:00:00z", utc(2026, 1, 15, 10)),
    ],
)
def test_parse_utc_reads_datetimeoffsets(text: str, expected: datetime) -> None:
    parsed = parse_utc(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_parse_utc_maps_the_organizer_response_time_sentinel() -> None:
    master = load("seriesmaster_create_response_daily_enddate.json")
    assert parse_utc(master["responseStatus"]["time"]) == MIN_UTC
    assert parse_utc(master["lastModifiedDateTime"]) == utc(2024, 3, 2, 17, 15, 36, 525655)


@pytest.mark.parametrize("text", ["2026-01-15T10:00:00", "2026-01-15", "", "soon", None])
def test_parse_utc_rejects_naive_or_malformed_values(text: object) -> None:
    with pytest.raises(TimeZoneError):
        parse_utc(text)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- format


def test_format_graph_datetime_writes_seven_digits_and_a_windows_name() -> None:
    dt = utc(2019, 4, 17, 3, 30, 0, 123456)
    assert format_graph_datetime(dt) == {"dateTime": "2019-04-17T03:30:00.1234560",
                                         "timeZone": "UTC"}
    assert format_graph_datetime(dt, "America/Los_Angeles") == {
        "dateTime": "2019-04-16T20:30:00.1234560", "timeZone": "Pacific Standard Time"}
    assert format_graph_datetime(dt, ZoneInfo("Australia/Sydney")) == {
        "dateTime": "2019-04-17T13:30:00.1234560", "timeZone": "AUS Eastern Standard Time"}
    assert format_graph_datetime(dt, "GMT Standard Time")["dateTime"] == "2019-04-17T04:30:00.1234560"


def test_format_graph_datetime_rejects_naive_datetimes() -> None:
    with pytest.raises(TimeZoneError, match="naive"):
        format_graph_datetime(datetime(2024, 1, 1))


def test_format_graph_datetime_round_trips_sentinels() -> None:
    for sentinel in (MIN_UTC, MAX_UTC):
        written = format_graph_datetime(sentinel, "Pacific Standard Time")
        assert parse_graph_datetime(written) == sentinel


def test_ensure_aware_accepts_aware_and_rejects_naive() -> None:
    dt = utc(2024, 1, 1)
    assert ensure_aware(dt) is dt
    with pytest.raises(TimeZoneError, match="start must be timezone-aware"):
        ensure_aware(datetime(2024, 1, 1), "start")
    with pytest.raises(TimeZoneError):
        ensure_aware("2024-01-01", "start")  # type: ignore[arg-type]


ZONES = ["UTC", "Pacific Standard Time", "GMT Standard Time", "AUS Eastern Standard Time",
         "Europe/Berlin", "America/New_York", "India Standard Time", "Asia/Kathmandu"]


@settings(max_examples=100, deadline=None)
@given(
    instant=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                         timezones=st.just(timezone.utc)),
    zone=st.sampled_from(ZONES),
)
def test_format_then_parse_round_trips_every_unambiguous_instant(instant: datetime,
                                                                 zone: str) -> None:
    assume(instant.astimezone(resolve_zone(zone)).fold == 0)  # Graph's format has no offset
    written = format_graph_datetime(instant, zone)
    assert len(written["dateTime"].rpartition(".")[2]) == 7
    assert instant.astimezone(resolve_zone(written["timeZone"])).utcoffset() \
        == instant.astimezone(resolve_zone(zone)).utcoffset()
    assert parse_graph_datetime(written) == instant


@settings(max_examples=100, deadline=None)
@given(instant=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                            timezones=st.just(timezone.utc)))
def test_parse_utc_round_trips_iso_strings(instant: datetime) -> None:
    assert parse_utc(instant.isoformat().replace("+00:00", "Z")) == instant
