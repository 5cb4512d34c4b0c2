"""A user's Communifire calendar as a stable JSON document (docs/calendar-json.md).

Owns: the shape administrators and tests read. Pure: events, links and the window come
in; a JSON-able dict comes out. Series are expanded per segment in their own zone; each
instance in the window carries its effective values (what Communifire should show for it: the
segment's fields with the exception's own changes over them, each user's answer) and
says whether it is normal, an exception (and which fields it changed, rule D2) or
deleted (rule D3). The read API, ``calendar --json`` and the change feed's event
snapshots are all this one document.
"""

from __future__ import annotations

from datetime import datetime
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from core.plan.model import Event, OutlookLink, Rsvp, Segment, Window
from core.plan.recurrence import RecurrenceError, expand, occurrence_end, series_zone, to_graph
from core.plan.timezones import TimeZoneError, resolve_zone
from core.plan.outlook_items import iso

SHAPE_VERSION = 1


@dataclass(frozen=True, slots=True)
class EventMeta:
    """What the document shows besides the event: its feed sequence number and
    Communifire's content id once bound (docs/changes.md)."""

    seq: int = 0
    communifire_id: str = ""


def _attendees(att: Iterable[Any]) -> list[dict[str, str]]:
    return [{"email": a.email, "name": a.name, "type": a.kind, "response": a.response} for a in att]


def _zone_of(seg: Any) -> Any:
    """The zone a segment's series expands in (its recurrence zone, else its own)."""
    own = resolve_zone(seg.time_zone)
    try:
        return series_zone(seg.recurrence, seg.start.astimezone(own))
    except (RecurrenceError, TimeZoneError):
        return own


def _rsvp_json(r: Rsvp) -> dict[str, Any]:
    return {"user_id": r.user_id, "scope": r.scope, "response": r.response,
            "original_start": iso(r.original_start) if r.original_start else None}


def effective_rsvps(rsvps: Iterable[Rsvp], original_start: datetime) -> list[dict[str, str]]:
    """Each user's answer for one instance (rule C4): the most specific RSVP wins, a
    ``single`` one for that instance, else the latest ``following`` one starting at or
    before it, else the ``all`` one."""
    best: dict[str, tuple[int, datetime, Rsvp]] = {}
    for r in rsvps:
        if r.scope == "single" and r.original_start == original_start:
            rank = (2, original_start)
        elif r.scope == "following" and r.original_start is not None and r.original_start <= original_start:
            rank = (1, r.original_start)
        elif r.scope == "all":
            rank = (0, original_start)
        else:
            continue
        if r.user_id not in best or rank > best[r.user_id][:2]:
            best[r.user_id] = (*rank, r)
    return [{"user_id": u, "response": best[u][2].response, "scope": best[u][2].scope} for u in sorted(best)]


def _outlook_for(links: Sequence[OutlookLink], seg: Segment, original_start: datetime | None) -> list[dict[str, str]]:
    """Which Outlook items show this instance: a user's single-instance copy (C5, O5)
    stands for it where there is one, else the series standing for its segment."""
    out = []
    by_user: dict[str, list[OutlookLink]] = {}
    for l in links:
        by_user.setdefault(l.user_id, []).append(l)
    for user, mine in sorted(by_user.items()):
        inst = [l for l in mine if l.kind == "instance" and l.instance_start == original_start]
        chosen = inst or [l for l in mine if (l.kind == "series" and l.segment_start == seg.start) or
                          (original_start is None and l.kind == "single")]
        out += [{"user_id": user, "outlook_id": l.outlook_id, "kind": l.kind} for l in chosen]
    return out


def _segment_json(seg: Segment, until: datetime | None, links: Sequence[OutlookLink]) -> dict[str, Any]:
    return {
        "start": iso(seg.start),
        "end": iso(seg.end),
        "until": iso(until) if until else None,
        "title": seg.title,
        "body": seg.body,
        "location": seg.location,
        "all_day": seg.is_all_day,
        "time_zone": seg.time_zone,
        "attendees": _attendees(seg.attendees),
        "recurrence": to_graph(seg.recurrence) if seg.recurrence else None,
        "outlook": [{"user_id": u, "outlook_id": o} for u, o in sorted(
            {(l.user_id, l.outlook_id) for l in links if l.kind == "series" and l.segment_start == seg.start})],
    }


def _effective(changes: Mapping[str, Any], seg: Segment, name: str) -> Any:
    """An instance's value of a field: its own change (D2), else its segment's (A4)."""
    return changes.get(name, seg.value(name))


def _instances(event: Event, window: Window, links: Sequence[OutlookLink]) -> list[dict[str, Any]]:
    """Every instance in the window with its effective values (rules A1, A4, D2, D3)."""
    out: list[dict[str, Any]] = []
    segs = event.segments
    for i, seg in enumerate(segs):
        if seg.recurrence is None:
            continue
        until = segs[i + 1].start if i + 1 < len(segs) else None
        zone = _zone_of(seg)
        for start in expand(seg.recurrence, seg.start, seg.end - seg.start, window.start, window.end, is_all_day=seg.is_all_day):
            if start < seg.start or (until is not None and start >= until):
                continue
            exc = event.exceptions.get(start)
            changes = dict(exc.changes) if exc else {}
            state = "deleted" if start in event.deleted else ("exception" if exc else "normal")
            out.append(
                {
                    "original_start": iso(start),
                    "start": iso(changes.get("start", start)),
                    "end": iso(changes.get("end", occurrence_end(start, seg.end - seg.start, zone,
                                                                is_all_day=seg.is_all_day))),
                    "title": _effective(changes, seg, "title"),
                    "location": _effective(changes, seg, "location"),
                    "all_day": _effective(changes, seg, "is_all_day"),
                    "time_zone": _effective(changes, seg, "time_zone"),
                    "body": _effective(changes, seg, "body"),
                    "attendees": _attendees(_effective(changes, seg, "attendees")),
                    "rsvps": effective_rsvps(event.rsvps, start),
                    "state": state,
                    "changed_fields": sorted(changes) if exc else [],
                    "segment_start": iso(seg.start),
                    "outlook": _outlook_for(links, seg, start),
                }
            )
    return out


def event_json(event: Event, links: Iterable[OutlookLink], window: Window, meta: EventMeta | None = None) -> dict[str, Any]:
    """One event as Communifire should show it (docs/calendar-json.md)."""
    first = event.segments[0]
    meta = meta or EventMeta()
    links = sorted(links, key=lambda l: (l.user_id, l.kind, str(l.segment_start), l.outlook_id))
    doc: dict[str, Any] = {
        "id": event.id,
        "communifire_id": meta.communifire_id or None,
        "seq": meta.seq,
        "title": event.title,
        "organizer": event.organizer,
        "start": iso(first.start),
        "end": iso(first.end),
        "all_day": first.is_all_day,
        "time_zone": first.time_zone,
        "location": first.location,
        "body": first.body,
        "attendees": _attendees(first.attendees),
        "rsvps": [_rsvp_json(r) for r in event.rsvps],
        "outlook": [
            {"user_id": l.user_id, "outlook_id": l.outlook_id, "kind": l.kind,
             "segment_start": iso(l.segment_start) if l.segment_start else None,
             "instance_start": iso(l.instance_start) if l.instance_start else None,
             "evidence": l.evidence}
            for l in links
        ],
        "series": None,
        "instances": [],
    }
    if event.is_series:
        segs = event.segments
        doc["series"] = {
            "segments": [_segment_json(s, segs[i + 1].start if i + 1 < len(segs) else None, links)
                         for i, s in enumerate(segs)],
        }
        doc["instances"] = _instances(event, window, links)
    return doc


def calendar_json(
    user_id: str, events: Mapping[str, Event], links: Iterable[OutlookLink], window: Window, now: datetime,
    meta: Mapping[str, EventMeta] | None = None, *, start: datetime | None = None, end: datetime | None = None,
) -> dict[str, Any]:
    """A user's calendar: every event they have in Outlook, effective per instance.

    ``start``/``end`` narrow the answer to the events with an instance (or, for a single
    event, its time) overlapping ``[start, end]`` inside the sync window (the read API's
    ``from``/``to``); instances outside it are left out.
    """
    meta = meta or {}
    by_event: dict[str, list[OutlookLink]] = {}
    for link in links:
        by_event.setdefault(link.event_id, []).append(link)
    view = Window(max(window.start, start or window.start), min(window.end, end or window.end)) \
        if (start or end) else window
    ordered = sorted(events.values(), key=lambda e: (e.segments[0].start, e.id))
    docs = []
    for e in ordered:
        doc = event_json(e, by_event.get(e.id, []), view, meta.get(e.id))
        if (start or end) and not _overlaps(doc, view):
            continue
        docs.append(doc)
    return {
        "version": SHAPE_VERSION,
        "user_id": user_id,
        "generated_at": iso(now),
        "window": {"start": iso(view.start), "end": iso(view.end)},
        "events": docs,
    }


def _overlaps(doc: Mapping[str, Any], view: Window) -> bool:
    if doc["series"] is not None:
        return bool(doc["instances"])
    return doc["start"] <= iso(view.end) and doc["end"] >= iso(view.start)
