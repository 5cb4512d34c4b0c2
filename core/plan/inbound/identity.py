"""Identity and adoption of items new to this user's links: rules C1, A7, A9, C5, O5.

- C1: a new Outlook event or series becomes one new Communifire event (``create``), with a
  deterministic id: one meeting, one id (``default_new_id``), so users whose first syncs run
  at once plan the same event (A7);
- A9: an item this app wrote, whose link was lost, is re-found by its stamped event id;
- A7: one event per meeting: another user's copy of a synced meeting (same iCalUId) is a
  link, not a new event; an attendee's copy never renames the meeting;
- C5: a one-instance invitation from another user's series links to that instance of the
  meeting's event (an RSVP for that instance only), or, when the series is not synced yet,
  becomes the meeting's event provisionally, which the organizer's series takes over (A7);
- O5: a single-instance copy left behind after the organizer changed the series time is the
  same event's instance.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Callable

from core.plan.inbound.actions import ReconcileError, _sec
from core.plan.inbound.base import PlannerBase
from core.plan.inbound.common import _link_for, _segment_of, _zone
from core.plan.model import FIELDS, Event
from core.plan.outlook_items import OutlookItem, OutlookSeries, instance_uid_parts
from core.plan.recurrence import expand
from core.plan.timezones import UTC


_ID_NAMESPACE = uuid.UUID("0b7f3c9e-5d4a-4e61-9c8f-2a1d6e5b7c30")


def default_new_id(user_id: str) -> Callable[[str], str]:
    """Deterministic ids for events born in Outlook: uuid5 of the seed, which names the
    meeting (its iCalUId, the same for every user's copy) or else the user's item."""

    def make(seed: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, seed))

    return make


def _instance_on(event: Event, day: date) -> datetime | None:
    """The original start of the event's instance on a local date (its segment's zone)."""
    for seg in reversed(event.segments):
        if seg.recurrence is None:
            continue
        zone = _zone(seg.time_zone)
        lo = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        for start in expand(seg.recurrence, seg.start, seg.end - seg.start, lo, lo + timedelta(days=3),
                            is_all_day=seg.is_all_day):
            if start >= seg.start and start.astimezone(zone).date() == day:
                return start
    return None


class IdentityRules(PlannerBase):
    """C1, A7, A9, C5: new items become links or events."""

    def plan_new(self, ids: list[str]) -> None:
        singles = [self.snap.singles[i] for i in ids if i in self.snap.singles]
        masters = sorted((self.snap.series[i] for i in ids if i in self.snap.series),
                         key=lambda s: (s.master.start, s.master.id))
        for item in singles:
            if item.is_cancelled:
                continue
            if self.adopt(item, None):
                continue
            self.create(item, None)
        for series in masters:
            if series.master.is_cancelled:
                continue
            if self.adopt(series.master, series):
                continue
            if self.split_child(series):
                continue
            self.create(series.master, series)

    def adopt(self, item: OutlookItem, series: OutlookSeries | None) -> bool:
        """Link an item to an event it already stands for (A9 stamp, A7 meeting)."""
        kind = "series" if series is not None else "single"
        if item.app_event_id:
            event = self.events.get(item.app_event_id)
            if event is None:
                # our own write whose event is not in this user's state: leave it to the outbound side (A9)
                self.notes.append(f"item {item.id} carries event id {item.app_event_id}, which is not loaded; skipped")
                return True
            seg = next((s for s in event.segments if s.start == item.start), event.segments[0])
            # scenario: an item this app wrote, whose link was lost: re-found by its stamp (A9)
            self.emit("link", event.id, "A9", f"Outlook item {item.id} carries this event's id (written by this app)",
                      link=_link_for(item, self.user, event.id, kind,
                                     segment_start=seg.start if kind == "series" else None,
                                     evidence=f"A9: stamped with Communifire event id {event.id}"))
            self._after_adopt(event.id, item, series)
            return True
        if not item.ical_uid:
            return False
        # the meeting's events not linked to this user yet, by id (an index: issue 14, linear plans)
        for event in self.events_for_meeting(item.ical_uid):
            if self.is_linked(event.id):
                continue
            if series is not None and item.is_organizer and not event.is_series:
                self._take_over_provisional(event, item)
                self._after_adopt(event.id, item, series)
                return True
            seg = next((s for s in event.segments if s.start == item.start), event.segments[0])
            # scenario: another user's copy of this meeting is already synced: one event per meeting (A7)
            self.emit("link", event.id, "A7",
                      f"'{item.title}' is the meeting '{event.title}' already in Communifire; {self.user} is linked",
                      link=_link_for(item, self.user, event.id, kind,
                                     segment_start=seg.start if kind == "series" else None,
                                     evidence=f"A7: iCalUId {item.ical_uid} matches event {event.id}"))
            self._after_adopt(event.id, item, series)
            return True
        return self.adopt_instance_copy(item) if series is None else False

    def _take_over_provisional(self, event: Event, master: OutlookItem) -> None:
        """The organizer's series reaches an event that an invitee's one-instance copy
        made first (C5): the event takes the series' pattern and fields; one event (A7)."""
        old = event.segments[0]
        new = _segment_of(master)
        changes = {f: new.value(f) for f in (*FIELDS, "recurrence") if old.value(f) != new.value(f)}
        # scenario: invitee synced a one-instance invitation before the organizer's series
        self.emit("update_segment", event.id, "A7",
                  f"the organizer's series '{master.title}' is the meeting this event was made for "
                  f"from a one-instance invitation; it takes the series' pattern", segment_start=old.start,
                  changes=changes)
        self.emit("link", event.id, "A7", f"'{master.title}' (organizer's series) is linked to the meeting's event",
                  link=_link_for(master, self.user, event.id, "series", segment_start=new.start,
                                 evidence=f"A7: series iCalUId {master.ical_uid} named by a one-instance invitation"))

    def adopt_instance_copy(self, item: OutlookItem) -> bool:
        """A one-instance invitation from another user's series: a link, not a new event."""
        parts = instance_uid_parts(item.ical_uid)
        if parts is None or item.is_organizer:
            return False
        series_uid, day = parts
        event = next((e for e in self.events_for_meeting(series_uid) if not self.is_linked(e.id)), None)
        if event is None:
            return self.create_provisional(item, series_uid, day)
        key = _instance_on(event, day) or _sec(item.start)
        # scenario: invited to one instance of a series (C5), or left with a single-instance
        # copy after the organizer changed the series time (O5): the same Communifire event,
        # under its one name (A7), with an RSVP for that instance only
        self.emit("link", event.id, "C5",
                  f"'{item.title}' is the {day} instance of '{event.title}'; {self.user} is linked to that instance",
                  link=_link_for(item, self.user, event.id, "instance", segment_start=None, instance_start=key,
                                 evidence=f"C5/A7: iCalUId names instance {day} of series {series_uid}"))
        self.rsvp_jobs.append((event.id, item))
        return True

    def create_provisional(self, item: OutlookItem, series_uid: str, day: date) -> bool:
        """An invitation to one instance of a series not synced yet: the meeting's event,
        under the series' identity, so the organizer's series joins it later (C5, A7)."""
        event_id = self.new_id(f"meeting/{series_uid}")
        if event_id in self.events:
            return False
        event = Event(id=event_id, organizer=item.organizer, segments=(_segment_of(item),),
                      meeting_uid=series_uid, updated_at=self.now)
        # scenario: invited to one instance of a series this app has not seen yet (C5)
        self.emit("create_event", event_id, "C5",
                  f"'{item.title}' is one instance ({day}) of a series not synced yet; it becomes the meeting's event",
                  event=event)
        self.emit("link", event_id, "C5", f"{self.user} is linked to the instance of {day}",
                  link=_link_for(item, self.user, event_id, "instance", segment_start=None,
                                 instance_start=_sec(item.start),
                                 evidence=f"C5/A7: iCalUId names instance {day} of series {series_uid}"))
        self.rsvp_jobs.append((event_id, item))
        return True

    def _after_adopt(self, event_id: str, item: OutlookItem, series: OutlookSeries | None) -> None:
        if series is not None:
            link = self.links[item.id]
            self.jobs.append((event_id, item.id, series, self._authoritative(link, item), False))
        self.rsvp_jobs.append((event_id, item))

    def create(self, item: OutlookItem, series: OutlookSeries | None) -> None:
        # One meeting, one id: users whose first syncs run at once plan the same new event,
        # so the second writer's create collides and that user is re-planned onto it (A7).
        event_id = self.new_id(f"meeting/{item.ical_uid}") if item.ical_uid else ""
        if not event_id or event_id in self.events:
            event_id = self.new_id(f"{self.snap.user_id}/{item.id}")
        if event_id in self.events:
            raise ReconcileError(f"new_id gave {event_id} for item {item.id}, which already exists",
                                 user_id=self.user, event_id=event_id)
        event = Event(id=event_id, organizer=item.organizer, segments=(_segment_of(item),),
                      meeting_uid=item.ical_uid, updated_at=self.now)
        what = "series" if series is not None else "event"
        # scenario: a new event/series in Outlook becomes one new Communifire event (C1)
        self.emit("create_event", event_id, "C1", f"new Outlook {what} '{item.title}' becomes a Communifire event",
                  event=event)
        self.emit("link", event_id, "A9", "record the synced snapshot so the new event does not echo",
                  link=_link_for(item, self.user, event_id, "series" if series is not None else "single",
                                 segment_start=item.start if series is not None else None))
        if series is not None:
            self.jobs.append((event_id, item.id, series, True, False))
        self.rsvp_jobs.append((event_id, item))
