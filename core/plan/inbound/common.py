"""Helpers the inbound rule families share: item -> segment, link with its synced snapshot,
a series' recurrence anchored in its zone (``_SeriesView``), and whether a link's item touched
the read window. They decide no rule on their own.

Rules they carry: A9 (a link records the synced snapshot and its content hash, so our own
write coming back plans nothing), GRAPH.md section 2 (an item outside the window is out of
sight, not deleted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Mapping

from core.plan.inbound.actions import _sec
from core.plan.model import OutlookLink, Segment
from core.plan.outlook_items import OutlookItem, content_hash, content_of, recurrence_from_json
from core.plan.recurrence import Recurrence, RecurrenceError, expand, last_occurrence, occurrence_end
from core.plan.timezones import UTC, TimeZoneError, resolve_zone


def _zone(name: str) -> Any:
    try:
        return resolve_zone(name, fallback="UTC")
    except TimeZoneError:
        return UTC


def _segment_of(item: OutlookItem) -> Segment:
    return Segment(
        start=item.start, end=item.end, title=item.title, body=item.body, location=item.location,
        is_all_day=item.is_all_day, time_zone=item.time_zone, recurrence=item.recurrence,
        attendees=item.attendees,
    )


def _link_for(item: OutlookItem, user_id: str, event_id: str, kind: str, *, segment_start: datetime | None,
              instance_start: datetime | None = None, evidence: str = "",
              extra: Mapping[str, Any] | None = None) -> OutlookLink:
    snapshot = content_of(item)
    if extra:
        snapshot.update(extra)
    return OutlookLink(
        user_id=user_id, outlook_id=item.id, event_id=event_id, kind=kind, content_hash=content_hash(item),
        snapshot=snapshot, segment_start=segment_start, instance_start=instance_start,
        change_key=item.change_key, ical_uid=item.ical_uid,
        last_modified=_sec(item.last_modified) if item.last_modified else None, evidence=evidence,
    )


def _snapshot_time(link: OutlookLink, name: str) -> datetime | None:
    value = link.snapshot.get(name)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _SeriesView:
    """What the planner needs to know of one series: its recurrence anchored in its zone."""

    recurrence: Recurrence
    first_start: datetime  # aware, in the series' own zone
    duration: timedelta
    is_all_day: bool
    zone: Any

    @classmethod
    def of_item(cls, item: OutlookItem) -> "_SeriesView | None":
        if item.recurrence is None:
            return None
        zone = _zone(item.time_zone)
        return cls(item.recurrence, item.start.astimezone(zone), item.duration, item.is_all_day, zone)

    @classmethod
    def of_snapshot(cls, link: OutlookLink, key: str = "recurrence") -> "_SeriesView | None":
        """The series as the link's snapshot has it (``key="_cut_from"``: before its cut, O2)."""
        snap = link.snapshot
        if key == "_cut_from":
            return cls.of_parts(snap.get("_cut_from"), snap.get("_cut_start") or snap.get("start"),
                                snap.get("_cut_end") or snap.get("end"), snap.get("time_zone"), snap.get("is_all_day"))
        return cls.of_parts(snap.get(key), snap.get("start"), snap.get("end"), snap.get("time_zone"),
                            snap.get("is_all_day"))

    @classmethod
    def of_parts(cls, rec_json: Any, start_text: Any, end_text: Any, zone_name: Any,
                 all_day: Any) -> "_SeriesView | None":
        try:
            rec = recurrence_from_json(rec_json) if isinstance(rec_json, Mapping) else None
            start = datetime.fromisoformat(str(start_text).replace("Z", "+00:00")).astimezone(UTC)
            end = datetime.fromisoformat(str(end_text).replace("Z", "+00:00")).astimezone(UTC)
        except (RecurrenceError, KeyError, TypeError, ValueError):
            return None
        if rec is None:
            return None
        zone = _zone(str(zone_name or "UTC"))
        return cls(rec, start.astimezone(zone), end - start, bool(all_day), zone)

    def end_of(self, key: datetime) -> datetime:
        """Where the occurrence starting at ``key`` ends (all-day: whole dates, item 7)."""
        return occurrence_end(key, self.duration, self.zone, is_all_day=self.is_all_day)

    def expand(self, start: datetime, end: datetime) -> tuple[datetime, ...]:
        return expand(self.recurrence, self.first_start, self.duration, start, end, is_all_day=self.is_all_day)

    def last(self) -> datetime | None:
        return last_occurrence(self.recurrence, self.first_start, is_all_day=self.is_all_day)

    def local_date(self, value: datetime) -> date:
        return value.astimezone(self.zone).date()


def _overlaps_window(link: OutlookLink, start: datetime, end: datetime) -> bool:
    """Whether the item as last synced touched the window (unknown: assume it did)."""
    if link.kind == "series" or link.snapshot.get("recurrence"):
        view = _SeriesView.of_snapshot(link)
        if view is None:
            return True
        try:
            return bool(view.expand(start, end))
        except RecurrenceError:
            return True
    s, e = _snapshot_time(link, "start"), _snapshot_time(link, "end")
    if s is None or e is None:
        return True
    return s <= end and e >= start
