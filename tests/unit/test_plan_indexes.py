"""The inbound planner's indexes (issue 14: a first plan is linear in the number of items).

``PlannerBase`` keeps links by event, events by meeting and series links by subject in step
with every emitted action, so A7 adoption and the A2 takes-over test look up candidates
instead of scanning every event or link per new item. These tests pin that the indexes
always agree with the events and links they index (a property over random Outlook edits)
and count, structurally (no timing), that a first plan never runs the A2 test for a pair
of series with different subjects.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from test_reconcile_properties import NOW, OPS, PROPS, USER, World, do_op

from core.plan.inbound import default_new_id, plan_inbound
from core.plan.inbound.base import norm_title
from core.plan.inbound.planner import _Planner
from core.plan.inbound.split import SplitRules

UTC = timezone.utc


def check_indexes(planner: _Planner) -> None:
    by_event: dict[str, set[str]] = {}
    for oid, link in planner.links.items():
        by_event.setdefault(link.event_id, set()).add(oid)
    assert {k: v for k, v in planner._links_by_event.items() if v} == by_event
    for event in planner.events.values():
        if event.meeting_uid:
            assert event.id in planner._events_by_meeting[event.meeting_uid]
    for oid, link in planner.links.items():
        if link.kind != "series":
            continue
        event = planner.events.get(link.event_id)
        titles = {str(link.snapshot.get("title") or "")} | {s.title for s in (event.segments if event else ())}
        if oid in planner.snap.series:
            titles.add(planner.snap.series[oid].master.title)
        for title in titles:  # every subject A2 may compare finds the link (a superset is fine)
            assert oid in planner._series_by_title.get(norm_title(title), set()), (oid, title)


@PROPS
@given(st.data())
def test_the_planners_indexes_agree_with_its_events_and_links_after_any_outlook_edits(data):
    world = World()
    world.outlook.create_series("Base", datetime(2026, 1, 6, 9, tzinfo=UTC), end_date=datetime(2026, 3, 31).date())
    world.chain[world.series_ids()[0]] = 99
    world.sync()
    for _ in range(data.draw(st.integers(1, 6))):
        do_op(world, data, data.draw(st.sampled_from(OPS)))
        planner = _Planner(world.state, world.snapshot(), NOW, default_new_id(USER))
        check_indexes(planner)  # as built from the state
        planner.run()
        check_indexes(planner)  # as every emitted action left them
        if data.draw(st.booleans()):
            world.sync()


def test_a_first_plan_runs_the_a2_test_only_for_series_with_the_same_subject(monkeypatch):
    calls: list[tuple[str, str]] = []
    takes_over = SplitRules._takes_over

    def counting(self, link, new, new_view):
        calls.append((link.outlook_id, new.id))
        return takes_over(self, link, new, new_view)

    monkeypatch.setattr(SplitRules, "_takes_over", counting)
    world = World()
    start = datetime(2026, 1, 6, 9, tzinfo=UTC)
    for i in range(60):
        world.outlook.create_series(f"Weekly {i}", start + timedelta(days=i % 7, hours=i % 8),
                                    end_date=datetime(2026, 6, 30).date())
    world.outlook.create_series("Weekly 0", start + timedelta(days=200), end_date=datetime(2026, 9, 30).date())
    plan = _Planner(world.state, world.snapshot(), NOW, default_new_id(USER))
    plan.run()
    # 61 new series: the A2 test ran only between the two called "Weekly 0", not 60 x 61 / 2 times
    assert len(calls) == 1
    world.sync()
    assert len(world.state.events) == 62  # every series its own event (no cut: A2 (c) says no), and the anchor
    assert plan_inbound(world.state, world.snapshot(), NOW).is_empty
