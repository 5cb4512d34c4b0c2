"""Communifire's side of the calendar, as plain values (DESIGN.md, "chain of segments").

Owns: the domain values the sync engine reasons about and the storage layer persists.
Imports no adapter. Invariants:

- every datetime is tz-aware and stored in UTC (constructors reject naive ones);
- an Event is one piece of Communifire content (rule C1, A1): it is never split; an
  Outlook "this and all following" split becomes a new *segment* of the same event;
- segments are ordered by their first instance's original start; a segment covers its
  instances until the next segment starts;
- an instance is keyed by its original start in UTC: Communifire's
  ``InstanceReplaceDate`` and Outlook's ``originalStart`` (rule D2);
- an exception records only the fields that differ from its segment (the engine knows
  *which* fields changed, unlike Outlook: rules O4, A6);
- a link ties one user's Outlook item to the event (and the segment or single
  instance it stands for) with the normalized snapshot last synced (rules A9, D1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

from core.plan.recurrence import Recurrence

#: The event fields the sync compares and copies, in a fixed order.
FIELDS: tuple[str, ...] = (
    "title",
    "body",
    "location",
    "start",
    "end",
    "is_all_day",
    "time_zone",
    "attendees",
)
#: Fields that make an Outlook series reset its exceptions when changed (rule O5).
TIME_FIELDS: frozenset[str] = frozenset({"start", "end", "is_all_day", "time_zone"})

RESPONSES = ("none", "accepted", "tentative", "declined", "organizer")
RSVP_SCOPES = ("single", "all", "following")


class ModelError(ValueError):
    """A domain value was built from inconsistent data."""


def require_aware(name: str, value: datetime | None) -> None:
    """Reject naive datetimes (STYLE rule 12)."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ModelError(f"{name} must be timezone-aware, got naive {value!r}")


def frozen_map(value: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    """A read-only mapping, sorted by key for deterministic iteration."""
    return MappingProxyType(dict(sorted((value or {}).items(), key=lambda kv: str(kv[0]))))


@dataclass(frozen=True, slots=True)
class Attendee:
    """An invitee. ``email`` is lower-cased; ``response`` is one of RESPONSES."""

    email: str
    name: str = ""
    kind: str = "required"
    response: str = "none"

    def __post_init__(self) -> None:
        if self.email != self.email.strip().lower():
            raise ModelError(f"attendee email must be normalized: {self.email!r}")
        if self.response not in RESPONSES:
            raise ModelError(f"unknown attendee response {self.response!r}")


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of an event with its own pattern and fields (rules A1, A2, A4).

    ``start``/``end`` are the first instance's times (UTC); ``recurrence`` is None for a
    single-instance event. ``time_zone`` is the zone the event was made in (IANA or the
    Windows name Outlook gave), used to expand the pattern (DST-correct).
    """

    start: datetime
    end: datetime
    title: str
    body: str = ""
    location: str = ""
    is_all_day: bool = False
    time_zone: str = "UTC"
    recurrence: Recurrence | None = None
    attendees: tuple[Attendee, ...] = ()

    def __post_init__(self) -> None:
        require_aware("Segment.start", self.start)
        require_aware("Segment.end", self.end)
        if self.end < self.start:
            raise ModelError(f"segment ends before it starts: {self.start} > {self.end}")

    def value(self, name: str) -> Any:
        """The segment's value of one of FIELDS."""
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class InstanceException:
    """One instance that differs from its segment (rule D2, O1).

    ``changes`` maps field name (FIELDS) to the instance's own value, for the fields that
    were changed on purpose only. ``modified_at`` is when that change was made (Outlook's
    ``lastModifiedDateTime`` or Communifire's edit time): the newer one wins (D2).
    """

    original_start: datetime
    changes: Mapping[str, Any]
    modified_at: datetime
    source: str = "outlook"

    def __post_init__(self) -> None:
        require_aware("InstanceException.original_start", self.original_start)
        require_aware("InstanceException.modified_at", self.modified_at)
        unknown = set(self.changes) - set(FIELDS)
        if unknown:
            raise ModelError(f"exception changes unknown fields {sorted(unknown)}")
        object.__setattr__(self, "changes", frozen_map(self.changes))


@dataclass(frozen=True, slots=True)
class Rsvp:
    """A user's response to an event (rule C4); ``original_start`` for single/following."""

    user_id: str
    scope: str
    response: str
    at: datetime
    original_start: datetime | None = None

    def __post_init__(self) -> None:
        require_aware("Rsvp.at", self.at)
        require_aware("Rsvp.original_start", self.original_start)
        if self.scope not in RSVP_SCOPES:
            raise ModelError(f"unknown RSVP scope {self.scope!r}")
        if self.response not in RESPONSES:
            raise ModelError(f"unknown RSVP response {self.response!r}")
        if (self.scope == "all") != (self.original_start is None):
            raise ModelError("an 'all' RSVP has no instance; 'single'/'following' need one")

    @property
    def key(self) -> tuple[str, str, datetime | None]:
        return (self.user_id, self.scope, self.original_start)


@dataclass(frozen=True, slots=True)
class Event:
    """A Communifire event: one piece of content, however Outlook splits it (C1, A1).

    ``meeting_uid`` is the organizer's series (or single event) ``iCalUId``: the identity
    that recognises the organizer's and every attendee's copy as one meeting (A7).
    """

    id: str
    organizer: str
    segments: tuple[Segment, ...]
    exceptions: Mapping[datetime, InstanceException] = field(default_factory=dict)
    deleted: frozenset[datetime] = frozenset()
    rsvps: tuple[Rsvp, ...] = ()
    meeting_uid: str = ""
    calendar: str = "my"
    private: bool = False
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.segments:
            raise ModelError(f"event {self.id} has no segment")
        starts = [s.start for s in self.segments]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ModelError(f"event {self.id} segments are not strictly ordered by start")
        for key in self.deleted:
            require_aware("Event.deleted", key)
        for key, exc in self.exceptions.items():
            if key != exc.original_start:
                raise ModelError(f"event {self.id}: exception keyed {key} != {exc.original_start}")
        require_aware("Event.updated_at", self.updated_at)
        object.__setattr__(self, "exceptions", frozen_map(self.exceptions))
        object.__setattr__(
            self, "rsvps", tuple(sorted(self.rsvps, key=lambda r: (r.user_id, r.scope, str(r.original_start))))
        )

    @property
    def title(self) -> str:
        """The name every user sees (A7): the first segment's title."""
        return self.segments[0].title

    @property
    def is_series(self) -> bool:
        return any(s.recurrence is not None for s in self.segments)

    def segment_for(self, original_start: datetime) -> Segment:
        """The segment that covers an instance (the last one starting at or before it)."""
        chosen = self.segments[0]
        for seg in self.segments:
            if seg.start <= original_start:
                chosen = seg
        return chosen


@dataclass(frozen=True, slots=True)
class OutlookLink:
    """One user's Outlook item standing for (part of) a Communifire event.

    ``kind``: ``single`` (a single event), ``series`` (a series master standing for the
    segment starting at ``segment_start``), or ``instance`` (a single-instance copy that
    stands for one instance of a series, C5/O5/O6; ``instance_start`` says which).
    ``snapshot`` is the normalized content last synced and ``content_hash`` its hash:
    "changed" means this hash changed, not the changeKey (STYLE rule 5, A9).
    ``evidence`` records why a split series was linked (A2).
    """

    user_id: str
    outlook_id: str
    event_id: str
    kind: str
    content_hash: str
    snapshot: Mapping[str, Any] = field(default_factory=dict)
    segment_start: datetime | None = None
    instance_start: datetime | None = None
    change_key: str = ""
    ical_uid: str = ""
    last_modified: datetime | None = None
    evidence: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("single", "series", "instance"):
            raise ModelError(f"unknown link kind {self.kind!r}")
        require_aware("OutlookLink.segment_start", self.segment_start)
        require_aware("OutlookLink.instance_start", self.instance_start)
        require_aware("OutlookLink.last_modified", self.last_modified)
        object.__setattr__(self, "snapshot", frozen_map(self.snapshot))


@dataclass(frozen=True, slots=True)
class Window:
    """The sync window (today - 2 days .. today + 12 months), half-open in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware("Window.start", self.start)
        require_aware("Window.end", self.end)
        if self.end <= self.start:
            raise ModelError("window ends before it starts")


@dataclass(frozen=True, slots=True)
class UserState:
    """What Communifire holds for one connected user: the events their Outlook items
    are linked to (or that they organize or attend), and their links by Outlook id."""

    user_id: str
    events: Mapping[str, Event] = field(default_factory=dict)
    links: Mapping[str, OutlookLink] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", frozen_map(self.events))
        object.__setattr__(self, "links", frozen_map(self.links))
