"""Outbound faults and bad input (SPEC section 7): poison records, resume, 404s, ETags."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from core.app import service
from core.cli.outbound import poison_entries, replay
from core.adapters.events import EventStore
from core.plan.outbound import parse_message
from core.app.outbound_exec import OperationRecord, Operations, OutboundRunner, run_outbound
from tests.integration.outbound_helpers import (
    ALICE, BOB, CAROL, Communifire, assert_no_echo, connect_all, day0, event_doc, live, z,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cf(stack):
    connect_all(stack)
    return Communifire(stack)


def _writes(stack) -> list[dict]:
    return [r for r in stack.control.requests_log() if r.get("method") in ("POST", "PATCH", "DELETE")]


@pytest.mark.parametrize("body, reason", [
    ("{not json", "not a JSON object"),
    (json.dumps({"v": 2, "operation_id": "x"}), "unknown message version 2"),
    (json.dumps({"v": 1, "operation_id": "op-bad", "occurred_at": "2026-01-01T00:00:00Z", "actor": {"user_id": "1001"},
                 "calendar": "my", "operation": "create", "event": {"id": "e", "organizer": {"user_id": "1001",
                 "email": ALICE}, "title": "No times"}}), "event.start: is required"),
])
def test_a_malformed_or_unknown_version_message_is_poisoned_with_its_reason_and_writes_nothing(stack, cf, body, reason):
    stack.control.clear_requests_log()
    assert run_outbound(stack.app, body) == "rejected"  # on its first delivery (issue 11)
    assert _writes(stack) == []
    (entry,) = poison_entries(stack.app)
    assert entry["status"] == "rejected" and reason in entry["reason"] and entry["in_poison_queue"]


def test_a_space_calendar_message_is_refused_with_a_clear_reason_rule_c6(stack, cf):
    msg = cf.message("create", event={"title": "Space meeting", "start": z(day0()), "end": z(day0() + timedelta(hours=1))})
    msg["calendar"] = "space"
    assert cf.send(msg) == "rejected"
    assert live(stack, ALICE) == [] and event_doc(stack, "1001") is None
    assert "space calendars are never synced" in poison_entries(stack.app)[0]["reason"]


def test_an_unconnected_organizer_is_poisoned_and_replay_applies_it_once_they_connect(make_stack):
    stack = make_stack(run_queues=False)  # the test takes the replayed message itself: no host consumer races it
    stack.add_user(ALICE)
    cf = Communifire(stack)
    msg = cf.message("create", event={"title": "Later", "start": z(day0()), "end": z(day0() + timedelta(hours=1))})
    assert cf.send(msg) == "rejected"  # poisoned at once, with the reason
    assert live(stack, ALICE) == []
    (entry,) = poison_entries(stack.app)
    assert entry["in_poison_queue"] and entry["id"] == msg["operation_id"] and "1001" in entry["reason"]
    stack.connect("1001", ALICE)
    assert replay(stack.app, msg["operation_id"])
    assert list(stack.app.storage.queue("outbound-poison").peek_messages()) == []
    (back,) = stack.app.storage.queue("outbound").receive_messages()
    assert run_outbound(stack.app, back.content) == "applied"
    assert [i["subject"] for i in live(stack, ALICE)] == ["Later"]
    assert poison_entries(stack.app) == []


def test_throttling_is_waited_out_and_the_operation_completes_section_7(stack, cf):
    stack.control.inject_fault("429", count=2, upn=ALICE, route="/events", retry_after=0.1)
    assert cf.create_series(day0()) == "applied"
    assert len(live(stack, ALICE)) == 1 and len(live(stack, BOB)) == 1
    assert stack.control.pending_faults() == []
    assert_no_echo(stack)


def test_a_failure_midway_resumes_on_redelivery_without_repeating_done_writes_section_7(stack, cf):
    start = day0()
    cf.create_series(start)
    cf.do("update", "single", start + timedelta(days=1), event={"location": "Room 2"})
    msg = cf.message("update", "all", event={"title": "Renamed"})
    stack.control.clear_requests_log()
    stack.control.inject_fault("503", count=6, upn=ALICE, route="/instances", retry_after=0)
    # the master was patched; finding the exception kept failing: the work waits (issue 11)
    assert cf.send(msg) == "waiting"
    rec = Operations(stack.app.storage).get(msg["operation_id"])
    assert rec.status == "waiting" and rec.retry_at and "503" in rec.reason
    assert cf.send(msg) == "applied"  # the re-scheduled copy
    patches = [r for r in _writes(stack) if r["method"] == "PATCH"]
    assert len(patches) == 2  # the master once (not again on redelivery), then the exception
    (master,) = live(stack, ALICE)
    assert master["subject"] == "Renamed" and [e["subject"] for e in master["exceptions"]] == ["Renamed"]
    assert cf.send(msg) == "duplicate"
    assert_no_echo(stack)


def test_deleting_an_event_already_deleted_in_outlook_counts_as_done_404_section_7(stack, cf):
    cf.create_series(day0())
    (master,) = live(stack, ALICE)
    stack.control.delete_event(ALICE, master["id"])
    assert cf.do("delete", "all") == "applied"
    assert event_doc(stack, "1001") is None and live(stack, BOB) == [] and live(stack, CAROL) == []


class _BusyEvents(EventStore):
    """An EventStore where another worker changes the event once, just before our write."""

    def __init__(self, storage):
        super().__init__(storage)
        self.conflicts = 0

    def apply(self, change):
        if self.conflicts == 0 and change.base_etag:
            self.conflicts += 1
            loaded = self.load(change.event_id)
            table = self._events
            root = table.get_entity(change.event_id, "event")
            table.update_entity(root, mode="merge")  # a new ETag: someone else wrote
            del loaded
        return super().apply(change)


def test_an_etag_conflict_reloads_and_replans_instead_of_overwriting_section_7(stack, cf):
    start = day0()
    cf.create_series(start)
    msg = parse_message(cf.message("update", "all", event={"location": "Atrium"}))
    busy = _BusyEvents(stack.app.storage)
    ctx = replace(service.sync_context(stack.app), events=busy)
    ops = Operations(stack.app.storage)
    runner = OutboundRunner(ctx, stack.app.storage, ops, stack.app.clock)
    outcome = runner.run(msg, OperationRecord(key=msg.operation_id))
    assert outcome.status == "applied" and busy.conflicts == 1
    assert live(stack, ALICE)[0]["location"]["displayName"] == "Atrium"
    assert event_doc(stack, "1002")["location"] == "Atrium"
    assert_no_echo(stack)
