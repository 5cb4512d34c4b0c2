"""Issue 11, per-event ordering, end to end (Azurite + emulator + local host): messages
delivered out of order end as they were made; older ones are recorded ``stale`` with the
reason and change nothing; an update that arrives before its create waits for it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from core.app.outbound_exec import Operations, run_outbound
from core.app.producer import OutboundProducer
from core.plan import delivery
from tests.integration.outbound_helpers import (
    ALICE, BOB, CAROL, Communifire, assert_no_echo, connect_all, day0, event_doc, live, z,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cf(stack):
    connect_all(stack)
    return Communifire(stack)


def _at(msg: dict, minutes: int) -> dict:
    msg["occurred_at"] = z(datetime.now(timezone.utc) + timedelta(minutes=minutes))
    return msg


def _wait_for(stack, operation_id: str, statuses: set[str], timeout: float = 120.0):
    ops = Operations(stack.app.storage)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = ops.get(operation_id)
        if rec is not None and rec.status in statuses:
            return rec
        time.sleep(0.2)
    raise AssertionError(f"operation {operation_id} never reached {statuses}: {ops.get(operation_id)}")


def test_updates_t1_t3_t2_delivered_as_t1_t3_t2_end_on_t3_everywhere_and_t2_is_stale(stack, cf):
    cf.create_series(day0(), count=3)
    t1, t2, t3 = (_at(cf.message("update", "all", event={"title": f"Title t{n}"}), n) for n in (1, 2, 3))
    assert [cf.send(m) for m in (t1, t3, t2)] == ["applied", "applied", "stale"]
    rec = Operations(stack.app.storage).get(t2["operation_id"])
    assert rec.status == delivery.STALE and t3["operation_id"] in rec.reason and "all:title" in rec.reason
    assert event_doc(stack, "1001")["title"] == "Title t3"
    for upn in (ALICE, BOB, CAROL):
        assert [i["subject"] for i in live(stack, upn)] == ["Title t3"]
    assert cf.send(t2) == "duplicate"  # a stale operation is final too
    assert_no_echo(stack)


def test_an_older_update_still_applies_the_fields_no_newer_change_touched(stack, cf):
    cf.create_series(day0(), count=3)
    newer = _at(cf.message("update", "all", event={"title": "New name"}), 5)
    older = _at(cf.message("update", "all", event={"title": "Old name", "location": "Hall B"}), 2)
    assert cf.send(newer) == "applied"
    assert cf.send(older) == "applied"
    assert "partly stale" in Operations(stack.app.storage).get(older["operation_id"]).reason
    (master,) = live(stack, ALICE)
    assert master["subject"] == "New name" and master["location"]["displayName"] == "Hall B"
    doc = event_doc(stack, "1001")
    assert (doc["title"], doc["location"]) == ("New name", "Hall B")


def test_the_backend_sequence_orders_messages_whatever_their_clocks_say(stack, cf):
    create = cf.message("create", event={"title": "v0", "start": z(day0()), "end": z(day0() + timedelta(hours=1))})
    create["sequence"] = 1
    assert cf.send(create) == "applied"
    second = _at(cf.message("update", "all", event={"title": "v2"}), 1)
    second["sequence"] = 3
    first = _at(cf.message("update", "all", event={"title": "v1"}), 9)  # a later clock, an older change
    first["sequence"] = 2
    assert [cf.send(second), cf.send(first)] == ["applied", "stale"]
    assert [i["subject"] for i in live(stack, ALICE)] == ["v2"]


def test_an_update_delivered_before_its_create_waits_then_applies_once_it_is_there(stack, cf):
    producer = OutboundProducer(stack.app.storage.queue("outbound"))
    create = cf.message("create", event={"title": "Planning", "start": z(day0()),
                                         "end": z(day0() + timedelta(hours=1)), "attendees": [{"email": BOB}]})
    update = _at(cf.message("update", "all", event={"location": "Room 9"}), 1)
    producer.send(update)
    rec = _wait_for(stack, update["operation_id"], {delivery.WAITING})
    assert "waits" in rec.reason and rec.retry_at
    producer.send(create)
    _wait_for(stack, create["operation_id"], {delivery.APPLIED})
    rec = _wait_for(stack, update["operation_id"], {delivery.APPLIED, delivery.REJECTED})
    assert rec.status == delivery.APPLIED
    (master,) = live(stack, ALICE)
    assert master["subject"] == "Planning" and master["location"]["displayName"] == "Room 9"
    assert int(stack.app.storage.raw_queue("outbound-poison").get_queue_properties().approximate_message_count) == 0


def test_an_update_older_than_the_delete_of_its_event_is_stale_not_poisoned(stack, cf):
    cf.create_series(day0(), count=3)
    late_update = _at(cf.message("update", "all", event={"title": "Too late"}), 1)
    assert cf.send(_at(cf.message("delete", "all"), 2)) == "applied"
    assert run_outbound(stack.app, json.dumps(late_update)) == "stale"
    rec = Operations(stack.app.storage).get(late_update["operation_id"])
    assert rec.status == delivery.STALE and "was deleted by" in rec.reason
    assert live(stack, ALICE) == [] and event_doc(stack, "1001") is None
