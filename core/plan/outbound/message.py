"""Outbound direction, pure part: Communifire's change messages and the outbound planner.

Owns:
- the v1 message contract (``docs/messages.md``, ``schemas/outbound-message.v1.schema.json``):
  ``parse_message`` turns a decoded JSON object into a frozen ``OutboundMessage`` or
  raises ``MessageError`` with a reason an administrator can act on (SPEC section 7);
- ``plan_outbound``: a pure function of (message, the stored event with every user's
  links, the directory of users) giving an ``OutboundPlan``: the ordered Graph writes per
  user (each with the rule that caused it and a readable reason), the Outlook items to
  observe afterwards (their snapshots become the links, rule A9), and the event's new
  Communifire state. A message that cannot be carried out gives a plan with ``refused``
  set (conflicts and refusals are data, STYLE rule 4), never a half plan.
- ``plan_title_fixes``: after the writes, single-instance copies that still show another
  name get Communifire's title (rules A7, O5).

Invariants: no I/O, no clock (``occurred_at`` is the change time); every datetime aware
UTC; step ids are derived from the step's content, so a re-plan after a crash or an
ETag conflict gives the same ids and the executor skips the steps already done; the
organizer's mailbox carries the meeting (attendees get Exchange's copies), so writes go
to the organizer's items, except RSVPs (the responder's copy) and clean-ups of copies
Outlook leaves behind (A8, O5, O6).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any, Iterable, Mapping, Sequence

from core.plan.model import (
    FIELDS,
    TIME_FIELDS,
    Attendee,
    Event,
    InstanceException,
    ModelError,
    OutlookLink,
    Rsvp,
    Segment,
)
from core.plan.recurrence import (
    Range,
    Recurrence,
    RecurrenceError,
    expand,
    first_occurrence,
    occurrence_dates,
    occurrences_before,
    parse_recurrence,
    restart_from,
    series_zone,
    to_graph,
    truncate_before,
)
from core.plan.timezones import UTC, TimeZoneError, format_graph_datetime, resolve_zone, windows_name_for

__all__ = [
    "VERSION",
    "OPERATIONS",
    "SCOPES",
    "CALENDARS",
    "RESPONSES",
    "MessageError",
    "Person",
    "EventFields",
    "OutboundMessage",
    "DirectoryUser",
    "Step",
    "Expect",
    "OutboundPlan",
    "parse_message",
    "plan_outbound",
    "plan_title_fixes",
    "transaction_id",
]

VERSION = 1
OPERATIONS = ("create", "update", "delete", "rsvp", "invite")
SCOPES = ("single", "all", "following")
CALENDARS = ("my", "space")
#: Communifire's RSVP answers and the Graph action that writes each (GRAPH.md section 5).
RESPONSES = {"accepted": "accept", "tentative": "tentativelyAccept", "declined": "decline"}
ATTENDEE_TYPES = ("required", "optional", "resource")
_ID = re.compile(r"^[A-Za-z0-9._:@+=-]{1,128}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UTC_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]00:?00)$")
_MESSAGE_KEYS = frozenset(
    {"v", "operation_id", "occurred_at", "actor", "calendar", "space_id", "operation", "scope",
     "instance", "event", "rsvp", "invitee"}
)
_EVENT_KEYS = frozenset(
    {"id", "title", "body", "location", "start", "end", "all_day", "time_zone", "recurrence",
     "organizer", "attendees", "private"}
)
#: message field name -> model field name (core.plan.model.FIELDS)
_FIELD_NAMES = {
    "title": "title", "body": "body", "location": "location", "start": "start", "end": "end",
    "all_day": "is_all_day", "time_zone": "time_zone", "attendees": "attendees",
}
_NON_TIME = tuple(f for f in FIELDS if f not in TIME_FIELDS)
_NS = uuid.UUID("6f1c1d0e-3c55-4c8e-9a53-0b8e5c1f0a11")


class MessageError(ValueError):
    """An outbound message that can never be applied; ``reason`` says why, ``field`` where."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


# =========================================================================== the message


@dataclass(frozen=True, slots=True)
class Person:
    """A Communifire user (or an outside invitee, with no user id) and their address."""

    user_id: str
    email: str
    name: str = ""
    kind: str = "required"


@dataclass(frozen=True, slots=True)
class EventFields:
    """The event as the message describes it. ``given`` names the fields present;
    a field left out keeps its stored value (updates) or its default (creates)."""

    id: str
    organizer: Person | None = None
    title: str = ""
    body: str = ""
    location: str = ""
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool = False
    time_zone: str = "UTC"
    recurrence: Recurrence | None = None
    attendees: tuple[Person, ...] = ()
    private: bool = False
    given: frozenset[str] = frozenset()

    def has(self, name: str) -> bool:
        return name in self.given


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One Communifire change (v1), validated."""

    operation_id: str
    occurred_at: datetime
    actor: str
    calendar: str
    operation: str
    scope: str
    event: EventFields
    instance: datetime | None = None
    response: str = ""
    invitee: Person | None = None
    space_id: str = ""


def _fail(reason: str, where: str) -> MessageError:
    return MessageError(reason, where)


def _text(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False, limit: int = 100_000) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise _fail("is required", f"{where}{key}")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise _fail(f"must be a string, got {type(value).__name__}", f"{where}{key}")
    if len(value) > limit:
        raise _fail(f"is longer than {limit} characters", f"{where}{key}")
    return value


def _ident(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = _text(obj, key, where, required=required, limit=128)
    if value is None:
        return None
    if not _ID.match(value):
        raise _fail("must be 1-128 letters, digits or ._:@+=-", f"{where}{key}")
    return value


def _utc(value: Any, where: str) -> datetime:
    """A UTC instant written as ISO 8601 with ``Z`` (or +00:00); never naive."""
    if not isinstance(value, str) or not _UTC_TEXT.match(value.strip()):
        raise _fail(f"must be a UTC date-time like 2026-03-02T09:00:00Z, got {value!r}", where)
    text = value.strip().replace("Z", "+00:00")
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise _fail(f"is not a valid date-time: {exc}", where) from exc


def _person(obj: Any, where: str, *, need_user: bool) -> Person:
    if not isinstance(obj, Mapping):
        raise _fail("must be an object with user_id and email", where)
    unknown = set(obj) - {"user_id", "email", "name", "type"}
    if unknown:
        raise _fail(f"unknown field(s) {sorted(unknown)}", where)
    user_id = _ident(obj, "user_id", f"{where}.", required=need_user) or ""
    email = (_text(obj, "email", f"{where}.", required=True, limit=320) or "").strip().lower()
    if not _EMAIL.match(email):
        raise _fail(f"is not an e-mail address: {email!r}", f"{where}.email")
    name = _text(obj, "name", f"{where}.", limit=256) or ""
    kind = _text(obj, "type", f"{where}.", limit=16) or "required"
    if kind not in ATTENDEE_TYPES:
        raise _fail(f"must be one of {', '.join(ATTENDEE_TYPES)}", f"{where}.type")
    return Person(user_id, email, name, kind)


def _event_fields(obj: Any, operation: str) -> EventFields:
    if not isinstance(obj, Mapping):
        raise _fail("must be an object", "event")
    unknown = set(obj) - _EVENT_KEYS
    if unknown:
        raise _fail(f"unknown field(s) {sorted(unknown)}", "event")
    given = {k for k in obj if k != "id" and k != "organizer"}
    event_id = _ident(obj, "id", "event.") or ""
    organizer = _person(obj["organizer"], "event.organizer", need_user=True) if obj.get("organizer") is not None else None
    if organizer is None:
        raise _fail("is required (the user whose Outlook holds the meeting)", "event.organizer")
    title = _text(obj, "title", "event.", limit=255)
    if title is not None and not title.strip():
        raise _fail("must not be empty", "event.title")
    body = _text(obj, "body", "event.", limit=60_000)
    location = _text(obj, "location", "event.", limit=255)
    start = _utc(obj["start"], "event.start") if obj.get("start") is not None else None
    end = _utc(obj["end"], "event.end") if obj.get("end") is not None else None
    all_day = obj.get("all_day", False)
    if not isinstance(all_day, bool):
        raise _fail("must be true or false", "event.all_day")
    private = obj.get("private", False)
    if not isinstance(private, bool):
        raise _fail("must be true or false", "event.private")
    zone = _text(obj, "time_zone", "event.", limit=64)
    if zone is not None:
        try:
            resolve_zone(zone, fallback=None)
            windows_name_for(zone)
        except TimeZoneError as exc:
            raise _fail(str(exc), "event.time_zone") from exc
    recurrence = None
    if obj.get("recurrence") is not None:
        try:
            recurrence = parse_recurrence(obj["recurrence"])
            to_graph(recurrence)
        except RecurrenceError as exc:
            where = f"event.recurrence.{exc.field}" if exc.field else "event.recurrence"
            raise _fail(str(exc), where) from exc
    attendees: list[Person] = []
    if obj.get("attendees") is not None:
        if not isinstance(obj["attendees"], list) or len(obj["attendees"]) > 500:
            raise _fail("must be a list of at most 500 attendees (Graph's limit)", "event.attendees")
        seen = set()
        for i, a in enumerate(obj["attendees"]):
            person = _person(a, f"event.attendees[{i}]", need_user=False)
            if person.email in seen:
                raise _fail(f"lists {person.email} twice", "event.attendees")
            seen.add(person.email)
            attendees.append(person)
    fields = EventFields(
        id=event_id, organizer=organizer, title=title or "", body=body or "", location=location or "",
        start=start, end=end, all_day=all_day, time_zone=zone or "UTC", recurrence=recurrence,
        attendees=tuple(attendees), private=private, given=frozenset(given),
    )
    if operation == "create":
        for name in ("title", "start", "end"):
            if not fields.has(name) or obj.get(name) is None:
                raise _fail("is required to create an event", f"event.{name}")
    if operation in ("create", "update"):
        _check_times(fields)
    return fields


def _check_times(f: EventFields) -> None:
    if f.start is not None and f.end is not None and f.end < f.start:
        raise _fail("is before event.start", "event.end")
    if f.all_day and f.start is not None and f.end is not None:
        zone = resolve_zone(f.time_zone)
        local_start, local_end = f.start.astimezone(zone), f.end.astimezone(zone)
        if local_start.time() != time(0) or local_end.time() != time(0) or local_end.date() <= local_start.date():
            raise _fail("an all-day event starts and ends at midnight in its time_zone and lasts whole days",
                        "event.all_day")
    if f.recurrence is not None and f.start is not None:
        try:
            first = first_occurrence(f.recurrence, f.start.astimezone(resolve_zone(f.time_zone)), is_all_day=f.all_day)
        except RecurrenceError as exc:
            raise _fail(str(exc), "event.recurrence.range.startDate") from exc
        if first != f.start:
            raise _fail(f"event.start must be the first occurrence of the recurrence ({first.isoformat()})",
                        "event.start")


def parse_message(data: Any) -> OutboundMessage:
    """Validate a decoded message (v1) into an ``OutboundMessage``.

    Raises:
        MessageError: an unknown version, a missing or malformed field, or a combination
            the contract does not allow (named by ``field``).
    """
    if not isinstance(data, Mapping):
        raise _fail("a message is a JSON object", "")
    version = data.get("v")
    if version != VERSION:
        raise _fail(f"unknown message version {version!r}; this app reads version {VERSION}", "v")
    unknown = set(data) - _MESSAGE_KEYS
    if unknown:
        raise _fail(f"unknown field(s) {sorted(unknown)}", "")
    operation_id = _ident(data, "operation_id", "") or ""
    occurred_at = _utc(data.get("occurred_at"), "occurred_at")
    actor_obj = data.get("actor")
    if not isinstance(actor_obj, Mapping):
        raise _fail("is required: {\"user_id\": ...}", "actor")
    actor = _ident(actor_obj, "user_id", "actor.") or ""
    calendar = data.get("calendar")
    if calendar not in CALENDARS:
        raise _fail(f"must be one of {', '.join(CALENDARS)}", "calendar")
    space_id = _ident(data, "space_id", "", required=False) or ""
    operation = data.get("operation")
    if operation not in OPERATIONS:
        raise _fail(f"must be one of {', '.join(OPERATIONS)}", "operation")
    scope = data.get("scope", "all" if operation == "create" else None)
    if scope not in SCOPES:
        raise _fail(f"must be one of {', '.join(SCOPES)}", "scope")
    instance = None
    if data.get("instance") is not None:
        inst = data["instance"]
        if not isinstance(inst, Mapping) or set(inst) - {"original_start"}:
            raise _fail("must be {\"original_start\": <InstanceReplaceDate, UTC>}", "instance")
        instance = _utc(inst.get("original_start"), "instance.original_start")
    event = _event_fields(data.get("event"), operation)
    response = ""
    if operation == "rsvp":
        rsvp = data.get("rsvp")
        if not isinstance(rsvp, Mapping) or rsvp.get("response") not in RESPONSES:
            raise _fail(f"rsvp.response must be one of {', '.join(RESPONSES)}", "rsvp")
        response = rsvp["response"]
    elif data.get("rsvp") is not None:
        raise _fail("is only allowed with operation rsvp", "rsvp")
    invitee = None
    if operation == "invite":
        invitee = _person(data.get("invitee"), "invitee", need_user=False)
        if scope != "single":
            raise _fail("an invite is to a single instance (rule C5); invite to all or following "
                        "instances with an update of the attendees", "scope")
    elif data.get("invitee") is not None:
        raise _fail("is only allowed with operation invite", "invitee")
    if operation == "create" and (scope != "all" or instance is not None):
        raise _fail("a create has scope all and no instance", "scope")
    if scope == "all" and instance is not None:
        raise _fail("scope all takes no instance", "instance")
    return OutboundMessage(
        operation_id=operation_id, occurred_at=occurred_at, actor=actor, calendar=calendar,
        operation=operation, scope=scope, event=event, instance=instance, response=response,
        invitee=invitee, space_id=space_id,
    )


# =========================================================================== the plan


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """What the planner knows of a Communifire user: their Outlook address and whether
    the app may write to their mailbox."""

    user_id: str
    upn: str
    connected: bool


@dataclass(frozen=True, slots=True)
class Step:
    """One Graph write in one user's mailbox.

    ``action``: ``create`` (POST /events), ``patch`` (PATCH an item), ``patch_occurrence``
    (PATCH the occurrence of ``target``'s series whose original start is
    ``original_start``), ``delete``, ``delete_occurrence``, ``respond`` (``body.action`` on
    an item), ``respond_occurrence``. ``target`` is an Outlook id, or ``@<step id>`` for the
    item an earlier ``create`` step made. ``near`` is where the occurrence is now (it may
    have been moved), to find it.
    """

    id: str
    user_id: str
    action: str
    target: str
    body: Mapping[str, Any]
    rule: str
    reason: str
    original_start: datetime | None = None
    near: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "user_id": self.user_id, "action": self.action, "target": self.target,
            "original_start": _iso(self.original_start), "near": _iso(self.near),
            "body": json.loads(json.dumps(dict(self.body), default=str)), "rule": self.rule, "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Expect:
    """An Outlook item that stands for (part of) the event after the writes: observe it and
    record it as a link (A9). ``outlook_id`` is known, ``@<step>`` (made by a step) or
    ``""`` (find it: ``discover`` = ``meeting`` for an attendee's copy of the organizer's
    item, ``instance`` for a single-instance invite copy, C5)."""

    user_id: str
    kind: str
    outlook_id: str = ""
    segment_start: datetime | None = None
    instance_start: datetime | None = None
    discover: str = ""
    near: datetime | None = None
    near_end: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "kind": self.kind, "outlook_id": self.outlook_id,
            "segment_start": _iso(self.segment_start), "instance_start": _iso(self.instance_start),
            "discover": self.discover, "near": _iso(self.near), "near_end": _iso(self.near_end),
        }


@dataclass(frozen=True, slots=True)
class OutboundPlan:
    """What one message does: Graph steps, then the links to observe, then the new state.

    ``new_event`` None with ``delete_event`` True: the event is deleted. ``keep_links``:
    links that stay as they are (users the app may not write to now). ``refused``: the
    message cannot be carried out (nothing is written; the reason goes to the poison
    record). ``done``: nothing to do (e.g. a delete of an event already gone).
    """

    operation_id: str
    event_id: str
    operation: str
    scope: str
    steps: tuple[Step, ...] = ()
    expects: tuple[Expect, ...] = ()
    keep_links: tuple[OutlookLink, ...] = ()
    new_event: Event | None = None
    delete_event: bool = False
    refused: str = ""
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused

    def to_json(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id, "event_id": self.event_id, "operation": self.operation,
            "scope": self.scope, "refused": self.refused, "delete_event": self.delete_event,
            "steps": [s.to_json() for s in self.steps], "expects": [e.to_json() for e in self.expects],
            "notes": list(self.notes),
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def transaction_id(operation_id: str, event_id: str, segment_start: datetime) -> str:
    """The ``transactionId`` of a create: the same for every retry of one operation, so
    Graph never makes a second copy (GRAPH.md section 5)."""
    return str(uuid.uuid5(_NS, f"{operation_id}|{event_id}|{_iso(segment_start)}"))


# --------------------------------------------------------------------------- helpers


def _refuse(msg: OutboundMessage, reason: str) -> OutboundPlan:
    return OutboundPlan(msg.operation_id, msg.event.id, msg.operation, msg.scope, refused=reason)


def _attendee_key(a: Attendee) -> tuple[str, str]:
    return (a.email, a.kind)


def _same_attendees(a: Iterable[Attendee], b: Iterable[Attendee]) -> bool:
    return sorted(map(_attendee_key, a)) == sorted(map(_attendee_key, b))


def _equal(name: str, a: Any, b: Any) -> bool:
    if name == "attendees":
        return _same_attendees(a, b)
    if name == "time_zone":
        return _zone_key(a) == _zone_key(b)
    return a == b


def _zone_key(name: str) -> str:
    try:
        return windows_name_for(name)
    except TimeZoneError:
        return name


def _attendees_from(people: Iterable[Person], previous: Iterable[Attendee]) -> tuple[Attendee, ...]:
    """Message attendees as model values, keeping each one's known response."""
    known = {a.email: a for a in previous}
    out = []
    for p in people:
        old = known.get(p.email)
        out.append(Attendee(email=p.email, name=p.name or (old.name if old else ""), kind=p.kind,
                            response=old.response if old else "none"))
    return tuple(sorted(out, key=lambda a: a.email))


def _graph_attendees(attendees: Iterable[Attendee]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a.email, **({"name": a.name} if a.name else {})}, "type": a.kind}
            for a in attendees]


def _graph_values(values: Mapping[str, Any], zone_name: str, all_day: bool) -> dict[str, Any]:
    """Model field values -> a Graph event body (only the fields given)."""
    body: dict[str, Any] = {}
    for name, value in values.items():
        if name == "title":
            body["subject"] = value
        elif name == "body":
            body["body"] = {"contentType": "text", "content": value}
        elif name == "location":
            body["location"] = {"displayName": value}
        elif name == "attendees":
            body["attendees"] = _graph_attendees(value)
        elif name == "is_all_day":
            body["isAllDay"] = bool(value)
        elif name in ("start", "end"):
            body[name] = format_graph_datetime(value, zone_name)
    if "isAllDay" in body or "start" in body or "end" in body:
        body["isAllDay"] = all_day
    return body


def _segment_body(seg: Segment, *, private: bool, event_id: str, app_property: str) -> dict[str, Any]:
    """The full POST body of a segment's Outlook item (series master or single event)."""
    body = _graph_values(
        {"title": seg.title, "body": seg.body, "location": seg.location, "start": seg.start, "end": seg.end,
         "is_all_day": seg.is_all_day, "attendees": seg.attendees},
        seg.time_zone, seg.is_all_day,
    )
    if seg.recurrence is not None:
        body["recurrence"] = to_graph(seg.recurrence)
    if private:
        body["sensitivity"] = "private"
    body["singleValueExtendedProperties"] = [{"id": app_property, "value": event_id}]
    return body


def _step(user_id: str, action: str, target: str, body: Mapping[str, Any], rule: str, reason: str,
          original_start: datetime | None = None, near: datetime | None = None) -> Step:
    digest = hashlib.sha256(
        json.dumps([user_id, action, target, _iso(original_start), body], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return Step(f"{action}-{digest}", user_id, action, target, dict(body), rule, reason, original_start, near)


def _with_zone(rec: Recurrence | None, zone_name: str) -> Recurrence | None:
    """Fill an unset ``recurrenceTimeZone`` with the event's zone, as Graph does."""
    if rec is None or rec.range.time_zone:
        return rec
    r = rec.range
    return Recurrence(rec.pattern, Range(r.type, r.start_date, r.end_date, r.number_of_occurrences,
                                         windows_name_for(zone_name)))


def _seg_zone(seg: Segment):
    if seg.recurrence is not None:
        try:
            return series_zone(seg.recurrence, seg.start.astimezone(resolve_zone(seg.time_zone)))
        except (RecurrenceError, TimeZoneError):
            pass
    return resolve_zone(seg.time_zone)


def _segment_until(event: Event, index: int) -> datetime | None:
    return event.segments[index + 1].start if index + 1 < len(event.segments) else None


def _segment_index(event: Event, key: datetime) -> int:
    chosen = 0
    for i, seg in enumerate(event.segments):
        if seg.start <= key:
            chosen = i
    return chosen


def _is_occurrence(event: Event, key: datetime) -> bool:
    """Whether ``key`` is the original start of an instance of the event (any segment)."""
    i = _segment_index(event, key)
    seg = event.segments[i]
    if seg.recurrence is None:
        return key == seg.start
    until = _segment_until(event, i)
    if until is not None and key >= until:
        return False
    try:
        hits = expand(seg.recurrence, seg.start.astimezone(_seg_zone(seg)), seg.end - seg.start,
                      key, key, is_all_day=seg.is_all_day)
    except RecurrenceError:
        return False
    return key in hits


def _instance_values(event: Event, key: datetime) -> dict[str, Any]:
    """The effective field values of one instance (its segment, then its own changes)."""
    seg = event.segment_for(key)
    values = {name: seg.value(name) for name in FIELDS}
    values["start"] = key
    values["end"] = key + (seg.end - seg.start)
    exc = event.exceptions.get(key)
    if exc is not None:
        values.update(exc.changes)
    return values


def _local_date(key: datetime, seg: Segment) -> date:
    return key.astimezone(_seg_zone(seg)).date()


def _rekey(key: datetime, old: Segment, new: Segment) -> datetime | None:
    """The original start, in the changed segment, of the slot on ``key``'s local date
    (None when the new pattern has no slot that day)."""
    day = _local_date(key, old)
    if new.recurrence is None:
        return new.start if day == _local_date(new.start, new) else None
    if day not in occurrence_dates(new.recurrence, start=day, until=day):
        return None
    zone = _seg_zone(new)
    local_time = time(0) if new.is_all_day else new.start.astimezone(zone).time()
    candidate = datetime.combine(day, local_time).replace(tzinfo=zone).astimezone(UTC)
    return candidate if candidate >= new.start else None


def _changes_against(values: Mapping[str, Any], seg: Segment, *, drop_time: bool) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if drop_time and name in TIME_FIELDS:
            continue
        if not _equal(name, value, seg.value(name)):
            out[name] = value
    return out


def _link_for(links: Sequence[OutlookLink], user_id: str, seg: Segment) -> OutlookLink | None:
    kind = "series" if seg.recurrence is not None else "single"
    for link in links:
        if link.user_id != user_id or link.kind != kind:
            continue
        if kind == "single" or link.segment_start == seg.start:
            return link
    return None


def _retime(seg: Segment, start: datetime, end: datetime, zone_name: str, all_day: bool,
            recurrence: Recurrence | None) -> Segment:
    """``seg`` with new times and pattern (rule A3 for child segments: same local
    time-of-day and duration as the first segment's new times, on the segment's own dates)."""
    return replace(seg, start=start, end=end, time_zone=zone_name, is_all_day=all_day, recurrence=recurrence)


def _child_retimed(child: Segment, first_old: Segment, first_new: Segment) -> Segment:
    """A later segment moved to the first segment's new time of day and duration."""
    old_zone, new_zone = _seg_zone(first_old), resolve_zone(first_new.time_zone)
    if (first_old.start.astimezone(old_zone).time() == first_new.start.astimezone(new_zone).time()
            and first_old.end - first_old.start == first_new.end - first_new.start
            and _zone_key(first_old.time_zone) == _zone_key(first_new.time_zone)
            and first_old.is_all_day == first_new.is_all_day):
        return child
    day = _local_date(child.start, child)
    at = time(0) if first_new.is_all_day else first_new.start.astimezone(new_zone).time()
    start = datetime.combine(day, at).replace(tzinfo=new_zone).astimezone(UTC)
    rec = child.recurrence
    if rec is not None:
        rec = Recurrence(rec.pattern, Range(rec.range.type, day, rec.range.end_date, rec.range.number_of_occurrences,
                                            windows_name_for(first_new.time_zone)))
    return replace(child, start=start, end=start + (first_new.end - first_new.start), time_zone=first_new.time_zone,
                   is_all_day=first_new.is_all_day, recurrence=rec)


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class _Ctx:
    msg: OutboundMessage
    event: Event | None
    links: tuple[OutlookLink, ...]
    users: Mapping[str, DirectoryUser]
    app_property: str
    organizer: DirectoryUser

    def by_email(self, email: str) -> DirectoryUser | None:
        for u in self.users.values():
            if u.upn.lower() == email.lower():
                return u
        return None

    def writable(self, user_id: str) -> bool:
        u = self.users.get(user_id)
        return bool(u and u.connected)


def _resets(old: Segment, new: Segment) -> bool:
    """Whether Outlook resets the series' exceptions for this change (rule O5)."""
    return (old.start != new.start or old.end != new.end or old.is_all_day != new.is_all_day
            or _zone_key(old.time_zone) != _zone_key(new.time_zone) or old.recurrence != new.recurrence)


def _master_patch(old: Segment, new: Segment) -> dict[str, Any]:
    """The fields of a segment's Outlook item that change (never a PATCH that changes nothing)."""
    changed = {name: new.value(name) for name in FIELDS if not _equal(name, old.value(name), new.value(name))}
    time_changed = any(name in TIME_FIELDS for name in changed)
    if time_changed:
        changed["start"], changed["end"] = new.start, new.end
    body = _graph_values(changed, new.time_zone, new.is_all_day)
    if new.recurrence is not None and (old.recurrence != new.recurrence or time_changed):
        body["recurrence"] = to_graph(new.recurrence)
    return body


def _exception_steps(
    ctx: _Ctx, master_ref: str, old_seg: Segment, new_seg: Segment, seg_from: datetime, seg_until: datetime | None,
    old_event: Event, new_exceptions: Mapping[datetime, InstanceException], new_deleted: frozenset[datetime],
    changed_fields: Mapping[str, Any], reset: bool,
) -> list[Step]:
    """A6: keep this segment's exceptions and deleted instances right in Outlook.

    After a reset (O5: time or pattern changed; O2 cut), each exception's own changes and
    each deleted instance are written again; otherwise a series-wide change reaches the
    exceptions that did not change that field on purpose (O4).
    """
    steps: list[Step] = []
    org = ctx.organizer.user_id

    def inside(key: datetime) -> bool:
        return key >= seg_from and (seg_until is None or key < seg_until)

    if new_seg.recurrence is None:
        return steps
    for key, exc in sorted(new_exceptions.items()):
        if not inside(key):
            continue
        if reset:
            body = _graph_values(exc.changes, new_seg.time_zone, new_seg.is_all_day)
            if exc.changes.keys() & TIME_FIELDS:
                body.update(_graph_values({"start": exc.changes.get("start", key),
                                           "end": exc.changes.get("end", key + (new_seg.end - new_seg.start))},
                                          new_seg.time_zone, new_seg.is_all_day))
            if body:
                steps.append(_step(org, "patch_occurrence", master_ref, body, "A6",
                                   f"re-apply the own changes ({', '.join(sorted(exc.changes))}) of the instance of "
                                   f"{_iso(key)} after Outlook reset the series' exceptions (O5)",
                                   original_start=key, near=key))
        else:
            reach = {name: value for name, value in changed_fields.items()
                     if name not in exc.changes and name not in TIME_FIELDS}
            if reach:
                body = _graph_values(reach, new_seg.time_zone, new_seg.is_all_day)
                current = _instance_values(old_event, key) if key in old_event.exceptions else {}
                steps.append(_step(org, "patch_occurrence", master_ref, body, "A6",
                                   f"the series change of {', '.join(sorted(reach))} also reaches the instance of "
                                   f"{_iso(key)}, which Outlook leaves alone (O4)",
                                   original_start=key, near=current.get("start", key)))
    if reset:
        for key in sorted(new_deleted):
            if inside(key):
                steps.append(_step(org, "delete_occurrence", master_ref, {}, "A6",
                                   f"the instance of {_iso(key)} stays deleted after Outlook reset the series (O5)",
                                   original_start=key, near=key))
    return steps


def _expects(ctx: _Ctx, event: Event, refs: Mapping[datetime, str]) -> list[Expect]:
    """Every Outlook item that should stand for the event once the writes are done:
    the organizer's item per segment, each connected attendee's copy, and each connected
    single-instance invitee's copy (C5)."""
    out: list[Expect] = []
    org = ctx.organizer.user_id
    for seg in event.segments:
        kind = "series" if seg.recurrence is not None else "single"
        ref = refs.get(seg.start, "")
        out.append(Expect(org, kind, ref, segment_start=seg.start if kind == "series" else None))
        for a in seg.attendees:
            user = ctx.by_email(a.email)
            if user is None or user.user_id == org or not user.connected:
                continue
            existing = _link_for(ctx.links, user.user_id, seg) if ctx.event is not None else None
            out.append(Expect(user.user_id, kind, existing.outlook_id if existing else "",
                              segment_start=seg.start if kind == "series" else None,
                              discover="meeting", near=seg.start))
    for key, exc in sorted(event.exceptions.items()):
        if "attendees" not in exc.changes or key in event.deleted:
            continue
        seg = event.segment_for(key)
        series_people = {a.email for a in seg.attendees}
        values = _instance_values(event, key)
        for a in exc.changes["attendees"]:
            if a.email in series_people:
                continue
            user = ctx.by_email(a.email)
            if user is None or user.user_id == org or not user.connected:
                continue
            existing = next((l for l in ctx.links if l.user_id == user.user_id and l.kind == "instance"
                             and l.instance_start == key), None)
            out.append(Expect(user.user_id, "instance", existing.outlook_id if existing else "",
                              instance_start=key, discover="instance", near=values["start"], near_end=values["end"]))
    return out


def _finish(ctx: _Ctx, steps: list[Step], new_event: Event | None, refs: Mapping[datetime, str],
            notes: Iterable[str] = (), *, delete_event: bool = False, extra_expects: Iterable[Expect] = ()) -> OutboundPlan:
    """Dedupe the steps, add what to observe and which links stay untouched."""
    seen: set[str] = set()
    unique = []
    for s in steps:
        if s.id not in seen:
            seen.add(s.id)
            unique.append(s)
    expects: list[Expect] = []
    if new_event is not None:
        expects = _expects(ctx, new_event, refs)
    expects.extend(extra_expects)
    keep = tuple(l for l in ctx.links if not ctx.writable(l.user_id)) if not delete_event else ()
    msg = ctx.msg
    return OutboundPlan(msg.operation_id, msg.event.id, msg.operation, msg.scope, tuple(unique), tuple(expects), keep,
                        new_event, delete_event, "", tuple(notes))


# --------------------------------------------------------------------------- operations


def _new_segment_from(fields: EventFields, previous: Segment | None) -> Segment:
    base_att: Iterable[Attendee] = previous.attendees if previous else ()
    zone = fields.time_zone if fields.has("time_zone") or previous is None else previous.time_zone
    rec = fields.recurrence if fields.has("recurrence") or previous is None else previous.recurrence
    return Segment(
        start=fields.start if fields.start is not None else previous.start,  # type: ignore[union-attr]
        end=fields.end if fields.end is not None else previous.end,  # type: ignore[union-attr]
        title=fields.title if fields.has("title") or previous is None else previous.title,
        body=fields.body if fields.has("body") or previous is None else previous.body,
        location=fields.location if fields.has("location") or previous is None else previous.location,
        is_all_day=fields.all_day if fields.has("all_day") or previous is None else previous.is_all_day,
        time_zone=zone,
        recurrence=_with_zone(rec, zone),
        attendees=_attendees_from(fields.attendees, base_att) if fields.has("attendees") or previous is None
        else previous.attendees,
    )


def _plan_create(ctx: _Ctx) -> OutboundPlan:
    msg = ctx.msg
    f = msg.event
    seg = _new_segment_from(f, None)
    if ctx.event is not None:
        # A redelivered create whose first delivery got as far as Table Storage: the
        # event exists; carry on as an update to the same values (changes nothing).
        return _plan_update_all(ctx)
    step = _step(ctx.organizer.user_id, "create", "", {
        **_segment_body(seg, private=f.private, event_id=f.id, app_property=ctx.app_property),
        "transactionId": transaction_id(msg.operation_id, f.id, seg.start),
    }, "D4" if seg.recurrence is not None and seg.recurrence.range.type == "numbered" else "C1",
        f"create the {'series' if seg.recurrence else 'event'} in the organizer's Outlook with our event id stamped "
        "and a transactionId, so a retry never makes a second copy")
    event = Event(id=f.id, organizer=f.organizer.email if f.organizer else "", segments=(seg,), calendar="my",
                  private=f.private, updated_at=msg.occurred_at)
    return _finish(ctx, [step], event, {seg.start: f"@{step.id}"})


def _ensure_item(ctx: _Ctx, seg: Segment, event: Event, steps: list[Step], reason: str) -> str:
    """The organizer's item for a segment: its link, else a create step (repair)."""
    link = _link_for(ctx.links, ctx.organizer.user_id, seg)
    if link is not None:
        return link.outlook_id
    step = _step(ctx.organizer.user_id, "create", "", {
        **_segment_body(seg, private=event.private, event_id=event.id, app_property=ctx.app_property),
        "transactionId": transaction_id(ctx.msg.operation_id, event.id, seg.start),
    }, "A3", reason)
    steps.append(step)
    return f"@{step.id}"


def _apply_to_segments(
    ctx: _Ctx, old: Event, new_segments: list[Segment], first_index: int, changed: Mapping[str, Any], rule: str,
    *, new_exceptions: dict[datetime, InstanceException] | None = None, new_deleted: set[datetime] | None = None,
    notes: list[str],
) -> tuple[list[Step], Event, dict[datetime, str]]:
    """Write segments ``first_index..`` (already changed in ``new_segments``) to the
    organizer's items, and re-key and re-apply their exceptions (A3, A6)."""
    steps: list[Step] = []
    refs: dict[datetime, str] = {}
    exceptions = dict(old.exceptions if new_exceptions is None else new_exceptions)
    deleted = set(old.deleted if new_deleted is None else new_deleted)
    # re-key exceptions and deleted instances of the changed segments (O5/A6)
    for i in range(first_index, len(old.segments)):
        o, n = old.segments[i], new_segments[i]
        lo, hi = o.start, _segment_until(old, i)
        if not _resets(o, n):
            for key, exc in list(exceptions.items()):
                if lo <= key and (hi is None or key < hi):
                    kept = {k: v for k, v in exc.changes.items() if not _equal(k, v, n.value(k))}
                    if not kept:
                        del exceptions[key]
                        notes.append(f"the instance of {_iso(key)} now equals the series: no longer an exception")
                    elif len(kept) != len(exc.changes):
                        exceptions[key] = replace(exc, changes=kept)
            continue
        for key in sorted(k for k in list(exceptions) if lo <= k and (hi is None or k < hi)):
            exc = exceptions.pop(key)
            new_key = _rekey(key, o, n)
            own = {k: v for k, v in exc.changes.items() if k not in TIME_FIELDS and not _equal(k, v, n.value(k))}
            if new_key is None:
                notes.append(f"the instance of {_iso(key)} is no longer part of the series; its changes are dropped")
            elif own:
                exceptions[new_key] = InstanceException(new_key, own, ctx.msg.occurred_at, "communifire")
        for key in sorted(k for k in list(deleted) if lo <= k and (hi is None or k < hi)):
            deleted.discard(key)
            new_key = _rekey(key, o, n)
            if new_key is not None:
                deleted.add(new_key)
    event = replace(old, segments=tuple(new_segments), exceptions=exceptions, deleted=frozenset(deleted),
                    updated_at=ctx.msg.occurred_at)
    for i in range(first_index, len(old.segments)):
        o, n = old.segments[i], new_segments[i]
        ref = _ensure_item(ctx, o, old, steps, f"the organizer's Outlook has no item for the segment of {_iso(o.start)}")
        refs[n.start] = ref
        body = _master_patch(o, n)
        if body:
            steps.append(_step(ctx.organizer.user_id, "patch", ref, body, rule,
                               f"write {', '.join(sorted(body))} to the organizer's "
                               f"{'series' if n.recurrence else 'event'} of {_iso(n.start)}"
                               + (" (a linked child series, A3)" if i > 0 else "")))
        until_new = new_segments[i + 1].start if i + 1 < len(new_segments) else None
        steps.extend(_exception_steps(ctx, ref, o, n, n.start, until_new, old, event.exceptions, event.deleted,
                                      changed, _resets(o, n)))
    for i in range(first_index):
        refs[new_segments[i].start] = (_link_for(ctx.links, ctx.organizer.user_id, new_segments[i]) or
                                       OutlookLink("", "", "", "single", "")).outlook_id
    return steps, event, refs


def _changed_fields(f: EventFields, seg: Segment) -> dict[str, Any]:
    candidate = _new_segment_from(f, seg)
    return {name: candidate.value(name) for name in FIELDS if not _equal(name, candidate.value(name), seg.value(name))}


def _plan_update_all(ctx: _Ctx) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    f = ctx.msg.event
    first = old.segments[0]
    new_first = _new_segment_from(f, first)
    if (first.recurrence is None) != (new_first.recurrence is None):
        return _refuse(ctx.msg, "turning a single event into a series or back is not supported in v1: "
                                "delete the event and create it again")
    if len(old.segments) > 1 and f.has("recurrence") and new_first.recurrence != first.recurrence:
        return _refuse(ctx.msg, "the event is split into several Outlook series (A1/A2); change the pattern "
                                "from a given instance (scope following) instead of for all instances")
    changed = _changed_fields(f, first)
    notes: list[str] = []
    segments = [new_first]
    for child in old.segments[1:]:
        moved = _child_retimed(child, first, new_first)
        segments.append(replace(moved, **{k: v for k, v in changed.items() if k in ("title", "body", "location",
                                                                                    "attendees")}))
    try:
        steps, event, refs = _apply_to_segments(ctx, old, segments, 0, changed, "A3", notes=notes)
    except (ModelError, RecurrenceError) as exc:
        return _refuse(ctx.msg, f"the change does not fit the event's series: {exc}")
    if f.has("private") and f.private != old.private:
        event = replace(event, private=f.private)
        for seg in event.segments:
            ref = refs.get(seg.start, "")
            if ref:
                steps.append(_step(ctx.organizer.user_id, "patch", ref,
                                   {"sensitivity": "private" if f.private else "normal"}, "C5",
                                   "the event's privacy changed"))
    if not steps:
        notes.append("nothing changes in Outlook: every item already shows these values")
    return _finish(ctx, steps, event, refs, notes)


def _plan_update_single(ctx: _Ctx, key: datetime) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    f = ctx.msg.event
    if key in old.deleted:
        return _refuse(ctx.msg, f"the instance of {_iso(key)} was deleted; it cannot be edited")
    seg = old.segment_for(key)
    current = _instance_values(old, key)
    wanted = dict(current)
    for name, model in _FIELD_NAMES.items():
        if f.has(name):
            if name == "attendees":
                wanted["attendees"] = _attendees_from(f.attendees, current["attendees"])
            else:
                wanted[model] = getattr(f, name)
    if wanted["end"] < wanted["start"]:
        return _refuse(ctx.msg, "the instance would end before it starts")
    diff = {name: wanted[name] for name in FIELDS if not _equal(name, wanted[name], current[name])}
    own = {name: wanted[name] for name in FIELDS
           if not _equal(name, wanted[name], key if name == "start" else
                         (key + (seg.end - seg.start) if name == "end" else seg.value(name)))}
    exceptions = dict(old.exceptions)
    if own:
        exceptions[key] = InstanceException(key, own, ctx.msg.occurred_at, "communifire")
    else:
        exceptions.pop(key, None)
    event = replace(old, exceptions=exceptions, updated_at=ctx.msg.occurred_at)
    steps: list[Step] = []
    refs = {s.start: (_link_for(ctx.links, ctx.organizer.user_id, s) or OutlookLink("", "", "", "single", "")).outlook_id
            for s in old.segments}
    link = _link_for(ctx.links, ctx.organizer.user_id, seg)
    if diff:
        if link is None:
            return _refuse(ctx.msg, "the organizer's Outlook has no item for this event yet; run a sync first")
        body = _graph_values(diff, wanted["time_zone"], wanted["is_all_day"])
        if diff.keys() & TIME_FIELDS:
            body.update(_graph_values({"start": wanted["start"], "end": wanted["end"]}, wanted["time_zone"],
                                      wanted["is_all_day"]))
        steps.append(_step(ctx.organizer.user_id, "patch_occurrence", link.outlook_id, body, "C3",
                           f"edit only the instance of {_iso(key)}: {', '.join(sorted(diff))} (O1)",
                           original_start=key, near=current["start"]))
    return _finish(ctx, steps, event, refs, () if steps else ("nothing changes in Outlook",))


def _plan_update_single_event(ctx: _Ctx) -> OutboundPlan:
    return _plan_update_all(ctx)


def _split(ctx: _Ctx, key: datetime, new_fields: EventFields | None, *, delete_tail: bool) -> OutboundPlan:
    """Edit or delete "from this instance forward" (C2, C3): Outlook's own way (O2):
    the segment is cut before the instance and, for an edit, a new linked series starts
    there; Communifire keeps one event with one more segment (A1)."""
    old = ctx.event
    assert old is not None
    i = _segment_index(old, key)
    seg = old.segments[i]
    assert seg.recurrence is not None
    zone = _seg_zone(seg)
    day = key.astimezone(zone).date()
    org = ctx.organizer.user_id
    notes: list[str] = []
    steps: list[Step] = []
    first_of_segment = occurrences_before(seg.recurrence, day) == 0
    if first_of_segment and i == 0:
        # from the very first instance: the whole event
        if delete_tail:
            return _plan_delete_all(ctx)
        return _plan_update_all(ctx)
    keep = list(old.segments[:i]) if first_of_segment else [*old.segments[:i]]
    exceptions = {k: v for k, v in old.exceptions.items() if k < key}
    deleted = {k for k in old.deleted if k < key}
    refs: dict[datetime, str] = {}
    # 1. the segment before the cut keeps its instances before ``key``
    if not first_of_segment:
        cut = replace(seg, recurrence=truncate_before(seg.recurrence, day))
        keep.append(cut)
        link = _link_for(ctx.links, org, seg)
        if link is not None:
            steps.append(_step(org, "patch", link.outlook_id, {"recurrence": to_graph(cut.recurrence)}, "O2",
                               f"end the series of {_iso(seg.start)} before {day} (what Outlook itself does for "
                               "'this and all following')"))
            steps.extend(_exception_steps(ctx, link.outlook_id, seg, cut, cut.start, key, old, exceptions,
                                          frozenset(deleted), {}, True))
            refs[cut.start] = link.outlook_id
    # 2. the organizer's items of later segments: deleted (delete) or changed (edit)
    later = old.segments[i + 1:]
    if delete_tail:
        for s in ([] if not first_of_segment else [seg]) + list(later):
            link = _link_for(ctx.links, org, s)
            if link is not None:
                steps.extend(_a8_cleanup(ctx, old, s, link.outlook_id, lo=max(s.start, key)))
                steps.append(_step(org, "delete", link.outlook_id, {}, "C2",
                                   f"delete the series of {_iso(s.start)}: it lies after {_iso(key)}"))
        for k in [k for k in old.exceptions if k >= key]:
            notes.append(f"the instance of {_iso(k)} goes with the deleted instances")
        for s in keep:
            refs.setdefault(s.start, (_link_for(ctx.links, org, s) or OutlookLink("", "", "", "single", "")).outlook_id)
        event = replace(old, segments=tuple(keep), exceptions=exceptions, deleted=frozenset(deleted),
                        updated_at=ctx.msg.occurred_at)
        extra = _a8_invitee_deletes(ctx, old, lambda k: k >= key)
        return _finish(ctx, steps + extra, event, refs, notes)
    # an edit: the tail becomes a new segment (or the existing segment, when ``key`` starts it)
    assert new_fields is not None
    tail_old = seg if first_of_segment else replace(seg, start=key, end=key + (seg.end - seg.start),
                                                    recurrence=restart_from(seg.recurrence, day))
    tail_fields = new_fields
    if not tail_fields.has("recurrence") and (tail_fields.start is not None) and tail_old.recurrence is not None:
        new_zone = resolve_zone(tail_fields.time_zone if tail_fields.has("time_zone") else tail_old.time_zone)
        new_day = tail_fields.start.astimezone(new_zone).date()
        if new_day != day:
            r = tail_old.recurrence.range
            tail_fields = replace(tail_fields, recurrence=Recurrence(tail_old.recurrence.pattern, Range(
                r.type, new_day, r.end_date, r.number_of_occurrences, r.time_zone)), given=tail_fields.given | {"recurrence"})
    tail_new = _new_segment_from(tail_fields, tail_old)
    changed = {name: tail_new.value(name) for name in FIELDS if not _equal(name, tail_new.value(name), tail_old.value(name))}
    later_new = []
    for child in later:
        moved = _child_retimed(child, tail_old, tail_new)
        later_new.append(replace(moved, **{k: v for k, v in changed.items() if k in ("title", "body", "location",
                                                                                    "attendees")}))
    # exceptions of the tail: re-keyed onto the new series (its own original starts)
    tail_exc = {k: v for k, v in old.exceptions.items() if k >= key}
    tail_del = {k for k in old.deleted if k >= key}
    span_end = later[0].start if later else None
    reset_tail = _resets(tail_old, tail_new)
    new_tail_exc: dict[datetime, InstanceException] = {}
    new_tail_del: set[datetime] = set()
    for k, exc in tail_exc.items():
        if span_end is not None and k >= span_end:
            new_tail_exc[k] = exc
            continue
        nk = _rekey(k, tail_old, tail_new) if reset_tail else k
        own = {f_: v for f_, v in exc.changes.items() if not (reset_tail and f_ in TIME_FIELDS)
               and not _equal(f_, v, tail_new.value(f_))}
        if nk is not None and own:
            new_tail_exc[nk] = InstanceException(nk, own, ctx.msg.occurred_at, "communifire")
    for k in tail_del:
        if span_end is not None and k >= span_end:
            new_tail_del.add(k)
            continue
        nk = _rekey(k, tail_old, tail_new) if reset_tail else k
        if nk is not None:
            new_tail_del.add(nk)
    all_exc = {**exceptions, **new_tail_exc}
    all_del = deleted | new_tail_del
    segments = [*keep, tail_new, *later_new]
    try:
        event = replace(old, segments=tuple(segments), exceptions=all_exc, deleted=frozenset(all_del),
                        updated_at=ctx.msg.occurred_at)
    except ModelError as exc:
        return _refuse(ctx.msg, f"the change does not fit the event's series: {exc}")
    if first_of_segment:
        link = _link_for(ctx.links, org, seg)
        ref = link.outlook_id if link else _ensure_item(ctx, seg, old, steps, "the organizer has no item for it")
        body = _master_patch(seg, tail_new)
        if body:
            steps.append(_step(org, "patch", ref, body, "A3", f"write {', '.join(sorted(body))} to the linked "
                                                                f"child series of {_iso(seg.start)}"))
        steps.extend(_exception_steps(ctx, ref, seg, tail_new, tail_new.start, span_end, old, all_exc,
                                      frozenset(all_del), changed, reset_tail))
    else:
        create = _step(org, "create", "", {
            **_segment_body(tail_new, private=old.private, event_id=old.id, app_property=ctx.app_property),
            "transactionId": transaction_id(ctx.msg.operation_id, old.id, tail_new.start),
        }, "O2", f"start a new series on {tail_new.start.date()} for 'this and all following' (Communifire keeps "
                 "one event with a linked child segment, A1)")
        steps.append(create)
        ref = f"@{create.id}"
        steps.extend(_exception_steps(ctx, ref, tail_old, tail_new, tail_new.start, span_end, old, all_exc,
                                      frozenset(all_del), changed, True))
    refs[tail_new.start] = ref
    for j, child in enumerate(later):
        link = _link_for(ctx.links, org, child)
        cref = link.outlook_id if link else _ensure_item(ctx, child, old, steps, "the organizer has no item for it")
        refs[later_new[j].start] = cref
        body = _master_patch(child, later_new[j])
        if body:
            steps.append(_step(org, "patch", cref, body, "A3",
                               f"write {', '.join(sorted(body))} to the linked child series of {_iso(child.start)}"))
        nxt = later_new[j + 1].start if j + 1 < len(later_new) else None
        steps.extend(_exception_steps(ctx, cref, child, later_new[j], later_new[j].start, nxt, old, all_exc,
                                      frozenset(all_del), changed, _resets(child, later_new[j])))
    return _finish(ctx, steps, event, refs, notes)


def _a8_cleanup(ctx: _Ctx, event: Event, seg: Segment, master_ref: str, lo: datetime) -> list[Step]:
    """A8/O6: before a series goes, cancel each single-instance invitation Outlook would
    leave behind (deleting the occurrence cancels the invitee's copy)."""
    steps = []
    people = {a.email for a in seg.attendees}
    for key, exc in sorted(event.exceptions.items()):
        if key < lo or event.segment_for(key) is not seg or key in event.deleted:
            continue
        extra = [a for a in exc.changes.get("attendees", ()) if a.email not in people]
        if extra:
            steps.append(_step(ctx.organizer.user_id, "delete_occurrence", master_ref, {}, "A8",
                               f"cancel the single-instance invitation(s) of {', '.join(a.email for a in extra)} for "
                               f"{_iso(key)}, which Outlook would leave behind when the series is deleted (O6)",
                               original_start=key, near=_instance_values(event, key)["start"]))
    return steps


def _a8_invitee_deletes(ctx: _Ctx, event: Event, which) -> list[Step]:
    """A8/O6: remove connected invitees' single-instance copies from their calendars."""
    steps = []
    for link in ctx.links:
        if link.kind == "instance" and link.instance_start is not None and which(link.instance_start) \
                and ctx.writable(link.user_id) and link.user_id != ctx.organizer.user_id:
            steps.append(_step(link.user_id, "delete", link.outlook_id, {}, "A8",
                               f"remove the single-instance copy of {_iso(link.instance_start)} from the invitee's "
                               "Outlook (Outlook leaves it behind, O6)"))
    return steps


def _plan_delete_all(ctx: _Ctx) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    org = ctx.organizer.user_id
    steps: list[Step] = []
    for seg in old.segments:
        link = _link_for(ctx.links, org, seg)
        if link is None:
            continue
        steps.extend(_a8_cleanup(ctx, old, seg, link.outlook_id, lo=seg.start))
        steps.append(_step(org, "delete", link.outlook_id, {}, "C2",
                           f"delete the organizer's {'series' if seg.recurrence else 'event'} of {_iso(seg.start)}; "
                           "Outlook cancels the attendees' copies"))
    steps.extend(_a8_invitee_deletes(ctx, old, lambda k: True))
    # attendees' copies Outlook cancelled: remove them from connected attendees' calendars
    for link in ctx.links:
        if link.user_id != org and link.kind in ("series", "single") and ctx.writable(link.user_id):
            steps.append(_step(link.user_id, "delete", link.outlook_id, {}, "C2",
                               "remove the cancelled meeting copy from the attendee's Outlook"))
    return _finish(ctx, steps, None, {}, (), delete_event=True)


def _plan_delete_single(ctx: _Ctx, key: datetime) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    if key in old.deleted:
        return _finish(ctx, [], old, _refs(ctx, old), ("the instance is already deleted",))
    seg = old.segment_for(key)
    link = _link_for(ctx.links, ctx.organizer.user_id, seg)
    steps = []
    if link is not None:
        steps.append(_step(ctx.organizer.user_id, "delete_occurrence", link.outlook_id, {}, "C2",
                           f"delete only the instance of {_iso(key)} (Outlook cancels it for every attendee)",
                           original_start=key, near=_instance_values(old, key)["start"]))
    steps.extend(_a8_invitee_deletes(ctx, old, lambda k: k == key))
    exceptions = {k: v for k, v in old.exceptions.items() if k != key}
    event = replace(old, exceptions=exceptions, deleted=old.deleted | {key}, updated_at=ctx.msg.occurred_at)
    return _finish(ctx, steps, event, _refs(ctx, old))


def _refs(ctx: _Ctx, event: Event) -> dict[datetime, str]:
    return {s.start: (_link_for(ctx.links, ctx.organizer.user_id, s) or OutlookLink("", "", "", "single", "")).outlook_id
            for s in event.segments}


def _plan_rsvp(ctx: _Ctx, key: datetime | None) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    msg = ctx.msg
    user = ctx.users.get(msg.actor)
    if user is None or not user.connected:
        return _refuse(msg, f"the responding user {msg.actor} is unknown or not connected to Outlook")
    if user.user_id == ctx.organizer.user_id:
        return _refuse(msg, "the organizer does not respond to their own meeting")
    action = RESPONSES[msg.response]
    steps: list[Step] = []
    scope = msg.scope
    single_copy = next((l for l in ctx.links if l.user_id == user.user_id and l.kind == "instance"
                        and (key is None or l.instance_start == key)), None)
    if scope == "single" and key is not None:
        if single_copy is not None:
            steps.append(_step(user.user_id, "respond", single_copy.outlook_id, {"action": action}, "C5",
                               f"{msg.response} the single-instance invitation of {_iso(key)}"))
        else:
            seg = old.segment_for(key)
            link = _link_for(ctx.links, user.user_id, seg)
            if link is None:
                return _refuse(msg, f"user {user.user_id} has no Outlook copy of this meeting to respond to")
            steps.append(_step(user.user_id, "respond_occurrence", link.outlook_id, {"action": action}, "C4",
                               f"{msg.response} only the instance of {_iso(key)}", original_start=key,
                               near=_instance_values(old, key)["start"]))
    else:
        segs = [s for s in old.segments if key is None or scope == "all" or _segment_until(old, old.segments.index(s)) is None
                or _segment_until(old, old.segments.index(s)) > key]  # type: ignore[operator]
        for seg in segs:
            link = _link_for(ctx.links, user.user_id, seg)
            if link is not None:
                steps.append(_step(user.user_id, "respond", link.outlook_id, {"action": action},
                                   "A5" if scope == "following" else "C4",
                                   f"{msg.response} all instances of the series of {_iso(seg.start)}"
                                   + (" (Outlook has no 'from this point forward' answer, O3)" if scope == "following" else "")))
        if not steps and single_copy is not None:
            steps.append(_step(user.user_id, "respond", single_copy.outlook_id, {"action": action}, "C5",
                               f"{msg.response} the single-instance invitation"))
        if not steps:
            return _refuse(msg, f"user {user.user_id} has no Outlook copy of this meeting to respond to")
    upn = user.upn.lower()
    rsvp = Rsvp(user.user_id, scope if old.is_series else "all", msg.response, msg.occurred_at,
                key if old.is_series and scope != "all" else None)
    rsvps = tuple(r for r in old.rsvps if not (r.user_id == user.user_id and
                                                (rsvp.scope == "all" or r.key == rsvp.key)))
    segments = list(old.segments)
    if scope != "single" or not old.is_series:
        segments = [replace(s, attendees=tuple(replace(a, response=msg.response) if a.email == upn else a
                                               for a in s.attendees))
                    if key is None or scope == "all" or s is old.segment_for(key) or s.start > key else s
                    for s in old.segments]
    event = replace(old, segments=tuple(segments), rsvps=rsvps + (rsvp,), updated_at=msg.occurred_at)
    return _finish(ctx, steps, event, _refs(ctx, old))


def _plan_invite(ctx: _Ctx, key: datetime | None) -> OutboundPlan:
    old = ctx.event
    assert old is not None
    msg = ctx.msg
    invitee = msg.invitee
    assert invitee is not None
    if not old.is_series or key is None:
        if old.is_series:
            return _refuse(msg, "inviting to one instance of a series needs instance.original_start")
        seg = old.segments[0]
        if any(a.email == invitee.email for a in seg.attendees):
            return _finish(ctx, [], old, _refs(ctx, old), (f"{invitee.email} is already invited",))
        fields = replace(msg.event, attendees=(*[Person("", a.email, a.name, a.kind) for a in seg.attendees], invitee),
                         given=frozenset({"attendees"}))
        return _plan_update_all(replace(ctx, msg=replace(msg, event=fields)))
    if key in old.deleted:
        return _refuse(msg, f"the instance of {_iso(key)} was deleted")
    current = _instance_values(old, key)
    if any(a.email == invitee.email for a in current["attendees"]):
        return _finish(ctx, [], old, _refs(ctx, old), (f"{invitee.email} is already invited to that instance",))
    people = [Person("", a.email, a.name, a.kind) for a in current["attendees"]] + [invitee]
    fields = replace(msg.event, attendees=tuple(people), given=frozenset({"attendees"}))
    plan = _plan_update_single(replace(ctx, msg=replace(msg, event=fields)), key)
    steps = tuple(replace(s, rule="C5", reason=f"invite {invitee.email} to the instance of {_iso(key)} only: "
                                               "Outlook gives them a single-instance event (C5)") for s in plan.steps)
    return replace(plan, steps=steps)


# --------------------------------------------------------------------------- entry point


def plan_outbound(
    msg: OutboundMessage,
    event: Event | None,
    links: Sequence[OutlookLink],
    users: Mapping[str, DirectoryUser],
    *,
    app_property: str,
) -> OutboundPlan:
    """Plan one outbound message against the stored event (pure).

    Args:
        event: the stored event (None when Communifire's event is not stored yet).
        links: every user's links to the event.
        users: the directory: every user the message or the event names, by user id.
        app_property: the extended property id our event id is stamped on.
    """
    if msg.calendar != "my":
        return _refuse(msg, "space calendars are never synced with Outlook (rule C6); only My Calendar is")
    if event is not None and event.calendar != "my":
        return _refuse(msg, "the event belongs to a space calendar, which is never synced (rule C6)")
    organizer = msg.event.organizer
    assert organizer is not None
    org = users.get(organizer.user_id)
    needs_organizer = msg.operation in ("create", "update", "delete", "invite")
    if org is None or (needs_organizer and not org.connected):
        state = "unknown to the app" if org is None else "not connected to Outlook"
        if org is None or needs_organizer:
            return _refuse(msg, f"the organizer {organizer.user_id} is {state}; their Outlook holds the meeting")
    if event is not None and org is not None and event.organizer and org.upn and event.organizer.lower() != org.upn.lower() \
            and event.organizer.lower() != organizer.email:
        return _refuse(msg, f"event {event.id} is organized by {event.organizer}, not by {organizer.email}")
    if event is None and msg.operation != "create":
        if msg.operation == "delete":
            return OutboundPlan(msg.operation_id, msg.event.id, msg.operation, msg.scope,
                                notes=("the event is not stored (already deleted, or never synced): nothing to do",))
        return _refuse(msg, f"event {msg.event.id} is unknown to the app (never created through it, or deleted)")
    ctx = _Ctx(msg, event, tuple(links), users, app_property, org)  # type: ignore[arg-type]
    key = msg.instance
    if event is not None and msg.operation != "create":
        if key is not None and event.is_series and not _is_occurrence(event, key):
            return _refuse(msg, f"instance.original_start {_iso(key)} is not an instance of event {event.id}")
        if key is None and event.is_series and msg.scope in ("single", "following") and msg.operation != "rsvp":
            return _refuse(msg, f"scope {msg.scope} on a series needs instance.original_start (InstanceReplaceDate)")
        if msg.operation == "rsvp" and msg.scope != "all" and event.is_series and key is None:
            return _refuse(msg, f"scope {msg.scope} on a series needs instance.original_start (InstanceReplaceDate)")
    try:
        if msg.operation == "create":
            return _plan_create(ctx)
        assert event is not None
        if msg.operation == "update":
            if not event.is_series or msg.scope == "all":
                return _plan_update_all(ctx)
            assert key is not None
            if msg.scope == "single":
                return _plan_update_single(ctx, key)
            return _split(ctx, key, msg.event, delete_tail=False)
        if msg.operation == "delete":
            if not event.is_series or msg.scope == "all":
                return _plan_delete_all(ctx)
            assert key is not None
            if msg.scope == "single":
                return _plan_delete_single(ctx, key)
            return _split(ctx, key, None, delete_tail=True)
        if msg.operation == "rsvp":
            return _plan_rsvp(ctx, key if event.is_series else None)
        return _plan_invite(ctx, key)
    except (ModelError, RecurrenceError, TimeZoneError) as exc:
        return _refuse(msg, f"the change does not fit event {msg.event.id}: {exc}")


def plan_title_fixes(event: Event, observed: Sequence[tuple[OutlookLink, Mapping[str, Any]]],
                     organizer_id: str, writable: Iterable[str]) -> tuple[Step, ...]:
    """A7/O5: items that still show another name than Communifire's get its title.

    ``observed`` pairs each link with the raw Graph item just read. Only single-instance
    copies in attendees' mailboxes can drift (Outlook leaves them alone after a series
    reset, O5); items of the meeting itself follow the organizer's writes.
    """
    allowed = set(writable)
    steps = []
    for link, item in observed:
        if link.kind != "instance" or link.user_id == organizer_id or link.user_id not in allowed:
            continue
        if item.get("isCancelled") or link.instance_start is None:
            continue
        want = _instance_values(event, link.instance_start)["title"] if link.instance_start in event.exceptions \
            else event.segment_for(link.instance_start).title
        if item.get("subject") != want:
            steps.append(_step(link.user_id, "patch", link.outlook_id, {"subject": want}, "A7",
                               f"the single-instance copy shows {item.get('subject')!r}; Communifire's name is {want!r}"))
    return tuple(steps)
