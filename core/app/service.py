"""The app's entry points, one per trigger and CLI command (the shell's front door).

Owns: what each function does, end to end, given the composition root's ``App``; the
triggers in ``functions/`` only parse their binding, call one of these and map the
result. Everything here is safe to call twice (at-least-once delivery).
"""

from __future__ import annotations

import contextvars
import html
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any, Mapping

from core.adapters import auth, logs, telemetry  # noqa: F401  (telemetry re-exported for functions/)
from core.adapters.audit import AuditStore
from core.app import notifications
from core.app.bootstrap import App
from core.adapters.events import EventStore
from core.adapters.rows import link_key
from core.adapters.storage import QUEUES, escape_key
from core.app.sync import SyncContext, SyncReport, apply_event_change, sync_user
from core.adapters.users import NEEDS_RECONNECT, UserRecord, due_users, waiting_for_key
from core.plan.connect import ConnectInputError, check_return_url, expected_account
from core.adapters.auth import SyncDisabled  # noqa: F401  (re-exported for functions/)
from core.config.settings import FEED_QUEUES
from core.config.settings import SettingsError  # noqa: F401  (re-exported for functions/)

log = logging.getLogger(__name__)
_USER_ID = re.compile(r"^[A-Za-z0-9._@:+=-]{1,128}$")


class BadRequest(ValueError):
    """The caller sent something unusable; the message says what."""


class BadMessage(ValueError):
    """A queue message that can never succeed: it goes to the poison queue with this reason."""


def check_user_id(value: str | None) -> str:
    value = (value or "").strip()
    if not _USER_ID.match(value):
        raise BadRequest("'user' must be a Communifire user id (1-128 letters, digits or ._@:+=-)")
    return value


def sync_context(app: App) -> SyncContext:
    return SyncContext(
        settings=app.settings,
        users=app.users,
        events=EventStore(app.storage),
        audit=AuditStore(app.storage),
        sealer=app.sealer,
        make_msal=app.make_msal,
        send=app.storage.send,
        clock=app.clock,
        session=app.session,
        publish=app.storage.publish,
    )


# -- HTTP --------------------------------------------------------------------------


_TRUE = ("1", "true", "yes")


def connect_url(app: App, user: str | None, upn: str | None = None, oid: str | None = None,
                return_url: str | None = None, replace: str | bool | None = None) -> str:
    """The Microsoft sign-in URL for a Communifire user (function key protected).

    ``upn`` / ``oid``: the account the backend knows this user by (SSO); the callback
    refuses any other (issue 10). ``return_url``: where the callback page sends the
    browser back, on SiteUrl's origin only. ``replace``: allow linking a different
    mailbox than the one already connected."""
    user_id = check_user_id(user)
    auth.ensure_enabled(app.settings)
    try:
        expected = expected_account(upn, oid, required=app.settings.require_matching_account)
        back = check_return_url(return_url, app.settings.site_url)
    except ConnectInputError as exc:
        raise BadRequest(str(exc)) from exc
    wants_replace = replace is True or str(replace or "").strip().lower() in _TRUE
    return auth.start_connect(app.settings, app.flows, app.make_msal, user_id, app.clock(), expected, back, wants_replace)


def callback(app: App, params: Mapping[str, str]) -> auth.Outcome:
    result = auth.finish_connect(app.settings, app.flows, app.users, app.sealer, app.make_msal, params, app.clock(),
                                 forget_mailbox=lambda user_id: forget_mailbox(app, user_id))
    logs.info(log, "oauth callback", user_id=result.user_id, outcome=result.code)
    if result.ok and app.settings.notifications_enabled:
        # The subscription is made (and the first sync run) by a job right away, not by
        # the callback: Graph's handshake calls back into this app (issue 13).
        app.storage.send("sync-jobs", {"v": 1, "user_id": result.user_id, "reason": "connect",
                                       "at": app.clock().isoformat()})
    return result


NOT_CONNECTED, CONNECTED_STATUS, KEY_MISSING = "not_connected", "connected", "key_missing"


def connection_status(app: App, user: str | None) -> dict[str, Any]:
    """What My Calendar shows: connected, needs_reconnect, key_missing or not_connected."""
    user_id = check_user_id(user)
    record = app.users.get(user_id)
    return status_of(app, user_id, record)


def status_of(app: App, user_id: str, record: UserRecord | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"user": user_id, "status": NOT_CONNECTED, "account": "", "last_sync_at": None,
                           "message": "No Outlook calendar is connected."}
    if record is None:
        return doc
    public = record.public()
    doc.update(account=record.upn, last_sync_at=public["last_sync_at"])
    if record.state == NEEDS_RECONNECT:
        doc.update(status=NEEDS_RECONNECT, message="Outlook no longer accepts the sign-in: connect again.")
    elif record.sealed_cache and (problem := auth.key_problem(app.sealer, record.sealed_cache, user_id)):
        doc.update(status=KEY_MISSING, key_id=problem.kid,
                   message="Sync is paused by a server configuration problem (encryption key); your administrator "
                           "has been told. Nothing was lost and you do not need to connect again.")
    else:
        doc.update(status=CONNECTED_STATUS, message="Your Outlook calendar is connected.")
    return doc


def forget_mailbox(app: App, user_id: str) -> None:
    """Wipe the links and index rows that tie the user's events to their Outlook items."""
    events = EventStore(app.storage)
    index = app.storage.table("OutlookIndex")
    for outlook_id, event_id in events.event_ids_for_user(user_id).items():
        try:
            app.storage.table("Events").delete_entity(escape_key(event_id), link_key(user_id, outlook_id))
        except Exception:  # noqa: BLE001 - a missing row is fine; nothing else may stop the wipe
            logs.info(log, "link row already gone", user_id=user_id, event_id=event_id)
        try:
            index.delete_entity(escape_key(user_id), escape_key(outlook_id))
        except Exception:  # noqa: BLE001
            pass


def disconnect(app: App, user: str | None) -> bool:
    """Forget everything that can reach the user's mailbox; keep Communifire's events."""
    user_id = check_user_id(user)
    record = app.users.get(user_id)
    if record is not None:
        notifications.forget(app, record)  # the Graph subscription first, while tokens exist
    forget_mailbox(app, user_id)
    existed = app.users.delete(user_id)
    logs.info(log, "outlook account disconnected", user_id=user_id, existed=existed)
    return existed


def read_calendar(app: App, user: str | None, start: str | None = None, end: str | None = None,
                  event: str | None = None) -> dict[str, Any]:
    """A user's calendar as the read API and ``calendar --json`` answer it (docs/calendar-json.md).

    ``start``/``end`` (ISO 8601, UTC or with an offset) narrow it inside the sync window;
    ``event`` keeps the one event with that event id or Communifire id.

    Raises:
        BadRequest: a bad user id, date or range.
    """
    from core.adapters.rows import from_iso
    from core.plan.calendar_view import EventMeta, calendar_json
    from core.app.sync import window_for

    user_id = check_user_id(user)
    bounds = []
    for name, value in (("from", start), ("to", end)):
        if value in (None, ""):
            bounds.append(None)
            continue
        try:
            parsed = from_iso(value if "T" in value else f"{value}T00:00:00Z")
        except ValueError:
            raise BadRequest(f"'{name}' must be an ISO 8601 date or date-time, like 2026-12-01 or 2026-12-01T09:00:00Z") from None
        bounds.append(parsed)
    if bounds[0] and bounds[1] and bounds[1] <= bounds[0]:
        raise BadRequest("'to' must be after 'from'")
    state, loaded = EventStore(app.storage).load_user_state(user_id)
    now = app.clock()
    events = dict(state.events)
    if event:
        events = {k: v for k, v in events.items() if event in (k, loaded[k].meta.communifire_id)}
    links = [l for k, item in loaded.items() if k in events for l in item.links]
    meta = {k: EventMeta(item.meta.seq, item.meta.communifire_id) for k, item in loaded.items()}
    window = window_for(now)
    if (bounds[0] and bounds[0] >= window.end) or (bounds[1] and bounds[1] <= window.start):
        raise BadRequest(f"the range is outside the sync window {window.start.isoformat()} .. {window.end.isoformat()}")
    return calendar_json(user_id, events, links, window, now, meta, start=bounds[0], end=bounds[1])


def callback_page(result: auth.Outcome) -> str:
    """A small self-contained page (no third-party resources, SPEC section 7).

    With a return URL (checked at connect to be on SiteUrl's origin), the page links back
    there, and after a success sends the browser back by itself."""
    colour = "#1a7f37" if result.ok else "#b42318"
    back = html.escape(result.return_url, quote=True)
    refresh = f"<meta http-equiv='refresh' content='3;url={back}'>" if result.ok and back else ""
    link = f"<p><a id='back' href='{back}'>Back to My Calendar</a></p>" if back else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(result.title)}</title>{refresh}"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328}"
        f"h1{{font-size:1.4rem;color:{colour}}}</style></head><body>"
        f"<h1>{html.escape(result.title)}</h1><p>{html.escape(result.message)}</p>{link}"
        f"<p><small>Reference: {html.escape(result.code)}</small></p></body></html>"
    )


CALLBACK_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


# -- timer and queues ------------------------------------------------------------------


#: Queue sends in flight at once during the fan-out (Queue Storage has no batch send).
FANOUT_CONCURRENCY = 32
#: Users per timer message: the timer sends one message per this many due users; the
#: sync-jobs trigger claims them (one transaction) and queues one job per user (issue 14:
#: the timer sends 100 messages for 10,000 users and writes nothing; the claims and the
#: per-user sends run on the queue's instances, in parallel).
FANOUT_BATCH = 100


def enqueue_due(app: App) -> list[str]:
    """Fan out: one sync job per connected user that is due.

    Reads only the schedule columns of the Users table and sends the due users' ids in
    batches of ``FANOUT_BATCH``, concurrently; ``run_sync_job`` claims each batch's users
    for one interval (so a slow sync is not queued again by the next tick; a finished
    sync sets the next due time itself) and queues their jobs.
    """
    if not app.settings.sync_enabled:
        logs.info(log, "calendar sync disabled; timer does nothing")
        return []
    now = app.clock()
    settings = app.settings
    # with notifications on, a user whose subscription must be made or renewed is due too (issue 13)
    view = list(app.users.schedule_view())
    held, kids = waiting_for_key(view)
    if held:
        # issue 10: one error per round however many users wait; each still syncs (and
        # recovers by itself once the key is configured), logging a warning of its own
        logs.error(log, "token caches cannot be opened: users wait for a key TokenEncryptionKey lacks",
                   users=len(held), key_ids=",".join(kids))
    due = [u.user_id for u in due_users(view, now,
                                        settings.subscription_max_minutes if settings.notifications_enabled else None)]
    batches = [due[i:i + FANOUT_BATCH] for i in range(0, len(due), FANOUT_BATCH)]
    if len(batches) == 1 and len(batches[0]) == 1:
        # one due user: claimed here and queued as their own job (no batch to split)
        batches = [[uid] for uid in app.users.claim(batches[0], now + timedelta(minutes=app.settings.sync_interval_minutes))]
        messages = [{"v": 1, "user_id": b[0], "reason": "schedule", "at": now.isoformat()} for b in batches]
    else:
        messages = [{"v": 1, "user_ids": b, "reason": "schedule", "at": now.isoformat()} for b in batches]
    failed = send_all(app, "sync-jobs", messages)
    app.flows.purge_expired(now)
    logs.info(log, "sync jobs enqueued", count=len(due), messages=len(messages), failed=len(failed))
    if failed:
        raise failed[0]
    return due


def fan_out(app: App, user_ids: list[str], reason: str, at: str) -> int:
    """A timer batch: claim its users for one interval, then queue one job per user."""
    claimed = app.users.claim(user_ids, app.clock() + timedelta(minutes=app.settings.sync_interval_minutes))
    failed = send_all(app, "sync-jobs", [{"v": 1, "user_id": u, "reason": reason, "at": at} for u in claimed])
    if failed:
        raise failed[0]  # retried whole: a user queued twice syncs twice, harmlessly
    return len(claimed)


def send_all(app: App, queue: str, messages: list[Mapping[str, Any]]) -> list[Exception]:
    """Send messages concurrently; returns the failures (each send is tried once)."""
    if not messages:
        return []
    app.storage.queue(queue)  # build the client once, before the threads share it

    def send(job: tuple[contextvars.Context, Mapping[str, Any]]) -> Exception | None:
        context, message = job
        try:
            context.run(app.storage.send, queue, message)  # the caller's trace context travels along
        except Exception as exc:  # noqa: BLE001 - reported after every other send was tried
            return exc
        return None

    jobs = [(contextvars.copy_context(), m) for m in messages]
    with ThreadPoolExecutor(max_workers=min(FANOUT_CONCURRENCY, len(messages))) as pool:
        return [exc for exc in pool.map(send, jobs) if exc is not None]


def parse_message(body: str, app: App) -> dict[str, Any]:
    try:
        message = app.storage.resolve(body)
    except ValueError as exc:
        raise BadMessage(f"not a JSON object: {exc}") from exc
    if message.get("v") != 1:
        raise BadMessage(f"unknown message version {message.get('v')!r} (expected 1)")
    return message


def run_sync_job(app: App, body: str) -> SyncReport:
    """One sync-jobs message: sync its user, or (a timer batch) queue one job per user."""
    message = parse_message(body, app)
    if "user_ids" in message:
        ids = message["user_ids"]
        if not isinstance(ids, list) or not ids:
            raise BadMessage("'user_ids' must be a non-empty list of Communifire user ids")
        try:
            checked = [check_user_id(str(u)) for u in ids]
        except BadRequest as exc:
            raise BadMessage(str(exc)) from exc
        queued = fan_out(app, checked, str(message.get("reason", "schedule")), str(message.get("at", "")))
        return SyncReport(f"{len(checked)} users", "fanned_out", message=f"{queued} jobs queued")
    try:
        user_id = check_user_id(message.get("user_id"))
    except BadRequest as exc:
        raise BadMessage(str(exc)) from exc
    reason = message.get("reason")
    if reason == "notification":
        notifications.sync_started(app, user_id)
    forced, full = None, False
    if reason == "lifecycle":
        forced, full = notifications.lifecycle_action(str(message.get("event", "")))
    # The subscription first, then the read: a change in between still rings (issue 13).
    notifications.maintain(app, user_id, forced, str(message.get("subscription_id", "")))
    return sync_user(sync_context(app), user_id, full=full)


def run_write(app: App, body: str) -> str:
    message = parse_message(body, app)
    if message.get("kind") != "event_change" or not isinstance(message.get("change"), dict):
        raise BadMessage(f"unknown writes message kind {message.get('kind')!r}")
    try:
        outcome = apply_event_change(sync_context(app), message)
    except Exception:
        # The delta position already moved past this change: whatever becomes of this
        # message (retried or poisoned), the user's next sync is a full round that reads
        # the change again, so nothing is lost (SPEC section 7).
        forget_delta_position(app, str(message.get("user_id", "")))
        raise
    if '"payload_ref"' in body and message.get("message_id"):
        app.storage.drop_payload(str(message["message_id"]))  # a large change sent by reference
    return outcome


def forget_delta_position(app: App, user_id: str) -> None:
    user = app.users.get(user_id) if user_id else None
    if user is not None and user.delta_link:
        app.users.save(replace(user, delta_link="", delta_window_start=""))


def request_sync(app: App, user_id: str, reason: str = "admin") -> None:
    """Queue one sync job for a user, as the timer does (the CLI's ``sync --all``); the
    ``sync_user`` function picks it up like any other job."""
    app.storage.send("sync-jobs", {"v": 1, "user_id": check_user_id(user_id), "reason": reason,
                                   "at": app.clock().isoformat()})


def report_queue_depths(app: App) -> dict[str, int]:
    """Log how many messages wait in each poison queue (the poison-messages alert reads it).

    One ``queue depths`` line per timer tick with ``sync_jobs_poison``, ``writes_poison``,
    ``outbound_poison`` and their sum ``poison_messages`` as custom dimensions
    (infra/alerts/poison-messages.kql). The counts are the queues' approximate counts.
    """
    depths = {}
    for name in QUEUES:
        if name in FEED_QUEUES:
            continue  # read by Communifire: no trigger, no poison twin
        props = app.storage.queue(f"{name}-poison").get_queue_properties()
        depths[f"{name.replace('-', '_')}_poison"] = int(props.approximate_message_count or 0)
    logs.info(log, "queue depths", poison_messages=sum(depths.values()), **depths)
    return depths
