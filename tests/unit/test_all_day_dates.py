"""All-day instances are whole dates, start and end, on every day of the year in every zone
(issue 11 item 7): never a fixed 24 hours that ends at 01:00 (or 23:00) on a DST day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from core.plan.calendar_view import event_json
from core.plan.model import Event, Segment, Window
from core.plan.recurrence import all_day_span, expand, occurrence_end, parse_recurrence
from core.plan.timezones import TimeZoneError, windows_name_for

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


def _outlook_zone(name: str) -> bool:
    try:
        windows_name_for(name)
    except TimeZoneError:
        return False
    return True


# Every zone an Outlook event can carry (one with a Windows name), DST or not, whole-hour or
# not (Lord Howe's 30-minute DST, Santiago's and Havana's midnight transitions, Chatham's
# 45-minute offset...).
ZONES = sorted(z for z in available_timezones()
               if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")) and _outlook_zone(z))


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local date (where midnight is skipped, the first that exists)."""
    naive = datetime.combine(day, time())
    start = naive.replace(tzinfo=zone)
    # a skipped midnight (DST gap) reads with the offset before the gap, which lands later that day
    return start.astimezone(timezone.utc).astimezone(zone).astimezone(timezone.utc)


def is_whole_dates(start: datetime, end: datetime, zone: ZoneInfo, first: date, days: int) -> bool:
    """``[start, end)`` covers exactly the local dates ``first`` .. ``first + days - 1``."""
    return (start.astimezone(zone).date() == first and (start - TICK).astimezone(zone).date() == first - DAY
            and end.astimezone(zone).date() == first + days * DAY
            and (end - TICK).astimezone(zone).date() == first + (days - 1) * DAY)


def daily(first: date, zone: str, count: int):
    return parse_recurrence({"pattern": {"type": "daily", "interval": 1},
                             "range": {"type": "numbered", "startDate": first.isoformat(),
                                       "numberOfOccurrences": count, "recurrenceTimeZone": zone}})


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES), first=st.dates(date(2024, 1, 1), date(2031, 12, 31)),
       days=st.integers(1, 3))
def test_every_all_day_occurrence_is_whole_dates_in_its_zone(zone_name: str, first: date, days: int) -> None:
    zone = ZoneInfo(zone_name)
    start = midnight(first, zone)
    master_end = midnight(first + days * DAY, zone)  # the master itself may sit on a 23- or 25-hour day
    series = daily(first, zone_name, 40)
    starts = expand(series, start.astimezone(zone), master_end - start, start - DAY, start + 60 * DAY,
                    is_all_day=True)
    assert len(starts) == 40
    for i, s in enumerate(starts):
        end = occurrence_end(s, master_end - start, zone, is_all_day=True)
        assert is_whole_dates(s, end, zone, first + i * DAY, days), (zone_name, s, end)


@settings(max_examples=150, deadline=None)
@given(zone_name=st.sampled_from(ZONES), first=st.dates(date(2024, 1, 1), date(2031, 12, 31)))
def test_the_calendar_document_shows_all_day_instances_as_whole_dates(zone_name: str, first: date) -> None:
    zone = ZoneInfo(zone_name)
    start, end = midnight(first, zone), midnight(first + DAY, zone)
    seg = Segment(start=start.astimezone(timezone.utc), end=end.astimezone(timezone.utc), title="Leave",
                  is_all_day=True, time_zone=zone_name, recurrence=daily(first, zone_name, 30))
    doc = event_json(Event(id="e1", organizer="1001", segments=(seg,)), [],
                     Window(start - 2 * DAY, start + 40 * DAY))
    assert len(doc["instances"]) == 30
    for i, inst in enumerate(doc["instances"]):
        s, e = datetime.fromisoformat(inst["start"]), datetime.fromisoformat(inst["end"])
        assert is_whole_dates(s, e, zone, first + i * DAY, 1), (zone_name, inst)


def test_the_day_the_clocks_change_ends_at_midnight_not_0100() -> None:
    """The reported case: an all-day series across Europe's spring-forward day (23 hours)."""
    zone = ZoneInfo("Europe/Berlin")
    key = datetime(2030, 3, 30, 23, tzinfo=timezone.utc)  # 2030-03-31 00:00 CET
    end = occurrence_end(key, DAY, zone, is_all_day=True)
    assert end.astimezone(zone) == datetime(2030, 4, 1, tzinfo=zone)
    assert end - key == timedelta(hours=23)
    autumn = datetime(2030, 10, 26, 22, tzinfo=timezone.utc)  # 2030-10-27 00:00 CEST, a 25-hour day
    assert occurrence_end(autumn, DAY, zone, is_all_day=True) - autumn == timedelta(hours=25)


def test_a_master_on_a_short_day_still_spans_whole_days_and_timed_events_keep_their_length() -> None:
    assert [all_day_span(timedelta(hours=h)) for h in (23, 24, 25, 47, 48, 49)] == [1, 1, 1, 2, 2, 2]
    start = datetime(2030, 3, 31, 0, 30, tzinfo=timezone.utc)
    assert occurrence_end(start, timedelta(hours=2), ZoneInfo("Europe/London")) == start + timedelta(hours=2)
