"""The Graph client's retries, paging and batching (GRAPH.md section 6), against a fake
transport: a Session subclass that answers from a script, no mock.patch."""

import json

import pytest
import requests

from core.adapters.graph import DeltaExpired, GraphClient, GraphError, RetryPolicy


class ScriptedSession(requests.Session):
    """Answers each request with the next scripted (status, body, headers)."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.calls = []

    def request(self, method, url, **kw):  # noqa: D401 - the fake transport
        self.calls.append((method, url, kw))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, body, headers = item
        resp = requests.Response()
        resp.status_code = status
        resp._content = json.dumps(body).encode() if body is not None else b""
        resp.headers.update(headers or {})
        return resp


class Tokens:
    def __init__(self):
        self.calls = []

    def __call__(self, force_refresh=False):
        self.calls.append(force_refresh)
        return "fresh-token" if force_refresh else "token"


def client(script, **kw):
    sleeps = []
    session = ScriptedSession(script)
    tokens = Tokens()
    c = GraphClient("https://graph.test/v1.0", tokens, session, sleep=sleeps.append, **kw)
    return c, session, sleeps, tokens


def err(code, message="m"):
    return {"error": {"code": code, "message": message, "innerError": {"request-id": "rid-1"}}}


def test_429_waits_the_fractional_retry_after_then_succeeds():
    c, session, sleeps, _ = client([(429, err("TooManyRequests"), {"Retry-After": "2.128"}), (200, {"id": "x"}, {})])
    assert c.get("/me") == {"id": "x"}
    assert sleeps == [2.128] and len(session.calls) == 2


def test_503_without_retry_after_backs_off_exponentially():
    c, _, sleeps, _ = client([(503, None, {}), (504, None, {}), (200, {}, {})])
    c.get("/me")
    assert sleeps == [1.0, 2.0]


def test_a_dropped_connection_is_retried():
    c, _, sleeps, _ = client([requests.ConnectionError("reset"), (200, {"ok": 1}, {})])
    assert c.get("/me") == {"ok": 1} and sleeps == [1.0]


def test_an_expired_access_token_is_refreshed_once():
    c, session, _, tokens = client([(401, err("InvalidAuthenticationToken"), {}), (200, {}, {})])
    c.get("/me")
    assert tokens.calls == [False, True]
    assert session.calls[1][2]["headers"]["Authorization"] == "Bearer fresh-token"


def test_a_404_is_not_retried_and_carries_graphs_code_and_request_id():
    c, _, sleeps, _ = client([(404, err("ErrorItemNotFound", "The specified object was not found in the store."), {})])
    with pytest.raises(GraphError) as info:
        c.get("/me/events/x")
    assert info.value.not_found and info.value.code == "ErrorItemNotFound" and info.value.request_id == "rid-1"
    assert sleeps == []


def test_retries_stop_after_the_policy_limit():
    c, _, sleeps, _ = client([(503, None, {})] * 3, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(GraphError):
        c.get("/me")
    assert len(sleeps) == 2


def test_a_gone_delta_token_is_a_delta_expired_error():
    c, _, _, _ = client([(410, err("SyncStateNotFound"), {})])
    with pytest.raises(DeltaExpired):
        c.get("/me/calendarView/delta")


def test_pages_follow_next_links_verbatim():
    next_link = "https://graph.test/v1.0/me/calendarView?$skiptoken=abc"
    c, session, _, _ = client([(200, {"value": [1, 2], "@odata.nextLink": next_link}, {}), (200, {"value": [3]}, {})])
    assert list(c.items("/me/calendarView", {"startDateTime": "a"})) == [1, 2, 3]
    assert session.calls[1][1] == next_link and session.calls[1][2]["params"] is None
    assert "odata.maxpagesize=1000" in session.calls[0][2]["headers"]["Prefer"]  # GRAPH.md 1: the largest page


def test_batch_retries_only_throttled_items_after_their_retry_after():
    first = {"responses": [
        {"id": "1", "status": 200, "body": {"v": 1}},
        {"id": "2", "status": 429, "headers": {"Retry-After": "3"}, "body": err("TooManyRequests")},
    ]}
    second = {"responses": [{"id": "2", "status": 200, "body": {"v": 2}}]}
    c, session, sleeps, _ = client([(200, first, {}), (200, second, {})])
    out = c.batch([{"id": "1", "method": "GET", "url": "/me/events/a"}, {"id": "2", "method": "GET", "url": "/me/events/b"}])
    assert out == {"1": (200, {"v": 1}), "2": (200, {"v": 2})}
    assert sleeps == [3.0]
    assert [r["id"] for r in session.calls[1][2]["json"]["requests"]] == ["2"]


def test_batch_sends_at_most_twenty_requests_per_call():
    reqs = [{"id": str(i), "method": "GET", "url": f"/me/events/{i}"} for i in range(25)]
    c, session, _, _ = client([
        (200, {"responses": [{"id": str(i), "status": 200, "body": {}} for i in range(20)]}, {}),
        (200, {"responses": [{"id": str(i), "status": 200, "body": {}} for i in range(20, 25)]}, {}),
    ])
    assert len(c.batch(reqs)) == 25
    assert [len(call[2]["json"]["requests"]) for call in session.calls] == [20, 5]
