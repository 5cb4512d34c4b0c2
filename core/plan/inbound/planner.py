"""The entry point ``plan_inbound``: one user's Outlook snapshot against Communifire's state.

``_Planner`` composes the rule families (each a mixin of ``PlannerBase``, one module each)
and ``run`` orders them: whole items gone (C2, A1), linked items edited (D1, A4, O2), new
items (A9, A7, C5, A2, C1), then the instances of every series touched (D2, D3, O5, O7) once
every segment-level change is planned, then RSVPs (C4, C5, A5). ``plan_inbound`` sorts the
actions and asks ``safety`` whether the plan must be held (STYLE rule 6).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from core.plan.inbound.actions import Plan, ReconcileError
from core.plan.inbound.common import _overlaps_window
from core.plan.inbound.identity import IdentityRules, default_new_id
from core.plan.inbound.instances import InstanceRules
from core.plan.inbound.linked import LinkedRules
from core.plan.inbound.rsvps import RsvpRules
from core.plan.inbound.safety import SafetyPolicy, _safety
from core.plan.inbound.split import SplitRules
from core.plan.model import ModelError, OutlookLink, UserState, require_aware
from core.plan.outlook_items import OutlookSnapshot


class _Planner(IdentityRules, LinkedRules, SplitRules, InstanceRules, RsvpRules):
    """Builds one plan: the rule families in the order ``run`` applies them."""

    def run(self) -> None:
        present = set(self.snap.singles) | set(self.snap.series)
        gone: list[OutlookLink] = []
        for oid, link in sorted(self.state.links.items()):
            item = self.snap.item(oid)
            if item is not None and not item.is_cancelled:
                continue
            if item is not None and item.is_cancelled:
                gone.append(link)  # a cancelled meeting left in an attendee's calendar (O6)
            elif oid in self.snap.removed_ids or self.snap.complete:
                # scenario: deleted in Outlook (tombstone, 404 master, or absent from a full read);
                # an item that lay outside the window is not deleted, only out of sight (GRAPH.md 2)
                if _overlaps_window(link, self.snap.window.start, self.snap.window.end):
                    gone.append(link)
        self.plan_gone(gone)
        for oid in sorted(present & set(self.state.links)):
            link = self.state.links[oid]
            if link.event_id not in self.events:
                self.notes.append(f"link {oid} points at event {link.event_id}, which is not loaded")
                continue
            item = self.snap.item(oid)
            assert item is not None
            if item.is_cancelled:
                continue
            if oid in self.snap.series:
                self.plan_linked_series(link, self.snap.series[oid])
            else:
                self.plan_linked_single(link, item)
        self.plan_new(sorted(present - set(self.state.links)))
        for event_id, master_id, series, authoritative, reset in self.jobs:
            self.plan_instances(event_id, master_id, series, authoritative=authoritative, reset=reset)
        for event_id, item in self.rsvp_jobs:
            link = self.links.get(item.id)
            if link is not None and link.kind == "instance" and link.instance_start is not None:
                # scenario: the answer on a one-instance copy is an RSVP for that instance only (C5)
                self._answer(event_id, item, "single", link.instance_start, "C5",
                             f"the instance of {link.instance_start:%Y-%m-%d}")
            else:
                self.plan_all_rsvp(event_id, item)


def plan_inbound(
    state: UserState,
    snapshot: OutlookSnapshot,
    now: datetime,
    policy: SafetyPolicy = SafetyPolicy(),
    new_id: Callable[[str], str] | None = None,
) -> Plan:
    """Plan what the user's Outlook snapshot changes in Communifire (pure).

    Args:
        state: the user's events (linked to them, or matching a snapshot iCalUId: A7)
            and their links by Outlook id.
        now: the planning time (aware); stamped on actions and new events.
        new_id: ids for events born in Outlook, from a seed (default: uuid5 of user and
            Outlook id, so re-planning is stable).

    Raises:
        ReconcileError: the snapshot is for another user, or ``now`` is naive.
    """
    if snapshot.user_id != state.user_id:
        raise ReconcileError(f"snapshot of {snapshot.user_id} planned against {state.user_id}", user_id=state.user_id)
    try:
        require_aware("now", now)
    except ModelError as exc:
        raise ReconcileError(str(exc), user_id=state.user_id) from exc
    planner = _Planner(state, snapshot, now, new_id or default_new_id(state.user_id))
    planner.run()
    actions = tuple(sorted(planner.actions, key=lambda a: a.sort_key))
    held = _safety(state, snapshot, planner.gone_events, policy)
    return Plan(user_id=state.user_id, actions=actions, held=held, notes=tuple(planner.notes))
