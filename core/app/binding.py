"""Identity binding: Communifire's content id <-> the app's event id (issue 12, docs/changes.md).

Owns: the ``Bindings`` table (PartitionKey ``communifire``, RowKey the Communifire id,
``EventId``), the ``bind`` outbound operation, and reading an outbound message's
``event.id`` as either id. An event born in Outlook gets an app-made id; Communifire
creates its own content for it when the change feed tells it (C1: an event is a full
piece of content) and sends ``bind``; from then on every change-feed message, result and
read answer carries both ids. An event created from Communifire is bound from the start
to the id Communifire gave it.

Invariants: one Communifire id names at most one event and one event has at most one
Communifire id (a second, different bind is rejected with the reason); a bind is written
ETag-guarded on the event's root row and moves its sequence number on.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Mapping

from azure.core.exceptions import ResourceNotFoundError

from core.adapters import logs
from core.adapters.events import ConcurrencyConflict, EventChange, EventStore, next_meta
from core.adapters.rows import ROOT, event_rows, iso
from core.adapters.storage import Storage, escape_key, split_chunks
from core.plan.calendar_view import EventMeta, event_json

log = logging.getLogger(__name__)
TABLE = "Bindings"
PARTITION = "communifire"
MAX_TRIES = 4


class BindRefused(ValueError):
    """A bind that can never be applied; the message says why."""


class Bindings:
    def __init__(self, storage: Storage):
        self._table = storage.table(TABLE)

    def event_for(self, communifire_id: str) -> str | None:
        try:
            return str(self._table.get_entity(PARTITION, escape_key(communifire_id))["EventId"])
        except ResourceNotFoundError:
            return None

    def save(self, communifire_id: str, event_id: str) -> None:
        self._table.upsert_entity({"PartitionKey": PARTITION, "RowKey": escape_key(communifire_id),
                                   "CommunifireId": communifire_id, "EventId": event_id})


def resolve_event_name(bindings: Bindings, data: Mapping[str, Any]) -> dict[str, Any]:
    """The message with ``event.id`` as the app's event id: an outbound message may name
    the event by its bound Communifire id as well (issue 12)."""
    out = dict(data)
    event = out.get("event")
    if isinstance(event, Mapping) and isinstance(event.get("id"), str) and event["id"]:
        found = bindings.event_for(event["id"])
        if found and found != event["id"]:
            out["event"] = {**copy.deepcopy(dict(event)), "id": found}
    return out


def bind(storage: Storage, operation_id: str, event_id: str, communifire_id: str, now: Any, window: Any) -> dict[str, Any]:
    """Bind a Communifire id to an event; returns the result fields (docs/changes.md).

    Raises:
        BindRefused: unknown event, or either id already bound to another.
    """
    bindings = Bindings(storage)
    events = EventStore(storage)
    other = bindings.event_for(communifire_id)
    if other and other != event_id:
        raise BindRefused(f"Communifire id {communifire_id} is already bound to event {other}")
    change_id = f"op:{operation_id}"
    for _ in range(MAX_TRIES):
        loaded = events.load(event_id)
        if loaded is None:
            raise BindRefused(f"unknown event {event_id}: nothing to bind (is it synced yet?)")
        current = loaded.meta.communifire_id
        if current and current != communifire_id:
            raise BindRefused(f"event {event_id} is already bound to Communifire id {current}")
        if current == communifire_id:
            bindings.save(communifire_id, event_id)  # a retry after a crash between the two writes
            meta = loaded.meta
        else:
            bindings.save(communifire_id, event_id)
            meta = next_meta(loaded.meta, change_id, communifire_id)
            root = event_rows(loaded.event, (), meta)[ROOT]
            op_row = {"OperationId": operation_id, "At": iso(now), **split_chunks("Published", "{}")}
            change = EventChange(event_id=event_id, base_etag=loaded.etag,
                                 upserts={ROOT: root, f"op|{escape_key(operation_id)}": op_row}, deletes=(),
                                 change_id=change_id)
            try:
                events.apply(change)
            except ConcurrencyConflict:
                continue
            logs.info(log, "event bound", event_id=event_id, operation_id=operation_id)
        snapshot = event_json(loaded.event, loaded.links, window, EventMeta(meta.seq, meta.communifire_id))
        return {"event_id": event_id, "communifire_id": communifire_id, "seq": meta.seq,
                "change_id": meta.change_id, "side_effects": [], "outlook_writes": [], "event": snapshot}
    raise ConcurrencyConflict(f"event {event_id} kept changing while it was bound")
