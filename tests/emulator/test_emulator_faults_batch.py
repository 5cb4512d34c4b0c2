"""$batch, throttling and injected faults, all visible in the request log."""
from __future__ import annotations

import concurrent.futures
import json
import threading

import pytest
import requests

from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo


@pytest.fixture
def alice(tenant):
    user = tenant.user("alice")
    return user, tenant.graph(user["upn"])


def _ev(subject, day="2030-01-10"):
    return {"subject": subject, "start": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T11:00:00", "timeZone": "UTC"}}


def test_batch_mixed_results_with_depends_on_and_424(alice):
    _, g = alice
    e = g.ok("POST", "/me/events", 201, json=_ev("one"))
    body = {"requests": [
        {"id": "1", "method": "GET", "url": f"/me/events/{e['id']}"},
        {"id": "2", "method": "POST", "url": "/me/events", "headers": {"Content-Type": "application/json"},
         "body": _ev("two")},
        {"id": "3", "method": "GET", "url": "/me/events/AAMkAGRTarSYgLW7lteuMJHy4qprp60FBRJaJiPLCpA="},
        {"id": "4", "method": "PATCH", "url": f"/me/events/{e['id']}", "dependsOn": ["3"],
         "headers": {"Content-Type": "application/json"}, "body": {"subject": "never"}},
    ]}
    out = g.ok("POST", "/$batch", json=body)
    recorded = json.loads((PAYLOADS / "batch_response_mixed_400_404_201.json").read_text())["responses"][0]
    by_id = {r["id"]: r for r in out["responses"]}
    assert set(recorded) == set(by_id["3"])
    assert {k: by_id[k]["status"] for k in by_id} == {"1": 200, "2": 201, "3": 404, "4": 424}
    assert by_id["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert g.ok("GET", f"/me/events/{e['id']}")["subject"] == "one"


def test_batch_envelope_validation(alice):
    _, g = alice
    too_many = {"requests": [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]}
    assert g.post("/$batch", json=too_many).status_code == 400
    dup = {"requests": [{"id": "a", "method": "GET", "url": "/me"}, {"id": "A", "method": "GET", "url": "/me"}]}
    assert g.post("/$batch", json=dup).status_code == 400
    no_ct = {"requests": [{"id": "a", "method": "POST", "url": "/me/events", "body": _ev("x")}]}
    assert g.post("/$batch", json=no_ct).status_code == 400


def test_batch_item_gets_its_own_429_with_retry_after(alice, ctl):
    user, g = alice
    ctl.inject_fault(429, upn=user["upn"], route="/me/events", retry_after=2.128)
    body = {"requests": [{"id": "1", "method": "GET", "url": "/me/events"},
                         {"id": "2", "method": "GET", "url": "/me"}]}
    out = g.ok("POST", "/$batch", json=body)
    by_id = {r["id"]: r for r in out["responses"]}
    assert by_id["1"]["status"] == 429 and by_id["1"]["headers"]["Retry-After"] == "2.128"
    assert by_id["2"]["status"] == 200
    log = [e for e in ctl.requests_log() if e["batch"]]
    assert any(e["fault"] == "429" and e["status"] == 429 for e in log)


@pytest.mark.parametrize("kind,status", [(429, 429), (503, 503), (504, 504), ("expired_token", 401)])
def test_injected_status_faults_hit_the_next_matching_requests_then_stop(alice, ctl, kind, status):
    user, g = alice
    ctl.inject_fault(kind, count=2, upn=user["upn"], route="/calendarView", retry_after=3)
    url = "/me/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
    assert g.get("/me/events").status_code == 200  # other routes untouched
    first, second, third = g.get(url), g.get(url), g.get(url)
    assert first.status_code == second.status_code == status and third.status_code == 200
    if status == 429:
        assert first.headers["Retry-After"] == "3"
        assert first.json()["error"]["code"] == "TooManyRequests"
    faults = [e for e in ctl.requests_log() if e["fault"]]
    assert [e["fault"] for e in faults] == [str(kind)] * 2 and all(e["status"] == status for e in faults)


def test_drop_fault_cuts_the_connection_mid_page(alice, ctl):
    user, g = alice
    for i in range(3):
        g.ok("POST", "/me/events", 201, json=_ev(f"e{i}"))
    ctl.inject_fault("drop", upn=user["upn"], route="/calendarView")
    url = "/me/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
    with pytest.raises(requests.exceptions.RequestException):
        g.get(url)
    assert len(g.ok("GET", url)["value"]) == 3
    assert any(e["fault"] == "drop" for e in ctl.requests_log())


def test_throttle_four_concurrent_requests_per_mailbox(alice, ctl, tenant):
    user, _ = alice
    clients = [tenant.graph(user["upn"]) for _ in range(6)]
    ctl.inject_fault("slow", count=6, upn=user["upn"], route="/me/events", delay=3.0)
    barrier = threading.Barrier(6)

    def call(g):
        barrier.wait()
        return g.get("/me/events").status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(call, clients))
    assert sorted(statuses) == [200] * 4 + [429] * 2
    throttled = [e for e in ctl.requests_log() if e["status"] == 429]
    assert len(throttled) == 2 and all(e["retry_after"] == 1.0 for e in throttled)


def test_throttle_budget_gives_fractional_retry_after(tenant, ctl):
    ctl.set_now("2030-01-01T00:00:00Z")
    g = tenant.graph(tenant.user("dora")["upn"])
    ctl.set_throttle(budget=3, window_seconds=10.5)
    assert [g.get("/me/events").status_code for _ in range(3)] == [200] * 3
    r = g.get("/me/events")
    assert r.status_code == 429 and r.headers["Retry-After"] == "10.5"
    ctl.advance_clock(10.5)
    assert g.get("/me/events").status_code == 200
    ctl.set_now(None)


def test_reset_clears_faults_and_log(alice, ctl):
    user, _ = alice
    ctl.inject_fault(503, upn=user["upn"])
    assert ctl.pending_faults()
    ctl.reset()
    assert ctl.pending_faults() == [] and ctl.requests_log() == []
