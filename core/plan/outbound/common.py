"""Helpers every outbound operation shares: model values as Graph bodies, step ids,
instance values and re-keying of a segment's slots. They decide no rule on their own.

Step ids are derived from the step's content (``_step``), so a re-plan after a crash or an
ETag conflict gives the same ids and the executor skips the steps already done. ``_rekey``
finds an instance's slot again after its series changed (O5, A6); ``_child_retimed`` moves
a linked child series with the first one (A3).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import date, datetime, time
from typing import Any, Iterable, Mapping, Sequence

from core.plan.bodies import same_body
from core.plan.model import FIELDS, Attendee, Event, OutlookLink, Segment
from core.plan.outbound.message import EventFields, Person
from core.plan.outbound.values import Step, _iso
from core.plan.recurrence import (Range, Recurrence, RecurrenceError, expand, occurrence_dates, occurrence_end,
                                  series_zone, to_graph)
from core.plan.timezones import UTC, TimeZoneError, format_graph_datetime, resolve_zone, windows_name_for


def _attendee_key(a: Attendee) -> tuple[str, str]:
    return (a.email, a.kind)


def _same_attendees(a: Iterable[Attendee], b: Iterable[Attendee]) -> bool:
    return sorted(map(_attendee_key, a)) == sorted(map(_attendee_key, b))


def _equal(name: str, a: Any, b: Any) -> bool:
    if name == "attendees":
        return _same_attendees(a, b)
    if name == "time_zone":
        return _zone_key(a) == _zone_key(b)
    if name == "body" and isinstance(a, str) and isinstance(b, str):
        return same_body(a, b)  # Exchange rewrites bodies: compare by meaning (A9)
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


def _slot_end(seg: Segment, key: datetime) -> datetime:
    """Where the segment's instance starting at ``key`` ends: its length later, or for an
    all-day segment midnight whole dates later in its zone (issue 11 item 7)."""
    return occurrence_end(key, seg.end - seg.start, _seg_zone(seg), is_all_day=seg.is_all_day)


def _instance_values(event: Event, key: datetime) -> dict[str, Any]:
    """The effective field values of one instance (its segment, then its own changes)."""
    seg = event.segment_for(key)
    values = {name: seg.value(name) for name in FIELDS}
    values["start"] = key
    values["end"] = _slot_end(seg, key)
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


def _link_for(links: Sequence[OutlookLink], user_id: str, seg: Segment) -> OutlookLink | None:
    kind = "series" if seg.recurrence is not None else "single"
    for link in links:
        if link.user_id != user_id or link.kind != kind:
            continue
        if kind == "single" or link.segment_start == seg.start:
            return link
    return None


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
