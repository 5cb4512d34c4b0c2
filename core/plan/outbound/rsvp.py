"""RSVP: rules C4, C5, A5, O3.

A user's answer is written to their own copy: the whole series or event (C4), one
occurrence (C4), or their single-instance invitation (C5). Outlook has no "from this point
forward" answer (O3), so it answers all instances of the series from there (A5).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.plan.model import Rsvp
from core.plan.outbound.common import _instance_values, _link_for, _segment_until, _step
from core.plan.outbound.context import _Ctx, _finish, _refs, _refuse
from core.plan.outbound.message import RESPONSES
from core.plan.outbound.values import OutboundPlan, Step, _iso


def _plan_rsvp(ctx: _Ctx, key: datetime | None) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    msg = ctx.msg
    user = ctx.users.get(msg.actor)
    if user is None or not user.connected:
        return _refuse(msg, f"the responding user {msg.actor} is unknown or not connected to Outlook")
    if user.user_id == ctx.organizer.user_id:
        return _refuse(msg, "the organizer does not respond to their own meeting")
    action = RESPONSES[msg.response]
    steps: list[Step] = []
    scope = msg.scope
    single_copy = next((l for l in ctx.links if l.user_id == user.user_id and l.kind == "instance"
                        and (key is None or l.instance_start == key)), None)
    if scope == "single" and key is not None:
        if single_copy is not None:
            steps.append(_step(user.user_id, "respond", single_copy.outlook_id, {"action": action}, "C5",
                               f"{msg.response} the single-instance invitation of {_iso(key)}"))
        else:
            seg = old.segment_for(key)
            link = _link_for(ctx.links, user.user_id, seg)
            if link is None:
                return _refuse(msg, f"user {user.user_id} has no Outlook copy of this meeting to respond to")
            steps.append(_step(user.user_id, "respond_occurrence", link.outlook_id, {"action": action}, "C4",
                               f"{msg.response} only the instance of {_iso(key)}", original_start=key,
                               near=_instance_values(old, key)["start"]))
    else:
        segs = [s for s in old.segments if key is None or scope == "all" or _segment_until(old, old.segments.index(s)) is None
                or _segment_until(old, old.segments.index(s)) > key]  # type: ignore[operator]
        for seg in segs:
            link = _link_for(ctx.links, user.user_id, seg)
            if link is not None:
                steps.append(_step(user.user_id, "respond", link.outlook_id, {"action": action},
                                   "A5" if scope == "following" else "C4",
                                   f"{msg.response} all instances of the series of {_iso(seg.start)}"
                                   + (" (Outlook has no 'from this point forward' answer, O3)" if scope == "following" else "")))
        if not steps and single_copy is not None:
            steps.append(_step(user.user_id, "respond", single_copy.outlook_id, {"action": action}, "C5",
                               f"{msg.response} the single-instance invitation"))
        if not steps:
            return _refuse(msg, f"user {user.user_id} has no Outlook copy of this meeting to respond to")
    upn = user.upn.lower()
    rsvp = Rsvp(user.user_id, scope if old.is_series else "all", msg.response, msg.occurred_at,
                key if old.is_series and scope != "all" else None)
    rsvps = tuple(r for r in old.rsvps if not (r.user_id == user.user_id and
                                                (rsvp.scope == "all" or r.key == rsvp.key)))
    segments = list(old.segments)
    if scope != "single" or not old.is_series:
        segments = [replace(s, attendees=tuple(replace(a, response=msg.response) if a.email == upn else a
                                               for a in s.attendees))
                    if key is None or scope == "all" or s is old.segment_for(key) or s.start > key else s
                    for s in old.segments]
    event = replace(old, segments=tuple(segments), rsvps=rsvps + (rsvp,), updated_at=msg.occurred_at)
    return _finish(ctx, steps, event, _refs(ctx, old))
