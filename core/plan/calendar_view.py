"""A user's Communifire calendar as a stable JSON document (docs/calendar-json.md).

Owns: the shape administrators and tests read. Pure: events, links and the window come
in; a JSON-able dict comes out. Series are expanded per segment in their own zone; each
instance in the window says whether it is normal, an exception (and which fields it
changed, rule D2) or deleted (rule D3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from core.plan.model import Event, OutlookLink, Window
from core.plan.recurrence import RecurrenceError, expand, occurrence_end, series_zone, to_graph
from core.plan.timezones import TimeZoneError, resolve_zone
from core.plan.outlook_items import iso

SHAPE_VERSION = 1


def _attendees(att: Iterable[Any]) -> list[dict[str, str]]:
    return [{"email": a.email, "name": a.name, "type": a.kind, "response": a.response} for a in att]


def _zone_of(seg: Any) -> Any:
    """The zone a segment's series expands in (its recurrence zone, else its own)."""
    own = resolve_zone(seg.time_zone)
    try:
        return series_zone(seg.recurrence, seg.start.astimezone(own))
    except (RecurrenceError, TimeZoneError):
        return own


def _instances(event: Event, window: Window) -> list[dict[str, Any]]:
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
            new_start = changes.get("start", start)
            new_end = changes.get("end", occurrence_end(start, seg.end - seg.start, zone, is_all_day=seg.is_all_day))
            state = "deleted" if start in event.deleted else ("exception" if exc else "normal")
            out.append(
                {
                    "original_start": iso(start),
                    "start": iso(new_start),
                    "end": iso(new_end),
                    "title": changes.get("title", seg.title),
                    "state": state,
                    "changed_fields": sorted(changes) if exc else [],
                }
            )
    return out


def event_json(event: Event, links: Iterable[OutlookLink], window: Window) -> dict[str, Any]:
    first = event.segments[0]
    links = sorted(links, key=lambda l: (l.user_id, l.kind, str(l.segment_start), l.outlook_id))
    doc: dict[str, Any] = {
        "id": event.id,
        "title": event.title,
        "organizer": event.organizer,
        "start": iso(first.start),
        "end": iso(first.end),
        "all_day": first.is_all_day,
        "time_zone": first.time_zone,
        "location": first.location,
        "attendees": _attendees(first.attendees),
        "rsvps": [
            {"user_id": r.user_id, "scope": r.scope, "response": r.response,
             "original_start": iso(r.original_start) if r.original_start else None}
            for r in event.rsvps
        ],
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
        doc["series"] = {
            "segments": [
                {
                    "start": iso(s.start),
                    "end": iso(s.end),
                    "title": s.title,
                    "time_zone": s.time_zone,
                    "recurrence": to_graph(s.recurrence) if s.recurrence else None,
                    "outlook": sorted(
                        {(l.user_id, l.outlook_id) for l in links if l.kind == "series" and l.segment_start == s.start}
                    ),
                }
                for s in event.segments
            ],
        }
        doc["series"]["segments"] = [
            {**s, "outlook": [{"user_id": u, "outlook_id": o} for u, o in s["outlook"]]} for s in doc["series"]["segments"]
        ]
        doc["instances"] = _instances(event, window)
    return doc


def calendar_json(
    user_id: str, events: Mapping[str, Event], links: Iterable[OutlookLink], window: Window, now: datetime
) -> dict[str, Any]:
    by_event: dict[str, list[OutlookLink]] = {}
    for link in links:
        by_event.setdefault(link.event_id, []).append(link)
    ordered = sorted(events.values(), key=lambda e: (e.segments[0].start, e.id))
    return {
        "version": SHAPE_VERSION,
        "user_id": user_id,
        "generated_at": iso(now),
        "window": {"start": iso(window.start), "end": iso(window.end)},
        "events": [event_json(e, by_event.get(e.id, []), window) for e in ordered],
    }
