"""Communifire's outbound change messages: the v1 contract, parsed and validated.

Owns the v1 message contract (``docs/messages.md``,
``schemas/outbound-message.v1.schema.json``): ``parse_message`` turns a decoded JSON object
into a frozen ``OutboundMessage`` or raises ``MessageError`` with a reason an administrator
can act on (SPEC section 7: bad input gets a clear error and loses nothing). Times must be
UTC and aware; a recurrence must be one Graph can hold (A5, O3); ``calendar`` says whether
the event is on My Calendar (only that one is synced, C6, which ``dispatch`` enforces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Mapping

from core.plan.recurrence import Recurrence, RecurrenceError, first_occurrence, parse_recurrence, to_graph
from core.plan.timezones import UTC, TimeZoneError, resolve_zone, windows_name_for


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
    {"v", "operation_id", "occurred_at", "sequence", "actor", "calendar", "space_id", "operation", "scope",
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


class MessageError(ValueError):
    """An outbound message that can never be applied; ``reason`` says why, ``field`` where."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


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
    #: the event's version from the backend (incremented per change of the event); when
    #: absent, ``occurred_at`` orders the event's messages (``ordering.py``)
    sequence: int | None = None


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
    sequence = data.get("sequence")
    if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)
                                 or not 0 <= sequence < 2**63):
        raise _fail("must be a whole number from 0 (the event's version, incremented by the backend)", "sequence")
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
        invitee=invitee, space_id=space_id, sequence=sequence,
    )
