"""Who is due for a sync, and backing off after failures."""

from datetime import datetime, timedelta, timezone

from core.adapters.users import (
    CONNECTED,
    KEY_MISSING_PREFIX,
    NEEDS_RECONNECT,
    UserRecord,
    after_failure,
    after_success,
    due_users,
    waiting_for_key,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def test_only_connected_users_whose_time_has_come_are_due():
    users = [
        UserRecord("a", CONNECTED, next_due_at=NOW - timedelta(minutes=1)),
        UserRecord("b", CONNECTED, next_due_at=NOW + timedelta(minutes=1)),
        UserRecord("c", NEEDS_RECONNECT, next_due_at=None),
        UserRecord("d", CONNECTED, next_due_at=None),
    ]
    assert [u.user_id for u in due_users(users, NOW)] == ["d", "a"]


def test_success_schedules_the_next_sync_one_interval_later():
    u = after_success(UserRecord("a", CONNECTED, failures=3, last_error="x"), NOW, 15)
    assert u.next_due_at == NOW + timedelta(minutes=15) and u.failures == 0 and u.last_error == ""


def test_failures_back_off_exponentially_but_at_most_a_day():
    u = UserRecord("a", CONNECTED)
    delays = []
    for _ in range(12):
        u = after_failure(u, NOW, 15, "Graph 503")
        delays.append(u.next_due_at - NOW)
    assert delays[0] == timedelta(minutes=30) and delays == sorted(delays)
    assert max(delays) == timedelta(days=1) and u.last_error == "Graph 503"


def test_users_waiting_for_a_key_are_counted_once_with_the_key_ids_they_need():
    # issue 10: the timer logs one error per round naming how many users wait and for which keys
    users = [
        UserRecord("a", CONNECTED, last_error=f"{KEY_MISSING_PREFIX}token cache sealed with key 'k1', which ..."),
        UserRecord("b", CONNECTED, last_error=f"{KEY_MISSING_PREFIX}token cache does not open with the configured key 'k2' (x)"),
        UserRecord("c", CONNECTED, last_error=f"{KEY_MISSING_PREFIX}token cache sealed with key 'k1', which ..."),
        UserRecord("d", CONNECTED, last_error="Graph answered 503"),
        UserRecord("e", NEEDS_RECONNECT, last_error=f"{KEY_MISSING_PREFIX}token cache sealed with key 'k9'"),
    ]
    assert waiting_for_key(users) == (["a", "b", "c"], ["k1", "k2"])
    assert waiting_for_key([UserRecord("d", CONNECTED)]) == ([], [])
