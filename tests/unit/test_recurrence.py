"""Unit and property tests for core.plan.recurrence: Graph's patternedRecurrence, expansion
in the series' own zone, window edges, numbered ranges (D4) and series splits (O2)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.plan import recurrence
from core.plan.recurrence import (
    DAYS_OF_WEEK,
    INDEXES,
    Pattern,
    Range,
    Recurrence,
    RecurrenceError,
    expand,
    first_occurrence,
    last_occurrence,
    occurrence_dates,
    occurrence_end,
    occurrence_id_date,
    occurrence_id_for,
    occurrence_start_on,
    occurrences_before,
    parse_recurrence,
    restart_from,
    series_zone,
    split_occurrence_id,
    to_graph,
    truncate_before,
)
from core.plan.timezones import UTC, parse_graph_datetime, parse_utc, resolve_zone

from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
PACIFIC = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def load(name: str) -> dict:
    path = PAYLOADS / name
    assert path.exists(), f"shared payload {name} is missing: ../shared/graph-payloads must sit beside the repo"
    return json.loads(path.read_text(encoding="utf-8"))


def rec(pattern: dict, range_: dict) -> Recurrence:
    return parse_recurrence({"pattern": pattern, "range": range_})


def local_starts(starts: tuple[datetime, ...], zone: ZoneInfo) -> list[str]:
    return [s.astimezone(zone).strftime("%Y-%m-%d %H:%M") for s in starts]


def dates_of(starts: tuple[datetime, ...], zone: ZoneInfo) -> list[date]:
    return [s.astimezone(zone).date() for s in starts]


def everything(r: Recurrence, first_start: datetime, duration: timedelta = HOUR,
               *, years: int = 6, is_all_day: bool = False) -> tuple[datetime, ...]:
    """Every occurrence up to ``years`` after the start (all of them for finite series)."""
    return expand(r, first_start, duration, first_start - 3 * DAY,
                  first_start + timedelta(days=366 * years), is_all_day=is_all_day)


# --------------------------------------------------------------------------- values


def test_values_are_frozen_and_hashable() -> None:
    r = rec({"type": "daily", "interval": 1}, {"type": "noEnd", "startDate": "2026-01-01"})
    with pytest.raises(AttributeError):
        r.pattern.interval = 2  # type: ignore[misc]
    assert hash(r) == hash(rec({"type": "daily", "interval": 1},
                               {"type": "noEnd", "startDate": "2026-01-01"}))


# --------------------------------------------------------------------------- parsing


def test_normalised_weekly_response_parses_like_its_minimal_request() -> None:
    request = load("seriesmaster_create_request_weekly_docs.json")["recurrence"]
    response = load("seriesmaster_create_response_weekly_docs.json")["recurrence"]
    sent, got = parse_recurrence(request), parse_recurrence(response)
    assert sent.pattern == got.pattern  # "Monday" sent, "monday" returned
    assert got.pattern.days_of_week == ("monday",)
    assert got.range == Range("endDate", date(2017, 9, 4), date(2017, 12, 31), 0,
                              "Pacific Standard Time")
    assert sent.range.time_zone == ""  # defaults to the event's zone


def test_normalised_daily_response_treats_zero_fields_as_unset() -> None:
    got = parse_recurrence(load("seriesmaster_create_response_daily_enddate.json")["recurrence"])
    assert got.pattern == Pattern("daily", 1)
    assert got.range == Range("endDate", date(2024, 3, 5), date(2024, 6, 1), 0, "UTC")


def test_days_are_case_insensitive_deduplicated_and_in_week_order() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["Friday", "MONDAY", "monday"]},
            {"type": "noEnd", "startDate": "2026-01-05"})
    assert r.pattern.days_of_week == ("monday", "friday")


def test_fields_a_type_ignores_are_reset_so_equal_meaning_compares_equal() -> None:
    noisy = rec({"type": "Daily", "interval": 2, "daysOfWeek": ["monday"], "dayOfMonth": 4,
                 "month": 3, "index": "last", "firstDayOfWeek": "monday"},
                {"type": "noEnd", "startDate": "2026-01-05", "endDate": "0001-01-01",
                 "numberOfOccurrences": 0})
    assert noisy == rec({"type": "daily", "interval": 2},
                        {"type": "noEnd", "startDate": "2026-01-05"})


def test_end_date_is_ignored_unless_the_range_is_end_date() -> None:
    # Older Outlook payloads show noEnd ranges with endDate "0001-01-01" (GRAPH.md section 4).
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-01-01", "endDate": "garbage",
             "numberOfOccurrences": 3})
    assert r.range.end_date is None
    assert r.range.number_of_occurrences == 3


def test_pascal_case_keys_are_accepted() -> None:
    r = parse_recurrence({"Pattern": {"Type": "weekly", "Interval": 1, "DaysOfWeek": ["Monday"]},
                          "Range": {"Type": "NoEnd", "StartDate": "2026-01-05"}})
    assert r.pattern.type == "weekly" and r.range.type == "noEnd"


@pytest.mark.parametrize(
    ("pattern", "range_", "field"),
    [
        ({"type": "hourly", "interval": 1}, None, "pattern.type"),
        ({"interval": 1}, None, "pattern.type"),
        ({"type": "daily", "interval": 0}, None, "pattern.interval"),
        ({"type": "daily"}, None, "pattern.interval"),
        ({"type": "daily", "interval": -1}, None, "pattern.interval"),
        ({"type": "daily", "interval": "1"}, None, "pattern.interval"),
        ({"type": "daily", "interval": True}, None, "pattern.interval"),
        ({"type": "daily", "interval": 1.5}, None, "pattern.interval"),
        ({"type": "weekly", "interval": 1}, None, "pattern.daysOfWeek"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": []}, None, "pattern.daysOfWeek"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": ["funday"]}, None, "pattern.daysOfWeek"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": "monday"}, None, "pattern.daysOfWeek"),
        # "Even if a field is ignored, it is still validated" (GRAPH.md section 4)
        ({"type": "daily", "interval": 1, "daysOfWeek": ["funday"]}, None, "pattern.daysOfWeek"),
        ({"type": "daily", "interval": 1, "month": 13}, None, "pattern.month"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "x"},
         None, "pattern.firstDayOfWeek"),
        ({"type": "absoluteMonthly", "interval": 1}, None, "pattern.dayOfMonth"),
        ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 32}, None, "pattern.dayOfMonth"),
        ({"type": "relativeMonthly", "interval": 1}, None, "pattern.daysOfWeek"),
        ({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"},
         None, "pattern.index"),
        ({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 3}, None, "pattern.month"),
        ({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 30, "month": 2},
         None, "pattern.dayOfMonth"),
        ({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 31, "month": 4},
         None, "pattern.dayOfMonth"),
        ({"type": "relativeYearly", "interval": 1, "daysOfWeek": ["monday"]}, None,
         "pattern.month"),
        (None, {"type": "forever", "startDate": "2026-01-01"}, "range.type"),
        (None, {"startDate": "2026-01-01"}, "range.type"),
        (None, {"type": "noEnd"}, "range.startDate"),
        (None, {"type": "noEnd", "startDate": "2026-13-01"}, "range.startDate"),
        (None, {"type": "noEnd", "startDate": "01/02/2026"}, "range.startDate"),
        (None, {"type": "endDate", "startDate": "2026-01-01"}, "range.endDate"),
        (None, {"type": "endDate", "startDate": "2026-01-02", "endDate": "2026-01-01"},
         "range.endDate"),
        (None, {"type": "numbered", "startDate": "2026-01-01"}, "range.numberOfOccurrences"),
        (None, {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": -2},
         "range.numberOfOccurrences"),
        (None, {"type": "noEnd", "startDate": "2026-01-01", "recurrenceTimeZone": "Mars Time"},
         "range.recurrenceTimeZone"),
    ],
)
def test_invalid_recurrences_raise_naming_the_field(pattern: dict | None, range_: dict | None,
                                                    field: str) -> None:
    pattern = pattern or {"type": "daily", "interval": 1}
    range_ = range_ or {"type": "noEnd", "startDate": "2026-01-01"}
    with pytest.raises(RecurrenceError) as err:
        rec(pattern, range_)
    assert err.value.field == field
    assert field.split(".")[1] in str(err.value)


def test_a_recurrence_without_any_occurrence_is_refused() -> None:
    # Weekly on Monday from a Tuesday to the Saturday: Exchange's ErrorRecurrenceHasNoOccurrence.
    with pytest.raises(RecurrenceError, match="no occurrence") as err:
        rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "endDate", "startDate": "2026-01-06", "endDate": "2026-01-10"})
    assert err.value.field == "range.endDate"


@pytest.mark.parametrize("obj", [None, [], "weekly", {"pattern": None, "range": {}},
                                 {"pattern": {"type": "daily", "interval": 1}}])
def test_non_recurrence_objects_raise(obj: object) -> None:
    with pytest.raises(RecurrenceError):
        parse_recurrence(obj)  # type: ignore[arg-type]


def test_constructors_validate_too() -> None:
    with pytest.raises(RecurrenceError, match="startDate must be a date"):
        Range("noEnd", datetime(2026, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(RecurrenceError):
        Recurrence({"type": "daily"}, Range("noEnd", date(2026, 1, 1)))  # type: ignore[arg-type]
    assert Pattern("WEEKLY", 1, ["Monday"]).days_of_week == ("monday",)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- to_graph


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"type": "daily", "interval": 3, "daysOfWeek": ["monday"]},
         {"type": "daily", "interval": 3}),
        ({"type": "weekly", "interval": 2, "daysOfWeek": ["Friday", "monday"],
          "firstDayOfWeek": "monday"},
         {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "friday"],
          "firstDayOfWeek": "monday"}),
        ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31, "index": "last"},
         {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}),
        ({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
         {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"}),
        ({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
         {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29}),
        ({"type": "relativeYearly", "interval": 1, "daysOfWeek": ["thursday"], "month": 11,
          "index": "fourth"},
         {"type": "relativeYearly", "interval": 1, "month": 11, "daysOfWeek": ["thursday"],
          "index": "fourth"}),
    ],
)
def test_to_graph_writes_only_the_fields_each_pattern_uses(pattern: dict, expected: dict) -> None:
    written = to_graph(rec(pattern, {"type": "noEnd", "startDate": "2024-02-29"}))
    assert written["pattern"] == expected
    assert written["range"] == {"type": "noEnd", "startDate": "2024-02-29"}


def test_to_graph_numbered_range_stays_numbered_rule_d4() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 7,
             "recurrenceTimeZone": "Europe/London"})
    assert to_graph(r)["range"] == {"type": "numbered", "startDate": "2026-01-01",
                                    "numberOfOccurrences": 7,
                                    "recurrenceTimeZone": "GMT Standard Time"}
    assert parse_recurrence(to_graph(r)).range.number_of_occurrences == 7


def test_to_graph_end_date_range_and_unset_custom_zone() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-01-01", "endDate": "2026-02-01",
             "recurrenceTimeZone": "tzone://Microsoft/Custom"})
    assert to_graph(r)["range"] == {"type": "endDate", "startDate": "2026-01-01",
                                    "endDate": "2026-02-01"}


def test_to_graph_zone_without_windows_name_raises() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "noEnd", "startDate": "2026-01-01", "recurrenceTimeZone": "Antarctica/Troll"})
    with pytest.raises(RecurrenceError) as err:
        to_graph(r)
    assert err.value.field == "range.recurrenceTimeZone"


# --------------------------------------------------------------------------- pattern types


def test_daily_every_third_day_with_end_date_inclusive() -> None:
    r = rec({"type": "daily", "interval": 3},
            {"type": "endDate", "startDate": "2026-01-01", "endDate": "2026-01-10",
             "recurrenceTimeZone": "UTC"})
    starts = everything(r, utc(2026, 1, 1, 9))
    assert starts == (utc(2026, 1, 1, 9), utc(2026, 1, 4, 9), utc(2026, 1, 7, 9),
                      utc(2026, 1, 10, 9))


def test_weekly_several_days_every_other_week() -> None:
    r = rec({"type": "weekly", "interval": 2, "daysOfWeek": ["tuesday", "thursday"]},
            {"type": "numbered", "startDate": "2026-01-06", "numberOfOccurrences": 5,
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2026, 1, 6, 9)), UTC) == [
        date(2026, 1, 6), date(2026, 1, 8), date(2026, 1, 20), date(2026, 1, 22),
        date(2026, 2, 3)]


@pytest.mark.parametrize(
    ("first_day", "expected"),
    [
        # Weeks Monday..Sunday: week of Jan 1 holds Mon 1 and Sun 7; two weeks on, 15 and 21.
        ("monday", [date(2024, 1, 1), date(2024, 1, 7), date(2024, 1, 15), date(2024, 1, 21)]),
        # Weeks Sunday..Saturday: week of Jan 1 starts Sun Dec 31 (before the start).
        ("sunday", [date(2024, 1, 1), date(2024, 1, 14), date(2024, 1, 15), date(2024, 1, 28)]),
    ],
)
def test_weekly_interval_counts_weeks_from_first_day_of_week(first_day: str,
                                                             expected: list[date]) -> None:
    r = rec({"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "monday"],
             "firstDayOfWeek": first_day},
            {"type": "numbered", "startDate": "2024-01-01", "numberOfOccurrences": 4,
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2024, 1, 1, 12)), UTC) == expected


def test_weekly_start_date_need_not_be_an_occurrence() -> None:
    # startDate Wednesday, weekly on Monday: the first occurrence is the next Monday.
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "numbered", "startDate": "2026-01-07", "numberOfOccurrences": 2,
             "recurrenceTimeZone": "UTC"})
    first = utc(2026, 1, 7, 10)
    assert everything(r, first) == (utc(2026, 1, 12, 10), utc(2026, 1, 19, 10))
    assert first_occurrence(r, first) == utc(2026, 1, 12, 10)
    # Graph may also report the master at its first real occurrence: accepted too.
    assert everything(r, utc(2026, 1, 12, 10)) == (utc(2026, 1, 12, 10), utc(2026, 1, 19, 10))


def test_absolute_monthly_day_31_falls_on_the_last_day_of_shorter_months() -> None:
    r = rec({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
            {"type": "numbered", "startDate": "2024-01-31", "numberOfOccurrences": 5,
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2024, 1, 31, 8)), UTC) == [
        date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30),
        date(2024, 5, 31)]


def test_absolute_monthly_every_other_month_from_a_later_start_day() -> None:
    # Day 5 from the 10th of January: January's 5th has passed, so March, May...
    r = rec({"type": "absoluteMonthly", "interval": 2, "dayOfMonth": 5},
            {"type": "numbered", "startDate": "2026-01-10", "numberOfOccurrences": 3,
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2026, 1, 10, 8)), UTC) == [
        date(2026, 3, 5), date(2026, 5, 5), date(2026, 7, 5)]


@pytest.mark.parametrize(
    ("days", "index", "expected"),
    [
        (["tuesday"], "second", [date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10)]),
        (["friday"], "last", [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]),
        (["monday", "tuesday", "wednesday", "thursday", "friday"], "first",
         [date(2026, 1, 1), date(2026, 2, 2), date(2026, 3, 2)]),
        (["monday", "tuesday", "wednesday", "thursday", "friday"], "last",
         [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 31)]),
        (["saturday", "sunday"], "second", [date(2026, 1, 4), date(2026, 2, 7), date(2026, 3, 7)]),
        (["monday"], "fourth", [date(2026, 1, 26), date(2026, 2, 23), date(2026, 3, 23)]),
    ],
)
def test_relative_monthly_falls_on_the_indexed_day_satisfying_the_pattern(
        days: list[str], index: str, expected: list[date]) -> None:
    r = rec({"type": "relativeMonthly", "interval": 1, "daysOfWeek": days, "index": index},
            {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 3,
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2026, 1, 1, 12)), UTC) == expected


def test_absolute_yearly_february_29_falls_on_the_28th_in_common_years() -> None:
    r = rec({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
            {"type": "numbered", "startDate": "2024-02-29", "numberOfOccurrences": 5,
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2024, 2, 29, 0), is_all_day=True, years=6), UTC) == [
        date(2024, 2, 29), date(2025, 2, 28), date(2026, 2, 28), date(2027, 2, 28),
        date(2028, 2, 29)]


def test_absolute_yearly_every_other_year() -> None:
    r = rec({"type": "absoluteYearly", "interval": 2, "dayOfMonth": 15, "month": 3},
            {"type": "endDate", "startDate": "2024-01-01", "endDate": "2030-12-31",
             "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(r, utc(2024, 1, 1, 9), years=8), UTC) == [
        date(2024, 3, 15), date(2026, 3, 15), date(2028, 3, 15), date(2030, 3, 15)]


def test_relative_yearly_fourth_thursday_of_november_and_last_monday_of_may() -> None:
    thanksgiving = rec({"type": "relativeYearly", "interval": 1, "daysOfWeek": ["thursday"],
                        "month": 11, "index": "fourth"},
                       {"type": "numbered", "startDate": "2025-01-01", "numberOfOccurrences": 3,
                        "recurrenceTimeZone": "Eastern Standard Time"})
    first = datetime(2025, 1, 1, tzinfo=NEW_YORK)
    assert dates_of(everything(thanksgiving, first, DAY, is_all_day=True), NEW_YORK) == [
        date(2025, 11, 27), date(2026, 11, 26), date(2027, 11, 25)]
    memorial = rec({"type": "relativeYearly", "interval": 1, "daysOfWeek": ["monday"],
                    "month": 5, "index": "last"},
                   {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 2,
                    "recurrenceTimeZone": "UTC"})
    assert dates_of(everything(memorial, utc(2026, 1, 1, 9)), UTC) == [
        date(2026, 5, 25), date(2027, 5, 31)]


# --------------------------------------------------------------------------- DST and zones


def test_london_0900_stays_0900_local_in_winter_and_summer() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "noEnd", "startDate": "2026-01-05", "recurrenceTimeZone": "Europe/London"})
    starts = expand(r, datetime(2026, 1, 5, 9, tzinfo=LONDON), HOUR,
                    utc(2026, 3, 16), utc(2026, 4, 7))
    assert starts == (utc(2026, 3, 16, 9), utc(2026, 3, 23, 9),  # GMT
                      utc(2026, 3, 30, 8), utc(2026, 4, 6, 8))   # BST from 29 March
    assert set(local_starts(starts, LONDON)) == {
        "2026-03-16 09:00", "2026-03-23 09:00", "2026-03-30 09:00", "2026-04-06 09:00"}


def test_new_york_daily_across_the_march_transition() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-03-06", "endDate": "2026-03-10",
             "recurrenceTimeZone": "America/New_York"})
    starts = everything(r, datetime(2026, 3, 6, 9, tzinfo=NEW_YORK))
    assert [s.hour for s in starts] == [14, 14, 13, 13, 13]  # EST to 7 March, EDT from the 8th
    assert {s.astimezone(NEW_YORK).hour for s in starts} == {9}


def test_sydney_daily_across_both_southern_transitions() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["saturday", "monday"]},
            {"type": "noEnd", "startDate": "2026-04-04",
             "recurrenceTimeZone": "AUS Eastern Standard Time"})
    first = datetime(2026, 4, 4, 9, tzinfo=SYDNEY)
    april = expand(r, first, HOUR, utc(2026, 4, 1), utc(2026, 4, 7))
    assert april == (utc(2026, 4, 3, 22), utc(2026, 4, 5, 23))  # AEDT, then AEST (5 April)
    october = expand(r, first, HOUR, utc(2026, 10, 1), utc(2026, 10, 6))
    assert october == (utc(2026, 10, 2, 23), utc(2026, 10, 4, 22))  # AEST, then AEDT (4 Oct)


def test_windows_named_series_zone_expands_in_that_zone() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-10-31", "numberOfOccurrences": 2,
             "recurrenceTimeZone": "Pacific Standard Time"})
    # The master start arrives in UTC (no Prefer header): 07:30 PDT on 31 October.
    first = parse_graph_datetime({"dateTime": "2026-10-31T14:30:00.0000000", "timeZone": "UTC"})
    starts = everything(r, first)
    assert local_starts(starts, PACIFIC) == ["2026-10-31 07:30", "2026-11-01 07:30"]
    assert starts == (utc(2026, 10, 31, 14, 30), utc(2026, 11, 1, 15, 30))  # PDT, then PST
    assert series_zone(r).key == "America/Los_Angeles"


def test_wall_clock_time_in_a_dst_gap_moves_forward_by_the_gap() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-03-28", "endDate": "2026-03-30",
             "recurrenceTimeZone": "Europe/London"})
    starts = everything(r, datetime(2026, 3, 28, 1, 30, tzinfo=LONDON), timedelta(minutes=30))
    # 01:30 does not exist on 29 March: it is read as 02:30 BST (01:30 UTC).
    assert starts == (utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30))


# RFC 5545 3.3.5 (and the emulator, GRAPH.md has no recorded counter-example): a wall-clock
# time the clocks skip is read with the offset before the gap, i.e. moved forward by the
# gap's length. America/Los_Angeles skips 02:00-03:00 on 14 March 2027.
def test_series_whose_own_start_is_in_the_dst_gap_starts_and_stays_at_the_moved_time() -> None:
    """Found by the emulator property: daily from 02:00 PST on 14 March 2027 (no such time)."""
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2027-03-14", "numberOfOccurrences": 3,
             "recurrenceTimeZone": "Pacific Standard Time"})
    in_gap = datetime(2027, 3, 14, 2, 0, tzinfo=PACIFIC)  # aware, but does not exist
    starts = everything(r, in_gap)
    # 02:00 is 03:00 PDT (10:00 UTC), the instant Graph returns as the master's start; the
    # series keeps that wall-clock time, so it expands exactly as from the real instant.
    assert starts == everything(r, utc(2027, 3, 14, 10)) == everything(r, datetime(2027, 3, 14, 3, tzinfo=PACIFIC))
    assert local_starts(starts, PACIFIC) == ["2027-03-14 03:00", "2027-03-15 03:00", "2027-03-16 03:00"]
    assert first_occurrence(r, in_gap) == utc(2027, 3, 14, 10)
    assert last_occurrence(r, in_gap) == utc(2027, 3, 16, 10)


def test_an_occurrence_starting_in_the_dst_gap_moves_whole_and_keeps_its_length() -> None:
    """Daily 02:30-03:30 Pacific: on 14 March it is 03:30-04:30 PDT (10:30-11:30 UTC), as the
    emulator's instance is, not the zero-length 03:30-03:30 the wall-clock end would give."""
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2027-03-12", "endDate": "2027-03-14",
             "recurrenceTimeZone": "Pacific Standard Time"})
    first = datetime(2027, 3, 12, 2, 30, tzinfo=PACIFIC)
    assert everything(r, first) == (utc(2027, 3, 12, 10, 30), utc(2027, 3, 13, 10, 30), utc(2027, 3, 14, 10, 30))
    # a window that starts after the moved start but before its end still touches it
    assert expand(r, first, HOUR, utc(2027, 3, 14, 11), utc(2027, 3, 20)) == (utc(2027, 3, 14, 10, 30),)
    # boundary-inclusive at the end (GRAPH.md section 1), nothing after it
    assert expand(r, first, HOUR, utc(2027, 3, 14, 11, 30), utc(2027, 3, 20)) == (utc(2027, 3, 14, 10, 30),)
    assert expand(r, first, HOUR, utc(2027, 3, 14, 11, 31), utc(2027, 3, 20)) == ()
    assert occurrence_end(utc(2027, 3, 14, 10, 30), HOUR, PACIFIC) == utc(2027, 3, 14, 11, 30)


def test_a_range_ending_at_the_occurrence_in_the_dst_gap() -> None:
    """An endDate range whose last date is the gap day ends at the moved occurrence; a window
    ending exactly at its moved start includes it, one ending at the skipped time does not."""
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2027-03-10", "endDate": "2027-03-14",
             "recurrenceTimeZone": "America/Los_Angeles"})
    first = datetime(2027, 3, 10, 2, 30, tzinfo=PACIFIC)
    assert last_occurrence(r, first) == utc(2027, 3, 14, 10, 30)  # 03:30 PDT
    window_start = utc(2027, 3, 14)
    assert expand(r, first, timedelta(minutes=30), window_start, utc(2027, 3, 14, 10, 30)) == (utc(2027, 3, 14, 10, 30),)
    # a window ending a minute before the moved start (10:29 UTC) does not reach it
    assert expand(r, first, timedelta(minutes=30), window_start, utc(2027, 3, 14, 10, 29)) == ()


def test_ambiguous_wall_clock_time_takes_its_first_instant() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-10-24", "endDate": "2026-10-26",
             "recurrenceTimeZone": "GMT Standard Time"})
    starts = everything(r, datetime(2026, 10, 24, 1, 30, tzinfo=LONDON))
    assert starts == (utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30))


@pytest.mark.parametrize("zone_name", ["", "tzone://Microsoft/Custom", None])
def test_unset_or_custom_series_zone_falls_back_to_the_start_zone(zone_name: str | None) -> None:
    range_ = {"type": "numbered", "startDate": "2026-03-27", "numberOfOccurrences": 3}
    if zone_name is not None:
        range_["recurrenceTimeZone"] = zone_name
    r = rec({"type": "daily", "interval": 1}, range_)
    starts = everything(r, datetime(2026, 3, 27, 9, tzinfo=LONDON))
    assert local_starts(starts, LONDON) == ["2026-03-27 09:00", "2026-03-28 09:00",
                                            "2026-03-29 09:00"]
    assert series_zone(r, datetime(2026, 3, 27, 9, tzinfo=LONDON)) == LONDON
    assert everything(r, utc(2026, 3, 27, 9)) == (  # a plain UTC start expands in UTC
        utc(2026, 3, 27, 9), utc(2026, 3, 28, 9), utc(2026, 3, 29, 9))


def test_unset_series_zone_with_a_fixed_offset_start_raises() -> None:
    r = rec({"type": "daily", "interval": 1}, {"type": "noEnd", "startDate": "2026-01-01"})
    with pytest.raises(RecurrenceError) as err:
        expand(r, datetime(2026, 1, 1, 9, tzinfo=timezone(HOUR)), HOUR,
               utc(2026, 1, 1), utc(2026, 1, 2))
    assert err.value.field == "range.recurrenceTimeZone"
    with pytest.raises(RecurrenceError):
        series_zone(r)


def test_end_date_is_inclusive_in_the_series_zone() -> None:
    # 09:00 in Sydney on the end date is 22:00 UTC the day before: still included.
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-03-08", "endDate": "2026-03-10",
             "recurrenceTimeZone": "Australia/Sydney"})
    starts = everything(r, datetime(2026, 3, 8, 9, tzinfo=SYDNEY))
    assert dates_of(starts, SYDNEY) == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert starts[-1] == utc(2026, 3, 9, 22)
    # 20:00 in Los Angeles on the end date is the next day in UTC: included too.
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-03-09", "endDate": "2026-03-10",
             "recurrenceTimeZone": "Pacific Standard Time"})
    assert everything(r, datetime(2026, 3, 9, 20, tzinfo=PACIFIC))[-1] == utc(2026, 3, 11, 3)


def test_a_start_that_does_not_match_start_date_raises() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "noEnd", "startDate": "2026-01-05", "recurrenceTimeZone": "UTC"})
    with pytest.raises(RecurrenceError) as err:
        expand(r, utc(2026, 1, 9, 9), HOUR, utc(2026, 1, 1), utc(2026, 2, 1))
    assert err.value.field == "range.startDate"
    assert "2026-01-05" in str(err.value)


# --------------------------------------------------------------------------- all-day


def test_all_day_series_are_dates_starting_at_local_midnight() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "endDate", "startDate": "2026-03-28", "endDate": "2026-03-30",
             "recurrenceTimeZone": "Europe/London"})
    # Graph reports all-day starts as midnight in the requested zone (here UTC).
    first = parse_graph_datetime({"dateTime": "2026-03-28T00:00:00.0000000", "timeZone": "UTC"})
    starts = everything(r, first, DAY, is_all_day=True)
    assert starts == (utc(2026, 3, 28), utc(2026, 3, 29), utc(2026, 3, 29, 23))
    assert local_starts(starts, LONDON) == ["2026-03-28 00:00", "2026-03-29 00:00",
                                            "2026-03-30 00:00"]


def test_all_day_start_reported_as_utc_midnight_for_a_zone_behind_utc() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["friday"]},
            {"type": "numbered", "startDate": "2026-01-02", "numberOfOccurrences": 2,
             "recurrenceTimeZone": "Pacific Standard Time"})
    first = utc(2026, 1, 2)  # midnight "floating", i.e. 16:00 on the 1st in Los Angeles
    starts = everything(r, first, DAY, is_all_day=True)
    assert starts == (utc(2026, 1, 2, 8), utc(2026, 1, 9, 8))  # midnight PST in UTC


def test_all_day_occurrence_lasts_midnight_to_midnight_on_a_23_hour_day() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-03-29", "numberOfOccurrences": 1,
             "recurrenceTimeZone": "Europe/London"})
    first = datetime(2026, 3, 29, tzinfo=LONDON)
    # 29 March in London ends at 23:00 UTC (midnight BST): touching that is included...
    assert expand(r, first, DAY, utc(2026, 3, 29, 23), utc(2026, 3, 30, 12),
                  is_all_day=True) == (utc(2026, 3, 29),)
    # ...one second later it is over, though 24 elapsed hours would reach 00:00 UTC.
    assert expand(r, first, DAY, utc(2026, 3, 29, 23, 0, 1), utc(2026, 3, 30, 12),
                  is_all_day=True) == ()


# --------------------------------------------------------------------------- window edges


def weekly_utc() -> Recurrence:
    return rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
               {"type": "noEnd", "startDate": "2026-01-05", "recurrenceTimeZone": "UTC"})


def test_occurrence_ending_exactly_at_window_start_is_included() -> None:
    # GRAPH.md section 1: calendarView's overlap is boundary-inclusive.
    starts = expand(weekly_utc(), utc(2026, 1, 5, 9), HOUR, utc(2026, 1, 12, 10),
                    utc(2026, 1, 13))
    assert starts == (utc(2026, 1, 12, 9),)


def test_occurrence_starting_exactly_at_window_end_is_included() -> None:
    starts = expand(weekly_utc(), utc(2026, 1, 5, 9), HOUR, utc(2026, 1, 10), utc(2026, 1, 12, 9))
    assert starts == (utc(2026, 1, 12, 9),)


def test_occurrences_just_outside_the_window_are_not() -> None:
    r, first = weekly_utc(), utc(2026, 1, 5, 9)
    tick = timedelta(microseconds=1)
    assert expand(r, first, HOUR, utc(2026, 1, 12, 10) + tick, utc(2026, 1, 19, 9) - tick) == ()


def test_zero_length_window_and_zero_length_occurrences() -> None:
    r, first = weekly_utc(), utc(2026, 1, 5, 9)
    at = utc(2026, 1, 12, 9)
    assert expand(r, first, timedelta(0), at, at) == (at,)
    assert expand(r, first, timedelta(0), at + timedelta(seconds=1), at + HOUR) == ()


def test_occurrence_spanning_the_whole_window_is_included() -> None:
    r, first = weekly_utc(), utc(2026, 1, 5, 9)
    assert expand(r, first, 3 * DAY, utc(2026, 1, 13), utc(2026, 1, 14)) == (utc(2026, 1, 12, 9),)


def test_window_before_the_series_or_after_its_end_is_empty() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 3,
             "recurrenceTimeZone": "UTC"})
    first = utc(2026, 1, 5, 9)
    assert expand(r, first, HOUR, utc(2025, 1, 1), utc(2026, 1, 5, 7)) == ()
    assert expand(r, first, HOUR, utc(2026, 1, 8), utc(2027, 1, 1)) == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window_start": datetime(2026, 1, 1)}, "window_start"),
        ({"window_end": datetime(2026, 2, 1)}, "window_end"),
        ({"first_start": datetime(2026, 1, 5, 9)}, "first_start"),
        ({"duration": timedelta(minutes=-1)}, "duration"),
        ({"duration": 60}, "duration"),
        ({"window_start": utc(2026, 3, 1)}, "window_end"),
    ],
)
def test_expand_rejects_naive_datetimes_and_bad_arguments(kwargs: dict, field: str) -> None:
    args = {"rec": weekly_utc(), "first_start": utc(2026, 1, 5, 9), "duration": HOUR,
            "window_start": utc(2026, 1, 1), "window_end": utc(2026, 2, 1)} | kwargs
    with pytest.raises(RecurrenceError) as err:
        expand(**args)
    assert err.value.field == field


# --------------------------------------------------------------------------- numbered (D4)


def test_numbered_range_counts_occurrences_not_weeks_rule_d4() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday", "friday"]},
            {"type": "numbered", "startDate": "2026-01-07", "numberOfOccurrences": 4,
             "recurrenceTimeZone": "UTC"})
    first = utc(2026, 1, 7, 9)
    assert dates_of(everything(r, first), UTC) == [
        date(2026, 1, 7), date(2026, 1, 9), date(2026, 1, 12), date(2026, 1, 14)]
    assert last_occurrence(r, first) == utc(2026, 1, 14, 9)
    assert occurrence_dates(r) == (date(2026, 1, 7), date(2026, 1, 9), date(2026, 1, 12),
                                   date(2026, 1, 14))


def test_numbered_range_round_trips_through_graph_rule_d4() -> None:
    r = rec({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"],
             "index": "first"},
            {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 12,
             "recurrenceTimeZone": "GMT Standard Time"})
    assert parse_recurrence(to_graph(r)) == r
    assert to_graph(r)["range"]["type"] == "numbered"


def test_first_and_last_occurrence() -> None:
    first = datetime(2017, 9, 4, 12, tzinfo=PACIFIC)
    r = parse_recurrence(load("seriesmaster_create_response_weekly_docs.json")["recurrence"])
    assert first_occurrence(r, first) == utc(2017, 9, 4, 19)
    # endDate Sunday 2017-12-31: the last Monday is 12-25 (GRAPH.md section 4).
    assert last_occurrence(r, first) == utc(2017, 12, 25, 20)
    no_end = rec({"type": "daily", "interval": 1}, {"type": "noEnd", "startDate": "2017-09-04"})
    assert last_occurrence(no_end, first) is None


def test_occurrence_dates_needs_an_end_for_no_end_series() -> None:
    r = rec({"type": "daily", "interval": 2}, {"type": "noEnd", "startDate": "2026-01-01"})
    with pytest.raises(RecurrenceError):
        occurrence_dates(r)
    assert occurrence_dates(r, start=date(2026, 1, 2), until=date(2026, 1, 7)) == (
        date(2026, 1, 3), date(2026, 1, 5), date(2026, 1, 7))
    assert occurrences_before(r, date(2026, 1, 7)) == 3


# --------------------------------------------------------------------------- splits (O2)


def test_truncate_before_ends_the_series_the_day_before_the_cut_rule_o2() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "noEnd", "startDate": "2026-01-05", "recurrenceTimeZone": "Europe/London"})
    head = truncate_before(r, date(2026, 2, 2))
    assert head.range == Range("endDate", date(2026, 1, 5), date(2026, 2, 1), 0, "Europe/London")
    assert head.pattern == r.pattern
    first = datetime(2026, 1, 5, 9, tzinfo=LONDON)
    assert len(everything(head, first)) == 4


def test_truncate_before_a_numbered_series() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 10})
    assert truncate_before(r, date(2026, 1, 4)).range == Range("endDate", date(2026, 1, 1),
                                                               date(2026, 1, 3))
    # Nothing on or after the cut: unchanged, still numbered (rule D4).
    assert truncate_before(r, date(2026, 2, 1)) is r


def test_truncate_before_the_first_occurrence_raises() -> None:
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["friday"]},
            {"type": "noEnd", "startDate": "2026-01-05"})
    for cut in (date(2026, 1, 5), date(2026, 1, 9), date(2025, 12, 1)):
        with pytest.raises(RecurrenceError, match="leaves no occurrence"):
            truncate_before(r, cut)
    assert truncate_before(r, date(2026, 1, 10)).range.end_date == date(2026, 1, 9)


def test_restart_from_keeps_the_remaining_count_and_the_end_rule_d4() -> None:
    numbered = rec({"type": "daily", "interval": 1},
                   {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 10,
                    "recurrenceTimeZone": "UTC"})
    assert restart_from(numbered, date(2026, 1, 4)).range == Range(
        "numbered", date(2026, 1, 4), None, 7, "UTC")
    dated = rec({"type": "daily", "interval": 1},
                {"type": "endDate", "startDate": "2026-01-01", "endDate": "2026-01-31"})
    assert restart_from(dated, date(2026, 1, 20)).range == Range(
        "endDate", date(2026, 1, 20), date(2026, 1, 31))
    assert restart_from(dated, date(2025, 6, 1)) == dated


def test_restart_from_a_non_occurrence_day_keeps_the_phase() -> None:
    r = rec({"type": "daily", "interval": 2}, {"type": "noEnd", "startDate": "2026-01-01"})
    tail = restart_from(r, date(2026, 1, 4))  # occurrences on odd days: next is the 5th
    assert tail.range.start_date == date(2026, 1, 5)
    assert occurrence_dates(tail, until=date(2026, 1, 9)) == (
        date(2026, 1, 5), date(2026, 1, 7), date(2026, 1, 9))


def test_restart_after_the_last_occurrence_raises() -> None:
    r = rec({"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 3})
    with pytest.raises(RecurrenceError, match="no occurrence on or after"):
        restart_from(r, date(2026, 1, 4))


# --------------------------------------------------------------------------- occurrenceId


@pytest.mark.parametrize(
    ("oid", "master", "day"),
    [
        ("OID.AAMkADAGAADDdm4NAAA=.2020-04-30", "AAMkADAGAADDdm4NAAA=", date(2020, 4, 30)),
        ("OID.3===.2023-12-07", "3===", date(2023, 12, 7)),
        ("OID.a.b.c.2024-01-02", "a.b.c", date(2024, 1, 2)),
    ],
)
def test_occurrence_id_date_takes_the_last_dot_segment(oid: str, master: str, day: date) -> None:
    assert occurrence_id_date(oid) == day
    assert split_occurrence_id(oid) == (master, day)
    assert occurrence_id_for(master, day) == oid


@pytest.mark.parametrize("oid", ["2024-01-02", "OID.2024-01-02", "OID..2024-01-02",
                                 "OID.abc.2024-13-02", "OID.abc.tomorrow", "", None])
def test_malformed_occurrence_ids_raise(oid: object) -> None:
    with pytest.raises(RecurrenceError) as err:
        occurrence_id_date(oid)  # type: ignore[arg-type]
    assert err.value.field == "occurrenceId"


# --------------------------------------------------------------------------- Graph payloads


def test_symplicity_series_master_expands_to_its_instances() -> None:
    master = load("event_series_master_symplicity.json")
    r = parse_recurrence(master["recurrence"])
    first = parse_graph_datetime(master["start"])
    duration = parse_graph_datetime(master["end"]) - first
    # 07:00 UTC is 02:00 EST, the series' own zone.
    starts = expand(r, first, duration, utc(2023, 12, 1), utc(2024, 1, 1))
    instances = load("instances_occurrences_with_occurrenceId.json")["value"]
    assert starts == tuple(sorted(parse_graph_datetime(i["start"]) for i in instances))
    for instance in instances:
        start = parse_graph_datetime(instance["start"])
        day = occurrence_id_date(instance["occurrenceId"])
        assert day == start.astimezone(series_zone(r)).date()
        assert occurrence_start_on(r, first, day) == start
    assert last_occurrence(r, first) == utc(2023, 12, 7, 7)


def test_delta_page_bare_occurrences_are_expected_occurrences_of_their_master() -> None:
    page = load("calendarview_delta_page_seriesmaster_and_bare_occurrences.json")["value"]
    master = next(item for item in page if item["type"] == "seriesMaster")
    r = parse_recurrence(master["recurrence"])
    first = parse_graph_datetime(master["start"])
    starts = set(expand(r, first, parse_graph_datetime(master["end"]) - first,
                        utc(2023, 12, 1), utc(2024, 1, 1)))
    bare = [item for item in page if item["type"] == "occurrence"]
    assert bare and all(parse_graph_datetime(i["start"]) in starts for i in bare)


def test_docs_instances_exception_and_occurrences_fill_the_expected_slots_rule_d2_d3() -> None:
    # The doc's master is not shown; its instances are Mondays at 20:30 UTC in April 2019,
    # i.e. 13:30 Pacific. We reconstruct it from March, across the DST change.
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "noEnd", "startDate": "2019-03-04",
             "recurrenceTimeZone": "Pacific Standard Time"})
    first = parse_graph_datetime({"dateTime": "2019-03-04T13:30:00.0000000",
                                  "timeZone": "Pacific Standard Time"})
    assert first == utc(2019, 3, 4, 21, 30)  # PST
    # The doc's request window (no offset => UTC).
    expected = expand(r, first, timedelta(minutes=30),
                      parse_utc("2019-04-08T09:00:00.0000000Z"),
                      parse_utc("2019-04-30T09:00:00.0000000Z"))
    assert expected == (utc(2019, 4, 8, 20, 30), utc(2019, 4, 15, 20, 30),
                        utc(2019, 4, 22, 20, 30), utc(2019, 4, 29, 20, 30))  # PDT
    items = load("instances_docs_exception_and_occurrences.json")["value"]
    occurrences = {parse_graph_datetime(i["start"]) for i in items if i["type"] == "occurrence"}
    exceptions = [i for i in items if i["type"] == "exception"]
    # The exception (moved 4/15 -> 4/16) replaces the one expected slot not listed (D2);
    # nothing is missing beyond it, so no deleted instance (D3).
    assert set(expected) - occurrences == {utc(2019, 4, 15, 20, 30)}
    assert len(exceptions) == 1
    assert parse_graph_datetime(exceptions[0]["start"]) == utc(2019, 4, 16, 20, 30)


def test_cancelled_occurrence_ids_map_to_expected_original_starts_rule_d3() -> None:
    master = load("seriesmaster_get_expand_cancelled_and_exception_occurrences_beta_docs.json")
    first = parse_graph_datetime(master["start"])  # Thursday 2020-04-23 11:30 UTC
    # The doc omits the recurrence; every slot it names is a Thursday: weekly on Thursday.
    r = rec({"type": "weekly", "interval": 1, "daysOfWeek": ["thursday"]},
            {"type": "noEnd", "startDate": "2020-04-23", "recurrenceTimeZone": "UTC"})
    cancelled = {occurrence_start_on(r, first, occurrence_id_date(oid))
                 for oid in master["cancelledOccurrences"]}
    assert cancelled == {utc(2020, 4, 30, 11, 30), utc(2020, 5, 7, 11, 30),
                         utc(2020, 5, 14, 11, 30)}
    exception_day = occurrence_id_date(master["exceptionOccurrences"][0]["occurrenceId"])
    window = expand(r, first, timedelta(minutes=30), utc(2020, 4, 23), utc(2020, 5, 22))
    assert cancelled | {occurrence_start_on(r, first, exception_day)} | {first} == set(window)
    with pytest.raises(RecurrenceError):
        occurrence_start_on(r, first, date(2020, 4, 29))  # a Wednesday


def test_daily_enddate_response_expands_to_every_day_to_its_end() -> None:
    master = load("seriesmaster_create_response_daily_enddate.json")
    r = parse_recurrence(master["recurrence"])
    first = parse_graph_datetime(master["start"])
    starts = everything(r, first, timedelta(minutes=30))
    assert len(starts) == (date(2024, 6, 1) - date(2024, 3, 5)).days + 1
    assert starts[0] == utc(2024, 3, 5, 9) and starts[-1] == utc(2024, 6, 1, 9)


# --------------------------------------------------------------------------- properties

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Pacific Standard Time",
         "UTC", "India Standard Time", ""]
FALLBACK_ZONE = ZoneInfo("Europe/Berlin")  # the event's zone when the range has none


@st.composite
def patterns(draw: st.DrawFn) -> Pattern:
    kind = draw(st.sampled_from(recurrence.PATTERN_TYPES))
    days = tuple(draw(st.sets(st.sampled_from(DAYS_OF_WEEK), min_size=1, max_size=3)))
    month = draw(st.integers(1, 12))
    longest = 29 if month == 2 else [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    day_of_month = draw(st.integers(1, 31 if kind == "absoluteMonthly" else longest))
    return Pattern(kind, draw(st.integers(1, 3)), days, day_of_month, month,
                   draw(st.sampled_from(INDEXES)), draw(st.sampled_from(DAYS_OF_WEEK)))


@st.composite
def series(draw: st.DrawFn) -> tuple[Recurrence, datetime, timedelta, bool]:
    pattern = draw(patterns())
    start = draw(st.dates(date(2024, 1, 1), date(2027, 12, 31)))
    zone_name = draw(st.sampled_from(ZONES))
    kind = draw(st.sampled_from(recurrence.RANGE_TYPES))
    end = start + timedelta(days=draw(st.integers(0, 900)))
    count = draw(st.integers(1, 25))
    try:
        r = Recurrence(pattern, Range(kind, start, end if kind == "endDate" else None,
                                      count if kind == "numbered" else 0, zone_name))
    except RecurrenceError:
        assume(False)  # an endDate range with no occurrence
        raise
    is_all_day = draw(st.booleans())
    # Hours from 05:00 avoid every DST gap and fold of these zones (none is at midnight).
    at = time() if is_all_day else time(draw(st.integers(5, 23)), draw(st.sampled_from([0, 30])))
    zone = resolve_zone(zone_name, fallback=None) if zone_name else FALLBACK_ZONE
    first = datetime.combine(start, at, tzinfo=zone)
    duration = (timedelta(days=draw(st.integers(1, 3))) if is_all_day
                else timedelta(minutes=draw(st.sampled_from([0, 30, 60, 150]))))
    return r, first, duration, is_all_day


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    start = draw(st.datetimes(datetime(2023, 12, 1), datetime(2029, 1, 1),
                              timezones=st.just(timezone.utc)))
    return start, start + timedelta(hours=draw(st.integers(0, 24 * 400)))


def _end(start: datetime, duration: timedelta, zone: ZoneInfo) -> datetime:
    local = start.astimezone(zone).replace(tzinfo=None)
    return (local + duration).replace(tzinfo=zone).astimezone(UTC)


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(s=series(), w=windows())
def test_property_expand_is_sorted_unique_utc_and_within_the_window(s, w) -> None:
    r, first, duration, is_all_day = s
    starts = expand(r, first, duration, *w, is_all_day=is_all_day)
    zone = series_zone(r, first)
    assert list(starts) == sorted(set(starts))
    for start in starts:
        assert start.utcoffset() == timedelta(0)
        assert start <= w[1] and _end(start, duration, zone) >= w[0]


@PROPERTY
@given(s=series(), w=windows(), cut=st.floats(0, 1))
def test_property_expanding_a_window_equals_the_union_of_its_halves(s, w, cut) -> None:
    r, first, duration, is_all_day = s
    middle = w[0] + (w[1] - w[0]) * cut
    whole = expand(r, first, duration, *w, is_all_day=is_all_day)
    left = expand(r, first, duration, w[0], middle, is_all_day=is_all_day)
    right = expand(r, first, duration, middle, w[1], is_all_day=is_all_day)
    assert whole == tuple(sorted(set(left) | set(right)))


@PROPERTY
@given(s=series(), w=windows())
def test_property_every_start_keeps_the_series_local_wall_clock_time(s, w) -> None:
    r, first, duration, is_all_day = s
    zone = series_zone(r, first)
    at = time() if is_all_day else first.astimezone(zone).time().replace(tzinfo=None)
    starts = expand(r, first, duration, *w, is_all_day=is_all_day)
    if starts:
        days = set(occurrence_dates(r, start=starts[0].astimezone(zone).date() - DAY,
                                    until=starts[-1].astimezone(zone).date() + DAY))
    for start in starts:
        local = start.astimezone(zone)
        assert local.time().replace(tzinfo=None) == at
        assert local.date() in days


@PROPERTY
@given(s=series(), cut_offset=st.integers(-10, 1000))
def test_property_truncate_and_restart_partition_the_occurrences_rule_o2(s, cut_offset) -> None:
    r, first, duration, is_all_day = s
    cut = r.range.start_date + timedelta(days=cut_offset)
    window = (first - 3 * DAY, datetime.combine(r.range.start_date + timedelta(days=4 * 366),
                                                time(), tzinfo=UTC))
    original = expand(r, first, duration, *window, is_all_day=is_all_day)
    zone = series_zone(r, first)
    try:
        head = expand(truncate_before(r, cut), first, duration, *window, is_all_day=is_all_day)
    except RecurrenceError:
        head = ()  # nothing before the cut
        assert occurrences_before(r, cut) == 0
    try:
        tail_rec = restart_from(r, cut)
    except RecurrenceError:
        tail = ()  # nothing on or after the cut
        assert occurrences_before(r, cut) > 0
    else:
        tail_first = occurrence_start_on(r, first, tail_rec.range.start_date,
                                         is_all_day=is_all_day).astimezone(first.tzinfo)
        tail = expand(tail_rec, tail_first, duration, *window, is_all_day=is_all_day)
        if r.range.type == "numbered":
            assert tail_rec.range.type == "numbered"
            assert tail_rec.range.number_of_occurrences == (
                r.range.number_of_occurrences - occurrences_before(r, cut))
    assert not set(head) & set(tail)
    assert tuple(sorted(set(head) | set(tail))) == original
    assert all(s.astimezone(zone).date() < cut for s in head)
    assert all(s.astimezone(zone).date() >= cut for s in tail)


@PROPERTY
@given(s=series())
def test_property_numbered_count_is_honoured_rule_d4(s) -> None:
    r, first, duration, is_all_day = s
    assume(r.range.type == "numbered")
    n = r.range.number_of_occurrences
    window = (first - 3 * DAY, first + timedelta(days=366 * 3 * (n + 1)))
    starts = expand(r, first, duration, *window, is_all_day=is_all_day)
    assert len(starts) == n == len(occurrence_dates(r))
    assert starts[-1] == last_occurrence(r, first, is_all_day=is_all_day)
    assert starts[0] == first_occurrence(r, first, is_all_day=is_all_day)
    assert parse_recurrence(to_graph(r)).range.number_of_occurrences == n


@PROPERTY
@given(s=series())
def test_property_graph_round_trip_is_lossless(s) -> None:
    r = s[0]
    again = parse_recurrence(to_graph(r))
    assert again.pattern == r.pattern
    assert again.range.type == r.range.type and again.range.start_date == r.range.start_date
    assert again.range.end_date == r.range.end_date
    assert again.range.number_of_occurrences == r.range.number_of_occurrences
    if r.range.time_zone:
        assert resolve_zone(again.range.time_zone).utcoffset(datetime(2026, 7, 1)) \
            == resolve_zone(r.range.time_zone).utcoffset(datetime(2026, 7, 1))
