"""The local host reads triggers from the app and runs timers on their NCRONTAB schedule."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

import function_app
from devhost.host import LocalHost, QueueOptions, resolve_setting

ROOT = Path(__file__).resolve().parents[2]


def test_binding_expressions_resolve_from_app_settings():
    assert resolve_setting("%SyncSchedule%", {"SyncSchedule": "0 */5 * * * *"}) == "0 */5 * * * *"
    with pytest.raises(KeyError, match="SyncSchedule"):
        resolve_setting("%SyncSchedule%", {})


def test_host_json_queue_options_are_read():
    opts = QueueOptions.from_host_json({"extensions": {"queues": {"maxDequeueCount": 3, "visibilityTimeout": "00:00:30",
                                                                  "maxPollingInterval": "00:01:00", "batchSize": 4}}})
    assert (opts.max_dequeue_count, opts.visibility_timeout, opts.max_polling_interval, opts.batch_size) == (3, 30, 60, 4)


QUEUE_SETTINGS = {"SyncJobsQueue": "a-sync-jobs", "WritesQueue": "a-writes", "OutboundQueue": "a-outbound"}


def test_six_field_ncrontab_has_seconds_first_and_is_utc():
    host = LocalHost(function_app.app, root=ROOT, port=0, run_timers=False,
                     environ={"SyncSchedule": "30 */15 * * * *", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              **QUEUE_SETTINGS})
    try:
        after = datetime(2026, 1, 1, 10, 7, 0, tzinfo=timezone.utc)
        assert host.next_run("sync_timer", after) == datetime(2026, 1, 1, 10, 15, 30, tzinfo=timezone.utc)
        routes = sorted(p.pattern for p, *_ in host.http_routes)
        assert routes == ["^/calendar/(?P<user>[^/]+)$", "^/oauth2/outlook/callback$", "^/oauth2/outlook/connect$",
                          "^/oauth2/outlook/disconnect$", "^/oauth2/outlook/lifecycle$", "^/oauth2/outlook/notifications$",
                          "^/oauth2/outlook/status$"]
        assert set(host.queues) == {"sync_user", "apply_writes", "apply_outbound"} and set(host.timers) == {"sync_timer"}
    finally:
        host.stop()


def test_queue_triggers_listen_on_the_queues_their_settings_name():
    """Issue 11 item 8: %SyncJobsQueue%... resolved from app settings, as the Functions host does."""
    host = LocalHost(function_app.app, root=ROOT, port=0, run_timers=False,
                     environ={"SyncSchedule": "0 */15 * * * *", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              **QUEUE_SETTINGS})
    try:
        assert {name: q[0] for name, q in host.queues.items()} == {
            "sync_user": "a-sync-jobs", "apply_writes": "a-writes", "apply_outbound": "a-outbound"}
    finally:
        host.stop()


def test_a_queue_setting_that_is_not_set_stops_the_host_with_its_name():
    environ = {"SyncSchedule": "0 */15 * * * *", "AzureWebJobsStorage": "UseDevelopmentStorage=true", **QUEUE_SETTINGS}
    del environ["WritesQueue"]
    with pytest.raises(KeyError, match="%WritesQueue%"):
        LocalHost(function_app.app, root=ROOT, port=0, run_timers=False, environ=environ)
