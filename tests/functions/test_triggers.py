"""Each trigger called as the Functions worker calls it: ``.build().get_user_function()``
with real ``azure.functions`` request, timer and queue objects, over Azurite."""

import json

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

import function_app
from devhost.host import functions_of
from core.app.service import BadMessage
from core.adapters.users import CONNECTED, UserRecord

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(make_stack):
    """A stack whose host consumes no queue: these tests call the triggers themselves and
    read what they enqueued (issue 11 item 8: no race with the host's own sync_user)."""
    return make_stack(run_queues=False)


def user_function(name):
    for fn in functions_of(function_app.app):
        if fn.get_function_name() == name:
            return fn.get_user_function()
    raise KeyError(name)


def get(route, **params):
    return func.HttpRequest("GET", f"http://localhost/{route}", params=params, body=b"")


def test_connect_trigger_answers_the_sign_in_url_as_json(stack):
    resp = user_function("oauth_connect")(get("oauth2/outlook/connect", user="1001", upn="alice@contoso.com"))
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert json.loads(resp.get_body())["auth_url"].startswith(stack.emulator.url)


def test_connect_trigger_rejects_a_bad_user_id(stack):
    resp = user_function("oauth_connect")(get("oauth2/outlook/connect", user="../etc"))
    assert resp.status_code == 400 and json.loads(resp.get_body())["error"] == "bad_request"


def test_callback_trigger_without_state_answers_a_clear_page_with_safe_headers(stack):
    resp = user_function("oauth_callback")(get("oauth2/outlook/callback", code="abc"))
    assert resp.status_code == 400 and b"without a sign-in request" in resp.get_body()
    assert resp.headers["Referrer-Policy"] == "no-referrer" and resp.headers["Cache-Control"] == "no-store"


def test_disconnect_trigger_reads_a_json_body(stack):
    req = func.HttpRequest("POST", "http://localhost/oauth2/outlook/disconnect", body=b'{"user": "1001"}',
                           headers={"Content-Type": "application/json"})
    resp = user_function("oauth_disconnect")(req)
    assert resp.status_code == 200 and json.loads(resp.get_body()) == {"disconnected": True, "was_connected": False}
    bad = func.HttpRequest("POST", "http://localhost/oauth2/outlook/disconnect", body=b"{not json")
    assert user_function("oauth_disconnect")(bad).status_code == 400


def test_timer_trigger_enqueues_one_base64_job_per_due_user(stack):
    stack.host.stop()  # the test reads the queue itself: the local host must not take the job first
    stack.app.users.save(UserRecord("1001", CONNECTED))
    stack.app.users.save(UserRecord("1002", "needs_reconnect"))
    user_function("sync_timer")(TimerRequest(past_due=True))
    jobs = list(stack.app.storage.queue("sync-jobs").peek_messages(max_messages=10))
    assert [json.loads(m.content)["user_id"] for m in jobs] == ["1001"]
    real = stack.app.storage.queue_name("sync-jobs")
    assert real == stack.environ["SyncJobsQueue"] != "sync-jobs"  # this stack's own queue
    raw = stack.app.storage._queue_service.get_queue_client(real).peek_messages(max_messages=1)[0].content
    assert not raw.startswith("{")  # on the wire it is base64, as the queue trigger expects


def test_sync_job_for_a_user_who_is_not_connected_does_nothing(stack):
    msg = QueueMessage(id="m1", body=b'{"v": 1, "user_id": "nobody"}', dequeue_count=1)
    stack.control.clear_requests_log()
    assert user_function("sync_user")(msg) is None
    assert [r for r in stack.control.requests_log() if r["path"].startswith("/v1.0")] == []


@pytest.mark.parametrize("body,reason", [
    (b"not json", "not a JSON object"),
    (b'{"v": 2, "user_id": "1"}', "unknown message version"),
    (b'{"v": 1, "user_id": "a/b"}', "user"),
])
def test_sync_job_with_a_bad_message_fails_with_a_clear_reason(stack, body, reason):
    with pytest.raises(BadMessage, match=reason):
        user_function("sync_user")(QueueMessage(id="m1", body=body, dequeue_count=1))


def test_writer_rejects_an_unknown_message_kind(stack):
    with pytest.raises(BadMessage, match="unknown writes message kind"):
        user_function("apply_writes")(QueueMessage(id="m2", body=b'{"v": 1, "kind": "mystery"}', dequeue_count=1))
