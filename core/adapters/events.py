"""The Events table and its indexes (the shell): load a user's state, apply changes.

Owns: reading event partitions into domain values, the OutlookIndex (user -> Outlook id
-> event) and MeetingIndex (meeting iCalUId -> event) tables, and applying one event's
change as one entity-group transaction guarded by the root row's ETag, so a writer
never overwrites an event that changed since it was planned (SPEC section 7).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError

from core.plan.model import Event, OutlookLink, UserState
from core.plan.inbound import default_new_id
from core.adapters.rows import ROOT, RootMeta, event_rows, root_meta, rows_to_event
from core.adapters.storage import Storage, batched, escape_key, join_chunks, unescape_key

log = logging.getLogger(__name__)
_SYSTEM = ("PartitionKey", "RowKey", "Timestamp", "etag")
TRANSACTION_LIMIT = 100


LOAD_CONCURRENCY = 8


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
    row_keys: tuple[str, ...] = ()  # every row of the partition as read
    meta: RootMeta = RootMeta()
    #: outbound operation id -> what it published when it committed (its ``op|`` row)
    ops: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


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
    #: whether the event's meeting uid is new or changed (its MeetingIndex row is written
    #: only then); True unless the planner of the change knows better
    meeting_changed: bool = True
    #: the change id written on the root row (empty: an older message without one)
    change_id: str = ""
    #: the change-feed message to publish once this change committed (docs/changes.md)
    feed: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "feed": dict(self.feed) if self.feed is not None else None,
            "event_id": self.event_id,
            "base_etag": self.base_etag,
            "upserts": {k: dict(v) for k, v in self.upserts.items()},
            "deletes": list(self.deletes),
            "delete_event": self.delete_event,
            "index_add": [list(x) for x in self.index_add],
            "index_remove": [list(x) for x in self.index_remove],
            "meeting_uid": self.meeting_uid,
            "audit": [dict(a) for a in self.audit],
            "meeting_changed": self.meeting_changed,
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
            meeting_changed=bool(data.get("meeting_changed", True)),
            change_id=str(data.get("change_id") or ""),
            feed=dict(data["feed"]) if isinstance(data.get("feed"), Mapping) else None,
        )


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One OutlookIndex row: the user's Outlook item stands for this event, as this kind."""

    event_id: str
    kind: str


def meeting_event_id(meeting_uid: str) -> str:
    """The id an event born in Outlook takes from its meeting (A7: one id per meeting)."""
    return default_new_id("")(f"meeting/{meeting_uid}")


def state_of(user_id: str, loaded: Mapping[str, LoadedEvent], index: Mapping[str, IndexRow],
             requested: Iterable[str] = ()) -> tuple[UserState, dict[str, LoadedEvent]]:
    """The planning state from loaded events, plus index entries for the user's links to
    events not read (pure).

    A link of an event that was not read carries no snapshot: the planner counts it (the
    safety share, A7's "already linked") and, with its event absent, acts on it only when
    its item is gone (unlink). Events that were asked for but are missing get none.
    """
    skip = set(requested) | set(loaded)
    links: dict[str, OutlookLink] = {}
    for oid, row in index.items():
        if row.event_id not in skip:
            kind = row.kind if row.kind in ("single", "series", "instance") else "single"
            links[oid] = OutlookLink(user_id=user_id, outlook_id=oid, event_id=row.event_id, kind=kind, content_hash="")
    for item in loaded.values():
        for link in item.links:
            if link.user_id == user_id:
                links[link.outlook_id] = link
    state = UserState(user_id=user_id, events={k: v.event for k, v in loaded.items()}, links=links)
    return state, dict(loaded)


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
        ops = {str(props.get("OperationId", "")): json.loads(join_chunks("Published", props) or "{}")
               for key, props in rows.items() if key.startswith("op|")}
        event, links = rows_to_event(event_id, {k: v for k, v in rows.items() if not k.startswith("op|")})
        return LoadedEvent(event, tuple(links), etag, join_chunks("Versions", rows.get(VERSIONS_ROW) or {}) or "",
                           tuple(sorted(rows)), root_meta(rows[ROOT]), ops)

    def index_for_user(self, user_id: str) -> dict[str, IndexRow]:
        """Outlook id -> (event id, link kind) for every item of this user we know (one query)."""
        return {
            unescape_key(e["RowKey"]): IndexRow(str(e["EventId"]), str(e.get("Kind") or "single"))
            for e in self._index.query_entities(
                "PartitionKey eq @pk", parameters={"pk": escape_key(user_id)}, select=["RowKey", "EventId", "Kind"]
            )
        }

    def committed_change(self, event_id: str) -> tuple[str, int]:
        """The id and sequence number of the event's last committed change ("", 0 when gone)."""
        try:
            root = self._events.get_entity(escape_key(event_id), ROOT, select=["Seq", "ChangeId"])
        except ResourceNotFoundError:
            return "", 0
        meta = root_meta(root)
        return meta.change_id, meta.seq

    def event_ids_for_user(self, user_id: str) -> dict[str, str]:
        """Outlook id -> event id for every item of this user we know."""
        return {oid: row.event_id for oid, row in self.index_for_user(user_id).items()}

    def series_ids_for_user(self, user_id: str) -> set[str]:
        """The Outlook ids of every series master this user's links point at."""
        return {oid for oid, row in self.index_for_user(user_id).items() if row.kind == "series"}

    def events_for_meetings(self, uids: Iterable[str]) -> set[str]:
        """Events that may stand for these meetings: the id an event born in Outlook gets
        from its meeting (A7, written without an index row) and the MeetingIndex rows of
        events whose id was not derived from their meeting. Candidates: the planner checks
        each event's meeting uid."""
        found: set[str] = set()
        for uid in sorted(set(u for u in uids if u)):
            found.add(meeting_event_id(uid))
            for e in self._meetings.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(uid)}):
                found.add(unescape_key(e["RowKey"]))
        return found

    def load_many(self, event_ids: Iterable[str]) -> dict[str, LoadedEvent]:
        """Load events by id (a few at a time); missing ones are left out."""
        ids = sorted(set(event_ids))
        if len(ids) <= 2:
            found = [self.load(i) for i in ids]
        else:
            with ThreadPoolExecutor(max_workers=min(LOAD_CONCURRENCY, len(ids))) as pool:
                found = list(pool.map(self.load, ids))
        return {i: item for i, item in zip(ids, found, strict=True) if item is not None}

    def load_user_state(self, user_id: str, meeting_uids: Iterable[str] = ()) -> tuple[UserState, dict[str, LoadedEvent]]:
        """The user's whole state for planning, and each loaded event (with every user's links)."""
        index = self.index_for_user(user_id)
        ids = {row.event_id for row in index.values()} | self.events_for_meetings(meeting_uids)
        return state_of(user_id, self.load_many(ids), index, ids)

    def load_touched_state(self, user_id: str, index: Mapping[str, "IndexRow"], event_ids: Iterable[str],
                           meeting_uids: Iterable[str] = ()) -> tuple[UserState, dict[str, LoadedEvent]]:
        """The part of the user's state a round's changed items touch (issue 14): only those
        events are read; the user's other links stand in as index entries (``state_of``)."""
        ids = set(event_ids) | self.events_for_meetings(meeting_uids)
        return state_of(user_id, self.load_many(ids), index, ids)

    def all_event_ids(self) -> list[str]:
        ids = set()
        for e in self._events.query_entities("RowKey eq @rk", parameters={"rk": ROOT}, select=["PartitionKey"]):
            ids.add(unescape_key(e["PartitionKey"]))
        return sorted(ids)

    # -- writes -----------------------------------------------------------------------

    def apply(self, change: EventChange) -> None:
        """Apply one event's change atomically; raises ConcurrencyConflict if stale.

        Round trips (issue 14): the event's transaction, then, only when they change, its
        OutlookIndex rows (one transaction per user) and its MeetingIndex row (only for an
        event whose id is not derived from its meeting: ``meeting_event_id``).
        """
        pk = escape_key(change.event_id)
        if change.delete_event:
            self._delete_partition(pk, change)
        else:
            self._write_partition(pk, change)
        self._write_index(change)
        uid = change.meeting_uid
        if uid and change.meeting_changed and meeting_event_id(uid) != change.event_id:
            entity = {"PartitionKey": escape_key(uid), "RowKey": escape_key(change.event_id)}
            if change.delete_event:
                try:
                    self._meetings.delete_entity(entity["PartitionKey"], entity["RowKey"])
                except ResourceNotFoundError:
                    pass
            else:
                self._meetings.upsert_entity(entity)

    def _write_index(self, change: EventChange) -> None:
        """This change's OutlookIndex rows, one transaction per user partition."""
        ops: dict[str, list[tuple[Any, ...]]] = {}
        for user, outlook_id in change.index_remove:
            ops.setdefault(escape_key(user), []).append(("delete", {"PartitionKey": escape_key(user), "RowKey": escape_key(outlook_id)}))
        for user, outlook_id, kind in change.index_add:
            entity = {"PartitionKey": escape_key(user), "RowKey": escape_key(outlook_id), "EventId": change.event_id, "Kind": kind}
            ops.setdefault(escape_key(user), []).append(("upsert", entity, {"mode": "replace"}))
        for _, user_ops in sorted(ops.items()):
            for chunk in batched(_one_op_per_row(user_ops), TRANSACTION_LIMIT):
                try:
                    self._index.submit_transaction(chunk)
                except (TableTransactionError, ResourceNotFoundError):
                    # a row to delete is already gone (a second delivery): one by one
                    _one_by_one(self._index, chunk)

    def _write_partition(self, pk: str, change: EventChange) -> None:
        root = dict(change.upserts.get(ROOT) or {})
        if change.base_etag is None:
            root_op: tuple[Any, ...] = ("create", {"PartitionKey": pk, "RowKey": ROOT, **root})
        elif root:
            root_op = (
                "update",
                {"PartitionKey": pk, "RowKey": ROOT, **root},
                {"mode": "replace", "etag": change.base_etag, "match_condition": MatchConditions.IfNotModified},
            )
        else:
            # The root row is unchanged: an empty merge still checks (and moves) its ETag,
            # so the transaction stays guarded without reading the row first.
            root_op = (
                "update",
                {"PartitionKey": pk, "RowKey": ROOT},
                {"mode": "merge", "etag": change.base_etag, "match_condition": MatchConditions.IfNotModified},
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
                if i == 0 and _is_missing(exc):
                    raise ResourceNotFoundError(f"event {unescape_key(pk)} is gone; the change cannot apply") from exc
                if i > 0:
                    # a later chunk: deletes of rows already gone are harmless
                    self._retry_one_by_one(chunk)
                    continue
                raise

    def _retry_one_by_one(self, ops: list[tuple[Any, ...]]) -> None:
        _one_by_one(self._events, ops)

    def _delete_partition(self, pk: str, change: EventChange) -> None:
        base_etag = change.base_etag
        keys = [k for k in change.deletes if k != ROOT]
        if not keys:
            # a change that does not list the rows (an older message): read them
            found = [e["RowKey"] for e in self._events.query_entities(
                "PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"])]
            if ROOT not in found:
                return  # already gone: a second delivery changes nothing
            keys = [k for k in found if k != ROOT]
        ops: list[tuple[Any, ...]] = [
            ("delete", {"PartitionKey": pk, "RowKey": ROOT}, {"etag": base_etag, "match_condition": MatchConditions.IfNotModified})
            if base_etag
            else ("delete", {"PartitionKey": pk, "RowKey": ROOT})
        ]
        ops += [("delete", {"PartitionKey": pk, "RowKey": k}) for k in keys]
        chunks = list(batched(ops, TRANSACTION_LIMIT))
        for i, chunk in enumerate(chunks):
            try:
                self._events.submit_transaction(chunk)
            except (TableTransactionError, ResourceModifiedError, ResourceNotFoundError) as exc:
                if i == 0 and _is_conflict(exc):
                    raise ConcurrencyConflict(f"event {unescape_key(pk)} changed since it was planned") from exc
                if i == 0 and _is_missing(exc):
                    # the root is already gone (a second delivery): clear what may be left
                    for rest in chunks:
                        self._retry_one_by_one(rest)
                    return
                self._retry_one_by_one(chunk)


def _one_op_per_row(ops: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A transaction names each row once: the last operation on a row wins."""
    last: dict[tuple[str, str], tuple[Any, ...]] = {}
    for op in ops:
        last[(op[1]["PartitionKey"], op[1]["RowKey"])] = op
    return list(last.values())


def _one_by_one(table: Any, ops: list[tuple[Any, ...]]) -> None:
    for op in ops:
        try:
            if op[0] == "delete":
                table.delete_entity(op[1]["PartitionKey"], op[1]["RowKey"])
            else:
                table.upsert_entity(op[1], mode="replace")
        except ResourceNotFoundError:
            pass


def _is_missing(exc: Exception) -> bool:
    if isinstance(exc, ResourceNotFoundError):
        return True
    status = getattr(exc, "status_code", None)
    text = str(exc)
    return status == 404 or "ResourceNotFound" in text


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
    change_id: str = "",
) -> EventChange | None:
    """The rows that move one event from its stored state to its planned state.

    Other users' links in the partition are kept as they are; this user's links are
    replaced by ``after_user_links``. Returns None when nothing changes.
    """
    others = [l for l in (before.links if before else ()) if l.user_id != user_id]
    mine_before = {l.outlook_id: l for l in (before.links if before else ()) if l.user_id == user_id}
    mine_after = {l.outlook_id: l for l in after_user_links}
    old_meta = before.meta if before else RootMeta()
    old_rows = event_rows(before.event, before.links, old_meta) if before else {}
    if after_event is None:
        if before is None:
            return None
        # The event is gone for this user's part; if others still link it, keep it
        # (their links stay), else delete the whole partition.
        return EventChange(
            event_id=event_id,
            base_etag=before.etag,
            upserts={},
            # every row of the partition as loaded: the ETag-guarded root says none was added
            deletes=tuple(sorted(k for k in (before.row_keys or old_rows) if k != ROOT)),
            delete_event=True,
            index_remove=tuple((user_id, oid) for oid in sorted(mine_before)),
            meeting_uid=before.event.meeting_uid,
            audit=tuple(audit),
            change_id=change_id,
        )
    new_rows = event_rows(after_event, [*others, *mine_after.values()], old_meta)
    upserts = {k: v for k, v in new_rows.items() if old_rows.get(k) != v}
    deletes = tuple(sorted(k for k in old_rows if k not in new_rows))
    index_add = tuple(
        (user_id, oid, l.kind) for oid, l in sorted(mine_after.items()) if mine_before.get(oid) is None or mine_before[oid].kind != l.kind
    )
    index_remove = tuple((user_id, oid) for oid in sorted(mine_before) if oid not in mine_after)
    if not upserts and not deletes and not index_add and not index_remove:
        return None
    # Every committed change moves the event's sequence number on and names itself on the
    # root row (the change feed's order and at-least-once publishing, docs/changes.md).
    upserts[ROOT] = event_rows(after_event, (), next_meta(old_meta, change_id))[ROOT]
    return EventChange(
        event_id=event_id,
        base_etag=before.etag if before else None,
        upserts=upserts,
        deletes=deletes,
        index_add=index_add,
        index_remove=index_remove,
        meeting_uid=after_event.meeting_uid,
        audit=tuple(audit),
        meeting_changed=before is None or before.event.meeting_uid != after_event.meeting_uid,
        change_id=change_id,
    )


def keep_seq(change: EventChange, after_event: Event, meta: RootMeta) -> EventChange:
    """The same change without moving the sequence number on: it changes nothing the
    change feed shows (only Outlook bookkeeping), so no feed message carries it."""
    upserts = dict(change.upserts)
    upserts[ROOT] = event_rows(after_event, (), meta)[ROOT]
    return replace(change, upserts=upserts)


def next_meta(meta: RootMeta, change_id: str, communifire_id: str | None = None) -> RootMeta:
    """The root metadata after one more committed change."""
    return RootMeta(meta.seq + 1, change_id, meta.communifire_id if communifire_id is None else communifire_id)
