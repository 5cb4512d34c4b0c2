"""The change feed's messages, pure (issue 12, docs/changes.md): what changed between two
read-API documents of one event, what an outbound operation changed beyond what it asked
(A3, A6), large messages by reference, and the contract checks both sides run."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.app.contracts import ContractError, accept, problems, unknown_fields, validate_feed
from core.plan import change_feed
from core.plan.calendar_view import EventMeta, calendar_json, effective_rsvps, event_json
from core.plan.model import Attendee, Event, InstanceException, OutlookLink, Rsvp, Segment, Window
from core.plan.recurrence import Pattern, Range, Recurrence

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
WINDOW = Window(T0 - timedelta(days=2), T0 + timedelta(days=365))


def weekly(count: int, start: datetime = T0) -> Recurrence:
    return Recurrence(Pattern("weekly", 1, ("tuesday",), first_day_of_week="sunday"),
                      Range("numbered", start.date(), None, count, "UTC"))


def series(**changes) -> Event:
    seg = Segment(T0, T0 + timedelta(minutes=30), "Standup", location="Room 1", time_zone="UTC", recurrence=weekly(6),
                  attendees=(Attendee("bob@contoso.com", "Bob"),))
    return replace(Event(id="evt-1", organizer="alice@contoso.com", segments=(seg,)), **changes)


LINKS = [OutlookLink("1001", "AAMk-1", "evt-1", "series", "h", segment_start=T0)]


def doc(event: Event | None, seq: int = 1, links=LINKS):
    return None if event is None else event_json(event, links, WINDOW, EventMeta(seq, ""))


def comparable(d):
    return None if d is None else {k: v for k, v in d.items() if k != "seq"}


def changes(before: Event | None, after: Event | None, links_after=LINKS):
    return change_feed.event_changes(comparable(doc(before)), comparable(doc(after, links=links_after)))


def at(week: int) -> datetime:
    return T0 + timedelta(weeks=week)


def test_a_new_event_is_created_and_a_gone_one_deleted():
    assert changes(None, series()) == [{"type": "event_created"}]
    assert changes(series(), None) == [{"type": "event_deleted"}]
    assert changes(series(), series()) == []


def test_A1_O2_a_split_names_the_new_segment_with_its_full_fields_and_A4_its_instances_only():
    base = series()
    first = replace(base.segments[0], recurrence=weekly(3))
    child = replace(base.segments[0], start=at(3), end=at(3) + timedelta(minutes=30), location="Room 9",
                    recurrence=weekly(3, at(3)))
    out = changes(base, replace(base, segments=(first, child)))
    split = next(c for c in out if c["type"] == "series_split")
    assert split["segment_start"] == "2026-12-22T09:00:00Z" and split["segment"]["location"] == "Room 9"
    moved = next(c for c in out if c["type"] == "instances_changed")["instances"]
    assert [i["original_start"] for i in moved] == ["2026-12-22T09:00:00Z", "2026-12-29T09:00:00Z", "2027-01-05T09:00:00Z"]
    assert all(i["fields"] == ["location"] and i["values"]["location"] == "Room 9" for i in moved)


def test_D2_an_exception_is_named_by_its_original_start_with_the_fields_it_changed():
    exc = InstanceException(at(2), {"title": "Standup (long)", "end": at(2) + timedelta(hours=1)}, T0)
    out = changes(series(), series(exceptions={at(2): exc}))
    assert out == [{"type": "instances_changed", "instances": [{
        "original_start": "2026-12-15T09:00:00Z", "fields": ["end", "title", "state"],
        "values": {"end": "2026-12-15T10:00:00Z", "title": "Standup (long)", "state": "exception"}}]}]


def test_D3_deleted_and_restored_instances_are_listed_by_original_start():
    deleted = series(deleted=frozenset({at(1), at(4)}))
    assert changes(series(), deleted) == [{"type": "instances_deleted",
                                           "original_starts": ["2026-12-08T09:00:00Z", "2026-12-29T09:00:00Z"]}]
    assert changes(deleted, series()) == [{"type": "instances_restored",
                                           "original_starts": ["2026-12-08T09:00:00Z", "2026-12-29T09:00:00Z"]}]


def test_C4_rsvps_name_the_users_whose_answer_changed_and_each_instance_shows_its_effective_answer():
    rsvps = (Rsvp("1002", "all", "accepted", T0), Rsvp("1002", "single", "declined", T0, at(2)),
             Rsvp("1003", "following", "tentative", T0, at(3)))
    out = changes(series(), series(rsvps=rsvps))
    assert out[0]["type"] == "rsvps_changed" and out[0]["users"] == ["1002", "1003"]
    answers = [effective_rsvps(rsvps, at(w)) for w in range(6)]
    assert answers[1] == [{"user_id": "1002", "response": "accepted", "scope": "all"}]
    assert answers[2] == [{"user_id": "1002", "response": "declined", "scope": "single"}]
    assert answers[4] == [{"user_id": "1002", "response": "accepted", "scope": "all"},
                          {"user_id": "1003", "response": "tentative", "scope": "following"}]


def test_series_wide_field_changes_are_named_and_outlook_items_moving_are_said():
    renamed = series(segments=(replace(series().segments[0], title="Daily"),))
    out = changes(series(), renamed)
    assert out[0] == {"type": "fields_changed", "fields": ["title"], "values": {"title": "Daily"}}
    bob = OutlookLink("1002", "AAMk-2", "evt-1", "series", "h", segment_start=T0)
    assert changes(series(), series(), [*LINKS, bob]) == [{"type": "outlook_changed", "users": ["1002"]}]


def test_A3_A6_an_edit_all_publishes_only_what_it_did_beyond_the_fields_it_gave():
    exc = InstanceException(at(2), {"start": at(2) + timedelta(hours=1), "end": at(2) + timedelta(hours=1, minutes=30),
                                    "title": "Moved"}, T0)
    before = series(exceptions={at(2): exc})
    moved_seg = replace(before.segments[0], start=T0 + timedelta(hours=2), end=T0 + timedelta(hours=2, minutes=30),
                        recurrence=weekly(6, T0 + timedelta(hours=2)))
    # O5 + A6: the series moved; the exception keeps its title but loses its own time change
    kept = InstanceException(at(2) + timedelta(hours=2), {"title": "Moved"}, T0)
    after = replace(before, segments=(moved_seg,), exceptions={kept.original_start: kept})
    out = changes(before, after)
    asked = change_feed.Asked("update", "all", None, frozenset({"start", "end"}))
    assert change_feed.side_effects(out, asked) == []  # every instance moved with the series: asked
    effects = change_feed.side_effects(out, asked, doc(before), doc(after))
    assert effects == [{"type": "instances_changed", "instances": [{  # but the exception lost its own time (A6)
        "original_start": "2026-12-15T11:00:00Z", "previous_original_start": "2026-12-15T09:00:00Z",
        "fields": ["end", "start"], "values": {"end": "2026-12-15T11:30:00Z", "start": "2026-12-15T11:00:00Z"}}]}]
    # A6: a location change reaching an exception is asked; the exception losing its own
    # title on the way would not be, and is published
    relocated = replace(before, segments=(replace(before.segments[0], location="Room 2"),),
                        exceptions={at(2): replace(exc, changes={"start": exc.changes["start"], "end": exc.changes["end"]})})
    effects = change_feed.side_effects(changes(before, relocated),
                                       change_feed.Asked("update", "all", None, frozenset({"location"})))
    assert effects == [{"type": "instances_changed", "instances": [{
        "original_start": "2026-12-15T09:00:00Z", "fields": ["title", "location"],
        "values": {"title": "Standup", "location": "Room 2"}}]}]
    assert change_feed.side_effects(changes(None, series()), change_feed.Asked("create", "all")) == []


def test_a_single_scope_edit_is_what_was_asked_and_another_instance_changing_is_a_side_effect():
    exc2 = InstanceException(at(2), {"title": "Two"}, T0)
    exc3 = InstanceException(at(3), {"title": "Three"}, T0)
    out = changes(series(), series(exceptions={at(2): exc2, at(3): exc3}))
    effects = change_feed.side_effects(out, change_feed.Asked("update", "single", at(2), frozenset({"title"})))
    assert [i["original_start"] for i in effects[0]["instances"]] == ["2026-12-22T09:00:00Z"]


def test_a_large_change_goes_by_reference_to_the_read_api_and_still_fits():
    big = series(segments=(replace(series().segments[0], body="x" * 60_000),))
    msg = change_feed.feed_message(change_id="c1", event_id="evt-1", communifire_id="", seq=2, at=T0, source="inbound",
                                   changes=changes(series(), big), rules=[{"rule": "O3", "reason": "r"}],
                                   users=["1001"], snapshot=doc(big, 2))
    slim = change_feed.shrink(msg)
    assert len(json.dumps(slim)) <= change_feed.MAX_INLINE and slim["event"] is None
    assert slim["by_reference"] == {"read_api": "calendar/{user}?event=evt-1"}
    assert slim["changes"][0]["fields"] == ["body"]
    validate_feed("calendar-changes", slim)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["title", "delete", "restore", "exception", "rsvp", "split"]), max_size=6))
def test_property_replaying_snapshots_in_seq_order_gives_the_last_document(ops):
    """Each message carries the document after its change: applying them in sequence
    order over an empty model gives the final document, whatever the edits."""
    event, seq, messages = series(), 1, []
    messages.append(change_feed.feed_message(change_id="c1", event_id="evt-1", communifire_id="", seq=1, at=T0,
                                             source="inbound", changes=[{"type": "event_created"}], rules=[],
                                             users=["1001"], snapshot=doc(event, 1)))
    for n, op in enumerate(ops):
        seg = event.segments[0]
        if op == "title":
            new = replace(event, segments=(replace(seg, title=f"T{n}"),) + event.segments[1:])
        elif op == "delete":
            new = replace(event, deleted=event.deleted | {at(n % 6)})
        elif op == "restore":
            new = replace(event, deleted=frozenset())
        elif op == "exception":
            new = replace(event, exceptions={at(n % 6): InstanceException(at(n % 6), {"location": f"R{n}"}, T0)})
        elif op == "rsvp":
            new = replace(event, rsvps=(Rsvp("1002", "all", ["accepted", "declined"][n % 2], T0),))
        else:
            if len(event.segments) > 1:
                continue
            first = replace(seg, recurrence=weekly(3))
            child = replace(seg, start=at(3), end=at(3) + timedelta(minutes=30), recurrence=weekly(3, at(3)))
            new = replace(event, segments=(first, child))
        found = change_feed.event_changes(comparable(doc(event)), comparable(doc(new)))
        if found:
            seq += 1
            messages.append(change_feed.feed_message(change_id=f"c{seq}", event_id="evt-1", communifire_id="", seq=seq,
                                                     at=T0, source="inbound", changes=found, rules=[], users=["1001"],
                                                     snapshot=doc(new, seq)))
        event = new
    for m in messages:
        validate_feed("calendar-changes", m)
    model: dict = {}
    for m in sorted(reversed(messages), key=lambda m: m["seq"]):
        model[m["event_id"]] = m["event"]
    assert model["evt-1"] == doc(event, seq)
    assert calendar_json("1001", {"evt-1": event}, LINKS, WINDOW, T0, {"evt-1": EventMeta(seq, "")})["events"] == \
        [model["evt-1"]]


# -- the contracts: one validator, both sides (docs/messages.md "Versioning") -------------------


def outbound_message(**extra):
    msg = {"v": 1, "operation_id": "op-1", "occurred_at": "2026-12-01T09:00:00Z", "actor": {"user_id": "1001"},
           "calendar": "my", "operation": "delete", "scope": "all",
           "event": {"id": "evt-1", "organizer": {"user_id": "1001", "email": "alice@contoso.com"}}}
    msg.update(extra)
    return msg


def test_the_consumer_ignores_a_newer_producers_additive_fields_with_one_log_line(caplog):
    msg = outbound_message(priority="high")
    msg["event"]["colour"] = "blue"
    with caplog.at_level(logging.INFO, logger="core.app.contracts"):
        accepted = accept("outbound", msg)
    assert "priority" not in accepted and "colour" not in accepted["event"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "event/colour,priority" in lines[0]
    assert unknown_fields("outbound", outbound_message()) == []


def test_an_unknown_major_version_is_refused_and_a_schema_break_named():
    with pytest.raises(ContractError, match="unknown message version 2"):
        accept("outbound", outbound_message(v=2))
    with pytest.raises(ContractError, match="operation"):
        accept("outbound", outbound_message(operation="explode"))


def test_the_producer_side_is_strict_and_bind_needs_a_communifire_id():
    assert problems("outbound", outbound_message(typo=1), strict=True)
    bind = {"v": 1, "operation_id": "b-1", "occurred_at": "2026-12-01T09:00:00Z", "actor": {"user_id": "1001"},
            "calendar": "my", "operation": "bind", "event": {"id": "evt-1"}}
    assert problems("outbound", bind) and not problems("outbound", {**bind, "communifire_id": "cf-42"})
    assert problems("outbound", outbound_message(communifire_id="cf-42"))  # only a bind carries one


def test_schema_ids_are_urns_not_made_up_urls():
    from core.app.contracts import CONTRACTS, schema_of

    for name in CONTRACTS:
        assert schema_of(name)["$id"].startswith("urn:communifire:outlook-sync:")


@pytest.mark.parametrize("path", sorted((__import__("pathlib").Path(__file__).parents[2] / "docs/examples/changes").glob("*.json")),
                         ids=lambda p: p.stem)
def test_every_documented_change_example_passes_the_schema(path):
    message = json.loads(path.read_text())
    validate_feed("calendar-changes", message)
    assert path.stem.replace("-", "_") in [c["type"] for c in message["changes"]]  # the file names its kind


@pytest.mark.parametrize("path", sorted((__import__("pathlib").Path(__file__).parents[2] / "docs/examples/results").glob("*.json")),
                         ids=lambda p: p.stem)
def test_every_documented_result_example_passes_the_schema(path):
    message = json.loads(path.read_text())
    validate_feed("outbound-results", message)
    assert message["status"] == path.stem


def test_the_documented_bind_passes_the_producers_checks():
    from core.app.producer import validate

    validate(json.loads((__import__("pathlib").Path(__file__).parents[2] / "docs/examples/bind/bind.json").read_text()))
