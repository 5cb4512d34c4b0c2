"""The Events table and its indexes (the shell): load a user's state, apply changes.

Owns: reading event partitions into domain values, the OutlookIndex (user -> Outlook id
-> event) and MeetingIndex (meeting iCalUId -> event) tables, and applying one event's
change as one entity-group transaction guarded by the root row's ETag, so a writer
never overwrites an event that changed since it was planned (SPEC section 7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError

from core.plan.model import Event, OutlookLink, UserState
from core.adapters.rows import ROOT, event_rows, rows_to_event
from core.adapters.storage import Storage, batched, escape_key, join_chunks, unescape_key

log = logging.getLogger(__name__)
_SYSTEM = ("PartitionKey", "RowKey", "Timestamp", "etag")
TRANSACTION_LIMIT = 100


class ConcurrencyConflict(Exception):
    """The event changed since the change was planned: re-plan, never overwrite."""


#: The row of an event's partition that keeps what was applied, per key, for outbound
#: ordering (``core.plan.outbound.ordering``): written with the event, ETag-guarded.
VERSIONS_ROW = "order"


@dataclass(frozen=True, slots=True)
class LoadedEvent:
    event: Event
    links: tuple[OutlookLink, ...]
    etag: str
    versions: str = ""  # JSON, see VERSIONS_ROW


@dataclass(frozen=True, slots=True)
class EventChange:
    """One event's planned change: rows to write and delete, against a base ETag."""

    event_id: str
    base_etag: str | None
    upserts: Mapping[str, Mapping[str, Any]]
    deletes: tuple[str, ...]
    delete_event: bool = False
    index_add: tuple[tuple[str, str, str], ...] = ()  # (user, outlook id, kind)
    index_remove: tuple[tuple[str, str], ...] = ()  # (user, outlook id)
    meeting_uid: str = ""
    audit: tuple[Mapping[str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "base_etag": self.base_etag,
            "upserts": {k: dict(v) for k, v in self.upserts.items()},
            "deletes": list(self.deletes),
            "delete_event": self.delete_event,
            "index_add": [list(x) for x in self.index_add],
            "index_remove": [list(x) for x in self.index_remove],
            "meeting_uid": self.meeting_uid,
            "audit": [dict(a) for a in self.audit],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EventChange":
        return cls(
            event_id=str(data["event_id"]),
            base_etag=data.get("base_etag"),
            upserts={str(k): dict(v) for k, v in dict(data.get("upserts") or {}).items()},
            deletes=tuple(data.get("deletes") or ()),
            delete_event=bool(data.get("delete_event")),
            index_add=tuple(tuple(x) for x in data.get("index_add") or ()),  # type: ignore[misc]
            index_remove=tuple(tuple(x) for x in data.get("index_remove") or ()),  # type: ignore[misc]
            meeting_uid=str(data.get("meeting_uid") or ""),
            audit=tuple(dict(a) for a in data.get("audit") or ()),
        )


def _props(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in _SYSTEM}


class EventStore:
    def __init__(self, storage: Storage):
        self._events = storage.table("Events")
        self._index = storage.table("OutlookIndex")
        self._meetings = storage.table("MeetingIndex")

    # -- reads ------------------------------------------------------------------------

    def load(self, event_id: str) -> LoadedEvent | None:
        rows: dict[str, dict[str, Any]] = {}
        etag = ""
        for entity in self._events.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(event_id)}):
            rows[entity["RowKey"]] = _props(entity)
            if entity["RowKey"] == ROOT:
                etag = entity.metadata["etag"]
        if ROOT not in rows:
            return None
        event, links = rows_to_event(event_id, rows)
        return LoadedEvent(event, tuple(links), etag, join_chunks("Versions", rows.get(VERSIONS_ROW) or {}) or "")

    def event_ids_for_user(self, user_id: str) -> dict[str, str]:
        """Outlook id -> event id for every item of this user we know."""
        return {
            unescape_key(e["RowKey"]): e["EventId"]
            for e in self._index.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(user_id)})
        }

    def series_ids_for_user(self, user_id: str) -> set[str]:
        """The Outlook ids of every series master this user's links point at."""
        return {
            unescape_key(e["RowKey"])
            for e in self._index.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(user_id)})
            if e.get("Kind") == "series"
        }

    def events_for_meetings(self, uids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for uid in sorted(set(u for u in uids if u)):
            for e in self._meetings.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(uid)}):
                found.add(unescape_key(e["RowKey"]))
        return found

    def load_user_state(self, user_id: str, meeting_uids: Iterable[str] = ()) -> tuple[UserState, dict[str, LoadedEvent]]:
        """The user's state for planning, and each loaded event (with every user's links)."""
        ids = set(self.event_ids_for_user(user_id).values()) | self.events_for_meetings(meeting_uids)
        loaded: dict[str, LoadedEvent] = {}
        for event_id in sorted(ids):
            item = self.load(event_id)
            if item is not None:
                loaded[event_id] = item
        links = {l.outlook_id: l for item in loaded.values() for l in item.links if l.user_id == user_id}
        state = UserState(user_id=user_id, events={k: v.event for k, v in loaded.items()}, links=links)
        return state, loaded

    def all_event_ids(self) -> list[str]:
        ids = set()
        for e in self._events.query_entities("RowKey eq @rk", parameters={"rk": ROOT}, select=["PartitionKey"]):
            ids.add(unescape_key(e["PartitionKey"]))
        return sorted(ids)

    # -- writes -----------------------------------------------------------------------

    def apply(self, change: EventChange) -> None:
        """Apply one event's change atomically; raises ConcurrencyConflict if stale."""
        pk = escape_key(change.event_id)
        if change.delete_event:
            self._delete_partition(pk, change.base_etag)
        else:
            self._write_partition(pk, change)
        for user, outlook_id in change.index_remove:
            try:
                self._index.delete_entity(escape_key(user), escape_key(outlook_id))
            except ResourceNotFoundError:
                pass
        for user, outlook_id, kind in change.index_add:
            self._index.upsert_entity(
                {"PartitionKey": escape_key(user), "RowKey": escape_key(outlook_id), "EventId": change.event_id, "Kind": kind}
            )
        if change.meeting_uid:
            entity = {"PartitionKey": escape_key(change.meeting_uid), "RowKey": escape_key(change.event_id)}
            if change.delete_event:
                try:
                    self._meetings.delete_entity(entity["PartitionKey"], entity["RowKey"])
                except ResourceNotFoundError:
                    pass
            else:
                self._meetings.upsert_entity(entity)

    def _write_partition(self, pk: str, change: EventChange) -> None:
        root = dict(change.upserts.get(ROOT) or {})
        if change.base_etag is None:
            root_op: tuple[Any, ...] = ("create", {"PartitionKey": pk, "RowKey": ROOT, **root})
        else:
            if not root:
                current = self._events.get_entity(pk, ROOT)
                root = _props(current)
            root_op = (
                "update",
                {"PartitionKey": pk, "RowKey": ROOT, **root},
                {"mode": "replace", "etag": change.base_etag, "match_condition": MatchConditions.IfNotModified},
            )
        ops: list[tuple[Any, ...]] = [root_op]
        for key, props in sorted(change.upserts.items()):
            if key != ROOT:
                ops.append(("upsert", {"PartitionKey": pk, "RowKey": key, **props}, {"mode": "replace"}))
        for key in change.deletes:
            ops.append(("delete", {"PartitionKey": pk, "RowKey": key}))
        # The first transaction carries the root row and its ETag: it decides. An event
        # with more than 100 row changes continues in further transactions.
        for i, chunk in enumerate(batched(ops, TRANSACTION_LIMIT)):
            try:
                self._events.submit_transaction(chunk)
            except (TableTransactionError, ResourceModifiedError, ResourceExistsError) as exc:
                if i == 0 and _is_conflict(exc):
                    raise ConcurrencyConflict(f"event {unescape_key(pk)} changed since it was planned") from exc
                if i > 0:
                    # a later chunk: deletes of rows already gone are harmless
                    self._retry_one_by_one(chunk)
                    continue
                raise

    def _retry_one_by_one(self, ops: list[tuple[Any, ...]]) -> None:
        for op in ops:
            try:
                if op[0] == "delete":
                    self._events.delete_entity(op[1]["PartitionKey"], op[1]["RowKey"])
                else:
                    self._events.upsert_entity(op[1], mode="replace")
            except ResourceNotFoundError:
                pass

    def _delete_partition(self, pk: str, base_etag: str | None) -> None:
        keys = [e["RowKey"] for e in self._events.query_entities("PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"])]
        if ROOT not in keys:
            return  # already gone: a second delivery changes nothing
        ops: list[tuple[Any, ...]] = [
            ("delete", {"PartitionKey": pk, "RowKey": ROOT}, {"etag": base_etag, "match_condition": MatchConditions.IfNotModified})
            if base_etag
            else ("delete", {"PartitionKey": pk, "RowKey": ROOT})
        ]
        ops += [("delete", {"PartitionKey": pk, "RowKey": k}) for k in keys if k != ROOT]
        for i, chunk in enumerate(batched(ops, TRANSACTION_LIMIT)):
            try:
                self._events.submit_transaction(chunk)
            except (TableTransactionError, ResourceModifiedError) as exc:
                if i == 0 and _is_conflict(exc):
                    raise ConcurrencyConflict(f"event {unescape_key(pk)} changed since it was planned") from exc
                self._retry_one_by_one(chunk)


def _is_conflict(exc: Exception) -> bool:
    if isinstance(exc, (ResourceModifiedError, ResourceExistsError)):
        return True
    status = getattr(exc, "status_code", None)
    text = str(exc)
    return status in (409, 412) or "UpdateConditionNotSatisfied" in text or "EntityAlreadyExists" in text


def change_between(
    event_id: str,
    before: LoadedEvent | None,
    after_event: Event | None,
    user_id: str,
    after_user_links: Iterable[OutlookLink],
    audit: Iterable[Mapping[str, str]] = (),
) -> EventChange | None:
    """The rows that move one event from its stored state to its planned state.

    Other users' links in the partition are kept as they are; this user's links are
    replaced by ``after_user_links``. Returns None when nothing changes.
    """
    others = [l for l in (before.links if before else ()) if l.user_id != user_id]
    mine_before = {l.outlook_id: l for l in (before.links if before else ()) if l.user_id == user_id}
    mine_after = {l.outlook_id: l for l in after_user_links}
    old_rows = event_rows(before.event, before.links) if before else {}
    if after_event is None:
        if before is None:
            return None
        # The event is gone for this user's part; if others still link it, keep it
        # (their links stay), else delete the whole partition.
        return EventChange(
            event_id=event_id,
            base_etag=before.etag,
            upserts={},
            deletes=(),
            delete_event=True,
            index_remove=tuple((user_id, oid) for oid in sorted(mine_before)),
            meeting_uid=before.event.meeting_uid,
            audit=tuple(audit),
        )
    new_rows = event_rows(after_event, [*others, *mine_after.values()])
    upserts = {k: v for k, v in new_rows.items() if old_rows.get(k) != v}
    deletes = tuple(sorted(k for k in old_rows if k not in new_rows))
    index_add = tuple(
        (user_id, oid, l.kind) for oid, l in sorted(mine_after.items()) if mine_before.get(oid) is None or mine_before[oid].kind != l.kind
    )
    index_remove = tuple((user_id, oid) for oid in sorted(mine_before) if oid not in mine_after)
    if not upserts and not deletes and not index_add and not index_remove:
        return None
    return EventChange(
        event_id=event_id,
        base_etag=before.etag if before else None,
        upserts=upserts,
        deletes=deletes,
        index_add=index_add,
        index_remove=index_remove,
        meeting_uid=after_event.meeting_uid,
        audit=tuple(audit),
    )
