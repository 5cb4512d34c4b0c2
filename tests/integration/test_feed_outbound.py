"""Outbound results, outbound side effects on the change feed, and identity binding
(issue 12), through the real stack: Communifire's messages on ``outbound``, what comes
back on ``outbound-results`` and ``calendar-changes``, and the read API."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from core.app.outbound_exec import run_outbound
from tests.integration.feed_helpers import assert_agree, change_types, drain, read_api
from tests.integration.outbound_helpers import ALICE, Communifire, connect_all, day0, event_doc, z
from tests.integration.test_inbound_rules import next_weekday, synced, weekly_series

pytestmark = pytest.mark.slow


@pytest.fixture
def cf(stack):
    connect_all(stack)
    return Communifire(stack)


def results(stack):
    return drain(stack, "outbound-results")


def test_every_operation_gets_one_applied_result_carrying_the_event_as_the_read_api_shows_it(stack, cf):
    start = day0()
    assert cf.create_series(start, count=3) == "applied"
    [created] = results(stack)
    assert created["status"] == "applied" and created["operation_id"] == "cf-evt-1-op-1"
    assert created["event_id"] == created["communifire_id"] == "cf-evt-1"  # created from Communifire: bound
    assert created["seq"] == 1 and created["side_effects"] == []
    assert {w["user_id"] for w in created["outlook_writes"]} >= {"1001"}
    assert created["event"] == event_doc(stack, "1001")
    assert drain(stack) == []  # nothing beyond what was asked: no change-feed message
    # the same operation again: nothing is written and nothing new is said
    assert cf.send(cf.message("create", event={}) | {"operation_id": "cf-evt-1-op-1"}) == "duplicate"
    assert results(stack) == []


def test_A3_A6_O5_an_edit_all_time_change_publishes_the_exception_that_lost_its_own_time(stack, cf):
    start = day0()
    cf.create_series(start, count=5)
    cf.do("update", "single", start + timedelta(days=2),
          event={"title": "Planning", "start": z(start + timedelta(days=2, hours=1)),
                 "end": z(start + timedelta(days=2, hours=1, minutes=30))})
    results(stack), drain(stack)
    cf.do("update", "all", event={"start": z(start + timedelta(hours=2)), "end": z(start + timedelta(hours=2, minutes=30))})
    [result] = results(stack)
    [feed] = drain(stack)
    assert result["status"] == "applied" and feed["source"] == "outbound" and feed["operation_id"] == result["operation_id"]
    assert feed["change_id"] == result["change_id"] and feed["seq"] == result["seq"] == 3
    assert feed["changes"] == result["side_effects"]
    [lost] = feed["changes"][0]["instances"]
    assert lost["previous_original_start"] == z(start + timedelta(days=2)) and set(lost["fields"]) >= {"start", "end"}
    assert lost["original_start"] == z(start + timedelta(days=2, hours=2))
    assert lost["values"]["start"] == lost["original_start"]  # it moved with the series (A6)
    api = read_api(stack, "1002")
    moved = next(i for i in api["events"][0]["instances"] if i["original_start"] == lost["original_start"])
    assert moved["title"] == "Planning" and moved["start"] == lost["values"]["start"]
    assert feed["event"] == api["events"][0] == event_doc(stack, "1002")


def test_a_rejected_operation_says_why_on_the_results_queue_and_the_poison_record(stack, cf):
    msg = cf.message("update", "all", event={"title": "Nothing to update"})
    msg["calendar"] = "space"
    assert cf.send(msg) == "rejected"  # poisoned at once (issue 11), with its reason
    [result] = results(stack)
    assert result["status"] == "rejected" and "C6" in result["reason"] and result["event"] is None


def test_a_newer_producers_extra_field_is_ignored_and_an_unknown_major_version_refused(stack, cf, caplog):
    msg = cf.message("create", event={"title": "Hello", "start": z(day0()), "end": z(day0() + timedelta(hours=1)),
                                      "colour": "teal"})
    msg["priority"] = "high"
    with caplog.at_level(logging.INFO, logger="core.app.contracts"):
        assert cf.send(msg) == "applied"
    assert sum("fields this version does not know" in r.getMessage() for r in caplog.records) == 1
    results(stack)
    assert run_outbound(stack.app, json.dumps({**msg, "v": 2, "operation_id": "v2-op"})) == "rejected"
    [refused] = results(stack)
    assert refused["operation_id"] == "v2-op" and "unknown message version 2" in refused["reason"]


def test_born_in_outlook_feed_then_bind_then_every_message_carries_both_ids_and_names_the_event_either_way(stack):
    """The documented flow: an event born in Outlook reaches Communifire on the feed,
    Communifire creates its content and sends ``bind``; later messages carry both ids,
    and Communifire may name the event by its own id (docs/changes.md)."""
    stack.add_user(ALICE, "Alice")
    assert stack.connect("1001", ALICE).status_code == 200
    first = next_weekday(2)
    stack.control.create_event(ALICE, weekly_series("Born in Outlook", first, count=3))
    synced(stack)
    [created] = drain(stack)
    event_id = created["event_id"]
    assert created["communifire_id"] is None and change_types(created) == ["event_created"]
    cf = Communifire(stack, event_id="cf-content-77")
    bind = {"v": 1, "operation_id": "bind-77", "occurred_at": z(day0()), "actor": {"user_id": "1001"},
            "calendar": "my", "operation": "bind", "event": {"id": event_id}, "communifire_id": "cf-content-77"}
    assert cf.send(bind) == "applied"
    [bound] = results(stack)
    assert bound["status"] == "applied" and (bound["event_id"], bound["communifire_id"]) == (event_id, "cf-content-77")
    assert bound["seq"] == 2 and bound["event"]["communifire_id"] == "cf-content-77"
    assert read_api(stack, "1001", event="cf-content-77")["events"][0]["id"] == event_id
    # a second, different bind of the same event is refused with the reason
    assert cf.send({**bind, "operation_id": "bind-78", "communifire_id": "cf-content-78"}) == "rejected"
    [refused] = results(stack)
    assert refused["status"] == "rejected" and "already bound" in refused["reason"]
    # Communifire names the event by its own id
    assert cf.do("update", "all", event={"location": "Room 4"}) == "applied"
    [updated] = results(stack)
    assert (updated["event_id"], updated["communifire_id"]) == (event_id, "cf-content-77")
    assert updated["event"]["location"] == "Room 4"
    # a later Outlook change carries both ids
    master = next(e for e in stack.control.mailbox(ALICE) if e.get("type") == "seriesMaster")
    stack.control.delete_occurrence(ALICE, master["id"], first + timedelta(weeks=1))
    synced(stack)
    feed = drain(stack)
    [deleted] = [m for m in feed if "instances_deleted" in change_types(m)]
    assert (deleted["event_id"], deleted["communifire_id"]) == (event_id, "cf-content-77") and deleted["seq"] == 4
    assert_agree(stack, "1001", [created, bound, updated, *feed], event_id)


def test_an_operation_redelivered_after_its_commit_publishes_its_result_again_and_writes_nothing(stack, cf):
    """At least once (issue 12): a crash after the Table Storage commit but before the
    status was saved leaves the operation ``running``; its redelivery finds the committed
    ``op|`` row and publishes the same result again instead of writing twice."""
    from core.app.outbound_exec import Operations

    start = day0()
    msg = cf.message("create", event={"title": "Once", "start": z(start), "end": z(start + timedelta(hours=1))})
    assert cf.send(msg) == "applied"
    [first] = results(stack)
    ops = Operations(stack.app.storage)
    rec = ops.get(msg["operation_id"])
    rec.status = "running"  # the crash: the final status never reached the record
    ops.save(rec, stack.app.clock())
    stack.control.clear_requests_log()
    assert cf.send(msg) == "applied"
    [again] = results(stack)
    assert (again["change_id"], again["seq"], again["event"]) == (first["change_id"], first["seq"], first["event"])
    assert [r for r in stack.control.requests_log() if r.get("method") in ("POST", "PATCH", "DELETE")] == []
