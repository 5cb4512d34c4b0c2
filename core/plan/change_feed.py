"""The change feed's messages (queue ``calendar-changes``, docs/changes.md). Pure.

Owns: what one committed change of one event says to Communifire: which changes (event
created, fields changed by name, series split, instances changed / deleted / restored by
their original start, RSVPs, event deleted), the rules and reasons, the users concerned,
the event's per-event sequence number, and a snapshot of the event as the read API shows
it. Changes are computed by comparing two read-API documents of the event (before and
after the change, ``core.plan.calendar_view.event_json``), so the feed, the read API and
``calendar --json`` cannot disagree.

An outbound operation publishes only what it changed beyond what its author asked
(``side_effects``): the A3/A6/A8 consequences Communifire cannot know by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from core.plan.outlook_items import iso

VERSION = 1
SCHEMA_ID = "urn:communifire:outlook-sync:calendar-change:1"
KIND = "calendar_change"
#: Top-level event fields whose change is reported by name.
EVENT_FIELDS = ("title", "organizer", "start", "end", "all_day", "time_zone", "location", "body", "attendees")
#: Per-instance effective fields whose change is reported by name.
INSTANCE_FIELDS = ("start", "end", "title", "location", "all_day", "time_zone", "body", "attendees", "state")
SEGMENT_FIELDS = ("end", "until", "title", "body", "location", "all_day", "time_zone", "attendees", "recurrence")
#: Queue messages are at most 64 KiB once base64-encoded: above this the snapshot and the
#: per-instance details go by reference (the read API), the change names stay.
MAX_INLINE = 45_000


def _instances(doc: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {i["original_start"]: i for i in (doc or {}).get("instances") or ()}


def _segments(doc: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    series = (doc or {}).get("series") or {}
    return {s["start"]: s for s in series.get("segments") or ()}


def event_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """What changed between two documents of one event, in a fixed order (docs/changes.md)."""
    if before is None and after is None:
        return []
    if after is None:
        return [{"type": "event_deleted"}]
    out: list[dict[str, Any]] = []
    if before is None:
        out.append({"type": "event_created"})
        before = {}
    else:
        names = [f for f in EVENT_FIELDS if before.get(f) != after.get(f)]
        if names:
            out.append({"type": "fields_changed", "fields": names, "values": {f: after.get(f) for f in names}})
    old_segs, new_segs = _segments(before), _segments(after)
    if before:
        split = [s for s in new_segs if s not in old_segs and old_segs]
        for start in split:
            out.append({"type": "series_split", "segment_start": start, "segment": dict(new_segs[start])})
        changed = [{"segment_start": s, "fields": [f for f in SEGMENT_FIELDS if old_segs[s].get(f) != new_segs[s].get(f)]}
                   for s in new_segs if s in old_segs]
        changed = [c for c in changed if c["fields"]]
        if changed:
            out.append({"type": "segments_changed", "segments": changed})
        gone = sorted(s for s in old_segs if s not in new_segs)
        if gone:
            out.append({"type": "segments_removed", "segment_starts": gone})
    old_i, new_i = _instances(before), _instances(after)
    deleted, restored, changed_i, added, removed = [], [], [], [], []
    for key, inst in new_i.items():
        prev = old_i.get(key)
        if prev is None:
            if before:
                added.append(key)
            continue
        if inst["state"] == "deleted" and prev["state"] != "deleted":
            deleted.append(key)
        elif prev["state"] == "deleted" and inst["state"] != "deleted":
            restored.append(key)
        names = [f for f in INSTANCE_FIELDS if prev.get(f) != inst.get(f) and f != "state"]
        if inst["state"] != prev["state"] and {inst["state"], prev["state"]} == {"normal", "exception"}:
            names.append("state")
        if names and inst["state"] != "deleted":
            changed_i.append({"original_start": key, "fields": names,
                              "values": {f: inst.get(f) for f in names}})
    removed = sorted(k for k in old_i if k not in new_i)
    if changed_i:
        out.append({"type": "instances_changed", "instances": changed_i})
    if deleted:
        out.append({"type": "instances_deleted", "original_starts": deleted})
    if restored:
        out.append({"type": "instances_restored", "original_starts": restored})
    if added:
        out.append({"type": "instances_added", "original_starts": added})
    if removed:
        out.append({"type": "instances_removed", "original_starts": removed})
    if before and before.get("outlook") != after.get("outlook"):
        old_l = {json.dumps(l, sort_keys=True) for l in before.get("outlook") or ()}
        new_l = {json.dumps(l, sort_keys=True) for l in after.get("outlook") or ()}
        users = sorted({json.loads(l)["user_id"] for l in old_l ^ new_l})
        out.append({"type": "outlook_changed", "users": users})
    if before and before.get("rsvps") != after.get("rsvps"):
        old_r = {json.dumps(r, sort_keys=True) for r in before.get("rsvps") or ()}
        new_r = {json.dumps(r, sort_keys=True) for r in after.get("rsvps") or ()}
        users = sorted({json.loads(r)["user_id"] for r in old_r ^ new_r})
        out.append({"type": "rsvps_changed", "users": users, "rsvps": list(after.get("rsvps") or ())})
    if before and before.get("communifire_id") != after.get("communifire_id"):
        out.append({"type": "bound", "communifire_id": after.get("communifire_id")})
    if before and not out and dict(before) != dict(after):
        out.append({"type": "details_changed"})  # shown differently, named by no type above
    return out


@dataclass(frozen=True, slots=True)
class Asked:
    """What an outbound message asked for (its operation, scope, instance and fields)."""

    operation: str
    scope: str
    original_start: datetime | None = None
    fields: frozenset[str] = frozenset()


#: message field names (docs/messages.md) -> read-API field names
_MESSAGE_FIELDS = {"title": "title", "body": "body", "location": "location", "start": "start", "end": "end",
                   "all_day": "all_day", "time_zone": "time_zone", "attendees": "attendees",
                   "recurrence": "recurrence"}


_MODEL_TO_DOC = {"is_all_day": "all_day"}


def _lost_own_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """After a series time change every instance moves to a new slot (O5); pair them in
    order and name the instances that lost changes of their own, or their state, on the
    way (A3, A6: a time change keeps each exception's own non-time changes only)."""
    old, new = list((before or {}).get("instances") or ()), list((after or {}).get("instances") or ())
    if not old or len(old) != len(new):
        return []
    out = []
    for b, a in zip(old, new, strict=True):  # same length, checked above
        lost = sorted(_MODEL_TO_DOC.get(f, f) for f in set(b["changed_fields"]) - set(a["changed_fields"]))
        if b["state"] != a["state"]:
            lost.append("state")
        if lost:
            out.append({"original_start": a["original_start"], "previous_original_start": b["original_start"],
                        "fields": lost, "values": {f: a.get(f) for f in lost}})
    return out


def side_effects(changes: Sequence[Mapping[str, Any]], asked: Asked, before: Mapping[str, Any] | None = None,
                 after: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The changes an outbound operation made beyond what its message asked (A3, A6, A8).

    Kept: instance changes of fields the message did not give, instances that moved,
    were added, removed, deleted or restored without being the message's target,
    other users' RSVPs, and, after a series time change, the instances that lost a
    change of their own (``before``/``after``: the event's documents). The target of a
    ``single``/``following`` message and the fields of an ``all`` message are what
    Communifire already shows.
    """
    if asked.operation == "create" or (asked.operation == "delete" and asked.scope == "all"):
        return []
    given = {_MESSAGE_FIELDS[f] for f in asked.fields if f in _MESSAGE_FIELDS}
    time_given = bool(given & {"start", "end", "all_day", "time_zone", "recurrence"})
    target = iso(asked.original_start) if asked.original_start else None
    out: list[dict[str, Any]] = []
    for change in changes:
        kind = change["type"]
        if kind in ("event_created", "event_deleted", "fields_changed", "series_split", "segments_changed",
                    "segments_removed"):
            if asked.operation in ("update", "delete") and asked.scope in ("all", "following"):
                continue  # the series-wide change the author made
            out.append(dict(change))
        elif kind == "instances_changed":
            kept = []
            for inst in change["instances"]:
                key = inst["original_start"]
                mine = asked.scope == "single" and key == target or \
                    asked.scope == "following" and target is not None and key >= target
                extra = [f for f in inst["fields"] if f not in given and f != "state" and
                         not (f in ("start", "end") and time_given)]
                if mine or (asked.scope == "all" and asked.operation == "update" and not extra):
                    continue
                kept.append(inst)
            if kept:
                out.append({"type": kind, "instances": kept})
        elif kind in ("instances_deleted", "instances_restored", "instances_added", "instances_removed"):
            keys = [k for k in change["original_starts"] if not (
                (asked.scope == "single" and k == target) or (asked.scope == "following" and target and k >= target))]
            if kind in ("instances_added", "instances_removed") and asked.scope == "all" and time_given:
                # a new time or pattern moves every instance: the author asked for that
                keys = []
            if keys:
                out.append({"type": kind, "original_starts": keys})
        elif kind == "outlook_changed":
            continue  # which Outlook items stand for the event: in the result's snapshot
        elif kind == "rsvps_changed":
            if asked.operation == "rsvp":
                continue
            out.append(dict(change))
        else:
            out.append(dict(change))
    if asked.operation == "update" and asked.scope == "all" and time_given:
        lost = _lost_own_changes(before, after)
        if lost:
            out.append({"type": "instances_changed", "instances": lost})
    return out


def concerned_users(*docs: Mapping[str, Any] | None, extra: Iterable[str] = ()) -> list[str]:
    """Every user with an Outlook item for the event before or after the change."""
    users = set(extra)
    for doc in docs:
        for link in (doc or {}).get("outlook") or ():
            users.add(link["user_id"])
    return sorted(users)


def feed_message(
    *,
    change_id: str,
    event_id: str,
    communifire_id: str,
    seq: int,
    at: datetime,
    source: str,
    changes: Sequence[Mapping[str, Any]],
    rules: Sequence[Mapping[str, str]],
    users: Sequence[str],
    snapshot: Mapping[str, Any] | None,
    operation_id: str = "",
) -> dict[str, Any]:
    """One change-feed message (schemas/calendar-change.v1.schema.json)."""
    seen: set[tuple[str, str]] = set()
    unique_rules = []
    for r in rules:
        key = (str(r.get("rule", "")), str(r.get("reason", "")))
        if key not in seen:
            seen.add(key)
            unique_rules.append({"rule": key[0], "reason": key[1]})
    msg: dict[str, Any] = {
        "v": VERSION,
        "kind": KIND,
        "change_id": change_id,
        "event_id": event_id,
        "communifire_id": communifire_id or None,
        "seq": seq,
        "at": iso(at),
        "source": source,
        "operation_id": operation_id or None,
        "users": list(users),
        "changes": [dict(c) for c in changes],
        "rules": unique_rules,
        "event": dict(snapshot) if snapshot is not None else None,
    }
    return msg


def shrink(message: Mapping[str, Any], limit: int = MAX_INLINE) -> dict[str, Any]:
    """A message that fits a queue message: above ``limit`` the snapshot and the
    per-instance values and segment bodies are left out and ``by_reference`` tells the
    consumer to read the event from the read API (``GET /calendar/{user}?event=ID``)."""
    out = dict(message)
    if len(json.dumps(out, separators=(",", ":"))) <= limit:
        return out
    slim = []
    for c in out["changes"]:
        c = dict(c)
        if c["type"] == "instances_changed":
            c["instances"] = [{"original_start": i["original_start"], "fields": i["fields"]} for i in c["instances"]]
        if c["type"] == "series_split":
            c["segment"] = {"start": c["segment_start"]}
        if c["type"] in ("fields_changed",):
            c.pop("values", None)
        if c["type"] == "rsvps_changed":
            c.pop("rsvps", None)
        slim.append(c)
    out["changes"] = slim
    out["event"] = None
    out["by_reference"] = {"read_api": f"calendar/{{user}}?event={message['event_id']}"}
    if len(json.dumps(out, separators=(",", ":"))) > limit:
        out["changes"] = [{"type": c["type"]} for c in slim]
    return out


RESULT_KIND = "outbound_result"
#: Operation record statuses -> the result status Communifire reads (docs/changes.md).
RESULT_STATUS = {"done": "applied", "applied": "applied", "stale": "stale", "rejected": "rejected",
                 "failed": "rejected", "waiting": "waiting"}


def result_message(
    *,
    operation_id: str,
    status: str,
    at: datetime,
    event_id: str = "",
    communifire_id: str = "",
    reason: str = "",
    until: datetime | None = None,
    seq: int | None = None,
    change_id: str = "",
    side_effects: Sequence[Mapping[str, Any]] = (),
    outlook_writes: Sequence[Mapping[str, str]] = (),
    snapshot: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``outbound-results`` message (schemas/outbound-result.v1.schema.json)."""
    return {
        "v": VERSION,
        "kind": RESULT_KIND,
        "operation_id": operation_id,
        "status": status,
        "event_id": event_id or None,
        "communifire_id": communifire_id or None,
        "at": iso(at),
        "reason": reason or None,
        "until": iso(until) if until else None,
        "seq": seq,
        "change_id": change_id or None,
        "side_effects": [dict(c) for c in side_effects],
        "outlook_writes": [dict(w) for w in outlook_writes],
        "event": dict(snapshot) if snapshot is not None else None,
    }


def fit_result(message: Mapping[str, Any], limit: int = MAX_INLINE) -> dict[str, Any]:
    """A result that fits a queue message: above ``limit`` the snapshot is left out (read
    it from the read API), then the per-instance values of the side effects."""
    out = dict(message)
    if len(json.dumps(out, separators=(",", ":"))) <= limit:
        return out
    out["event"] = None
    out["by_reference"] = {"read_api": f"calendar/{{user}}?event={message['event_id']}"}
    if len(json.dumps(out, separators=(",", ":"))) > limit:
        out["side_effects"] = shrink({"changes": out["side_effects"], "event_id": out["event_id"] or ""}, 0)["changes"]
    return out
