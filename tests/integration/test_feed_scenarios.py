"""The change feed, the read API and ``calendar --json`` agree, one scenario per message
kind (issue 12): a person changes their calendar in Outlook (the emulator does what
Outlook does), the sync runs through the function app's timer, queues and writer, and
Communifire's side reads ``calendar-changes`` (validated with the same schema the app
produced it with) and ``GET /calendar/{user}``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.feed_helpers import assert_agree, change_types, drain, of_event, read_api
from tests.integration.test_inbound_rules import ALICE, BOB, next_weekday, synced, weekly_series

pytestmark = pytest.mark.slow


@pytest.fixture
def alice(stack):
    stack.add_user(ALICE, "Alice")
    stack.add_user(BOB, "Bob")
    assert stack.connect("1001", ALICE).status_code == 200
    return stack


def only(messages, event_id=None):
    ids = {m["event_id"] for m in messages}
    assert len(ids) == 1 or event_id, ids
    return of_event(messages, event_id or ids.pop())


def test_a_new_outlook_series_is_one_event_created_message_with_its_instances(alice):
    first = next_weekday(0)
    alice.control.create_event(ALICE, weekly_series("Stand-up", first, count=4))
    synced(alice)
    feed = drain(alice)
    [created] = only(feed)
    assert change_types(created) == ["event_created"] and created["seq"] == 1 and created["source"] == "inbound"
    assert created["users"] == ["1001"] and created["communifire_id"] is None
    assert [i["state"] for i in created["event"]["instances"]] == ["normal"] * 4
    assert_agree(alice, "1001", feed, created["event_id"])
    synced(alice)
    assert drain(alice) == []  # nothing changed: nothing published (A9)


def test_O2_A1_A2_A4_an_outlook_split_is_a_series_split_whose_new_location_shows_on_its_instances(alice):
    first = next_weekday(3)
    master = alice.control.create_event(ALICE, weekly_series("Sprint review", first, count=6))
    synced(alice)
    alice.control.edit_following(ALICE, master["id"], first + timedelta(weeks=3), {"location": {"displayName": "Room 9"}})
    synced(alice)
    feed = drain(alice)
    created, split = only(feed)
    assert split["seq"] == 2 and "series_split" in change_types(split)
    change = next(c for c in split["changes"] if c["type"] == "series_split")
    assert change["segment"]["location"] == "Room 9"
    assert any(r["rule"].startswith("A") for r in split["rules"]) and all(r["reason"] for r in split["rules"])
    api = assert_agree(alice, "1001", feed, split["event_id"])
    locations = [i["location"] for i in api["events"][0]["instances"]]
    assert locations == ["", "", "", "Room 9", "Room 9", "Room 9"]  # rule A4: only the child's instances
    segments = api["events"][0]["series"]["segments"]
    assert segments[0]["until"] == segments[1]["start"] and segments[1]["location"] == "Room 9"


def test_O1_D2_an_outlook_exception_is_an_instances_changed_message_naming_the_field(alice):
    first = next_weekday(1)
    master = alice.control.create_event(ALICE, weekly_series("Planning", first, count=5))
    synced(alice)
    alice.control.edit_occurrence(ALICE, master["id"], first + timedelta(weeks=2), {"subject": "Planning (long)"})
    synced(alice)
    feed = drain(alice)
    _, changed = only(feed)
    assert change_types(changed) == ["instances_changed"]
    [inst] = changed["changes"][0]["instances"]
    assert inst["fields"] == ["title", "state"] and inst["values"]["title"] == "Planning (long)"
    third = changed["event"]["instances"][2]
    assert third["original_start"] == inst["original_start"] and third["state"] == "exception"
    assert_agree(alice, "1001", feed, changed["event_id"])


def test_D3_O7_a_deleted_occurrence_is_an_instances_deleted_message_with_its_original_start(alice):
    first = next_weekday(2)
    master = alice.control.create_event(ALICE, weekly_series("Review", first, count=5))
    synced(alice)
    alice.control.delete_occurrence(ALICE, master["id"], first + timedelta(weeks=1))
    synced(alice)
    feed = drain(alice)
    _, deleted = only(feed)
    assert change_types(deleted) == ["instances_deleted"]
    second = deleted["event"]["instances"][1]
    assert deleted["changes"][0]["original_starts"] == [second["original_start"]] and second["state"] == "deleted"
    assert_agree(alice, "1001", feed, deleted["event_id"])


def test_C4_an_attendees_outlook_rsvp_is_an_rsvps_changed_message_for_that_user(alice):
    first = next_weekday(4, 2)
    alice.control.create_event(ALICE, weekly_series("Demo day", first, count=3, attendees=[BOB]))
    assert alice.connect("1002", BOB).status_code == 200
    synced(alice)
    bob_master = alice.control.find_events(BOB, "Demo day")[0]
    alice.control.respond(BOB, bob_master["id"], "accept")
    synced(alice)
    feed = drain(alice)
    messages = of_event(feed, feed[0]["event_id"])
    last = messages[-1]
    # Alice's and Bob's syncs run concurrently: the answer may be followed by a message from
    # the organizer's side (her attendee list), so the answer is the latest rsvps_changed.
    rsvp = [c for m in messages for c in m["changes"] if c["type"] == "rsvps_changed"][-1]
    assert rsvp["users"] == ["1002"]
    assert {"user_id": "1002", "scope": "all", "response": "accepted", "original_start": None} in rsvp["rsvps"]
    assert all(i["rsvps"] == [{"user_id": "1002", "response": "accepted", "scope": "all"}]
               for i in last["event"]["instances"])
    assert set(last["users"]) == {"1001", "1002"}
    for user in ("1001", "1002"):
        assert_agree(alice, user, feed, last["event_id"])


def test_a_series_deleted_in_outlook_is_an_event_deleted_message_and_leaves_the_read_api(alice):
    first = next_weekday(0, 2)
    master = alice.control.create_event(ALICE, weekly_series("Old sync", first, count=4))
    synced(alice)
    alice.control.delete_event(ALICE, master["id"])
    synced(alice)
    feed = drain(alice)
    created, gone = only(feed)
    assert change_types(gone) == ["event_deleted"] and gone["event"] is None and gone["seq"] == 2
    assert gone["change_id"] != created["change_id"]
    assert read_api(alice, "1001")["events"] == []
    assert_agree(alice, "1001", feed)


def test_the_read_api_narrows_to_from_to_and_refuses_bad_input_clearly(alice):
    first = next_weekday(0)
    alice.control.create_event(ALICE, weekly_series("Stand-up", first, count=4))
    synced(alice)
    whole = read_api(alice, "1001")["events"][0]["instances"]
    narrow = read_api(alice, "1001", **{"from": whole[1]["start"], "to": whole[2]["end"]})
    assert [i["original_start"] for i in narrow["events"][0]["instances"]] == [whole[1]["original_start"],
                                                                             whole[2]["original_start"]]
    resp = alice.http.get(f"{alice.host.url}/calendar/1001", params=alice.key_params(**{"from": "next tuesday"}))
    assert resp.status_code == 400 and "'from'" in resp.json()["message"]
    assert alice.http.get(f"{alice.host.url}/calendar/1001").status_code == 401  # function key


# -- the property: the feed replayed is the read API ----------------------------------------

from datetime import datetime, timezone  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.integration.feed_helpers import replay, users_events  # noqa: E402
from tests.integration.test_inbound_properties import OPS, _series, apply_op  # noqa: E402


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_property_replaying_the_feed_in_seq_order_onto_an_empty_model_gives_the_read_apis_answer(stack, ops):
    """Whatever a person does in Outlook (O1, O2, O4, O5, O7, new and deleted events), every
    message on ``calendar-changes``, applied in per-event sequence order to an empty
    Communifire model, gives exactly what ``GET /calendar/{user}`` answers (issue 12)."""
    stack.control.reset()
    stack.host.invocations.clear()
    tenant = stack.control.add_tenant(tenant_id=stack.tenant_id, name="Contoso")
    stack.control.register_app(stack.client_id, stack.client_secret, [stack.settings.redirect_uri], tenant)
    stack.add_user(ALICE)
    for table in ("Users", "Events", "OutlookIndex", "MeetingIndex", "Audit", "Bindings"):
        t = stack.app.storage.table(table)
        for e in list(t.list_entities()):
            t.delete_entity(e["PartitionKey"], e["RowKey"])
    drain(stack)
    assert stack.connect("1001", ALICE).status_code == 200
    today = datetime.now(timezone.utc).date()
    first = today + timedelta(days=(0 - today.weekday()) % 7 + 7)
    stack.control.create_event(ALICE, _series("Weekly", first))
    synced(stack)
    messages = drain(stack)
    for op, n in ops:
        apply_op(stack.control, op, n, first)
        synced(stack)  # one sync per edit: more messages, more chances to disagree
        messages += drain(stack)
    api = read_api(stack, "1001")
    assert users_events(replay(messages), "1001") == api["events"]
    assert all(m["seq"] >= 1 and m["users"] for m in messages)
    by_event: dict[str, list[int]] = {}
    for m in messages:
        by_event.setdefault(m["event_id"], []).append(m["seq"])
    assert all(seqs == sorted(seqs) and len(set(seqs)) == len(seqs) for seqs in by_event.values())
