"""Full rounds spread over the day (issue 14): each user's window, and with it their daily
full round, moves at a stable time of day of their own, never all at 00:00 UTC."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from core.app.sync import full_round_offset, user_window, window_for

MIDNIGHT = datetime(2026, 3, 10, tzinfo=timezone.utc)


def test_the_offset_is_stable_and_within_one_day():
    for user_id in ("1001", "1002", "alice@contoso.com", "x" * 128):
        offset = full_round_offset(user_id)
        assert offset == full_round_offset(user_id)  # the same in every process (not Python's hash)
        assert timedelta(0) <= offset < timedelta(days=1) and offset.seconds % 60 == 0


def test_ten_thousand_users_are_spread_over_every_hour_of_the_day():
    hours = Counter(int(full_round_offset(str(n)).total_seconds() // 3600) for n in range(10_000))
    assert set(hours) == set(range(24))
    assert max(hours.values()) < 2 * 10_000 / 24  # no hour carries twice its share


def test_a_users_window_moves_at_their_own_time_not_at_midnight():
    user = next(str(n) for n in range(100) if full_round_offset(str(n)) >= timedelta(hours=2))
    offset = full_round_offset(user)
    before = user_window(MIDNIGHT - timedelta(seconds=1), user)
    assert user_window(MIDNIGHT + timedelta(minutes=1), user) == before  # 00:00 UTC changes nothing for them
    assert user_window(MIDNIGHT + offset - timedelta(seconds=1), user) == before
    moved = user_window(MIDNIGHT + offset, user)
    assert moved.start == before.start + timedelta(days=1)  # their own time: the window moves (a full round)


def test_the_window_keeps_utc_midnight_bounds_and_covers_the_spec_window():
    # SPEC section 1: today - 2 days .. today + 12 months; lagging by less than a day only
    # keeps one more past day in the window until the user's time comes
    for hour in range(24):
        now = MIDNIGHT + timedelta(hours=hour, minutes=17)
        spec = window_for(now)
        for user in ("1001", "1002", "1003"):
            got = user_window(now, user)
            assert got.start.hour == got.start.minute == 0
            assert got.start <= spec.start and spec.start - got.start <= timedelta(days=1)
