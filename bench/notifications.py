"""Change notifications measured on the local stack (issue 13): measured, never asserted.

- ``notification_latency_p50_s`` / ``_p95_s``: 50 Outlook edits spread over 5 users (each
  user edited about every 10 s, so a user's edits never share a debounce gap), the time
  from the edit in the emulator to the edited title being in Communifire's Table Storage.
  The timer never runs: only Graph's notification brings the change. Target p95 < 5 s.
- ``notification_burst_jobs_per_1000``: 1,000 notifications for one user posted to the
  endpoint as fast as it takes them (100 POSTs of 10, 8 at a time, real clock), and the
  sync jobs they caused. Target at most 2 when the burst fits in 5 s.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

USERS = 5
EDITS = 50
DEADLINE = 60.0


def _wait(condition, timeout: float = DEADLINE, step: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(step)
    raise TimeoutError("condition not met in time")


def _slot(days: int) -> dict[str, Any]:
    d = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=days)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return {"start": {"dateTime": d.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (d + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"}}


def _titles(stack: Any, user_id: str) -> set[str]:
    from core.adapters.events import EventStore

    state, _ = EventStore(stack.app.storage).load_user_state(user_id)
    return {e.title for e in state.events.values()}


def _jobs(stack: Any) -> int:
    return sum(1 for i in stack.host.invocations if i.function == "sync_user" and i.ok)


def measure() -> dict[str, float]:
    from devhost.services import Azurite
    from devhost.stack import Stack

    logging.getLogger().setLevel(logging.WARNING)
    azurite = Azurite().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
            stack = Stack(connection_string=azurite.connection_string, state_dir=Path(tmp),
                          notifications=True).start()
            try:
                return _latency(stack) | _burst(stack)
            finally:
                stack.close()
    finally:
        azurite.stop()


def _latency(stack: Any) -> dict[str, float]:
    people = []
    for n in range(USERS):
        upn = f"user{n}@contoso.com"
        stack.add_user(upn)
        stack.connect(str(2000 + n), upn)
        people.append((str(2000 + n), upn))
    for user_id, _ in people:
        _wait(lambda u=user_id: (r := stack.app.users.get(u)) is not None and r.subscription_status == "active")
    events = {}
    for user_id, upn in people:
        events[user_id] = stack.control.create_event(upn, {"subject": "edit -1", **_slot(2)})["id"]
    for user_id, _ in people:
        _wait(lambda u=user_id: "edit -1" in _titles(stack, u))
    stack.host.wait_idle(timeout=DEADLINE)
    latencies = []
    for i in range(EDITS):
        user_id, upn = people[i % USERS]
        title = f"edit {i}"
        t0 = time.monotonic()
        stack.control.update_event(upn, events[user_id], {"subject": title})
        latencies.append(_wait(lambda u=user_id, t=title: t in _titles(stack, u)) - t0)
        time.sleep(1.0)  # edits about 10 s apart per user: each is a fresh doorbell
    q = statistics.quantiles(latencies, n=20)
    return {"notification_latency_p50_s": statistics.median(latencies), "notification_latency_p95_s": q[18]}


def _burst(stack: Any) -> dict[str, float]:
    from core.adapters.subscriptions import SyncRequests

    user_id = "2000"
    stack.host.wait_idle(timeout=DEADLINE)
    user = stack.app.users.get(user_id)
    state = next(s["clientState"] for s in stack.control.subscriptions() if s["id"] == user.subscription_id)
    note = {"subscriptionId": user.subscription_id, "clientState": state, "changeType": "updated",
            "resource": "Users/x/Events/y", "tenantId": stack.tenant_id}
    url = f"{stack.host.url}/oauth2/outlook/notifications"
    before = _jobs(stack)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: stack.http.post(url, json={"value": [note] * 10}).raise_for_status(), range(100)))

    def settled() -> bool:
        request, _ = SyncRequests(stack.app.storage).get(user_id)
        return request is not None and not request.pending

    _wait(settled, step=0.1)
    stack.host.wait_idle(timeout=DEADLINE)
    return {"notification_burst_jobs_per_1000": float(_jobs(stack) - before)}
