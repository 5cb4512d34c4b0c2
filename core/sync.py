"""One user's inbound sync (the shell): gather, plan (pure), hand the writes over.

Owns: the Graph reads for the window (today - 2 days .. today + 12 months), turning
them into an ``OutlookSnapshot``, calling the pure planner, and sending one message per
changed event to the ``writes`` queue (or applying them inline for a dry run / CLI).
Rules: a held plan (mass delete, empty side) is stored on the user for an administrator
to confirm and nothing is applied (STYLE rule 6); ``invalid_grant`` marks the user
"needs reconnect" and keeps their data (SPEC section 7).
"""

from __future__ import annotations

import json
import logging
import time as _time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping

from dateutil.relativedelta import relativedelta

from core import outlook_items, reconcile
from core.audit import AuditStore
from core.auth import ReconnectRequired, TokenSource, TransientAuthError, mark_needs_reconnect
from core.events import ConcurrencyConflict, EventChange, EventStore, change_between
from core.graph import GraphClient, GraphError
from core.http import VerifyingSession
from core.model import UserState, Window
from core.rows import iso
from core.users import CONNECTED, UserRecord, after_failure, after_success

log = logging.getLogger(__name__)

_ITEM_FIELDS = (
    "id,type,seriesMasterId,subject,body,location,start,end,isAllDay,originalStartTimeZone,"
    "originalEndTimeZone,recurrence,attendees,organizer,iCalUId,lastModifiedDateTime,changeKey,"
    "isCancelled,isOrganizer,responseStatus"
)
MASTER_SELECT = _ITEM_FIELDS + ",cancelledOccurrences"
INSTANCE_SELECT = _ITEM_FIELDS + ",originalStart,occurrenceId"
EXPAND_APP_ID = f"singleValueExtendedProperties($filter=id eq '{outlook_items.APP_EVENT_ID_PROPERTY}')"


def window_for(now: datetime) -> Window:
    """today - 2 days .. today + 12 months, at UTC midnights (SPEC section 1)."""
    today = datetime.combine(now.astimezone(timezone.utc).date(), time(0), tzinfo=timezone.utc)
    return Window(start=today - timedelta(days=2), end=today + relativedelta(months=12))


@dataclass(frozen=True, slots=True)
class Gathered:
    singles: list[dict[str, Any]]
    masters: dict[str, dict[str, Any]]
    instances: dict[str, list[dict[str, Any]]]
    removed: frozenset[str]


def gather(graph: GraphClient, window: Window) -> Gathered:
    """Read every item of the window: singles from calendarView, series in full."""
    me = graph.user_path
    rows = list(
        graph.items(
            f"{me}/calendarView",
            params={"startDateTime": iso(window.start), "endDateTime": iso(window.end), "$expand": EXPAND_APP_ID},
        )
    )
    singles = [r for r in rows if r.get("type") == "singleInstance"]
    # calendarView has no $select for lastModifiedDateTime and no originalStart without
    # one (GRAPH.md 1, 3): keep its full rows and merge /instances' selected ones by id.
    full_by_id = {r["id"]: r for r in rows if r.get("type") in ("occurrence", "exception")}
    master_ids = sorted({r["seriesMasterId"] for r in full_by_id.values() if r.get("seriesMasterId")})
    masters: dict[str, dict[str, Any]] = {}
    removed: set[str] = set()
    results = graph.batch(
        [
            {"id": str(i), "method": "GET", "url": f"{me}/events/{mid}?$select={MASTER_SELECT}&$expand={EXPAND_APP_ID}"}
            for i, mid in enumerate(master_ids)
        ]
    )
    for i, mid in enumerate(master_ids):
        status, body = results.get(str(i), (0, None))
        if status == 404:
            removed.add(mid)  # the series was deleted meanwhile (GRAPH.md 2)
        elif status >= 400 or not isinstance(body, dict):
            err = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            raise GraphError(status, err.get("code", f"HTTP{status}"), err.get("message", "master read failed"))
        else:
            masters[mid] = body
    instances: dict[str, list[dict[str, Any]]] = {}
    for mid in masters:
        items = []
        for inst in graph.items(
            f"{me}/events/{mid}/instances",
            params={"startDateTime": iso(window.start), "endDateTime": iso(window.end), "$select": INSTANCE_SELECT},
        ):
            merged = dict(full_by_id.get(inst["id"], {}))
            merged.update({k: v for k, v in inst.items() if v is not None or k not in merged})
            items.append(merged)
        instances[mid] = items
    return Gathered(singles, masters, instances, frozenset(removed))


@dataclass(frozen=True, slots=True)
class SyncReport:
    user_id: str
    outcome: str  # synced | held | needs_reconnect | skipped | failed
    plan: Any = None
    changes: tuple[EventChange, ...] = ()
    message: str = ""


@dataclass
class SyncContext:
    """What a user sync needs, built once by the composition root."""

    settings: Any
    users: Any
    events: EventStore
    audit: AuditStore
    sealer: Any
    make_msal: Any
    send: Callable[[str, Mapping[str, Any]], None]
    clock: Callable[[], datetime]
    sleep: Callable[[float], None] = _time.sleep

    def graph_for(self, user: UserRecord) -> tuple[GraphClient, TokenSource]:
        tokens = TokenSource(self.settings, self.users, self.sealer, self.make_msal, user)
        graph = GraphClient(self.settings.graph_base_url, tokens, VerifyingSession(self.settings.verify), sleep=self.sleep)
        return graph, tokens


def plan_user(ctx: SyncContext, user: UserRecord, now: datetime) -> tuple[UserState, dict, Any, Any]:
    """Gather and plan (no writes): returns (state, loaded events, snapshot, plan)."""
    graph, _ = ctx.graph_for(user)
    window = window_for(now)
    got = gather(graph, window)
    snapshot = outlook_items.build_snapshot(
        user.user_id, window, got.singles, got.masters, got.instances, removed_ids=got.removed, complete=True
    )
    uids = [i.ical_uid for i in snapshot.singles.values()] + [s.master.ical_uid for s in snapshot.series.values()]
    state, loaded = ctx.events.load_user_state(user.user_id, uids)
    policy = reconcile.SafetyPolicy(max_delete_share=ctx.settings.max_delete_share)
    plan = reconcile.plan_inbound(state, snapshot, now, policy)
    return state, loaded, snapshot, plan


def changes_for(user_id: str, state: UserState, loaded: Mapping[str, Any], plan: Any) -> list[EventChange]:
    """The per-event storage changes that carry out a plan (apply_plan is the truth)."""
    after = reconcile.apply_plan(state, plan)
    by_event = plan.by_event()
    changes = []
    for event_id in sorted(set(state.events) | set(after.events)):
        audit = [
            {"kind": a.kind, "event_id": event_id, "rule": a.rule, "reason": a.reason} for a in by_event.get(event_id, ())
        ]
        links = [l for l in after.links.values() if l.event_id == event_id]
        change = change_between(event_id, loaded.get(event_id), after.events.get(event_id), user_id, links, audit)
        if change is not None:
            changes.append(change)
    return changes


def sync_user(ctx: SyncContext, user_id: str, *, inline: bool = False) -> SyncReport:
    """Run one user's sync: plan, then send (or apply inline) one change per event."""
    now = ctx.clock()
    user = ctx.users.get(user_id)
    if user is None or user.state != CONNECTED:
        return SyncReport(user_id, "skipped", message="not connected")
    if not ctx.settings.sync_enabled:
        return SyncReport(user_id, "skipped", message="EnableCalendarSync is false")
    try:
        state, loaded, _snapshot, plan = plan_user(ctx, user, now)
    except ReconnectRequired as exc:
        mark_needs_reconnect(ctx.users, user, str(exc))
        log.warning("user needs to reconnect", extra={"user_id": user_id})
        return SyncReport(user_id, "needs_reconnect", message=str(exc))
    except (GraphError, TransientAuthError) as exc:
        fresh = ctx.users.get(user_id) or user
        ctx.users.save(after_failure(fresh, now, ctx.settings.sync_interval_minutes, str(exc)))
        raise
    fresh = ctx.users.get(user_id) or user
    if plan.held:
        ctx.users.save(replace(fresh, held_plan=json.dumps(plan.to_json()), last_error=f"held: {plan.held}"))
        ctx.audit.record(user_id, now, [{"kind": "hold", "rule": "safety", "reason": plan.held}], "sync")
        log.warning("sync held for an administrator", extra={"user_id": user_id})
        return SyncReport(user_id, "held", plan=plan, message=plan.held)
    changes = changes_for(user_id, state, loaded, plan)
    sync_id = uuid.uuid4().hex
    for change in changes:
        message = {"v": 1, "kind": "event_change", "message_id": f"{sync_id}-{change.event_id}", "user_id": user_id, "change": change.to_json()}
        if inline:
            apply_event_change(ctx, message)
        else:
            ctx.send("writes", message)
    ctx.users.save(replace(after_success(fresh, now, ctx.settings.sync_interval_minutes), held_plan=""))
    log.info("user synced", extra={"user_id": user_id, "changes": len(changes), "actions": len(plan.actions)})
    return SyncReport(user_id, "synced", plan=plan, changes=tuple(changes))


def apply_event_change(ctx: SyncContext, message: Mapping[str, Any]) -> str:
    """The writer's side: apply one event change; a stale base re-plans the user."""
    user_id = str(message["user_id"])
    change = EventChange.from_json(message["change"])
    try:
        ctx.events.apply(change)
    except ConcurrencyConflict:
        log.info("event changed meanwhile; user re-planned", extra={"user_id": user_id, "event_id": change.event_id})
        ctx.send("sync-jobs", {"v": 1, "user_id": user_id, "reason": "conflict"})
        return "conflict"
    ctx.audit.record(user_id, ctx.clock(), change.audit, "sync")
    return "applied"
