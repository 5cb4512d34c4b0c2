"""Invite: rule C5.

Inviting someone to a single event or a whole series adds them to its attendees (an
update); inviting them to one instance of a series adds them to that instance only, which
Outlook turns into a single-instance invitation for them (C5).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.plan.outbound.common import _instance_values
from core.plan.outbound.context import _Ctx, _finish, _refs, _refuse
from core.plan.outbound.message import Person
from core.plan.outbound.update import _plan_update_all, _plan_update_single
from core.plan.outbound.values import OutboundPlan, _iso


def _plan_invite(ctx: _Ctx, key: datetime | None) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    msg = ctx.msg
    invitee = msg.invitee
    assert invitee is not None
    if not old.is_series or key is None:
        if old.is_series:
            return _refuse(msg, "inviting to one instance of a series needs instance.original_start")
        seg = old.segments[0]
        if any(a.email == invitee.email for a in seg.attendees):
            return _finish(ctx, [], old, _refs(ctx, old), (f"{invitee.email} is already invited",))
        fields = replace(msg.event, attendees=(*[Person("", a.email, a.name, a.kind) for a in seg.attendees], invitee),
                         given=frozenset({"attendees"}))
        return _plan_update_all(replace(ctx, msg=replace(msg, event=fields)))
    if key in old.deleted:
        return _refuse(msg, f"the instance of {_iso(key)} was deleted")
    current = _instance_values(old, key)
    if any(a.email == invitee.email for a in current["attendees"]):
        return _finish(ctx, [], old, _refs(ctx, old), (f"{invitee.email} is already invited to that instance",))
    people = [Person("", a.email, a.name, a.kind) for a in current["attendees"]] + [invitee]
    fields = replace(msg.event, attendees=tuple(people), given=frozenset({"attendees"}))
    plan = _plan_update_single(replace(ctx, msg=replace(msg, event=fields)), key)
    steps = tuple(replace(s, rule="C5", reason=f"invite {invitee.email} to the instance of {_iso(key)} only: "
                                               "Outlook gives them a single-instance event (C5)") for s in plan.steps)
    return replace(plan, steps=steps)
