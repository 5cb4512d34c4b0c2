"""Edit or delete "from this instance forward" (scope ``following``): rules C2, C3, O2, A1, A3, A8.

Outlook's own way (O2): the segment is cut before the instance and, for an edit, a new
linked series starts there; Communifire keeps one event with one more segment (A1). Later
child series are patched with the change (A3) or, for a delete, deleted with their
single-instance invitations (A8).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.plan.model import FIELDS, TIME_FIELDS, InstanceException, ModelError, OutlookLink
from core.plan.outbound.common import (
    _child_retimed,
    _equal,
    _link_for,
    _new_segment_from,
    _rekey,
    _seg_zone,
    _segment_body,
    _segment_index,
    _slot_end,
    _step,
)
from core.plan.outbound.context import _Ctx, _finish, _refuse
from core.plan.outbound.delete import _a8_cleanup, _a8_invitee_deletes, _plan_delete_all
from core.plan.outbound.message import EventFields
from core.plan.outbound.update import _ensure_item, _exception_steps, _master_patch, _plan_update_all, _resets
from core.plan.outbound.values import OutboundPlan, Step, _iso, transaction_id
from core.plan.recurrence import Range, Recurrence, occurrences_before, restart_from, to_graph, truncate_before
from core.plan.timezones import resolve_zone


def _split(ctx: _Ctx, key: datetime, new_fields: EventFields | None, *, delete_tail: bool) -> OutboundPlan:
    """Edit or delete "from this instance forward" (C2, C3): Outlook's own way (O2):
    the segment is cut before the instance and, for an edit, a new linked series starts
    there; Communifire keeps one event with one more segment (A1)."""
    old = ctx.event
    assert old is not None
    i = _segment_index(old, key)
    seg = old.segments[i]
    assert seg.recurrence is not None
    zone = _seg_zone(seg)
    day = key.astimezone(zone).date()
    org = ctx.organizer.user_id
    notes: list[str] = []
    steps: list[Step] = []
    first_of_segment = occurrences_before(seg.recurrence, day) == 0
    if first_of_segment and i == 0:
        # from the very first instance: the whole event
        if delete_tail:
            return _plan_delete_all(ctx)
        return _plan_update_all(ctx)
    keep = list(old.segments[:i]) if first_of_segment else [*old.segments[:i]]
    exceptions = {k: v for k, v in old.exceptions.items() if k < key}
    deleted = {k for k in old.deleted if k < key}
    refs: dict[datetime, str] = {}
    # 1. the segment before the cut keeps its instances before ``key``
    if not first_of_segment:
        cut = replace(seg, recurrence=truncate_before(seg.recurrence, day))
        keep.append(cut)
        link = _link_for(ctx.links, org, seg)
        if link is not None:
            steps.append(_step(org, "patch", link.outlook_id, {"recurrence": to_graph(cut.recurrence)}, "O2",
                               f"end the series of {_iso(seg.start)} before {day} (what Outlook itself does for "
                               "'this and all following')"))
            steps.extend(_exception_steps(ctx, link.outlook_id, seg, cut, cut.start, key, old, exceptions,
                                          frozenset(deleted), {}, True))
            refs[cut.start] = link.outlook_id
    # 2. the organizer's items of later segments: deleted (delete) or changed (edit)
    later = old.segments[i + 1:]
    if delete_tail:
        for s in ([] if not first_of_segment else [seg]) + list(later):
            link = _link_for(ctx.links, org, s)
            if link is not None:
                steps.extend(_a8_cleanup(ctx, old, s, link.outlook_id, lo=max(s.start, key)))
                steps.append(_step(org, "delete", link.outlook_id, {}, "C2",
                                   f"delete the series of {_iso(s.start)}: it lies after {_iso(key)}"))
        for k in [k for k in old.exceptions if k >= key]:
            notes.append(f"the instance of {_iso(k)} goes with the deleted instances")
        for s in keep:
            refs.setdefault(s.start, (_link_for(ctx.links, org, s) or OutlookLink("", "", "", "single", "")).outlook_id)
        event = replace(old, segments=tuple(keep), exceptions=exceptions, deleted=frozenset(deleted),
                        updated_at=ctx.msg.occurred_at)
        extra = _a8_invitee_deletes(ctx, old, lambda k: k >= key)
        return _finish(ctx, steps + extra, event, refs, notes)
    # an edit: the tail becomes a new segment (or the existing segment, when ``key`` starts it)
    assert new_fields is not None
    tail_old = seg if first_of_segment else replace(seg, start=key, end=_slot_end(seg, key),
                                                    recurrence=restart_from(seg.recurrence, day))
    tail_fields = new_fields
    if not tail_fields.has("recurrence") and (tail_fields.start is not None) and tail_old.recurrence is not None:
        new_zone = resolve_zone(tail_fields.time_zone if tail_fields.has("time_zone") else tail_old.time_zone)
        new_day = tail_fields.start.astimezone(new_zone).date()
        if new_day != day:
            r = tail_old.recurrence.range
            tail_fields = replace(tail_fields, recurrence=Recurrence(tail_old.recurrence.pattern, Range(
                r.type, new_day, r.end_date, r.number_of_occurrences, r.time_zone)), given=tail_fields.given | {"recurrence"})
    tail_new = _new_segment_from(tail_fields, tail_old)
    changed = {name: tail_new.value(name) for name in FIELDS if not _equal(name, tail_new.value(name), tail_old.value(name))}
    later_new = []
    for child in later:
        moved = _child_retimed(child, tail_old, tail_new)
        later_new.append(replace(moved, **{k: v for k, v in changed.items() if k in ("title", "body", "location",
                                                                                    "attendees")}))
    # exceptions of the tail: re-keyed onto the new series (its own original starts)
    tail_exc = {k: v for k, v in old.exceptions.items() if k >= key}
    tail_del = {k for k in old.deleted if k >= key}
    span_end = later[0].start if later else None
    reset_tail = _resets(tail_old, tail_new)
    new_tail_exc: dict[datetime, InstanceException] = {}
    new_tail_del: set[datetime] = set()
    for k, exc in tail_exc.items():
        if span_end is not None and k >= span_end:
            new_tail_exc[k] = exc
            continue
        nk = _rekey(k, tail_old, tail_new) if reset_tail else k
        own = {f_: v for f_, v in exc.changes.items() if not (reset_tail and f_ in TIME_FIELDS)
               and not _equal(f_, v, tail_new.value(f_))}
        if nk is not None and own:
            new_tail_exc[nk] = InstanceException(nk, own, ctx.msg.occurred_at, "communifire")
    for k in tail_del:
        if span_end is not None and k >= span_end:
            new_tail_del.add(k)
            continue
        nk = _rekey(k, tail_old, tail_new) if reset_tail else k
        if nk is not None:
            new_tail_del.add(nk)
    all_exc = {**exceptions, **new_tail_exc}
    all_del = deleted | new_tail_del
    segments = [*keep, tail_new, *later_new]
    try:
        event = replace(old, segments=tuple(segments), exceptions=all_exc, deleted=frozenset(all_del),
                        updated_at=ctx.msg.occurred_at)
    except ModelError as exc:
        return _refuse(ctx.msg, f"the change does not fit the event's series: {exc}")
    if first_of_segment:
        link = _link_for(ctx.links, org, seg)
        ref = link.outlook_id if link else _ensure_item(ctx, seg, old, steps, "the organizer has no item for it")
        body = _master_patch(seg, tail_new)
        if body:
            steps.append(_step(org, "patch", ref, body, "A3", f"write {', '.join(sorted(body))} to the linked "
                                                                f"child series of {_iso(seg.start)}"))
        steps.extend(_exception_steps(ctx, ref, seg, tail_new, tail_new.start, span_end, old, all_exc,
                                      frozenset(all_del), changed, reset_tail))
    else:
        create = _step(org, "create", "", {
            **_segment_body(tail_new, private=old.private, event_id=old.id, app_property=ctx.app_property),
            "transactionId": transaction_id(ctx.msg.operation_id, old.id, tail_new.start),
        }, "O2", f"start a new series on {tail_new.start.date()} for 'this and all following' (Communifire keeps "
                 "one event with a linked child segment, A1)")
        steps.append(create)
        ref = f"@{create.id}"
        steps.extend(_exception_steps(ctx, ref, tail_old, tail_new, tail_new.start, span_end, old, all_exc,
                                      frozenset(all_del), changed, True))
    refs[tail_new.start] = ref
    for j, child in enumerate(later):
        link = _link_for(ctx.links, org, child)
        cref = link.outlook_id if link else _ensure_item(ctx, child, old, steps, "the organizer has no item for it")
        refs[later_new[j].start] = cref
        body = _master_patch(child, later_new[j])
        if body:
            steps.append(_step(org, "patch", cref, body, "A3",
                               f"write {', '.join(sorted(body))} to the linked child series of {_iso(child.start)}"))
        nxt = later_new[j + 1].start if j + 1 < len(later_new) else None
        steps.extend(_exception_steps(ctx, cref, child, later_new[j], later_new[j].start, nxt, old, all_exc,
                                      frozenset(all_del), changed, _resets(child, later_new[j])))
    return _finish(ctx, steps, event, refs, notes)
