"""A small, pure, in-memory Outlook mailbox for the reconciliation tests.

It behaves the way SPEC section 4 and GRAPH.md say Outlook does, as a person would use
it, and renders what the shell would gather (Graph-shaped JSON for
``core.plan.outlook_items.build_snapshot``):

- O1: editing one occurrence makes an exception keyed by its original start;
- O2: "this and all following" ends the series the day before and starts a new,
  unconnected series (new id, new iCalUId) from that occurrence;
- O4: an exception keeps its own copy of every field: later series edits do not reach it;
- O5: changing the series' time drops its exceptions;
- O7: a deleted occurrence is simply missing from /instances (and listed, as Graph does,
  in the master's ``cancelledOccurrences`` unless ``with_cancelled=False``);
- every change bumps the changeKey and lastModifiedDateTime; ``touch`` bumps the
  changeKey alone (A9).

Occurrences are generated here independently of ``core.plan.recurrence`` (a plain day-by-day
walk in the series' zone, daily and weekly patterns only), so tests can check that the
planner's expansion agrees with what "Outlook" shows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from core.plan.outlook_items import APP_EVENT_ID_PROPERTY, OutlookSnapshot, build_snapshot
from core.plan.model import Window

UTC = timezone.utc
_WINDOWS_TO_IANA = {  # the few zones the tests use (the engine itself uses tzlocal's table)
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Pacific Standard Time": "America/Los_Angeles",
    "Eastern Standard Time": "America/New_York",
    "W. Europe Standard Time": "Europe/Berlin",
    "AUS Eastern Standard Time": "Australia/Sydney",
}
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _graph_dt(value: datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _graph_offset(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


@dataclass
class _Content:
    title: str
    body: str = ""
    location: str = ""
    attendees: tuple[tuple[str, str], ...] = ()  # (email, response)

    def json(self) -> dict[str, Any]:
        return {
            "subject": self.title,
            "body": {"contentType": "html", "content": self.body},
            "location": {"displayName": self.location, "locationType": "default"},
            "attendees": [
                {"type": "required", "status": {"response": r, "time": "0001-01-01T00:00:00Z"},
                 "emailAddress": {"name": e.split("@")[0], "address": e}}
                for e, r in self.attendees
            ],
        }


@dataclass
class _Exception:
    content: _Content
    start: datetime
    end: datetime
    modified: datetime
    response: str


@dataclass
class _Item:
    id: str
    ical_uid: str
    content: _Content
    start: datetime  # the (first) start, aware UTC
    end: datetime
    zone: str  # Windows name, as Graph writes originalStartTimeZone
    organizer: str
    is_organizer: bool
    response: str
    modified: datetime
    change: int = 0
    app_event_id: str = ""
    # series only
    pattern: str = ""  # "" for a single; "daily" | "weekly"
    interval: int = 1
    days: tuple[str, ...] = ()
    range_type: str = "noEnd"
    start_date: date | None = None
    end_date: date | None = None
    count: int = 0
    exceptions: dict[datetime, _Exception] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)

    @property
    def iana(self) -> ZoneInfo:
        return ZoneInfo(_WINDOWS_TO_IANA[self.zone])

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def slots(self, until: date) -> list[datetime]:
        """Every original start (UTC) of the series up to ``until`` (local date), walking day by day."""
        assert self.start_date is not None
        zone = self.iana
        at = self.start.astimezone(zone).time().replace(tzinfo=None)
        out: list[datetime] = []
        day = self.start_date
        first_week = self.start_date - timedelta(days=(self.start_date.weekday() + 1) % 7)  # weeks start on Sunday
        while day <= until:
            if self.range_type == "endDate" and self.end_date is not None and day > self.end_date:
                break
            if self.range_type == "numbered" and len(out) >= self.count:
                break
            if self.pattern == "daily":
                hit = (day - self.start_date).days % self.interval == 0
            else:
                week = ((day - first_week).days // 7)
                hit = DAY_NAMES[day.weekday()] in self.days and week % self.interval == 0
            if hit:
                out.append(datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC))
            day += timedelta(days=1)
        return out


class FakeOutlook:
    """One user's Outlook calendar. Mutations advance a fake clock by one minute."""

    def __init__(self, owner: str = "me@contoso.com", *, clock: datetime | None = None, prefix: str = "") -> None:
        self.owner = owner
        self.clock = clock or datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
        self.items: dict[str, _Item] = {}
        self._n = 0
        self._prefix = prefix or owner.split("@")[0]
        self.with_cancelled = True

    # -- plumbing ---------------------------------------------------------------------

    def _tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def _new_id(self, kind: str) -> str:
        self._n += 1
        return f"AAMk-{self._prefix}-{kind}-{self._n}="

    def _changed(self, item: _Item) -> None:
        item.modified = self._tick()
        item.change += 1

    def series(self, item_id: str) -> _Item:
        item = self.items[item_id]
        assert item.pattern, f"{item_id} is not a series"
        return item

    # -- making things ----------------------------------------------------------------

    def create_single(self, title: str, start: datetime, end: datetime, *, zone: str = "UTC", body: str = "",
                      location: str = "", attendees: tuple[tuple[str, str], ...] = (),
                      app_event_id: str = "") -> str:
        item_id = self._new_id("single")
        self.items[item_id] = _Item(
            id=item_id, ical_uid=f"UID-{item_id}", content=_Content(title, body, location, attendees),
            start=start, end=end, zone=zone, organizer=self.owner, is_organizer=True, response="organizer",
            modified=self._tick(), app_event_id=app_event_id)
        return item_id

    def create_series(self, title: str, start: datetime, duration: timedelta = timedelta(minutes=30), *,
                      pattern: str = "daily", interval: int = 1, days: tuple[str, ...] = (),
                      range_type: str = "endDate", end_date: date | None = None, count: int = 0,
                      zone: str = "UTC", body: str = "", location: str = "",
                      attendees: tuple[tuple[str, str], ...] = ()) -> str:
        """A new series; ``start`` must be its first occurrence (as Graph requires)."""
        item_id = self._new_id("series")
        local = start.astimezone(ZoneInfo(_WINDOWS_TO_IANA[zone]))
        if pattern == "weekly" and not days:
            days = (DAY_NAMES[local.weekday()],)
        self.items[item_id] = _Item(
            id=item_id, ical_uid=f"UID-{item_id}", content=_Content(title, body, location, attendees),
            start=start, end=start + duration, zone=zone, organizer=self.owner, is_organizer=True,
            response="organizer", modified=self._tick(), pattern=pattern, interval=interval, days=days,
            range_type=range_type, start_date=local.date(), end_date=end_date, count=count)
        return item_id

    def copy_to(self, other: "FakeOutlook", item_id: str, *, response: str = "notResponded") -> str:
        """The attendee's copy of this meeting in ``other``'s mailbox (same iCalUId, A7)."""
        src = self.items[item_id]
        twin = copy.deepcopy(src)
        twin.id = other._new_id("copy")
        twin.is_organizer = False
        twin.response = response
        twin.modified = other._tick()
        twin.app_event_id = ""
        other.items[twin.id] = twin
        return twin.id

    # -- editing ----------------------------------------------------------------------

    def edit(self, item_id: str, *, title: str | None = None, body: str | None = None,
             location: str | None = None, attendees: tuple[tuple[str, str], ...] | None = None) -> None:
        """Edit a single event or a whole series (exceptions keep their own copy: O4)."""
        item = self.items[item_id]
        c = item.content
        item.content = _Content(title if title is not None else c.title, body if body is not None else c.body,
                                location if location is not None else c.location,
                                attendees if attendees is not None else c.attendees)
        self._changed(item)

    def move_single(self, item_id: str, start: datetime, end: datetime) -> None:
        item = self.items[item_id]
        assert not item.pattern
        item.start, item.end = start, end
        self._changed(item)

    def change_series_time(self, item_id: str, at: time, duration: timedelta | None = None) -> None:
        """A new time of day for every occurrence: exceptions are dropped (O5)."""
        item = self.series(item_id)
        zone = item.iana
        assert item.start_date is not None
        moved = {datetime.combine(k.astimezone(zone).date(), at).replace(tzinfo=zone).astimezone(UTC)
                 for k in item.cancelled}
        duration = duration if duration is not None else item.duration
        first = item.slots(item.start_date + timedelta(days=400))[0].astimezone(zone).date()
        item.start = datetime.combine(first, at).replace(tzinfo=zone).astimezone(UTC)
        item.end = item.start + duration
        item.exceptions.clear()
        item.cancelled = moved
        self._changed(item)

    def edit_occurrence(self, item_id: str, original_start: datetime, *, title: str | None = None,
                        body: str | None = None, location: str | None = None,
                        attendees: tuple[tuple[str, str], ...] | None = None,
                        start: datetime | None = None, end: datetime | None = None) -> None:
        """Edit one occurrence: it becomes (or stays) an exception (O1)."""
        item = self.series(item_id)
        assert original_start in self._all_slots(item), f"{original_start} is not an occurrence"
        exc = item.exceptions.get(original_start)
        if exc is None:
            exc = _Exception(copy.deepcopy(item.content), original_start, original_start + item.duration,
                             self.clock, item.response)
        c = exc.content
        exc.content = _Content(title if title is not None else c.title, body if body is not None else c.body,
                               location if location is not None else c.location,
                               attendees if attendees is not None else c.attendees)
        if start is not None:
            exc.start = start
            exc.end = end if end is not None else start + item.duration
        elif end is not None:
            exc.end = end
        self._changed(item)
        exc.modified = item.modified
        item.exceptions[original_start] = exc

    def respond(self, item_id: str, response: str) -> None:
        item = self.items[item_id]
        item.response = response
        for exc in item.exceptions.values():
            exc.response = response
        self._changed(item)

    def respond_occurrence(self, item_id: str, original_start: datetime, response: str) -> None:
        item = self.series(item_id)
        self.edit_occurrence(item_id, original_start)
        item.exceptions[original_start].response = response

    def delete_occurrence(self, item_id: str, original_start: datetime) -> None:
        """Delete one occurrence: no tombstone, it is just missing (O7)."""
        item = self.series(item_id)
        assert original_start in self._all_slots(item)
        item.exceptions.pop(original_start, None)
        item.cancelled.add(original_start)
        self._changed(item)

    def edit_following(self, item_id: str, original_start: datetime, *, title: str | None = None,
                       at: time | None = None, body: str | None = None, location: str | None = None) -> str:
        """ "This and all following events" (O2): cut the series, start a new unconnected one."""
        item = self.series(item_id)
        zone = item.iana
        slots = self._all_slots(item)
        assert original_start in slots and original_start != slots[0], "cannot split at the first occurrence"
        cut_day = original_start.astimezone(zone).date()
        before = [s for s in slots if s < original_start]
        new_id = self._new_id("series")
        local_at = at or item.start.astimezone(zone).time().replace(tzinfo=None)
        new_start = datetime.combine(cut_day, local_at).replace(tzinfo=zone).astimezone(UTC)
        c = item.content
        new = _Item(
            id=new_id, ical_uid=f"UID-{new_id}",
            content=_Content(title if title is not None else c.title, body if body is not None else c.body,
                             location if location is not None else c.location, c.attendees),
            start=new_start, end=new_start + item.duration, zone=item.zone, organizer=item.organizer,
            is_organizer=item.is_organizer, response=item.response, modified=self._tick(), pattern=item.pattern,
            interval=item.interval, days=item.days, range_type=item.range_type, start_date=cut_day,
            end_date=item.end_date, count=max(item.count - len(before), 0))
        if item.pattern == "weekly" and item.interval > 1:
            new.days = item.days  # phase is kept: the new series starts on the cut occurrence's week
        # occurrences deleted after the cut stay deleted in the new series (same local day, new time)
        for k in sorted(item.cancelled):
            if k >= original_start:
                day = k.astimezone(zone).date()
                new.cancelled.add(datetime.combine(day, local_at).replace(tzinfo=zone).astimezone(UTC))
        item.exceptions = {k: v for k, v in item.exceptions.items() if k < original_start}
        item.cancelled = {k for k in item.cancelled if k < original_start}
        item.range_type, item.end_date, item.count = "endDate", cut_day - timedelta(days=1), 0
        self._changed(item)
        self.items[new_id] = new
        return new_id

    def delete(self, item_id: str) -> None:
        del self.items[item_id]
        self._tick()

    def touch(self, item_id: str) -> None:
        """A new changeKey and nothing else (A9)."""
        self.items[item_id].change += 1

    def stamp(self, item_id: str, event_id: str) -> None:
        self.items[item_id].app_event_id = event_id

    # -- reading ----------------------------------------------------------------------

    def _all_slots(self, item: _Item, until: date | None = None) -> list[datetime]:
        assert item.start_date is not None
        return item.slots(until or (item.start_date + timedelta(days=800)))

    def occurrences(self, item_id: str, window: Window) -> list[datetime]:
        """The original starts of the live (not deleted) occurrences shown in a window."""
        item = self.series(item_id)
        return sorted(self._instances(item, window))

    def _instances(self, item: _Item, window: Window) -> dict[datetime, tuple[datetime, datetime]]:
        until = window.end.astimezone(item.iana).date() + timedelta(days=2)
        shown = {}
        for slot in item.slots(until):
            if slot in item.cancelled:
                continue
            exc = item.exceptions.get(slot)
            start, end = (exc.start, exc.end) if exc else (slot, slot + item.duration)
            if start <= window.end and end >= window.start:  # boundary-inclusive, as Graph
                shown[slot] = (start, end)
        return shown

    def _base_json(self, item: _Item, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@odata.etag": f'W/"ck-{item.id}-{item.change}"',
            "id": item.id,
            "type": kind,
            "changeKey": f"ck-{item.id}-{item.change}",
            "lastModifiedDateTime": _graph_offset(item.modified),
            "iCalUId": item.ical_uid,
            "isAllDay": False,
            "isCancelled": False,
            "isOrganizer": item.is_organizer,
            "responseStatus": {"response": item.response,
                               "time": "0001-01-01T00:00:00Z" if item.is_organizer else _graph_offset(item.modified)},
            "organizer": {"emailAddress": {"name": item.organizer.split("@")[0], "address": item.organizer}},
            "originalStartTimeZone": item.zone,
            "originalEndTimeZone": item.zone,
            "seriesMasterId": None,
            "occurrenceId": None,
            "recurrence": None,
            "start": _graph_dt(item.start),
            "end": _graph_dt(item.end),
            **item.content.json(),
        }
        if item.app_event_id:
            out["singleValueExtendedProperties"] = [{"id": APP_EVENT_ID_PROPERTY, "value": item.app_event_id}]
        return out

    def _recurrence_json(self, item: _Item) -> dict[str, Any]:
        assert item.start_date is not None
        return {
            "pattern": {"type": item.pattern, "interval": item.interval, "month": 0, "dayOfMonth": 0,
                        "daysOfWeek": list(item.days), "firstDayOfWeek": "sunday", "index": "first"},
            "range": {"type": item.range_type, "startDate": item.start_date.isoformat(),
                      "endDate": item.end_date.isoformat() if item.end_date else "0001-01-01",
                      "recurrenceTimeZone": item.zone, "numberOfOccurrences": item.count},
        }

    def render(self, window: Window) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]],
                                               dict[str, list[dict[str, Any]]]]:
        """What the shell gathers for the window: singles, masters (GET), instances."""
        singles, masters, instances = [], {}, {}
        for item in sorted(self.items.values(), key=lambda i: i.id):
            if not item.pattern:
                if item.start <= window.end and item.end >= window.start:
                    singles.append(self._base_json(item, "singleInstance"))
                continue
            shown = self._instances(item, window)
            if not shown:
                continue  # calendarView shows nothing of it, so the shell never reads it
            master = self._base_json(item, "seriesMaster")
            master["recurrence"] = self._recurrence_json(item)
            if self.with_cancelled:
                master["cancelledOccurrences"] = [
                    f"OID.{item.id}.{k.astimezone(item.iana).date().isoformat()}" for k in sorted(item.cancelled)]
            masters[item.id] = master
            rows = []
            for slot, (start, end) in sorted(shown.items()):
                exc = item.exceptions.get(slot)
                row = self._base_json(item, "exception" if exc else "occurrence")
                row["id"] = f"{item.id}:{slot.strftime('%Y%m%dT%H%M')}"
                row["iCalUId"] = f"{item.ical_uid}-{slot.strftime('%Y%m%d')}"
                row["seriesMasterId"] = item.id
                row["originalStart"] = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                row["occurrenceId"] = f"OID.{item.id}.{slot.astimezone(item.iana).date().isoformat()}"
                row["start"], row["end"] = _graph_dt(start), _graph_dt(end)
                row.pop("singleValueExtendedProperties", None)
                if exc:
                    row.update(exc.content.json())
                    row["lastModifiedDateTime"] = _graph_offset(exc.modified)
                    row["responseStatus"] = {
                        "response": exc.response,
                        "time": "0001-01-01T00:00:00Z" if item.is_organizer else _graph_offset(exc.modified)}
                rows.append(row)
            instances[item.id] = rows
        return singles, masters, instances

    def snapshot(self, user_id: str, window: Window) -> OutlookSnapshot:
        singles, masters, instances = self.render(window)
        return build_snapshot(user_id, window, singles, masters, instances, complete=True)
