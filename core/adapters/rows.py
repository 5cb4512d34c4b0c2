"""Pure mapping between domain values and Table Storage rows (DESIGN.md, Storage).

Owns: the row layout of one event's partition in the Events table:
``event`` (root: version, organizer, meeting uid), ``seg|<start>``, ``exc|<start>``,
``del|<start>``, ``rsvp|<user>|<scope>[|<start>]``, ``link|<user>|<outlook id>``.
Keys use ``|`` as separator and escape each part, so Outlook and Communifire ids stay
valid keys. ``diff_rows`` turns two states of one event into the upserts and deletes
that move storage from one to the other. No I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from core.plan.model import Event, InstanceException, OutlookLink, Rsvp, Segment
# One JSON form for field values, shared with the snapshots the planner compares.
from core.plan.outlook_items import field_from_json as field_from
from core.plan.outlook_items import field_to_json as field_json
from core.plan.outlook_items import iso
from core.plan.outlook_items import recurrence_from_json as recurrence_from
from core.plan.outlook_items import recurrence_to_json as recurrence_json

ROOT = "event"
_CHUNK = 30_000


def _esc(value: str) -> str:
    out = value.replace("%", "%25").replace("|", "%7C")
    for ch, rep in (("/", "%2F"), ("\\", "%5C"), ("#", "%23"), ("?", "%3F")):
        out = out.replace(ch, rep)
    return out


def _unesc(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


def from_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _opt_iso(value: datetime | None) -> str:
    return iso(value) if value else ""


def _opt_dt(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def _big(props: dict[str, Any], name: str, text: str) -> None:
    parts = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    props[f"{name}Chunks"] = len(parts)
    for i, part in enumerate(parts):
        props[f"{name}{i}"] = part


def _unbig(props: Mapping[str, Any], name: str) -> str:
    return "".join(props.get(f"{name}{i}", "") for i in range(int(props.get(f"{name}Chunks") or 0)))


# -- rows ----------------------------------------------------------------------------


def segment_key(start: datetime) -> str:
    return f"seg|{iso(start)}"


def link_key(user_id: str, outlook_id: str) -> str:
    return f"link|{_esc(user_id)}|{_esc(outlook_id)}"


def rsvp_key(r: Rsvp) -> str:
    tail = f"|{iso(r.original_start)}" if r.original_start else ""
    return f"rsvp|{_esc(r.user_id)}|{r.scope}{tail}"


@dataclass(frozen=True, slots=True)
class RootMeta:
    """What the root row carries besides the event (issue 12, docs/changes.md).

    ``seq`` grows by one with every committed change of the event (the change feed's
    per-event order); ``change_id`` names the last committed change (a writer that
    crashed after its commit recognises its own change and publishes it again);
    ``communifire_id`` is Communifire's content id once bound (``bind``, or the id an
    event created from Communifire was made with).
    """

    seq: int = 0
    change_id: str = ""
    communifire_id: str = ""


def root_meta(root: Mapping[str, Any]) -> RootMeta:
    return RootMeta(int(root.get("Seq") or 0), str(root.get("ChangeId") or ""), str(root.get("CommunifireId") or ""))


def event_rows(event: Event, links: Iterable[OutlookLink] = (), meta: RootMeta | None = None) -> dict[str, dict[str, Any]]:
    """All rows of an event's partition (RowKey -> properties), links included."""
    rows: dict[str, dict[str, Any]] = {
        ROOT: {
            "Organizer": event.organizer,
            "MeetingUid": event.meeting_uid,
            "Calendar": event.calendar,
            "Private": event.private,
            "Title": event.title,
            "UpdatedAt": _opt_iso(event.updated_at),
        }
    }
    if meta is not None:
        rows[ROOT].update({"Seq": meta.seq, "ChangeId": meta.change_id, "CommunifireId": meta.communifire_id})
    for seg in event.segments:
        props: dict[str, Any] = {
            "Start": iso(seg.start),
            "End": iso(seg.end),
            "Title": seg.title,
            "Location": seg.location,
            "IsAllDay": seg.is_all_day,
            "TimeZone": seg.time_zone,
            "Recurrence": json.dumps(recurrence_json(seg.recurrence), sort_keys=True),
            "Attendees": json.dumps(field_json("attendees", seg.attendees), sort_keys=True),
        }
        _big(props, "Body", seg.body)
        rows[segment_key(seg.start)] = props
    for start, exc in event.exceptions.items():
        changes = {k: field_json(k, v) for k, v in exc.changes.items()}
        props = {"ModifiedAt": iso(exc.modified_at), "Source": exc.source}
        _big(props, "Changes", json.dumps(changes, sort_keys=True))
        rows[f"exc|{iso(start)}"] = props
    for start in event.deleted:
        rows[f"del|{iso(start)}"] = {"OriginalStart": iso(start)}
    for r in event.rsvps:
        rows[rsvp_key(r)] = {
            "UserId": r.user_id,
            "Scope": r.scope,
            "Response": r.response,
            "At": iso(r.at),
            "OriginalStart": _opt_iso(r.original_start),
        }
    for link in links:
        props = {
            "UserId": link.user_id,
            "OutlookId": link.outlook_id,
            "Kind": link.kind,
            "ContentHash": link.content_hash,
            "SegmentStart": _opt_iso(link.segment_start),
            "InstanceStart": _opt_iso(link.instance_start),
            "ChangeKey": link.change_key,
            "ICalUId": link.ical_uid,
            "LastModified": _opt_iso(link.last_modified),
            "Evidence": link.evidence,
        }
        _big(props, "Snapshot", json.dumps(dict(link.snapshot), sort_keys=True, default=str))
        rows[link_key(link.user_id, link.outlook_id)] = props
    return rows


def rows_to_event(event_id: str, rows: Mapping[str, Mapping[str, Any]]) -> tuple[Event, list[OutlookLink]]:
    """Rebuild an event and every user's links from its partition's rows."""
    root = rows[ROOT]
    segments, exceptions, deleted, rsvps, links = [], {}, set(), [], []
    for key in sorted(rows):
        props = rows[key]
        kind = key.split("|", 1)[0]
        if kind == "seg":
            segments.append(
                Segment(
                    start=from_iso(props["Start"]),
                    end=from_iso(props["End"]),
                    title=props.get("Title", ""),
                    body=_unbig(props, "Body"),
                    location=props.get("Location", ""),
                    is_all_day=bool(props.get("IsAllDay", False)),
                    time_zone=props.get("TimeZone", "UTC"),
                    recurrence=recurrence_from(json.loads(props.get("Recurrence") or "null")),
                    attendees=field_from("attendees", json.loads(props.get("Attendees") or "[]")),
                )
            )
        elif kind == "exc":
            start = from_iso(key.split("|", 1)[1])
            changes = {k: field_from(k, v) for k, v in json.loads(_unbig(props, "Changes") or "{}").items()}
            exceptions[start] = InstanceException(start, changes, from_iso(props["ModifiedAt"]), props.get("Source", "outlook"))
        elif kind == "del":
            deleted.add(from_iso(key.split("|", 1)[1]))
        elif kind == "rsvp":
            rsvps.append(
                Rsvp(
                    user_id=props["UserId"],
                    scope=props["Scope"],
                    response=props["Response"],
                    at=from_iso(props["At"]),
                    original_start=_opt_dt(props.get("OriginalStart")),
                )
            )
        elif kind == "link":
            links.append(
                OutlookLink(
                    user_id=props["UserId"],
                    outlook_id=props["OutlookId"],
                    event_id=event_id,
                    kind=props["Kind"],
                    content_hash=props.get("ContentHash", ""),
                    snapshot=json.loads(_unbig(props, "Snapshot") or "{}"),
                    segment_start=_opt_dt(props.get("SegmentStart")),
                    instance_start=_opt_dt(props.get("InstanceStart")),
                    change_key=props.get("ChangeKey", ""),
                    ical_uid=props.get("ICalUId", ""),
                    last_modified=_opt_dt(props.get("LastModified")),
                    evidence=props.get("Evidence", ""),
                )
            )
    event = Event(
        id=event_id,
        organizer=root.get("Organizer", ""),
        segments=tuple(segments),
        exceptions=exceptions,
        deleted=frozenset(deleted),
        rsvps=tuple(rsvps),
        meeting_uid=root.get("MeetingUid", ""),
        calendar=root.get("Calendar", "my"),
        private=bool(root.get("Private", False)),
        updated_at=_opt_dt(root.get("UpdatedAt")),
    )
    return event, links


def diff_rows(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Upserts (new or changed rows) and deletes (row keys gone) from old to new."""
    upserts = {k: dict(v) for k, v in new.items() if dict(old.get(k) or {}) != dict(v)}
    deletes = sorted(k for k in old if k not in new)
    return upserts, deletes
