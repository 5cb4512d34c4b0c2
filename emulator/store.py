"""Mailboxes and calendar items, with Exchange's rules for series and meetings.

Owns: each emulated user's mailbox (its own item ids), series masters with their
exceptions (keyed by the local date of the slot they replace) and cancelled
occurrences, single events, meeting copies in attendees' mailboxes, the per-mailbox
change log used by delta, and every mutation Graph or the Outlook client can make.

Invariants:
- an occurrence's id is derived from its master's id and slot date, so it is stable and
  an exception keeps the id of the occurrence it replaces;
- a series has at most one slot per local date; ``occurrenceId`` = ``OID.{masterId}.{date}``;
- a change to a master's time or recurrence drops its exceptions (O5; MS-OXOCAL), a change
  to other master fields never reaches existing exceptions (O4);
- deleting an occurrence only adds its date to ``cancelled`` (O7);
- meeting copies are derived from the organizer's item after every organizer-side change;
  an invitee of a single occurrence gets a single-instance copy that is left alone when
  the exception it came from disappears (O5, O6).
All methods expect the caller to hold the emulator lock.
"""
from __future__ import annotations

import base64
import copy
import datetime as _dt
import hashlib
import html
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Callable, Iterable

from . import recurrence as rec_mod
from .timeutil import (UTC, TimeZoneError, fmt_dtz, gap_shift, localize, parse_dtz, resolve_tz)
from .web import GraphError

ID_PREFIX = "AAMkAG"
ICAL_PREFIX = "040000008200E00074C5B7101A82E008"
NO_TIME = "0001-01-01T00:00:00Z"

WRITABLE = {
    "subject", "body", "start", "end", "location", "locations", "attendees", "categories",
    "importance", "sensitivity", "showAs", "isAllDay", "isReminderOn",
    "reminderMinutesBeforeStart", "responseRequested", "allowNewTimeProposals",
    "isOnlineMeeting", "onlineMeetingProvider", "hideAttendees", "recurrence",
    "transactionId", "singleValueExtendedProperties", "originalStartTimeZone",
    "originalEndTimeZone",
}
READ_ONLY = {
    "@odata.type", "@odata.etag", "@odata.context", "id", "createdDateTime",
    "lastModifiedDateTime", "changeKey", "iCalUId", "hasAttachments", "bodyPreview",
    "isCancelled", "isOrganizer", "seriesMasterId", "type", "webLink", "onlineMeetingUrl",
    "occurrenceId", "isDraft", "responseStatus", "organizer", "onlineMeeting", "originalStart",
    "uid", "cancelledOccurrences", "exceptionOccurrences",
}


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(22)).decode()


def _new_item_id() -> str:
    return ID_PREFIX + base64.urlsafe_b64encode(b"E" + secrets.token_bytes(26)).decode() + "A="


def occurrence_id(master_id: str, day: _dt.date) -> str:
    raw = base64.urlsafe_b64decode(master_id[len(ID_PREFIX):-2])
    return ID_PREFIX + base64.urlsafe_b64encode(b"O" + raw[1:] + day.strftime("%Y%m%d").encode()).decode()


def parse_id(event_id: str) -> tuple[str, str, _dt.date | None]:
    """``("item", id, None)`` or ``("occ", master_id, day)``; ``ValueError`` if malformed."""
    if not event_id.startswith(ID_PREFIX):
        raise ValueError("malformed")
    body = event_id[len(ID_PREFIX):]
    try:
        if body.endswith("A="):
            raw = base64.urlsafe_b64decode(body[:-2])
            if raw[:1] == b"E" and len(raw) == 27:
                return ("item", event_id, None)
        raw = base64.urlsafe_b64decode(body)
        if raw[:1] == b"O" and len(raw) == 35:
            master = ID_PREFIX + base64.urlsafe_b64encode(b"E" + raw[1:27]).decode() + "A="
            day = _dt.datetime.strptime(raw[27:].decode(), "%Y%m%d").date()
            return ("occ", master, day)
    except (ValueError, TypeError):
        pass
    raise ValueError("malformed")


def _new_ical_uid() -> str:
    return (ICAL_PREFIX + "00000000" + secrets.token_hex(8).upper() + "0000000000000000"
            + "10000000" + secrets.token_hex(16).upper())


def occurrence_ical_uid(master_uid: str, day: _dt.date) -> str:
    if master_uid.startswith(ICAL_PREFIX) and len(master_uid) > 40:
        return master_uid[:32] + f"{day.year:04X}{day.month:02X}{day.day:02X}" + master_uid[40:]
    return master_uid + day.strftime("%Y%m%d")


#: Exchange's envelope around an HTML body sent without one (recorded weekly create response).
_HTML_ENVELOPE = ("<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n"
                  "<meta content=\"text/html; charset=us-ascii\">\r\n</head>\r\n<body>\r\n%CONTENT%\r\n</body>\r\n</html>\r\n")
_CONTENT_TYPE_META = "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
#: The HTML a text body becomes (recorded daily create response: "converted from text").
_FROM_TEXT = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
              "<meta name=\"Generator\" content=\"Microsoft Exchange Server\"><!-- converted from text -->"
              "<style><!-- .EmailQuote { margin-left: 1pt; padding-left: 4pt; border-left: #800000 2px solid; } "
              "--></style></head><body><font size=\"2\"><span style=\"font-size:11pt;\"><div class=\"PlainText\">"
              "%CONTENT%</div></span></font></body></html>")


def exchange_body(content_type: str, content: str) -> str:
    """The HTML Exchange stores for a body written as ``content_type`` (GRAPH.md section 10).

    HTML comes back inside Exchange's ``<html><head><meta ...></head><body>`` envelope (a
    document keeps its own, given the charset meta); text is converted to HTML with the
    "converted from text" template, escaped, one ``<br>`` per line break. Empty stays empty.
    """
    if not content:
        return ""
    if content_type.lower() == "html":
        if not re.search(r"(?i)<html[\s>]", content):
            return _HTML_ENVELOPE.replace("%CONTENT%", content)
        if re.search(r"(?i)<meta[^>]+http-equiv=[\"']?content-type", content):
            return content
        head = re.search(r"(?i)<head[^>]*>", content)
        if head:
            return content[:head.end()] + "\r\n" + _CONTENT_TYPE_META + content[head.end():]
        opening = re.search(r"(?i)<html[^>]*>", content)
        return content[:opening.end()] + "<head>" + _CONTENT_TYPE_META + "</head>" + content[opening.end():]
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _FROM_TEXT.replace("%CONTENT%", "<br>\r\n".join(html.escape(line, quote=False) for line in lines))


def text_of(content: str) -> str:
    no_head = re.sub(r"(?is)<head.*?</head>|<style.*?</style>", "", content or "")
    txt = re.sub(r"<[^>]+>", " ", no_head)
    return re.sub(r"\s+", " ", html.unescape(txt)).strip()


def normalize_location(loc: object) -> dict:
    if not isinstance(loc, dict) or not loc.get("displayName"):
        return {"displayName": "", "locationType": "default", "uniqueIdType": "unknown",
                "address": {}, "coordinates": {}}
    out = {"displayName": loc["displayName"], "locationType": loc.get("locationType", "default"),
           "uniqueId": loc.get("uniqueId", loc["displayName"]),
           "uniqueIdType": loc.get("uniqueIdType", "private")}
    for k in ("address", "coordinates", "locationEmailAddress", "locationUri"):
        if k in loc:
            out[k] = loc[k]
    return out


@dataclass
class Exc:
    """A modified occurrence (exception): a full snapshot, no memory of what changed (O4)."""

    day: _dt.date
    props: dict
    start: _dt.datetime
    start_tz: str
    end: _dt.datetime
    end_tz: str
    created: _dt.datetime
    modified: _dt.datetime
    change_key: str
    local: bool = False     # made by the attendee on their copy (a response), not by the organizer


@dataclass
class Item:
    id: str
    kind: str                                  # singleInstance | seriesMaster
    props: dict
    start: _dt.datetime
    start_tz: str
    end: _dt.datetime
    end_tz: str
    created: _dt.datetime
    modified: _dt.datetime
    change_key: str
    ical_uid: str
    recurrence: dict | None = None
    exceptions: dict = field(default_factory=dict)       # date -> Exc
    cancelled: set = field(default_factory=set)          # dates
    local_cancelled: set = field(default_factory=set)    # attendee-side removals
    epoch: int = 0                                       # bumped when exceptions are reset
    org_user: str | None = None                          # copies: organizer's oid
    org_item: str | None = None                          # copies: organizer's item id
    copy_day: _dt.date | None = None                     # single-occurrence invite copy
    copy_fp: str = ""
    copy_links: dict = field(default_factory=dict)       # organizer: oid -> copy id
    occ_links: dict = field(default_factory=dict)        # organizer: (oid, date) -> copy id

    @property
    def is_master(self) -> bool:
        return self.kind == "seriesMaster"


@dataclass
class Instance:
    """One expanded slot of a series: an occurrence or an exception."""

    master: Item
    day: _dt.date
    original_start: _dt.datetime
    start: _dt.datetime
    start_tz: str
    end: _dt.datetime
    end_tz: str
    exc: Exc | None

    @property
    def id(self) -> str:
        return occurrence_id(self.master.id, self.day)

    @property
    def kind(self) -> str:
        return "exception" if self.exc is not None else "occurrence"

    @property
    def props(self) -> dict:
        return self.exc.props if self.exc is not None else self.master.props

    @property
    def change_key(self) -> str:
        return self.exc.change_key if self.exc is not None else self.master.change_key

    @property
    def version(self) -> str:
        if self.exc is not None:
            return self.exc.change_key
        return self.master.change_key + "|" + self.start.isoformat()


@dataclass
class Mailbox:
    user: object                                  # identity.User
    items: dict = field(default_factory=dict)     # id -> Item
    seq: int = 0
    changelog: list = field(default_factory=list)  # (seq, item id)
    transactions: dict = field(default_factory=dict)  # transactionId -> item id
    copies: dict = field(default_factory=dict)    # (org oid, org item id[, date]) -> copy id
    removed_copies: set = field(default_factory=set)
    delta_rounds: dict = field(default_factory=dict)
    delta_tokens: dict = field(default_factory=dict)

    def record(self, item_id: str) -> None:
        self.seq += 1
        self.changelog.append((self.seq, item_id))


# ---------------------------------------------------------------------------
# series arithmetic
# ---------------------------------------------------------------------------

def anchor_tz(item: Item) -> _dt.tzinfo:
    name = item.recurrence["range"]["recurrenceTimeZone"] if item.recurrence else item.start_tz
    return resolve_tz(name)


def slot_start(item: Item, day: _dt.date) -> _dt.datetime:
    tz = anchor_tz(item)
    wall = item.start.astimezone(tz).time().replace(tzinfo=None)
    return localize(_dt.datetime.combine(day, wall), tz).astimezone(UTC)


def local_date(item: Item, when: _dt.datetime) -> _dt.date:
    return when.astimezone(anchor_tz(item)).date()


def is_slot(item: Item, day: _dt.date) -> bool:
    return bool(item.recurrence) and bool(rec_mod.dates_between(item.recurrence, day, day))


def live_slot(item: Item, day: _dt.date) -> bool:
    return is_slot(item, day) and day not in item.cancelled and day not in item.local_cancelled


def instance_at(item: Item, day: _dt.date) -> Instance:
    orig = slot_start(item, day)
    exc = item.exceptions.get(day)
    if exc is not None:
        return Instance(item, day, orig, exc.start, exc.start_tz, exc.end, exc.end_tz, exc)
    if item.props.get("isAllDay"):  # whole local days, 23 or 25 hours on a DST day
        tz = anchor_tz(item)
        days = item.end.astimezone(tz).date() - item.start.astimezone(tz).date()
        end = localize(_dt.datetime.combine(day + days, _dt.time(0)), tz).astimezone(UTC)
        return Instance(item, day, orig, orig, item.start_tz, end, item.end_tz, None)
    dur = item.end - item.start
    return Instance(item, day, orig, orig, item.start_tz, orig + dur, item.end_tz, None)


def instances(item: Item, lo: _dt.datetime, hi: _dt.datetime) -> list[Instance]:
    """Occurrences and exceptions overlapping [lo, hi] (boundaries inclusive), no cancelled ones."""
    if not item.is_master:
        return []
    dur = item.end - item.start
    tz = anchor_tz(item)
    d0 = (lo - dur).astimezone(tz).date() - _dt.timedelta(days=1)
    d1 = hi.astimezone(tz).date() + _dt.timedelta(days=1)
    out = []
    gone = item.cancelled | item.local_cancelled
    for day in rec_mod.dates_between(item.recurrence, d0, d1):
        if day in gone or day in item.exceptions:
            continue
        inst = instance_at(item, day)
        if inst.start <= hi and inst.end >= lo:
            out.append(inst)
    for day, exc in item.exceptions.items():
        if day in gone:
            continue
        if exc.start <= hi and exc.end >= lo:
            out.append(instance_at(item, day))
    out.sort(key=lambda i: (i.start, i.day))
    return out


def overlaps(item: Item, lo: _dt.datetime, hi: _dt.datetime) -> bool:
    return item.start <= hi and item.end >= lo


# ---------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------

class Store:
    """All mailboxes. ``notify(oid, change_type, item_id, etag)`` hears every change."""

    def __init__(self, directory, clock, notify: Callable | None = None):
        self.directory = directory
        self.clock = clock
        self.mailboxes: dict[str, Mailbox] = {}
        self.notify = notify or (lambda *a: None)

    # -- lookup ----------------------------------------------------------------
    def mailbox(self, user) -> Mailbox:
        mb = self.mailboxes.get(user.id)
        if mb is None:
            mb = self.mailboxes[user.id] = Mailbox(user)
        return mb

    def mailbox_of(self, oid: str) -> Mailbox | None:
        user = self.directory.users.get(oid)
        return self.mailbox(user) if user else None

    def resolve(self, mb: Mailbox, event_id: str) -> tuple[Item, _dt.date | None]:
        """(item, None) for a single/master id, (master, date) for an occurrence id."""
        try:
            kind, ident, day = parse_id(event_id)
        except ValueError:
            raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.") from None
        item = mb.items.get(ident)
        if item is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if kind == "occ":
            if not item.is_master or not live_slot(item, day):
                raise GraphError(404, "ErrorItemNotFound",
                                 "The specified object was not found in the store.")
            return item, day
        return item, None

    def _touch(self, mb: Mailbox, item: Item, change: str = "updated", now=None) -> None:
        item.modified = now or self.clock.now()
        item.change_key = new_change_key()
        mb.record(item.id)
        self.notify(mb.user.id, change, item.id, item.change_key)

    # -- parsing writes ----------------------------------------------------------
    def _owner_email(self, mb: Mailbox) -> dict:
        return {"emailAddress": {"name": mb.user.display_name, "address": mb.user.upn}}

    @staticmethod
    def _check_fields(body: dict) -> None:
        if not isinstance(body, dict):
            raise GraphError(400, "RequestBodyRead", "The request body must be a JSON object.")
        for k in body:
            if k not in WRITABLE and k not in READ_ONLY and not k.startswith("@"):
                raise GraphError(400, "RequestBodyRead",
                                 f"The property '{k}' does not exist on type "
                                 "'microsoft.graph.event'. Make sure to only use property names "
                                 "that are defined by the type or mark the type as open type.")

    @classmethod
    def _parse_span(cls, body: dict, start: _dt.datetime, end: _dt.datetime
                    ) -> tuple[_dt.datetime, _dt.datetime]:
        """``start``/``end`` as parsed, with an event whose start falls in a DST gap moved
        forward as a whole: the start moves by the gap (RFC 5545 3.3.5, 02:00 on the
        America/Los_Angeles spring-forward night is 03:00 PDT) and the end moves with it, so the
        event keeps its wall-clock length (02:00-03:00 becomes 03:00-04:00 PDT, never 0 minutes
        or ending before it starts)."""
        if "start" not in body or "end" not in body:
            return start, end
        try:
            moved = gap_shift(body["start"]) - gap_shift(body["end"])
        except (TimeZoneError, ValueError, TypeError):
            return start, end
        return (start, end + moved) if moved > _dt.timedelta(0) else (start, end)

    @staticmethod
    def _parse_time(body: dict, key: str) -> tuple[_dt.datetime, str]:
        try:
            return parse_dtz(body[key])
        except TimeZoneError as exc:
            raise GraphError(400, "TimeZoneNotSupportedException",
                             "A valid TimeZone value must be specified. The following TimeZone "
                             f"value is not supported: '{exc}'.") from exc
        except (ValueError, TypeError):
            raise GraphError(400, "RequestBodyRead",
                             f"Cannot convert the literal '{body.get(key)}' to the expected type "
                             "'microsoft.graph.dateTimeTimeZone'.") from None

    def _apply_attendees(self, props: dict, new: list) -> None:
        if not isinstance(new, list):
            raise GraphError(400, "RequestBodyRead", "attendees must be a collection.")
        old = {a["emailAddress"]["address"].lower(): a for a in props.get("attendees", [])}
        out = []
        seen = set()
        for a in new:
            email = (a or {}).get("emailAddress") or {}
            addr = email.get("address")
            if not addr:
                raise GraphError(400, "ErrorInvalidRecipients",
                                 "At least one recipient isn't valid.")
            if addr.lower() in seen:
                continue
            seen.add(addr.lower())
            prev = old.get(addr.lower())
            status = prev["status"] if prev else {"response": "none", "time": NO_TIME}
            user = self.directory.user_by_upn(addr)
            name = email.get("name") or (user.display_name if user else addr)
            out.append({"type": a.get("type", "required"), "status": copy.deepcopy(status),
                        "emailAddress": {"name": name, "address": addr}})
        props["attendees"] = out

    def _apply(self, props: dict, body: dict) -> None:
        """Apply writable non-time fields of ``body`` to ``props``."""
        for k, v in body.items():
            if k in ("start", "end", "recurrence", "transactionId") or k not in WRITABLE:
                continue
            if k == "body":
                v = v or {}
                ctype = (v.get("contentType") or "text").lower()
                content = v.get("content") or ""
                props["body"] = {"contentType": "html", "content": exchange_body(ctype, content)}
                props["bodyPreview"] = text_of(props["body"]["content"])[:255]
            elif k == "location":
                props["location"] = normalize_location(v)
                if "locations" not in body:
                    loc = props["location"]
                    props["locations"] = [dict(loc)] if loc["displayName"] else []
            elif k == "locations":
                props["locations"] = [normalize_location(x) for x in (v or [])]
            elif k == "attendees":
                self._apply_attendees(props, v or [])
            elif k == "singleValueExtendedProperties":
                cur = {p["id"].lower(): p for p in props.get("singleValueExtendedProperties", [])}
                for p in v or []:
                    if not isinstance(p, dict) or "id" not in p or "value" not in p:
                        raise GraphError(400, "ErrorInvalidExtendedPropertyValue",
                                         "An extended property needs id and value.")
                    cur[p["id"].lower()] = {"id": p["id"], "value": str(p["value"])}
                props["singleValueExtendedProperties"] = list(cur.values())
            elif k == "categories":
                props["categories"] = list(v or [])
            else:
                props[k] = v

    def _default_props(self, mb: Mailbox) -> dict:
        return {
            "categories": [], "transactionId": None, "reminderMinutesBeforeStart": 15,
            "isReminderOn": True, "hasAttachments": False, "subject": "", "bodyPreview": "",
            "importance": "normal", "sensitivity": "normal", "isAllDay": False,
            "isCancelled": False, "isOrganizer": True, "responseRequested": True,
            "showAs": "busy", "onlineMeetingUrl": None, "isOnlineMeeting": False,
            "onlineMeetingProvider": "unknown", "allowNewTimeProposals": True, "isDraft": False,
            "hideAttendees": False, "responseStatus": {"response": "organizer", "time": NO_TIME},
            "body": {"contentType": "html", "content": ""},
            "location": normalize_location(None), "locations": [], "attendees": [],
            "organizer": self._owner_email(mb), "onlineMeeting": None,
            "singleValueExtendedProperties": [],
        }

    @staticmethod
    def _check_times(start: _dt.datetime, end: _dt.datetime, all_day: bool, start_tz: str) -> None:
        if end < start:
            raise GraphError(400, "ErrorPropertyValidationFailure",
                             "The end time of the event must be after its start time.")
        if all_day:
            local = start.astimezone(resolve_tz(start_tz))
            if local.time() != _dt.time(0) or (end - start) % _dt.timedelta(days=1):
                raise GraphError(400, "ErrorPropertyValidationFailure",
                                 "Your request can't be completed. If you specify an all-day "
                                 "event, the start and end times must be at midnight and the "
                                 "event must span whole days.")

    def _normalize_recurrence(self, recurrence: dict, start_tz: str) -> dict:
        try:
            return rec_mod.normalize(recurrence, start_tz)
        except rec_mod.RecurrenceError as exc:
            raise GraphError(400, "ErrorPropertyValidationFailure",
                             f"At least one property failed validation. {exc}") from exc

    def _anchor(self, item: Item, requested_start: _dt.datetime) -> None:
        """Put a master's start/end on its first slot, keeping the requested wall time."""
        dur = item.end - item.start
        item.start = requested_start
        first = rec_mod.first_date(item.recurrence)
        if first is None:
            raise GraphError(400, "ErrorRecurrenceHasNoOccurrence",
                             "The recurrence pattern has no occurrences in its range.")
        item.start = slot_start(item, first)
        item.end = item.start + dur

    # -- create ------------------------------------------------------------------
    def create(self, mb: Mailbox, body: dict) -> tuple[Item, bool]:
        """Create an event (POST). Returns (item, created) - False for a transactionId replay."""
        self._check_fields(body)
        tx = body.get("transactionId")
        if tx and tx in mb.transactions and mb.transactions[tx] in mb.items:
            return mb.items[mb.transactions[tx]], False
        if "start" not in body or "end" not in body:
            raise GraphError(400, "ErrorPropertyValidationFailure",
                             "At least one property failed validation. start and end are required.")
        start, start_tz = self._parse_time(body, "start")
        end, end_tz = self._parse_time(body, "end")
        start, end = self._parse_span(body, start, end)
        props = self._default_props(mb)
        self._apply(props, body)
        props["transactionId"] = tx
        self._check_times(start, end, bool(props.get("isAllDay")), start_tz)
        now = self.clock.now()
        props["originalStartTimeZone"] = start_tz
        props["originalEndTimeZone"] = end_tz
        item = Item(_new_item_id(), "singleInstance", props, start, start_tz, end, end_tz, now, now,
                    new_change_key(), _new_ical_uid())
        if body.get("recurrence"):
            item.kind = "seriesMaster"
            item.recurrence = self._normalize_recurrence(body["recurrence"], start_tz)
            self._anchor(item, start)
        mb.items[item.id] = item
        if tx:
            mb.transactions[tx] = item.id
        mb.record(item.id)
        self.notify(mb.user.id, "created", item.id, item.change_key)
        self.notify(mb.user.id, "updated", item.id, item.change_key)  # Exchange sends both
        self.sync_copies(mb, item)
        return item, True

    # -- update ------------------------------------------------------------------
    def update(self, mb: Mailbox, item: Item, body: dict) -> Item:
        """PATCH a single event or a series master (series-wide semantics, O4/O5)."""
        self._check_fields(body)
        start, start_tz = (self._parse_time(body, "start") if "start" in body
                           else (item.start, item.start_tz))
        end, end_tz = (self._parse_time(body, "end") if "end" in body else (item.end, item.end_tz))
        start, end = self._parse_span(body, start, end)
        new_rec = item.recurrence
        if "recurrence" in body:
            if body["recurrence"] is None:
                new_rec = None
            else:
                new_rec = self._normalize_recurrence(body["recurrence"], start_tz)
        all_day = bool(body.get("isAllDay", item.props.get("isAllDay")))
        self._check_times(start, end, all_day, start_tz)
        time_changed = (start != item.start or end != item.end or start_tz != item.start_tz)
        rec_changed = new_rec != item.recurrence
        self._apply(item.props, body)
        if item.is_master or new_rec is not None:
            if new_rec is None:  # recurrence removed: becomes a single event at the first slot
                item.kind = "singleInstance"
                item.recurrence = None
                item.exceptions.clear()
                item.cancelled.clear()
                item.start, item.end = start, end
            else:
                item.kind = "seriesMaster"
                if time_changed or rec_changed:
                    item.exceptions.clear()         # O5: a time change resets the exceptions
                    if rec_changed:
                        item.cancelled.clear()
                    item.epoch += 1
                item.recurrence = new_rec
                item.start, item.end = start, end
                item.start_tz, item.end_tz = start_tz, end_tz
                self._anchor(item, start)
        else:
            item.start, item.end = start, end
        item.start_tz, item.end_tz = start_tz, end_tz
        self._touch(mb, item)
        self.sync_copies(mb, item)
        return item

    def update_occurrence(self, mb: Mailbox, master: Item, day: _dt.date, body: dict) -> Instance:
        """PATCH an occurrence: it becomes (or stays) an exception (O1)."""
        self._check_fields(body)
        if "recurrence" in body and body["recurrence"] is not None:
            raise GraphError(400, "ErrorPropertyValidationFailure",
                             "At least one property failed validation. An occurrence can't have "
                             "a recurrence.")
        inst = instance_at(master, day)
        now = self.clock.now()
        exc = master.exceptions.get(day)
        if exc is None:
            props = copy.deepcopy(master.props)
            exc = Exc(day, props, inst.start, inst.start_tz, inst.end, inst.end_tz, now, now,
                      new_change_key())
        else:
            exc = copy.deepcopy(exc)
        start, start_tz = (self._parse_time(body, "start") if "start" in body
                           else (exc.start, exc.start_tz))
        end, end_tz = (self._parse_time(body, "end") if "end" in body else (exc.end, exc.end_tz))
        start, end = self._parse_span(body, start, end)
        self._check_times(start, end, bool(body.get("isAllDay", exc.props.get("isAllDay"))),
                          start_tz)
        if start != exc.start or end != exc.end:
            self._check_boundary(master, day, start, end)
        self._apply(exc.props, body)
        exc.start, exc.start_tz, exc.end, exc.end_tz = start, start_tz, end, end_tz
        exc.modified = now
        exc.change_key = new_change_key()
        exc.local = master.org_user is not None and exc.local
        master.exceptions[day] = exc
        self._touch(mb, master, now=now)  # the exception lives on the master
        self.sync_copies(mb, master)
        return instance_at(master, day)

    def _neighbour(self, master: Item, day: _dt.date, step: int) -> _dt.date | None:
        """Local date where the previous (-1) or next (+1) live slot currently sits."""
        probe = day
        for _ in range(1000):
            before, after = rec_mod.prev_next(master.recurrence, probe)
            probe = before if step < 0 else after
            if probe is None:
                return None
            if probe in master.cancelled or probe in master.local_cancelled:
                continue
            exc = master.exceptions.get(probe)
            return local_date(master, exc.start) if exc else probe
        return None

    def _check_boundary(self, master: Item, day: _dt.date, start: _dt.datetime,
                        end: _dt.datetime) -> None:
        new_day = local_date(master, start)
        end_day = local_date(master, end - _dt.timedelta(microseconds=1)) if end > start else new_day
        prev_d = self._neighbour(master, day, -1)
        next_d = self._neighbour(master, day, +1)
        if (prev_d is not None and new_day <= prev_d) or (next_d is not None and end_day >= next_d):
            raise GraphError(400, "ErrorOccurrenceCrossingBoundary",
                             "Modified occurrence is crossing or overlapping adjacent occurrence.")

    # -- delete / cancel -----------------------------------------------------------
    def delete(self, mb: Mailbox, item: Item, notify_attendees: bool = True) -> None:
        """Remove a single event or a whole series from this mailbox."""
        del mb.items[item.id]
        mb.record(item.id)
        self.notify(mb.user.id, "deleted", item.id, item.change_key)
        if item.org_user is None and item.props.get("isOrganizer", True):
            if notify_attendees:
                self._cancel_copies(item)
        else:
            key = (item.org_user, item.org_item) if item.copy_day is None else \
                (item.org_user, item.org_item, item.copy_day)
            mb.removed_copies.add(key)
            mb.copies.pop(key, None)

    def delete_occurrence(self, mb: Mailbox, master: Item, day: _dt.date) -> None:
        """Delete one occurrence: it only leaves a date in ``cancelledOccurrences`` (O7)."""
        master.exceptions.pop(day, None)
        if master.org_user is not None:
            master.local_cancelled.add(day)
        else:
            master.cancelled.add(day)
        self._touch(mb, master)  # Exchange notifies only an update of the master
        self.sync_copies(mb, master)

    def _cancel_copies(self, item: Item) -> None:
        for oid, copy_id in list(item.copy_links.items()):
            amb = self.mailbox_of(oid)
            c = amb.items.get(copy_id) if amb else None
            if c is None or c.props.get("isCancelled"):
                continue
            self._mark_cancelled(amb, c)
        item.copy_links.clear()

    def _mark_cancelled(self, mb: Mailbox, c: Item) -> None:
        c.props["isCancelled"] = True
        if not c.props.get("subject", "").startswith("Canceled: "):
            c.props["subject"] = "Canceled: " + c.props.get("subject", "")
        for exc in c.exceptions.values():
            exc.props["isCancelled"] = True
        self._touch(mb, c)

    # -- responses -----------------------------------------------------------------
    def respond(self, mb: Mailbox, item: Item, day: _dt.date | None, response: str,
                send: bool = True) -> None:
        """accept / tentativelyAccept / decline on a master (series) or an occurrence."""
        graph_resp = {"accept": "accepted", "tentativelyAccept": "tentativelyAccepted",
                      "decline": "declined"}[response]
        if item.props.get("isOrganizer", True) and item.org_user is None:
            raise GraphError(400, "ErrorInvalidRequest",
                             "Your request can't be completed. You can't respond to a meeting "
                             "you organized.")
        now = self.clock.now()
        status = {"response": graph_resp, "time": now.strftime("%Y-%m-%dT%H:%M:%S.") +
                  f"{now.microsecond // 1000:03d}0000Z"}
        if day is None:
            item.props["responseStatus"] = dict(status)
            for exc in item.exceptions.values():
                exc.props["responseStatus"] = dict(status)
            if graph_resp == "declined":
                self.delete(mb, item)   # a declined meeting goes to Deleted Items
            else:
                self._touch(mb, item, now=now)
        else:
            if graph_resp == "declined":
                item.exceptions.pop(day, None)
                item.local_cancelled.add(day)
            else:
                exc = item.exceptions.get(day)
                if exc is None:
                    inst = instance_at(item, day)
                    exc = Exc(day, copy.deepcopy(item.props), inst.start, inst.start_tz, inst.end,
                              inst.end_tz, now, now, new_change_key(), local=True)
                    item.exceptions[day] = exc
                exc.props["responseStatus"] = dict(status)
                exc.modified = now
                exc.change_key = new_change_key()
            self._touch(mb, item, now=now)
        if send:
            self._report_response(mb, item, day, status)

    def _report_response(self, mb: Mailbox, copy_item: Item, day, status: dict) -> None:
        org_mb = self.mailbox_of(copy_item.org_user) if copy_item.org_user else None
        org = org_mb.items.get(copy_item.org_item) if org_mb else None
        if org is None:
            return
        addr = mb.user.upn.lower()
        target_day = copy_item.copy_day if copy_item.copy_day is not None else day

        def mark(props: dict) -> bool:
            hit = False
            for a in props.get("attendees", []):
                if a["emailAddress"]["address"].lower() == addr:
                    a["status"] = dict(status)
                    hit = True
            return hit

        def mark_exception(exc: Exc) -> bool:
            # the answer changes the exception itself: new changeKey, so delta re-sends it
            if not mark(exc.props):
                return False
            exc.modified = self.clock.now()
            exc.change_key = new_change_key()
            return True

        changed = False
        if target_day is None:
            changed = mark(org.props)
            for exc in org.exceptions.values():
                changed = mark_exception(exc) or changed
        else:
            exc = org.exceptions.get(target_day)
            if exc is not None:
                changed = mark_exception(exc)
        if changed:
            self._touch(org_mb, org)

    # -- meeting copies ------------------------------------------------------------
    def _attendee_users(self, props: dict, owner_id: str) -> list:
        out = []
        for a in props.get("attendees", []):
            u = self.directory.user_by_upn(a["emailAddress"]["address"])
            if u is not None and u.id != owner_id and u not in out:
                out.append(u)
        return out

    @staticmethod
    def _copy_props(src: dict, keep: dict | None) -> dict:
        p = copy.deepcopy(src)
        p["singleValueExtendedProperties"] = list((keep or {}).get("singleValueExtendedProperties", []))
        p["transactionId"] = None
        p["isOrganizer"] = False
        p["responseStatus"] = copy.deepcopy((keep or {}).get(
            "responseStatus", {"response": "notResponded", "time": NO_TIME}))
        for a in p.get("attendees", []):
            a["status"] = {"response": "none", "time": NO_TIME}
        for k in ("reminderMinutesBeforeStart", "isReminderOn", "categories", "showAs"):
            if keep and k in keep:
                p[k] = keep[k]
        if keep and keep.get("isCancelled"):
            p["isCancelled"] = True
            p["subject"] = keep.get("subject", p.get("subject"))
        return p

    @staticmethod
    def _fingerprint(item: Item) -> str:
        data = [item.props, item.start.isoformat(), item.end.isoformat(), item.start_tz,
                item.end_tz, item.recurrence, sorted(str(d) for d in item.cancelled),
                sorted((str(d), e.props, e.start.isoformat(), e.end.isoformat())
                       for d, e in item.exceptions.items())]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    def sync_copies(self, org_mb: Mailbox, item: Item) -> None:
        """Bring every attendee copy of an organizer's item up to date."""
        if item.org_user is not None or not item.props.get("isOrganizer", True):
            return
        owner = org_mb.user.id
        wanted = {u.id: u for u in self._attendee_users(item.props, owner)}
        for u in wanted.values():
            self._sync_series_copy(org_mb, item, self.mailbox(u))
        for oid in list(item.copy_links):
            if oid not in wanted:  # removed from the meeting: cancellation
                amb = self.mailbox_of(oid)
                c = amb.items.get(item.copy_links[oid]) if amb else None
                if c is not None and not c.props.get("isCancelled"):
                    self._mark_cancelled(amb, c)
                del item.copy_links[oid]
        # invitees of single occurrences (C5): single-instance copies
        if item.is_master:
            live = set()
            for day, exc in item.exceptions.items():
                if day in item.cancelled:
                    continue
                for u in self._attendee_users(exc.props, owner):
                    if u.id in wanted:
                        continue
                    live.add((u.id, day))
                    self._sync_occ_copy(org_mb, item, exc, self.mailbox(u))
            for key in list(item.occ_links):
                if key in live:
                    continue
                oid, day = key
                if day in item.exceptions or day in item.cancelled:
                    # still an exception (invitee removed) or occurrence deleted: cancellation
                    amb = self.mailbox_of(oid)
                    c = amb.items.get(item.occ_links[key]) if amb else None
                    if c is not None and not c.props.get("isCancelled"):
                        self._mark_cancelled(amb, c)
                # else: the exception was reset (O5) - the invitee keeps the old copy
                del item.occ_links[key]

    def _sync_series_copy(self, org_mb: Mailbox, item: Item, amb: Mailbox) -> None:
        key = (org_mb.user.id, item.id)
        cid = amb.copies.get(key)
        c = amb.items.get(cid) if cid else None
        if c is None and key in amb.removed_copies:
            return
        now = self.clock.now()
        created = c is None
        if created:
            c = Item(_new_item_id(), item.kind, {}, item.start, item.start_tz, item.end,
                     item.end_tz, now, now, new_change_key(), item.ical_uid,
                     org_user=org_mb.user.id, org_item=item.id)
        if c.epoch != item.epoch:  # series reset: attendee-side exceptions go too
            c.exceptions = {d: e for d, e in c.exceptions.items() if not e.local}
            c.epoch = item.epoch
        c.props = self._copy_props(item.props, None if created else c.props)
        c.kind = item.kind
        c.start, c.start_tz, c.end, c.end_tz = item.start, item.start_tz, item.end, item.end_tz
        c.recurrence = copy.deepcopy(item.recurrence)
        c.cancelled = set(item.cancelled)
        new_exc = {}
        for day, exc in item.exceptions.items():
            mine = c.exceptions.get(day)
            e = copy.deepcopy(exc)
            e.props = self._copy_props(exc.props, mine.props if mine else c.props)
            e.local = False
            if mine is not None and mine.change_key and self._same_exc(mine, e):
                e.change_key = mine.change_key
            new_exc[day] = e
        for day, mine in c.exceptions.items():
            # an attendee's own response on one occurrence survives organizer updates
            if day not in new_exc and mine.local and live_slot(item, day):
                mine.props = {**self._copy_props(item.props, c.props),
                              "responseStatus": mine.props.get("responseStatus")}
                mine.start = slot_start(item, day)
                mine.end = mine.start + (item.end - item.start)
                new_exc[day] = mine
        c.exceptions = new_exc
        fp = self._fingerprint(c)
        if created:
            c.copy_fp = fp
            amb.items[c.id] = c
            amb.copies[key] = c.id
            amb.record(c.id)
            self.notify(amb.user.id, "created", c.id, c.change_key)
        elif fp != c.copy_fp:
            c.copy_fp = fp
            self._touch(amb, c)
        item.copy_links[amb.user.id] = c.id

    @staticmethod
    def _same_exc(a: Exc, b: Exc) -> bool:
        return (a.props == b.props and a.start == b.start and a.end == b.end)

    def _sync_occ_copy(self, org_mb: Mailbox, item: Item, exc: Exc, amb: Mailbox) -> None:
        key = (org_mb.user.id, item.id, exc.day)
        cid = amb.copies.get(key)
        c = amb.items.get(cid) if cid else None
        if c is None and key in amb.removed_copies:
            return
        now = self.clock.now()
        created = c is None
        if created:
            c = Item(_new_item_id(), "singleInstance", {}, exc.start, exc.start_tz, exc.end,
                     exc.end_tz, now, now, new_change_key(),
                     occurrence_ical_uid(item.ical_uid, exc.day),
                     org_user=org_mb.user.id, org_item=item.id, copy_day=exc.day)
        c.props = self._copy_props(exc.props, None if created else c.props)
        c.start, c.start_tz, c.end, c.end_tz = exc.start, exc.start_tz, exc.end, exc.end_tz
        fp = self._fingerprint(c)
        if created:
            c.copy_fp = fp
            amb.items[c.id] = c
            amb.copies[key] = c.id
            amb.record(c.id)
            self.notify(amb.user.id, "created", c.id, c.change_key)
        elif fp != c.copy_fp:
            c.copy_fp = fp
            self._touch(amb, c)
        item.occ_links[(amb.user.id, exc.day)] = c.id

    # -- "this and all following" (O2) ----------------------------------------------
    def split_series(self, mb: Mailbox, master: Item, from_day: _dt.date, changes: dict) -> Item:
        """End ``master`` before ``from_day`` and start a new, unconnected series there (O2)."""
        if not master.is_master:
            raise GraphError(400, "ErrorInvalidRequest", "Not a series master.")
        if not is_slot(master, from_day):
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        rec = copy.deepcopy(master.recurrence)
        first = rec_mod.first_date(rec)
        new_rec = copy.deepcopy(rec)
        new_rec["range"]["startDate"] = from_day.isoformat()
        if rec["range"]["type"] == "numbered":
            remaining = rec["range"]["numberOfOccurrences"] - rec_mod.count_before(rec, from_day)
            new_rec["range"]["numberOfOccurrences"] = max(remaining, 1)
        body = {k: copy.deepcopy(v) for k, v in master.props.items()
                if k in WRITABLE and k not in ("transactionId", "singleValueExtendedProperties",
                                               "originalStartTimeZone", "originalEndTimeZone")}
        inst_start = slot_start(master, from_day)
        body["start"] = fmt_dtz(inst_start, master.start_tz)
        body["end"] = fmt_dtz(inst_start + (master.end - master.start), master.end_tz)
        body["body"] = {"contentType": "html", "content": master.props.get("body", {}).get("content", "")}
        body["recurrence"] = new_rec
        body.update(copy.deepcopy(changes))
        if "start" in changes and "recurrence" not in changes:
            new_start, new_tz = self._parse_time(body, "start")
            new_rec["range"]["startDate"] = new_start.astimezone(resolve_tz(
                new_rec["range"]["recurrenceTimeZone"])).date().isoformat()
        # cut the original: it ends on the last slot before from_day, losing later exceptions
        prev_day, _ = rec_mod.prev_next(rec, from_day)
        if prev_day is None or (first is not None and from_day <= first):
            self.delete(mb, master)
        else:
            rec["range"]["type"] = "endDate"
            rec["range"]["endDate"] = prev_day.isoformat()
            rec["range"]["numberOfOccurrences"] = 0
            master.recurrence = rec
            for d in [d for d in master.exceptions if d > prev_day]:
                del master.exceptions[d]
            master.cancelled = {d for d in master.cancelled if d <= prev_day}
            self._touch(mb, master)
            self.sync_copies(mb, master)
        new, _ = self.create(mb, body)
        return new

    def all_items(self, mb: Mailbox) -> Iterable[Item]:
        return list(mb.items.values())
