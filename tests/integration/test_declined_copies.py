"""An attendee's copy that leaves their calendar is an answer, not a deletion (issue 11
item 6, rule C4, GRAPH.md section 10): declined in Outlook, or deleted (Outlook sends a
decline), the attendee's RSVP becomes declined for the series or for that instance, the
event stays for everyone else, and the organizer's attendee list agrees."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.outbound_helpers import assert_no_echo
from tests.integration.test_inbound_rules import ALICE, BOB, next_weekday, synced, weekly_series

pytestmark = pytest.mark.slow


@pytest.fixture
def meeting(stack):
    """Alice organizes a weekly meeting with Bob; both are connected and synced."""
    stack.add_user(ALICE, "Alice")
    stack.add_user(BOB, "Bob")
    assert stack.connect("1001", ALICE).status_code == 200
    assert stack.connect("1002", BOB).status_code == 200
    first = next_weekday(2, 1)
    master = stack.control.create_event(ALICE, weekly_series("Weekly review", first, count=4, attendees=[BOB]))
    synced(stack)
    return stack, master, first


def the_event(stack) -> dict:
    (event,) = [e for e in stack.calendar("1001")["events"] if e["title"].endswith("Weekly review")]
    return event


def bobs(event: dict) -> list[dict]:
    return [r for r in event["rsvps"] if r["user_id"] == "1002"]


def test_declining_the_series_in_outlook_is_a_declined_rsvp_and_the_event_stays(meeting):
    stack, master, _ = meeting
    (bob_copy,) = stack.control.find_events(BOB, "Weekly review")
    stack.control.respond(BOB, bob_copy["id"], "decline")
    assert stack.control.find_events(BOB, "Weekly review") == []  # Exchange moved it to Deleted Items
    synced(stack)
    event = the_event(stack)
    assert bobs(event) == [{"user_id": "1002", "scope": "all", "response": "declined", "original_start": None}]
    assert [i["state"] for i in event["instances"]] == ["normal"] * 4  # nothing deleted for Alice
    assert {a["email"]: a["response"] for a in event["attendees"]} == {BOB: "declined"}  # the organizer agrees
    assert [i["id"] for i in stack.control.find_events(ALICE, "Weekly review")] == [master["id"]]
    assert_no_echo(stack)


def test_deleting_the_copy_in_outlook_is_a_decline_too_and_replaces_an_earlier_answer(meeting):
    stack, _, _ = meeting
    (bob_copy,) = stack.control.find_events(BOB, "Weekly review")
    stack.control.respond(BOB, bob_copy["id"], "accept")
    synced(stack)
    assert [r["response"] for r in bobs(the_event(stack))] == ["accepted"]
    stack.control.delete_event(BOB, bob_copy["id"])
    synced(stack)
    assert stack.app.users.get("1002").held_plan == ""  # one answer is no emptied mailbox (STYLE rule 6)
    event = the_event(stack)
    assert bobs(event) == [{"user_id": "1002", "scope": "all", "response": "declined", "original_start": None}]
    assert {a["email"]: a["response"] for a in event["attendees"]} == {BOB: "declined"}
    assert len(event["instances"]) == 4
    assert_no_echo(stack)


def test_a_one_instance_copy_that_disappears_declines_that_instance_only(stack):
    stack.add_user(ALICE, "Alice")
    stack.add_user(BOB, "Bob")
    assert stack.connect("1001", ALICE).status_code == 200
    assert stack.connect("1002", BOB).status_code == 200
    first = next_weekday(3, 1)
    master = stack.control.create_event(ALICE, weekly_series("Weekly review", first, count=4))
    synced(stack)
    stack.control.invite_occurrence(ALICE, master["id"], first + timedelta(weeks=1), [BOB])
    synced(stack)
    (bob_copy,) = [e for e in stack.control.mailbox(BOB) if e.get("type") == "singleInstance"]
    stack.control.delete_event(BOB, bob_copy["id"])
    synced(stack)
    event = the_event(stack)
    second = event["instances"][1]["original_start"]
    assert bobs(event) == [{"user_id": "1002", "scope": "single", "response": "declined", "original_start": second}]
    assert [i["state"] for i in event["instances"]] == ["normal", "exception", "normal", "normal"]
    assert_no_echo(stack)
