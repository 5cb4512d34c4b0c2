"""The outbound plan's values: ``Step`` (one Graph write), ``Expect`` (an item to observe
afterwards, whose snapshot becomes a link: A9), ``OutboundPlan``, ``DirectoryUser``, and
``transaction_id`` (the same for every retry of one create, so Graph never makes a second
copy: GRAPH.md section 5).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from core.plan.model import Event, OutlookLink
from core.plan.timezones import UTC


_NS = uuid.UUID("6f1c1d0e-3c55-4c8e-9a53-0b8e5c1f0a11")


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """What the planner knows of a Communifire user: their Outlook address and whether
    the app may write to their mailbox."""

    user_id: str
    upn: str
    connected: bool


@dataclass(frozen=True, slots=True)
class Step:
    """One Graph write in one user's mailbox.

    ``action``: ``create`` (POST /events), ``patch`` (PATCH an item), ``patch_occurrence``
    (PATCH the occurrence of ``target``'s series whose original start is
    ``original_start``), ``delete``, ``delete_occurrence``, ``respond`` (``body.action`` on
    an item), ``respond_occurrence``. ``target`` is an Outlook id, or ``@<step id>`` for the
    item an earlier ``create`` step made. ``near`` is where the occurrence is now (it may
    have been moved), to find it.
    """

    id: str
    user_id: str
    action: str
    target: str
    body: Mapping[str, Any]
    rule: str
    reason: str
    original_start: datetime | None = None
    near: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "user_id": self.user_id, "action": self.action, "target": self.target,
            "original_start": _iso(self.original_start), "near": _iso(self.near),
            "body": json.loads(json.dumps(dict(self.body), default=str)), "rule": self.rule, "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Expect:
    """An Outlook item that stands for (part of) the event after the writes: observe it and
    record it as a link (A9). ``outlook_id`` is known, ``@<step>`` (made by a step) or
    ``""`` (find it: ``discover`` = ``meeting`` for an attendee's copy of the organizer's
    item, ``instance`` for a single-instance invite copy, C5)."""

    user_id: str
    kind: str
    outlook_id: str = ""
    segment_start: datetime | None = None
    instance_start: datetime | None = None
    discover: str = ""
    near: datetime | None = None
    near_end: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "kind": self.kind, "outlook_id": self.outlook_id,
            "segment_start": _iso(self.segment_start), "instance_start": _iso(self.instance_start),
            "discover": self.discover, "near": _iso(self.near), "near_end": _iso(self.near_end),
        }


@dataclass(frozen=True, slots=True)
class OutboundPlan:
    """What one message does: Graph steps, then the links to observe, then the new state.

    ``new_event`` None with ``delete_event`` True: the event is deleted. ``keep_links``:
    links that stay as they are (users the app may not write to now). ``refused``: the
    message cannot be carried out (nothing is written; the reason goes to the poison
    record). ``done``: nothing to do (e.g. a delete of an event already gone).
    """

    operation_id: str
    event_id: str
    operation: str
    scope: str
    steps: tuple[Step, ...] = ()
    expects: tuple[Expect, ...] = ()
    keep_links: tuple[OutlookLink, ...] = ()
    new_event: Event | None = None
    delete_event: bool = False
    refused: str = ""
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused

    def to_json(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id, "event_id": self.event_id, "operation": self.operation,
            "scope": self.scope, "refused": self.refused, "delete_event": self.delete_event,
            "steps": [s.to_json() for s in self.steps], "expects": [e.to_json() for e in self.expects],
            "notes": list(self.notes),
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def transaction_id(operation_id: str, event_id: str, segment_start: datetime) -> str:
    """The ``transactionId`` of a create: the same for every retry of one operation, so
    Graph never makes a second copy (GRAPH.md section 5)."""
    return str(uuid.uuid5(_NS, f"{operation_id}|{event_id}|{_iso(segment_start)}"))
