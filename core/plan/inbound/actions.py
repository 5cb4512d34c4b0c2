"""The inbound plan's values and what applying one does: ``Action``, ``Plan``, ``apply_plan``.

Rules: A9 and STYLE rule 1 (``apply_plan`` is the single source of truth of what a plan
does: the shell persists the difference between ``state`` and ``apply_plan(state, plan)``);
every action names the SPEC rule that caused it and a one-line reason; actions are ordered
deterministically (by event, then phase in ``ACTION_KINDS`` order, then key). Removing a
child segment takes its own instances with it and leaves the rest of the event (A1).
Timestamps written into the state are whole seconds (Table Storage's precision), so a
stored and reloaded state plans exactly like the in-memory one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Mapping

from core.plan.model import (
    FIELDS,
    Event,
    InstanceException,
    OutlookLink,
    Rsvp,
    Segment,
    UserState,
    frozen_map,
    require_aware,
)
from core.plan.outlook_items import field_to_json, iso
from core.plan.timezones import UTC


#: Action kinds in the order they are applied within one event.
ACTION_KINDS: tuple[str, ...] = (
    "create_event",      # a new Communifire event (event)
    "add_segment",       # a child segment of an existing event (segment), rule A2
    "update_segment",    # fields of one segment (segment_start, changes)
    "remove_segment",    # a child series deleted in Outlook (segment_start)
    "remove_exception",  # an instance follows its segment again (original_start)
    "set_exception",     # an instance differs from its segment (original_start, changes, modified_at)
    "delete_instance",   # an instance was deleted (original_start)
    "forget_deleted",    # a deleted slot that no longer exists in the series (original_start)
    "remove_rsvp",       # (rsvp: the one to remove)
    "set_rsvp",          # (rsvp)
    "unlink",            # this user's Outlook item no longer stands for the event (outlook_id)
    "link",              # record this user's link with its synced snapshot (link)
    "delete_event",      # the whole event
)
_RANK = {kind: i for i, kind in enumerate(ACTION_KINDS)}
_SEGMENT_FIELDS: tuple[str, ...] = (*FIELDS, "recurrence")


class ReconcileError(ValueError):
    """The planner or ``apply_plan`` was given inconsistent input.

    Attributes:
        user_id, event_id: the context, when known.
    """

    def __init__(self, message: str, *, user_id: str = "", event_id: str = "") -> None:
        where = ", ".join(p for p in (f"user {user_id}" if user_id else "", f"event {event_id}" if event_id else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.user_id = user_id
        self.event_id = event_id


def _sec(value: datetime) -> datetime:
    """UTC, whole seconds (the precision Table Storage keeps)."""
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Action:
    """One planned change to one event, with the rule that caused it and why.

    Payload fields are used by kind (see ACTION_KINDS); the others keep their defaults.
    ``changes`` maps field names (FIELDS, ``recurrence``) to model values.
    """

    kind: str
    event_id: str
    rule: str
    reason: str
    at: datetime | None = None
    outlook_id: str = ""
    segment_start: datetime | None = None
    original_start: datetime | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    modified_at: datetime | None = None
    event: Event | None = None
    segment: Segment | None = None
    link: OutlookLink | None = None
    rsvp: Rsvp | None = None

    def __post_init__(self) -> None:
        if self.kind not in _RANK:
            raise ReconcileError(f"unknown action kind {self.kind!r}", event_id=self.event_id)
        for name in ("at", "segment_start", "original_start", "modified_at"):
            require_aware(f"Action.{name}", getattr(self, name))
        object.__setattr__(self, "changes", frozen_map(self.changes))

    @property
    def sort_key(self) -> tuple[Any, ...]:
        def t(value: datetime | None) -> str:
            return iso(value) if value is not None else ""

        rsvp = self.rsvp
        return (
            self.event_id,
            _RANK[self.kind],
            t(self.segment_start or (self.segment.start if self.segment else None)),
            t(self.original_start or (rsvp.original_start if rsvp else None)),
            rsvp.scope if rsvp else "",
            self.outlook_id or (self.link.outlook_id if self.link else ""),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary for a dry run: kind, event_id, rule, reason and the payload."""
        out: dict[str, Any] = {"kind": self.kind, "event_id": self.event_id, "rule": self.rule, "reason": self.reason}
        if self.outlook_id:
            out["outlook_id"] = self.outlook_id
        for name in ("segment_start", "original_start", "modified_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = iso(value)
        if self.changes:
            out["changes"] = {k: field_to_json(k, v) for k, v in self.changes.items()}
        if self.event is not None:
            out["title"] = self.event.title
            out["meeting_uid"] = self.event.meeting_uid
            out["segments"] = [_segment_json(s) for s in self.event.segments]
        if self.segment is not None:
            out["segment"] = _segment_json(self.segment)
        if self.link is not None:
            out["link"] = {
                "outlook_id": self.link.outlook_id,
                "kind": self.link.kind,
                "segment_start": iso(self.link.segment_start) if self.link.segment_start else None,
                "content_hash": self.link.content_hash,
                "evidence": self.link.evidence,
            }
        if self.rsvp is not None:
            out["rsvp"] = {
                "user_id": self.rsvp.user_id,
                "scope": self.rsvp.scope,
                "response": self.rsvp.response,
                "original_start": iso(self.rsvp.original_start) if self.rsvp.original_start else None,
            }
        return out


def _segment_json(seg: Segment) -> dict[str, Any]:
    return {name: field_to_json(name, seg.value(name)) for name in _SEGMENT_FIELDS}


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered actions of one user's inbound sync, and whether it is held (STYLE rule 6).

    ``notes`` are things the planner chose not to act on (e.g. a series it could not
    expand); they are not actions and do not make the plan non-empty.
    """

    user_id: str
    actions: tuple[Action, ...] = ()
    held: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.actions

    def by_event(self) -> Mapping[str, tuple[Action, ...]]:
        """Actions grouped by event id, in plan order."""
        grouped: dict[str, list[Action]] = {}
        for action in self.actions:
            grouped.setdefault(action.event_id, []).append(action)
        return frozen_map({k: tuple(v) for k, v in grouped.items()})

    def to_json(self) -> list[dict[str, Any]]:
        """The dry-run listing: one dict per action (kind, event_id, rule, reason, ...)."""
        return [a.to_json() for a in self.actions]


def _replace_segment(event: Event, start: datetime, new: Segment | None) -> tuple[Segment, ...]:
    segments = [s for s in event.segments if s.start != start]
    if len(segments) == len(event.segments):
        raise ReconcileError(f"no segment starts at {iso(start)}", event_id=event.id)
    if new is not None:
        segments.append(new)
    return tuple(sorted(segments, key=lambda s: s.start))


def _apply_one(event: Event | None, action: Action) -> Event | None:
    """One action on one event (None: the event does not exist / no longer exists)."""
    kind = action.kind
    if kind == "create_event":
        if event is not None:
            raise ReconcileError("create_event for an existing event", event_id=action.event_id)
        assert action.event is not None
        return action.event
    if event is None:
        if kind in ("link", "unlink", "delete_event"):
            return None
        raise ReconcileError(f"{kind} on a missing event", event_id=action.event_id)
    stamp = {"updated_at": action.at} if action.at is not None else {}
    if kind == "add_segment":
        assert action.segment is not None
        segments = tuple(sorted((*event.segments, action.segment), key=lambda s: s.start))
        return replace(event, segments=segments, **stamp)
    if kind == "update_segment":
        assert action.segment_start is not None
        old = next((s for s in event.segments if s.start == action.segment_start), None)
        if old is None:
            raise ReconcileError(f"no segment starts at {iso(action.segment_start)}", event_id=event.id)
        new = replace(old, **dict(action.changes))
        return replace(event, segments=_replace_segment(event, old.start, new), **stamp)
    if kind == "remove_segment":
        assert action.segment_start is not None
        # the segment's own instances go with it (A1: the rest of the event stays)
        start = action.segment_start

        def mine(key: datetime) -> bool:
            return event.segment_for(key).start == start and (key >= start or start == event.segments[0].start)

        return replace(event, segments=_replace_segment(event, start, None),
                       exceptions={k: v for k, v in event.exceptions.items() if not mine(k)},
                       deleted=frozenset(k for k in event.deleted if not mine(k)), **stamp)
    if kind == "set_exception":
        assert action.original_start is not None and action.modified_at is not None
        exceptions = dict(event.exceptions)
        exceptions[action.original_start] = InstanceException(
            action.original_start, dict(action.changes), action.modified_at, "outlook")
        return replace(event, exceptions=exceptions, **stamp)
    if kind == "remove_exception":
        exceptions = {k: v for k, v in event.exceptions.items() if k != action.original_start}
        return replace(event, exceptions=exceptions, **stamp)
    if kind == "delete_instance":
        assert action.original_start is not None
        exceptions = {k: v for k, v in event.exceptions.items() if k != action.original_start}
        return replace(event, exceptions=exceptions, deleted=event.deleted | {action.original_start}, **stamp)
    if kind == "forget_deleted":
        return replace(event, deleted=event.deleted - {action.original_start}, **stamp)
    if kind == "set_rsvp":
        assert action.rsvp is not None
        rsvps = tuple(r for r in event.rsvps if r.key != action.rsvp.key) + (action.rsvp,)
        return replace(event, rsvps=rsvps, **stamp)
    if kind == "remove_rsvp":
        assert action.rsvp is not None
        return replace(event, rsvps=tuple(r for r in event.rsvps if r.key != action.rsvp.key), **stamp)
    if kind in ("link", "unlink"):
        return event
    if kind == "delete_event":
        return None
    raise ReconcileError(f"unknown action kind {kind!r}", event_id=action.event_id)


def apply_plan(state: UserState, plan: Plan) -> UserState:
    """The state after the plan: events and this user's links (pure; the plan's truth).

    Raises:
        ReconcileError: the plan is for another user or does not fit the state (an
            action on a missing event or segment); ModelError: it would build an
            inconsistent event.
    """
    if plan.user_id != state.user_id:
        raise ReconcileError(f"plan for {plan.user_id} applied to {state.user_id}", user_id=state.user_id)
    events: dict[str, Event] = dict(state.events)
    links: dict[str, OutlookLink] = dict(state.links)
    for action in plan.actions:
        before = events.get(action.event_id)
        after = _apply_one(before, action)
        if after is None:
            events.pop(action.event_id, None)
        else:
            events[action.event_id] = after
        if action.kind == "link":
            assert action.link is not None
            links[action.link.outlook_id] = action.link
        elif action.kind == "unlink":
            links.pop(action.outlook_id, None)
        elif action.kind == "delete_event":
            links = {k: v for k, v in links.items() if v.event_id != action.event_id}
    return UserState(user_id=state.user_id, events=events, links=links)
