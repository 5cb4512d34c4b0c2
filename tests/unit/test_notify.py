"""Change notifications decided purely (issue 13, GRAPH.md 7): bodies, clientState,
subscription upkeep, the polling interval, failures and the debounce."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from core.adapters.users import CONNECTED, NEEDS_RECONNECT, UserRecord, due_users, is_due
from core.plan import notify
from core.plan.notify import SubscriptionState, SyncRequest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
MAX = 4230


def body(*items) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def test_a_body_gives_its_notifications_and_counts_unusable_items():
    items, bad = notify.parse_body(body(
        {"subscriptionId": "s1", "clientState": "cs", "changeType": "updated"},
        {"subscriptionId": "s1", "clientState": "cs", "lifecycleEvent": "missed"},
        {"changeType": "updated"}, "junk"))
    assert [(n.subscription_id, n.change_type, n.lifecycle) for n in items] == [("s1", "updated", ""), ("s1", "", "missed")]
    assert bad == 2


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"value": {}}', b"\xff\xfe"])
def test_anything_but_a_notification_collection_is_refused(raw):
    with pytest.raises(notify.BadBody):
        notify.parse_body(raw)


def test_the_body_size_is_capped():
    with pytest.raises(notify.BadBody, match="larger than"):
        notify.parse_body(b" " * (notify.MAX_BODY_BYTES + 1))


def test_client_state_must_match_exactly_and_an_empty_stored_one_never_matches():
    assert notify.client_state_matches("abc", "abc")
    assert not notify.client_state_matches("abd", "abc")
    assert not notify.client_state_matches("", "")
    assert not notify.client_state_matches("abcx", "abc")


def live(hours_left: float) -> SubscriptionState:
    return SubscriptionState("s1", NOW + timedelta(hours=hours_left), notify.ACTIVE)


def test_a_missing_subscription_is_created_unless_a_failure_asked_to_wait():
    assert notify.subscription_action(SubscriptionState(), NOW, MAX, True) == "create"
    waiting = SubscriptionState(status=notify.UNSUPPORTED, retry_at=NOW + timedelta(hours=1))
    assert notify.subscription_action(waiting, NOW, MAX, True) is None
    assert notify.subscription_action(waiting, NOW + timedelta(hours=2), MAX, True) == "create"
    expired = SubscriptionState("s1", NOW - timedelta(minutes=1), notify.ACTIVE)
    assert notify.subscription_action(expired, NOW, MAX, True) == "create"


def test_a_subscription_is_renewed_once_half_its_lifetime_is_gone():
    assert notify.subscription_action(live(40), NOW, MAX, True) is None  # 40 h left of 70.5
    assert notify.subscription_action(live(35), NOW, MAX, True) == "renew"
    assert notify.subscription_action(live(0.1), NOW, MAX, True) == "renew"


def test_with_notifications_off_nothing_is_done_about_subscriptions():
    assert notify.subscription_action(SubscriptionState(), NOW, MAX, False) is None
    assert notify.subscription_action(live(1), NOW, MAX, False) is None


def test_the_requested_expiry_stays_under_graphs_maximum():
    for minutes in (45, 4230, 10080):
        expiry = notify.requested_expiry(NOW, minutes)
        assert NOW + timedelta(minutes=minutes) * 0.9 <= expiry < NOW + timedelta(minutes=minutes)


def test_healthy_users_are_polled_on_the_longer_interval_the_others_as_before():
    assert notify.sync_interval_minutes(live(30), NOW, True, 15, 60) == 60
    assert notify.sync_interval_minutes(live(30), NOW, False, 15, 60) == 15
    assert notify.sync_interval_minutes(SubscriptionState(status=notify.UNSUPPORTED), NOW, True, 15, 60) == 15
    assert notify.sync_interval_minutes(SubscriptionState("s1", NOW, notify.ACTIVE), NOW, True, 15, 60) == 15  # expired
    assert notify.sync_interval_minutes(live(30), NOW, True, 30, 10) == 30  # never shorter than polling


def test_extension_error_means_no_webhooks_for_this_mailbox_and_a_daily_retry():
    msg = "Operation: Create; Exception: [Status Code: BadRequest; Reason: Mailbox 'x' is currently on backend 'Unknown'.]"
    state = notify.failure_state(SubscriptionState(), NOW, 400, "ExtensionError", msg, 15)
    assert state.status == notify.UNSUPPORTED and "backend 'Unknown'" in state.error
    assert state.retry_at == NOW + timedelta(hours=24) and not state.id


def test_a_failed_handshake_and_other_failures_are_retried_sooner():
    v = notify.failure_state(SubscriptionState(), NOW, 400, "ValidationError", "Subscription validation request failed.", 15)
    assert v.status == notify.FAILED and "NotificationUrl" in v.error and v.retry_at == NOW + timedelta(hours=1)
    other = notify.failure_state(SubscriptionState(), NOW, 503, "ServiceUnavailable", "x", 15)
    assert other.status == notify.FAILED and other.retry_at == NOW + timedelta(minutes=15)


def test_lifecycle_events_map_to_their_actions():
    assert notify.lifecycle_action("reauthorizationRequired") == ("renew", False)
    assert notify.lifecycle_action("subscriptionRemoved") == ("recreate", True)
    assert notify.lifecycle_action("missed") == (None, True)
    assert notify.lifecycle_action("somethingNew") == (None, False)


def test_the_first_notification_schedules_a_job_a_moment_later_and_the_next_ones_wait_for_it():
    first = notify.schedule_sync(None, NOW)
    assert first == NOW + notify.DEBOUNCE_DELAY
    assert notify.schedule_sync(SyncRequest(True, first), NOW + timedelta(milliseconds=500)) is None


def test_after_a_job_started_the_next_one_is_at_least_the_gap_later():
    started = SyncRequest(False, NOW + timedelta(seconds=1))
    assert notify.schedule_sync(started, NOW + timedelta(seconds=2)) == NOW + timedelta(seconds=6)
    much_later = NOW + timedelta(minutes=5)
    assert notify.schedule_sync(started, much_later) == much_later + notify.DEBOUNCE_DELAY


def test_a_pending_request_whose_job_was_lost_is_scheduled_again():
    lost = SyncRequest(True, NOW)
    assert notify.schedule_sync(lost, NOW + timedelta(minutes=11)) is not None


def test_a_burst_of_any_size_within_five_seconds_gives_at_most_two_jobs():
    """Issue 13: 1,000 notifications in 5 s -> at most 2 jobs, whenever the jobs start."""
    for job_runs_after in (0.5, 1.0, 2.0, 4.9, 10.0):
        marker, jobs, starts = None, 0, []
        for i in range(1000):
            now = NOW + timedelta(seconds=5 * i / 1000)
            if marker is not None and marker.pending and starts and now >= starts[-1] + timedelta(seconds=job_runs_after):
                marker = SyncRequest(False, marker.visible_at)  # the job started, cleared pending
            start = notify.schedule_sync(marker, now)
            if start is not None:
                marker, jobs = SyncRequest(True, start), jobs + 1
                starts.append(start)
        assert jobs <= 2, (job_runs_after, jobs)


def test_the_timer_also_picks_users_whose_subscription_needs_work():
    quiet = NOW + timedelta(hours=1)
    fresh = UserRecord("a", CONNECTED, next_due_at=quiet, subscription_id="s", subscription_status=notify.ACTIVE,
                       subscription_expires_at=NOW + timedelta(hours=60))
    ageing = UserRecord("b", CONNECTED, next_due_at=quiet, subscription_id="s2", subscription_status=notify.ACTIVE,
                        subscription_expires_at=NOW + timedelta(hours=10))
    missing = UserRecord("c", CONNECTED, next_due_at=quiet)
    gone = UserRecord("d", NEEDS_RECONNECT)
    assert [u.user_id for u in due_users([fresh, ageing, missing, gone], NOW, MAX)] == ["b", "c"]
    assert due_users([fresh, ageing, missing, gone], NOW) == []  # notifications off: as before
    assert not is_due(gone, NOW, MAX)
