"""The inbound planner's state and how it emits actions; the rule families are mixins of it.

``PlannerBase`` holds the inputs (state, snapshot, now), the actions planned so far and
the events and links *as the plan leaves them so far* (each emitted action is projected with
``actions._apply_one``, so later rules see earlier ones: A2 coverage, instance work). It
decides no rule itself; see ``core/plan/inbound/__init__.py`` for which module decides which.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from core.plan.inbound.actions import Action, _apply_one, _sec
from core.plan.model import Event, OutlookLink, Segment, UserState
from core.plan.outlook_items import OutlookItem, OutlookSeries, OutlookSnapshot


class PlannerBase:
    """The state one plan is built in, and how actions are emitted into it (internal, pure)."""

    def __init__(self, state: UserState, snap: OutlookSnapshot, now: datetime, new_id: Callable[[str], str]):
        self.state = state
        self.snap = snap
        self.user = state.user_id
        self.now = _sec(now)
        self.new_id = new_id
        self.actions: list[Action] = []
        self.notes: list[str] = []
        # events as the plan leaves them so far (for projections: A2 coverage, instances)
        self.events: dict[str, Event] = dict(state.events)
        self.links: dict[str, OutlookLink] = dict(state.links)
        self.gone_events: set[str] = set()  # deleted or no longer linked for this user (safety)
        # instance-level work runs after every segment-level change (A2 coverage): jobs
        self.jobs: list[tuple[str, str, OutlookSeries, bool, bool]] = []
        self.rsvp_jobs: list[tuple[str, OutlookItem]] = []

    def emit(self, kind: str, event_id: str, rule: str, reason: str, **payload: Any) -> None:
        action = Action(kind=kind, event_id=event_id, rule=rule, reason=reason, at=self.now, **payload)
        self.actions.append(action)
        projected = _apply_one(self.events.get(event_id), action)
        if projected is None:
            self.events.pop(event_id, None)
        else:
            self.events[event_id] = projected
        if kind == "link":
            assert action.link is not None
            self.links[action.link.outlook_id] = action.link
        elif kind == "unlink":
            self.links.pop(action.outlook_id, None)
        elif kind == "delete_event":
            self.links = {k: v for k, v in self.links.items() if v.event_id != event_id}

    def relink(self, link: OutlookLink, rule: str, reason: str) -> None:
        """Replace this plan's link action for the item, or add one (one link action per item)."""
        for i, action in enumerate(self.actions):
            if action.kind == "link" and action.link is not None and action.link.outlook_id == link.outlook_id:
                self.actions[i] = replace(action, link=link)
                self.links[link.outlook_id] = link
                return
        self.emit("link", link.event_id, rule, reason, link=link)

    def _segment_for_link(self, event: Event, link: OutlookLink) -> Segment | None:
        if link.kind == "single" or link.segment_start is None:
            return event.segments[0]
        exact = next((s for s in event.segments if s.start == link.segment_start), None)
        return exact or event.segment_for(link.segment_start)

    @staticmethod
    def _authoritative(link: OutlookLink, item: OutlookItem) -> bool:
        """Whether this copy's content changes change the event (A7: one name per meeting)."""
        return item.is_organizer or not link.evidence.startswith("A7")
