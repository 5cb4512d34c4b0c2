"""Safety: STYLE rule 6.

A plan that would empty or mostly delete a user's calendar is *held*: it is still returned,
with ``Plan.held`` saying why an administrator must confirm it (``outlook-sync plan``,
``outlook-sync confirm``). Two tests: Outlook returned an empty window while linked events
are expected in it (any the user organizes, or more than one meeting copy: a single copy
leaving is an attendee declining their only meeting, issue 11 item 6), or the plan deletes
or unlinks more than ``SafetyPolicy.max_delete_share`` of the user's linked events.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.plan.inbound.actions import ReconcileError
from core.plan.inbound.common import _overlaps_window
from core.plan.model import UserState
from core.plan.outlook_items import OutlookSnapshot


@dataclass(frozen=True, slots=True)
class SafetyPolicy:
    """When a plan must be held for an administrator instead of applied (STYLE rule 6)."""

    max_delete_share: float = 0.5
    min_events_for_share_check: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_delete_share <= 1.0:
            raise ReconcileError(f"max_delete_share must be within 0..1, got {self.max_delete_share}")
        if self.min_events_for_share_check < 0:
            raise ReconcileError("min_events_for_share_check must be >= 0")


def _safety(state: UserState, snap: OutlookSnapshot, gone_events: set[str], policy: SafetyPolicy) -> str | None:
    """Why the plan must be held, or None. ``gone_events``: the events the plan deletes or unlinks."""
    linked_events = {l.event_id for l in state.links.values()}
    if snap.complete and snap.is_empty and linked_events:
        expected = [l for l in state.links.values()
                    if _overlaps_window(l, snap.window.start, snap.window.end)]
        owned = any(l.snapshot.get("is_organizer") is True and l.kind != "instance" and not l.evidence.startswith("A7")
                    for l in expected)
        if owned or len({l.event_id for l in expected}) > 1:
            # scenario: Outlook suddenly shows nothing while we have linked events there (STYLE rule 6).
            # One meeting copy alone leaving is believable: an attendee who declined their only
            # meeting (issue 11 item 6); the share test below still holds a wiped mailbox of copies.
            return (f"Outlook returned an empty window but {len({l.event_id for l in expected})} linked "
                    "event(s) are expected in it; not deleting everything without an administrator")
    removed = gone_events & linked_events
    total = len(linked_events)
    if total >= policy.min_events_for_share_check and total and len(removed) / total > policy.max_delete_share:
        return (f"the plan would delete or unlink {len(removed)} of {total} events "
                f"(more than {policy.max_delete_share:.0%}); an administrator must confirm")
    return None
