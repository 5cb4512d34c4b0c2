"""Create: rules C1, D4.

A new Communifire event becomes one item in the organizer's Outlook (C1; a numbered range,
D4), stamped with our event id and a ``transactionId`` so a retry never makes a second copy;
a redelivered create whose first delivery reached Table Storage carries on as an update to
the same values.
"""

from __future__ import annotations

from core.plan.model import Event
from core.plan.outbound.common import _new_segment_from, _segment_body, _step
from core.plan.outbound.context import _Ctx, _finish
from core.plan.outbound.update import _plan_update_all
from core.plan.outbound.values import OutboundPlan, transaction_id


def _plan_create(ctx: _Ctx) -> OutboundPlan:
    msg = ctx.msg
    f = msg.event
    seg = _new_segment_from(f, None)
    if ctx.event is not None:
        # A redelivered create whose first delivery got as far as Table Storage: the
        # event exists; carry on as an update to the same values (changes nothing).
        return _plan_update_all(ctx)
    step = _step(ctx.organizer.user_id, "create", "", {
        **_segment_body(seg, private=f.private, event_id=f.id, app_property=ctx.app_property),
        "transactionId": transaction_id(msg.operation_id, f.id, seg.start),
    }, "D4" if seg.recurrence is not None and seg.recurrence.range.type == "numbered" else "C1",
        f"create the {'series' if seg.recurrence else 'event'} in the organizer's Outlook with our event id stamped "
        "and a transactionId, so a retry never makes a second copy")
    event = Event(id=f.id, organizer=f.organizer.email if f.organizer else "", segments=(seg,), calendar="my",
                  private=f.private, updated_at=msg.occurred_at)
    return _finish(ctx, [step], event, {seg.start: f"@{step.id}"})
