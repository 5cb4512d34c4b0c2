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

from core.adapters import logs
from core.plan import inbound, outlook_items
from core.adapters.audit import AuditStore
from core.adapters.auth import ReconnectRequired, TokenSource, TransientAuthError, mark_needs_reconnect
from core.adapters.events import ConcurrencyConflict, EventChange, EventStore, change_between
from core.adapters.graph import DeltaExpired, GraphClient, GraphError
from core.adapters.http import VerifyingSession
from core.plan.model import UserState, Window
from core.adapters.rows import iso
from core.plan.timezones import parse_graph_datetime
from core.adapters.users import CONNECTED, UserRecord, after_failure, after_success

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


def _read_masters_and_instances(graph: GraphClient, window: Window, master_ids: list[str],
                                full_by_id: Mapping[str, dict[str, Any]]) -> tuple[dict, dict, set[str]]:
    """Each changed series in full: the master (with cancelledOccurrences) and all its
    instances in the window, merged by id with any full rows already read."""
    me = graph.user_path
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
            raise _item_error(status, body, "series master read failed")
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
    return masters, instances, removed


def _item_error(status: int, body: Any, what: str) -> GraphError:
    err = (body or {}).get("error", {}) if isinstance(body, dict) else {}
    return GraphError(status, err.get("code", f"HTTP{status}"), err.get("message", what))


def gather(graph: GraphClient, window: Window) -> Gathered:
    """Read every item of the window: singles from calendarView, series in full."""
    rows = list(
        graph.items(
            f"{graph.user_path}/calendarView",
            params={"startDateTime": iso(window.start), "endDateTime": iso(window.end), "$expand": EXPAND_APP_ID},
        )
    )
    singles = [r for r in rows if r.get("type") == "singleInstance"]
    # calendarView has no $select for lastModifiedDateTime and no originalStart without
    # one (GRAPH.md 1, 3): keep its full rows and merge /instances' selected ones by id.
    full_by_id = {r["id"]: r for r in rows if r.get("type") in ("occurrence", "exception")}
    master_ids = sorted({r["seriesMasterId"] for r in full_by_id.values() if r.get("seriesMasterId")})
    masters, instances, removed = _read_masters_and_instances(graph, window, master_ids, full_by_id)
    return Gathered(singles, masters, instances, frozenset(removed))


@dataclass(frozen=True, slots=True)
class DeltaRound:
    gathered: Gathered
    delta_link: str
    complete: bool


def gather_delta(graph: GraphClient, window: Window, delta_link: str = "") -> DeltaRound:
    """One calendarView/delta round (GRAPH.md 2): everything on a new round, else changes.

    Delta rows are not trusted for content: occurrences come back bare, and delta takes
    no $select or $expand. Changed singles are re-read by id and every series touched is
    read in full, so the snapshot holds complete items; ``@removed`` ids (also for items
    outside the window) and ids that answer 404 are passed as removed.
    """
    me = graph.user_path
    complete = not delta_link
    first = delta_link or f"{me}/calendarView/delta"
    params = None if delta_link else {"startDateTime": iso(window.start), "endDateTime": iso(window.end)}
    single_ids: set[str] = set()
    master_ids: set[str] = set()
    removed: set[str] = set()
    new_link = ""
    for page in graph.pages(first, params):
        for row in page.get("value", []):
            if "@removed" in row:
                removed.add(row["id"])
            elif row.get("type") == "seriesMaster":
                master_ids.add(row["id"])
            elif row.get("type") in ("occurrence", "exception") and row.get("seriesMasterId"):
                master_ids.add(row["seriesMasterId"])
            elif row.get("type") == "singleInstance":
                single_ids.add(row["id"])
        new_link = page.get("@odata.deltaLink") or new_link
    singles: list[dict[str, Any]] = []
    ordered = sorted(single_ids - removed)
    results = graph.batch(
        [{"id": str(i), "method": "GET", "url": f"{me}/events/{sid}?$expand={EXPAND_APP_ID}"} for i, sid in enumerate(ordered)]
    )
    for i, sid in enumerate(ordered):
        status, body = results.get(str(i), (0, None))
        if status == 404:
            removed.add(sid)
        elif status >= 400 or not isinstance(body, dict):
            raise _item_error(status, body, "event read failed")
        elif _overlaps(body, window):
            singles.append(body)
        else:
            removed.add(sid)  # moved out of the window: no longer ours to show
    masters, instances, gone = _read_masters_and_instances(graph, window, sorted(master_ids - removed), {})
    return DeltaRound(Gathered(singles, masters, instances, frozenset(removed | gone)), new_link, complete)


def _overlaps(item: Mapping[str, Any], window: Window) -> bool:
    start, end = parse_graph_datetime(item["start"]), parse_graph_datetime(item["end"])
    return start <= window.end and end >= window.start


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


@dataclass(frozen=True, slots=True)
class PlannedSync:
    state: UserState
    loaded: Mapping[str, Any]
    snapshot: Any
    plan: Any
    delta_link: str
    window_start: str


def plan_user(ctx: SyncContext, user: UserRecord, now: datetime, *, full: bool = False) -> PlannedSync:
    """Gather and plan, writing nothing (also the CLI's dry run).

    A new delta round starts when the window has moved by a day, when asked (``full``)
    or when Graph says the token expired; otherwise only the changes since the stored
    deltaLink are read (issue 4, GRAPH.md 2).
    """
    graph, _ = ctx.graph_for(user)
    window = window_for(now)
    window_start = iso(window.start)
    link = "" if full or user.delta_window_start != window_start else user.delta_link
    try:
        got = gather_delta(graph, window, link)
    except DeltaExpired:
        logs.info(log, "delta token expired; new round", user_id=user.user_id)
        got = gather_delta(graph, window, "")
    g = got.gathered
    if got.complete:
        # A linked series with no occurrence left in the window is missing from the round;
        # read it, so it is not taken for a deleted series (only a 404 says that).
        missing = sorted(ctx.events.series_ids_for_user(user.user_id) - set(g.masters) - set(g.removed))
        if missing:
            more, more_instances, gone = _read_masters_and_instances(graph, window, missing, {})
            g = Gathered(g.singles, {**g.masters, **more}, {**g.instances, **more_instances}, g.removed | gone)
    snapshot = outlook_items.build_snapshot(
        user.user_id, window, g.singles, g.masters, g.instances, removed_ids=g.removed, complete=got.complete
    )
    uids = [i.ical_uid for i in snapshot.singles.values()] + [s.master.ical_uid for s in snapshot.series.values()]
    # a one-instance invitation names its series (C5, O5): load that meeting too (A7)
    uids += [parts[0] for i in snapshot.singles.values() if (parts := outlook_items.instance_uid_parts(i.ical_uid))]
    state, loaded = ctx.events.load_user_state(user.user_id, uids)
    policy = inbound.SafetyPolicy(max_delete_share=ctx.settings.max_delete_share)
    plan = inbound.plan_inbound(state, snapshot, now, policy)
    return PlannedSync(state, loaded, snapshot, plan, got.delta_link, window_start)


def changes_for(user_id: str, state: UserState, loaded: Mapping[str, Any], plan: Any) -> list[EventChange]:
    """The per-event storage changes that carry out a plan (apply_plan is the truth)."""
    after = inbound.apply_plan(state, plan)
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
        planned = plan_user(ctx, user, now)
    except ReconnectRequired as exc:
        mark_needs_reconnect(ctx.users, user, str(exc))
        logs.warning(log, "user needs to reconnect", user_id=user_id)
        return SyncReport(user_id, "needs_reconnect", message=str(exc))
    except (GraphError, TransientAuthError) as exc:
        fresh = ctx.users.get(user_id) or user
        ctx.users.save(after_failure(fresh, now, ctx.settings.sync_interval_minutes, str(exc)))
        raise
    plan = planned.plan
    fresh = ctx.users.get(user_id) or user
    if plan.held:
        # Held plans keep the old delta position, so the same changes come back next time.
        ctx.users.save(replace(fresh, held_plan=json.dumps(plan.to_json()), last_error=f"held: {plan.held}"))
        ctx.audit.record(user_id, now, [{"kind": "hold", "rule": "safety", "reason": plan.held}], "sync")
        logs.warning(log, "sync held for an administrator", user_id=user_id)
        return SyncReport(user_id, "held", plan=plan, message=plan.held)
    changes = changes_for(user_id, planned.state, planned.loaded, plan)
    sync_id = uuid.uuid4().hex
    for change in changes:
        message = {"v": 1, "kind": "event_change", "message_id": f"{sync_id}-{change.event_id}", "user_id": user_id,
                   "change": change.to_json()}
        if inline:
            apply_event_change(ctx, message)
        else:
            ctx.send("writes", message)
    done = after_success(fresh, now, ctx.settings.sync_interval_minutes)
    ctx.users.save(replace(done, held_plan="", delta_link=planned.delta_link, delta_window_start=planned.window_start))
    logs.info(log, "user synced", user_id=user_id, changes=len(changes), actions=len(plan.actions))
    return SyncReport(user_id, "synced", plan=plan, changes=tuple(changes))


def apply_event_change(ctx: SyncContext, message: Mapping[str, Any]) -> str:
    """The writer's side: apply one event change; a stale base re-plans the user."""
    user_id = str(message["user_id"])
    change = EventChange.from_json(message["change"])
    try:
        ctx.events.apply(change)
    except ConcurrencyConflict:
        # The delta position already moved past these changes: a full round re-reads them.
        logs.info(log, "event changed meanwhile; user re-planned", user_id=user_id, event_id=change.event_id)
        user = ctx.users.get(user_id)
        if user is not None:
            ctx.users.save(replace(user, delta_link="", delta_window_start=""))
        ctx.send("sync-jobs", {"v": 1, "user_id": user_id, "reason": "conflict"})
        return "conflict"
    ctx.audit.record(user_id, ctx.clock(), change.audit, "sync")
    return "applied"
