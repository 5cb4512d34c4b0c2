"""Issue 11, concurrent edits merged by field, against the emulator's Exchange behaviour
(412 on a stale If-Match): an Outlook edit racing our write is never lost, a field changed
on both sides goes to the newer change (D2) and the loser is in the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.adapters.audit import AuditStore
from tests.integration.outbound_helpers import (
    ALICE, Communifire, assert_no_echo, connect_all, day0, event_doc, inbound_plans, live, z,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cf(stack):
    connect_all(stack)
    c = Communifire(stack)
    create = c.message("create", event={"title": "Planning", "location": "Room 1", "start": z(day0()),
                                        "end": z(day0() + timedelta(hours=1))})
    create["occurred_at"] = z(datetime.now(timezone.utc) - timedelta(hours=2))
    assert c.send(create) == "applied"
    return c


def _patches(stack) -> list[dict]:
    return [r for r in stack.control.requests_log() if r["method"] == "PATCH"]


def _conflicts(stack) -> list[dict]:
    return [e for e in AuditStore(stack.app.storage).read("1001") if e["kind"] == "outbound conflict"]


def test_an_outlook_edit_racing_our_write_reaches_communifire_and_a_full_replan_finds_it(stack, cf):
    (item,) = live(stack, ALICE)
    stack.control.update_event(ALICE, item["id"], {"location": {"displayName": "Atrium"}})  # not synced yet
    stack.control.clear_requests_log()
    assert cf.do("update", "all", event={"title": "Planning v2"}) == "applied"
    assert [p["status"] for p in _patches(stack)] == [412, 200]  # If-Match refused, merged, retried
    (item,) = live(stack, ALICE)
    assert (item["subject"], item["location"]["displayName"]) == ("Planning v2", "Atrium")
    # the snapshot holds what we wrote, not the read-back: the location is still news
    assert [a[0] for a in inbound_plans(stack)["1001"]]
    stack.sync_all()
    doc = event_doc(stack, "1001")
    assert (doc["title"], doc["location"]) == ("Planning v2", "Atrium")
    assert_no_echo(stack)


def test_a_field_changed_on_both_sides_goes_to_the_newer_outlook_edit_d2(stack, cf):
    (item,) = live(stack, ALICE)
    msg = cf.message("update", "all", event={"title": "Communifire's name"})
    msg["occurred_at"] = z(datetime.now(timezone.utc) - timedelta(hours=1))  # made before the Outlook edit
    stack.control.update_event(ALICE, item["id"], {"subject": "Outlook's name"})
    assert cf.send(msg) == "applied"
    assert [i["subject"] for i in live(stack, ALICE)] == ["Outlook's name"]
    (conflict,) = _conflicts(stack)
    assert conflict["rule"] == "D2" and "outlook won" in conflict["reason"] and "Communifire's name" in conflict["reason"]
    stack.sync_all()
    assert event_doc(stack, "1001")["title"] == "Outlook's name"
    assert_no_echo(stack)


def test_a_field_changed_on_both_sides_goes_to_the_newer_communifire_change_d2(stack, cf):
    (item,) = live(stack, ALICE)
    stack.control.update_event(ALICE, item["id"], {"subject": "Outlook's name", "location": {"displayName": "Hall"}})
    msg = cf.message("update", "all", event={"title": "Communifire's name"})
    msg["occurred_at"] = z(datetime.now(timezone.utc) + timedelta(minutes=5))
    assert cf.send(msg) == "applied"
    (item,) = live(stack, ALICE)
    assert (item["subject"], item["location"]["displayName"]) == ("Communifire's name", "Hall")
    (conflict,) = _conflicts(stack)
    assert "communifire won" in conflict["reason"] and 'lost "Outlook\'s name"' in conflict["reason"]
    stack.sync_all()
    doc = event_doc(stack, "1001")
    assert (doc["title"], doc["location"]) == ("Communifire's name", "Hall")
    assert_no_echo(stack)
