"""Graph change notifications (issue 13, GRAPH.md 7): subscriptions, the two anonymous
endpoints, the debounce and lifecycle events, against Azurite, the emulator (as strict as
Graph about the handshake) and the local host.

The timer never runs here unless a test fires it: notifications alone must carry a change
from Outlook to Communifire. No timed asserts: every wait is on a condition with a generous
deadline.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests

pytestmark = pytest.mark.slow

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
DEADLINE = 90.0


def at(days: int, hour: int) -> dict[str, str]:
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def single(subject: str, days: int, hour: int = 10) -> dict:
    return {"subject": subject, "start": at(days, hour), "end": at(days, hour + 1)}


def titles(stack, user_id: str) -> list[str]:
    return sorted(e["title"] for e in stack.calendar(user_id)["events"])


def wait_for(what, condition, timeout: float = DEADLINE):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout}s")
        time.sleep(0.2)


def sync_jobs(stack) -> int:
    """sync_user invocations that finished so far (the host's record)."""
    return sum(1 for i in stack.host.invocations if i.function == "sync_user" and i.ok)


def subscribed(stack, user_id: str):
    def check():
        user = stack.app.users.get(user_id)
        return user if user is not None and user.subscription_status == "active" else None

    return wait_for(f"an active subscription for {user_id}", check)


def post(stack, path: str, body, **params) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.http.post(f"{stack.host.url}/oauth2/outlook/{path}", params=params, data=data,
                           headers={"Content-Type": "application/json"})


def stats(stack) -> dict[str, int]:
    from core.adapters.subscriptions import NotificationStats

    out: dict[str, int] = {}
    for _day, name, count in NotificationStats(stack.app.storage).read():
        out[name] = out.get(name, 0) + count
    return out


@pytest.fixture
def nstack(make_stack):
    return make_stack(notifications=True)


def test_connect_creates_a_subscription_and_an_outlook_edit_reaches_communifire_without_the_timer(nstack):
    s = nstack
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    user = subscribed(s, "1001")
    [sub] = s.control.subscriptions()
    assert sub["id"] == user.subscription_id and sub["resource"] == "me/events"
    assert sub["changeType"] == "created,updated,deleted"
    assert sub["notificationUrl"] == f"{s.host.url}/oauth2/outlook/notifications"
    assert sub["lifecycleNotificationUrl"] == f"{s.host.url}/oauth2/outlook/lifecycle"
    assert len(sub["clientState"]) >= 32  # random per subscription
    # the clientState is stored sealed, never in clear
    row = s.app.storage.table("Subscriptions").get_entity("sub", sub["id"])
    assert row["UserId"] == "1001" and sub["clientState"] not in json.dumps(dict(row), default=str)
    assert row["ClientState"].startswith("v1.k1.")
    # the emulator validated both URLs with the handshake before answering 201
    validations = [d for d in s.control.notifications() if d["kind"] == "validation"]
    assert {d["url"].split("?")[0] for d in validations} >= {sub["notificationUrl"], sub["lifecycleNotificationUrl"]}
    assert all(d["status"] == 200 for d in validations)
    assert user.subscription_expires_at > datetime.now(timezone.utc) + timedelta(days=2)

    event = s.control.create_event(ALICE, single("Rang the doorbell", 2))
    wait_for("the new event in Communifire", lambda: "Rang the doorbell" in titles(s, "1001"))
    s.control.update_event(ALICE, event["id"], {"subject": "Renamed in Outlook"})
    wait_for("the rename in Communifire", lambda: titles(s, "1001") == ["Renamed in Outlook"])
    # the endpoint answered every notification 202, fast (GRAPH.md 7: within 3 s)
    notes = [d for d in s.control.notifications() if d["kind"] == "notification"]
    assert notes and all(d["status"] == 202 and not d["slow"] for d in notes)
    # a healthy subscription: the timer polls this user only every SubscribedSyncIntervalMinutes
    s.host.wait_idle(timeout=DEADLINE)  # the sync job saves the user after handing over its writes
    user = s.app.users.get("1001")
    assert user.next_due_at >= datetime.now(timezone.utc) + timedelta(minutes=50)


def test_the_handshake_echoes_the_decoded_token_as_text_plain(nstack):
    token = "Validation: Testing client application reachability for subscription Request-Id: 1+2 &x=<b>"
    for path in ("notifications", "lifecycle"):
        resp = nstack.http.post(f"{nstack.host.url}/oauth2/outlook/{path}", params={"validationToken": token},
                                headers={"Content-Type": "text/plain"})
        assert resp.status_code == 200 and resp.text == token
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    too_long = nstack.http.post(f"{nstack.host.url}/oauth2/outlook/notifications", params={"validationToken": "x" * 5000})
    assert too_long.status_code == 400


def test_a_forged_client_state_is_discarded_and_counted(nstack, capsys):
    s = nstack
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    user = subscribed(s, "1001")
    s.host.wait_idle(timeout=DEADLINE)
    before = sync_jobs(s)
    forged = {"value": [{"subscriptionId": user.subscription_id, "clientState": "guessed", "changeType": "updated",
                         "resource": "Users/x/Events/y", "tenantId": s.tenant_id}]}
    unknown = {"value": [{"subscriptionId": "not-ours", "clientState": "guessed", "changeType": "updated"}]}
    assert post(s, "notifications", forged).status_code == 202  # nothing revealed to the sender
    assert post(s, "notifications", unknown).status_code == 202
    assert post(s, "lifecycle", {"value": [{**forged["value"][0], "lifecycleEvent": "subscriptionRemoved"}]}).status_code == 202
    counted = wait_for("the discard counters", lambda: (c := stats(s)).get("discarded_client_state") == 2 and c)
    assert counted["discarded_unknown_subscription"] == 1
    from core.cli.main import main

    assert main(["notifications", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["enabled"] and shown["days"][0]["discarded_client_state"] == 2
    assert shown["users"][0]["subscription"]["state"] == "active"
    assert main(["notifications"]) == 0 and "discarded client state" in capsys.readouterr().out
    s.host.wait_idle(timeout=DEADLINE)
    assert sync_jobs(s) == before  # no job was queued
    assert s.app.storage.queue("sync-jobs").peek_messages() == []
    assert s.app.users.get("1001").subscription_id == user.subscription_id  # the forged removal did nothing


def test_bad_bodies_are_refused_and_the_size_is_capped(nstack):
    assert post(nstack, "notifications", b"not json").status_code == 400
    assert post(nstack, "notifications", {"value": "nope"}).status_code == 400
    big = b'{"value": [' + b'{"subscriptionId": "x"},' * 50_000 + b'{}]}'
    assert post(nstack, "notifications", big).status_code == 413
    assert wait_for("the malformed counter", lambda: stats(nstack).get("discarded_malformed", 0) >= 3)


class Clock:
    """The app's clock (it takes time as a parameter): real time, shifted or frozen."""

    def __init__(self):
        self.shift = timedelta(0)
        self.frozen: datetime | None = None

    def __call__(self) -> datetime:
        return self.frozen or datetime.now(timezone.utc) + self.shift


def test_a_burst_of_notifications_for_one_user_becomes_at_most_two_sync_jobs(make_stack):
    clock = Clock()
    s = make_stack(notifications=True, clock=clock)
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    user = subscribed(s, "1001")
    s.host.wait_idle(timeout=DEADLINE)
    state = s.control.subscriptions()[0]["clientState"]
    before = sync_jobs(s)
    note = {"subscriptionId": user.subscription_id, "clientState": state, "changeType": "updated",
            "resource": "Users/x/Events/y", "tenantId": s.tenant_id}
    # 1,000 notifications (D1: a series edit sends one per occurrence) in 100 POSTs of 10,
    # all within the same 5 s for the app: its clock stands still during the burst, so
    # the figure does not depend on how loaded this machine is.
    clock.frozen = datetime.now(timezone.utc)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: post(s, "notifications", {"value": [note] * 10}).status_code, range(100)))
    clock.frozen = None
    assert codes == [202] * 100
    # every job the burst caused has started once the marker says none is pending
    wait_for("the debounced jobs to start", lambda: _no_pending(s, "1001"))
    s.host.wait_idle(timeout=DEADLINE)
    jobs = sync_jobs(s) - before
    assert 1 <= jobs <= 2, jobs


def _no_pending(s, user_id: str) -> bool:
    from core.adapters.subscriptions import SyncRequests

    request, _ = SyncRequests(s.app.storage).get(user_id)
    return request is not None and not request.pending


def test_the_timer_creates_a_subscription_for_a_user_connected_before_notifications(nstack):
    from core.app import notifications

    s = nstack
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    first = subscribed(s, "1001")
    s.host.wait_idle(timeout=DEADLINE)
    # make it a user from before this change: no subscription, not due for a sync
    notifications.forget(s.app, first)
    s.app.users.save(replace(s.app.users.get("1001").with_subscription(type(first.subscription)()),
                             next_due_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    assert s.control.subscriptions() == []
    s.run_timer()
    made = subscribed(s, "1001")
    assert made.subscription_id != first.subscription_id
    assert [x["id"] for x in s.control.subscriptions()] == [made.subscription_id]


def test_the_timer_renews_a_subscription_well_before_it_expires(make_stack):
    clock = Clock()
    s = make_stack(notifications=True, clock=clock)
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    made = subscribed(s, "1001")
    s.host.wait_idle(timeout=DEADLINE)
    s.run_timer()  # right away: nothing to renew yet
    s.host.wait_idle(timeout=DEADLINE)
    assert s.app.users.get("1001").subscription_expires_at == made.subscription_expires_at
    # two days later on both clocks: past half the 4,230-minute lifetime, still before expiry
    clock.shift = timedelta(days=2)
    s.control.advance_clock(clock.shift.total_seconds())
    assert made.subscription_expires_at > clock()
    s.app.users.save(replace(s.app.users.get("1001"), next_due_at=clock() + timedelta(days=5)))  # not due to sync
    s.run_timer()
    renewed = wait_for("a renewal", lambda: (u := s.app.users.get("1001")).subscription_expires_at > made.subscription_expires_at and u)
    assert renewed.subscription_id == made.subscription_id and renewed.subscription_status == "active"
    assert renewed.subscription_expires_at > clock() + timedelta(days=2)
    [sub] = s.control.subscriptions()
    assert sub["id"] == made.subscription_id and sub["expirationDateTime"][:19] == renewed.subscription_expires_at.strftime("%Y-%m-%dT%H:%M:%S")


def test_disconnect_deletes_the_subscription(nstack):
    s = nstack
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    user = subscribed(s, "1001")
    assert s.disconnect("1001").status_code == 200
    assert s.control.subscriptions() == []
    assert list(s.app.storage.table("Subscriptions").list_entities()) == []
    # a late notification for it is discarded (unknown), and schedules nothing
    assert post(s, "notifications", {"value": [{"subscriptionId": user.subscription_id, "clientState": "x"}]}).status_code == 202
    assert wait_for("the unknown counter", lambda: stats(s).get("discarded_unknown_subscription") == 1)


def test_a_mailbox_without_webhooks_stays_on_timer_polling_with_the_reason_shown(nstack, capsys):
    s = nstack
    s.add_user(ALICE)
    s.control.set_webhooks_supported(ALICE, False)
    s.connect("1001", ALICE)
    user = wait_for("the subscription to be refused", lambda: (u := s.app.users.get("1001")).subscription_status and u)
    assert user.subscription_status == "unsupported" and "backend 'Unknown'" in user.subscription_error
    assert user.subscription_retry_at > datetime.now(timezone.utc) + timedelta(hours=23)
    s.host.wait_idle(timeout=DEADLINE)
    user = s.app.users.get("1001")
    assert user.next_due_at <= datetime.now(timezone.utc) + timedelta(minutes=15)  # polled as before
    from core.cli.main import main

    assert main(["users", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["users"][0]["subscription"]
    assert shown["state"] == "unsupported" and "backend 'Unknown'" in shown["reason"]
    assert main(["users"]) == 0
    assert "unsupported" in capsys.readouterr().out


@pytest.mark.parametrize("event", ["reauthorizationRequired", "subscriptionRemoved", "missed"])
def test_lifecycle_events(nstack, event):
    s = nstack
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    user = subscribed(s, "1001")
    s.host.wait_idle(timeout=DEADLINE)
    s.control.create_event(ALICE, single("Seen", 2))
    wait_for("the first event", lambda: titles(s, "1001") == ["Seen"])
    s.host.wait_idle(timeout=DEADLINE)
    before = s.app.users.get("1001")
    s.control.clear_requests_log()
    s.control.send_lifecycle(user.subscription_id, event)
    if event == "reauthorizationRequired":
        after = wait_for("a renewal", lambda: (u := s.app.users.get("1001")).subscription_expires_at > before.subscription_expires_at and u)
        assert after.subscription_id == user.subscription_id
    elif event == "subscriptionRemoved":
        after = wait_for("a new subscription", lambda: (u := s.app.users.get("1001")).subscription_id != user.subscription_id and u.subscription_status == "active" and u)
        assert [x["id"] for x in s.control.subscriptions()] == [after.subscription_id]
        wait_for("a full round", lambda: _full_round_ran(s))
    else:
        wait_for("a full round", lambda: _full_round_ran(s))
        assert s.app.users.get("1001").subscription_id == user.subscription_id
    s.host.wait_idle(timeout=DEADLINE)
    assert titles(s, "1001") == ["Seen"]


def _full_round_ran(s) -> bool:
    """A calendarView/delta call without a delta token: a new round (GRAPH.md 2)."""
    return any("calendarView/delta" in r["path"] and "deltatoken" not in (r.get("query") or "").lower()
               for r in s.control.requests_log())


def test_doctor_checks_the_notification_url_and_the_handshake_of_a_deployed_app(nstack, capsys, monkeypatch, tmp_path):
    from core.cli.main import EXIT_FAIL, main

    monkeypatch.setenv("OUTLOOK_SYNC_SETTINGS_FILE", str(tmp_path / "absent.json"))
    for key, value in nstack.environ.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "appsettings.json"

    def doctor(**changes):
        values = {**nstack.environ, **changes}
        path.write_text(json.dumps([{"name": k, "value": v} for k, v in values.items()]))
        code = main(["doctor", "--json", "--settings-file", str(path)])
        return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}

    code, checks = doctor()
    # the local host is plain http: Graph would never deliver there, so doctor fails it...
    assert code == EXIT_FAIL and checks["notification url"]["ok"] is False
    assert "https" in checks["notification url"]["detail"]
    # ...while both endpoints answer the handshake as Graph requires
    assert checks["notification handshake"]["ok"] and checks["lifecycle handshake"]["ok"]
    code, checks = doctor(NotificationUrl=nstack.host.url + "/elsewhere")
    assert code == EXIT_FAIL and checks["notification handshake"]["ok"] is False
    code, checks = doctor(NotificationUrl="")
    assert checks["notifications"]["ok"] and "timer" in checks["notifications"]["detail"]


def test_no_client_state_reaches_the_logs(nstack, caplog):
    """A clientState is a secret (issue 13): sealed at rest, never logged, even forged ones."""
    import logging

    caplog.set_level(logging.DEBUG)
    s = nstack
    s.add_user(ALICE)
    s.connect("1001", ALICE)
    user = subscribed(s, "1001")
    s.control.create_event(ALICE, single("Quiet", 2))
    wait_for("the event", lambda: titles(s, "1001") == ["Quiet"])
    s.control.send_lifecycle(user.subscription_id, "missed")
    post(s, "notifications", {"value": [{"subscriptionId": user.subscription_id, "clientState": "forged-secret-value"}]})
    s.host.wait_idle(timeout=DEADLINE)
    state = s.control.subscriptions()[0]["clientState"]
    ours = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records
                     if not r.name.startswith(("emulator", "urllib3")))
    assert "notifications received" in ours  # the endpoint did log
    assert state not in ours and "forged-secret-value" not in ours
