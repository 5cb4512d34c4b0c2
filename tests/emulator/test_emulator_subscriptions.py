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
