"""One user's inbound sync (the shell): gather, plan (pure), hand the writes over.

Owns: the Graph reads for the window (today - 2 days .. today + 12 months), turning
them into an ``OutlookSnapshot``, calling the pure planner, and sending one message per
changed event to the ``writes`` queue (or applying them inline for a dry run / CLI).
Rules: a held plan (mass delete, empty side) is stored on the user for an administrator
to confirm and nothing is applied (STYLE rule 6); ``invalid_grant`` marks the user
"needs reconnect" and keeps their data (SPEC section 7).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time as _time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping

from azure.core.exceptions import ResourceModifiedError
from dateutil.relativedelta import relativedelta

from core.adapters import logs
from core.plan import inbound, notify, outlook_items
from core.adapters.audit import AuditStore
from core.adapters.auth import (
    KeyUnavailable,
    ReconnectRequired,
    TokenSource,
    TransientAuthError,
    mark_needs_reconnect,
)
from core.adapters.events import ConcurrencyConflict, EventChange, EventStore, IndexRow, change_between, keep_seq
from core.adapters.graph import DeltaExpired, GraphClient, GraphError
from core.adapters.http import VerifyingSession
from core.plan.model import UserState, Window
from core.adapters.rows import RootMeta, iso
from core.plan import change_feed
from core.plan.calendar_view import EventMeta, event_json
from core.plan.timezones import parse_graph_datetime
from core.adapters.users import CONNECTED, KEY_MISSING_PREFIX, UserRecord, after_failure, after_success

log = logging.getLogger(__name__)
#: the Communifire-facing feeds, by their logical names (the queue names are settings)
CHANGES = "calendar-changes"
RESULTS = "outbound-results"

_ITEM_FIELDS = (
    "id,type,seriesMasterId,subject,body,location,start,end,isAllDay,originalStartTimeZone,"
    "originalEndTimeZone,recurrence,attendees,organizer,iCalUId,lastModifiedDateTime,changeKey,"
    "isCancelled,isOrganizer,responseStatus"
)
MASTER_SELECT = _ITEM_FIELDS + ",cancelledOccurrences"
INSTANCE_SELECT = _ITEM_FIELDS + ",originalStart,occurrenceId"
EXPAND_APP_ID = f"singleValueExtendedProperties($filter=id eq '{outlook_items.APP_EVENT_ID_PROPERTY}')"


def window_for(now: datetime, offset: timedelta = timedelta(0)) -> Window:
    """today - 2 days .. today + 12 months, at UTC midnights (SPEC section 1).

    ``offset``: "today" turns over that long after 00:00 UTC (``full_round_offset``), so
    each user's window, and with it their daily full round, moves at their own time.
    """
    today = datetime.combine((now.astimezone(timezone.utc) - offset).date(), time(0), tzinfo=timezone.utc)
    return Window(start=today - timedelta(days=2), end=today + relativedelta(months=12))


def full_round_offset(user_id: str) -> timedelta:
    """A stable per-user time of day (whole minutes) at which the user's window moves and
    their daily full round runs: users spread evenly over the day, never all at 00:00 UTC
    (issue 14). Stable across processes and restarts (a hash, not Python's ``hash``)."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return timedelta(minutes=int.from_bytes(digest[:4], "big") % (24 * 60))


def user_window(now: datetime, user_id: str) -> Window:
    """The user's sync window at ``now`` (``window_for`` with their offset)."""
    return window_for(now, full_round_offset(user_id))


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
    outcome: str  # synced | held | needs_reconnect | key_missing | skipped | failed
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
    session: Any = None  # the process's one HTTP session (App.session)
    #: sends one message to a Communifire-facing feed (``calendar-changes``, ``outbound-results``)
    publish: Callable[[str, Mapping[str, Any]], None] = lambda feed, message: None

    def graph_for(self, user: UserRecord) -> tuple[GraphClient, TokenSource]:
        tokens = TokenSource(self.settings, self.users, self.sealer, self.make_msal, user)
        if self.session is None:
            self.session = VerifyingSession(self.settings.verify)
        graph = GraphClient(self.settings.graph_base_url, tokens, self.session, sleep=self.sleep)
        return graph, tokens


@dataclass(frozen=True, slots=True)
class PlannedSync:
    state: UserState
    loaded: Mapping[str, Any]
    snapshot: Any
    plan: Any
    delta_link: str
    window_start: str
    user: UserRecord | None = None  # the record as the sync left it (a refreshed token cache)


def touched(snapshot: Any, index: Mapping[str, IndexRow]) -> tuple[set[str], list[str]]:
    """What a round must read from storage to plan it (pure; issue 14).

    Returns the event ids to load and the meeting uids to look up. A full round touches
    every event of the user. A round of changes touches the events its changed and
    removed items stand for and, for an item with no link yet, the meetings it may be
    (A7, C5: its iCalUId and a one-instance copy's series), the event it is stamped with
    when the user is already linked to it (A9), and, for a new series, every linked
    series, any of which it may take over (A2).
    """
    if snapshot.complete:
        ids = {row.event_id for row in index.values()}
    else:
        changed = set(snapshot.singles) | set(snapshot.series) | set(snapshot.removed_ids)
        ids = {index[oid].event_id for oid in changed if oid in index}
    linked = {row.event_id for row in index.values()}
    uids: list[str] = []
    new_series = False
    for oid, item in sorted(snapshot.singles.items()):
        if oid in index:
            continue
        uids.append(item.ical_uid)
        if parts := outlook_items.instance_uid_parts(item.ical_uid):
            uids.append(parts[0])  # a one-instance invitation names its series (C5, O5)
        if item.app_event_id in linked:
            ids.add(item.app_event_id)
    for oid, series in sorted(snapshot.series.items()):
        if oid in index:
            continue
        new_series = True
        uids.append(series.master.ical_uid)
        if series.master.app_event_id in linked:
            ids.add(series.master.app_event_id)
    if new_series and not snapshot.complete:
        ids |= {row.event_id for row in index.values() if row.kind == "series"}
    return ids, sorted({u for u in uids if u})


def plan_user(ctx: SyncContext, user: UserRecord, now: datetime, *, full: bool = False) -> PlannedSync:
    """Gather and plan, writing nothing (also the CLI's dry run).

    A new delta round starts when the user's window has moved by a day (at their own time
    of day, ``full_round_offset``), when asked (``full``) or when Graph says the token
    expired; otherwise only the changes since the stored deltaLink are read (issue 4,
    GRAPH.md 2), and only the events they touch are loaded (issue 14): a round with no
    change reads no event at all.
    """
    graph, tokens = ctx.graph_for(user)
    window = user_window(now, user.user_id)
    window_start = iso(window.start)
    link = "" if full or user.delta_window_start != window_start else user.delta_link
    try:
        got = gather_delta(graph, window, link)
    except DeltaExpired:
        logs.info(log, "delta token expired; new round", user_id=user.user_id)
        got = gather_delta(graph, window, "")
    g = got.gathered
    nothing_changed = not got.complete and not (g.singles or g.masters or g.removed)
    index = {} if nothing_changed else ctx.events.index_for_user(user.user_id)
    if got.complete:
        # A linked series with no occurrence left in the window is missing from the round;
        # read it, so it is not taken for a deleted series (only a 404 says that).
        series_ids = {oid for oid, row in index.items() if row.kind == "series"}
        missing = sorted(series_ids - set(g.masters) - set(g.removed))
        if missing:
            more, more_instances, gone = _read_masters_and_instances(graph, window, missing, {})
            g = Gathered(g.singles, {**g.masters, **more}, {**g.instances, **more_instances}, g.removed | gone)
    snapshot = outlook_items.build_snapshot(
        user.user_id, window, g.singles, g.masters, g.instances, removed_ids=g.removed, complete=got.complete
    )
    if nothing_changed:
        state, loaded = UserState(user.user_id), {}
    else:
        ids, uids = touched(snapshot, index)
        state, loaded = ctx.events.load_touched_state(user.user_id, index, ids, uids)
    policy = inbound.SafetyPolicy(max_delete_share=ctx.settings.max_delete_share)
    plan = inbound.plan_inbound(state, snapshot, now, policy)
    return PlannedSync(state, loaded, snapshot, plan, got.delta_link, window_start, tokens.user)


def changes_for(user_id: str, state: UserState, loaded: Mapping[str, Any], plan: Any,
                now: datetime | None = None, sync_id: str = "") -> list[EventChange]:
    """The per-event storage changes that carry out a plan (apply_plan is the truth),
    each with the change-feed message to publish once it committed (docs/changes.md)."""
    after = inbound.apply_plan(state, plan)
    by_event = plan.by_event()
    links_by_event: dict[str, list[Any]] = {}
    for l in after.links.values():
        links_by_event.setdefault(l.event_id, []).append(l)
    changes = []
    window = window_for(now) if now is not None else None
    for event_id in sorted(set(state.events) | set(after.events)):
        audit = [
            {"kind": a.kind, "event_id": event_id, "rule": a.rule, "reason": a.reason} for a in by_event.get(event_id, ())
        ]
        links = links_by_event.get(event_id, [])
        change_id = f"{sync_id}-{event_id}" if sync_id else ""
        before = loaded.get(event_id)
        change = change_between(event_id, before, after.events.get(event_id), user_id, links, audit, change_id)
        if change is None:
            continue
        if window is not None and now is not None and change_id:
            feed = inbound_feed(change, before, after.events.get(event_id), links, user_id, window, now)
            if feed is not None:
                change = replace(change, feed=feed)
            elif before is not None and after.events.get(event_id) is not None:
                change = keep_seq(change, after.events[event_id], before.meta)
        changes.append(change)
    return changes


def inbound_feed(change: EventChange, before: Any, after_event: Any, my_links: list[Any], user_id: str,
                 window: Window, now: datetime) -> dict[str, Any] | None:
    """The change-feed message of one inbound change (None when Communifire sees no change)."""
    meta_before = before.meta if before is not None else RootMeta()
    old_doc = event_json(before.event, before.links, window, EventMeta(meta_before.seq, meta_before.communifire_id)) \
        if before is not None else None
    new_doc = None
    if after_event is not None:
        others = [l for l in (before.links if before is not None else ()) if l.user_id != user_id]
        new_doc = event_json(after_event, [*others, *my_links], window,
                             EventMeta(meta_before.seq + 1, meta_before.communifire_id))
    changes = change_feed.event_changes(_comparable(old_doc), _comparable(new_doc))
    if not changes:
        return None  # only links moved (e.g. a new delta round): nothing Communifire shows
    return change_feed.shrink(change_feed.feed_message(
        change_id=change.change_id, event_id=change.event_id, communifire_id=meta_before.communifire_id,
        seq=meta_before.seq + 1, at=now, source="inbound", changes=changes, rules=change.audit,
        users=change_feed.concerned_users(old_doc, new_doc, extra=[user_id]), snapshot=new_doc))


def _comparable(doc: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A document without what every change moves on (seq), for comparing two states."""
    return None if doc is None else {k: v for k, v in doc.items() if k != "seq"}


def sync_user(ctx: SyncContext, user_id: str, *, inline: bool = False, full: bool = False) -> SyncReport:
    """Run one user's sync: plan, then send (or apply inline) one change per event.

    Storage: the user row is read once and written once; a round with no change reads and
    writes nothing else (issue 14). The audit rows of the changes are written here, as
    batched transactions, before the changes are handed to the writer. ``full``: a new
    delta round (a lifecycle event said notifications were missed, issue 13).
    """
    now = ctx.clock()
    user = ctx.users.get(user_id)
    if user is None or user.state != CONNECTED:
        return SyncReport(user_id, "skipped", message="not connected")
    if not ctx.settings.sync_enabled:
        return SyncReport(user_id, "skipped", message="EnableCalendarSync is false")
    try:
        planned = plan_user(ctx, user, now, full=full)
    except KeyUnavailable as exc:
        # A configuration error: keep the sealed cache and the state; the user syncs again
        # once the key is configured (issue 10). The timer logs the round's one error.
        error = f"{KEY_MISSING_PREFIX}{exc}"[:500]
        fresh = ctx.users.get(user_id) or user
        if fresh.last_error != error:
            ctx.users.save(replace(fresh, last_error=error))
        logs.warning(log, "token cache cannot be opened; user skipped", user_id=user_id, key_id=exc.kid)
        return SyncReport(user_id, "key_missing", message=error)
    except ReconnectRequired as exc:
        mark_needs_reconnect(ctx.users, user, str(exc))
        logs.warning(log, "user needs to reconnect", user_id=user_id)
        return SyncReport(user_id, "needs_reconnect", message=str(exc))
    except (GraphError, TransientAuthError) as exc:
        error = str(exc)
        _save_user(ctx, user_id, lambda u: after_failure(u, now, ctx.settings.sync_interval_minutes, error))
        raise
    plan = planned.plan
    current = planned.user or user
    if plan.held:
        # Held plans keep the old delta position, so the same changes come back next time.
        _save_user(ctx, user_id, lambda u: replace(u, held_plan=json.dumps(plan.to_json()), last_error=f"held: {plan.held}"),
                   current)
        ctx.audit.record(user_id, now, [{"kind": "hold", "rule": "safety", "reason": plan.held}], "sync")
        logs.warning(log, "sync held for an administrator", user_id=user_id)
        return SyncReport(user_id, "held", plan=plan, message=plan.held)
    sync_id = uuid.uuid4().hex
    changes = changes_for(user_id, planned.state, planned.loaded, plan, now, sync_id)
    entries = [entry for change in changes for entry in change.audit]
    if entries:
        ctx.audit.record(user_id, now, entries, "sync")
    for change in changes:
        message = {"v": 1, "kind": "event_change", "message_id": change.change_id, "user_id": user_id,
                   "change": change.to_json(), "audited": True}
        if inline:
            apply_event_change(ctx, message)
        else:
            ctx.send("writes", message)
    s = ctx.settings

    def done(u: UserRecord) -> UserRecord:
        # a user whose notifications work is polled less often (issue 13)
        interval = notify.sync_interval_minutes(u.subscription, now, s.notifications_enabled, s.sync_interval_minutes,
                                                s.subscribed_sync_interval_minutes)
        return replace(after_success(u, now, interval), held_plan="", delta_link=planned.delta_link,
                       delta_window_start=planned.window_start)

    _save_user(ctx, user_id, done, current)
    logs.info(log, "user synced", user_id=user_id, changes=len(changes), actions=len(plan.actions))
    return SyncReport(user_id, "synced", plan=plan, changes=tuple(changes))


def _save_user(ctx: SyncContext, user_id: str, change: Callable[[UserRecord], UserRecord],
               current: UserRecord | None = None) -> None:
    """Write the user row from the copy this sync holds, guarded by its ETag; if someone
    changed the row meanwhile (an administrator, a token refresh elsewhere), re-read it
    and apply the same change to the fresh copy (one read, one write when nobody did)."""
    if current is not None and current.etag:
        try:
            ctx.users.save(change(current))
            return
        except ResourceModifiedError:
            pass
    fresh = ctx.users.get(user_id) or current
    if fresh is not None:
        ctx.users.save(change(fresh))


def apply_event_change(ctx: SyncContext, message: Mapping[str, Any]) -> str:
    """The writer's side: apply one event change; a stale base re-plans the user.

    Storage (issue 14): the event's transaction and, when they change, its index rows.
    The audit rows were written by the sync that planned the change (``audited``); a
    message without that flag (an older one, the CLI) records its own.
    """
    user_id = str(message["user_id"])
    change = EventChange.from_json(message["change"])
    try:
        ctx.events.apply(change)
    except ConcurrencyConflict:
        if change.change_id and ctx.events.committed_change(change.event_id)[0] == change.change_id:
            # Our own change committed before a crash: publish it (at least once) and stop.
            logs.info(log, "change already committed; published again", user_id=user_id, event_id=change.event_id)
            publish_change(ctx, change)
            return "applied"
        # The delta position already moved past these changes: a full round re-reads them.
        logs.info(log, "event changed meanwhile; user re-planned", user_id=user_id, event_id=change.event_id)
        user = ctx.users.get(user_id)
        if user is not None:
            ctx.users.save(replace(user, delta_link="", delta_window_start=""))
        ctx.send("sync-jobs", {"v": 1, "user_id": user_id, "reason": "conflict"})
        return "conflict"
    if not message.get("audited"):
        ctx.audit.record(user_id, ctx.clock(), change.audit, "sync")
    publish_change(ctx, change)
    return "applied"


def publish_change(ctx: SyncContext, change: EventChange) -> None:
    """Put the change's feed message on ``calendar-changes``, after its commit (issue 12)."""
    if change.feed is not None:
        publish_checked(ctx.publish, CHANGES, change.feed)


def publish_checked(publish: Callable[[str, Mapping[str, Any]], None], feed: str, message: Mapping[str, Any]) -> None:
    """Check a feed message against its schema (the producer's side of the one validator),
    then send it. A message that breaks the schema is an app bug: logged, still sent, so
    Communifire hears of the change (its consumer says what is wrong)."""
    from core.app.contracts import ContractError, validate_feed

    try:
        validate_feed(feed, message)
    except ContractError as exc:
        logs.warning(log, "feed message breaks its schema", feed=feed, problems=str(exc)[:2000])
    publish(feed, message)
