"""The function app indexes as the Functions host would (a stand-in for host start-up)."""

import json
from pathlib import Path

import azure.functions as func

import function_app
from devhost.host import functions_of

ROOT = Path(__file__).resolve().parents[2]


def functions():
    return {f.get_function_name(): f for f in functions_of(function_app.app)}


def trigger(name):
    return functions()[name].get_trigger().get_dict_repr()


def test_every_function_is_registered_once_with_a_unique_name():
    assert set(functions()) == {"oauth_connect", "oauth_callback", "oauth_status", "oauth_disconnect", "sync_timer",
                                "sync_user", "apply_writes", "apply_outbound", "graph_notifications", "graph_lifecycle",
                                "read_calendar"}


def test_http_routes_methods_and_auth_levels():
    connect, callback, disconnect = trigger("oauth_connect"), trigger("oauth_callback"), trigger("oauth_disconnect")
    assert connect["route"] == "oauth2/outlook/connect" and connect["authLevel"] == func.AuthLevel.FUNCTION
    assert [m.value for m in connect["methods"]] == ["GET"]
    # Entra ID redirects a browser here: it cannot carry a function key (AZURE.md section 1).
    assert callback["route"] == "oauth2/outlook/callback" and callback["authLevel"] == func.AuthLevel.ANONYMOUS
    assert disconnect["route"] == "oauth2/outlook/disconnect" and [m.value for m in disconnect["methods"]] == ["POST"]
    assert disconnect["authLevel"] == func.AuthLevel.FUNCTION
    status = trigger("oauth_status")  # issue 10: My Calendar asks the user's state with the function key
    assert status["route"] == "oauth2/outlook/status" and status["authLevel"] == func.AuthLevel.FUNCTION
    assert [m.value for m in status["methods"]] == ["GET"]


def test_graph_notification_endpoints_are_anonymous_posts_beside_the_callback():
    """Graph cannot send a function key (issue 13); same route prefix rules as the callback."""
    for name, route in (("graph_notifications", "oauth2/outlook/notifications"),
                        ("graph_lifecycle", "oauth2/outlook/lifecycle")):
        t = trigger(name)
        assert t["route"] == route and t["authLevel"] == func.AuthLevel.ANONYMOUS
        assert [m.value for m in t["methods"]] == ["POST"]


def test_the_read_api_is_a_function_key_get_on_calendar_user_issue_12():
    read = trigger("read_calendar")
    assert read["route"] == "calendar/{user}" and read["authLevel"] == func.AuthLevel.FUNCTION
    assert [m.value for m in read["methods"]] == ["GET"]


def test_the_callback_path_has_no_api_prefix():
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""


def test_the_timer_schedule_is_an_app_setting_and_does_not_run_on_startup():
    timer = trigger("sync_timer")
    assert timer["schedule"] == "%SyncSchedule%" and timer["runOnStartup"] is False


def test_queue_triggers_bind_their_queues_on_the_storage_connection():
    # Bound through app settings (issue 11 item 8), resolved by the host at start-up.
    assert trigger("sync_user")["queueName"] == "%SyncJobsQueue%"
    assert trigger("apply_writes")["queueName"] == "%WritesQueue%"
    assert trigger("apply_outbound")["queueName"] == "%OutboundQueue%"
    for name in ("sync_user", "apply_writes", "apply_outbound"):
        assert trigger(name)["connection"] == "AzureWebJobsStorage"


def test_host_json_sets_retries_poison_and_base64_explicitly():
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert queues["maxDequeueCount"] == 5 and queues["messageEncoding"] == "base64"
    assert queues["visibilityTimeout"] == "00:00:10"
