"""An all-day series across a DST change (issue 11 item 7): every instance is whole dates,
in Communifire and in Outlook, and nothing echoes (rule A9), whichever side made it."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.integration.outbound_helpers import ALICE, Communifire, assert_no_echo, connect_all

pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")


def next_clock_change() -> date:
    """The next date (at least 4 days ahead) whose day is not 24 hours long in Berlin."""
    day = datetime.now(timezone.utc).date() + timedelta(days=4)
    while True:
        a = datetime.combine(day, time(), BERLIN)
        b = datetime.combine(day + timedelta(days=1), time(), BERLIN)
        if b.astimezone(timezone.utc) - a.astimezone(timezone.utc) != timedelta(days=1):
            return day
        day += timedelta(days=1)


def whole_dates(inst: dict) -> tuple[date, date]:
    start = datetime.fromisoformat(inst["start"].replace("Z", "+00:00")).astimezone(BERLIN)
    end = datetime.fromisoformat(inst["end"].replace("Z", "+00:00")).astimezone(BERLIN)
    assert start.time() == time() and end.time() == time(), inst
    return start.date(), end.date()


def test_an_outlook_all_day_series_across_the_clock_change_is_whole_dates_with_no_exception(stack):
    connect_all(stack)
    change = next_clock_change()
    first = change - timedelta(days=2)
    stack.control.create_event(ALICE, {
        "subject": "Conference", "isAllDay": True,
        "start": {"dateTime": f"{first}T00:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": f"{first + timedelta(days=1)}T00:00:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "startDate": str(first), "numberOfOccurrences": 5}}})
    status = stack.sync_all()
    assert status["recent_failures"] == []
    (event,) = [e for e in stack.calendar("1001")["events"] if e["title"] == "Conference"]
    assert [i["state"] for i in event["instances"]] == ["normal"] * 5, json.dumps(event, indent=1)
    assert [whole_dates(i) for i in event["instances"]] == [
        (first + timedelta(days=n), first + timedelta(days=n + 1)) for n in range(5)]
    stack.sync_all()
    assert_no_echo(stack)


def test_a_communifire_all_day_series_across_the_clock_change_reaches_outlook_as_whole_dates(stack):
    connect_all(stack)
    change = next_clock_change()
    first = change - timedelta(days=1)
    start = datetime.combine(first, time(), BERLIN).astimezone(timezone.utc)
    end = datetime.combine(first + timedelta(days=1), time(), BERLIN).astimezone(timezone.utc)
    cf = Communifire(stack, event_id="cf-allday-1")
    cf.do("create", event={"title": "Offsite", "all_day": True, "time_zone": "Europe/Berlin",
                           "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "recurrence": {"pattern": {"type": "daily", "interval": 1},
                                          "range": {"type": "numbered", "startDate": str(first),
                                                    "numberOfOccurrences": 3}}})
    (event,) = [e for e in stack.calendar("1001")["events"] if e["id"] == "cf-allday-1"]
    assert [whole_dates(i) for i in event["instances"]] == [
        (first + timedelta(days=n), first + timedelta(days=n + 1)) for n in range(3)]
    stack.sync_all()
    assert_no_echo(stack)
    (event,) = [e for e in stack.calendar("1001")["events"] if e["id"] == "cf-allday-1"]
    assert [i["state"] for i in event["instances"]] == ["normal"] * 3
