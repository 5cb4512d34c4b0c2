"""Inbound reconciliation: one user's Outlook snapshot against Communifire's state, as a plan.

Owns: ``plan_inbound`` (pure: state + snapshot + now -> ``Plan``) and ``apply_plan``
(pure: state + plan -> new state). ``apply_plan`` is the single source of truth of what
a plan does: the shell persists the difference between ``state`` and
``apply_plan(state, plan)``.

Invariants:
- plan first, then act (STYLE rule 1): planning reads only its arguments; every action
  names the SPEC rule that caused it and a one-line reason; actions are ordered
  deterministically (by event, then phase, then key);
- idempotence: a converged state plans nothing; convergence:
  ``plan_inbound(apply_plan(s, p), snap)`` is empty for ``p = plan_inbound(s, snap)``;
- "changed" means the normalized content hash changed against the link's last synced
  snapshot (STYLE rule 5): a new changeKey alone, or our own write coming back, plans
  nothing (rule A9); a re-sent series causes work only for what differs (rule D1);
- Outlook's series splits never split a Communifire event (rules A1, A2): a new Outlook
  series that takes over a cut series becomes a child segment of the same event;
- an instance is keyed by its original start in UTC (rule D2); a deleted instance is
  found only by its absence, never at the window's edges or beyond a range cut (D3, O7);
- timestamps written into the state are whole seconds (Table Storage's precision), so
  a stored and reloaded state plans exactly like the in-memory one;
- a plan that would empty or mostly delete a user's calendar is *held* (STYLE rule 6):
  it is still returned, with ``held`` saying why it must not be applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping

from core.plan.model import (
    FIELDS,
    TIME_FIELDS,
    Event,
    InstanceException,
    ModelError,
    OutlookLink,
    Rsvp,
    Segment,
    UserState,
    frozen_map,
    require_aware,
)
from core.plan.outlook_items import (
    OutlookItem,
    OutlookSeries,
    OutlookSnapshot,
    content_hash,
    content_of,
    field_to_json,
    instance_uid_parts,
    iso,
    recurrence_from_json,
    recurrence_to_json,
)
from core.plan.recurrence import Recurrence, RecurrenceError, expand, last_occurrence, occurrence_dates, restart_from
from core.plan.timezones import UTC, TimeZoneError, resolve_zone

__all__ = [
    "ACTION_KINDS",
    "Action",
    "Plan",
    "ReconcileError",
    "SafetyPolicy",
    "apply_plan",
    "default_new_id",
    "plan_inbound",
]

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
_SERIES_TIME_FIELDS = frozenset(TIME_FIELDS | {"recurrence"})
_ANSWERS = frozenset({"accepted", "tentative", "declined"})
_ID_NAMESPACE = uuid.UUID("0b7f3c9e-5d4a-4e61-9c8f-2a1d6e5b7c30")
_MIN = datetime.min.replace(tzinfo=UTC)


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


# --------------------------------------------------------------------------- values


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


def default_new_id(user_id: str) -> Callable[[str], str]:
    """Deterministic ids for events born in Outlook: uuid5 of the seed, which names the
    meeting (its iCalUId, the same for every user's copy) or else the user's item."""

    def make(seed: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, seed))

    return make


# --------------------------------------------------------------------------- apply


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


# --------------------------------------------------------------------------- helpers


def _zone(name: str) -> Any:
    try:
        return resolve_zone(name, fallback="UTC")
    except TimeZoneError:
        return UTC


def _segment_of(item: OutlookItem) -> Segment:
    return Segment(
        start=item.start, end=item.end, title=item.title, body=item.body, location=item.location,
        is_all_day=item.is_all_day, time_zone=item.time_zone, recurrence=item.recurrence,
        attendees=item.attendees,
    )


def _instance_on(event: Event, day: date) -> datetime | None:
    """The original start of the event's instance on a local date (its segment's zone)."""
    for seg in reversed(event.segments):
        if seg.recurrence is None:
            continue
        zone = _zone(seg.time_zone)
        lo = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        for start in expand(seg.recurrence, seg.start, seg.end - seg.start, lo, lo + timedelta(days=3),
                            is_all_day=seg.is_all_day):
            if start >= seg.start and start.astimezone(zone).date() == day:
                return start
    return None


def _norm_title(text: str) -> str:
    return " ".join(text.split()).casefold()


def _period(rec: Recurrence) -> timedelta:
    """Roughly one step of the pattern (a tolerance for 'takes over from there', A2)."""
    step = {"daily": 1, "weekly": 7, "absoluteMonthly": 31, "relativeMonthly": 31}.get(rec.pattern.type, 366)
    return timedelta(days=step * rec.pattern.interval)


def _link_for(item: OutlookItem, user_id: str, event_id: str, kind: str, *, segment_start: datetime | None,
              instance_start: datetime | None = None, evidence: str = "",
              extra: Mapping[str, Any] | None = None) -> OutlookLink:
    snapshot = content_of(item)
    if extra:
        snapshot.update(extra)
    return OutlookLink(
        user_id=user_id, outlook_id=item.id, event_id=event_id, kind=kind, content_hash=content_hash(item),
        snapshot=snapshot, segment_start=segment_start, instance_start=instance_start,
        change_key=item.change_key, ical_uid=item.ical_uid,
        last_modified=_sec(item.last_modified) if item.last_modified else None, evidence=evidence,
    )


def _snapshot_time(link: OutlookLink, name: str) -> datetime | None:
    value = link.snapshot.get(name)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _SeriesView:
    """What the planner needs to know of one series: its recurrence anchored in its zone."""

    recurrence: Recurrence
    first_start: datetime  # aware, in the series' own zone
    duration: timedelta
    is_all_day: bool
    zone: Any

    @classmethod
    def of_item(cls, item: OutlookItem) -> "_SeriesView | None":
        if item.recurrence is None:
            return None
        zone = _zone(item.time_zone)
        return cls(item.recurrence, item.start.astimezone(zone), item.duration, item.is_all_day, zone)

    @classmethod
    def of_snapshot(cls, link: OutlookLink, key: str = "recurrence") -> "_SeriesView | None":
        """The series as the link's snapshot has it (``key="_cut_from"``: before its cut, O2)."""
        snap = link.snapshot
        if key == "_cut_from":
            return cls.of_parts(snap.get("_cut_from"), snap.get("_cut_start") or snap.get("start"),
                                snap.get("_cut_end") or snap.get("end"), snap.get("time_zone"), snap.get("is_all_day"))
        return cls.of_parts(snap.get(key), snap.get("start"), snap.get("end"), snap.get("time_zone"),
                            snap.get("is_all_day"))

    @classmethod
    def of_parts(cls, rec_json: Any, start_text: Any, end_text: Any, zone_name: Any,
                 all_day: Any) -> "_SeriesView | None":
        try:
            rec = recurrence_from_json(rec_json) if isinstance(rec_json, Mapping) else None
            start = datetime.fromisoformat(str(start_text).replace("Z", "+00:00")).astimezone(UTC)
            end = datetime.fromisoformat(str(end_text).replace("Z", "+00:00")).astimezone(UTC)
        except (RecurrenceError, KeyError, TypeError, ValueError):
            return None
        if rec is None:
            return None
        zone = _zone(str(zone_name or "UTC"))
        return cls(rec, start.astimezone(zone), end - start, bool(all_day), zone)

    def expand(self, start: datetime, end: datetime) -> tuple[datetime, ...]:
        return expand(self.recurrence, self.first_start, self.duration, start, end, is_all_day=self.is_all_day)

    def last(self) -> datetime | None:
        return last_occurrence(self.recurrence, self.first_start, is_all_day=self.is_all_day)

    def local_date(self, value: datetime) -> date:
        return value.astimezone(self.zone).date()


def _overlaps_window(link: OutlookLink, start: datetime, end: datetime) -> bool:
    """Whether the item as last synced touched the window (unknown: assume it did)."""
    if link.kind == "series" or link.snapshot.get("recurrence"):
        view = _SeriesView.of_snapshot(link)
        if view is None:
            return True
        try:
            return bool(view.expand(start, end))
        except RecurrenceError:
            return True
    s, e = _snapshot_time(link, "start"), _snapshot_time(link, "end")
    if s is None or e is None:
        return True
    return s <= end and e >= start


# --------------------------------------------------------------------------- planner


class _Planner:
    """Builds one plan. Internal, and pure: it reads its inputs and collects actions."""

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

    # -- emitting ---------------------------------------------------------------------

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

    # -- the run ----------------------------------------------------------------------

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

    # -- deletions of whole items -------------------------------------------------------

    def plan_gone(self, gone: list[OutlookLink]) -> None:
        by_event: dict[str, list[OutlookLink]] = {}
        for link in gone:
            by_event.setdefault(link.event_id, []).append(link)
        for event_id, links in sorted(by_event.items()):
            event = self.events.get(event_id)
            if event is None:
                for link in links:
                    self.emit("unlink", event_id, "A9", f"Outlook item {link.outlook_id} is gone and its event is not loaded",
                              outlook_id=link.outlook_id)
                continue
            organizer_links = [l for l in links if l.snapshot.get("is_organizer") is True and l.kind != "instance"
                               and not l.evidence.startswith("A7")]
            other_links = [l for l in links if l not in organizer_links]
            removed_starts = set()
            for link in organizer_links:
                seg = self._segment_for_link(event, link)
                if seg is not None:
                    removed_starts.add(seg.start)
            if organizer_links and removed_starts >= {s.start for s in event.segments}:
                # scenario: the organizer deleted the whole event in Outlook
                self.emit("delete_event", event_id, "C2",
                          f"the organizer deleted '{event.title}' in Outlook ({len(organizer_links)} item(s) gone)")
                self.gone_events.add(event_id)
                continue
            for start in sorted(removed_starts):
                # scenario: the organizer deleted a child series; its instances go, the event stays (A1)
                self.emit("remove_segment", event_id, "A1",
                          f"Outlook series for the part from {iso(start)} was deleted; the rest of the event stays",
                          segment_start=start)
            for link in organizer_links:
                self.emit("unlink", event_id, "A1", f"Outlook item {link.outlook_id} was deleted", outlook_id=link.outlook_id)
            for link in other_links:
                # scenario: an attendee's copy disappeared: they declined or were removed
                self.emit("unlink", event_id, "A7",
                          f"{self.user}'s copy {link.outlook_id} is gone: attendee declined or was removed",
                          outlook_id=link.outlook_id)
            remaining = [l for l in self.links.values() if l.event_id == event_id]
            if not remaining:
                self.gone_events.add(event_id)
                event = self.events.get(event_id)
                for r in (event.rsvps if event else ()):
                    if r.user_id == self.user:
                        self.emit("remove_rsvp", event_id, "C4", f"{self.user} no longer has the event in Outlook", rsvp=r)
            else:
                event = self.events.get(event_id)
                for link in other_links:
                    if link.kind == "instance" and link.instance_start is not None and event is not None:
                        for r in event.rsvps:
                            if r.user_id == self.user and r.original_start == link.instance_start:
                                self.emit("remove_rsvp", event_id, "C5",
                                          f"{self.user}'s single-instance copy is gone", rsvp=r)

    def _segment_for_link(self, event: Event, link: OutlookLink) -> Segment | None:
        if link.kind == "single" or link.segment_start is None:
            return event.segments[0]
        exact = next((s for s in event.segments if s.start == link.segment_start), None)
        return exact or event.segment_for(link.segment_start)

    @staticmethod
    def _authoritative(link: OutlookLink, item: OutlookItem) -> bool:
        """Whether this copy's content changes change the event (A7: one name per meeting)."""
        return item.is_organizer or not link.evidence.startswith("A7")

    # -- linked items -----------------------------------------------------------------

    def _changed_fields(self, link: OutlookLink, item: OutlookItem, seg: Segment) -> list[str]:
        """The fields that changed in Outlook since the last sync (vs the snapshot)."""
        new = content_of(item)
        if not link.snapshot:
            # no snapshot kept: everything that differs from the segment counts as changed
            return [f for f in _SEGMENT_FIELDS if item.value(f) != seg.value(f)]
        return [f for f in _SEGMENT_FIELDS if new[f] != link.snapshot.get(f)]

    def plan_linked_single(self, link: OutlookLink, item: OutlookItem) -> None:
        event = self.events[link.event_id]
        if content_hash(item) != link.content_hash:
            seg = self._segment_for_link(event, link) or event.segments[0]
            if link.kind == "instance" or not self._authoritative(link, item):
                # scenario: an attendee's copy changed; Communifire's name and times stay (A7)
                self.emit("link", event.id, "A7",
                          f"{self.user}'s copy changed in Outlook; the event keeps Communifire's values",
                          link=replace(_link_for(item, self.user, event.id, link.kind, segment_start=link.segment_start,
                                                 instance_start=link.instance_start), evidence=link.evidence))
            else:
                changed = self._changed_fields(link, item, seg)
                changes = {f: item.value(f) for f in changed if seg.value(f) != item.value(f)}
                if changes:
                    # scenario: the single event was edited in Outlook
                    self.emit("update_segment", event.id, "D1",
                              f"changed in Outlook: {', '.join(sorted(changes))}",
                              segment_start=seg.start, changes=changes)
                self.emit("link", event.id, "A9", "record the synced snapshot so the change does not echo",
                          link=_link_for(item, self.user, event.id, "single", segment_start=None, evidence=link.evidence))
        self.rsvp_jobs.append((event.id, item))

    def plan_linked_series(self, link: OutlookLink, series: OutlookSeries) -> None:
        event = self.events[link.event_id]
        master = series.master
        seg = self._segment_for_link(event, link) or event.segments[0]
        authoritative = self._authoritative(link, master)
        changed_master = content_hash(master) != link.content_hash
        time_changed = False
        if changed_master:
            changed = self._changed_fields(link, master, seg)
            time_changed = bool(set(changed) & _SERIES_TIME_FIELDS)
            extra = self._cut_evidence(link, master)
            if not authoritative:
                # scenario: an attendee's copy of the series changed; the event keeps its values (A7)
                self.emit("link", event.id, "A7",
                          f"{self.user}'s copy of the series changed in Outlook; the event keeps Communifire's values",
                          link=replace(_link_for(master, self.user, event.id, "series", segment_start=master.start,
                                                 extra=extra), evidence=link.evidence))
            else:
                changes = {f: master.value(f) for f in changed if seg.value(f) != master.value(f)}
                if "start" in changes and any(s.start == master.start for s in event.segments if s is not seg):
                    changes.pop("start")
                    self.notes.append(f"series {master.id}: its new start collides with another segment; start kept")
                if changes and set(changes) == {"recurrence"} and extra.get("_cut_from") \
                        and not link.snapshot.get("_cut_from"):
                    # scenario: "this and all following" in Outlook ended this series early (O2)
                    self.emit("update_segment", event.id, "O2",
                              "the series' range was cut short in Outlook (this and all following)",
                              segment_start=seg.start, changes=changes)
                elif changes:
                    child = seg is not event.segments[0]
                    # scenario: the series (or one child of a split series) was edited in Outlook
                    self.emit("update_segment", event.id, "A4" if child else "D1",
                              ("the child series changed in Outlook (only its instances): " if child
                               else "the series changed in Outlook: ") + ", ".join(sorted(changes)),
                              segment_start=seg.start, changes=changes)
                self.emit("link", event.id, "A9", "record the synced snapshot so the change does not echo",
                          link=_link_for(master, self.user, event.id, "series",
                                         segment_start=changes.get("start", seg.start), evidence=link.evidence,
                                         extra=extra))
        self.jobs.append((event.id, link.outlook_id, series, authoritative, changed_master and time_changed))
        self.rsvp_jobs.append((event.id, master))

    def _cut_evidence(self, link: OutlookLink, master: OutlookItem) -> dict[str, Any]:
        """``{"_cut_from": previous recurrence}`` when the master's range was cut short (O2)."""
        old = _SeriesView.of_snapshot(link)
        new = _SeriesView.of_item(master)
        if old is None or new is None:
            return {}
        try:
            new_last, old_last = new.last(), old.last()
        except RecurrenceError:
            return {}
        if new_last is not None and (old_last is None or new.local_date(old_last) > new.local_date(new_last)):
            return {"_cut_from": link.snapshot.get("_cut_from") or link.snapshot.get("recurrence"),
                    "_cut_start": link.snapshot.get("start"), "_cut_end": link.snapshot.get("end")}
        if link.snapshot.get("_cut_from"):
            return {k: link.snapshot.get(k) for k in ("_cut_from", "_cut_start", "_cut_end")}
        return {}

    # -- instances of one series (D2, D3, O5, O7) --------------------------------------

    def plan_instances(self, event_id: str, master_id: str, series: OutlookSeries, *, authoritative: bool,
                       reset: bool) -> None:
        event = self.events.get(event_id)
        if event is None:
            return
        master = series.master
        view = _SeriesView.of_item(master)
        window = self.snap.window
        seg_start = self.links[master_id].segment_start if master_id in self.links else master.start
        seg = next((s for s in event.segments if s.start == seg_start), None) or event.segment_for(master.start)
        try:
            expected = set(view.expand(window.start, window.end)) if view else set()
        except RecurrenceError as exc:
            self.notes.append(f"series {master.id}: cannot expand its recurrence ({exc}); deleted instances not checked")
            expected, view = set(), None
        duration = master.duration
        instances = dict(series.instances)
        if view is not None and master.is_all_day:
            instances = self._snap_all_day(instances, expected, view)

        def covered(key: datetime) -> bool:
            return event.segment_for(key).start == seg.start

        def inside(key: datetime) -> bool:
            # strictly inside the window: the edges are never mistaken for deletions (D3)
            return key > window.start and key + duration < window.end

        keys = set(expected) | set(instances)
        keys |= {k for k in event.exceptions if window.start <= k <= window.end}
        keys |= {k for k in event.deleted if window.start <= k <= window.end}
        for key in sorted(keys):
            if not covered(key):
                continue
            inst = instances.get(key)
            if inst is not None and inst.is_cancelled:
                inst = None
            current = event.exceptions.get(key)
            is_deleted = key in event.deleted
            if inst is not None:
                if not authoritative:
                    continue  # an attendee's copy never changes the meeting's instances (A7)
                if is_deleted:
                    continue  # never undelete: Communifire's delete is on its way to Outlook
                changes = _exception_changes(inst, master, key) if inst.type == "exception" else {}
                modified = _sec(inst.last_modified or master.last_modified or self.now)
                if changes:
                    if current is None:
                        # scenario: one instance was changed in Outlook (an exception, D2)
                        self.emit("set_exception", event_id, "D2",
                                  f"instance {iso(key)} changed in Outlook: {', '.join(sorted(changes))}",
                                  original_start=key, changes=changes, modified_at=modified)
                    elif dict(current.changes) != changes and modified > current.modified_at:
                        # scenario: both sides changed the instance; Outlook's change is newer (D2)
                        self.emit("set_exception", event_id, "D2",
                                  f"instance {iso(key)} changed in Outlook after Communifire's change: "
                                  f"{', '.join(sorted(changes))}",
                                  original_start=key, changes=changes, modified_at=modified)
                elif current is not None:
                    if inst.type == "exception" and modified > current.modified_at:
                        # scenario: the instance was edited back to match its series in Outlook (D2)
                        self.emit("remove_exception", event_id, "D2",
                                  f"instance {iso(key)} matches its series again in Outlook", original_start=key)
                    elif reset and _sec(master.last_modified or self.now) > current.modified_at:
                        # scenario: the series' time changed in Outlook, which resets exceptions (O5)
                        self.emit("remove_exception", event_id, "O5",
                                  f"the series' time changed in Outlook, which reset instance {iso(key)}",
                                  original_start=key)
                continue
            if key in expected:
                if not inside(key):
                    continue  # at the window's edge: absence proves nothing (D3)
                if series.cancelled is not None and view is not None and not (
                        view.local_date(key) in series.cancelled or key.date() in series.cancelled):
                    self.notes.append(f"series {master.id}: instance {iso(key)} missing but not in cancelledOccurrences")
                    continue
                if authoritative:
                    if not is_deleted:
                        # scenario: an occurrence was deleted in Outlook; only its absence shows it (D3, O7)
                        self.emit("delete_instance", event_id, "D3",
                                  f"instance {iso(key)} is missing from Outlook's occurrences (deleted there, O7)",
                                  original_start=key)
                else:
                    self._decline_instance(event_id, key, master)
                continue
            # not an occurrence of the series as Outlook now has it: a slot that moved away
            if authoritative and reset and view is not None:
                if current is not None:
                    # scenario: the series moved or was cut in Outlook; this exception's slot is gone (O2, O5)
                    self.emit("remove_exception", event_id, "O5",
                              f"instance {iso(key)} no longer exists in the series as Outlook has it",
                              original_start=key)
                if is_deleted:
                    self.emit("forget_deleted", event_id, "O5",
                              f"deleted slot {iso(key)} no longer exists in the series as Outlook has it",
                              original_start=key)
        self.plan_instance_rsvps(event_id, master, instances)

    @staticmethod
    def _snap_all_day(instances: Mapping[datetime, OutlookItem], expected: set[datetime],
                      view: _SeriesView) -> dict[datetime, OutlookItem]:
        """All-day keys: match Graph's originalStart to the expanded slot by date."""
        by_date = {view.local_date(e): e for e in expected}
        out = {}
        for key, inst in instances.items():
            target = key if key in expected else by_date.get(view.local_date(key)) or by_date.get(key.date()) or key
            out[target] = inst
        return out

    # -- RSVPs (C4, A5) ---------------------------------------------------------------

    def _rsvp(self, event_id: str, scope: str, start: datetime | None) -> Rsvp | None:
        event = self.events.get(event_id)
        if event is None:
            return None
        return next((r for r in event.rsvps if r.key == (self.user, scope, start)), None)

    def _answer(self, event_id: str, item: OutlookItem, scope: str, key: datetime | None, rule: str,
                what: str) -> datetime | None:
        """Record the mailbox owner's answer as an RSVP unless a newer one stands; returns its time."""
        if item.is_organizer or item.response not in _ANSWERS:
            return None
        at = _sec(item.response_time or item.last_modified or self.now)
        existing = self._rsvp(event_id, scope, key)
        if existing is None or (existing.response != item.response and at > existing.at):
            self.emit("set_rsvp", event_id, rule, f"{self.user} answered '{item.response}' to {what} in Outlook",
                      rsvp=Rsvp(self.user, scope, item.response, at, key))
        return at

    def plan_all_rsvp(self, event_id: str, item: OutlookItem) -> None:
        # scenario: the user answered the whole event/series in Outlook (C4)
        at = self._answer(event_id, item, "all", None, "C4", "all instances")
        if at is None:
            return
        event = self.events.get(event_id)
        for r in (event.rsvps if event else ()):
            if r.user_id == self.user and r.scope == "following" and r.at <= at:
                # scenario: a 'from this point forward' RSVP came back as an all-instances one (A5)
                self.emit("remove_rsvp", event_id, "A5",
                          "Outlook answers all instances; the 'from this point' RSVP became an all-instances RSVP",
                          rsvp=r)

    def plan_instance_rsvps(self, event_id: str, master: OutlookItem, instances: Mapping[datetime, OutlookItem]) -> None:
        if master.is_organizer:
            return
        for key, inst in sorted(instances.items()):
            if inst.bare or inst.is_organizer:
                continue
            existing = self._rsvp(event_id, "single", key)
            at = _sec(inst.response_time or inst.last_modified or self.now)
            if inst.response in _ANSWERS and inst.response != master.response:
                if existing is None or (existing.response != inst.response and at > existing.at):
                    # scenario: the user answered one instance in Outlook (C4)
                    self.emit("set_rsvp", event_id, "C4",
                              f"{self.user} answered '{inst.response}' to the instance {iso(key)} in Outlook",
                              rsvp=Rsvp(self.user, "single", inst.response, at, key))
            elif existing is not None and inst.response_time is not None and at > existing.at \
                    and existing.response != master.response:
                # scenario: the instance follows the series' answer again in Outlook (C4)
                self.emit("remove_rsvp", event_id, "C4",
                          f"the instance {iso(key)} follows the series' answer again in Outlook", rsvp=existing)

    def _decline_instance(self, event_id: str, key: datetime, master: OutlookItem) -> None:
        event = self.events.get(event_id)
        if event is None or key in event.deleted:
            return
        existing = self._rsvp(event_id, "single", key)
        if existing is not None and existing.response == "declined":
            return
        # scenario: an attendee deleted one occurrence from their calendar: a declined instance (C4, D3)
        self.emit("set_rsvp", event_id, "D3",
                  f"{self.user} removed the instance {iso(key)} from their Outlook calendar",
                  rsvp=Rsvp(self.user, "single", "declined", _sec(master.last_modified or self.now), key))

    # -- new items --------------------------------------------------------------------

    def plan_new(self, ids: list[str]) -> None:
        singles = [self.snap.singles[i] for i in ids if i in self.snap.singles]
        masters = sorted((self.snap.series[i] for i in ids if i in self.snap.series),
                         key=lambda s: (s.master.start, s.master.id))
        for item in singles:
            if item.is_cancelled:
                continue
            if self.adopt(item, None):
                continue
            self.create(item, None)
        for series in masters:
            if series.master.is_cancelled:
                continue
            if self.adopt(series.master, series):
                continue
            if self.split_child(series):
                continue
            self.create(series.master, series)

    def _linked_event_ids(self) -> set[str]:
        return {l.event_id for l in self.links.values()}

    def adopt(self, item: OutlookItem, series: OutlookSeries | None) -> bool:
        """Link an item to an event it already stands for (A9 stamp, A7 meeting)."""
        kind = "series" if series is not None else "single"
        if item.app_event_id:
            event = self.events.get(item.app_event_id)
            if event is None:
                # our own write whose event is not in this user's state: leave it to the outbound side (A9)
                self.notes.append(f"item {item.id} carries event id {item.app_event_id}, which is not loaded; skipped")
                return True
            seg = next((s for s in event.segments if s.start == item.start), event.segments[0])
            # scenario: an item this app wrote, whose link was lost: re-found by its stamp (A9)
            self.emit("link", event.id, "A9", f"Outlook item {item.id} carries this event's id (written by this app)",
                      link=_link_for(item, self.user, event.id, kind,
                                     segment_start=seg.start if kind == "series" else None,
                                     evidence=f"A9: stamped with Communifire event id {event.id}"))
            self._after_adopt(event.id, item, series)
            return True
        if not item.ical_uid:
            return False
        mine = self._linked_event_ids()
        for event in sorted(self.events.values(), key=lambda e: e.id):
            if event.meeting_uid != item.ical_uid or event.id in mine:
                continue
            if series is not None and item.is_organizer and not event.is_series:
                self._take_over_provisional(event, item)
                self._after_adopt(event.id, item, series)
                return True
            seg = next((s for s in event.segments if s.start == item.start), event.segments[0])
            # scenario: another user's copy of this meeting is already synced: one event per meeting (A7)
            self.emit("link", event.id, "A7",
                      f"'{item.title}' is the meeting '{event.title}' already in Communifire; {self.user} is linked",
                      link=_link_for(item, self.user, event.id, kind,
                                     segment_start=seg.start if kind == "series" else None,
                                     evidence=f"A7: iCalUId {item.ical_uid} matches event {event.id}"))
            self._after_adopt(event.id, item, series)
            return True
        return self.adopt_instance_copy(item) if series is None else False

    def _take_over_provisional(self, event: Event, master: OutlookItem) -> None:
        """The organizer's series reaches an event that an invitee's one-instance copy
        made first (C5): the event takes the series' pattern and fields; one event (A7)."""
        old = event.segments[0]
        new = _segment_of(master)
        changes = {f: new.value(f) for f in (*FIELDS, "recurrence") if old.value(f) != new.value(f)}
        # scenario: invitee synced a one-instance invitation before the organizer's series
        self.emit("update_segment", event.id, "A7",
                  f"the organizer's series '{master.title}' is the meeting this event was made for "
                  f"from a one-instance invitation; it takes the series' pattern", segment_start=old.start,
                  changes=changes)
        self.emit("link", event.id, "A7", f"'{master.title}' (organizer's series) is linked to the meeting's event",
                  link=_link_for(master, self.user, event.id, "series", segment_start=new.start,
                                 evidence=f"A7: series iCalUId {master.ical_uid} named by a one-instance invitation"))

    def adopt_instance_copy(self, item: OutlookItem) -> bool:
        """A one-instance invitation from another user's series: a link, not a new event."""
        parts = instance_uid_parts(item.ical_uid)
        if parts is None or item.is_organizer:
            return False
        series_uid, day = parts
        mine = self._linked_event_ids()
        event = next((e for e in sorted(self.events.values(), key=lambda e: e.id)
                      if e.meeting_uid == series_uid and e.id not in mine), None)
        if event is None:
            return self.create_provisional(item, series_uid, day)
        key = _instance_on(event, day) or _sec(item.start)
        # scenario: invited to one instance of a series (C5), or left with a single-instance
        # copy after the organizer changed the series time (O5): the same Communifire event,
        # under its one name (A7), with an RSVP for that instance only
        self.emit("link", event.id, "C5",
                  f"'{item.title}' is the {day} instance of '{event.title}'; {self.user} is linked to that instance",
                  link=_link_for(item, self.user, event.id, "instance", segment_start=None, instance_start=key,
                                 evidence=f"C5/A7: iCalUId names instance {day} of series {series_uid}"))
        self.rsvp_jobs.append((event.id, item))
        return True

    def create_provisional(self, item: OutlookItem, series_uid: str, day: date) -> bool:
        """An invitation to one instance of a series not synced yet: the meeting's event,
        under the series' identity, so the organizer's series joins it later (C5, A7)."""
        event_id = self.new_id(f"meeting/{series_uid}")
        if event_id in self.events:
            return False
        event = Event(id=event_id, organizer=item.organizer, segments=(_segment_of(item),),
                      meeting_uid=series_uid, updated_at=self.now)
        # scenario: invited to one instance of a series this app has not seen yet (C5)
        self.emit("create_event", event_id, "C5",
                  f"'{item.title}' is one instance ({day}) of a series not synced yet; it becomes the meeting's event",
                  event=event)
        self.emit("link", event_id, "C5", f"{self.user} is linked to the instance of {day}",
                  link=_link_for(item, self.user, event_id, "instance", segment_start=None,
                                 instance_start=_sec(item.start),
                                 evidence=f"C5/A7: iCalUId names instance {day} of series {series_uid}"))
        self.rsvp_jobs.append((event_id, item))
        return True

    def _after_adopt(self, event_id: str, item: OutlookItem, series: OutlookSeries | None) -> None:
        if series is not None:
            link = self.links[item.id]
            self.jobs.append((event_id, item.id, series, self._authoritative(link, item), False))
        self.rsvp_jobs.append((event_id, item))

    def create(self, item: OutlookItem, series: OutlookSeries | None) -> None:
        # One meeting, one id: users whose first syncs run at once plan the same new event,
        # so the second writer's create collides and that user is re-planned onto it (A7).
        event_id = self.new_id(f"meeting/{item.ical_uid}") if item.ical_uid else ""
        if not event_id or event_id in self.events:
            event_id = self.new_id(f"{self.snap.user_id}/{item.id}")
        if event_id in self.events:
            raise ReconcileError(f"new_id gave {event_id} for item {item.id}, which already exists",
                                 user_id=self.user, event_id=event_id)
        event = Event(id=event_id, organizer=item.organizer, segments=(_segment_of(item),),
                      meeting_uid=item.ical_uid, updated_at=self.now)
        what = "series" if series is not None else "event"
        # scenario: a new event/series in Outlook becomes one new Communifire event (C1)
        self.emit("create_event", event_id, "C1", f"new Outlook {what} '{item.title}' becomes a Communifire event",
                  event=event)
        self.emit("link", event_id, "A9", "record the synced snapshot so the new event does not echo",
                  link=_link_for(item, self.user, event_id, "series" if series is not None else "single",
                                 segment_start=item.start if series is not None else None))
        if series is not None:
            self.jobs.append((event_id, item.id, series, True, False))
        self.rsvp_jobs.append((event_id, item))

    # -- A2: a new series that takes over a cut one -----------------------------------

    def split_child(self, series: OutlookSeries) -> bool:
        new = series.master
        new_view = _SeriesView.of_item(new)
        if new_view is None:
            return False
        best: tuple[timedelta, str, OutlookLink, str, dict[str, Any]] | None = None
        for oid, link in sorted(self.links.items()):
            if link.kind != "series" or link.event_id not in self.events or oid == new.id:
                continue
            found = self._takes_over(link, new, new_view)
            if found is None:
                continue
            gap, evidence, parent_extra = found
            if best is None or (gap, oid) < (best[0], best[1]):
                best = (gap, oid, link, evidence, parent_extra)
        if best is None:
            return False
        _, _, parent, evidence, parent_extra = best
        event = self.events[parent.event_id]
        segment = _segment_of(new)
        if any(s.start == segment.start for s in event.segments):
            return False
        # scenario: Outlook's "this and all following" edit: the new series continues the event (A2, O2)
        self.emit("add_segment", event.id, "A2", evidence, segment=segment)
        self.emit("link", event.id, "A2", f"link the new Outlook series {new.id} as a child of the event",
                  link=_link_for(new, self.user, event.id, "series", segment_start=new.start, evidence=evidence,
                                 extra=parent_extra))
        if parent.snapshot.get("_cut_from"):
            # the parent's cut has now been taken over: forget it so it cannot be claimed twice
            snapshot = {k: v for k, v in parent.snapshot.items() if not k.startswith("_cut")}
            self.relink(replace(parent, snapshot=snapshot), "A2",
                        f"the cut of Outlook series {parent.outlook_id} was taken over by {new.id}")
        self.jobs.append((event.id, new.id, series, True, True))
        self.rsvp_jobs.append((event.id, new))
        return True

    def _takes_over(self, link: OutlookLink, new: OutlookItem,
                    new_view: _SeriesView) -> tuple[timedelta, str, dict[str, Any]] | None:
        """The A2 test of a new series against one linked series (None: no match)."""
        event = self.events[link.event_id]
        current_item = self.snap.series[link.outlook_id].master if link.outlook_id in self.snap.series else None
        cur = _SeriesView.of_item(current_item) if current_item is not None else _SeriesView.of_snapshot(link)
        if cur is None:
            return None
        seg = self._segment_for_link(event, link)
        # (a) same subject
        titles = {_norm_title(str(link.snapshot.get("title") or ""))}
        synced = self.state.links.get(link.outlook_id)
        if synced is not None:  # the subject as last synced, before any rename in this round
            titles.add(_norm_title(str(synced.snapshot.get("title") or "")))
            synced_event = self.state.events.get(synced.event_id)
            synced_seg = self._segment_for_link(synced_event, synced) if synced_event else None
            if synced_seg is not None:
                titles.add(_norm_title(synced_seg.title))
        if current_item is not None:
            titles.add(_norm_title(current_item.title))
        if seg is not None:
            titles.add(_norm_title(seg.title))
        if _norm_title(new.title) not in titles:
            return None
        # (b) the original is already synced: it is linked (we are iterating links)
        # (c) its range was cut short, and the new series takes over from there
        previous = [v for v in (_SeriesView.of_snapshot(link, "_cut_from"), _SeriesView.of_snapshot(link))
                    if v is not None]
        try:
            cur_last = cur.last()
        except RecurrenceError:
            return None
        if cur_last is None:
            return None
        new_first = new.start
        if new_first <= cur_last:
            return None
        nxt = next((s.start for s in event.segments if seg is not None and s.start > seg.start), None)
        if nxt is not None and nxt <= new_first:
            return None  # a later part of the event already covers that stretch
        for prev in previous:
            try:
                prev_last = prev.last()
            except RecurrenceError:
                continue
            cur_last_day = prev.local_date(cur_last)
            if prev_last is not None and prev.local_date(prev_last) <= cur_last_day:
                continue  # not cut short against this earlier version
            horizon = cur_last_day + _period(prev.recurrence) * 2
            try:
                missing = occurrence_dates(prev.recurrence, start=cur_last_day + timedelta(days=1), until=horizon)
            except RecurrenceError:
                continue
            if not missing:
                continue
            first_missing = missing[0]
            new_day = new_view.local_date(new_first)
            tolerance = _period(prev.recurrence)
            if abs(new_day - first_missing) > tolerance and not (
                    new_day > first_missing
                    and self._gap_taken(prev, first_missing, new_day - tolerance, {new.id, link.outlook_id})):
                continue
            if prev_last is not None and new_day > prev.local_date(prev_last) + tolerance:
                continue
            evidence = (f"A2: same subject '{new.title}'; original Outlook series {link.outlook_id} already synced; "
                        f"its range was cut to end {cur_last_day.isoformat()} (it ran to "
                        f"{prev.local_date(prev_last).isoformat() if prev_last else 'no end'}); "
                        f"new series {new.id} takes over from {new_day.isoformat()}")
            # a chain: the child inherits what is left of the original sequence, so a further
            # split of the child is recognised the same way
            try:
                tail = restart_from(prev.recurrence, new_day)
                extra = {"_cut_from": recurrence_to_json(tail), "_cut_start": iso(new_first),
                         "_cut_end": iso(new_first + prev.duration)} if self._is_cut(new_view, tail, new_first,
                                                                                      prev.duration) else {}
            except RecurrenceError:
                extra = {}
            return abs(new_first - datetime.combine(first_missing, new_first.timetz())), evidence, extra
        return None

    def _gap_taken(self, prev: _SeriesView, first: date, last: date, exclude: set[str]) -> bool:
        """Whether every occurrence of ``prev`` from ``first`` to ``last`` falls within another
        series of this snapshot (the original was split twice in one round: O2, A2)."""
        try:
            days = occurrence_dates(prev.recurrence, start=first, until=last)
        except RecurrenceError:
            return False
        spans = []
        for sid, other in self.snap.series.items():
            view = _SeriesView.of_item(other.master)
            if sid in exclude or view is None:
                continue
            try:
                end = view.last()
            except RecurrenceError:
                continue
            spans.append((view.local_date(other.master.start), view.local_date(end) if end else date.max))
        return bool(days) and all(any(lo <= d <= hi for lo, hi in spans) for d in days)

    @staticmethod
    def _is_cut(new_view: _SeriesView, tail: Recurrence, new_first: datetime, duration: timedelta) -> bool:
        """Whether the new child itself already ends before what is left of the original."""
        try:
            new_last = new_view.last()
            tail_view = _SeriesView(tail, new_first.astimezone(new_view.zone), duration, new_view.is_all_day,
                                    new_view.zone)
            tail_last = tail_view.last()
        except RecurrenceError:
            return False
        return new_last is not None and (tail_last is None or tail_last > new_last)


def _exception_changes(inst: OutlookItem, master: OutlookItem, key: datetime) -> dict[str, Any]:
    """The fields an exception changed, against its series (not just 'it changed': D2, O4)."""
    changes: dict[str, Any] = {}
    if inst.start != key:
        changes["start"] = inst.start
    if inst.end != key + master.duration:
        changes["end"] = inst.end
    if inst.bare:
        return changes
    for name in FIELDS:
        if name in ("start", "end"):
            continue
        if inst.value(name) != master.value(name):
            changes[name] = inst.value(name)
    return changes


# --------------------------------------------------------------------------- safety


def _safety(state: UserState, snap: OutlookSnapshot, planner: _Planner, policy: SafetyPolicy) -> str | None:
    linked_events = {l.event_id for l in state.links.values()}
    if snap.complete and snap.is_empty and linked_events:
        expected = [l for l in state.links.values()
                    if _overlaps_window(l, snap.window.start, snap.window.end)]
        if expected:
            # scenario: Outlook suddenly shows nothing while we have linked events there (STYLE rule 6)
            return (f"Outlook returned an empty window but {len({l.event_id for l in expected})} linked "
                    "event(s) are expected in it; not deleting everything without an administrator")
    removed = planner.gone_events & linked_events
    total = len(linked_events)
    if total >= policy.min_events_for_share_check and total and len(removed) / total > policy.max_delete_share:
        return (f"the plan would delete or unlink {len(removed)} of {total} events "
                f"(more than {policy.max_delete_share:.0%}); an administrator must confirm")
    return None


# --------------------------------------------------------------------------- entry point


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
    held = _safety(state, snapshot, planner, policy)
    return Plan(user_id=state.user_id, actions=actions, held=held, notes=tuple(planner.notes))
