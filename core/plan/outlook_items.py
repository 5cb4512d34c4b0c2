"""Outlook's side of one user's calendar, as plain values: Graph event JSON normalised.

Owns:
- ``OutlookItem``: one Graph event (single instance, series master, occurrence or
  exception) with its identity (id, type, series master id, ``originalStart``, iCalUId,
  changeKey, lastModifiedDateTime), the mailbox owner's view (organizer or not, own
  response) and its *normalized content* for the model's FIELDS plus the recurrence;
- ``parse_item``: Graph JSON -> ``OutlookItem`` (bare delta occurrence rows included:
  GRAPH.md section 2), failing with ``OutlookItemError`` naming the item;
- ``content_of``/``content_hash``: the normalized, JSON-able content of an item and its
  stable hash. "Changed" means this hash changed (STYLE rule 5): a new changeKey or
  lastModifiedDateTime alone is no change (rules A9, D1);
- ``OutlookSeries``/``OutlookSnapshot``/``build_snapshot``: what the shell gathered for a
  user's window, as values the planner (``core.plan.inbound``) reads.

Invariants: pure (no I/O, no clock); values are frozen; every datetime is aware UTC;
attendees are sorted by e-mail and unique; responses use ``core.plan.model.RESPONSES``
(Graph's ``tentativelyAccepted`` -> ``tentative``, ``notResponded`` -> ``none``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from core.plan.bodies import body_meaning, html_to_text
from core.plan.model import FIELDS, Attendee, ModelError, Window, frozen_map
from core.plan.recurrence import (
    Pattern,
    Range,
    Recurrence,
    RecurrenceError,
    graph_property,
    occurrence_id_date,
    occurrence_start_on,
    parse_recurrence,
)
from core.plan.timezones import MIN_UTC, TimeZoneError, is_sentinel, is_unset_zone, parse_graph_datetime, parse_utc, resolve_zone

__all__ = [
    "APP_EVENT_ID_PROPERTY",
    "CONTENT_KEYS",
    "ITEM_TYPES",
    "OutlookItem",
    "OutlookItemError",
    "OutlookSeries",
    "OutlookSnapshot",
    "build_snapshot",
    "content_hash",
    "content_of",
    "field_from_json",
    "field_to_json",
    "hash_content",
    "instance_uid_parts",
    "iso",
    "parse_item",
    "recurrence_from_json",
    "recurrence_to_json",
]

#: The single-value extended property that carries our Communifire event id on every
#: Outlook item this app created or adopted (DESIGN.md, Identity; rule A9).
APP_EVENT_ID_PROPERTY = "String {6f8e1a52-3c4b-4d8e-9a51-2b7c0d9e4f13} Name CommunifireEventId"

ITEM_TYPES = ("singleInstance", "occurrence", "exception", "seriesMaster")

#: The keys of ``content_of``: the model's FIELDS, the recurrence, and who organizes.
CONTENT_KEYS: tuple[str, ...] = (*FIELDS, "recurrence", "organizer", "is_organizer")

_RESPONSES = {
    "none": "none",
    "organizer": "organizer",
    "tentativelyaccepted": "tentative",
    "tentative": "tentative",
    "accepted": "accepted",
    "declined": "declined",
    "notresponded": "none",
}
_ATTENDEE_KINDS = {"required": "required", "optional": "optional", "resource": "resource"}


class OutlookItemError(ValueError):
    """A Graph event that cannot be understood.

    Attributes:
        item_id: the Graph id of the item at fault ("" when it had none).
        field: the Graph property at fault, when there is one.
    """

    def __init__(self, message: str, *, item_id: str = "", field: str | None = None) -> None:
        super().__init__(f"outlook item {item_id or '<no id>'}: {message}")
        self.item_id = item_id
        self.field = field


# --------------------------------------------------------------------------- JSON forms


def iso(value: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds: Table Storage's form)."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_iso(value: str) -> datetime:
    return parse_utc(value)


def recurrence_to_json(rec: Recurrence | None) -> dict[str, Any] | None:
    """A recurrence as canonical JSON (the same shape ``core.adapters.rows`` stores)."""
    if rec is None:
        return None
    p, r = rec.pattern, rec.range
    return {
        "pattern": {
            "type": p.type,
            "interval": p.interval,
            "days_of_week": list(p.days_of_week),
            "day_of_month": p.day_of_month,
            "month": p.month,
            "index": p.index,
            "first_day_of_week": p.first_day_of_week,
        },
        "range": {
            "type": r.type,
            "start_date": r.start_date.isoformat(),
            "end_date": r.end_date.isoformat() if r.end_date else None,
            "number_of_occurrences": r.number_of_occurrences,
            "time_zone": r.time_zone,
        },
    }


def recurrence_from_json(data: Mapping[str, Any] | None) -> Recurrence | None:
    """The inverse of ``recurrence_to_json``."""
    if not data:
        return None
    p, r = dict(data["pattern"]), dict(data["range"])
    return Recurrence(
        Pattern(
            type=p["type"],
            interval=p["interval"],
            days_of_week=tuple(p.get("days_of_week") or ()),
            day_of_month=p.get("day_of_month", 0),
            month=p.get("month", 0),
            index=p.get("index", "first"),
            first_day_of_week=p.get("first_day_of_week", "sunday"),
        ),
        Range(
            type=r["type"],
            start_date=date.fromisoformat(r["start_date"]),
            end_date=date.fromisoformat(r["end_date"]) if r.get("end_date") else None,
            number_of_occurrences=r.get("number_of_occurrences", 0),
            time_zone=r.get("time_zone", ""),
        ),
    )


def field_to_json(name: str, value: Any) -> Any:
    """One field's value (FIELDS, ``recurrence``) in its JSON form."""
    if name in ("start", "end"):
        return iso(value)
    if name == "attendees":
        return [{"email": a.email, "name": a.name, "kind": a.kind, "response": a.response} for a in value]
    if name == "recurrence":
        return recurrence_to_json(value)
    return value


def field_from_json(name: str, value: Any) -> Any:
    """The inverse of ``field_to_json``."""
    if name in ("start", "end"):
        return _from_iso(value)
    if name == "attendees":
        return tuple(Attendee(**dict(a)) for a in value)
    if name == "recurrence":
        return recurrence_from_json(value)
    return value


#: Exchange's GlobalObjectId prefix (MS-OXOCAL PidLidGlobalObjectId), as Graph shows it in iCalUId.
_GOID_PREFIX = "040000008200E00074C5B7101A82E008"


def instance_uid_parts(ical_uid: str) -> tuple[str, date] | None:
    """The series iCalUId and instance date of a one-instance invitation's iCalUId.

    Exchange gives the invitation to one occurrence the series' GlobalObjectId with that
    occurrence's date in bytes 16-19 (MS-OXOCAL 2.2.1.27); the series itself has zeros
    there. None when the id is not of that form or names no date (rules C5, O5, A7).
    """
    uid = ical_uid.upper()
    if not uid.startswith(_GOID_PREFIX) or len(uid) <= 40:
        return None
    stamp = uid[32:40]
    if stamp == "00000000":
        return None
    try:
        day = date(int(stamp[:4], 16), int(stamp[4:6], 16), int(stamp[6:8], 16))
    except ValueError:
        return None
    return ical_uid[:32] + "00000000" + ical_uid[40:], day


def hash_content(content: Mapping[str, Any]) -> str:
    """The stable hash of a normalized content dict (``content_of``'s form); the body
    counts by its meaning (A9: Exchange's rewriting of a body is no change)."""
    keyed = {k: content.get(k) for k in CONTENT_KEYS}
    if isinstance(keyed.get("body"), str):
        keyed["body"] = body_meaning(keyed["body"])
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- items


@dataclass(frozen=True, slots=True)
class OutlookItem:
    """One Graph event, normalized.

    ``original_start`` is Graph's ``originalStart`` (UTC) for occurrences and exceptions,
    the key of the instance they stand for (rule D2); None for singles and masters.
    ``response``/``response_time`` are the mailbox owner's ``responseStatus``.
    ``bare`` is True for a delta row that carried no content (GRAPH.md section 2): its
    content fields are defaults and must not be compared.
    """

    id: str
    type: str
    start: datetime
    end: datetime
    series_master_id: str | None = None
    original_start: datetime | None = None
    occurrence_id: str = ""
    ical_uid: str = ""
    change_key: str = ""
    last_modified: datetime | None = None
    is_cancelled: bool = False
    is_organizer: bool = False
    response: str = "none"
    response_time: datetime | None = None
    organizer: str = ""
    title: str = ""
    body: str = ""
    location: str = ""
    is_all_day: bool = False
    time_zone: str = "UTC"
    attendees: tuple[Attendee, ...] = ()
    recurrence: Recurrence | None = None
    app_event_id: str = ""
    bare: bool = False

    def __post_init__(self) -> None:
        if self.type not in ITEM_TYPES:
            raise OutlookItemError(f"unknown type {self.type!r}", item_id=self.id, field="type")
        for name in ("start", "end", "original_start", "last_modified", "response_time"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise OutlookItemError(f"{name} must be timezone-aware", item_id=self.id, field=name)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def value(self, name: str) -> Any:
        """The item's value of one of FIELDS (or ``recurrence``)."""
        return getattr(self, name)


_get = graph_property  # one case-insensitive reader of Graph JSON, shared with core.plan.recurrence


def _text(value: Any, *, item_id: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise OutlookItemError(f"{name} must be a string, got {value!r}", item_id=item_id, field=name)
    return value


def _response(value: Any, *, item_id: str, name: str) -> str:
    if value is None or value == "":
        return "none"
    if not isinstance(value, str) or value.strip().casefold() not in _RESPONSES:
        raise OutlookItemError(f"unknown response {value!r}", item_id=item_id, field=name)
    return _RESPONSES[value.strip().casefold()]


def _normal_body(value: Any, *, item_id: str) -> str:
    """The body as Communifire keeps it: plain text. Exchange returns HTML (its envelope,
    or its "converted from text" template, GRAPH.md section 10): that is read as the text
    it shows (``core.plan.bodies``); a text body is kept, line ends normalised."""
    if value is None:
        return ""
    content_type = "text"
    if isinstance(value, Mapping):
        content = _get(value, "content")
        content_type = str(_get(value, "contentType") or "text").strip().casefold()
    else:
        content = value
    text = _text(content, item_id=item_id, name="body.content")
    if content_type == "html":
        return html_to_text(text)
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip()


def _attendees(value: Any, *, item_id: str) -> tuple[Attendee, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise OutlookItemError(f"attendees must be a list, got {value!r}", item_id=item_id, field="attendees")
    by_email: dict[str, Attendee] = {}
    for raw in value:
        if not isinstance(raw, Mapping):
            raise OutlookItemError(f"attendee must be an object, got {raw!r}", item_id=item_id, field="attendees")
        address = _get(raw, "emailAddress") or {}
        email = _text(_get(address, "address"), item_id=item_id, name="attendees.emailAddress.address")
        email = email.strip().lower()
        if not email:
            continue  # a display-name-only attendee cannot be matched to anyone
        name = _text(_get(address, "name"), item_id=item_id, name="attendees.emailAddress.name").strip()
        kind = _ATTENDEE_KINDS.get(str(_get(raw, "type") or "required").casefold(), "required")
        status = _get(raw, "status") or {}
        response = _response(_get(status, "response"), item_id=item_id, name="attendees.status.response")
        by_email.setdefault(email, Attendee(email=email, name=name, kind=kind, response=response))
    return tuple(by_email[e] for e in sorted(by_email))


def _app_event_id(value: Any, *, item_id: str) -> str:
    if not value:
        return ""
    if not isinstance(value, list):
        raise OutlookItemError(
            f"singleValueExtendedProperties must be a list, got {value!r}",
            item_id=item_id, field="singleValueExtendedProperties")
    for prop in value:
        if isinstance(prop, Mapping) and str(_get(prop, "id") or "").casefold() == APP_EVENT_ID_PROPERTY.casefold():
            return _text(_get(prop, "value"), item_id=item_id, name="singleValueExtendedProperties.value").strip()
    return ""


def _when(raw: Mapping[str, Any], key: str, *, item_id: str) -> datetime:
    value = _get(raw, key)
    if value is None:
        raise OutlookItemError(f"{key} is missing", item_id=item_id, field=key)
    try:
        return parse_graph_datetime(value)
    except TimeZoneError as exc:
        raise OutlookItemError(f"{key}: {exc}", item_id=item_id, field=key) from exc


def _all_day_instant(raw: Mapping[str, Any], key: str, value: datetime, *, item_id: str) -> datetime:
    """An all-day boundary as the instant it is: midnight of its date in the event's own zone.

    Graph shows all-day times floating, midnight labelled with whatever zone was asked for
    (UTC by default); the date is what counts, the instant is that date's midnight where
    the event was made (issue 11 item 7: all-day instances are whole dates).
    """
    label = _get(_get(raw, key) or {}, "timeZone")
    try:
        shown = resolve_zone(label if isinstance(label, str) else None)
        own = resolve_zone(_zone_name(raw, item_id=item_id))
    except TimeZoneError as exc:
        raise OutlookItemError(f"{key}: {exc}", item_id=item_id, field=key) from exc
    wall = value.astimezone(shown).replace(tzinfo=None)
    return wall.replace(tzinfo=own, fold=0).astimezone(timezone.utc)


def _offset_time(raw: Mapping[str, Any], key: str, *, item_id: str) -> datetime | None:
    value = _get(raw, key)
    if value is None or value == "":
        return None
    try:
        parsed = parse_utc(value)
    except TimeZoneError as exc:
        raise OutlookItemError(f"{key}: {exc}", item_id=item_id, field=key) from exc
    return None if is_sentinel(parsed) else parsed


def _zone_name(raw: Mapping[str, Any], *, item_id: str) -> str:
    for key in ("originalStartTimeZone",):
        name = _get(raw, key)
        if isinstance(name, str) and not is_unset_zone(name):
            try:
                resolve_zone(name, fallback=None)
            except TimeZoneError as exc:
                raise OutlookItemError(f"{key}: {exc}", item_id=item_id, field=key) from exc
            return name.strip()
    start = _get(raw, "start")
    name = _get(start, "timeZone") if isinstance(start, Mapping) else None
    if isinstance(name, str) and not is_unset_zone(name):
        return name.strip()
    return "UTC"


def parse_item(graph_json: Mapping[str, Any]) -> OutlookItem:
    """Normalize one Graph event (calendarView, delta, /instances or GET row).

    Raises:
        OutlookItemError: not an object, no id, an unknown type, or a malformed property
            (the error names the item id and the property).
    """
    if not isinstance(graph_json, Mapping):
        raise OutlookItemError(f"an event must be an object, got {type(graph_json).__name__}")
    item_id = _get(graph_json, "id")
    if not isinstance(item_id, str) or not item_id.strip():
        raise OutlookItemError("the event has no id", field="id")
    item_id = item_id.strip()
    kind = _get(graph_json, "type") or "singleInstance"
    if kind not in ITEM_TYPES:
        raise OutlookItemError(f"unknown type {kind!r}", item_id=item_id, field="type")
    start = _when(graph_json, "start", item_id=item_id)
    end = _when(graph_json, "end", item_id=item_id)
    if _get(graph_json, "isAllDay"):
        start, end = (_all_day_instant(graph_json, key, value, item_id=item_id)
                      for key, value in (("start", start), ("end", end)))
    if end < start:
        raise OutlookItemError(f"ends ({end.isoformat()}) before it starts ({start.isoformat()})",
                               item_id=item_id, field="end")
    bare = kind in ("occurrence", "exception") and _get(graph_json, "subject") is None \
        and _get(graph_json, "lastModifiedDateTime") is None
    recurrence = None
    raw_rec = _get(graph_json, "recurrence")
    if raw_rec is not None and kind == "seriesMaster":
        try:
            recurrence = parse_recurrence(raw_rec)
        except RecurrenceError as exc:
            raise OutlookItemError(f"recurrence: {exc}", item_id=item_id, field="recurrence") from exc
    elif kind == "seriesMaster" and not bare:
        raise OutlookItemError("a series master has no recurrence", item_id=item_id, field="recurrence")
    original_start = _offset_time(graph_json, "originalStart", item_id=item_id)
    location = _get(graph_json, "location")
    status = _get(graph_json, "responseStatus") or {}
    organizer = _get(_get(graph_json, "organizer") or {}, "emailAddress") or {}
    change_key = _text(_get(graph_json, "changeKey"), item_id=item_id, name="changeKey")
    if not change_key:
        etag = _text(_get(graph_json, "@odata.etag"), item_id=item_id, name="@odata.etag")
        change_key = etag[3:-1] if etag.startswith('W/"') and etag.endswith('"') else etag
    try:
        return OutlookItem(
            id=item_id,
            type=kind,
            start=start,
            end=end,
            series_master_id=_get(graph_json, "seriesMasterId") or None,
            original_start=original_start,
            occurrence_id=_text(_get(graph_json, "occurrenceId"), item_id=item_id, name="occurrenceId"),
            ical_uid=_text(_get(graph_json, "iCalUId"), item_id=item_id, name="iCalUId"),
            change_key=change_key,
            last_modified=_offset_time(graph_json, "lastModifiedDateTime", item_id=item_id),
            is_cancelled=bool(_get(graph_json, "isCancelled")),
            is_organizer=bool(_get(graph_json, "isOrganizer")),
            response=_response(_get(status, "response"), item_id=item_id, name="responseStatus.response"),
            response_time=_offset_time(status, "time", item_id=item_id) if isinstance(status, Mapping) else None,
            organizer=_text(_get(organizer, "address"), item_id=item_id, name="organizer").strip().lower(),
            title=_text(_get(graph_json, "subject"), item_id=item_id, name="subject").strip(),
            body=_normal_body(_get(graph_json, "body"), item_id=item_id),
            location=_text(_get(location, "displayName") if isinstance(location, Mapping) else location,
                           item_id=item_id, name="location.displayName").strip(),
            is_all_day=bool(_get(graph_json, "isAllDay")),
            time_zone=_zone_name(graph_json, item_id=item_id),
            attendees=_attendees(_get(graph_json, "attendees"), item_id=item_id),
            recurrence=recurrence,
            app_event_id=_app_event_id(_get(graph_json, "singleValueExtendedProperties"), item_id=item_id),
            bare=bare,
        )
    except (ModelError, TimeZoneError) as exc:
        raise OutlookItemError(str(exc), item_id=item_id) from exc


def content_of(item: OutlookItem) -> dict[str, Any]:
    """The item's normalized content as JSON: FIELDS, recurrence, organizer, is_organizer."""
    out = {name: field_to_json(name, item.value(name)) for name in FIELDS}
    out["recurrence"] = recurrence_to_json(item.recurrence)
    out["organizer"] = item.organizer
    out["is_organizer"] = item.is_organizer
    return out


def content_hash(item: OutlookItem) -> str:
    """The stable hash of ``content_of(item)``; identity and changeKey play no part (A9)."""
    return hash_content(content_of(item))


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, slots=True)
class OutlookSeries:
    """A series master with all its instances in the window (as /instances returned them).

    ``instances`` maps original start (UTC) -> occurrence or exception. ``cancelled`` is
    the set of original-start *dates* named by the master's ``cancelledOccurrences``
    when Graph returned the property, else None (GRAPH.md section 3).
    """

    master: OutlookItem
    instances: Mapping[datetime, OutlookItem] = field(default_factory=dict)
    cancelled: frozenset[date] | None = None

    def __post_init__(self) -> None:
        if self.master.type != "seriesMaster":
            raise OutlookItemError(f"not a series master ({self.master.type})", item_id=self.master.id)
        object.__setattr__(self, "instances", frozen_map(self.instances))


@dataclass(frozen=True, slots=True)
class OutlookSnapshot:
    """What one user's Outlook holds in the window, as gathered by the shell.

    ``complete``: True when this is every item in the window (a linked item missing now
    was deleted in Outlook); False for a delta round (unlisted linked items unchanged).
    ``removed_ids``: delta ``@removed`` ids and masters whose GET answered 404; they may
    lie outside the window (GRAPH.md section 2): the planner filters them.
    """

    user_id: str
    window: Window
    singles: Mapping[str, OutlookItem] = field(default_factory=dict)
    series: Mapping[str, OutlookSeries] = field(default_factory=dict)
    removed_ids: frozenset[str] = frozenset()
    complete: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "singles", frozen_map(self.singles))
        object.__setattr__(self, "series", frozen_map(self.series))
        object.__setattr__(self, "removed_ids", frozenset(self.removed_ids))

    @property
    def is_empty(self) -> bool:
        return not self.singles and not self.series

    def item(self, outlook_id: str) -> OutlookItem | None:
        """The single or series master with this id, if listed."""
        if outlook_id in self.singles:
            return self.singles[outlook_id]
        if outlook_id in self.series:
            return self.series[outlook_id].master
        return None


def _newer(a: OutlookItem, b: OutlookItem) -> OutlookItem:
    """Of two copies of one item (delta replays), the later-modified one (ties: b)."""
    la, lb = a.last_modified or MIN_UTC, b.last_modified or MIN_UTC
    return a if la > lb else b


def _cancelled_dates(raw: Mapping[str, Any], master_id: str) -> frozenset[date] | None:
    value = _get(raw, "cancelledOccurrences")
    if value is None:
        return None
    if not isinstance(value, list):
        raise OutlookItemError(f"cancelledOccurrences must be a list, got {value!r}",
                               item_id=master_id, field="cancelledOccurrences")
    days = set()
    for oid in value:
        try:
            days.add(occurrence_id_date(oid))
        except RecurrenceError as exc:
            raise OutlookItemError(f"cancelledOccurrences: {exc}", item_id=master_id,
                                   field="cancelledOccurrences") from exc
    return frozenset(days)


def _instance_key(inst: OutlookItem, master: OutlookItem) -> datetime:
    """The instance's original start: ``originalStart``, else its occurrenceId's slot."""
    if inst.original_start is not None:
        return inst.original_start
    if inst.occurrence_id and master.recurrence is not None:
        try:
            day = occurrence_id_date(inst.occurrence_id)
            zone = resolve_zone(master.time_zone, fallback="UTC")
            return occurrence_start_on(master.recurrence, master.start.astimezone(zone), day,
                                       is_all_day=master.is_all_day)
        except (RecurrenceError, TimeZoneError) as exc:
            raise OutlookItemError(f"occurrenceId: {exc}", item_id=inst.id, field="occurrenceId") from exc
    if inst.type == "occurrence":
        return inst.start  # an unmodified occurrence starts at its original start
    raise OutlookItemError("an exception without originalStart or occurrenceId", item_id=inst.id,
                           field="originalStart")


def build_snapshot(
    user_id: str,
    window: Window,
    singles_json: Iterable[Mapping[str, Any]],
    masters_json: Mapping[str, Mapping[str, Any]],
    instances_json: Mapping[str, Iterable[Mapping[str, Any]]],
    removed_ids: Iterable[str] = (),
    complete: bool = True,
) -> OutlookSnapshot:
    """Build a user's snapshot from what the shell read.

    ``singles_json`` holds single-instance rows (other rows there are ignored: series are
    read through ``masters_json`` and ``instances_json``, each series in full). A master
    id present both here and in ``removed_ids`` is not removed (it was read just now).

    Raises:
        OutlookItemError: any malformed item, or an instance listed under another master.
    """
    singles: dict[str, OutlookItem] = {}
    for raw in singles_json:
        item = parse_item(raw)
        if item.type != "singleInstance":
            continue
        singles[item.id] = _newer(singles[item.id], item) if item.id in singles else item
    series: dict[str, OutlookSeries] = {}
    for master_id, raw in masters_json.items():
        master = parse_item(raw)
        if master.type != "seriesMaster":
            raise OutlookItemError(f"listed as a series master but is {master.type}", item_id=master.id)
        instances: dict[datetime, OutlookItem] = {}
        for raw_inst in instances_json.get(master_id, ()) or ():
            inst = parse_item(raw_inst)
            if inst.type not in ("occurrence", "exception"):
                continue
            if inst.series_master_id not in (None, master.id):
                raise OutlookItemError(f"instance of {inst.series_master_id} listed under {master.id}",
                                       item_id=inst.id, field="seriesMasterId")
            key = _instance_key(inst, master)
            instances[key] = _newer(instances[key], inst) if key in instances else inst
        series[master.id] = OutlookSeries(master, instances, _cancelled_dates(raw, master.id))
    present = set(singles) | set(series)
    return OutlookSnapshot(
        user_id=user_id,
        window=window,
        singles=singles,
        series=series,
        removed_ids=frozenset(r for r in removed_ids if r not in present),
        complete=complete,
    )
