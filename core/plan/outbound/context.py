"""What one operation plans against (``_Ctx``: the message, the stored event, every user's
links, the directory, the organizer) and how a plan is finished: steps de-duplicated, the
Outlook items to observe afterwards (A9; each connected attendee's copy and each connected
single-instance invitee's copy, C5), and the links that stay as they are (users the app may
not write to now). A refusal is data, never a half plan (STYLE rule 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from core.plan.model import Event, OutlookLink
from core.plan.outbound.common import _instance_values, _link_for
from core.plan.outbound.message import OutboundMessage
from core.plan.outbound.values import DirectoryUser, Expect, OutboundPlan, Step


def _refuse(msg: OutboundMessage, reason: str) -> OutboundPlan:
    return OutboundPlan(msg.operation_id, msg.event.id, msg.operation, msg.scope, refused=reason)


@dataclass(frozen=True, slots=True)
class _Ctx:
    msg: OutboundMessage
    event: Event | None
    links: tuple[OutlookLink, ...]
    users: Mapping[str, DirectoryUser]
    app_property: str
    organizer: DirectoryUser

    def by_email(self, email: str) -> DirectoryUser | None:
        for u in self.users.values():
            if u.upn.lower() == email.lower():
                return u
        return None

    def writable(self, user_id: str) -> bool:
        u = self.users.get(user_id)
        return bool(u and u.connected)


def _expects(ctx: _Ctx, event: Event, refs: Mapping[datetime, str]) -> list[Expect]:
    """Every Outlook item that should stand for the event once the writes are done:
    the organizer's item per segment, each connected attendee's copy, and each connected
    single-instance invitee's copy (C5)."""
    out: list[Expect] = []
    org = ctx.organizer.user_id
    for seg in event.segments:
        kind = "series" if seg.recurrence is not None else "single"
        ref = refs.get(seg.start, "")
        out.append(Expect(org, kind, ref, segment_start=seg.start if kind == "series" else None))
        for a in seg.attendees:
            user = ctx.by_email(a.email)
            if user is None or user.user_id == org or not user.connected:
                continue
            existing = _link_for(ctx.links, user.user_id, seg) if ctx.event is not None else None
            out.append(Expect(user.user_id, kind, existing.outlook_id if existing else "",
                              segment_start=seg.start if kind == "series" else None,
                              discover="meeting", near=seg.start))
    for key, exc in sorted(event.exceptions.items()):
        if "attendees" not in exc.changes or key in event.deleted:
            continue
        seg = event.segment_for(key)
        series_people = {a.email for a in seg.attendees}
        values = _instance_values(event, key)
        for a in exc.changes["attendees"]:
            if a.email in series_people:
                continue
            user = ctx.by_email(a.email)
            if user is None or user.user_id == org or not user.connected:
                continue
            existing = next((l for l in ctx.links if l.user_id == user.user_id and l.kind == "instance"
                             and l.instance_start == key), None)
            out.append(Expect(user.user_id, "instance", existing.outlook_id if existing else "",
                              instance_start=key, discover="instance", near=values["start"], near_end=values["end"]))
    return out


def _finish(ctx: _Ctx, steps: list[Step], new_event: Event | None, refs: Mapping[datetime, str],
            notes: Iterable[str] = (), *, delete_event: bool = False, extra_expects: Iterable[Expect] = ()) -> OutboundPlan:
    """Dedupe the steps, add what to observe and which links stay untouched."""
    seen: set[str] = set()
    unique = []
    for s in steps:
        if s.id not in seen:
            seen.add(s.id)
            unique.append(s)
    expects: list[Expect] = []
    if new_event is not None:
        expects = _expects(ctx, new_event, refs)
    expects.extend(extra_expects)
    keep = tuple(l for l in ctx.links if not ctx.writable(l.user_id)) if not delete_event else ()
    msg = ctx.msg
    return OutboundPlan(msg.operation_id, msg.event.id, msg.operation, msg.scope, tuple(unique), tuple(expects), keep,
                        new_event, delete_event, "", tuple(notes))


def _refs(ctx: _Ctx, event: Event) -> dict[datetime, str]:
    return {s.start: (_link_for(ctx.links, ctx.organizer.user_id, s) or OutlookLink("", "", "", "single", "")).outlook_id
            for s in event.segments}
