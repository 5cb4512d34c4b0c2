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


def norm_title(text: str) -> str:
    """A subject as A2 compares it: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


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
        # indexes over self.events and self.links, kept in step by emit/relink, so a plan
        # stays linear in the number of items (issue 14): no rule scans every event or link
        self._links_by_event: dict[str, set[str]] = {}
        self._events_by_meeting: dict[str, set[str]] = {}
        self._series_by_title: dict[str, set[str]] = {}
        for oid, link in self.links.items():
            self._links_by_event.setdefault(link.event_id, set()).add(oid)
        for event in self.events.values():
            if event.meeting_uid:
                self._events_by_meeting.setdefault(event.meeting_uid, set()).add(event.id)
        for oid, link in self.links.items():
            self._index_series_titles(oid, link)

    # -- the indexes ------------------------------------------------------------------

    def linked_event_ids(self) -> set[str]:
        """The events this user's links point at, as the plan leaves them so far."""
        return {event_id for event_id, oids in self._links_by_event.items() if oids}

    def is_linked(self, event_id: str) -> bool:
        return bool(self._links_by_event.get(event_id))

    def links_of(self, event_id: str) -> list[OutlookLink]:
        """This user's links to one event, by Outlook id."""
        return [self.links[oid] for oid in sorted(self._links_by_event.get(event_id, ()))]

    def events_for_meeting(self, meeting_uid: str) -> list[Event]:
        """Events (as planned so far) whose meeting is this iCalUId, by id."""
        return [self.events[i] for i in sorted(self._events_by_meeting.get(meeting_uid, ())) if i in self.events]

    def series_links_titled(self, title: str) -> list[tuple[str, OutlookLink]]:
        """Series links that may carry this (normalised) subject, by Outlook id: a superset
        of those whose subject, as linked, synced or planned, is ``title`` (A2's test (a))."""
        oids = self._series_by_title.get(title, ())
        return [(oid, self.links[oid]) for oid in sorted(oids) if oid in self.links]

    def _index_series_titles(self, oid: str, link: OutlookLink) -> None:
        """Every subject ``SplitRules._takes_over`` may compare for this link."""
        if link.kind != "series":
            return
        titles = {str(link.snapshot.get("title") or "")}
        synced = self.state.links.get(oid)
        if synced is not None:
            titles.add(str(synced.snapshot.get("title") or ""))
            synced_event = self.state.events.get(synced.event_id)
            if synced_event is not None:
                titles.update(s.title for s in synced_event.segments)
        if oid in self.snap.series:
            titles.add(self.snap.series[oid].master.title)
        event = self.events.get(link.event_id)
        if event is not None:
            titles.update(s.title for s in event.segments)
        for title in titles:
            self._series_by_title.setdefault(norm_title(title), set()).add(oid)

    def _set_event(self, event_id: str, event: Event | None) -> None:
        before = self.events.get(event_id)
        if event is None:
            self.events.pop(event_id, None)
        else:
            self.events[event_id] = event
        old_uid = before.meeting_uid if before is not None else ""
        new_uid = event.meeting_uid if event is not None else ""
        if old_uid != new_uid:
            if old_uid:
                self._events_by_meeting.get(old_uid, set()).discard(event_id)
            if new_uid:
                self._events_by_meeting.setdefault(new_uid, set()).add(event_id)
        if event is not None and (before is None or before.segments != event.segments):
            for oid in self._links_by_event.get(event_id, ()):
                self._index_series_titles(oid, self.links[oid])  # a renamed or new segment (A2 (a))

    def _set_link(self, link: OutlookLink) -> None:
        old = self.links.get(link.outlook_id)
        if old is not None and old.event_id != link.event_id:
            self._links_by_event.get(old.event_id, set()).discard(link.outlook_id)
        self.links[link.outlook_id] = link
        self._links_by_event.setdefault(link.event_id, set()).add(link.outlook_id)
        self._index_series_titles(link.outlook_id, link)

    def _drop_link(self, outlook_id: str) -> None:
        old = self.links.pop(outlook_id, None)
        if old is not None:
            self._links_by_event.get(old.event_id, set()).discard(outlook_id)

    # -- emitting ---------------------------------------------------------------------

    def emit(self, kind: str, event_id: str, rule: str, reason: str, **payload: Any) -> None:
        action = Action(kind=kind, event_id=event_id, rule=rule, reason=reason, at=self.now, **payload)
        self.actions.append(action)
        projected = _apply_one(self.events.get(event_id), action)
        if projected is not self.events.get(event_id):
            self._set_event(event_id, projected)
        if kind == "link":
            assert action.link is not None
            self._set_link(action.link)
        elif kind == "unlink":
            self._drop_link(action.outlook_id)
        elif kind == "delete_event":
            for oid in list(self._links_by_event.get(event_id, ())):
                self._drop_link(oid)

    def relink(self, link: OutlookLink, rule: str, reason: str) -> None:
        """Replace this plan's link action for the item, or add one (one link action per item)."""
        for i, action in enumerate(self.actions):
            if action.kind == "link" and action.link is not None and action.link.outlook_id == link.outlook_id:
                self.actions[i] = replace(action, link=link)
                self._set_link(link)
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
