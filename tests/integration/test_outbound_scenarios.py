"""Outbound scenarios: Communifire's changes reach every user's Outlook (issue 5).

Organizer Alice (1001) and invitees Bob (1002) and Carol (1003), all connected. Each test
checks Table Storage (the calendar JSON) and every user's Outlook copy (the emulator),
and that the next inbound sync plans nothing (rule A9).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.outbound_helpers import (
    ALICE, BOB, CAROL, Communifire, assert_no_echo, connect_all, day0, event_doc, live, z,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cf(stack):
    connect_all(stack)
    return Communifire(stack)


def test_creating_a_numbered_series_gives_one_meeting_in_every_outlook_rules_c1_d4_a9(stack, cf):
    start = day0()
    assert cf.create_series(start, count=4) == "applied"
    (master,) = live(stack, ALICE)
    assert master["type"] == "seriesMaster" and master["recurrence"]["range"]["type"] == "numbered"
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 4
    assert any(p["value"] == "cf-evt-1" for p in master["singleValueExtendedProperties"])
    for upn in (BOB, CAROL):
        (copy,) = live(stack, upn)
        assert copy["subject"] == "Standup" and copy["iCalUId"] == master["iCalUId"]
    for uid in ("1001", "1002", "1003"):
        doc = event_doc(stack, uid)
        assert doc["title"] == "Standup" and len(doc["instances"]) == 4
        assert sorted((l["user_id"], l["kind"]) for l in doc["outlook"]) == [
            ("1001", "series"), ("1002", "series"), ("1003", "series")]
    assert_no_echo(stack)


def test_the_same_message_twice_changes_nothing_in_outlook_or_table_storage_section_7(stack, cf):
    msg = cf.message("create", event={"title": "Once", "start": z(day0()), "end": z(day0() + timedelta(hours=1)),
                                      "attendees": [{"email": BOB}]})
    assert cf.send(msg) == "applied"
    before = (stack.control.mailbox(ALICE), stack.control.mailbox(BOB), stack.calendar("1001"))
    stack.control.clear_requests_log()
    assert cf.send(msg) == "duplicate"
    assert [r for r in stack.control.requests_log() if r.get("method") != "GET"] == []
    assert (stack.control.mailbox(ALICE), stack.control.mailbox(BOB))[0] == before[0]
    assert stack.calendar("1001")["events"] == before[2]["events"]


def test_a_title_change_to_all_reaches_the_exception_outlook_leaves_alone_rules_a3_a6_o4_a7(stack, cf):
    start = day0()
    cf.create_series(start)
    cf.do("update", "single", start + timedelta(days=1), event={"location": "Room 9"})
    cf.do("update", "all", event={"title": "Daily sync"})
    (master,) = live(stack, ALICE)
    assert master["subject"] == "Daily sync"
    (exc,) = master["exceptions"]
    assert exc["subject"] == "Daily sync" and exc["location"]["displayName"] == "Room 9"
    for upn in (BOB, CAROL):
        (copy,) = live(stack, upn)
        assert copy["subject"] == "Daily sync" and [e["subject"] for e in copy["exceptions"]] == ["Daily sync"]
    doc = event_doc(stack, "1002")
    assert doc["title"] == "Daily sync"
    changed = [i for i in doc["instances"] if i["state"] == "exception"]
    assert [(i["title"], i["changed_fields"]) for i in changed] == [("Daily sync", ["location"])]
    assert_no_echo(stack)


def test_a_series_time_change_reapplies_each_exceptions_own_changes_rules_a6_o5(stack, cf):
    start = day0()
    cf.create_series(start)
    cf.do("update", "single", start + timedelta(days=2), event={"title": "Planning"})
    stack.control.clear_requests_log()
    cf.do("update", "all", event={"start": z(start + timedelta(hours=2)), "end": z(start + timedelta(hours=2, minutes=30))})
    (master,) = live(stack, ALICE)
    assert master["start"]["dateTime"].startswith(z(start + timedelta(hours=2))[:16])
    (exc,) = master["exceptions"]
    assert exc["subject"] == "Planning" and exc["originalStart"].startswith(z(start + timedelta(days=2, hours=2))[:16])
    doc = event_doc(stack, "1001")
    assert [i["title"] for i in doc["instances"]] == ["Standup", "Standup", "Planning", "Standup", "Standup"]
    patches = [r for r in stack.control.requests_log() if r.get("method") == "PATCH"]
    assert len(patches) == 2  # the master once, the exception once: never per occurrence
    assert_no_echo(stack)


def test_editing_from_an_instance_forward_cuts_the_series_and_keeps_one_event_rules_c3_o2_a1(stack, cf):
    start = day0()
    cf.create_series(start, count=6)
    cf.do("update", "following", start + timedelta(days=3), event={"title": "Standup v2"})
    masters = sorted(live(stack, ALICE), key=lambda m: m["start"]["dateTime"])
    assert [m["subject"] for m in masters] == ["Standup", "Standup v2"]
    assert masters[0]["recurrence"]["range"]["type"] == "endDate"
    for upn in (BOB, CAROL):
        assert sorted(c["subject"] for c in live(stack, upn)) == ["Standup", "Standup v2"]
    for uid in ("1001", "1002", "1003"):
        (doc,) = [e for e in stack.calendar(uid)["events"]]  # one Communifire event (A1)
        assert [s["title"] for s in doc["series"]["segments"]] == ["Standup", "Standup v2"]
        assert [i["title"] for i in doc["instances"]] == ["Standup"] * 3 + ["Standup v2"] * 3
    assert_no_echo(stack)


def test_deleting_one_instance_removes_it_for_everyone_rule_c2(stack, cf):
    start = day0()
    cf.create_series(start)
    cf.do("delete", "single", start + timedelta(days=1))
    (master,) = live(stack, ALICE)
    assert len(master["cancelledOccurrences"]) == 1
    for upn in (BOB, CAROL):
        (copy,) = live(stack, upn)
        assert len(copy["cancelledOccurrences"]) == 1
    assert [i["state"] for i in event_doc(stack, "1003")["instances"]] == [
        "normal", "deleted", "normal", "normal", "normal"]
    assert_no_echo(stack)


def test_deleting_from_an_instance_forward_ends_the_series_there_rule_c2(stack, cf):
    start = day0()
    cf.create_series(start, count=6)
    cf.do("delete", "following", start + timedelta(days=2))
    (master,) = live(stack, ALICE)
    assert master["recurrence"]["range"]["endDate"] == (start + timedelta(days=1)).date().isoformat()
    assert len(event_doc(stack, "1002")["instances"]) == 2
    assert_no_echo(stack)


def test_deleting_a_series_also_cancels_single_instance_invitations_rules_a8_o6(stack, cf):
    start = day0()
    cf.create_series(start, attendees=(BOB,))
    cf.do("invite", "single", start + timedelta(days=1), invitee={"user_id": "1003", "email": CAROL})
    (carol_copy,) = live(stack, CAROL)
    assert carol_copy["type"] == "singleInstance"
    cf.do("delete", "all")
    for upn in (ALICE, BOB, CAROL):
        assert live(stack, upn) == []  # nothing left behind in any Outlook (O6)
    for uid in ("1001", "1002", "1003"):
        assert event_doc(stack, uid) is None
    assert_no_echo(stack)


def test_inviting_someone_to_one_instance_gives_them_a_single_instance_event_rule_c5(stack, cf):
    start = day0()
    cf.create_series(start, attendees=(BOB,))
    cf.do("invite", "single", start + timedelta(days=2), invitee={"user_id": "1003", "email": CAROL})
    (copy,) = live(stack, CAROL)
    assert copy["type"] == "singleInstance" and copy["subject"] == "Standup"
    assert copy["start"]["dateTime"].startswith(z(start + timedelta(days=2))[:16])
    doc = event_doc(stack, "1003")
    assert [(l["user_id"], l["kind"]) for l in doc["outlook"] if l["user_id"] == "1003"] == [("1003", "instance")]
    assert event_doc(stack, "1003")["rsvps"] == []
    assert_no_echo(stack)


def test_an_rsvp_from_an_instance_forward_is_written_as_an_all_instances_answer_rules_a5_c4(stack, cf):
    start = day0()
    cf.create_series(start)
    assert cf.do("rsvp", "following", start + timedelta(days=2), actor="1002", rsvp={"response": "accepted"}) == "applied"
    (copy,) = live(stack, BOB)
    assert copy["responseStatus"]["response"] == "accepted"
    (master,) = live(stack, ALICE)
    assert {a["emailAddress"]["address"]: a["status"]["response"] for a in master["attendees"]}[BOB] == "accepted"
    stack.sync_all()
    rsvps = event_doc(stack, "1002")["rsvps"]
    assert [(r["user_id"], r["scope"], r["response"]) for r in rsvps] == [("1002", "all", "accepted")]
    assert_no_echo(stack)


def test_an_rsvp_to_one_instance_answers_only_that_occurrence_rule_c4(stack, cf):
    start = day0()
    cf.create_series(start)
    cf.do("rsvp", "single", start + timedelta(days=1), actor="1003", rsvp={"response": "tentative"})
    (copy,) = live(stack, CAROL)
    assert copy["responseStatus"]["response"] != "tentativelyAccepted"
    assert [e["responseStatus"]["response"] for e in copy["exceptions"]] == ["tentativelyAccepted"]
    assert_no_echo(stack)
