"""Graph /events, calendarView paging and shapes, compared with recorded payloads."""
from __future__ import annotations

import json
import re

import pytest

from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo
DT7 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}$")
GUID = "{00020329-0000-0000-C000-000000000046}"
PROP_ID = f"String {GUID} Name CommunifireEventId"


def _payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture
def alice(tenant):
    user = tenant.user("alice")
    return user, tenant.graph(user["upn"])


def test_single_event_has_the_recorded_shape(alice, ev):
    _, g = alice
    created = g.ok("POST", "/me/events", 201, json=ev("Foo test", "2030-12-05T18:00:00",
                                                      "2030-12-05T19:00:00", "Eastern Standard Time"))
    got = g.ok("GET", f"/me/events/{created['id']}")
    recorded = _payload("event_single_instance_symplicity.json")
    recorded.pop("@odata.type")
    missing = set(recorded) - set(got)
    assert missing == set(), missing
    assert got["type"] == "singleInstance" and got["occurrenceId"] is None
    assert got["seriesMasterId"] is None and got["recurrence"] is None
    assert got["responseStatus"] == {"response": "organizer", "time": "0001-01-01T00:00:00Z"}
    assert got["start"] == {"dateTime": "2030-12-05T23:00:00.0000000", "timeZone": "UTC"}
    assert got["originalStartTimeZone"] == "Eastern Standard Time"
    assert got["@odata.etag"] == f'W/"{got["changeKey"]}"'
    assert "originalStart" not in got


def test_series_master_create_response_is_normalised_like_graph(alice):
    _, g = alice
    request = _payload("seriesmaster_create_request_weekly_docs.json")
    request["start"]["dateTime"] = "2030-09-02T12:00:00"
    request["end"]["dateTime"] = "2030-09-02T14:00:00"
    request["recurrence"]["range"].update(startDate="2030-09-02", endDate="2030-12-31")
    got = g.ok("POST", "/me/events", 201, json=request)
    recorded = _payload("seriesmaster_create_response_weekly_docs.json")
    assert got["type"] == "seriesMaster" and got["occurrenceId"] is None
    assert got["recurrence"] == {
        "pattern": dict(recorded["recurrence"]["pattern"]),
        "range": dict(recorded["recurrence"]["range"], startDate="2030-09-02", endDate="2030-12-31")}
    assert got["attendees"][0]["status"] == {"response": "none", "time": "0001-01-01T00:00:00Z"}
    assert set(recorded) - {"OnlineMeeting"} - set(got) == set()


def test_daily_enddate_series_matches_recorded_response(alice):
    _, g = alice
    request = _payload("seriesmaster_create_request_daily_enddate.json")
    got = g.ok("POST", "/me/events", 201, json=request)
    recorded = _payload("seriesmaster_create_response_daily_enddate.json")
    assert got["recurrence"] == recorded["recurrence"]
    assert got["start"] == recorded["start"] and got["end"] == recorded["end"]
    assert got["subject"] == recorded["subject"]
    assert got["bodyPreview"] == recorded["bodyPreview"]


def test_crud_roundtrip_and_errors(alice, ev):
    _, g = alice
    e = g.ok("POST", "/me/events", 201, json=ev("One", "2030-01-01T10:00:00", "2030-01-01T11:00:00"))
    patched = g.ok("PATCH", f"/me/events/{e['id']}", json={"subject": "Two",
                                                           "location": {"displayName": "Room 1"}})
    assert patched["subject"] == "Two" and patched["changeKey"] != e["changeKey"]
    assert patched["location"]["displayName"] == "Room 1"
    assert patched["locations"][0]["displayName"] == "Room 1"
    listed = g.ok("GET", "/me/events")["value"]
    assert [x["id"] for x in listed] == [e["id"]]
    assert g.delete(f"/me/events/{e['id']}").status_code == 204
    r = g.get(f"/me/events/{e['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ErrorItemNotFound"
    r = g.get("/me/events/not-an-id")
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidIdMalformed"
    r = g.post("/me/events", json={"subject": "x", "bogus": 1, "start": {}, "end": {}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "RequestBodyRead"


def test_users_path_by_upn_and_id_and_other_mailbox_denied(tenant, alice, ev):
    user, g = alice
    bob = tenant.user("bob")
    g.ok("POST", f"/users/{user['upn']}/events", 201, json=ev("A", "2030-01-01T10:00:00", "2030-01-01T11:00:00"))
    assert len(g.ok("GET", f"/users/{user['id']}/events")["value"]) == 1
    r = g.get(f"/users/{bob['upn']}/events")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_transaction_id_dedupes_create_retries(alice, ev):
    _, g = alice
    body = ev("Once", "2030-01-01T10:00:00", "2030-01-01T11:00:00", transactionId="tx-1")
    a = g.ok("POST", "/me/events", 201, json=body)
    b = g.ok("POST", "/me/events", 201, json=body)
    assert a["id"] == b["id"] and a["transactionId"] == "tx-1"
    assert len(g.ok("GET", "/me/events")["value"]) == 1


def test_extended_property_written_and_expanded(alice, ev):
    _, g = alice
    body = ev("Stamped", "2030-01-01T10:00:00", "2030-01-01T11:00:00",
              singleValueExtendedProperties=[{"id": PROP_ID, "value": "cf-42"}])
    e = g.ok("POST", "/me/events", 201, json=body)
    assert "singleValueExtendedProperties" not in e
    expand = f"singleValueExtendedProperties($filter=id eq '{PROP_ID}')"
    got = g.ok("GET", f"/me/events/{e['id']}", params={"$expand": expand})
    assert got["singleValueExtendedProperties"] == [{"id": PROP_ID, "value": "cf-42"}]
    g.ok("PATCH", f"/me/events/{e['id']}", json={"singleValueExtendedProperties": [{"id": PROP_ID, "value": "cf-43"}]})
    found = g.ok("GET", "/me/events", params={
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP_ID}' and ep/value eq 'cf-43')",
        "$expand": expand})["value"]
    assert [f["id"] for f in found] == [e["id"]]
    assert found[0]["singleValueExtendedProperties"][0]["value"] == "cf-43"
    view = g.ok("GET", "/me/calendarView", params={"startDateTime": "2030-01-01T00:00:00Z",
                                                   "endDateTime": "2030-01-02T00:00:00Z",
                                                   "$expand": expand})["value"]
    assert view[0]["singleValueExtendedProperties"][0]["value"] == "cf-43"


def test_calendar_view_paging_default_10_top_and_maxpagesize(alice, ev):
    _, g = alice
    for i in range(23):
        g.ok("POST", "/me/events", 201, json=ev(f"E{i}", f"2030-03-{i + 1:02d}T10:00:00",
                                                f"2030-03-{i + 1:02d}T11:00:00"))
    params = "startDateTime=2030-03-01T00:00:00&endDateTime=2030-04-01T00:00:00"
    first = g.ok("GET", f"/me/calendarView?{params}")
    assert len(first["value"]) == 10 and "@odata.nextLink" in first
    assert len(g.all_pages(f"/me/calendarView?{params}")) == 23
    top = g.ok("GET", f"/me/calendarView?{params}&$top=1000")
    assert len(top["value"]) == 23 and "@odata.nextLink" not in top
    assert g.get(f"/me/calendarView?{params}&$top=1001").status_code == 400
    r = g.get(f"/me/calendarView?{params}", headers={"Prefer": "odata.maxpagesize=5"})
    assert len(r.json()["value"]) == 5 and r.headers["Preference-Applied"] == "odata.maxpagesize=5"
    ids = [e["id"] for e in g.all_pages(f"/me/calendarView?{params}", headers={"Prefer": "odata.maxpagesize=4"})]
    assert len(ids) == len(set(ids)) == 23
    assert g.get("/me/calendarView").status_code == 400


def test_calendar_view_time_zone_preference_and_seven_digits(alice, ev):
    _, g = alice
    g.ok("POST", "/me/events", 201, json=ev("TZ", "2030-07-01T09:00:00", "2030-07-01T10:00:00",
                                            "W. Europe Standard Time"))
    params = {"startDateTime": "2030-07-01T00:00:00Z", "endDateTime": "2030-07-02T00:00:00Z"}
    utc = g.ok("GET", "/me/calendarView", params=params)["value"][0]
    assert utc["start"] == {"dateTime": "2030-07-01T07:00:00.0000000", "timeZone": "UTC"}
    r = g.get("/me/calendarView", params=params, headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    pst = r.json()["value"][0]
    assert pst["start"] == {"dateTime": "2030-07-01T00:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert DT7.match(pst["end"]["dateTime"])
    assert 'outlook.timezone="Pacific Standard Time"' in r.headers["Preference-Applied"]


def test_calendar_view_window_is_overlap_and_boundary_inclusive(alice, ev):
    _, g = alice
    g.ok("POST", "/me/events", 201, json=ev("Before", "2030-05-01T23:00:00", "2030-05-02T00:00:00"))
    g.ok("POST", "/me/events", 201, json=ev("Spanning", "2030-05-01T22:00:00", "2030-05-02T02:00:00"))
    g.ok("POST", "/me/events", 201, json=ev("Outside", "2030-05-01T20:00:00", "2030-05-01T21:00:00"))
    got = g.ok("GET", "/me/calendarView", params={"startDateTime": "2030-05-02T00:00:00",
                                                  "endDateTime": "2030-05-03T00:00:00"})["value"]
    assert sorted(e["subject"] for e in got) == ["Before", "Spanning"]


def test_select_limits_properties(alice, ev):
    _, g = alice
    e = g.ok("POST", "/me/events", 201, json=ev("S", "2030-01-01T10:00:00", "2030-01-01T11:00:00"))
    got = g.ok("GET", f"/me/events/{e['id']}", params={"$select": "subject,start"})
    assert set(got) == {"@odata.context", "@odata.etag", "id", "subject", "start"}
    r = g.get(f"/me/events/{e['id']}", params={"$select": "nope"})
    assert r.status_code == 400


def test_error_bodies_match_recorded_shape(alice):
    _, g = alice
    recorded = _payload("error_item_not_found_issue1061.json")
    r = g.get("/me/events/AAMkAGRTarSYgLW7lteuMJHy4qprp60FBRJaJiPLCpA=")
    body = r.json()
    assert body["error"]["code"] == recorded["error"]["code"]
    assert body["error"]["message"] == recorded["error"]["message"]
    assert set(body["error"]["innerError"]) == set(recorded["error"]["innerError"])
    malformed = _payload("error_invalid_id_malformed_pnp_cli.json")
    body = g.get("/me/events/xyz").json()
    assert body["error"]["message"] == malformed["error"]["message"]


def test_mailbox_not_enabled_for_rest(tenant, ctl, alice):
    user, g = alice
    ctl.set_mailbox_enabled(user["upn"], False)
    r = g.get("/me/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    assert g.get("/me").status_code == 200


def test_all_day_event_floats_in_the_requested_zone(alice):
    _, g = alice
    g.ok("POST", "/me/events", 201, json={
        "subject": "Holiday", "isAllDay": True,
        "start": {"dateTime": "2030-08-01T00:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-08-02T00:00:00", "timeZone": "W. Europe Standard Time"}})
    params = {"startDateTime": "2030-07-31T00:00:00Z", "endDateTime": "2030-08-03T00:00:00Z"}
    for tz in ("UTC", "Pacific Standard Time"):
        got = g.ok("GET", "/me/calendarView", params=params, headers={"Prefer": f'outlook.timezone="{tz}"'})["value"][0]
        assert got["start"] == {"dateTime": "2030-08-01T00:00:00.0000000", "timeZone": tz}
        assert got["end"]["dateTime"] == "2030-08-02T00:00:00.0000000"
    r = g.post("/me/events", json={"subject": "Bad", "isAllDay": True,
                                   "start": {"dateTime": "2030-08-01T10:00:00", "timeZone": "UTC"},
                                   "end": {"dateTime": "2030-08-02T10:00:00", "timeZone": "UTC"}})
    assert r.status_code == 400


def test_tokens_issued_after_expiry_work_again(tenant, ctl, alice):
    user, old = alice
    ctl.expire_access_tokens(user["upn"])
    assert old.get("/me").status_code == 401
    assert tenant.graph(user["upn"]).get("/me").status_code == 200
