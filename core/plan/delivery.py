"""What becomes of one queue delivery that did not end in ``applied`` (pure).

Owns: the operation statuses an outbound operation record can carry, and the decision
after a failure: poison at once (a message that can never succeed), wait and try again
later (throttling, an event not created yet), or let the host retry (anything else).

Rules (issue 11, SPEC section 7):
- a message that can never succeed goes to the poison queue on its first delivery, with
  its reason; the host's ``maxDequeueCount`` retries are for transient trouble only;
- throttling (Graph 429/503/504 that outlast the in-call retry budget) never poisons: the
  work is re-scheduled as a new queue message, invisible for ``Retry-After`` seconds (or
  an exponential back-off), so it does not count toward the poison threshold; after
  ``GIVE_UP_AFTER`` of uninterrupted waiting the operation is poisoned with that reason;
- an update that arrives before its event's create waits (``MISSING_EVENT_WAITS`` times,
  with back-off) rather than being poisoned.

No I/O, no clock: times are arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "APPLIED", "STALE", "REJECTED", "WAITING", "RUNNING", "NEW", "FINAL", "REPLAYED",
    "Decision", "after_throttling", "after_missing_event", "backoff_seconds", "is_final",
    "GIVE_UP_AFTER", "MAX_DELAY_SECONDS", "MISSING_EVENT_WAITS",
]

#: The operation statuses (``Operations`` table ``Status``).
NEW = "new"
RUNNING = "running"
WAITING = "waiting"  # re-scheduled: ``RetryAt`` says when it is tried again
APPLIED = "applied"
STALE = "stale"  # older than what was applied for the event: changed nothing
REJECTED = "rejected"  # can never succeed: in the poison queue with its reason
REPLAYED = "replayed"  # put back on its queue by ``poison replay``
#: Statuses after which a redelivery of the same operation id changes nothing.
FINAL = frozenset({APPLIED, STALE, "done"})  # "done": records written before issue 11

#: Azure Queue Storage's largest visibility timeout is 7 days; stay well inside it.
MAX_DELAY_SECONDS = 6 * 3600
#: Throttling longer than this (since the operation first waited) poisons it.
GIVE_UP_AFTER = timedelta(days=2)
#: How many times an update waits for its event's create before it is poisoned.
MISSING_EVENT_WAITS = 6
_BASE_BACKOFF = 30


def is_final(status: str) -> bool:
    return status in FINAL


@dataclass(frozen=True, slots=True)
class Decision:
    """``action``: ``wait`` (re-schedule after ``delay_seconds``) or ``poison`` (now)."""

    action: str
    delay_seconds: int = 0
    reason: str = ""

    def retry_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.delay_seconds)


def backoff_seconds(waits: int, base: int = _BASE_BACKOFF) -> int:
    """Exponential back-off for the ``waits``-th wait (0-based), capped."""
    return int(min(MAX_DELAY_SECONDS, base * 2 ** max(0, min(waits, 20))))


def _delay(retry_after: float | None, waits: int) -> int:
    if retry_after is not None and retry_after >= 0:
        return max(1, min(MAX_DELAY_SECONDS, math.ceil(retry_after)))
    return backoff_seconds(waits)


def after_throttling(retry_after: float | None, waits: int, waiting_since: datetime | None, now: datetime,
                     what: str) -> Decision:
    """Graph throttled us (429) or was unavailable (503/504) beyond the in-call retries.

    Args:
        retry_after: Graph's ``Retry-After`` in seconds, if it gave one.
        waits: how many times this operation has waited already.
        waiting_since: when it first waited (None: this is the first time).
        what: the error, for the reason.
    """
    if waiting_since is not None and now - waiting_since >= GIVE_UP_AFTER:
        return Decision("poison", reason=f"{what}: Outlook kept refusing for {GIVE_UP_AFTER.days} days; "
                                         "replay it once Outlook answers again")
    delay = _delay(retry_after, waits)
    source = f"Retry-After {retry_after:g} s" if retry_after is not None else f"back-off {delay} s"
    return Decision("wait", delay, f"{what}: tried again in {delay} s ({source}); throttling never poisons")


def after_missing_event(event_id: str, operation: str, waits: int) -> Decision:
    """An operation on an event that is not stored (yet): its create may still be on the way."""
    if waits >= MISSING_EVENT_WAITS:
        return Decision("poison", reason=f"event {event_id} is unknown to the app (never created through it, or "
                                         f"deleted); the {operation} waited {waits} times for its create")
    delay = backoff_seconds(waits, base=5)
    return Decision("wait", delay, f"event {event_id} is not stored yet: the {operation} waits {delay} s for its "
                                   f"create (wait {waits + 1} of {MISSING_EVENT_WAITS})")
