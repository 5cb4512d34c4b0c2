"""The Outlook client behaviours O1-O7 (SPEC section 4) and meetings across mailboxes."""
from __future__ import annotations

import pytest

LO, HI = "2030-01-01T00:00:00Z", "2030-06-01T00:00:00Z"


@pytest.fixture
def people(tenant):
    users = {n: tenant.user(n) for n in ("org", "bob", "carol")}
    return users


def _weekly(subject="Team sync", n=6, attendees=()):
    return {"subject": subject,
            "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                           "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": n}}}


def _instances(g, master_id):
    rows = g.all_pages(f"/me/events/{master_id}/instances?startDateTime={LO}&endDateTime={HI}&$top=1000")
    return sorted(rows, key=lambda r: r["start"]["dateTime"])


def _masters(ctl, upn):
    return [e for e in ctl.mailbox(upn) if e["type"] == "seriesMaster"]


def test_O1_edit_occurrence_makes_one_exception(tenant, ctl, people):
    org = people["org"]["upn"]
    m = ctl.create_event(org, _weekly())
    exc = ctl.edit_occurrence(org, m["id"], "2030-01-21", {"subject": "Special", "location": {"displayName": "Hall"}})
    assert exc["type"] == "exception" and exc["originalStart"] == "2030-01-21T10:00:00Z"
    rows = _instances(tenant.graph(org), m["id"])
    assert [r["subject"] for r in rows] == ["Team sync", "Team sync", "Special", "Team sync", "Team sync", "Team sync"]
    assert [r["type"] for r in rows].count("exception") == 1
    stored = ctl.mailbox(org)[0]
    assert [e["occurrenceId"] for e in stored["exceptions"]] == [f"OID.{m['id']}.2030-01-21"]


def test_O2_edit_following_cuts_range_and_starts_unconnected_series(tenant, ctl, people):
    org = people["org"]["upn"]
    m = ctl.create_event(org, _weekly())
    ctl.edit_occurrence(org, m["id"], "2030-02-04", {"subject": "Late exception"})
    new = ctl.edit_following(org, m["id"], "2030-01-28", {"location": {"displayName": "Room B"}})
    g = tenant.graph(org)
    old = g.ok("GET", f"/me/events/{m['id']}")
    assert old["recurrence"]["range"]["type"] == "endDate"
    assert old["recurrence"]["range"]["endDate"] < "2030-01-28"
    assert [r["start"]["dateTime"][:10] for r in _instances(g, m["id"])] == ["2030-01-07", "2030-01-14", "2030-01-21"]
    assert new["id"] != m["id"] and new["iCalUId"] != m["iCalUId"] and new["type"] == "seriesMaster"
    assert new["recurrence"]["range"]["startDate"] == "2030-01-28"
    assert new["recurrence"]["range"]["numberOfOccurrences"] == 3  # D4 kept: 6 - 3 before the cut
    assert [r["start"]["dateTime"][:10] for r in _instances(g, new["id"])] == ["2030-01-28", "2030-02-04", "2030-02-11"]
    assert all(r["location"]["displayName"] == "Room B" for r in _instances(g, new["id"]))
    assert all(r["type"] == "occurrence" for r in _instances(g, new["id"]))  # exceptions after the cut are gone
    # later changes to the original do not reach the new series
    ctl.change_series(org, m["id"], {"subject": "Renamed original"})
    assert {r["subject"] for r in _instances(g, new["id"])} == {"Team sync"}
    assert {r["seriesMasterId"] for r in _instances(g, new["id"])} == {new["id"]}


def test_O3_invite_following_creates_a_new_series_for_the_invitee(tenant, ctl, people):
    org, bob = people["org"]["upn"], people["bob"]["upn"]
    m = ctl.create_event(org, _weekly())
    new = ctl.invite_following(org, m["id"], "2030-01-28", [bob])
    assert new["id"] != m["id"]
    assert [a["emailAddress"]["address"] for a in new["attendees"]] == [bob]
    assert tenant.graph(org).ok("GET", f"/me/events/{m['id']}")["attendees"] == []
    bob_items = ctl.mailbox(bob)
    assert len(bob_items) == 1 and bob_items[0]["type"] == "seriesMaster"
    assert bob_items[0]["iCalUId"] == new["iCalUId"] and bob_items[0]["isOrganizer"] is False
    assert bob_items[0]["recurrence"]["range"]["startDate"] == "2030-01-28"


def test_O4_series_title_change_does_not_reach_an_exception(tenant, ctl, people):
    org, bob = people["org"]["upn"], people["bob"]["upn"]
    m = ctl.create_event(org, _weekly())
    ctl.invite_occurrence(org, m["id"], "2030-01-14", [bob])
    ctl.change_series(org, m["id"], {"subject": "New title"})
    subjects = [r["subject"] for r in _instances(tenant.graph(org), m["id"])]
    assert subjects == ["New title", "Team sync"] + ["New title"] * 4


def test_O5_series_time_change_resets_exceptions_and_invitee_keeps_old_copy(tenant, ctl, people):
    org, bob = people["org"]["upn"], people["bob"]["upn"]
    m = ctl.create_event(org, _weekly())
    ctl.invite_occurrence(org, m["id"], "2030-01-14", [bob])
    bob_copy = ctl.mailbox(bob)
    assert len(bob_copy) == 1 and bob_copy[0]["type"] == "singleInstance"  # C5
    assert bob_copy[0]["start"]["dateTime"].startswith("2030-01-14T10:00")
    ctl.change_series(org, m["id"], {"subject": "Moved sync",
                                     "start": {"dateTime": "2030-01-07T14:00:00", "timeZone": "UTC"},
                                     "end": {"dateTime": "2030-01-07T15:00:00", "timeZone": "UTC"}})
    rows = _instances(tenant.graph(org), m["id"])
    assert {r["type"] for r in rows} == {"occurrence"}
    assert {r["subject"] for r in rows} == {"Moved sync"}
    assert {r["start"]["dateTime"][11:16] for r in rows} == {"14:00"}
    assert all(r["attendees"] == [] for r in rows)  # the added invitation is dropped
    kept = ctl.mailbox(bob)
    assert len(kept) == 1 and kept[0]["subject"] == "Team sync" and kept[0]["isCancelled"] is False
    assert kept[0]["start"]["dateTime"].startswith("2030-01-14T10:00")


def test_O6_deleting_the_series_leaves_the_single_instance_copy(tenant, ctl, people):
    org, bob, carol = people["org"]["upn"], people["bob"]["upn"], people["carol"]["upn"]
    m = ctl.create_event(org, _weekly(attendees=[carol]))
    ctl.invite_occurrence(org, m["id"], "2030-01-21", [bob])
    ctl.delete_event(org, m["id"])
    assert ctl.mailbox(org) == []
    bob_items = ctl.mailbox(bob)
    assert len(bob_items) == 1 and bob_items[0]["isCancelled"] is False
    carol_items = ctl.mailbox(carol)
    assert len(carol_items) == 1 and carol_items[0]["isCancelled"] is True
    assert carol_items[0]["subject"].startswith("Canceled: ")


def test_O7_deleted_occurrence_is_simply_missing(tenant, ctl, people):
    org = people["org"]["upn"]
    m = ctl.create_event(org, _weekly())
    g = tenant.graph(org)
    _, link = g.delta_round(f"/me/calendarView/delta?startDateTime={LO}&endDateTime={HI}")
    ctl.delete_occurrence(org, m["id"], "2030-01-21")
    rows = _instances(g, m["id"])
    assert "2030-01-21" not in [r["start"]["dateTime"][:10] for r in rows] and len(rows) == 5
    assert all(r["type"] == "occurrence" for r in rows)
    view = g.all_pages(f"/me/calendarView?startDateTime={LO}&endDateTime={HI}")
    assert len(view) == 5
    delta_rows, _ = g.delta_round(link)
    assert not any("@removed" in r for r in delta_rows)
    assert ctl.mailbox(org)[0]["cancelledOccurrences"] == [f"OID.{m['id']}.2030-01-21"]


def test_meeting_copies_responses_and_cancel_rules(tenant, ctl, people):
    org, bob = people["org"]["upn"], people["bob"]["upn"]
    body = {"subject": "Review", "start": {"dateTime": "2030-02-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-02-01T11:00:00", "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": bob, "name": "Bob"}, "type": "required"}]}
    go, gb = tenant.graph(org), tenant.graph(bob)
    e = go.ok("POST", "/me/events", 201, json=body)
    mine = gb.ok("GET", "/me/events")["value"]
    assert len(mine) == 1 and mine[0]["id"] != e["id"] and mine[0]["iCalUId"] == e["iCalUId"]
    assert mine[0]["isOrganizer"] is False and mine[0]["responseStatus"]["response"] == "notResponded"
    assert mine[0]["organizer"]["emailAddress"]["address"] == org
    assert gb.post(f"/me/events/{mine[0]['id']}/accept", json={"comment": "ok"}).status_code == 202
    status = go.ok("GET", f"/me/events/{e['id']}")["attendees"][0]["status"]["response"]
    assert status == "accepted"
    r = gb.post(f"/me/events/{mine[0]['id']}/cancel", json={"comment": "no"})
    assert r.status_code == 400
    assert go.post(f"/me/events/{e['id']}/accept", json={}).status_code == 400
    go.ok("PATCH", f"/me/events/{e['id']}", json={"subject": "Review v2"})
    assert gb.ok("GET", f"/me/events/{mine[0]['id']}")["subject"] == "Review v2"
    assert go.post(f"/me/events/{e['id']}/cancel", json={"comment": "off"}).status_code == 202
    copy = gb.ok("GET", f"/me/events/{mine[0]['id']}")
    assert copy["isCancelled"] is True
    assert go.get(f"/me/events/{e['id']}").status_code == 404


def test_respond_on_one_occurrence_makes_attendee_exception_only(tenant, ctl, people):
    org, bob = people["org"]["upn"], people["bob"]["upn"]
    m = ctl.create_event(org, _weekly(attendees=[bob]))
    bob_master = _masters(ctl, bob)[0]
    gb = tenant.graph(bob)
    occ = _instances(gb, bob_master["id"])
    assert len(occ) == 6
    assert gb.post(f"/me/events/{occ[1]['id']}/tentativelyAccept", json={"sendResponse": True}).status_code == 202
    rows = _instances(gb, bob_master["id"])
    assert [r["responseStatus"]["response"] for r in rows][:3] == ["notResponded", "tentativelyAccepted", "notResponded"]
    ctl.respond(bob, bob_master["id"], "accept")
    org_master = tenant.graph(org).ok("GET", f"/me/events/{m['id']}")
    assert org_master["attendees"][0]["status"]["response"] == "accepted"
    assert gb.post(f"/me/events/{occ[2]['id']}/decline", json={}).status_code == 202
    assert len(_instances(gb, bob_master["id"])) == 5


def test_outlook_actions_validate_dates_and_ids(ctl, people):
    org = people["org"]["upn"]
    m = ctl.create_event(org, _weekly())
    with pytest.raises(Exception) as err:
        ctl.edit_occurrence(org, m["id"], "2030-01-08", {"subject": "not a slot"})
    assert err.value.status == 404
