"""Bodies Exchange rewrites are compared by meaning (rule A9, GRAPH.md section 10): a
Communifire body written to Outlook comes back as HTML in Exchange's templates, and the
next sync sees no change, in Communifire or in Outlook; an Outlook edit still arrives."""

from __future__ import annotations

import pytest

from core.adapters.events import EventStore
from tests.integration.outbound_helpers import BOB, CAROL, Communifire, assert_no_echo, connect_all, day0, z

pytestmark = pytest.mark.slow

BODY = "Agenda:\n- budget & plans\n- <b>not markup</b>\n\nThanks"


def stored_body(stack, event_id: str) -> str:
    loaded = EventStore(stack.app.storage).load(event_id)
    assert loaded is not None
    return loaded.event.segments[0].body


def test_a_communifire_body_rewritten_by_exchange_is_no_change(stack):
    connect_all(stack)
    cf = Communifire(stack, event_id="cf-body-1")
    start = day0()
    cf.do("create", event={"title": "Review", "body": BODY, "start": z(start), "end": z(start.replace(hour=10)),
                           "time_zone": "UTC", "attendees": [{"user_id": "1002", "email": BOB},
                                                             {"user_id": "1003", "email": CAROL}]})
    (item,) = [i for i in stack.control.mailbox("alice@contoso.com") if i["subject"] == "Review"]
    assert "<!-- converted from text -->" in item["body"]["content"]  # what Exchange made of it
    stack.sync_all()
    assert_no_echo(stack)
    assert stored_body(stack, "cf-body-1") == BODY


def test_an_outlook_body_edit_reaches_communifire_as_its_meaning(stack):
    connect_all(stack)
    cf = Communifire(stack, event_id="cf-body-2")
    start = day0()
    cf.do("create", event={"title": "Plan", "body": "old", "start": z(start), "end": z(start.replace(hour=10)),
                           "time_zone": "UTC"})
    stack.sync_all()
    (item,) = [i for i in stack.control.mailbox("alice@contoso.com") if i["subject"] == "Plan"]
    stack.control.update_event("alice@contoso.com", item["id"],
                               {"body": {"contentType": "html", "content": "<p>New &amp; <b>better</b></p>"}})
    stack.sync_all()
    assert stored_body(stack, "cf-body-2") == "New & better"
    assert_no_echo(stack)
