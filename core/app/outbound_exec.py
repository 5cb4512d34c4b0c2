"""Outbound direction, the shell: carry out an outbound plan with Graph, then Table Storage.

Owns: ``run_outbound`` (the queue trigger's entry point), the per-operation record in the
``Operations`` table (status, per-step progress with each step's result, the poison
reason), reading the directory of users, executing ``core.plan.outbound`` plans step by step,
observing the Outlook items that stand for the event afterwards (their normalized
snapshot becomes the link, exactly as the inbound planner computes it: rule A9), and
writing the event's new state as one ETag-guarded change.

Invariants (SPEC section 7):
- the same operation id twice changes nothing: a ``done`` record ends the second run;
- every Graph write is recorded as done before the next one, with its result, so a retry
  (429/503 after the client's own retries, a dropped connection, a crash) skips what is
  done and ends in the same state; a create carries a transactionId as well;
- a message that can never be applied (invalid, unknown version, space calendar, user
  unknown or not connected) is rejected before any write and put in ``outbound-poison``
  on its first delivery; the reason is logged and kept on the operation record;
- throttling that outlasts the client's retries re-schedules the work as a new message,
  invisible for ``Retry-After``, with the record ``waiting`` (``core.plan.delivery``
  decides); it never counts toward the host's poison threshold;
- every status change goes through ``set_status``;
- a 404 on a delete counts as done; a 404 on another write skips that write (the item
  was deleted in Outlook meanwhile; the inbound sync records that);
- Table Storage is written last, against the ETag the plan was made from; on a conflict
  the event is re-loaded and re-planned (steps already done are skipped by id).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

from azure.core.exceptions import ResourceNotFoundError

from core.app import binding, contracts
from core.plan import change_feed, delivery, outbound
from core.plan.calendar_view import EventMeta, event_json
from core.adapters import logs
from core.adapters.events import VERSIONS_ROW, ConcurrencyConflict, EventChange, EventStore, LoadedEvent, next_meta
from core.app.sync import CHANGES, RESULTS, publish_checked, window_for
from core.adapters.graph import GraphClient, GraphError
from core.plan.model import Event, OutlookLink
from core.plan.outbound import DirectoryUser, Expect, OutboundMessage, OutboundPlan, Step, merge, ordering
from core.plan.outlook_items import (
    APP_EVENT_ID_PROPERTY, OutlookItemError, content_hash, content_of, hash_content, parse_item,
)
from core.adapters.rows import ROOT, RootMeta, event_rows, iso
from core.adapters.storage import Storage, escape_key, join_chunks, split_chunks
from core.plan.timezones import parse_utc

log = logging.getLogger(__name__)

OPERATIONS_TABLE = "Operations"
PARTITION = "outbound"
MAX_REPLANS = 4
#: Fields read back after a write, as the inbound gather reads them (core.app.sync).
_ITEM_FIELDS = (
    "id,type,seriesMasterId,subject,body,location,start,end,isAllDay,originalStartTimeZone,"
    "originalEndTimeZone,recurrence,attendees,organizer,iCalUId,lastModifiedDateTime,changeKey,"
    "isCancelled,isOrganizer,responseStatus"
)
_MASTER_SELECT = _ITEM_FIELDS + ",cancelledOccurrences"
_EXPAND = f"singleValueExtendedProperties($filter=id eq '{APP_EVENT_ID_PROPERTY}')"


class OutboundRejected(ValueError):
    """The message can never be applied; ``reason`` says why (it goes to the poison queue)."""

    def __init__(self, reason: str, operation_id: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.operation_id = operation_id


# =========================================================================== operations


@dataclass
class OperationRecord:
    """One outbound operation's row: status, progress and, when poisoned, the reason.

    ``status`` is one of ``core.plan.delivery``'s: new, running, waiting (re-scheduled:
    ``retry_at`` says when), applied, stale (changed nothing: older than what was applied),
    rejected (in the poison queue, ``reason`` says why), replayed (back on its queue)."""

    key: str
    status: str = "new"
    reason: str = ""
    event_id: str = ""
    attempts: int = 0
    progress: dict[str, Any] = field(default_factory=dict)  # step id -> result
    before: dict[str, str] = field(default_factory=dict)  # outlook id -> content hash before our writes
    message: str = ""
    summary: str = ""
    updated_at: str = ""
    waits: int = 0  # times re-scheduled (throttling, waiting for the event's create)
    waiting_since: str = ""  # when the current run of waits began (empty: not waiting)
    retry_at: str = ""  # when a waiting operation is tried again
    #: what the ``outbound-results`` message says besides the status (issue 12); not stored
    result: dict[str, Any] = field(default_factory=dict)


class Operations:
    """The Operations table: one row per outbound operation id (PartitionKey ``outbound``)."""

    def __init__(self, storage: Storage, publish: Callable[[str, Mapping[str, Any]], None] | None = None):
        self._table = storage.table(OPERATIONS_TABLE)
        self.publish = publish if publish is not None else storage.publish

    def get(self, key: str) -> OperationRecord | None:
        try:
            e = self._table.get_entity(PARTITION, escape_key(key))
        except ResourceNotFoundError:
            return None
        return _record(key, e)

    def save(self, rec: OperationRecord, now: datetime) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": PARTITION, "RowKey": escape_key(rec.key), "OperationId": rec.key,
            "Status": rec.status, "Reason": rec.reason[:4000], "EventId": rec.event_id, "Attempts": rec.attempts,
            "Summary": rec.summary[:4000], "UpdatedAt": iso(now), "Waits": rec.waits,
            "WaitingSince": rec.waiting_since, "RetryAt": rec.retry_at,
        }
        entity.update(split_chunks("Progress", json.dumps(rec.progress, sort_keys=True)))
        entity.update(split_chunks("Before", json.dumps(rec.before, sort_keys=True)))
        entity.update(split_chunks("Message", rec.message))
        self._table.upsert_entity(entity, mode="replace")
        rec.updated_at = iso(now)

    def all(self) -> Iterable[OperationRecord]:
        for e in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}):
            if e.get("OperationId"):
                yield _record(e["OperationId"], e)

    def for_event(self, event_id: str) -> Iterable[OperationRecord]:
        """Every operation recorded for one event (a rare path: an event that is not stored)."""
        for e in self._table.query_entities("PartitionKey eq @pk and EventId eq @ev",
                                            parameters={"pk": PARTITION, "ev": event_id}):
            if e.get("OperationId"):
                yield _record(e["OperationId"], e)


def _record(key: str, e: Mapping[str, Any]) -> OperationRecord:
    return OperationRecord(
        key=key, status=e.get("Status", "new"), reason=e.get("Reason", ""), event_id=e.get("EventId", ""),
        attempts=int(e.get("Attempts", 0)), progress=json.loads(join_chunks("Progress", e) or "{}"),
        before=json.loads(join_chunks("Before", e) or "{}"), message=join_chunks("Message", e) or "",
        summary=e.get("Summary", ""), updated_at=e.get("UpdatedAt", ""), waits=int(e.get("Waits", 0) or 0),
        waiting_since=e.get("WaitingSince", "") or "", retry_at=e.get("RetryAt", "") or "",
    )


def set_status(ops: Operations, rec: OperationRecord, status: str, now: datetime, *, reason: str = "",
               summary: str = "", retry_at: datetime | None = None) -> None:
    """THE one place an outbound operation's status is written (running, waiting, applied,
    stale, rejected, replayed): the record is saved and the outcome logged. Whatever must
    follow every status change (the ``outbound-results`` message of issue 12) goes here.
    """
    rec.status = status
    rec.reason = reason
    if summary:
        rec.summary = summary
    if status == delivery.WAITING:
        rec.waits += 1
        rec.waiting_since = rec.waiting_since or iso(now)
        rec.retry_at = iso(retry_at) if retry_at else ""
    elif status != delivery.RUNNING:
        rec.waiting_since, rec.retry_at = "", ""
    public = change_feed.RESULT_STATUS.get(status)
    if public is not None and rec.key:
        # published before the record is saved: a crash in between leaves the operation
        # unfinished, so its redelivery publishes again (at least once, never lost)
        r = rec.result
        message = change_feed.result_message(
            operation_id=rec.key, status=public, at=now, event_id=r.get("event_id") or rec.event_id,
            communifire_id=r.get("communifire_id", ""), reason=reason,
            until=retry_at if status == delivery.WAITING else None, seq=r.get("seq"),
            change_id=r.get("change_id", ""), side_effects=r.get("side_effects", ()),
            outlook_writes=r.get("outlook_writes", ()), snapshot=r.get("event"))
        publish_checked(ops.publish, RESULTS, change_feed.fit_result(message))
    ops.save(rec, now)
    if status in (delivery.REJECTED,):
        logs.warning(log, "outbound operation rejected", operation_id=rec.key, event_id=rec.event_id, reason=reason)
    elif status != delivery.RUNNING:
        logs.info(log, f"outbound operation {status}", operation_id=rec.key, event_id=rec.event_id,
                  reason=reason, retry_at=rec.retry_at)


def message_key(body: str, data: Any) -> str:
    """The operation record key: the operation id, else a hash of an unreadable body."""
    if isinstance(data, Mapping) and isinstance(data.get("operation_id"), str) and \
            outbound.message._ID.match(data["operation_id"]):
        return data["operation_id"]
    return "body-" + hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()[:24]


# =========================================================================== Graph steps


class _Mailboxes:
    """One GraphClient per user for this run (built lazily through the context)."""

    def __init__(self, ctx: Any):
        self._ctx = ctx
        self._clients: dict[str, GraphClient] = {}

    def __call__(self, user_id: str) -> GraphClient:
        if user_id not in self._clients:
            user = self._ctx.users.get(user_id)
            if user is None:
                raise OutboundRejected(f"user {user_id} is not connected to Outlook")
            self._clients[user_id] = self._ctx.graph_for(user)[0]
        return self._clients[user_id]


def _path(graph: GraphClient, item_id: str, suffix: str = "") -> str:
    return f"{graph.user_path}/events/{quote(item_id, safe='')}{suffix}"


def read_item(graph: GraphClient, item_id: str, kind: str) -> dict[str, Any] | None:
    """An item as the inbound gather reads it (None when it is gone)."""
    params = {"$expand": _EXPAND}
    if kind == "series":
        params["$select"] = _MASTER_SELECT
    try:
        body = graph.get(_path(graph, item_id), params=params)
    except GraphError as exc:
        if exc.not_found:
            return None
        raise
    return body if isinstance(body, dict) else None


def find_occurrence(graph: GraphClient, master_id: str, original_start: datetime, near: datetime | None) -> str | None:
    """The id of the occurrence (or exception) of a series with that original start."""
    lo = min(original_start, near or original_start) - timedelta(days=2)
    hi = max(original_start, near or original_start) + timedelta(days=2)
    try:
        for inst in graph.items(_path(graph, master_id, "/instances"),
                                params={"startDateTime": iso(lo), "endDateTime": iso(hi),
                                        "$select": "id,originalStart,start,end,type,isAllDay"}):
            raw = inst.get("originalStart")
            if raw and parse_utc(raw) == original_start:
                return str(inst["id"])
    except GraphError as exc:
        if exc.not_found:
            return None
        raise
    return None


def _resolve(target: str, progress: Mapping[str, Any]) -> str:
    if target.startswith("@"):
        result = progress.get(target[1:]) or {}
        return str(result.get("id") or "")
    return target


@dataclass(frozen=True, slots=True)
class Guard:
    """What a PATCH of a linked item is guarded with: the change key and snapshot as last
    synced (the base of a three-way merge) and when Communifire's change was made (D2)."""

    change_key: str
    base: Mapping[str, Any]
    ours_at: datetime
    kind: str = "single"


#: A write refused with 412 is merged and retried this many times (then the host retries).
MAX_MERGES = 3


def _written(body: Mapping[str, Any], response: Any) -> dict[str, Any]:
    """What a PATCH wrote, as its response shows it: kept for the link's next snapshot."""
    out: dict[str, Any] = {"written": list(merge.written_fields(body))}
    if isinstance(response, Mapping) and response.get("id"):
        try:
            item = parse_item(response)
        except OutlookItemError:
            return out
        out.update({"response": content_of(item), "change_key": item.change_key,
                    "last_modified": iso(item.last_modified) if item.last_modified else ""})
    return out


def _guarded_patch(graph: GraphClient, target: str, ours: Mapping[str, Any], guard: Guard) -> dict[str, Any]:
    """PATCH with ``If-Match``; on 412 re-read, merge three ways against the base, retry."""
    body, etag = dict(ours), guard.change_key
    conflicts: tuple[merge.Conflict, ...] = ()
    outlook_only: tuple[str, ...] = ()
    for _ in range(MAX_MERGES):
        if not body:
            result = {"outcome": "merged", "id": target, "written": []}
        else:
            try:
                _, response, _ = graph.request("PATCH", _path(graph, target), json_body=body,
                                               headers={"If-Match": f'W/"{etag}"'})
            except GraphError as exc:
                if exc.status != 412:
                    raise
                raw = read_item(graph, target, guard.kind)
                if raw is None:
                    return {"outcome": "gone", "why": "deleted in Outlook meanwhile"}
                theirs = parse_item(raw)
                merged = merge.merge_patch(ours, guard.base, content_of(theirs), theirs.last_modified, guard.ours_at)
                body, etag = merged.body, theirs.change_key
                conflicts, outlook_only = merged.conflicts, merged.outlook_only
                logs.info(log, "outbound write met an Outlook edit; merged", item_id=target,
                          conflicts=len(conflicts), outlook_only=",".join(outlook_only))
                continue
            result = {"outcome": "patched", "id": target, **_written(body, response)}
        if conflicts:
            result["conflicts"] = [c.to_json() for c in conflicts]
        if outlook_only:
            result["outlook_only"] = list(outlook_only)
        return result
    raise ConcurrencyConflict(f"Outlook item {target} kept changing during the write")


def run_step(graph: GraphClient, step: Step, progress: Mapping[str, Any], guard: Guard | None = None) -> dict[str, Any]:
    """Carry out one step; returns its result (recorded as progress).

    A ``patch`` of a linked item carries ``If-Match`` (``guard``): a 412 is merged by
    field (``core.plan.outbound.merge``) and retried.

    Raises:
        GraphError: a failure that is not "already done" (404 on a delete) or "gone".
    """
    target = _resolve(step.target, progress)
    if step.action != "create" and not target:
        return {"outcome": "skipped", "why": "the item it depends on was not made"}
    try:
        if step.action == "create":
            status, body, _ = graph.request("POST", f"{graph.user_path}/events", json_body=dict(step.body))
            return {"outcome": "created", "id": (body or {}).get("id", "")}
        if step.action in ("patch_occurrence", "delete_occurrence", "respond_occurrence"):
            assert step.original_start is not None
            occ = find_occurrence(graph, target, step.original_start, step.near)
            if occ is None:
                return {"outcome": "gone", "why": f"no instance of {iso(step.original_start)} in Outlook"}
            target = occ
        if step.action == "patch" and guard is not None and guard.change_key:
            return _guarded_patch(graph, target, step.body, guard)
        if step.action in ("patch", "patch_occurrence"):
            _, response, _ = graph.request("PATCH", _path(graph, target), json_body=dict(step.body))
            extra = _written(step.body, response) if step.action == "patch" else {}
            return {"outcome": "patched", "id": target, **extra}
        if step.action in ("delete", "delete_occurrence"):
            graph.request("DELETE", _path(graph, target))
            return {"outcome": "deleted", "id": target}
        if step.action in ("respond", "respond_occurrence"):
            graph.request("POST", _path(graph, target, f"/{step.body['action']}"), json_body={"sendResponse": True})
            return {"outcome": "responded", "id": target}
    except GraphError as exc:
        if exc.not_found:
            # a 404 on delete counts as done; elsewhere the item went meanwhile (inbound records it)
            return {"outcome": "deleted" if "delete" in step.action else "gone", "why": exc.code}
        raise
    raise ValueError(f"unknown step action {step.action!r}")


# =========================================================================== observing


def _writes_to(progress: Mapping[str, Any], outlook_id: str) -> list[Mapping[str, Any]]:
    """This operation's PATCH results on one item that say what they wrote, in order."""
    return [r for r in progress.values() if isinstance(r, Mapping) and r.get("id") == outlook_id
            and "written" in r and r.get("outcome") in ("patched", "merged")]


def _sec(value: datetime | None) -> datetime | None:
    return value.replace(microsecond=0) if value else None


def link_from(item_json: Mapping[str, Any], user_id: str, event_id: str, kind: str, *, segment_start: datetime | None,
              instance_start: datetime | None, evidence: str) -> OutlookLink:
    """The link the inbound planner would record for this item (rule A9)."""
    item = parse_item(item_json)
    return OutlookLink(
        user_id=user_id, outlook_id=item.id, event_id=event_id, kind=kind, content_hash=content_hash(item),
        snapshot=content_of(item), segment_start=segment_start, instance_start=instance_start,
        change_key=item.change_key, ical_uid=item.ical_uid, last_modified=_sec(item.last_modified), evidence=evidence,
    )


def _goid_for_date(master_uid: str, day: Any) -> str:
    """The iCalUId Exchange gives one instance's invitation (MS-OXOCAL PidLidGlobalObjectId:
    the instance date in bytes 16-19)."""
    if master_uid.upper().startswith("040000008200E00074C5B7101A82E008") and len(master_uid) > 40:
        return master_uid[:32] + f"{day.year:04X}{day.month:02X}{day.day:02X}" + master_uid[40:]
    return ""


def discover(graph: GraphClient, exp: Expect, organizer_email: str, master_uid: str) -> dict[str, Any] | None:
    """Find a user's copy of the meeting (or of one instance, C5) that Exchange delivered."""
    if exp.discover == "meeting" and master_uid:
        for item in graph.items(f"{graph.user_path}/events", params={"$filter": f"iCalUId eq '{master_uid}'",
                                                                      "$select": "id,type,isCancelled,isOrganizer"}):
            if not item.get("isCancelled") and not item.get("isOrganizer"):
                return read_item(graph, item["id"], exp.kind)
        return None
    if exp.discover == "instance" and exp.near is not None:
        lo, hi = exp.near - timedelta(hours=1), (exp.near_end or exp.near) + timedelta(hours=1)
        wanted = _goid_for_date(master_uid, exp.instance_start.date()) if exp.instance_start else ""
        for item in graph.items(f"{graph.user_path}/calendarView",
                                params={"startDateTime": iso(lo), "endDateTime": iso(hi), "$expand": _EXPAND}):
            if item.get("type") != "singleInstance" or item.get("isCancelled") or item.get("isOrganizer"):
                continue
            org = ((item.get("organizer") or {}).get("emailAddress") or {}).get("address", "").lower()
            if org != organizer_email:
                continue
            if wanted and item.get("iCalUId") == wanted:
                return item
            if parse_utc(item["start"]["dateTime"] + "Z") == exp.near:
                return item
    return None


# =========================================================================== the run


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # applied | duplicate | nothing | stale
    operation_id: str
    event_id: str
    steps: int = 0
    plan: OutboundPlan | None = None
    reason: str = ""
    result: Mapping[str, Any] | None = None


def _directory(ctx: Any, msg: OutboundMessage, loaded: LoadedEvent | None) -> dict[str, DirectoryUser]:
    users = {u.user_id: u for u in ctx.users.all()}
    out = {}
    for uid, u in users.items():
        out[uid] = DirectoryUser(uid, (u.upn or "").lower(), u.state == "connected")
    return out


def _build_change(plan: OutboundPlan, loaded: LoadedEvent | None, new_event: Event | None,
                  links: list[OutlookLink], op_key: str, now: datetime, versions: str = "", change_id: str = "",
                  published: Mapping[str, Any] | None = None) -> EventChange | None:
    event_id = plan.event_id
    before_links = list(loaded.links) if loaded else []
    old_keys = {(l.user_id, l.outlook_id): l for l in before_links}
    new_keys = {(l.user_id, l.outlook_id): l for l in links}
    if new_event is None:
        if loaded is None:
            return None
        return EventChange(event_id=event_id, base_etag=loaded.etag, upserts={}, deletes=(), delete_event=True,
                           index_remove=tuple(sorted(old_keys)), meeting_uid=loaded.event.meeting_uid,
                           change_id=change_id)
    old_meta = loaded.meta if loaded else RootMeta()
    old_rows = event_rows(loaded.event, before_links, old_meta) if loaded else {}
    new_rows = event_rows(new_event, links, new_meta(loaded, event_id, change_id))
    upserts: dict[str, dict[str, Any]] = {k: v for k, v in new_rows.items() if old_rows.get(k) != v}
    # the operation's row, in the same transaction: what it published, so a redelivery
    # after a crash publishes the same messages again instead of re-running (issue 12)
    upserts[f"op|{escape_key(op_key)}"] = {"OperationId": op_key, "At": iso(now),
                                          **split_chunks("Published", json.dumps(published or {}, sort_keys=True))}
    if versions and versions != (loaded.versions if loaded else ""):
        upserts[VERSIONS_ROW] = split_chunks("Versions", versions)  # ordering: what was applied, per key
    if loaded is not None and ROOT not in upserts:
        upserts[ROOT] = new_rows[ROOT]  # the root carries the ETag: always part of the change
    deletes = tuple(sorted(k for k in old_rows if k not in new_rows))
    index_add = tuple((u, o, l.kind) for (u, o), l in sorted(new_keys.items())
                      if (u, o) not in old_keys or old_keys[(u, o)].kind != l.kind)
    index_remove = tuple(sorted(k for k in old_keys if k not in new_keys))
    return EventChange(event_id=event_id, base_etag=loaded.etag if loaded else None, upserts=upserts, deletes=deletes,
                       index_add=index_add, index_remove=index_remove, meeting_uid=new_event.meeting_uid,
                       change_id=change_id)


def new_meta(loaded: LoadedEvent | None, event_id: str, change_id: str) -> RootMeta:
    """The root metadata after an outbound operation: one more change; an event created
    from Communifire is bound to the id Communifire gave it (issue 12)."""
    if loaded is None:
        return RootMeta(1, change_id, event_id)
    return next_meta(loaded.meta, change_id)


def outlook_writes(steps: Iterable[Step], progress: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each Outlook write of an operation with its outcome, for its result message."""
    return [{"user_id": s.user_id, "action": s.action, "rule": s.rule, "reason": s.reason,
             "outcome": str((progress.get(s.id) or {}).get("outcome", "not done"))} for s in steps]


def _without_seq(doc: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A document without what every change moves on (``seq``), for comparing two states."""
    return None if doc is None else {k: v for k, v in doc.items() if k != "seq"}


def published_messages(msg: OutboundMessage, plan: OutboundPlan, loaded: LoadedEvent | None, new_event: Event | None,
                       links: list[OutlookLink], steps: Iterable[Step], progress: Mapping[str, Any], change_id: str,
                       now: datetime) -> dict[str, Any]:
    """What an applied operation tells Communifire: its result fields and, when it changed
    more than the message asked (A3, A6, A8), its change-feed message (docs/changes.md)."""
    window = window_for(now)
    meta = new_meta(loaded, plan.event_id, change_id)
    before = event_json(loaded.event, loaded.links, window, EventMeta(loaded.meta.seq, loaded.meta.communifire_id)) \
        if loaded else None
    after = event_json(new_event, links, window, EventMeta(meta.seq, meta.communifire_id)) if new_event else None
    asked = change_feed.Asked(msg.operation, msg.scope, msg.instance, frozenset(msg.event.given))
    effects = change_feed.side_effects(change_feed.event_changes(_without_seq(before), _without_seq(after)), asked,
                                       before, after)
    result = {"event_id": plan.event_id, "communifire_id": meta.communifire_id, "seq": meta.seq,
              "change_id": change_id, "side_effects": effects, "outlook_writes": outlook_writes(steps, progress),
              "event": after}
    feed = None
    if effects:
        rules = [{"rule": s.rule, "reason": f"{s.user_id}: {s.reason}"} for s in steps] or \
            [{"rule": "A9", "reason": "; ".join(plan.notes) or "side effect of the operation"}]
        feed = change_feed.shrink(change_feed.feed_message(
            change_id=change_id, event_id=plan.event_id, communifire_id=meta.communifire_id, seq=meta.seq, at=now,
            source="outbound", operation_id=msg.operation_id, changes=effects, rules=rules,
            users=change_feed.concerned_users(before, after), snapshot=after))
    return {"result": result, "feed": feed}


class OutboundRunner:
    """Applies one validated message: plan, write Outlook, observe, write Table Storage."""

    def __init__(self, ctx: Any, storage: Storage, ops: Operations, clock: Callable[[], datetime]):
        self.ctx = ctx
        self.storage = storage
        self.ops = ops
        self.clock = clock
        self.events: EventStore = ctx.events
        self._guards: dict[tuple[str, str], Guard] = {}

    def plan(self, msg: OutboundMessage) -> tuple[OutboundPlan, LoadedEvent | None]:
        """The plan for a message now (the message as ordering lets it apply)."""
        loaded = self.events.load(msg.event.id)
        verdict = ordering.check(msg, ordering.loads(loaded.versions if loaded else ""))
        return self._plan(verdict.message, loaded), loaded

    def _plan(self, msg: OutboundMessage, loaded: LoadedEvent | None) -> OutboundPlan:
        directory = _directory(self.ctx, msg, loaded)
        return outbound.plan_outbound(msg, loaded.event if loaded else None, loaded.links if loaded else (),
                                      directory, app_property=APP_EVENT_ID_PROPERTY)

    def _deleted_by(self, event_id: str) -> ordering.Version | None:
        """The version of the applied delete of a whole event (its tombstone), if any."""
        found = None
        for other in self.ops.for_event(event_id):
            if other.status not in delivery.FINAL or not other.message:
                continue
            try:
                done = outbound.parse_message(json.loads(other.message))
            except (ValueError, outbound.MessageError):
                continue
            if done.operation == "delete" and done.scope == "all":
                v = ordering.version_of(done)
                found = v if found is None or ordering.newer(v, found) else found
        return found

    def _stale(self, msg: OutboundMessage, reason: str) -> Outcome:
        self.ctx.audit.record(msg.actor, self.clock(), [
            {"kind": f"outbound {msg.operation} stale", "event_id": msg.event.id, "rule": "D2", "reason": reason}],
            "outbound")
        return Outcome("stale", msg.operation_id, msg.event.id, 0, None, reason)

    def run(self, original: OutboundMessage, rec: OperationRecord) -> Outcome:
        """Apply a message: ordering first (stale? partly stale?), then plan, write Outlook,
        observe, and write the event with what was applied, against its ETag."""
        mailboxes = _Mailboxes(self.ctx)
        rec.event_id = original.event.id
        for attempt in range(MAX_REPLANS):
            loaded = self.events.load(original.event.id)
            done = loaded.ops.get(original.operation_id) if loaded is not None else None
            if done is not None:  # committed before a crash: ordering would call it stale
                return self._committed(original, done)
            applied = ordering.loads(loaded.versions if loaded else "")
            if loaded is None and original.operation != "create":
                reason = ordering.stale_after_delete(original, self._deleted_by(original.event.id))
                if reason:
                    return self._stale(original, reason)
                if original.operation in ("update", "rsvp", "invite"):
                    raise EventNotStored(original.event.id)
            verdict = ordering.check(original, applied)
            if verdict.stale:
                return self._stale(original, verdict.reason)
            msg = verdict.message
            self._guards = {(l.user_id, l.outlook_id): Guard(l.change_key, l.snapshot, msg.occurred_at,
                                                               "series" if l.kind == "series" else "single")
                            for l in (loaded.links if loaded else ()) if l.kind in ("single", "series")}
            plan = self._plan(msg, loaded)
            if plan.refused:
                raise OutboundRejected(plan.refused, msg.operation_id)
            rec.event_id = plan.event_id
            logs.info(log, "outbound plan", operation_id=msg.operation_id, event_id=plan.event_id,
                steps=len(plan.steps), attempt=attempt)
            if loaded is None and plan.new_event is None and not plan.delete_event:
                return Outcome("nothing", msg.operation_id, plan.event_id, 0, plan)
            directory = _directory(self.ctx, msg, loaded)
            self._remember_before(rec, loaded, directory, mailboxes)
            for step in plan.steps:
                self._do(step, rec, mailboxes)
            links = self._observe(plan, loaded, directory, mailboxes, rec)
            new_event = plan.new_event
            if new_event is not None:
                fixes = outbound.plan_title_fixes(
                    new_event, [(l, {"subject": l.snapshot.get("title"), "isCancelled": False}) for l in links],
                    msg.event.organizer.user_id if msg.event.organizer else "",
                    [u for u, d in directory.items() if d.connected])
                for step in fixes:
                    self._do(step, rec, mailboxes)
                if fixes:
                    links = self._observe(plan, loaded, directory, mailboxes, rec)
                new_event = _settle(new_event, links, msg)
            change_id = f"op:{msg.operation_id}"
            steps_done = [*plan.steps, *(fixes if new_event is not None else ())]
            published = published_messages(msg, plan, loaded, new_event, links, steps_done, rec.progress, change_id,
                                           self.clock())
            change = _build_change(plan, loaded, new_event, links, msg.operation_id, self.clock(),
                                   ordering.dumps(ordering.record(msg, applied)), change_id, published)
            if change is None:
                return Outcome("nothing", msg.operation_id, plan.event_id, len(plan.steps), plan)
            try:
                self.events.apply(change)
            except ConcurrencyConflict:
                logs.info(log, "event changed meanwhile; re-planning", operation_id=msg.operation_id,
                    event_id=plan.event_id)
                continue
            self.ctx.audit.record(msg.actor, self.clock(), [
                {"kind": f"outbound {s.action}", "event_id": plan.event_id, "rule": s.rule,
                 "reason": f"{s.user_id}: {s.reason}"} for s in plan.steps
            ] + _conflict_audit(plan, rec) or [{"kind": f"outbound {msg.operation}", "event_id": plan.event_id, "rule": "A9",
                   "reason": "; ".join(plan.notes) or "no Outlook write needed"}], "outbound")
            if published["feed"] is not None:
                publish_checked(self.ctx.publish, CHANGES, published["feed"])
            return Outcome("applied", msg.operation_id, plan.event_id, len(plan.steps), plan, verdict.reason,
                           published["result"])
        raise ConcurrencyConflict(f"event {original.event.id} kept changing while operation {original.operation_id} "
                                  "was applied")

    def _committed(self, msg: OutboundMessage, published: Mapping[str, Any]) -> Outcome:
        """The operation committed before a crash: publish what it published, change nothing."""
        logs.info(log, "outbound operation already committed; published again", operation_id=msg.operation_id)
        if published.get("feed"):
            publish_checked(self.ctx.publish, CHANGES, published["feed"])
        result = published.get("result") or {}
        return Outcome("applied", msg.operation_id, str(result.get("event_id") or msg.event.id), 0, None,
                       result=result)

    def _remember_before(self, rec: OperationRecord, loaded: LoadedEvent | None,
                         directory: Mapping[str, DirectoryUser], mailboxes: _Mailboxes) -> None:
        """The content hash of every linked item before our first write (once per operation):
        an item changed in Outlook since the last sync keeps its old snapshot, so the next
        inbound sync still sees that change (no lost update)."""
        if rec.progress or loaded is None:
            return
        for link in loaded.links:
            if link.outlook_id in rec.before or not (directory.get(link.user_id) and directory[link.user_id].connected):
                continue
            raw = read_item(mailboxes(link.user_id), link.outlook_id, link.kind)
            rec.before[link.outlook_id] = "" if raw is None else content_hash(parse_item(raw))
        self.ops.save(rec, self.clock())

    def _do(self, step: Step, rec: OperationRecord, mailboxes: _Mailboxes) -> None:
        if step.id in rec.progress:
            return  # done by an earlier delivery of this message
        key = (step.user_id, _resolve(step.target, rec.progress))
        guard = self._guards.get(key)
        result = run_step(mailboxes(step.user_id), step, rec.progress, guard)
        if guard is not None and result.get("change_key"):
            # a later write of the same item in this operation starts from this one
            self._guards[key] = replace(guard, change_key=result["change_key"], base=merge.snapshot_after_write(
                guard.base, result.get("written", []), result.get("response") or {}))
        rec.progress[step.id] = result
        self.ops.save(rec, self.clock())
        logs.info(log, "outbound step", operation_id=rec.key, step=step.id, rule=step.rule,
            user_id=step.user_id, outcome=result.get("outcome"))

    def _observe(self, plan: OutboundPlan, loaded: LoadedEvent | None, directory: Mapping[str, DirectoryUser],
                 mailboxes: _Mailboxes, rec: OperationRecord) -> list[OutlookLink]:
        """Read back every item that stands for the event now, as the new links (A9)."""
        if plan.delete_event or plan.new_event is None:
            return []
        event = plan.new_event
        old = {(l.user_id, l.outlook_id): l for l in (loaded.links if loaded else ())}
        out: dict[tuple[str, str], OutlookLink] = {}
        organizer_uid: dict[datetime | None, str] = {}
        org_email = event.organizer.lower()
        keep = {(l.user_id, l.outlook_id): l for l in plan.keep_links}

        def record(exp: Expect, raw: Mapping[str, Any] | None, evidence: str) -> OutlookLink | None:
            if raw is None or raw.get("isCancelled"):
                return None
            try:
                link = link_from(raw, exp.user_id, event.id, exp.kind, segment_start=exp.segment_start,
                                 instance_start=exp.instance_start, evidence=evidence)
            except OutlookItemError as exc:
                logs.warning(log, "outbound: cannot read back an item", error=str(exc))
                return None
            prior = old.get((exp.user_id, link.outlook_id))
            writes = _writes_to(rec.progress, link.outlook_id)
            if prior is not None and writes:
                # we wrote this item: its snapshot is the base plus what we wrote, as the
                # write's response showed it, never this read-back (it may hold an Outlook
                # edit made meanwhile, which the next inbound sync must still see)
                snapshot = dict(prior.snapshot)
                for w in writes:
                    snapshot = merge.snapshot_after_write(snapshot, w.get("written", []), w.get("response") or {})
                last = writes[-1]
                link = replace(link, snapshot=snapshot, content_hash=hash_content(snapshot),
                               change_key=last.get("change_key") or prior.change_key,
                               last_modified=_sec(parse_utc(last["last_modified"])) if last.get("last_modified")
                               else prior.last_modified)
            elif prior is not None and rec.before.get(link.outlook_id, prior.content_hash) != prior.content_hash:
                # changed in Outlook before our write and not synced yet: keep the old snapshot
                link = replace(prior, kind=exp.kind, segment_start=exp.segment_start, instance_start=exp.instance_start)
            out[(exp.user_id, link.outlook_id)] = link
            return link

        for exp in plan.expects:
            if exp.discover:
                continue
            item_id = _resolve(exp.outlook_id, rec.progress) if exp.outlook_id else ""
            if not item_id:
                continue
            raw = read_item(mailboxes(exp.user_id), item_id, exp.kind)
            prior = old.get((exp.user_id, item_id))
            link = record(exp, raw, prior.evidence if prior else "")
            if link is not None:
                organizer_uid[exp.segment_start] = link.ical_uid
        for exp in plan.expects:
            if not exp.discover or not directory.get(exp.user_id) or not directory[exp.user_id].connected:
                continue
            graph = mailboxes(exp.user_id)
            raw = read_item(graph, exp.outlook_id, exp.kind) if exp.outlook_id else None
            seg_key = exp.segment_start if exp.kind == "series" else None
            master_uid = organizer_uid.get(seg_key) or organizer_uid.get(exp.segment_start) or ""
            if exp.discover == "instance":
                seg = event.segment_for(exp.instance_start) if exp.instance_start else event.segments[0]
                master_uid = organizer_uid.get(seg.start if seg.recurrence else None, "")
            if raw is None or raw.get("isCancelled"):
                raw = discover(graph, exp, org_email, master_uid)
            record(exp, raw, f"A7: iCalUId {raw.get('iCalUId', '') if raw else ''} matches event {event.id}")
        # links the plan did not name: still there -> kept (refreshed), gone or cancelled -> dropped
        for key, link in old.items():
            if key in out or key in keep or not (directory.get(link.user_id) and directory[link.user_id].connected):
                continue
            raw = read_item(mailboxes(link.user_id), link.outlook_id, link.kind)
            exp = Expect(link.user_id, link.kind, link.outlook_id, link.segment_start, link.instance_start)
            if link.kind == "series" and link.segment_start not in {s.start for s in event.segments}:
                continue
            record(exp, raw, link.evidence)
        out.update(keep)
        return sorted(out.values(), key=lambda l: (l.user_id, l.outlook_id))


def _conflict_audit(plan: OutboundPlan, rec: OperationRecord) -> list[dict[str, str]]:
    """D2: each field changed both in Outlook and in Communifire, with the loser's value."""
    out = []
    for step in plan.steps:
        for c in (rec.progress.get(step.id) or {}).get("conflicts", []):
            out.append({"kind": "outbound conflict", "event_id": plan.event_id, "rule": "D2",
                        "reason": f"{step.user_id}: {c['field']}: {c['winner']} won ({c['reason']}); "
                                  f"kept {c['kept']!r}, lost {c['lost']!r}"})
    return out


def _settle(event: Event, links: list[OutlookLink], msg: OutboundMessage) -> Event:
    """Fill what only Outlook's answer tells: the meeting's iCalUId (A7), and the time of
    the exceptions this message wrote (the organizer's series as last modified), so the
    next inbound sync does not take them for newer Outlook edits (D2, A9)."""
    organizer = event.organizer.lower()
    org_links = [l for l in links if l.snapshot.get("is_organizer") is True or
                 (l.snapshot.get("organizer") == organizer and l.kind != "instance" and not l.evidence.startswith("A7"))]
    if not event.meeting_uid:
        first = event.segments[0]
        uid = next((l.ical_uid for l in org_links if (l.kind == "single" and first.recurrence is None) or
                    (l.kind == "series" and l.segment_start == first.start)), "")
        event = replace(event, meeting_uid=uid)
    exceptions = dict(event.exceptions)
    changed = False
    for key, exc in exceptions.items():
        if exc.modified_at != msg.occurred_at:
            continue
        seg = event.segment_for(key)
        link = next((l for l in org_links if l.kind == "series" and l.segment_start == seg.start), None)
        if link is not None and link.last_modified is not None and link.last_modified > exc.modified_at:
            exceptions[key] = replace(exc, modified_at=link.last_modified)
            changed = True
    if changed:
        event = replace(event, exceptions=exceptions)
    return event


# =========================================================================== entry point


class EventNotStored(Exception):
    """An operation on an event that is not stored: its create may not have arrived yet."""


#: Graph answers that mean "not now": the work waits instead of counting toward poison.
THROTTLED = (429, 503, 504)
QUEUE = "outbound"


def run_outbound(app: Any, body: str | bytes) -> str:
    """The ``apply_outbound`` queue trigger's work: apply one Communifire change message.

    Returns the outcome; every one ends this delivery (the host deletes the message):
    ``applied``; ``duplicate`` (done before: nothing changes); ``nothing``; ``stale``
    (older than what was applied for the event: nothing changes); ``waiting`` (throttled,
    or the event's create has not arrived: a new copy of the message is on the queue,
    invisible until the retry time, and the record says ``waiting``); ``rejected`` (can
    never succeed: the message is in ``outbound-poison`` now, its reason on the record).

    Raises:
        GraphError (other than throttling), ConcurrencyConflict, storage errors: transient
            trouble; the host retries the message and the run resumes where it stopped.
    """
    from core.app.service import sync_context

    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    ops = Operations(app.storage)
    now = app.clock()
    try:
        text = raw.decode("utf-8")
        data = app.storage.resolve(text)
    except (ValueError, ResourceNotFoundError) as exc:
        key = message_key(raw.decode("utf-8", "replace"), None)
        rec = ops.get(key) or OperationRecord(key=key, message=raw.decode("utf-8", "replace"))
        return poison_now(app, ops, rec, raw, f"not a JSON object: {exc}")
    key = message_key(text, data)
    rec = ops.get(key) or OperationRecord(key=key, message=json.dumps(data, sort_keys=True))
    if delivery.is_final(rec.status):
        logs.info(log, "outbound message already applied", operation_id=key, status=rec.status)
        return "duplicate"
    try:
        data = contracts.accept("outbound", data, source=key, schema=False)  # versions, unknown fields
        data = binding.resolve_event_name(binding.Bindings(app.storage), data)
        if data.get("operation") == "bind":
            contracts.accept("outbound", data, source=key)
            return _run_bind(app, ops, rec, data, raw)
        msg = outbound.parse_message(data)
        found = contracts.problems("outbound", data)  # the producer's schema, after the clearer semantic checks
        if found:
            raise contracts.ContractError(found)
    except (outbound.MessageError, contracts.ContractError) as exc:
        return poison_now(app, ops, rec, raw, f"invalid message: {exc}")
    refusal = admission_refusal(msg, raw_size=len(raw))
    if refusal:
        return poison_now(app, ops, rec, raw, refusal)
    if not app.settings.sync_enabled:
        return poison_now(app, ops, rec, raw, "EnableCalendarSync is false: outbound changes are not written")
    rec.attempts += 1
    set_status(ops, rec, delivery.RUNNING, now)
    runner = OutboundRunner(sync_context(app), app.storage, ops, app.clock)
    try:
        outcome = runner.run(msg, rec)
    except OutboundRejected as exc:
        return poison_now(app, ops, rec, raw, exc.reason)
    except EventNotStored:
        decision = delivery.after_missing_event(msg.event.id, msg.operation, rec.waits)
        return _wait_or_poison(app, ops, rec, raw, decision)
    except GraphError as exc:
        what = f"Graph {exc.status} {exc.code}: {exc.message}"
        if exc.status in THROTTLED:
            since = parse_utc(rec.waiting_since) if rec.waiting_since else None
            decision = delivery.after_throttling(exc.retry_after, rec.waits, since, app.clock(), what)
            return _wait_or_poison(app, ops, rec, raw, decision)
        if exc.transient or exc.status == 401:
            set_status(ops, rec, delivery.RUNNING, app.clock(), reason=what)
            raise  # a dropped connection, a 500, an expired token: the host retries
        return poison_now(app, ops, rec, raw, what)
    rec.result = dict(outcome.result or {"event_id": outcome.event_id})
    status = delivery.STALE if outcome.status == "stale" else delivery.APPLIED
    set_status(ops, rec, status, app.clock(), reason=outcome.reason,
               summary=f"{outcome.status}: {outcome.steps} Outlook write(s) planned")
    return outcome.status


def admission_refusal(msg: OutboundMessage, raw_size: int | None = None) -> str:
    """Why a parsed message can never be applied, whatever the stored state ("" if it can):
    the same reasons ``enqueue`` and the producer give (issue 11)."""
    from core.plan.outbound.admission import refusal

    return refusal(msg, raw_size)


def poison_now(app: Any, ops: Operations, rec: OperationRecord, raw: bytes, reason: str) -> str:
    """A message that can never succeed: into ``outbound-poison`` on its first delivery (as
    the host would put it there after its retries: base64 of the original bytes), with the
    reason on the operation record. The host then deletes the original."""
    app.storage.raw_queue(f"{QUEUE}-poison").send_message(base64.b64encode(raw).decode("ascii"))
    set_status(ops, rec, delivery.REJECTED, app.clock(), reason=reason)
    return "rejected"


def _wait_or_poison(app: Any, ops: Operations, rec: OperationRecord, raw: bytes, decision: delivery.Decision) -> str:
    if decision.action == "poison":
        return poison_now(app, ops, rec, raw, decision.reason)
    now = app.clock()
    # a new copy, invisible until the retry time: the host deletes this one, so the
    # dequeue count (the poison threshold) starts again; steps already done are skipped
    app.storage.raw_queue(QUEUE).send_message(base64.b64encode(raw).decode("ascii"),
                                              visibility_timeout=decision.delay_seconds)
    set_status(ops, rec, delivery.WAITING, now, reason=decision.reason, retry_at=decision.retry_at(now))
    return "waiting"


def _run_bind(app: Any, ops: Operations, rec: OperationRecord, data: Mapping[str, Any], raw: bytes) -> str:
    """The ``bind`` operation: Communifire's content id for an event (issue 12)."""
    event_id, communifire_id = str(data["event"]["id"]), str(data["communifire_id"])
    rec.event_id = event_id
    rec.attempts += 1
    try:
        rec.result = binding.bind(app.storage, rec.key, event_id, communifire_id, app.clock(), window_for(app.clock()))
    except binding.BindRefused as exc:
        return poison_now(app, ops, rec, raw, str(exc))
    set_status(ops, rec, delivery.APPLIED, app.clock(), summary=f"bound to Communifire id {communifire_id}")
    return "applied"


def dry_run(app: Any, data: Mapping[str, Any]) -> OutboundPlan:
    """The plan a message would give now (nothing is written)."""
    from core.app.service import sync_context

    msg = outbound.parse_message(data)
    runner = OutboundRunner(sync_context(app), app.storage, Operations(app.storage), app.clock)
    return runner.plan(msg)[0]
