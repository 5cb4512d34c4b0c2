"""Scenario tests for core.plan.inbound: one per rule, driven through the pure fake Outlook
(tests/unit/fakes_outlook.py) the way a person would use Outlook, then planned, applied
and re-planned (a converged state must plan nothing: STYLE rule 10)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import pytest
from fakes_outlook import FakeOutlook

from core.plan.model import Event, OutlookLink, Rsvp, Segment, UserState, Window
from core.plan.outlook_items import build_snapshot, content_hash, content_of
from core.plan.inbound import Plan, ReconcileError, SafetyPolicy, apply_plan, plan_inbound
from core.adapters.rows import event_rows, rows_to_event

UTC = timezone.utc
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WINDOW = Window(datetime(2026, 1, 3, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC))
USER = "u1"


def at(day: int, hour: int = 9, month: int = 1, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Sync:
    """One connected user: their fake Outlook and Communifire state."""

    def __init__(self, outlook: FakeOutlook, user: str = USER, state: UserState | None = None) -> None:
        self.outlook = outlook
        self.user = user
        self.state = state or UserState(user)

    def snapshot(self):
        return self.outlook.snapshot(self.user, WINDOW)

    def plan(self, snapshot=None, **kw) -> Plan:
        return plan_inbound(self.state, snapshot or self.snapshot(), NOW, **kw)

    def run(self, snapshot=None) -> Plan:
        """Plan, apply, and check convergence (re-planning the same snapshot is empty)."""
        snap = snapshot or self.snapshot()
        plan = plan_inbound(self.state, snap, NOW)
        assert plan.held is None, plan.held
        self.state = apply_plan(self.state, plan)
        again = plan_inbound(self.state, snap, NOW)
        assert again.is_empty, again.to_json()
        return plan

    def event(self) -> Event:
        assert len(self.state.events) == 1, list(self.state.events)
        return next(iter(self.state.events.values()))


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.rule) for a in plan.actions]


def with_other_events(sync: Sync, events: dict[str, Event]) -> None:
    sync.state = UserState(sync.user, {**sync.state.events, **events}, sync.state.links)


# --------------------------------------------------------------------------- singles


def test_C1_a_new_single_in_outlook_becomes_one_new_event_with_a_link():
    outlook = FakeOutlook()
    oid = outlook.create_single("Lunch", at(7, 12), at(7, 13), location="Cafe")
    sync = Sync(outlook)
    plan = sync.run()
    assert kinds(plan) == [("create_event", "C1"), ("link", "A9")]
    event = sync.event()
    assert event.title == "Lunch" and event.segments[0].location == "Cafe"
    assert event.segments[0].recurrence is None
    link = sync.state.links[oid]
    assert link.event_id == event.id and link.kind == "single"
    assert link.content_hash == content_hash(sync.snapshot().singles[oid])
    assert event.meeting_uid == outlook.items[oid].ical_uid


def test_C1_new_event_ids_are_stable_across_replanning_and_injectable():
    outlook = FakeOutlook()
    outlook.create_single("Lunch", at(7, 12), at(7, 13))
    sync = Sync(outlook)
    assert sync.plan().actions[0].event_id == sync.plan().actions[0].event_id
    plan = sync.plan(new_id=lambda seed: f"evt:{seed}")
    # seeded by the meeting's iCalUId, so two users' first syncs of one meeting agree (A7)
    assert plan.actions[0].event_id == f"evt:meeting/{outlook.items[plan.actions[1].link.outlook_id].ical_uid}"


def test_A9_a_second_plan_with_nothing_changed_is_empty():
    outlook = FakeOutlook()
    outlook.create_single("Lunch", at(7, 12), at(7, 13))
    outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    assert sync.plan().is_empty


def test_A9_a_new_change_key_alone_plans_nothing():
    outlook = FakeOutlook()
    single = outlook.create_single("Lunch", at(7, 12), at(7, 13))
    series = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.touch(single)
    outlook.touch(series)
    assert sync.snapshot().singles[single].change_key != sync.state.links[single].change_key
    assert sync.plan().is_empty


def test_A9_our_own_write_coming_back_with_the_snapshot_content_plans_nothing():
    # the outbound writer created the Outlook item, stamped it and recorded the link
    outlook = FakeOutlook()
    oid = outlook.create_single("Board meeting", at(8, 14), at(8, 15), app_event_id="evt-1")
    item = outlook.snapshot(USER, WINDOW).singles[oid]
    event = Event("evt-1", "me@contoso.com", (Segment(at(8, 14), at(8, 15), "Board meeting", time_zone="UTC"),))
    link = OutlookLink(USER, oid, "evt-1", "single", content_hash(item), content_of(item), change_key="old")
    sync = Sync(outlook, state=UserState(USER, {"evt-1": event}, {oid: link}))
    assert sync.plan().is_empty


def test_A9_a_stamped_item_whose_link_was_lost_is_relinked_not_duplicated():
    outlook = FakeOutlook()
    oid = outlook.create_single("Board meeting", at(8, 14), at(8, 15), app_event_id="evt-1")
    event = Event("evt-1", "me@contoso.com", (Segment(at(8, 14), at(8, 15), "Board meeting"),))
    sync = Sync(outlook, state=UserState(USER, {"evt-1": event}))
    plan = sync.run()
    assert kinds(plan) == [("link", "A9")]
    assert sync.state.links[oid].event_id == "evt-1"
    assert "stamped" in sync.state.links[oid].evidence
    assert list(sync.state.events) == ["evt-1"]


def test_A9_a_stamped_item_whose_event_is_not_loaded_is_left_alone():
    outlook = FakeOutlook()
    outlook.create_single("Board meeting", at(8, 14), at(8, 15), app_event_id="evt-gone")
    plan = Sync(outlook).plan()
    assert plan.is_empty
    assert any("evt-gone" in n for n in plan.notes)


def test_D1_a_changed_single_updates_only_the_fields_changed_in_outlook():
    outlook = FakeOutlook()
    oid = outlook.create_single("Lunch", at(7, 12), at(7, 13), location="Cafe")
    sync = Sync(outlook)
    sync.run()
    # meanwhile Communifire changed the location (on its way to Outlook)
    event = sync.event()
    seg = replace(event.segments[0], location="Canteen")
    with_other_events(sync, {event.id: replace(event, segments=(seg,))})
    outlook.edit(oid, title="Long lunch")
    plan = sync.run()
    assert kinds(plan) == [("update_segment", "D1"), ("link", "A9")]
    assert dict(plan.actions[0].changes) == {"title": "Long lunch"}
    assert sync.event().segments[0].location == "Canteen"
    assert sync.event().title == "Long lunch"


def test_D1_a_moved_single_updates_its_times():
    outlook = FakeOutlook()
    oid = outlook.create_single("Lunch", at(7, 12), at(7, 13))
    sync = Sync(outlook)
    sync.run()
    outlook.move_single(oid, at(9, 12), at(9, 14))
    sync.run()
    assert (sync.event().segments[0].start, sync.event().segments[0].end) == (at(9, 12), at(9, 14))


def test_C2_a_single_deleted_in_outlook_by_its_organizer_deletes_the_event():
    outlook = FakeOutlook()
    oid = outlook.create_single("Lunch", at(7, 12), at(7, 13))
    other = outlook.create_single("Dinner", at(7, 19), at(7, 20))
    sync = Sync(outlook)
    sync.run()
    outlook.delete(oid)
    plan = sync.run()
    assert kinds(plan) == [("delete_event", "C2")]
    assert list(sync.state.links) == [other] and len(sync.state.events) == 1


def test_a_delta_round_leaves_unlisted_linked_items_alone_and_deletes_removed_ones():
    outlook = FakeOutlook()
    keep = outlook.create_single("Keep", at(7, 12), at(7, 13))
    drop = outlook.create_single("Drop", at(8, 12), at(8, 13))
    sync = Sync(outlook)
    sync.run()
    delta = build_snapshot(USER, WINDOW, [], {}, {}, removed_ids=[drop], complete=False)
    plan = sync.run(delta)
    assert kinds(plan) == [("delete_event", "C2")]
    assert [l.outlook_id for l in sync.state.links.values()] == [keep]


def test_a_removed_id_for_an_item_outside_the_window_is_not_a_delete():
    # GRAPH.md 2: delta sends @removed for out-of-window changes too
    outlook = FakeOutlook()
    oid = outlook.create_single("Old", at(1, 12), at(1, 13))
    sync = Sync(outlook)
    wide = Window(datetime(2025, 12, 1, tzinfo=UTC), WINDOW.end)
    sync.run(outlook.snapshot(USER, wide))
    delta = build_snapshot(USER, WINDOW, [], {}, {}, removed_ids=[oid], complete=False)
    assert sync.plan(delta).is_empty


def test_a_single_that_slid_out_of_a_complete_window_is_not_deleted():
    outlook = FakeOutlook()
    outlook.create_single("Past", at(1, 12), at(1, 13))
    outlook.create_single("Future", at(9, 12), at(9, 13))
    sync = Sync(outlook)
    sync.run(outlook.snapshot(USER, Window(datetime(2025, 12, 1, tzinfo=UTC), WINDOW.end)))
    assert sync.plan().is_empty  # "Past" is not in the window any more, and that is no delete


# --------------------------------------------------------------------------- safety


def _many_singles(n: int) -> tuple[FakeOutlook, list[str], Sync]:
    outlook = FakeOutlook()
    ids = [outlook.create_single(f"Meeting {i}", at(7 + i, 12), at(7 + i, 13)) for i in range(n)]
    sync = Sync(outlook)
    sync.run()
    return outlook, ids, sync


def test_safety_an_empty_complete_window_with_linked_events_is_held():
    outlook, ids, sync = _many_singles(2)
    empty = build_snapshot(USER, WINDOW, [], {}, {}, complete=True)
    plan = sync.plan(empty)
    assert plan.held is not None and "empty" in plan.held
    assert [a.kind for a in plan.actions] == ["delete_event", "delete_event"]  # shown, not applied


def test_safety_a_plan_deleting_more_than_the_share_is_held():
    outlook, ids, sync = _many_singles(5)
    for oid in ids[:3]:
        outlook.delete(oid)
    plan = sync.plan()
    assert plan.held is not None and "3 of 5" in plan.held
    assert sync.plan(policy=SafetyPolicy(max_delete_share=0.7)).held is None


def test_safety_few_events_are_not_share_checked():
    outlook, ids, sync = _many_singles(3)
    for oid in ids[:2]:
        outlook.delete(oid)
    assert sync.plan().held is None  # fewer than min_events_for_share_check


# --------------------------------------------------------------------------- series


def test_C1_a_new_series_becomes_one_event_with_one_segment_and_its_recurrence():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27), pattern="weekly", zone="GMT Standard Time")
    sync = Sync(outlook)
    plan = sync.run()
    assert kinds(plan) == [("create_event", "C1"), ("link", "A9")]
    event = sync.event()
    assert len(event.segments) == 1 and event.segments[0].recurrence is not None
    assert event.segments[0].recurrence.range.end_date == date(2026, 2, 27)
    assert event.segments[0].time_zone == "GMT Standard Time"
    assert sync.state.links[sid].kind == "series" and sync.state.links[sid].segment_start == at(6)
    assert not event.exceptions and not event.deleted


def test_D2_an_edited_occurrence_becomes_an_exception_with_only_the_changed_fields():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27), location="Room 1")
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(8), location="Room 2")
    plan = sync.run()
    assert kinds(plan) == [("set_exception", "D2")]
    exc = sync.event().exceptions[at(8)]
    assert dict(exc.changes) == {"location": "Room 2"}  # not "it changed": which field changed
    assert exc.modified_at == outlook.items[sid].exceptions[at(8)].modified.replace(second=0)


def test_D2_a_moved_occurrence_is_keyed_by_its_original_start():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(8), start=at(8, 11))
    sync.run()
    exc = sync.event().exceptions[at(8)]
    assert dict(exc.changes) == {"start": at(8, 11), "end": at(8, 11, minute=30)}


def test_D2_the_newer_change_wins_between_outlook_and_communifire():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(8), title="Outlook title")
    outlook_time = outlook.items[sid].exceptions[at(8)].modified
    event = sync.event()
    from core.plan.model import InstanceException

    newer = InstanceException(at(8), {"title": "Communifire title"}, outlook_time + timedelta(hours=1), "communifire")
    with_other_events(sync, {event.id: replace(event, exceptions={at(8): newer})})
    assert sync.plan().is_empty  # Communifire's change is newer: it stays
    older = replace(newer, modified_at=outlook_time - timedelta(hours=1))
    with_other_events(sync, {event.id: replace(event, exceptions={at(8): older})})
    plan = sync.run()
    assert kinds(plan) == [("set_exception", "D2")]
    assert sync.event().exceptions[at(8)].changes["title"] == "Outlook title"


def test_O4_a_series_rename_after_an_instance_edit_keeps_the_exception_to_its_own_fields():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27), location="Room 1")
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(8), location="Room 2")
    sync.run()
    outlook.edit(sid, title="Daily standup")  # Outlook does not carry this to the exception (O4)
    plan = sync.run()
    assert kinds(plan) == [("update_segment", "D1"), ("link", "A9")]
    event = sync.event()
    assert event.title == "Daily standup"
    assert dict(event.exceptions[at(8)].changes) == {"location": "Room 2"}  # the instance shows the new title


def test_D3_O7_a_deleted_occurrence_is_found_by_its_absence():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(9), title="special")
    sync.run()
    outlook.delete_occurrence(sid, at(9))
    outlook.delete_occurrence(sid, at(12))
    plan = sync.run()
    assert kinds(plan) == [("delete_instance", "D3"), ("delete_instance", "D3")]
    event = sync.event()
    assert event.deleted == frozenset({at(9), at(12)})
    assert at(9) not in event.exceptions


def test_D3_without_cancelled_occurrences_absence_alone_is_enough():
    outlook = FakeOutlook()
    outlook.with_cancelled = False
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.delete_occurrence(sid, at(12))
    assert sync.snapshot().series[sid].cancelled is None
    sync.run()
    assert sync.event().deleted == frozenset({at(12)})


def test_D3_a_missing_occurrence_not_in_cancelled_occurrences_is_not_deleted():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    singles, masters, instances = outlook.render(WINDOW)
    instances[sid] = [r for r in instances[sid] if r["originalStart"] != "2026-01-12T09:00:00Z"]
    snap = build_snapshot(USER, WINDOW, singles, masters, instances)
    plan = sync.plan(snap)
    assert plan.is_empty  # cancelledOccurrences does not list it: not a delete (cross-check)
    assert any("not in cancelledOccurrences" in n for n in plan.notes)


def test_D3_occurrences_at_the_window_edges_are_never_taken_for_deletions():
    outlook = FakeOutlook()
    outlook.with_cancelled = False
    sid = outlook.create_series("Standup", at(2, 23, minute=30), duration=timedelta(hours=1),
                                end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    singles, masters, instances = outlook.render(WINDOW)
    # the occurrence straddling the window start is missing (a Graph boundary difference)
    instances[sid] = [r for r in instances[sid] if r["originalStart"] != "2026-01-02T23:30:00Z"]
    assert sync.plan(build_snapshot(USER, WINDOW, singles, masters, instances)).is_empty


def test_D1_a_re_sent_series_with_all_its_occurrences_plans_only_what_changed():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 12, 30))
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(20), title="Retro")  # every occurrence is re-sent (D1)
    plan = sync.run()
    assert kinds(plan) == [("set_exception", "D2")]


def test_O5_a_series_time_change_resets_the_exceptions():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.edit_occurrence(sid, at(8), location="Room 2")
    sync.run()
    outlook.change_series_time(sid, time(10, 0))
    plan = sync.run()
    assert ("update_segment", "D1") in kinds(plan)
    assert ("remove_exception", "O5") in kinds(plan)
    event = sync.event()
    assert event.segments[0].start == at(6, 10)
    assert not event.exceptions
    assert sync.state.links[sid].segment_start == at(6, 10)


def test_O5_a_series_time_change_moves_deleted_slots_with_the_series():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.delete_occurrence(sid, at(12))
    sync.run()
    outlook.change_series_time(sid, time(10, 0))
    plan = sync.run()
    assert ("forget_deleted", "O5") in kinds(plan) and ("delete_instance", "D3") in kinds(plan)
    assert sync.event().deleted == frozenset({at(12, 10)})


# --------------------------------------------------------------------------- splits


def test_O2_a_series_cut_short_without_a_follower_just_ends_earlier():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    new = outlook.edit_following(sid, at(20), title="Something else")
    plan = sync.run()
    assert ("update_segment", "O2") in kinds(plan)
    assert len(sync.state.events) == 2  # A2 (a): a different subject is kept apart
    parent = sync.state.events[sync.state.links[sid].event_id]
    assert parent.segments[0].recurrence.range.end_date == date(2026, 1, 19)
    assert sync.state.links[new].event_id != parent.id


def test_A2_new_series_with_same_subject_after_range_cut_becomes_child_segment():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27), zone="GMT Standard Time")
    sync = Sync(outlook)
    sync.run()
    new = outlook.edit_following(sid, at(20), at=time(10, 0))
    plan = sync.run()
    assert ("add_segment", "A2") in kinds(plan) and ("update_segment", "O2") in kinds(plan)
    event = sync.event()
    assert [s.start for s in event.segments] == [at(6), at(20, 10)]
    assert event.segments[0].recurrence.range.end_date == date(2026, 1, 19)
    child = sync.state.links[new]
    assert child.event_id == event.id and child.segment_start == at(20, 10)
    assert child.evidence.startswith("A2:") and "same subject" in child.evidence and sid in child.evidence
    assert not event.deleted  # the cut is not a deletion (D3)


def test_A2_b_a_split_of_a_series_never_synced_gives_separate_events():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    outlook.edit_following(sid, at(20))
    sync = Sync(outlook)
    sync.run()
    assert len(sync.state.events) == 2


def test_A2_c_a_same_subject_series_that_does_not_take_over_is_a_new_event():
    outlook = FakeOutlook()
    outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    outlook.create_series("Standup", at(20, 16), end_date=date(2026, 3, 27))  # the original was not cut
    sync.run()
    assert len(sync.state.events) == 2


def test_A2_chains_of_splits_stay_one_event():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 3, 27), pattern="weekly")
    sync = Sync(outlook)
    sync.run()
    child = outlook.edit_following(sid, at(20), at=time(10, 0))
    sync.run()
    grandchild = outlook.edit_following(child, at(3, 10, month=2), at=time(11, 0))
    sync.run()
    event = sync.event()
    assert [s.start for s in event.segments] == [at(6), at(20, 10), at(3, 11, month=2)]
    assert {sync.state.links[i].event_id for i in (sid, child, grandchild)} == {event.id}


def test_A2_two_splits_between_syncs_stay_one_event():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 3, 27))
    sync = Sync(outlook)
    sync.run()
    child = outlook.edit_following(sid, at(20), at=time(10, 0))
    outlook.edit_following(child, at(3, 10, month=2), at=time(11, 0))
    sync.run()
    assert len(sync.event().segments) == 3


def test_A2_a_cut_seen_before_its_new_series_still_links_the_child():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    new = outlook.edit_following(sid, at(20))
    singles, masters, instances = outlook.render(WINDOW)
    masters.pop(new), instances.pop(new)  # the sync ran between Outlook's two calls
    sync.run(build_snapshot(USER, WINDOW, singles, masters, instances))
    assert "_cut_from" in sync.state.links[sid].snapshot
    plan = sync.run()
    assert ("add_segment", "A2") in kinds(plan)
    assert len(sync.event().segments) == 2
    assert "_cut_from" not in sync.state.links[sid].snapshot  # it cannot be claimed twice


def test_A4_a_change_to_a_child_series_applies_only_to_its_instances():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27), location="Room 1")
    sync = Sync(outlook)
    sync.run()
    new = outlook.edit_following(sid, at(20))
    sync.run()
    outlook.edit(new, location="Room 9")
    plan = sync.run()
    assert kinds(plan) == [("update_segment", "A4"), ("link", "A9")]
    first, second = sync.event().segments
    assert first.location == "Room 1" and second.location == "Room 9"


def test_A1_deleting_a_child_series_keeps_the_event_and_drops_that_part():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    sync = Sync(outlook)
    sync.run()
    new = outlook.edit_following(sid, at(20))
    outlook.delete_occurrence(new, at(22))
    sync.run()
    assert at(22) in sync.event().deleted
    outlook.delete(new)
    plan = sync.run()
    assert kinds(plan) == [("remove_segment", "A1"), ("unlink", "A1")]
    event = sync.event()
    assert len(event.segments) == 1 and at(22) not in event.deleted


# --------------------------------------------------------------------------- RSVP


def _meeting_for_attendee():
    organizer = FakeOutlook("boss@contoso.com")
    sid = organizer.create_series("Planning", at(6), end_date=date(2026, 2, 27), pattern="weekly",
                                  attendees=(("me@contoso.com", "none"),))
    me = FakeOutlook("me@contoso.com")
    copy = organizer.copy_to(me, sid)
    return organizer, sid, me, copy


def test_C4_an_answer_to_the_whole_series_is_an_all_rsvp_and_to_one_occurrence_a_single_rsvp():
    _, _, me, copy = _meeting_for_attendee()
    sync = Sync(me)
    sync.run()
    me.respond(copy, "accepted")
    plan = sync.run()
    assert kinds(plan) == [("set_rsvp", "C4")]
    me.respond_occurrence(copy, at(13), "declined")
    sync.run()
    rsvps = {(r.scope, r.original_start): r.response for r in sync.event().rsvps}
    assert rsvps == {("all", None): "accepted", ("single", at(13)): "declined"}


def test_C4_a_newer_communifire_rsvp_is_not_overwritten_by_an_older_outlook_answer():
    _, _, me, copy = _meeting_for_attendee()
    me.respond(copy, "accepted")
    sync = Sync(me)
    sync.run()
    event = sync.event()
    later = Rsvp(USER, "all", "declined", NOW + timedelta(days=1))
    with_other_events(sync, {event.id: replace(event, rsvps=(later,))})
    assert sync.plan().is_empty


def test_A5_a_from_this_point_rsvp_comes_back_as_an_all_instances_rsvp():
    _, _, me, copy = _meeting_for_attendee()
    sync = Sync(me)
    sync.run()
    event = sync.event()
    following = Rsvp(USER, "following", "accepted", at(1, 8), at(20))
    with_other_events(sync, {event.id: replace(event, rsvps=(following,))})
    me.respond(copy, "accepted")  # the writer answered the whole series in Outlook (A5)
    plan = sync.run()
    assert sorted(kinds(plan)) == [("remove_rsvp", "A5"), ("set_rsvp", "C4")]
    assert [(r.scope, r.response) for r in sync.event().rsvps] == [("all", "accepted")]


# --------------------------------------------------------------------------- A7


def test_A7_an_attendees_copy_of_a_synced_meeting_links_to_the_same_event():
    organizer, sid, me, copy = _meeting_for_attendee()
    boss = Sync(organizer, user="boss")
    boss.run()
    event = boss.event()
    # the shell loads events whose meeting uid matches the snapshot's iCalUIds
    sync = Sync(me, state=UserState(USER, {event.id: event}))
    me.respond(copy, "tentativelyAccepted")
    plan = sync.run()
    assert kinds(plan) == [("set_rsvp", "C4"), ("link", "A7")]
    assert list(sync.state.events) == [event.id]
    assert sync.state.links[copy].event_id == event.id
    assert sync.state.links[copy].evidence.startswith("A7:")
    assert [(r.user_id, r.scope, r.response) for r in sync.event().rsvps] == [(USER, "all", "tentative")]


def test_A7_an_attendees_renamed_copy_does_not_rename_the_event():
    organizer, sid, me, copy = _meeting_for_attendee()
    boss = Sync(organizer, user="boss")
    boss.run()
    sync = Sync(me, state=UserState(USER, {boss.event().id: boss.event()}))
    sync.run()
    me.edit(copy, title="My own name for it")
    plan = sync.run()
    assert kinds(plan) == [("link", "A7")]
    assert sync.event().title == "Planning"


def test_C4_an_attendee_deleting_their_copy_declines_it_and_keeps_the_event():
    """Issue 11 item 6: a copy that leaves the attendee's calendar is an answer, not a deletion."""
    organizer, sid, me, copy = _meeting_for_attendee()
    boss = Sync(organizer, user="boss")
    boss.run()
    sync = Sync(me, state=UserState(USER, {boss.event().id: boss.event()}))
    me.respond(copy, "accepted")
    mine = me.create_single("Dentist", at(9, 8), at(9, 9))
    sync.run()
    me.delete(copy)
    plan = sync.run()
    assert sorted(kinds(plan)) == [("set_rsvp", "C4"), ("unlink", "A7")]
    assert boss.event().id in sync.state.events and list(sync.state.links) == [mine]
    assert [(r.user_id, r.scope, r.response) for r in sync.state.events[boss.event().id].rsvps] == [
        (USER, "all", "declined")]


def test_C4_declining_the_only_meeting_empties_the_window_without_a_hold_and_replaces_instance_answers():
    organizer, sid, me, copy = _meeting_for_attendee()
    boss = Sync(organizer, user="boss")
    boss.run()
    sync = Sync(me, state=UserState(USER, {boss.event().id: boss.event()}))
    sync.run()
    event = sync.state.events[boss.event().id]
    one = Rsvp(USER, "single", "accepted", NOW - timedelta(days=1), at(20))
    sync.state = replace(sync.state, events={event.id: replace(event, rsvps=(one,))})
    me.delete(copy)
    empty = build_snapshot(USER, WINDOW, [], {}, {}, complete=True)
    plan = sync.plan(empty)
    assert plan.held is None  # one answer is not an emptied mailbox (STYLE rule 6)
    assert sorted(kinds(plan)) == [("remove_rsvp", "C4"), ("set_rsvp", "C4"), ("unlink", "A7")]
    sync.state = apply_plan(sync.state, plan)
    assert [(r.scope, r.response) for r in sync.state.events[event.id].rsvps] == [("all", "declined")]


def test_D3_an_attendee_deleting_one_occurrence_declines_it_and_deletes_nothing():
    organizer, sid, me, copy = _meeting_for_attendee()
    boss = Sync(organizer, user="boss")
    boss.run()
    sync = Sync(me, state=UserState(USER, {boss.event().id: boss.event()}))
    sync.run()
    me.delete_occurrence(copy, at(20))
    plan = sync.run()
    assert kinds(plan) == [("set_rsvp", "D3")]
    assert not sync.event().deleted
    assert [(r.scope, r.original_start, r.response) for r in sync.event().rsvps] == [("single", at(20), "declined")]


# --------------------------------------------------------------------------- plan values


def test_plans_are_deterministic_and_printable_as_a_dry_run():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6), end_date=date(2026, 2, 27))
    outlook.create_single("Lunch", at(7, 12), at(7, 13))
    outlook.delete_occurrence(sid, at(9))
    sync = Sync(outlook)
    one, two = sync.plan(), sync.plan()
    assert one == two
    listing = json.loads(json.dumps(one.to_json()))
    assert all({"kind", "event_id", "rule", "reason"} <= set(a) for a in listing)
    assert [a["kind"] for a in listing if a["event_id"] == one.actions[-1].event_id]
    grouped = one.by_event()
    assert sum(len(v) for v in grouped.values()) == len(one.actions)
    assert not one.is_empty


def test_a_plan_for_another_user_is_refused():
    outlook = FakeOutlook()
    with pytest.raises(ReconcileError):
        plan_inbound(UserState("someone"), outlook.snapshot(USER, WINDOW), NOW)
    with pytest.raises(ReconcileError):
        apply_plan(UserState("someone"), Plan(USER))
    with pytest.raises(ReconcileError):
        plan_inbound(UserState(USER), outlook.snapshot(USER, WINDOW), NOW.replace(tzinfo=None))


def test_a_state_stored_in_table_rows_and_reloaded_plans_nothing():
    outlook = FakeOutlook()
    sid = outlook.create_series("Standup", at(6, 9), end_date=date(2026, 2, 27), zone="Pacific Standard Time",
                                attendees=(("a@contoso.com", "accepted"),))
    outlook.edit_occurrence(sid, at(8, 9), title="Special", start=at(8, 11))
    outlook.delete_occurrence(sid, at(12, 9))
    outlook.create_single("Lunch", at(7, 12), at(7, 13))
    sync = Sync(outlook)
    sync.run()
    events, links = {}, {}
    for event in sync.state.events.values():
        mine = [l for l in sync.state.links.values() if l.event_id == event.id]
        reloaded, reloaded_links = rows_to_event(event.id, json.loads(json.dumps(event_rows(event, mine))))
        events[event.id] = reloaded
        links.update({l.outlook_id: l for l in reloaded_links})
    assert plan_inbound(UserState(USER, events, links), sync.snapshot(), NOW).is_empty
