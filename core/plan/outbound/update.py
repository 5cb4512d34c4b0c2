"""Update, per scope ``all`` and ``single``: rules C3, A3, A6, O1, O4, O5.

- ``all``: the change is written to the organizer's series (or single event); a split
  event's linked child series get the same fields and move with the first one (A3); a
  pattern change on a split event is refused (A1/A2: use scope following);
- A6: each segment's exceptions and deleted instances stay right in Outlook: after a reset
  (O5: the time or pattern changed) they are written again and re-keyed onto their new slots;
  otherwise a series-wide change reaches the exceptions that did not change that field (O4);
- ``single``: only one instance is patched (C3, O1), recorded as an exception.

Scope ``following`` is ``split.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Mapping

from core.plan.model import FIELDS, TIME_FIELDS, Event, InstanceException, ModelError, OutlookLink, Segment
from core.plan.outbound.common import (
    _attendees_from,
    _child_retimed,
    _equal,
    _graph_values,
    _instance_values,
    _link_for,
    _new_segment_from,
    _rekey,
    _segment_body,
    _segment_until,
    _slot_end,
    _step,
    _zone_key,
)
from core.plan.outbound.context import _Ctx, _finish, _refuse
from core.plan.outbound.message import _FIELD_NAMES, EventFields
from core.plan.outbound.values import OutboundPlan, Step, _iso, transaction_id
from core.plan.recurrence import RecurrenceError, to_graph


def _resets(old: Segment, new: Segment) -> bool:
    """Whether Outlook resets the series' exceptions for this change (rule O5)."""
    return (old.start != new.start or old.end != new.end or old.is_all_day != new.is_all_day
            or _zone_key(old.time_zone) != _zone_key(new.time_zone) or old.recurrence != new.recurrence)


def _master_patch(old: Segment, new: Segment) -> dict[str, Any]:
    """The fields of a segment's Outlook item that change (never a PATCH that changes nothing)."""
    changed = {name: new.value(name) for name in FIELDS if not _equal(name, old.value(name), new.value(name))}
    time_changed = any(name in TIME_FIELDS for name in changed)
    if time_changed:
        changed["start"], changed["end"] = new.start, new.end
    body = _graph_values(changed, new.time_zone, new.is_all_day)
    if new.recurrence is not None and (old.recurrence != new.recurrence or time_changed):
        body["recurrence"] = to_graph(new.recurrence)
    return body


def _exception_steps(
    ctx: _Ctx, master_ref: str, old_seg: Segment, new_seg: Segment, seg_from: datetime, seg_until: datetime | None,
    old_event: Event, new_exceptions: Mapping[datetime, InstanceException], new_deleted: frozenset[datetime],
    changed_fields: Mapping[str, Any], reset: bool,
) -> list[Step]:
    """A6: keep this segment's exceptions and deleted instances right in Outlook.

    After a reset (O5: time or pattern changed; O2 cut), each exception's own changes and
    each deleted instance are written again; otherwise a series-wide change reaches the
    exceptions that did not change that field on purpose (O4).
    """
    steps: list[Step] = []
    org = ctx.organizer.user_id

    def inside(key: datetime) -> bool:
        return key >= seg_from and (seg_until is None or key < seg_until)

    if new_seg.recurrence is None:
        return steps
    for key, exc in sorted(new_exceptions.items()):
        if not inside(key):
            continue
        if reset:
            body = _graph_values(exc.changes, new_seg.time_zone, new_seg.is_all_day)
            if exc.changes.keys() & TIME_FIELDS:
                body.update(_graph_values({"start": exc.changes.get("start", key),
                                           "end": exc.changes.get("end", _slot_end(new_seg, key))},
                                          new_seg.time_zone, new_seg.is_all_day))
            if body:
                steps.append(_step(org, "patch_occurrence", master_ref, body, "A6",
                                   f"re-apply the own changes ({', '.join(sorted(exc.changes))}) of the instance of "
                                   f"{_iso(key)} after Outlook reset the series' exceptions (O5)",
                                   original_start=key, near=key))
        else:
            reach = {name: value for name, value in changed_fields.items()
                     if name not in exc.changes and name not in TIME_FIELDS}
            if reach:
                body = _graph_values(reach, new_seg.time_zone, new_seg.is_all_day)
                current = _instance_values(old_event, key) if key in old_event.exceptions else {}
                steps.append(_step(org, "patch_occurrence", master_ref, body, "A6",
                                   f"the series change of {', '.join(sorted(reach))} also reaches the instance of "
                                   f"{_iso(key)}, which Outlook leaves alone (O4)",
                                   original_start=key, near=current.get("start", key)))
    if reset:
        for key in sorted(new_deleted):
            if inside(key):
                steps.append(_step(org, "delete_occurrence", master_ref, {}, "A6",
                                   f"the instance of {_iso(key)} stays deleted after Outlook reset the series (O5)",
                                   original_start=key, near=key))
    return steps


def _ensure_item(ctx: _Ctx, seg: Segment, event: Event, steps: list[Step], reason: str) -> str:
    """The organizer's item for a segment: its link, else a create step (repair)."""
    link = _link_for(ctx.links, ctx.organizer.user_id, seg)
    if link is not None:
        return link.outlook_id
    step = _step(ctx.organizer.user_id, "create", "", {
        **_segment_body(seg, private=event.private, event_id=event.id, app_property=ctx.app_property),
        "transactionId": transaction_id(ctx.msg.operation_id, event.id, seg.start),
    }, "A3", reason)
    steps.append(step)
    return f"@{step.id}"


def _apply_to_segments(
    ctx: _Ctx, old: Event, new_segments: list[Segment], first_index: int, changed: Mapping[str, Any], rule: str,
    *, new_exceptions: dict[datetime, InstanceException] | None = None, new_deleted: set[datetime] | None = None,
    notes: list[str],
) -> tuple[list[Step], Event, dict[datetime, str]]:
    """Write segments ``first_index..`` (already changed in ``new_segments``) to the
    organizer's items, and re-key and re-apply their exceptions (A3, A6)."""
    steps: list[Step] = []
    refs: dict[datetime, str] = {}
    exceptions = dict(old.exceptions if new_exceptions is None else new_exceptions)
    deleted = set(old.deleted if new_deleted is None else new_deleted)
    # re-key exceptions and deleted instances of the changed segments (O5/A6)
    for i in range(first_index, len(old.segments)):
        o, n = old.segments[i], new_segments[i]
        lo, hi = o.start, _segment_until(old, i)
        if not _resets(o, n):
            for key, exc in list(exceptions.items()):
                if lo <= key and (hi is None or key < hi):
                    kept = {k: v for k, v in exc.changes.items() if not _equal(k, v, n.value(k))}
                    if not kept:
                        del exceptions[key]
                        notes.append(f"the instance of {_iso(key)} now equals the series: no longer an exception")
                    elif len(kept) != len(exc.changes):
                        exceptions[key] = replace(exc, changes=kept)
            continue
        for key in sorted(k for k in list(exceptions) if lo <= k and (hi is None or k < hi)):
            exc = exceptions.pop(key)
            new_key = _rekey(key, o, n)
            own = {k: v for k, v in exc.changes.items() if k not in TIME_FIELDS and not _equal(k, v, n.value(k))}
            if new_key is None:
                notes.append(f"the instance of {_iso(key)} is no longer part of the series; its changes are dropped")
            elif own:
                exceptions[new_key] = InstanceException(new_key, own, ctx.msg.occurred_at, "communifire")
        for key in sorted(k for k in list(deleted) if lo <= k and (hi is None or k < hi)):
            deleted.discard(key)
            new_key = _rekey(key, o, n)
            if new_key is not None:
                deleted.add(new_key)
    event = replace(old, segments=tuple(new_segments), exceptions=exceptions, deleted=frozenset(deleted),
                    updated_at=ctx.msg.occurred_at)
    for i in range(first_index, len(old.segments)):
        o, n = old.segments[i], new_segments[i]
        ref = _ensure_item(ctx, o, old, steps, f"the organizer's Outlook has no item for the segment of {_iso(o.start)}")
        refs[n.start] = ref
        body = _master_patch(o, n)
        if body:
            steps.append(_step(ctx.organizer.user_id, "patch", ref, body, rule,
                               f"write {', '.join(sorted(body))} to the organizer's "
                               f"{'series' if n.recurrence else 'event'} of {_iso(n.start)}"
                               + (" (a linked child series, A3)" if i > 0 else "")))
        until_new = new_segments[i + 1].start if i + 1 < len(new_segments) else None
        steps.extend(_exception_steps(ctx, ref, o, n, n.start, until_new, old, event.exceptions, event.deleted,
                                      changed, _resets(o, n)))
    for i in range(first_index):
        refs[new_segments[i].start] = (_link_for(ctx.links, ctx.organizer.user_id, new_segments[i]) or
                                       OutlookLink("", "", "", "single", "")).outlook_id
    return steps, event, refs


def _changed_fields(f: EventFields, seg: Segment) -> dict[str, Any]:
    candidate = _new_segment_from(f, seg)
    return {name: candidate.value(name) for name in FIELDS if not _equal(name, candidate.value(name), seg.value(name))}


def _plan_update_all(ctx: _Ctx) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    f = ctx.msg.event
    first = old.segments[0]
    new_first = _new_segment_from(f, first)
    if (first.recurrence is None) != (new_first.recurrence is None):
        return _refuse(ctx.msg, "turning a single event into a series or back is not supported in v1: "
                                "delete the event and create it again")
    if len(old.segments) > 1 and f.has("recurrence") and new_first.recurrence != first.recurrence:
        return _refuse(ctx.msg, "the event is split into several Outlook series (A1/A2); change the pattern "
                                "from a given instance (scope following) instead of for all instances")
    changed = _changed_fields(f, first)
    notes: list[str] = []
    segments = [new_first]
    for child in old.segments[1:]:
        moved = _child_retimed(child, first, new_first)
        segments.append(replace(moved, **{k: v for k, v in changed.items() if k in ("title", "body", "location",
                                                                                    "attendees")}))
    try:
        steps, event, refs = _apply_to_segments(ctx, old, segments, 0, changed, "A3", notes=notes)
    except (ModelError, RecurrenceError) as exc:
        return _refuse(ctx.msg, f"the change does not fit the event's series: {exc}")
    if f.has("private") and f.private != old.private:
        event = replace(event, private=f.private)
        for seg in event.segments:
            ref = refs.get(seg.start, "")
            if ref:
                steps.append(_step(ctx.organizer.user_id, "patch", ref,
                                   {"sensitivity": "private" if f.private else "normal"}, "C5",
                                   "the event's privacy changed"))
    if not steps:
        notes.append("nothing changes in Outlook: every item already shows these values")
    return _finish(ctx, steps, event, refs, notes)


def _plan_update_single(ctx: _Ctx, key: datetime) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    f = ctx.msg.event
    if key in old.deleted:
        return _refuse(ctx.msg, f"the instance of {_iso(key)} was deleted; it cannot be edited")
    seg = old.segment_for(key)
    current = _instance_values(old, key)
    wanted = dict(current)
    for name, model in _FIELD_NAMES.items():
        if f.has(name):
            if name == "attendees":
                wanted["attendees"] = _attendees_from(f.attendees, current["attendees"])
            else:
                wanted[model] = getattr(f, name)
    if wanted["end"] < wanted["start"]:
        return _refuse(ctx.msg, "the instance would end before it starts")
    diff = {name: wanted[name] for name in FIELDS if not _equal(name, wanted[name], current[name])}
    own = {name: wanted[name] for name in FIELDS
           if not _equal(name, wanted[name], key if name == "start" else
                         (_slot_end(seg, key) if name == "end" else seg.value(name)))}
    exceptions = dict(old.exceptions)
    if own:
        exceptions[key] = InstanceException(key, own, ctx.msg.occurred_at, "communifire")
    else:
        exceptions.pop(key, None)
    event = replace(old, exceptions=exceptions, updated_at=ctx.msg.occurred_at)
    steps: list[Step] = []
    refs = {s.start: (_link_for(ctx.links, ctx.organizer.user_id, s) or OutlookLink("", "", "", "single", "")).outlook_id
            for s in old.segments}
    link = _link_for(ctx.links, ctx.organizer.user_id, seg)
    if diff:
        if link is None:
            return _refuse(ctx.msg, "the organizer's Outlook has no item for this event yet; run a sync first")
        body = _graph_values(diff, wanted["time_zone"], wanted["is_all_day"])
        if diff.keys() & TIME_FIELDS:
            body.update(_graph_values({"start": wanted["start"], "end": wanted["end"]}, wanted["time_zone"],
                                      wanted["is_all_day"]))
        steps.append(_step(ctx.organizer.user_id, "patch_occurrence", link.outlook_id, body, "C3",
                           f"edit only the instance of {_iso(key)}: {', '.join(sorted(diff))} (O1)",
                           original_start=key, near=current["start"]))
    return _finish(ctx, steps, event, refs, () if steps else ("nothing changes in Outlook",))
