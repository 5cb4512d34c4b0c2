"""Graph JSON for calendar items: full, ``$select``-ed, bare (delta) and tombstones.

Owns: the event resource's property order and shapes as real Exchange Online returns
them (GRAPH.md, graph-payloads/), ``Prefer: outlook.timezone`` conversion, the
``originalStart`` rule (only with ``$select``), ``cancelledOccurrences`` /
``exceptionOccurrences`` on masters and ``singleValueExtendedProperties`` via ``$expand``.
"""
from __future__ import annotations

import copy
import re
from urllib.parse import quote

from .bodytext import exchange_text
from .store import Instance, Item, occurrence_ical_uid
from .timeutil import fmt_dtz, fmt_original_start, fmt_ts
from .web import GraphError

ORDER = [
    "@odata.type", "@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "changeKey",
    "categories", "transactionId", "originalStartTimeZone", "originalEndTimeZone", "iCalUId",
    "reminderMinutesBeforeStart", "isReminderOn", "hasAttachments", "subject", "bodyPreview",
    "importance", "sensitivity", "isAllDay", "isCancelled", "isOrganizer", "responseRequested",
    "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl", "isOnlineMeeting",
    "onlineMeetingProvider", "allowNewTimeProposals", "occurrenceId", "isDraft",
    "hideAttendees", "originalStart", "responseStatus", "body", "start", "end", "location",
    "locations", "recurrence", "attendees", "organizer", "onlineMeeting",
]
SELECTABLE = {k.lower(): k for k in ORDER if not k.startswith("@")}
SELECTABLE.update({"cancelledoccurrences": "cancelledOccurrences",
                   "exceptionoccurrences": "exceptionOccurrences",
                   "singlevalueextendedproperties": "singleValueExtendedProperties"})
BARE = ("@odata.type", "@odata.etag", "id", "seriesMasterId", "type", "start", "end")


class View:
    """How to render: time zone, body type, $select, $expand (ext-prop filter)."""

    def __init__(self, tz: str | None = None, body_text: bool = False,
                 select: list[str] | None = None, expand: str | None = None,
                 own_zone: bool = False):
        self.tz = tz or "UTC"
        self.body_text = body_text
        self.select = select
        self.expand = expand or ""
        #: times in each item's own zone (write responses without outlook.timezone, GRAPH.md section 10)
        self.own_zone = own_zone

    @classmethod
    def from_request(cls, req, allow_select: bool = True, write: bool = False) -> "View":
        """The view a request asks for; ``write``: a POST/PATCH response, whose times are in
        the event's own zone unless ``Prefer: outlook.timezone`` names one (GRAPH.md section 10)."""
        pref = req.prefer()
        tz = pref.get("outlook.timezone") or "UTC"
        body_text = pref.get("outlook.body-content-type", "html").lower() == "text"
        select = None
        raw = req.q("$select")
        if raw is not None and allow_select:
            select = parse_select(raw)
        return cls(tz, body_text, select, req.q("$expand"), own_zone=write and "outlook.timezone" not in pref)

    def zone(self, own_tz: str) -> str:
        return own_tz if self.own_zone else self.tz

    def expand_select(self, relation: str) -> list[str] | None:
        """The ``$select`` inside ``$expand=relation($select=...)``, or None for all properties."""
        m = re.search(rf"(?i){relation}\s*\(([^()]*)\)", self.expand)
        if not m:
            return None
        inner = re.search(r"(?i)\$select=([^;]*)", m.group(1))
        return parse_select(inner.group(1)) if inner else None

    def selected(self, key: str) -> bool:
        return self.select is None or key in self.select

    def ext_filter(self) -> list[str] | None:
        """Ids asked for by ``$expand=singleValueExtendedProperties($filter=id eq '...')``."""
        m = re.search(r"singleValueExtendedProperties(\(([^)]*(?:\([^)]*\))?[^)]*)\))?",
                      self.expand, re.I)
        if not m:
            return None
        inner = m.group(2) or ""
        return [x.lower() for x in re.findall(r"id\s+eq\s+'([^']*)'", inner, re.I)] or ["*"]


def parse_select(raw: str) -> list[str]:
    """Canonical property names of a ``$select`` list; 400 for an unknown one."""
    select = []
    for name in [s.strip() for s in raw.split(",") if s.strip()]:
        canon = SELECTABLE.get(name.lower())
        if canon is None:
            raise GraphError(400, "RequestBroker--ParseUri",
                             f"Could not find a property named '{name}' on type "
                             "'microsoft.graph.event'.")
        select.append(canon)
    return select


def _when(props: dict, when, own_tz: str, view: View) -> dict:
    """A start/end in the view's zone; all-day events float (midnight in any zone)."""
    if props.get("isAllDay"):
        return floating_day(when, own_tz, view.zone(own_tz))
    return fmt_dtz(when, view.zone(own_tz))


def floating_day(when, own_tz: str, shown_tz: str) -> dict:
    """An all-day boundary: the midnight of its own zone, labelled with the shown zone, never shifted."""
    from .timeutil import resolve_tz
    local = when.astimezone(resolve_tz(own_tz)).replace(tzinfo=None)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": shown_tz}


def _etag(ck: str) -> str:
    return f'W/"{ck}"'


def _weblink(event_id: str) -> str:
    return f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}&exvsurl=1&path=/calendar/item"


def _base(props: dict, view: View) -> dict:
    out = {k: copy.deepcopy(v) for k, v in props.items()
           if k not in ("singleValueExtendedProperties",)}
    if view.body_text:
        out["body"] = {"contentType": "text", "content": exchange_text(props.get("body", {}).get("content", ""))}
    return out


def _ext(props: dict, view: View, out: dict) -> None:
    wanted = view.ext_filter()
    if wanted is None:
        return
    vals = [dict(p) for p in props.get("singleValueExtendedProperties", [])
            if "*" in wanted or p["id"].lower() in wanted]
    out["singleValueExtendedProperties"] = vals


def _finish(full: dict, view: View, extra_select: dict | None = None) -> dict:
    ordered = {k: full[k] for k in ORDER if k in full}
    for k, v in full.items():
        if k not in ordered:
            ordered[k] = v
    if view.select is None:
        ordered.pop("originalStart", None)
        return ordered
    keep = {"@odata.type", "@odata.etag", "id", "singleValueExtendedProperties"} | set(view.select)
    return {k: v for k, v in ordered.items() if k in keep}


def item_json(item: Item, view: View, odata_type: bool = False, instances_fn=None) -> dict:
    """A single event or a series master."""
    out = _base(item.props, view)
    out.update({
        "@odata.etag": _etag(item.change_key), "id": item.id,
        "createdDateTime": fmt_ts(item.created), "lastModifiedDateTime": fmt_ts(item.modified),
        "changeKey": item.change_key, "iCalUId": item.ical_uid, "seriesMasterId": None,
        "type": item.kind, "webLink": _weblink(item.id), "occurrenceId": None,
        "start": _when(item.props, item.start, item.start_tz, view),
        "end": _when(item.props, item.end, item.end_tz, view),
        "recurrence": copy.deepcopy(item.recurrence),
    })
    if odata_type:
        out["@odata.type"] = "#microsoft.graph.event"
    if item.is_master and view.select is not None:
        if "cancelledOccurrences" in view.select:
            gone = sorted(item.cancelled | item.local_cancelled)
            out["cancelledOccurrences"] = [f"OID.{item.id}.{d.isoformat()}" for d in gone]
        if "exceptionOccurrences" in view.select and "exceptionoccurrences" in view.expand.lower():
            # $expand=exceptionOccurrences($select=...) picks the exceptions' properties;
            # without it they carry the outer $select (recorded beta docs payload), and no etag
            inner = view.expand_select("exceptionOccurrences")
            if inner is None:
                inner = [k for k in view.select if k not in ("exceptionOccurrences", "cancelledOccurrences")]
            sub = View(view.tz, view.body_text, inner, None, own_zone=view.own_zone)
            out["exceptionOccurrences"] = [
                {k: v for k, v in instance_json(instances_fn(item, d), sub).items() if k != "@odata.etag"}
                for d in sorted(item.exceptions)
                if d not in item.cancelled and d not in item.local_cancelled]
    _ext(item.props, view, out)
    return _finish(out, view)


def instance_json(inst: Instance, view: View, odata_type: bool = False) -> dict:
    """An occurrence or exception."""
    m = inst.master
    out = _base(inst.props, view)
    created = inst.exc.created if inst.exc else m.created
    modified = inst.exc.modified if inst.exc else m.modified
    out.update({
        "@odata.etag": _etag(inst.change_key), "id": inst.id,
        "createdDateTime": fmt_ts(created), "lastModifiedDateTime": fmt_ts(modified),
        "changeKey": inst.change_key, "iCalUId": occurrence_ical_uid(m.ical_uid, inst.day),
        "seriesMasterId": m.id, "type": inst.kind, "webLink": _weblink(inst.id),
        "occurrenceId": f"OID.{m.id}.{inst.day.isoformat()}",
        "originalStart": fmt_original_start(inst.original_start),
        "start": _when(inst.props, inst.start, inst.start_tz, view),
        "end": _when(inst.props, inst.end, inst.end_tz, view),
        "recurrence": None,
    })
    if odata_type:
        out["@odata.type"] = "#microsoft.graph.event"
    _ext(m.props if inst.exc is None else inst.exc.props, view, out)
    return _finish(out, view)


def bare_occurrence(inst: Instance, tz: str) -> dict:
    """The bare row delta returns for an occurrence (observed, GRAPH.md section 2); an
    all-day occurrence keeps its whole dates in any zone, as every other read shows it."""
    view = View(tz)
    return {"@odata.type": "#microsoft.graph.event", "@odata.etag": _etag(inst.change_key),
            "id": inst.id, "seriesMasterId": inst.master.id, "type": "occurrence",
            "start": _when(inst.props, inst.start, inst.start_tz, view),
            "end": _when(inst.props, inst.end, inst.end_tz, view)}


def tombstone(event_id: str) -> dict:
    return {"@odata.type": "#microsoft.graph.event", "id": event_id,
            "@removed": {"reason": "deleted"}}
