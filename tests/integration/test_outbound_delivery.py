"""Issue 11: throttling never poisons, permanent failures are poisoned at once, and the
poison tools always work. Through the real local host (its maxDequeueCount, visibility
timeout and poison queue) with the emulator's fault injection, over Azurite."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest

from core.app.outbound_exec import Operations, run_outbound
from core.app.producer import InvalidMessage, OutboundProducer, validate
from core.plan import delivery
from core.plan.timezones import parse_utc
from tests.integration.outbound_helpers import ALICE, BOB, Communifire, connect_all, day0, live, z

pytestmark = pytest.mark.slow


@pytest.fixture
def cf(stack):
    connect_all(stack)
    return Communifire(stack)


def _producer(stack) -> OutboundProducer:
    return OutboundProducer(stack.app.storage.queue("outbound"))


def _wait_for(stack, operation_id: str, statuses: set[str], timeout: float = 120.0):
    """Poll the operation record until the host has brought it to one of ``statuses``
    (a wait for a condition, not a timed assertion)."""
    ops = Operations(stack.app.storage)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = ops.get(operation_id)
        if rec is not None and rec.status in statuses:
            return rec
        time.sleep(0.2)
    raise AssertionError(f"operation {operation_id} never reached {statuses}: {ops.get(operation_id)}")


def _poison_depth(stack, queue: str = "outbound") -> int:
    return int(stack.app.storage.raw_queue(f"{queue}-poison").get_queue_properties().approximate_message_count)


def test_sustained_throttling_outlasting_more_deliveries_than_the_poison_threshold_is_applied_once(stack, cf):
    """429s through six deliveries (the host poisons after five failed ones): each delivery
    re-schedules the work instead of failing, and the change is applied exactly once."""
    cf.create_series(day0(), count=3)
    msg = cf.message("update", "all", event={"title": "Renamed while throttled"})
    per_delivery = 6  # GraphClient's in-call attempts
    stack.control.inject_fault("429", count=per_delivery * 6, upn=ALICE, route="/events", retry_after=0.1)
    stack.control.clear_requests_log()
    _producer(stack).send(msg)
    rec = _wait_for(stack, msg["operation_id"], {delivery.APPLIED, delivery.REJECTED})
    assert rec.status == delivery.APPLIED and rec.waits == 6 and rec.retry_at == ""
    assert stack.control.pending_faults() == []
    assert _poison_depth(stack) == 0
    patches = [r for r in stack.control.requests_log() if r["method"] == "PATCH" and r["status"] < 400]
    assert len(patches) == 1  # exactly once
    assert [i["subject"] for i in live(stack, ALICE)] == ["Renamed while throttled"]
    assert [i["subject"] for i in live(stack, BOB)] == ["Renamed while throttled"]


def test_a_long_retry_after_reschedules_with_that_delay_and_the_record_says_waiting(stack, cf):
    cf.create_series(day0(), count=3)
    msg = cf.message("update", "all", event={"location": "Atrium"})
    stack.control.inject_fault("429", count=1, upn=ALICE, route="/events", retry_after=400)
    before = stack.app.clock().replace(microsecond=0)  # the record keeps whole seconds
    assert run_outbound(stack.app, json.dumps(msg)) == "waiting"
    rec = Operations(stack.app.storage).get(msg["operation_id"])
    assert rec.status == delivery.WAITING and "Retry-After 400" in rec.reason and rec.waits == 1
    retry_at = parse_utc(rec.retry_at)
    assert before + timedelta(seconds=400) <= retry_at <= stack.app.clock() + timedelta(seconds=400)
    # the new copy is on the queue, invisible until then; nothing went to poison
    outbound = stack.app.storage.raw_queue("outbound")
    assert outbound.get_queue_properties().approximate_message_count == 1
    assert list(outbound.peek_messages()) == []
    assert _poison_depth(stack) == 0
    assert live(stack, ALICE)[0].get("location", {}).get("displayName", "") != "Atrium"


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not a JSON object"),
    (json.dumps({"v": 7, "operation_id": "op-v7"}).encode(), "unknown message version 7"),
    ("\u00ff\u00fe".encode("latin-1"), "not a JSON object"),
])
def test_a_message_that_can_never_succeed_is_poisoned_on_its_first_delivery(stack, cf, body, reason):
    stack.app.storage.raw_queue("outbound").send_message(base64.b64encode(body).decode())
    stack.host.wait_idle()
    (failure,) = [i for i in stack.host.invocations if i.function == "apply_outbound"]
    assert failure.ok  # no exception: no host retry, no warning per retry
    assert _poison_depth(stack) == 1
    (poisoned,) = stack.app.storage.raw_queue("outbound-poison").peek_messages()
    assert base64.b64decode(poisoned.content) == body  # exactly what was sent
    from core.app.poison import list_poison

    (entry,) = list_poison(stack.app, "outbound")
    assert entry.status == "rejected" and reason in entry.reason


def test_space_calendar_and_unknown_organizer_are_poisoned_at_once_with_their_reason(stack, cf):
    space = cf.message("create", event={"title": "Space", "start": z(day0()), "end": z(day0() + timedelta(hours=1))})
    space["calendar"] = "space"
    stranger = cf.message("create", event={"title": "Who?", "start": z(day0()), "end": z(day0() + timedelta(hours=1)),
                                           "organizer": {"user_id": "9999", "email": "nobody@contoso.com"}})
    for m in (space, stranger):
        stack.app.storage.queue("outbound").send_message(json.dumps(m))
    stack.host.wait_idle()
    assert all(i.ok for i in stack.host.invocations if i.function == "apply_outbound")
    ops = Operations(stack.app.storage)
    assert "rule C6" in ops.get(space["operation_id"]).reason
    assert "9999 is unknown" in ops.get(stranger["operation_id"]).reason
    assert _poison_depth(stack) == 2 and live(stack, ALICE) == []


def test_enqueue_refuses_a_space_calendar_with_the_reason_the_host_gives(stack, cf):
    msg = cf.message("create", event={"title": "Space", "start": z(day0()), "end": z(day0() + timedelta(hours=1))})
    msg["calendar"] = "space"
    with pytest.raises(InvalidMessage) as refused:
        validate(msg)
    assert run_outbound(stack.app, json.dumps(msg)) == "rejected"
    assert refused.value.problems == [Operations(stack.app.storage).get(msg["operation_id"]).reason]


def test_enqueue_counts_bytes_not_characters_a_30k_character_cjk_body_is_refused(stack, cf):
    start = day0()
    msg = cf.message("create", event={"title": "Big", "start": z(start), "end": z(start + timedelta(hours=1)),
                                      "body": "\u65e5" * 30_000})
    with pytest.raises(InvalidMessage, match="bytes of UTF-8 JSON"):
        validate(msg)
    ascii_msg = dict(msg, event=dict(msg["event"], body="a" * 30_000))
    validate(ascii_msg)  # the same length in ASCII fits
    assert _producer(stack).send(ascii_msg)
