"""Hypothesis properties of core.plan.inbound (STYLE rule 10), driven by the pure fake Outlook:

- idempotence: a second plan with no change is empty;
- convergence: after any random sequence of Outlook edits, plan -> apply -> re-plan is
  empty (also after the state goes through Table Storage rows and back);
- uniqueness: no sequence of edits duplicates an event: one Communifire event per real
  series chain (a series and the series split off it by "this and all following" with
  the same subject, rules A1/A2), and every live Outlook item is linked to one event;
- expansion: ``core.plan.recurrence.expand`` agrees with the occurrences the fake shows
  (an independent day-by-day walk), across zones with DST changes.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from fakes_outlook import DAY_NAMES, FakeOutlook, _WINDOWS_TO_IANA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.plan.model import UserState, Window
from core.plan.outlook_items import parse_item
from core.plan.inbound import SafetyPolicy, apply_plan, plan_inbound
from core.plan.recurrence import expand
from core.adapters.rows import event_rows, rows_to_event

UTC = timezone.utc
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WINDOW = Window(datetime(2026, 1, 3, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC))
USER = "u1"
ZONES = ("UTC", "GMT Standard Time", "Pacific Standard Time", "W. Europe Standard Time", "AUS Eastern Standard Time")
LENIENT = SafetyPolicy(max_delete_share=1.0)
# RECONCILE_EXAMPLES=500 for a longer hunt; the default keeps the suite fast
PROPS = settings(max_examples=int(os.environ.get("RECONCILE_EXAMPLES", "50")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _local_start(day: date, hour: int, minute: int, zone: str) -> datetime:
    return datetime.combine(day, time(hour, minute)).replace(tzinfo=ZoneInfo(_WINDOWS_TO_IANA[zone])).astimezone(UTC)


class World:
    """A fake mailbox plus the test's own record of which items form one real chain."""

    def __init__(self) -> None:
        self.outlook = FakeOutlook()
        self.chain: dict[str, int] = {}
        self.titles = 0
        self.anchor = self.outlook.create_single("Anchor", datetime(2026, 6, 1, 9, tzinfo=UTC),
                                                 datetime(2026, 6, 1, 10, tzinfo=UTC))
        self.chain[self.anchor] = 0
        self.state = UserState(USER)
        # split-off series not yet synced -> the series they were split from. At the next
        # sync each joins its original's chain only if A2 can see it: the original still
        # exists and was synced (A2 b), or joined a chain in this same round, and the
        # subjects match (the original's as last synced or as it is now: A2 a); otherwise
        # it is a chain (an event) of its own.
        self.pending: dict[str, str] = {}
        self.synced_titles: dict[str, str] = {}

    def title(self) -> str:
        self.titles += 1
        return f"T{self.titles}"

    def series_ids(self) -> list[str]:
        return sorted(i for i, item in self.outlook.items.items() if item.pattern)

    def singles(self) -> list[str]:
        return sorted(i for i, item in self.outlook.items.items() if not item.pattern and i != self.anchor)

    def live_slots(self, item_id: str) -> list[datetime]:
        return self.outlook.occurrences(item_id, WINDOW)

    def snapshot(self):
        return self.outlook.snapshot(USER, WINDOW)

    def settle_chains(self) -> None:
        o = self.outlook
        joined: set[str] = set()
        for child, parent in sorted(self.pending.items(), key=lambda kv: int(kv[0].split("-")[-1].rstrip("="))):
            if child not in o.items:
                continue
            seen = {self.synced_titles.get(parent)} | ({o.items[parent].content.title} if parent in o.items else set())
            synced = parent in self.synced_titles or parent in joined  # A2 (b)
            if parent in o.items and synced and o.items[child].content.title in seen:
                self.chain[child] = self.chain[parent]
                joined.add(child)
            else:
                self.chain[child] = max(self.chain.values()) + 1

    def sync(self) -> None:
        self.settle_chains()
        snap = self.snapshot()
        plan = plan_inbound(self.state, snap, NOW, LENIENT)
        assert plan.held is None, plan.held
        self.state = apply_plan(self.state, plan)
        self.pending.clear()
        self.synced_titles = {i: item.content.title for i, item in self.outlook.items.items()}
        again = plan_inbound(self.state, snap, NOW, LENIENT)
        assert again.is_empty, again.to_json()

    def check_one_event_per_chain(self) -> None:
        snap = self.snapshot()
        live = {i for i in self.outlook.items if i in snap.singles or i in snap.series}
        chains = {self.chain[i] for i in live}
        assert len(self.state.events) == len(chains), (len(self.state.events), chains)
        by_chain: dict[int, set[str]] = {}
        for oid in live:
            by_chain.setdefault(self.chain[oid], set()).add(self.state.links[oid].event_id)
        assert all(len(ids) == 1 for ids in by_chain.values()), by_chain
        assert len({next(iter(ids)) for ids in by_chain.values()}) == len(by_chain)


@st.composite
def series_args(draw):
    zone = draw(st.sampled_from(ZONES))
    day = date(2026, 1, 4) + timedelta(days=draw(st.integers(0, 60)))
    hour = draw(st.sampled_from([0, 1, 2, 3, 8, 9, 13, 23]))
    minute = draw(st.sampled_from([0, 30]))
    pattern = draw(st.sampled_from(["daily", "weekly"]))
    interval = draw(st.integers(1, 3))
    days: tuple[str, ...] = ()
    if pattern == "weekly":
        extra = draw(st.lists(st.sampled_from(DAY_NAMES), max_size=3))
        days = tuple(sorted({DAY_NAMES[day.weekday()], *extra}, key=DAY_NAMES.index))
    range_type = draw(st.sampled_from(["endDate", "numbered", "noEnd"]))
    end_date = day + timedelta(days=draw(st.integers(14, 150))) if range_type == "endDate" else None
    count = draw(st.integers(3, 40)) if range_type == "numbered" else 0
    return dict(start=_local_start(day, hour, minute, zone), duration=timedelta(minutes=draw(st.sampled_from([30, 60, 90]))),
                pattern=pattern, interval=interval, days=days, range_type=range_type, end_date=end_date, count=count,
                zone=zone)


OPS = ("create_single", "create_series", "rename", "relocate", "edit_occurrence", "move_occurrence",
       "delete_occurrence", "edit_following", "change_time", "delete", "touch", "move_single")


def do_op(world: World, data, op: str) -> None:
    o = world.outlook
    series = world.series_ids()
    if op == "create_single":
        day = date(2026, 1, 4) + timedelta(days=data.draw(st.integers(0, 200)))
        start = datetime.combine(day, time(data.draw(st.integers(0, 22))), tzinfo=UTC)
        world.chain[o.create_single(world.title(), start, start + timedelta(hours=1))] = max(world.chain.values()) + 1
    elif op == "create_series":
        args = data.draw(series_args())
        world.chain[o.create_series(world.title(), **args)] = max(world.chain.values()) + 1
    elif op in ("rename", "relocate", "touch"):
        ids = series + world.singles()
        if not ids:
            return
        oid = data.draw(st.sampled_from(ids))
        if op == "rename":
            o.edit(oid, title=world.title())
        elif op == "relocate":
            o.edit(oid, location=data.draw(st.sampled_from(["Room 1", "Room 2", ""])))
        else:
            o.touch(oid)
    elif op == "move_single":
        ids = world.singles()
        if ids:
            oid = data.draw(st.sampled_from(ids))
            shift = timedelta(hours=data.draw(st.integers(-30, 30)))
            item = o.items[oid]
            if item.start + shift > WINDOW.start + timedelta(days=1):
                o.move_single(oid, item.start + shift, item.end + shift)
    elif op in ("edit_occurrence", "move_occurrence", "delete_occurrence", "edit_following", "change_time"):
        if not series:
            return
        sid = data.draw(st.sampled_from(series))
        slots = world.live_slots(sid)
        if not slots:
            return
        slot = data.draw(st.sampled_from(slots))
        if op == "edit_occurrence":
            o.edit_occurrence(sid, slot, title=data.draw(st.sampled_from([None, "Special"])),
                              location=data.draw(st.sampled_from([None, "Elsewhere"])))
        elif op == "move_occurrence":
            o.edit_occurrence(sid, slot, start=slot + timedelta(minutes=data.draw(st.sampled_from([-30, 30, 60]))))
        elif op == "delete_occurrence":
            if len(slots) > 1:
                o.delete_occurrence(sid, slot)
        elif op == "change_time":
            o.change_series_time(sid, time(data.draw(st.sampled_from([7, 10, 15])), 0))
        else:
            before = [s for s in slots if s < slot]
            after = [s for s in slots if s >= slot]
            if not before or len(after) < 1 or slot == o._all_slots(o.items[sid])[0]:
                return
            keep = data.draw(st.booleans())
            new_time = data.draw(st.sampled_from([None, time(11, 0), time(6, 30)]))
            new = o.edit_following(sid, slot, title=None if keep else world.title(), at=new_time)
            if not world.live_slots(new):
                o.delete(new)  # every remaining occurrence was deleted: Outlook would not keep it visible
                return
            world.chain[new] = world.chain[sid] if keep else max(world.chain.values()) + 1
            if keep:
                world.pending[new] = sid
    elif op == "delete":
        ids = series + world.singles()
        if ids:
            o.delete(data.draw(st.sampled_from(ids)))


@PROPS
@given(st.lists(series_args(), min_size=1, max_size=3), st.integers(0, 3))
def test_idempotence_a_second_plan_with_no_change_is_empty(all_args, singles):
    world = World()
    for args in all_args:
        world.outlook.create_series(world.title(), **args)
    for i in range(singles):
        start = datetime(2026, 2, 1 + i, 9, tzinfo=UTC)
        world.outlook.create_single(world.title(), start, start + timedelta(hours=1))
    world.sync()
    assert plan_inbound(world.state, world.snapshot(), NOW).is_empty


@PROPS
@given(st.data())
def test_convergence_after_any_sequence_of_outlook_edits_replanning_is_empty_and_no_event_is_duplicated(data):
    world = World()
    world.outlook.create_series("Base", datetime(2026, 1, 6, 9, tzinfo=UTC), end_date=date(2026, 3, 31))
    world.chain[world.series_ids()[0]] = 99
    world.sync()
    for _ in range(data.draw(st.integers(1, 7))):
        op = data.draw(st.sampled_from(OPS))
        do_op(world, data, op)
        if data.draw(st.booleans()):
            world.sync()
            world.check_one_event_per_chain()
    world.sync()
    world.check_one_event_per_chain()
    # the converged state survives Table Storage rows (whole seconds, JSON) unchanged
    events, links = {}, {}
    for event in world.state.events.values():
        mine = [l for l in world.state.links.values() if l.event_id == event.id]
        reloaded, reloaded_links = rows_to_event(event.id, json.loads(json.dumps(event_rows(event, mine))))
        events[event.id] = reloaded
        links.update({l.outlook_id: l for l in reloaded_links})
    assert plan_inbound(UserState(USER, events, links), world.snapshot(), NOW, LENIENT).is_empty


@PROPS
@given(series_args(), st.integers(-40, 200), st.integers(1, 120))
def test_expansion_agrees_with_the_occurrences_the_fake_outlook_shows(args, offset, length):
    outlook = FakeOutlook()
    sid = outlook.create_series("S", **args)
    start = datetime(2026, 1, 4, tzinfo=UTC) + timedelta(days=offset, hours=offset % 24)
    window = Window(start, start + timedelta(days=length))
    master = parse_item(outlook.render(Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)))[1][sid])
    assert master.recurrence is not None
    zone = ZoneInfo(_WINDOWS_TO_IANA[args["zone"]])
    expected = expand(master.recurrence, master.start.astimezone(zone), master.duration, window.start, window.end)
    assert list(expected) == outlook.occurrences(sid, window)
