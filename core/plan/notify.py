"""Graph change notifications, decided purely (GRAPH.md section 7, issue 13).

Owns: reading a notification or lifecycle POST body, checking a ``clientState`` in
constant time, what to do about a user's subscription (create, renew, nothing), the
subscription's expiry to ask for, when a user with working notifications is polled, and
the debounce that turns a burst of notifications into at most one sync job per gap.
No I/O, no clock: ``now`` and every limit are parameters.

A notification is a doorbell only: it names a subscription, never content the app
trusts; the sync it schedules re-reads the mailbox (GRAPH.md 7, "always re-read").
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

RESOURCE = "me/events"
CHANGE_TYPES = "created,updated,deleted"
#: Largest notification POST read (Graph batches notifications; 1,000 of them fit twice).
MAX_BODY_BYTES = 1_000_000
#: Longest validationToken echoed (Graph's is about 100 characters).
MAX_VALIDATION_TOKEN = 1024
#: Most notifications handled from one POST; the rest of a bigger body is ignored.
MAX_NOTIFICATIONS = 2000
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")

# Subscription states shown by ``outlook-sync users``.
ACTIVE = "active"            # notifications arrive; the timer polls every SubscribedSyncIntervalMinutes
UNSUPPORTED = "unsupported"  # the mailbox cannot have webhooks (ExtensionError): timer polling only
FAILED = "failed"            # creation or renewal failed; retried later: timer polling meanwhile
NONE = ""                    # no subscription (yet, or notifications are off)

#: Retry a mailbox without webhook support daily (a hybrid mailbox may move to Exchange Online).
UNSUPPORTED_RETRY = timedelta(hours=24)
#: Retry after Graph could not validate our endpoint (NotificationUrl wrong or app down).
VALIDATION_RETRY = timedelta(hours=1)


class BadBody(ValueError):
    """A POST body that is not a Graph notification collection."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One item of ``value``: a change (``lifecycle`` empty) or a lifecycle event."""

    subscription_id: str
    client_state: str
    lifecycle: str = ""
    change_type: str = ""


def parse_body(body: bytes) -> tuple[list[Notification], int]:
    """The usable items of a notification POST and how many were not; BadBody if it is
    not a notification collection at all."""
    if len(body) > MAX_BODY_BYTES:
        raise BadBody(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody("body is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise BadBody('body must be {"value": [...]}')
    out: list[Notification] = []
    items = doc["value"][:MAX_NOTIFICATIONS]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("subscriptionId"), str):
            continue
        out.append(Notification(
            subscription_id=item["subscriptionId"][:200],
            client_state=str(item.get("clientState") or "")[:256],
            lifecycle=str(item.get("lifecycleEvent") or "")[:64],
            change_type=str(item.get("changeType") or "")[:64],
        ))
    return out, len(items) - len(out)


def client_state_matches(given: str, stored: str) -> bool:
    """Constant-time comparison (a timing difference would leak the secret)."""
    return bool(stored) and hmac.compare_digest(given.encode("utf-8"), stored.encode("utf-8"))


# -- subscriptions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """What the user record says about the user's subscription."""

    id: str = ""
    expires_at: datetime | None = None
    status: str = NONE
    error: str = ""
    retry_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return bool(self.id) and self.expires_at is not None and self.expires_at > now


def renew_margin(max_minutes: int) -> timedelta:
    """Renew once half the lifetime is gone: days ahead of expiry with Graph's figures."""
    return timedelta(minutes=max_minutes) / 2


def requested_expiry(now: datetime, max_minutes: int) -> datetime:
    """The expiry to ask for: the maximum less a little, so clock skew never makes Graph
    refuse it as "more than N minutes in the future"."""
    slack = min(timedelta(minutes=15), timedelta(minutes=max_minutes) / 10)
    return now + timedelta(minutes=max_minutes) - slack


def subscription_action(sub: SubscriptionState, now: datetime, max_minutes: int, enabled: bool) -> str | None:
    """``create``, ``renew`` or None for a connected user's subscription.

    Notifications off: nothing (a subscription left over lapses by itself). A live
    subscription is renewed once less than half its lifetime is left. Without one, it is
    created unless a failed attempt asked to wait (``retry_at``).
    """
    if not enabled:
        return None
    if sub.live(now):
        assert sub.expires_at is not None
        return "renew" if sub.expires_at - now <= renew_margin(max_minutes) else None
    if sub.retry_at is not None and sub.retry_at > now:
        return None
    return "create"


def healthy(sub: SubscriptionState, now: datetime, enabled: bool) -> bool:
    """Notifications work for this user: the timer is only the safety net."""
    return enabled and sub.status == ACTIVE and sub.live(now)


def sync_interval_minutes(sub: SubscriptionState, now: datetime, enabled: bool, polling: int, subscribed: int) -> int:
    """Minutes to the user's next timer sync: longer while notifications work (issue 13)."""
    return max(polling, subscribed) if healthy(sub, now, enabled) else polling


def failure_state(sub: SubscriptionState, now: datetime, status: int, code: str, message: str,
                  polling_minutes: int) -> SubscriptionState:
    """The state after Graph refused to create a subscription, and when to try again.

    ``ExtensionError`` (a mailbox on backend 'Unknown', hybrid or on-premises; or an
    application access policy, GRAPH.md 6) and 403 mean the mailbox cannot have one: the
    user stays on timer polling and the reason is shown. A failed validation handshake
    means Graph cannot reach NotificationUrl. Anything else is retried at the next poll.
    """
    reason = f"{code or status}: {message}"[:300]
    if code == "ExtensionError" or status == 403 or code == "MailboxNotEnabledForRESTAPI":
        return SubscriptionState(status=UNSUPPORTED, error=reason, retry_at=now + UNSUPPORTED_RETRY)
    if code == "ValidationError":
        return SubscriptionState(status=FAILED, error="Graph could not validate NotificationUrl: " + reason,
                                 retry_at=now + VALIDATION_RETRY)
    return SubscriptionState(status=FAILED, error=reason, retry_at=now + timedelta(minutes=polling_minutes))


def lifecycle_action(event: str) -> tuple[str | None, bool]:
    """(subscription action, full round) for a lifecycle event (GRAPH.md 7).

    ``reauthorizationRequired``: renew. ``subscriptionRemoved``: create a new one, then a
    full round (changes may have been missed meanwhile). ``missed``: a full round.
    """
    return {
        "reauthorizationRequired": ("renew", False),
        "subscriptionRemoved": ("recreate", True),
        "missed": (None, True),
    }.get(event, (None, False))


# -- debounce ------------------------------------------------------------------------------

#: A notification's sync starts this long after it (room for the rest of a burst).
DEBOUNCE_DELAY = timedelta(seconds=1)
#: Two notification syncs of one user start at least this far apart: a 5-second burst of
#: any size gives at most two jobs (issue 13).
DEBOUNCE_GAP = timedelta(seconds=5)
#: A pending request older than this lost its job (poisoned, deleted): schedule again.
DEBOUNCE_STALE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """The per-user marker: a notification sync is waiting to start (``pending``) and
    when the last one was due to start."""

    pending: bool = False
    visible_at: datetime | None = None


def schedule_sync(request: SyncRequest | None, now: datetime, delay: timedelta = DEBOUNCE_DELAY,
                  gap: timedelta = DEBOUNCE_GAP, stale: timedelta = DEBOUNCE_STALE) -> datetime | None:
    """When a sync job for this notification should start, or None: one already waits.

    The waiting job reads the mailbox after this notification arrived (it clears
    ``pending`` before reading), so nothing it announces is lost.
    """
    if request is not None and request.pending and request.visible_at is not None and now < request.visible_at + stale:
        return None
    start = now + delay
    if request is not None and request.visible_at is not None:
        start = max(start, request.visible_at + gap)
    return start
