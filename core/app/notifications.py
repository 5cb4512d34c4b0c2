"""Graph change notifications as the doorbell, the timer as the safety net (issue 13).

Owns: the two anonymous endpoints' work (the ``validationToken`` handshake; checking each
notification's ``clientState`` in constant time; turning accepted ones into at most one
waiting sync job per user, debounced; lifecycle events into jobs), and the upkeep of a
user's subscription that a sync job runs (create, renew, recreate, delete). The
endpoints do no Graph work and answer 202 at once (GRAPH.md 7: within 3 s); everything
that calls Graph runs in the ``sync-jobs`` queue function. Decisions are in
``core.plan.notify``; nothing here logs a ``clientState``.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Mapping

from azure.core.exceptions import ResourceModifiedError

from core.adapters import logs
from core.adapters import subscriptions as graph_subs
from core.adapters.auth import ReconnectRequired, TokenSource, TransientAuthError
from core.adapters.graph import GraphClient, GraphError, RetryPolicy
from core.adapters.http import VerifyingSession
from core.adapters.subscriptions import NotificationStats, SubscriptionIndex, SyncRequests
from core.adapters.users import CONNECTED, UserRecord
from core.app.bootstrap import App
from core.plan import notify

log = logging.getLogger(__name__)

SYNC_JOBS = "sync-jobs"
#: Disconnect deletes the subscription inline: a short budget, then it lapses by itself.
_QUICK = RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=2.0, max_total_wait=5.0)
_USUAL = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str = ""
    content_type: str = "text/plain"


# -- the endpoints ---------------------------------------------------------------------


def handshake(params: Mapping[str, str]) -> Reply | None:
    """Graph's validation request (GRAPH.md 7): 200, text/plain, the decoded token.

    Needs no settings, so a subscription can be validated even by a cold instance.
    """
    if "validationToken" not in params:
        return None
    token = params["validationToken"]
    if not token or len(token) > notify.MAX_VALIDATION_TOKEN:
        return Reply(400, "validationToken must be 1-1024 characters")
    return Reply(200, token)


def receive(app: App, body: bytes) -> Reply:
    """A notification or lifecycle POST: check, debounce, answer 202 (no Graph call)."""
    counts: Counter[str] = Counter()
    now = app.clock()
    try:
        items, malformed = notify.parse_body(body)
    except notify.BadBody as exc:
        NotificationStats(app.storage).add(now, {"discarded_malformed": 1})
        logs.warning(log, "notification body refused", reason=str(exc), size=len(body))
        return Reply(413 if len(body) > notify.MAX_BODY_BYTES else 400, str(exc))
    counts["discarded_malformed"] += malformed
    index = SubscriptionIndex(app.storage, app.sealer)
    known: dict[str, tuple[str, str] | None] = {}
    changed: set[str] = set()
    lifecycle: dict[tuple[str, str, str], None] = {}
    for item in items:
        if item.subscription_id not in known:
            known[item.subscription_id] = index.lookup(item.subscription_id)
        entry = known[item.subscription_id]
        if entry is None:
            counts["discarded_unknown_subscription"] += 1
            continue
        user_id, client_state = entry
        if not notify.client_state_matches(item.client_state, client_state):
            counts["discarded_client_state"] += 1
            continue
        if item.lifecycle:
            if item.lifecycle in notify.LIFECYCLE_EVENTS:
                lifecycle[(user_id, item.lifecycle, item.subscription_id)] = None
                counts[f"lifecycle_{item.lifecycle}"] += 1
            else:
                counts["discarded_malformed"] += 1
            continue
        changed.add(user_id)
        counts["accepted"] += 1
    for user_id in sorted(changed):
        if request_sync(app, user_id, now):
            counts["jobs"] += 1
    for user_id, event, subscription_id in lifecycle:
        app.storage.send(SYNC_JOBS, {"v": 1, "user_id": user_id, "reason": "lifecycle", "event": event,
                                     "subscription_id": subscription_id, "at": now.isoformat()})
        counts["jobs"] += 1
    # Accepted notifications are only logged (a table counter per POST would contend
    # under a burst); discards, lifecycle events and jobs are rare and kept per day.
    NotificationStats(app.storage).add(now, {k: v for k, v in counts.items() if k != "accepted"})
    logs.info(log, "notifications received", accepted=counts["accepted"], jobs=counts["jobs"],
              discarded=sum(v for k, v in counts.items() if k.startswith("discarded")),
              lifecycle=sum(v for k, v in counts.items() if k.startswith("lifecycle")))
    return Reply(202)


def request_sync(app: App, user_id: str, now: datetime) -> bool:
    """Debounce: one sync job waits per user; True when this call queued it."""
    requests_ = SyncRequests(app.storage)
    current, etag = requests_.get(user_id)
    start = notify.schedule_sync(current, now)
    if start is None or not requests_.claim(user_id, start, etag):
        return False
    delay = max(0, math.ceil((start - now).total_seconds()))
    try:
        app.storage.send(SYNC_JOBS, {"v": 1, "user_id": user_id, "reason": "notification", "at": now.isoformat()},
                         visibility_timeout=delay)
    except Exception:
        requests_.remove(user_id)  # no job waits: let Graph's retry schedule one
        raise
    return True


lifecycle_action = notify.lifecycle_action


def sync_started(app: App, user_id: str) -> None:
    """A notification job starts: notifications from now on need another sync."""
    SyncRequests(app.storage).started(user_id)


# -- subscription upkeep (runs in the sync job) -------------------------------------------


def _graph(app: App, user: UserRecord, retry: RetryPolicy = _USUAL, timeout: float = 30.0) -> GraphClient:
    tokens = TokenSource(app.settings, app.users, app.sealer, app.make_msal, user)
    return GraphClient(app.settings.graph_base_url, tokens, VerifyingSession(app.settings.verify, timeout=timeout),
                       retry=retry)


def _save(app: App, user_id: str, sub: notify.SubscriptionState) -> None:
    for _ in range(3):
        fresh = app.users.get(user_id)
        if fresh is None:
            return
        try:
            app.users.save(fresh.with_subscription(sub))
            return
        except ResourceModifiedError:
            continue


def maintain(app: App, user_id: str, forced: str | None = None, subscription_id: str = "") -> str | None:
    """Create or renew the user's subscription when due (or as a lifecycle event asks).

    Returns what was done (``created``, ``renewed``, ``unsupported``, ``failed``) or None.
    Token trouble is left to the sync that follows (it marks the user, SPEC section 7).
    """
    settings = app.settings
    if not (settings.notifications_enabled and settings.sync_enabled):
        return None
    user = app.users.get(user_id)
    if user is None or user.state != CONNECTED:
        return None
    now = app.clock()
    sub = user.subscription
    index = SubscriptionIndex(app.storage, app.sealer)
    if forced == "recreate" and subscription_id and subscription_id == sub.id:
        index.remove(sub.id)  # Graph removed it (subscriptionRemoved)
        sub = notify.SubscriptionState()
        action: str | None = "create"
    elif forced == "renew" and sub.live(now) and (not subscription_id or subscription_id == sub.id):
        action = "renew"
    else:
        action = notify.subscription_action(sub, now, settings.subscription_max_minutes, True)
    if action is None:
        return None
    graph = _graph(app, user)
    try:
        if action == "renew":
            try:
                expiry = graph_subs.renew(graph, sub.id, notify.requested_expiry(now, settings.subscription_max_minutes))
            except GraphError as exc:
                if exc.status != 404:
                    _save(app, user_id, replace(sub, error=f"renewal failed: {exc.code}: {exc.message}"[:300]))
                    logs.warning(log, "subscription renewal failed", user_id=user_id, status=exc.status, graph_code=exc.code)
                    return "failed"
                index.remove(sub.id)  # gone (expired or removed): make a new one
                action = "create"
            else:
                _save(app, user_id, notify.SubscriptionState(sub.id, expiry, notify.ACTIVE))
                index.touch(sub.id, expiry)
                logs.info(log, "subscription renewed", user_id=user_id, subscription_id=sub.id)
                return "renewed"
        _drop_all(graph, index, user_id)
        client_state = secrets.token_urlsafe(32)  # 43 characters; Graph allows 128
        try:
            new_id, expiry = graph_subs.create(
                graph, notification_url=settings.notification_endpoint, lifecycle_url=settings.lifecycle_endpoint,
                expires_at=notify.requested_expiry(now, settings.subscription_max_minutes), client_state=client_state)
        except GraphError as exc:
            failed = notify.failure_state(sub, now, exc.status, exc.code, exc.message, settings.sync_interval_minutes)
            _save(app, user_id, failed)
            logs.warning(log, "subscription not created; timer polling", user_id=user_id, status=exc.status,
                         graph_code=exc.code, subscription_state=failed.status)
            return failed.status
        index.put(new_id, user_id, client_state, expiry)
        _save(app, user_id, notify.SubscriptionState(new_id, expiry, notify.ACTIVE))
        logs.info(log, "subscription created", user_id=user_id, subscription_id=new_id)
        return "created"
    except (ReconnectRequired, TransientAuthError):
        return None


def _drop_all(graph: GraphClient | None, index: SubscriptionIndex, user_id: str,
              also: str = "") -> None:
    """Forget every subscription of the user (and delete it at Graph, best effort). Before
    a new one is made, so one left by an earlier connection never rings twice."""
    for old in sorted(set(index.ids_for_user(user_id)) | ({also} if also else set())):
        if graph is not None:
            try:
                graph_subs.delete(graph, old)
            except GraphError:
                pass  # already gone, or unreachable now: it lapses by itself
        index.remove(old)


def forget(app: App, user: UserRecord) -> None:
    """Disconnect: delete the user's subscriptions at Graph (best effort, quickly) and here.

    Without the client secret and the encryption key (the CLI's storage-only settings)
    nothing is deleted at Graph: the subscription lapses by itself within
    SubscriptionMaxMinutes, and its notifications are discarded as unknown meanwhile.
    """
    index = SubscriptionIndex(app.storage)
    s = app.settings
    reachable = user.state == CONNECTED and user.sealed_cache and (s.encryption_keys or s.wrapped_keys) and s.client_secret
    graph = _graph(app, user, retry=_QUICK, timeout=5.0) if reachable else None
    try:
        _drop_all(graph, index, user.user_id, also=user.subscription_id)
    except (ReconnectRequired, TransientAuthError):
        _drop_all(None, index, user.user_id, also=user.subscription_id)
    SyncRequests(app.storage).remove(user.user_id)
