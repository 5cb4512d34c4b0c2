"""Change notifications: validation handshake, notifications, lifecycle, renew, delete."""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


class _Receiver(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        q = parse_qs(urlsplit(self.path).query)
        if "validationToken" in q:
            token = q["validationToken"][0] if self.server.echo else "wrong"
            data = token.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
        else:
            self.server.received.append(json.loads(body))
            data = b""
            self.send_response(202)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def receiver(ctl):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.received = []
    srv.echo = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    ctl.configure_subscriptions(allow_http=True)
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}/notify"
    srv.shutdown()
    srv.server_close()


def _expiry(minutes=60):
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def test_subscription_handshake_notifications_renew_delete(tenant, ctl, receiver):
    srv, url = receiver
    alice = tenant.user("alice")
    g = tenant.graph(alice["upn"])
    sub = g.ok("POST", "/subscriptions", 201, json={
        "changeType": "created,updated,deleted", "notificationUrl": url, "resource": "me/events",
        "expirationDateTime": _expiry(), "clientState": "secretClientValue",
        "lifecycleNotificationUrl": url})
    assert sub["resource"] == "me/events" and sub["latestSupportedTlsVersion"] == "v1_2"
    e = g.ok("POST", "/me/events", 201, json={"subject": "N", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
                                              "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}})
    g.delete(f"/me/events/{e['id']}")
    log = ctl.notifications()
    assert [d["kind"] for d in log][:2] == ["validation", "validation"]
    notes = [n for body in srv.received for n in body["value"]]
    assert [n["changeType"] for n in notes] == ["created", "updated", "deleted"]
    first = notes[0]
    assert first["clientState"] == "secretClientValue" and first["tenantId"] == tenant.id
    assert first["resourceData"]["id"] == e["id"]
    assert first["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert first["resource"] == f"Users/{alice['id']}/Events/{e['id']}"
    renewed = g.ok("PATCH", f"/subscriptions/{sub['id']}", json={"expirationDateTime": _expiry(120)})
    assert renewed["expirationDateTime"] > sub["expirationDateTime"]
    assert g.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": _expiry(20000)}).status_code == 400
    ctl.send_lifecycle(sub["id"], "reauthorizationRequired")
    ctl.notifications()
    assert srv.received[-1]["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
    assert g.delete(f"/subscriptions/{sub['id']}").status_code == 204
    assert g.get(f"/subscriptions/{sub['id']}").status_code == 404


def test_failed_validation_means_no_subscription(tenant, ctl, receiver):
    srv, url = receiver
    srv.echo = False
    g = tenant.graph(tenant.user("alice")["upn"])
    r = g.post("/subscriptions", json={"changeType": "updated", "notificationUrl": url,
                                       "resource": "me/events", "expirationDateTime": _expiry()})
    assert r.status_code == 400
    assert ctl.subscriptions() == []


def test_http_notification_url_refused_by_default_and_occurrence_delete_is_master_update(tenant, ctl, receiver):
    srv, url = receiver
    g = tenant.graph(tenant.user("alice")["upn"])
    ctl.configure_subscriptions(allow_http=False)
    body = {"changeType": "updated,deleted", "notificationUrl": url, "resource": "me/events",
            "expirationDateTime": _expiry()}
    assert g.post("/subscriptions", json=body).status_code == 400
    ctl.configure_subscriptions(allow_http=True)
    g.ok("POST", "/subscriptions", 201, json=body)
    m = g.ok("POST", "/me/events", 201, json={
        "subject": "D", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 3}}})
    occ = g.ok("GET", f"/me/events/{m['id']}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-01-05T00:00:00Z")["value"]
    ctl.notifications()
    srv.received.clear()
    g.delete(f"/me/events/{occ[0]['id']}")
    ctl.notifications()
    notes = [n for body in srv.received for n in body["value"]]
    assert [(n["changeType"], n["resourceData"]["id"]) for n in notes] == [("updated", m["id"])]


class _Strict(BaseHTTPRequestHandler):
    """A receiver whose answers a test can spoil: wrong content type, slow, failing."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        q = parse_qs(urlsplit(self.path).query)
        cfg = self.server.cfg
        if "validationToken" in q:
            data = q["validationToken"][0].encode()
            self.send_response(200)
            self.send_header("Content-Type", cfg.get("ctype", "text/plain"))
        else:
            self.server.received.append(json.loads(body))
            fails = cfg.get("fail_first", 0)
            if fails:
                cfg["fail_first"] = fails - 1
                threading.Event().wait(cfg.get("delay", 0))
            data = b""
            self.send_response(500 if fails and not cfg.get("delay") else 202)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def strict(ctl):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Strict)
    srv.received, srv.cfg = [], {}
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ctl.configure_subscriptions(allow_http=True, retry_delays=[0.2, 0.2, 0.2])
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}/n"
    srv.shutdown()
    srv.server_close()


def _sub(url, **more):
    return {"changeType": "created,updated,deleted", "notificationUrl": url, "resource": "me/events",
            "expirationDateTime": _expiry(), "clientState": "cs", **more}


def _event(g, subject="E"):
    return g.ok("POST", "/me/events", 201, json={
        "subject": subject, "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}})


def test_handshake_needs_a_text_plain_answer(tenant, ctl, strict):
    """GRAPH.md 7: 200, text/plain, the decoded token; anything else -> no subscription."""
    srv, url = strict
    srv.cfg["ctype"] = "application/json"
    g = tenant.graph(tenant.user("alice")["upn"])
    r = g.post("/subscriptions", json=_sub(url))
    assert r.status_code == 400 and r.json()["error"]["code"] == "ValidationError"
    assert ctl.subscriptions() == []


def test_allow_http_admits_loopback_receivers_only(tenant, ctl, strict):
    g = tenant.graph(tenant.user("alice")["upn"])
    r = g.post("/subscriptions", json=_sub("http://intranet.example.com/n"))
    assert r.status_code == 400 and "https" in r.json()["error"]["message"]


def test_a_failed_or_slow_delivery_is_retried_and_logged(tenant, ctl, strict):
    """GRAPH.md 7: 2xx within 3 s, else Graph retries; the log keeps each attempt."""
    srv, url = strict
    ctl.configure_subscriptions(delivery_timeout=0.5)
    g = tenant.graph(tenant.user("alice")["upn"])
    g.ok("POST", "/subscriptions", 201, json=_sub(url))
    srv.cfg.update(fail_first=1, delay=1.0)  # first answer too late: a timeout
    _event(g)
    pause = threading.Event()
    for _ in range(100):
        notes = [d for d in ctl.notifications() if d["kind"] == "notification"]
        if any(d["status"] == 202 for d in notes):
            break
        pause.wait(0.1)
    assert notes[0]["status"] is None and notes[0]["error"] == "ReadTimeout" and notes[0]["attempt"] == 0
    assert any(d["status"] == 202 and d["attempt"] == 1 for d in notes)
    assert all("elapsed_ms" in d and "slow" in d for d in notes)


def test_a_mailbox_without_webhooks_refuses_subscriptions_but_serves_its_calendar(tenant, ctl, strict):
    """GRAPH.md 6: ExtensionError "...is currently on backend 'Unknown'" (hybrid mailbox)."""
    srv, url = strict
    alice = tenant.user("alice")
    ctl.set_webhooks_supported(alice["upn"], False)
    g = tenant.graph(alice["upn"])
    r = g.post("/subscriptions", json=_sub(url))
    assert r.status_code == 400 and r.json()["error"]["code"] == "ExtensionError"
    assert "backend 'Unknown'" in r.json()["error"]["message"]
    _event(g)
    assert g.get("/me/events").status_code == 200


def test_delegated_list_shows_only_the_signed_in_users_subscriptions(tenant, ctl, strict):
    srv, url = strict
    ga, gb = (tenant.graph(tenant.user(n)["upn"]) for n in ("alice", "bob"))
    mine = ga.ok("POST", "/subscriptions", 201, json=_sub(url))
    gb.ok("POST", "/subscriptions", 201, json=_sub(url))
    assert [s["id"] for s in ga.ok("GET", "/subscriptions")["value"]] == [mine["id"]]
    assert len(ctl.subscriptions()) == 2
