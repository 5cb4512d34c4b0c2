"""Delete, per scope ``all`` and ``single``: rules C2, A8, O6.

- ``all``: the organizer's item of every segment is deleted (Outlook cancels the attendees'
  copies, which are then removed from connected attendees' calendars, C2);
- ``single``: only that occurrence (C2);
- A8, O6: single-instance invitations that Outlook would leave behind are cancelled first,
  and connected invitees' single-instance copies removed.

Scope ``following`` is ``split.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.plan.model import Event, Segment
from core.plan.outbound.common import _instance_values, _link_for, _step
from core.plan.outbound.context import _Ctx, _finish, _refs
from core.plan.outbound.values import OutboundPlan, Step, _iso


def _a8_cleanup(ctx: _Ctx, event: Event, seg: Segment, master_ref: str, lo: datetime) -> list[Step]:
    """A8/O6: before a series goes, cancel each single-instance invitation Outlook would
    leave behind (deleting the occurrence cancels the invitee's copy)."""
    steps = []
    people = {a.email for a in seg.attendees}
    for key, exc in sorted(event.exceptions.items()):
        if key < lo or event.segment_for(key) is not seg or key in event.deleted:
            continue
        extra = [a for a in exc.changes.get("attendees", ()) if a.email not in people]
        if extra:
            steps.append(_step(ctx.organizer.user_id, "delete_occurrence", master_ref, {}, "A8",
                               f"cancel the single-instance invitation(s) of {', '.join(a.email for a in extra)} for "
                               f"{_iso(key)}, which Outlook would leave behind when the series is deleted (O6)",
                               original_start=key, near=_instance_values(event, key)["start"]))
    return steps


def _a8_invitee_deletes(ctx: _Ctx, event: Event, which) -> list[Step]:
    """A8/O6: remove connected invitees' single-instance copies from their calendars."""
    steps = []
    for link in ctx.links:
        if link.kind == "instance" and link.instance_start is not None and which(link.instance_start) \
                and ctx.writable(link.user_id) and link.user_id != ctx.organizer.user_id:
            steps.append(_step(link.user_id, "delete", link.outlook_id, {}, "A8",
                               f"remove the single-instance copy of {_iso(link.instance_start)} from the invitee's "
                               "Outlook (Outlook leaves it behind, O6)"))
    return steps


def _plan_delete_all(ctx: _Ctx) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    org = ctx.organizer.user_id
    steps: list[Step] = []
    for seg in old.segments:
        link = _link_for(ctx.links, org, seg)
        if link is None:
            continue
        steps.extend(_a8_cleanup(ctx, old, seg, link.outlook_id, lo=seg.start))
        steps.append(_step(org, "delete", link.outlook_id, {}, "C2",
                           f"delete the organizer's {'series' if seg.recurrence else 'event'} of {_iso(seg.start)}; "
                           "Outlook cancels the attendees' copies"))
    steps.extend(_a8_invitee_deletes(ctx, old, lambda k: True))
    # attendees' copies Outlook cancelled: remove them from connected attendees' calendars
    for link in ctx.links:
        if link.user_id != org and link.kind in ("series", "single") and ctx.writable(link.user_id):
            steps.append(_step(link.user_id, "delete", link.outlook_id, {}, "C2",
                               "remove the cancelled meeting copy from the attendee's Outlook"))
    return _finish(ctx, steps, None, {}, (), delete_event=True)


def _plan_delete_single(ctx: _Ctx, key: datetime) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    if key in old.deleted:
        return _finish(ctx, [], old, _refs(ctx, old), ("the instance is already deleted",))
    seg = old.segment_for(key)
    link = _link_for(ctx.links, ctx.organizer.user_id, seg)
    steps = []
    if link is not None:
        steps.append(_step(ctx.organizer.user_id, "delete_occurrence", link.outlook_id, {}, "C2",
                           f"delete only the instance of {_iso(key)} (Outlook cancels it for every attendee)",
                           original_start=key, near=_instance_values(old, key)["start"]))
    steps.extend(_a8_invitee_deletes(ctx, old, lambda k: k == key))
    exceptions = {k: v for k, v in old.exceptions.items() if k != key}
    event = replace(old, exceptions=exceptions, deleted=old.deleted | {key}, updated_at=ctx.msg.occurred_at)
    return _finish(ctx, steps, event, _refs(ctx, old))
