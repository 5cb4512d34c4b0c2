"""Series: expansion, normalisation, instances, exceptions, cancelled occurrences."""
from __future__ import annotations

import json
import pathlib

import pytest

PAYLOADS = pathlib.Path("/work/shared/graph-payloads")


@pytest.fixture
def alice(tenant):
    user = tenant.user("alice")
    return user, tenant.graph(user["upn"])


def _series(g, pattern, rng, start="2030-01-06T10:00:00", end="2030-01-06T10:30:00", tz="UTC", subject="S"):
    body = {"subject": subject, "start": {"dateTime": start, "timeZone": tz},
            "end": {"dateTime": end, "timeZone": tz},
            "recurrence": {"pattern": pattern, "range": rng}}
    return g.ok("POST", "/me/events", 201, json=body)


def _starts(g, master_id, lo="2029-12-01T00:00:00Z", hi="2032-01-01T00:00:00Z", tz=None):
    headers = {"Prefer": f'outlook.timezone="{tz}"'} if tz else None
    rows = g.all_pages(f"/me/events/{master_id}/instances?startDateTime={lo}&endDateTime={hi}", headers=headers)
    return sorted(r["start"]["dateTime"][:16] for r in rows)


@pytest.mark.parametrize("pattern,rng,expected", [
    ({"type": "daily", "interval": 2}, {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 3},
     ["2030-01-06", "2030-01-08", "2030-01-10"]),
    ({"type": "weekly", "interval": 1, "daysOfWeek": ["Monday", "Wednesday"], "firstDayOfWeek": "sunday"},
     {"type": "endDate", "startDate": "2030-01-06", "endDate": "2030-01-16"},
     ["2030-01-07", "2030-01-09", "2030-01-14", "2030-01-16"]),
    ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
     {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 4},
     ["2030-01-31", "2030-02-28", "2030-03-31", "2030-04-30"]),
    ({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
     {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 2},
     ["2030-01-25", "2030-02-22"]),
    ({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["saturday", "sunday"], "index": "first"},
     {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 2},
     ["2030-02-02", "2030-03-02"]),
    ({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
     {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 3},
     ["2030-02-28", "2031-02-28", "2032-02-29"]),
    ({"type": "relativeYearly", "interval": 1, "daysOfWeek": ["thursday"], "month": 11, "index": "fourth"},
     {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 2},
     ["2030-11-28", "2031-11-27"]),
])
def test_all_pattern_types_expand_like_outlook(alice, pattern, rng, expected):
    _, g = alice
    m = _series(g, pattern, rng)
    got = _starts(g, m["id"], hi="2033-01-01T00:00:00Z")
    assert [s[:10] for s in got] == expected
    assert m["start"]["dateTime"][:10] == expected[0]  # master starts on its first slot


def test_numbered_range_is_accepted_and_returned_D4(alice):
    _, g = alice
    m = _series(g, {"type": "daily", "interval": 1},
                {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 5})
    assert m["recurrence"]["range"] == {"type": "numbered", "startDate": "2030-01-06",
                                        "endDate": "0001-01-01", "recurrenceTimeZone": "UTC",
                                        "numberOfOccurrences": 5}
    assert m["recurrence"]["pattern"] == {"type": "daily", "interval": 1, "month": 0,
                                          "dayOfMonth": 0, "firstDayOfWeek": "sunday", "index": "first"}


@pytest.mark.parametrize("pattern,rng", [
    ({"type": "weekly", "interval": 1}, {"type": "noEnd", "startDate": "2030-01-06"}),
    ({"type": "daily", "interval": 1}, {"type": "endDate", "startDate": "2030-01-06"}),
    ({"type": "daily", "interval": 1}, {"type": "numbered", "startDate": "2030-01-06"}),
    ({"type": "absoluteMonthly", "interval": 1}, {"type": "noEnd", "startDate": "2030-01-06"}),
    ({"type": "hourly", "interval": 1}, {"type": "noEnd", "startDate": "2030-01-06"}),
    ({"type": "weekly", "interval": 1, "daysOfWeek": ["funday"]}, {"type": "noEnd", "startDate": "2030-01-06"}),
])
def test_invalid_recurrence_is_400_with_graph_error_shape(alice, pattern, rng):
    _, g = alice
    r = g.post("/me/events", json={"subject": "x", "start": {"dateTime": "2030-01-06T10:00:00", "timeZone": "UTC"},
                                   "end": {"dateTime": "2030-01-06T11:00:00", "timeZone": "UTC"},
                                   "recurrence": {"pattern": pattern, "range": rng}})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "ErrorPropertyValidationFailure" and "innerError" in err


def test_series_keeps_wall_time_across_dst_in_its_zone(alice):
    _, g = alice
    m = _series(g, {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 3},
                start="2030-03-04T09:00:00", end="2030-03-04T10:00:00", tz="Pacific Standard Time")
    assert m["recurrence"]["range"]["recurrenceTimeZone"] == "Pacific Standard Time"
    utc = _starts(g, m["id"])
    assert utc == ["2030-03-04T17:00", "2030-03-11T16:00", "2030-03-18T16:00"]  # DST on 2030-03-10
    local = _starts(g, m["id"], tz="Pacific Standard Time")
    assert all(s.endswith("T09:00") for s in local)


def test_instances_have_occurrence_ids_and_original_start_with_select(alice):
    _, g = alice
    m = _series(g, {"type": "daily", "interval": 1},
                {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 3})
    rows = g.ok("GET", f"/me/events/{m['id']}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z")["value"]
    recorded = json.loads((PAYLOADS / "instances_occurrences_with_occurrenceId.json").read_text())["value"][0]
    assert set(recorded) - set(rows[0]) == set()
    assert {r["occurrenceId"] for r in rows} == {f"OID.{m['id']}.2030-01-0{d}" for d in (6, 7, 8)}
    assert all(r["type"] == "occurrence" and r["seriesMasterId"] == m["id"] and r["recurrence"] is None for r in rows)
    assert "originalStart" not in rows[0]
    assert len({r["iCalUId"] for r in rows} | {m["iCalUId"]}) == 4  # per-occurrence iCalUId
    sel = g.ok("GET", f"/me/events/{m['id']}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z&$select=subject,start,originalStart,type")["value"]
    assert sorted(r["originalStart"] for r in sel) == ["2030-01-06T10:00:00Z", "2030-01-07T10:00:00Z", "2030-01-08T10:00:00Z"]


def test_occurrence_patch_makes_an_exception_and_crossing_is_refused(alice):
    _, g = alice
    m = _series(g, {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 4},
                start="2030-01-07T20:30:00", end="2030-01-07T21:00:00")
    url = f"/me/events/{m['id']}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-03-01T00:00:00Z"
    occ = {r["start"]["dateTime"][:10]: r for r in g.ok("GET", url)["value"]}
    second = occ["2030-01-14"]
    moved = g.ok("PATCH", f"/me/events/{second['id']}", json={
        "start": {"dateTime": "2030-01-15T20:30:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-15T21:00:00", "timeZone": "UTC"}, "subject": "Moved"})
    assert moved["type"] == "exception" and moved["id"] == second["id"]
    r = g.patch(f"/me/events/{occ['2030-01-21']['id']}", json={
        "start": {"dateTime": "2030-01-15T22:30:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-15T23:00:00", "timeZone": "UTC"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"
    r = g.patch(f"/me/events/{occ['2030-01-28']['id']}", json={
        "start": {"dateTime": "2030-02-05T20:30:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-02-05T21:00:00", "timeZone": "UTC"}})
    assert r.status_code == 200  # last one may move beyond the series end: no neighbour
    rows = g.ok("GET", url)["value"]
    assert {r["type"] for r in rows} == {"occurrence", "exception"}
    assert any(r["subject"] == "Moved" and r["start"]["dateTime"].startswith("2030-01-15") for r in rows)


def test_deleted_occurrence_only_in_cancelled_occurrences_O7_shape(alice):
    _, g = alice
    m = _series(g, {"type": "daily", "interval": 1},
                {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 4})
    url = f"/me/events/{m['id']}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
    occ = sorted(g.ok("GET", url)["value"], key=lambda r: r["start"]["dateTime"])
    assert g.delete(f"/me/events/{occ[1]['id']}").status_code == 204
    g.ok("PATCH", f"/me/events/{occ[2]['id']}", json={"subject": "Changed"})
    assert len(g.ok("GET", url)["value"]) == 3
    assert g.get(f"/me/events/{occ[1]['id']}").status_code == 404
    sel = "subject,start,end,occurrenceId,exceptionOccurrences,cancelledOccurrences"
    got = g.ok("GET", f"/me/events/{m['id']}?$select={sel}&$expand=exceptionOccurrences")
    recorded = json.loads((PAYLOADS / "seriesmaster_get_expand_cancelled_and_exception_occurrences_beta_docs.json").read_text())
    assert set(got) - {"@odata.context"} == set(recorded) - {"@odata.context"}
    assert got["cancelledOccurrences"] == [f"OID.{m['id']}.2030-01-07"]
    assert [e["subject"] for e in got["exceptionOccurrences"]] == ["Changed"]
    assert got["exceptionOccurrences"][0]["occurrenceId"] == f"OID.{m['id']}.2030-01-08"
    plain = g.ok("GET", f"/me/events/{m['id']}")
    assert "cancelledOccurrences" not in plain and "exceptionOccurrences" not in plain


def test_master_time_change_resets_exceptions_but_subject_change_skips_them(alice):
    _, g = alice
    m = _series(g, {"type": "daily", "interval": 1},
                {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 3})
    url = f"/me/events/{m['id']}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
    occ = sorted(g.ok("GET", url)["value"], key=lambda r: r["start"]["dateTime"])
    g.ok("PATCH", f"/me/events/{occ[0]['id']}", json={"location": {"displayName": "Room 9"}})
    g.ok("PATCH", f"/me/events/{m['id']}", json={"subject": "Renamed"})
    rows = sorted(g.ok("GET", url)["value"], key=lambda r: r["start"]["dateTime"])
    assert [r["subject"] for r in rows] == ["S", "Renamed", "Renamed"]  # O4
    g.ok("PATCH", f"/me/events/{m['id']}", json={"start": {"dateTime": "2030-01-06T12:00:00", "timeZone": "UTC"},
                                                 "end": {"dateTime": "2030-01-06T12:30:00", "timeZone": "UTC"}})
    rows = sorted(g.ok("GET", url)["value"], key=lambda r: r["start"]["dateTime"])
    assert [r["type"] for r in rows] == ["occurrence"] * 3  # O5: exceptions reset
    assert [r["start"]["dateTime"][11:16] for r in rows] == ["12:00"] * 3


def test_calendar_view_never_returns_masters_and_events_never_returns_occurrences(alice):
    _, g = alice
    m = _series(g, {"type": "daily", "interval": 1},
                {"type": "numbered", "startDate": "2030-01-06", "numberOfOccurrences": 3})
    view = g.all_pages("/me/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z")
    assert {r["type"] for r in view} == {"occurrence"} and len(view) == 3
    events = g.ok("GET", "/me/events")["value"]
    assert [(e["id"], e["type"]) for e in events] == [(m["id"], "seriesMaster")]


def test_a_time_in_the_spring_forward_gap_moves_forward_by_the_gap():
    """01:00 on the day London skips 01:00-02:00 is read with the offset before the gap
    (RFC 5545 3.3.5): 01:00 UTC, shown as 02:00 BST, not moved back to 00:00."""
    import datetime as _dt
    from zoneinfo import ZoneInfo

    from emulator.timeutil import localize

    got = localize(_dt.datetime(2027, 3, 28, 1, 0), ZoneInfo("Europe/London"))
    assert got.astimezone(_dt.timezone.utc) == _dt.datetime(2027, 3, 28, 1, 0, tzinfo=_dt.timezone.utc)
    assert (got.hour, got.utcoffset()) == (2, _dt.timedelta(hours=1))


def test_a_series_starting_in_the_spring_forward_gap_moves_forward_whole(alice):
    """RFC 5545 3.3.5: 02:30 on the night America/Los_Angeles skips 02:00-03:00 is 03:30 PDT.
    The event moves as a whole (its end by the same hour, so 02:30-03:00 is 03:30-04:00, not
    refused as ending before it starts), the series keeps the moved wall-clock time, and an
    occurrence of another series that lands in the gap moves forward keeping its length."""
    _, g = alice
    m = _series(g, {"type": "daily", "interval": 1},
                {"type": "numbered", "startDate": "2027-03-14", "numberOfOccurrences": 2},
                start="2027-03-14T02:30:00", end="2027-03-14T03:00:00", tz="Pacific Standard Time")
    assert (m["start"]["dateTime"][:16], m["end"]["dateTime"][:16]) == ("2027-03-14T03:30", "2027-03-14T04:00")
    rows = g.all_pages(f"/me/events/{m['id']}/instances?startDateTime=2027-03-01T00:00:00Z"
                       "&endDateTime=2027-04-01T00:00:00Z")
    assert sorted((r["start"]["dateTime"][:16], r["end"]["dateTime"][:16]) for r in rows) == [  # UTC
        ("2027-03-14T10:30", "2027-03-14T11:00"), ("2027-03-15T10:30", "2027-03-15T11:00")]
    later = _series(g, {"type": "daily", "interval": 1},
                    {"type": "endDate", "startDate": "2027-03-13", "endDate": "2027-03-14"},
                    start="2027-03-13T02:30:00", end="2027-03-13T03:30:00", tz="America/Los_Angeles")
    rows = g.all_pages(f"/me/events/{later['id']}/instances?startDateTime=2027-03-14T00:00:00Z"
                       "&endDateTime=2027-03-15T00:00:00Z")
    assert [(r["start"]["dateTime"][:16], r["end"]["dateTime"][:16], r["start"]["timeZone"]) for r in rows] == [
        ("2027-03-14T10:30", "2027-03-14T11:30", "UTC")]
