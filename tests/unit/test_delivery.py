"""Issue 11 (SPEC section 7): what a delivery that did not apply becomes, decided purely."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from core.plan import delivery
from core.plan.outbound.admission import MAX_MESSAGE_BYTES, SPACE_CALENDAR, refusal, size_refusal

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_throttling_waits_for_retry_after_rounded_up_to_whole_seconds():
    d = delivery.after_throttling(400, waits=0, waiting_since=None, now=NOW, what="Graph 429 TooManyRequests")
    assert (d.action, d.delay_seconds) == ("wait", 400) and "Retry-After 400 s" in d.reason
    assert delivery.after_throttling(0.2, 3, NOW, NOW, "x").delay_seconds == 1
    assert d.retry_at(NOW) == NOW + timedelta(seconds=400)


def test_throttling_without_retry_after_backs_off_exponentially_and_capped():
    delays = [delivery.after_throttling(None, n, NOW, NOW, "Graph 503").delay_seconds for n in range(30)]
    assert delays[:4] == [30, 60, 120, 240]
    assert delays == sorted(delays) and max(delays) == delivery.MAX_DELAY_SECONDS


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False), st.integers(min_value=0, max_value=10**6))
def test_a_delay_is_always_a_valid_queue_visibility_timeout(retry_after, waits):
    d = delivery.after_throttling(retry_after, waits, None, NOW, "x")
    assert d.action == "wait" and 1 <= d.delay_seconds <= delivery.MAX_DELAY_SECONDS < 7 * 24 * 3600


def test_throttling_poisons_only_after_days_of_waiting_never_by_delivery_count():
    assert delivery.after_throttling(1, 10_000, NOW - timedelta(days=1), NOW, "x").action == "wait"
    late = delivery.after_throttling(1, 3, NOW - delivery.GIVE_UP_AFTER, NOW, "Graph 429")
    assert late.action == "poison" and "2 days" in late.reason


def test_an_update_before_its_create_waits_a_bounded_number_of_times():
    decisions = [delivery.after_missing_event("e1", "update", n) for n in range(delivery.MISSING_EVENT_WAITS + 1)]
    assert [d.action for d in decisions] == ["wait"] * delivery.MISSING_EVENT_WAITS + ["poison"]
    assert "waits" in decisions[0].reason and "unknown to the app" in decisions[-1].reason


def test_final_statuses_end_a_redelivery():
    assert delivery.is_final("applied") and delivery.is_final("stale") and delivery.is_final("done")
    assert not any(delivery.is_final(s) for s in ("new", "running", "waiting", "rejected", "replayed"))


class _Msg:
    def __init__(self, calendar):
        self.calendar = calendar


def test_admission_refuses_space_calendars_rule_c6_and_counts_bytes():
    assert refusal(_Msg("space")) == SPACE_CALENDAR and refusal(_Msg("my")) == ""
    assert size_refusal(MAX_MESSAGE_BYTES) == "" and "bytes" in size_refusal(MAX_MESSAGE_BYTES + 1)
    assert len(("x" * MAX_MESSAGE_BYTES).encode()) * 4 // 3 == 64 * 1024  # base64 of the limit is 64 KiB
