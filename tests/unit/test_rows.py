"""Events survive the trip to Table Storage rows and back; diffs write only what changed."""

from datetime import date, datetime, timedelta, timezone

from core.plan.model import Attendee, Event, InstanceException, OutlookLink, Rsvp, Segment
from core.plan.recurrence import Pattern, Range, Recurrence
from core.adapters.rows import ROOT, diff_rows, event_rows, rows_to_event

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def weekly(start: date, count: int = 0) -> Recurrence:
    rng = Range("numbered", start, None, count, "GMT Standard Time") if count else Range("noEnd", start, None, 0, "")
    return Recurrence(Pattern("weekly", 1, ("tuesday",), first_day_of_week="monday"), rng)


def sample_event() -> tuple[Event, list[OutlookLink]]:
    seg0 = Segment(T0, T0 + timedelta(hours=1), "Standup", body="<p>" + "x" * 70_000 + "</p>", location="Room 1",
                   time_zone="Europe/London", recurrence=weekly(T0.date(), 10),
                   attendees=(Attendee("bob@contoso.com", "Bob", "required", "accepted"),))
    seg1 = Segment(T0 + timedelta(weeks=10), T0 + timedelta(weeks=10, hours=1), "Standup",
                   recurrence=weekly((T0 + timedelta(weeks=10)).date()))
    exc_key = T0 + timedelta(weeks=2)
    event = Event(
        id="evt-1", organizer="alice@contoso.com", segments=(seg0, seg1),
        exceptions={exc_key: InstanceException(exc_key, {"title": "Standup (moved)", "start": exc_key + timedelta(hours=2),
                                                         "attendees": (Attendee("carol@contoso.com"),)}, T0)},
        deleted=frozenset({T0 + timedelta(weeks=3)}),
        rsvps=(Rsvp("u2", "all", "accepted", T0), Rsvp("u2", "single", "declined", T0, T0 + timedelta(weeks=1))),
        meeting_uid="uid-123", updated_at=T0,
    )
    links = [
        OutlookLink("u1", "AAMk/with#odd?chars=", "evt-1", "series", "h1", {"title": "Standup"}, segment_start=T0,
                    change_key="ck", ical_uid="uid-123", last_modified=T0),
        OutlookLink("u1", "child-id", "evt-1", "series", "h2", {}, segment_start=seg1.start, evidence="A2: same subject"),
    ]
    return event, links


def test_an_event_with_segments_exceptions_deletions_rsvps_and_links_round_trips():
    event, links = sample_event()
    rows = event_rows(event, links)
    back, back_links = rows_to_event("evt-1", rows)
    assert back == event
    assert sorted(back_links, key=lambda l: l.outlook_id) == sorted(links, key=lambda l: l.outlook_id)


def test_row_keys_are_valid_table_keys():
    event, links = sample_event()
    for key in event_rows(event, links):
        assert not set(key) & set("/\\#?") and len(key) < 1024


def test_long_values_are_split_below_the_property_limit():
    event, links = sample_event()
    for props in event_rows(event, links).values():
        for value in props.values():
            assert not isinstance(value, str) or len(value) <= 30_000


def test_diff_writes_only_changed_rows_and_deletes_removed_ones():
    event, links = sample_event()
    old = event_rows(event, links)
    changed = Event(id=event.id, organizer=event.organizer, segments=event.segments, exceptions={},
                    deleted=event.deleted, rsvps=event.rsvps, meeting_uid=event.meeting_uid, updated_at=event.updated_at)
    upserts, deletes = diff_rows(old, event_rows(changed, links))
    assert upserts == {} and len(deletes) == 1 and deletes[0].startswith("exc|")
    assert ROOT not in deletes
