"""Issue 11, per-event ordering (pure): versions, stale messages, per-field staleness."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from itertools import permutations
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from core.plan.outbound import MessageError, parse_message
from core.plan.outbound import ordering
from core.plan.outbound.ordering import Version, check, keys_of, newer, record

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "outbound"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def update(n: int, seq: int | None = None, at: datetime | None = None, **event) -> dict:
    msg = example("update-all")
    msg.pop("sequence", None)  # each test says whether its messages carry one
    msg["operation_id"] = f"op-{n}"
    msg["occurred_at"] = (at or T0 + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    msg["event"] = {"id": msg["event"]["id"], "organizer": msg["event"]["organizer"], **event}
    if seq is not None:
        msg["sequence"] = seq
    return msg


def apply_all(messages: list[dict]) -> tuple[dict[str, str], dict, list[str]]:
    """Deliver messages in the given order: the fields each applied message sets."""
    applied: dict = {}
    state: dict[str, str] = {}
    stale = []
    for raw in messages:
        verdict = check(parse_message(raw), applied)
        if verdict.stale:
            stale.append(raw["operation_id"])
            continue
        for name in verdict.message.event.given:
            state[name] = raw["event"][name]
        applied = record(verdict.message, applied)
    return state, applied, stale


def test_updates_t1_t3_t2_delivered_out_of_order_end_on_t3_and_t2_is_stale():
    t1, t2, t3 = (update(n, title=f"title {n}") for n in (1, 2, 3))
    state, _, stale = apply_all([t1, t3, t2])
    assert state["title"] == "title 3" and stale == ["op-2"]
    reason = check(parse_message(t2), apply_all([t1, t3])[1]).reason
    assert "stale" in reason and "op-3" in reason and "all:title" in reason


@pytest.mark.parametrize("order", list(permutations(range(4))))
def test_every_delivery_order_of_per_field_updates_ends_as_the_order_they_were_made(order):
    made = [update(0, title="a"), update(1, location="Room 1"), update(2, title="b", location="Room 2"),
            update(3, body="notes")]
    in_order, _, _ = apply_all(made)
    shuffled, _, _ = apply_all([made[i] for i in order])
    assert shuffled == in_order == {"title": "b", "location": "Room 2", "body": "notes"}


def test_an_older_update_is_stale_only_for_the_fields_a_newer_one_changed():
    newer_title = update(5, title="new")
    older_both = update(4, title="old", location="Hall")
    applied = record(parse_message(newer_title), {})
    verdict = check(parse_message(older_both), applied)
    assert not verdict.stale and verdict.dropped == ("title",)
    assert verdict.message.event.given == frozenset({"location"})
    assert "partly stale" in verdict.reason


def test_the_sequence_wins_over_occurred_at_when_both_messages_carry_one():
    late_clock = update(1, seq=1, at=T0 + timedelta(hours=1), title="first")  # a skewed clock
    early_clock = update(2, seq=2, at=T0, title="second")
    state, _, stale = apply_all([early_clock, late_clock])
    assert state["title"] == "second" and stale == ["op-1"]
    # without a sequence on one side, occurred_at decides
    assert newer(Version(T0 + timedelta(hours=1), None), Version(T0, 2))
    assert not newer(Version(T0, 5), Version(T0, 5)) and not newer(Version(T0), Version(T0))


def test_an_equal_version_is_not_older_the_later_delivery_applies():
    a, b = update(1, title="a"), update(1, title="b")
    b["operation_id"] = "op-1b"
    state, _, stale = apply_all([a, b])
    assert state["title"] == "b" and stale == []


def test_keys_name_what_each_operation_changes():
    assert keys_of(parse_message(example("create")))[0] == "event"
    assert keys_of(parse_message(example("delete-all"))) == ["event"]
    single = parse_message(example("update-single"))
    assert all(k.startswith(single.instance.strftime("%Y-%m-%dT%H:%M:%SZ")) for k in keys_of(single))
    assert keys_of(parse_message(example("delete-single")))[0].endswith(":deleted")
    assert keys_of(parse_message(example("rsvp-following")))[0].startswith("rsvp:")


def test_a_single_instance_change_is_not_stale_against_a_newer_series_change():
    """An exception changed on purpose keeps its value when the series changes (O4/A6):
    so a late single-instance update still applies after a newer all-instances one."""
    series = update(9, title="series")
    single = example("update-single")
    single["occurred_at"] = (T0 + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    applied = record(parse_message(series), {})
    assert not check(parse_message(single), applied).stale


def test_anything_older_than_the_create_or_the_delete_is_stale():
    create = example("create")
    create["occurred_at"] = (T0 + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    applied = record(parse_message(create), {})
    early = update(1, title="before it existed")
    assert check(parse_message(early), applied).stale
    delete = example("delete-all")
    delete["occurred_at"] = (T0 + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    deleted = ordering.version_of(parse_message(delete))
    assert "was deleted by" in ordering.stale_after_delete(parse_message(update(15, title="x")), deleted)
    assert ordering.stale_after_delete(parse_message(update(25, title="x")), deleted) == ""


def test_versions_round_trip_through_their_stored_json():
    applied = record(parse_message(update(3, seq=7, title="x", location="y")), {})
    assert ordering.loads(ordering.dumps(applied)) == applied and ordering.loads("") == {}


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, 2**63])
def test_a_sequence_is_a_whole_number(bad):
    with pytest.raises(MessageError, match="sequence"):
        parse_message(update(1, seq=bad, title="x"))


@given(st.lists(st.tuples(st.sampled_from(["title", "location", "body"]), st.integers(0, 50)), min_size=1,
                max_size=8), st.randoms(use_true_random=False))
def test_property_any_delivery_order_gives_each_field_its_latest_value(changes, rnd):
    made = [update(n, seq=n, **{field: f"{field} {n} {v}"}) for n, (field, v) in enumerate(changes)]
    expected, _, _ = apply_all(made)
    shuffled = list(made)
    rnd.shuffle(shuffled)
    assert apply_all(shuffled)[0] == expected
