"""Inbound sync, one scenario per rule: a person changes their calendar in Outlook (the
emulator's control API, which does what Outlook does), the sync runs through the
function app's own timer, queues and writer, and ``calendar --json`` shows the result.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.slow

ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"


def next_weekday(weekday: int, weeks_ahead: int = 1) -> date:
    today = datetime.now(timezone.utc).date()
    return today + timedelta(days=(weekday - today.weekday()) % 7 + 7 * weeks_ahead)


def weekly_series(subject: str, first: date, count: int = 8, hour: int = 9, zone: str = "GMT Standard Time",
                  attendees: list[str] = ()) -> dict:
    return {
        "subject": subject,
        "start": {"dateTime": f"{first.isoformat()}T{hour:02d}:00:00.0000000", "timeZone": zone},
        "end": {"dateTime": f"{first.isoformat()}T{hour:02d}:30:00.0000000", "timeZone": zone},
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
            "range": {"type": "numbered", "startDate": first.isoformat(), "numberOfOccurrences": count},
        },
    }


@pytest.fixture
def alice(stack):
    stack.add_user(ALICE, "Alice")
    stack.add_user(BOB, "Bob")
    stack.add_user(CAROL, "Carol")
    assert stack.connect("1001", ALICE).status_code == 200
    return stack


def only_event(stack, user_id="1001"):
    events = stack.calendar(user_id)["events"]
    assert len(events) == 1, [e["title"] for e in events]
    return events[0]


def states(event):
    return [i["state"] for i in event["instances"]]


def synced(stack):
    status = stack.sync_all()
    assert status["recent_failures"] == [], status["recent_failures"]
    poison = [stack.app.storage.queue_name(q) for q in ("writes-poison", "sync-jobs-poison")]
    assert all(q in status["queues"] for q in poison), status["queues"]
    assert [status["queues"][q] for q in poison] == [0, 0]


def test_a_weekly_series_becomes_one_event_with_its_instances_in_the_series_zone(alice):
    first = next_weekday(0)
    alice.control.create_event(ALICE, weekly_series("Stand-up", first, count=6))
    synced(alice)
    event = only_event(alice)
    assert event["series"]["segments"][0]["recurrence"]["range"]["numberOfOccurrences"] == 6  # rule D4
    assert states(event) == ["normal"] * 6
    # 09:00 London wall-clock time on every date, whether GMT or BST (DST-correct).
    from zoneinfo import ZoneInfo

    for inst in event["instances"]:
        local = datetime.fromisoformat(inst["start"].replace("Z", "+00:00")).astimezone(ZoneInfo("Europe/London"))
        assert (local.hour, local.minute) == (9, 0)


def test_O1_D2_an_edited_occurrence_becomes_an_exception_that_knows_which_fields_changed(alice):
    first = next_weekday(1)
    master = alice.control.create_event(ALICE, weekly_series("Planning", first, count=5))
    synced(alice)
    alice.control.edit_occurrence(ALICE, master["id"], first + timedelta(weeks=2), {"subject": "Planning (long)"})
    synced(alice)
    event = only_event(alice)
    third = event["instances"][2]
    assert third["state"] == "exception" and third["changed_fields"] == ["title"] and third["title"] == "Planning (long)"
    assert states(event).count("exception") == 1
    assert event["title"] == "Planning"


def test_D3_O7_a_deleted_occurrence_becomes_a_deleted_instance(alice):
    first = next_weekday(2)
    master = alice.control.create_event(ALICE, weekly_series("Review", first, count=5))
    synced(alice)
    alice.control.delete_occurrence(ALICE, master["id"], first + timedelta(weeks=1))
    synced(alice)
    assert states(only_event(alice)) == ["normal", "deleted", "normal", "normal", "normal"]


def test_A1_A2_O2_edit_this_and_following_stays_one_event_with_a_child_segment(alice):
    first = next_weekday(3)
    master = alice.control.create_event(ALICE, weekly_series("Sprint review", first, count=8))
    synced(alice)
    alice.control.edit_following(ALICE, master["id"], first + timedelta(weeks=4), {"location": {"displayName": "Room 9"}})
    synced(alice)
    event = only_event(alice)  # rule A1: never broken apart
    segments = event["series"]["segments"]
    assert len(segments) == 2
    child = [l for l in event["outlook"] if l["segment_start"] == segments[1]["start"]]
    assert child and "A2" in child[0]["evidence"]
    # The range cut is not mistaken for deletions (rule D3).
    assert "deleted" not in states(event) and len(event["instances"]) == 8


def test_A2a_a_new_series_with_another_subject_after_a_cut_is_kept_apart(alice):
    first = next_weekday(4)
    master = alice.control.create_event(ALICE, weekly_series("Retro", first, count=8))
    synced(alice)
    alice.control.edit_following(ALICE, master["id"], first + timedelta(weeks=4), {"subject": "Retro v2"})
    synced(alice)
    titles = sorted(e["title"] for e in alice.calendar("1001")["events"])
    assert titles == ["Retro", "Retro v2"]


def test_O4_a_series_title_change_leaves_an_exception_with_its_own_change(alice):
    first = next_weekday(0, 2)
    master = alice.control.create_event(ALICE, weekly_series("Sync", first, count=4))
    synced(alice)
    alice.control.invite_occurrence(ALICE, master["id"], first + timedelta(weeks=1), [BOB])
    alice.control.change_series(ALICE, master["id"], {"subject": "Weekly sync"})
    synced(alice)
    event = only_event(alice)
    assert event["title"] == "Weekly sync"
    second = event["instances"][1]
    assert second["state"] == "exception" and "attendees" in second["changed_fields"]


def test_D1_re_sending_a_series_with_no_real_change_plans_nothing(alice):
    first = next_weekday(1, 2)
    master = alice.control.create_event(ALICE, weekly_series("Ops", first, count=4))
    synced(alice)
    alice.control.update_event(ALICE, master["id"], {"subject": "Ops"})  # new changeKey, same content
    from core.app import service
    from core.app.sync import plan_user

    plan = plan_user(service.sync_context(alice.app), alice.app.users.get("1001"), alice.app.clock(), full=True).plan
    assert plan.actions == ()  # rule A9: a new changeKey alone is not a change


def test_a_second_sync_after_many_outlook_edits_plans_nothing(alice):
    first = next_weekday(2, 2)
    master = alice.control.create_event(ALICE, weekly_series("Mixed", first, count=6))
    alice.control.edit_occurrence(ALICE, master["id"], first + timedelta(weeks=1), {"subject": "Mixed*"})
    alice.control.delete_occurrence(ALICE, master["id"], first + timedelta(weeks=2))
    synced(alice)
    from core.app import service
    from core.app.sync import plan_user

    plan = plan_user(service.sync_context(alice.app), alice.app.users.get("1001"), alice.app.clock(), full=True).plan
    assert plan.actions == ()


def test_A7_an_attendee_who_connects_sees_the_same_event_not_a_second_one(alice):
    first = next_weekday(3, 2)
    alice.control.create_event(ALICE, weekly_series("Team meeting", first, count=3, attendees=[BOB]))
    synced(alice)
    assert alice.connect("1002", BOB).status_code == 200
    synced(alice)
    a, b = only_event(alice, "1001"), only_event(alice, "1002")
    assert a["id"] == b["id"] and b["title"] == "Team meeting"
    assert {l["user_id"] for l in a["outlook"]} == {"1001", "1002"}


def test_RSVP_an_attendees_response_to_the_series_and_to_one_occurrence(alice):
    first = next_weekday(4, 2)
    master = alice.control.create_event(ALICE, weekly_series("Demo day", first, count=3, attendees=[BOB]))
    assert alice.connect("1002", BOB).status_code == 200
    synced(alice)
    bob_master = alice.control.find_events(BOB, "Demo day")[0]
    alice.control.respond(BOB, bob_master["id"], "accept")
    synced(alice)
    rsvps = only_event(alice, "1002")["rsvps"]
    assert {"user_id": "1002", "scope": "all", "response": "accepted", "original_start": None} in rsvps
    assert master["id"]


def test_safety_a_mailbox_that_suddenly_comes_back_empty_is_held_for_an_administrator(alice):
    for n in range(5):
        day = next_weekday(n % 5, 1)
        alice.control.create_event(ALICE, {"subject": f"Item {n}",
                                           "start": {"dateTime": f"{day}T10:00:00.0000000", "timeZone": "UTC"},
                                           "end": {"dateTime": f"{day}T11:00:00.0000000", "timeZone": "UTC"}})
    synced(alice)
    for item in alice.control.mailbox(ALICE):
        alice.control.delete_event(ALICE, item["id"])
    alice.sync_all()
    user = alice.app.users.get("1001")
    assert user.held_plan and "held" in user.last_error
    assert len(alice.calendar("1001")["events"]) == 5  # nothing deleted


def test_D3_a_series_whose_every_occurrence_in_the_window_was_deleted_is_not_a_deleted_series(alice):
    first = next_weekday(0)
    master = alice.control.create_event(ALICE, weekly_series("Fading", first, count=2))
    synced(alice)
    for week in range(2):
        alice.control.delete_occurrence(ALICE, master["id"], first + timedelta(weeks=week))
    alice.app.users.save(replace(alice.app.users.get("1001"), delta_link=""))  # a full round
    synced(alice)
    event = only_event(alice)
    assert states(event) == ["deleted", "deleted"]


def test_C5_O5_A7_a_one_instance_invitation_is_that_instance_of_the_same_event_for_the_invitee(alice):
    first = next_weekday(1, 1)
    master = alice.control.create_event(ALICE, weekly_series("Board", first, count=4))
    synced(alice)
    assert alice.connect("1002", BOB).status_code == 200
    alice.control.invite_occurrence(ALICE, master["id"], first + timedelta(weeks=1), [BOB])
    synced(alice)
    bob_copy = [e for e in alice.control.mailbox(BOB) if e.get("type") == "singleInstance"]
    assert len(bob_copy) == 1  # Outlook shows Bob a single-instance event (C5)
    alice.control.respond(BOB, bob_copy[0]["id"], "accept")
    synced(alice)
    event_a, event_b = only_event(alice, "1001"), only_event(alice, "1002")
    assert event_a["id"] == event_b["id"]  # one Communifire event, not a second one for Bob
    (bob_link,) = [l for l in event_b["outlook"] if l["user_id"] == "1002"]
    assert bob_link["kind"] == "instance" and bob_link["instance_start"] == event_a["instances"][1]["original_start"]
    assert [r for r in event_b["rsvps"] if r["user_id"] == "1002"] == [
        {"user_id": "1002", "scope": "single", "response": "accepted",
         "original_start": event_a["instances"][1]["original_start"]}]
    # O5: the organizer moves the series; Bob keeps a copy with the old name, Communifire one name (A7).
    alice.control.change_series(ALICE, master["id"], {
        "subject": "Board (moved)",
        "start": {"dateTime": f"{first}T11:00:00.0000000", "timeZone": "GMT Standard Time"},
        "end": {"dateTime": f"{first}T11:30:00.0000000", "timeZone": "GMT Standard Time"}})
    synced(alice)
    assert [e["subject"] for e in alice.control.mailbox(BOB)] == ["Board"]
    event_b = only_event(alice, "1002")
    assert event_b["title"] == "Board (moved)" == only_event(alice, "1001")["title"]


def test_A7_organizer_and_attendee_syncing_a_new_meeting_at_once_get_one_event(alice):
    assert alice.connect("1002", BOB).status_code == 200
    synced(alice)
    day = next_weekday(2, 1)
    alice.control.create_event(ALICE, {"subject": "Kick-off", "attendees": [{"emailAddress": {"address": BOB}}],
                                       "start": {"dateTime": f"{day}T10:00:00.0000000", "timeZone": "UTC"},
                                       "end": {"dateTime": f"{day}T11:00:00.0000000", "timeZone": "UTC"}})
    synced(alice)  # both users' jobs run in the same round
    a, b = only_event(alice, "1001"), only_event(alice, "1002")
    assert a["id"] == b["id"] and {l["user_id"] for l in a["outlook"]} == {"1001", "1002"}


def test_C5_A7_an_invitee_who_syncs_a_one_instance_invitation_first_still_gets_one_event(alice):
    assert alice.connect("1002", BOB).status_code == 200
    synced(alice)
    first = next_weekday(3, 1)
    master = alice.control.create_event(ALICE, weekly_series("Launch prep", first, count=4))
    alice.control.invite_occurrence(ALICE, master["id"], first + timedelta(weeks=2), [BOB])
    alice.make_everyone_due()
    from core.app import service
    from core.app.sync import sync_user

    sync_user(service.sync_context(alice.app), "1002", inline=True)  # the invitee first
    assert only_event(alice, "1002")["title"] == "Launch prep"
    synced(alice)  # then the organizer (and the invitee again)
    a, b = only_event(alice, "1001"), only_event(alice, "1002")
    assert a["id"] == b["id"] and len(a["instances"]) == 4
    (bob_link,) = [l for l in b["outlook"] if l["user_id"] == "1002"]
    assert bob_link["kind"] == "instance" and bob_link["instance_start"] == a["instances"][2]["original_start"]
    from core.app.sync import plan_user

    for user in ("1001", "1002"):
        plan = plan_user(service.sync_context(alice.app), alice.app.users.get(user), alice.app.clock(), full=True).plan
        assert plan.actions == (), plan.to_json()
