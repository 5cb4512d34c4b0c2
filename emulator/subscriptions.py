"""Graph change notifications for events: subscriptions, validation, delivery.

Owns: ``/subscriptions`` resources (create with the ``validationToken`` handshake,
renew, delete, reauthorize), matching mailbox changes to subscriptions, and posting
notification and lifecycle bodies to subscribers from a background thread (never while
holding the emulator lock). Every delivery attempt is kept for tests to read.
Creating an event notifies ``created`` and ``updated`` (as Exchange does); removing an
occurrence notifies only an ``updated`` of the master.

As strict as Graph (GRAPH.md section 7): https URLs only (``allow_http`` admits plain
http for loopback receivers only, for local stacks); the handshake needs 200, a
``text/plain`` content type and the URL-decoded token within 10 s; a notification POST
must be answered 2xx within 3 s (a slower answer is a failure, and above 2,900 ms it is
marked ``slow``); a failed delivery is retried (Graph retries for up to 4 hours; here
``retry_delays``, compressed); several notifications queued for one URL go in one POST.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from .timeutil import fmt_ts, parse_query_instant
from .web import GraphError

CHANGE_TYPES = {"created", "updated", "deleted"}


def _loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


@dataclass
class Subscription:
    id: str
    resource: str
    owner_oid: str           # mailbox watched
    tenant: str
    app_id: str
    creator: str
    change_types: set
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: _dt.datetime
    raw_change_type: str
    tls: str = "v1_2"

    def public(self, base: str) -> dict:
        return {"@odata.context": f"{base}/v1.0/$metadata#subscriptions/$entity",
                "id": self.id, "resource": self.resource, "applicationId": self.app_id,
                "changeType": self.raw_change_type, "clientState": self.client_state,
                "notificationUrl": self.notification_url, "notificationQueryOptions": None,
                "lifecycleNotificationUrl": self.lifecycle_url,
                "expirationDateTime": fmt_ts(self.expiration), "creatorId": self.creator,
                "includeResourceData": None, "latestSupportedTlsVersion": self.tls,
                "encryptionCertificate": None, "encryptionCertificateId": None,
                "notificationUrlAppId": None}


@dataclass
class Subscriptions:
    clock: object
    directory: object
    subs: dict = field(default_factory=dict)
    deliveries: list = field(default_factory=list)
    max_minutes: int = 10080
    allow_http: bool = False
    verify: object = False
    validation_timeout: float = 10.0
    delivery_timeout: float = 3.0
    slow_ms: float = 2900.0
    retry_delays: tuple = (1.0, 2.0, 4.0)
    max_batch: int = 100

    def __post_init__(self) -> None:
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._log_lock = threading.Lock()

    # -- lifecycle of the delivery thread --------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="emulator-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._q.put(None)
        if self._thread:
            self._thread.join(timeout=5)

    def drain(self, timeout: float = 10.0) -> None:
        """Block until queued deliveries are done (tests)."""
        done = threading.Event()
        self._q.put(done)
        done.wait(timeout)

    def _run(self) -> None:
        pending: list = []
        while not self._stop.is_set():
            job = pending.pop(0) if pending else self._q.get()
            if job is None:
                return
            if isinstance(job, threading.Event):
                job.set()
                continue
            url, body, kind, sub_id, attempt = job
            if kind == "notification" and attempt == 0:
                body, sub_id, held = self._coalesce(url, body, sub_id)
                pending.extend(held)  # a job for another URL, a drain marker or the stop
            self._post(url, body, kind, sub_id, attempt)

    def _coalesce(self, url: str, body: dict, sub_id: str) -> tuple[dict, str, list]:
        """Graph puts several notifications (even of different subscriptions) in one POST."""
        values = list(body["value"])
        held: list = []
        while len(values) < self.max_batch:
            try:
                nxt = self._q.get_nowait()
            except queue.Empty:
                break
            if isinstance(nxt, tuple) and nxt[0] == url and nxt[2] == "notification" and nxt[4] == 0:
                values.extend(nxt[1]["value"])
            else:
                held.append(nxt)  # keep the order: stop at the first job of another kind
                break
        ids = sorted({v["subscriptionId"] for v in values})
        return {"value": values}, (sub_id if len(ids) == 1 else ",".join(ids)), held

    def _post(self, url: str, body: dict, kind: str, sub_id: str, attempt: int = 0) -> None:
        entry = {"time": fmt_ts(self.clock.now()), "kind": kind, "subscriptionId": sub_id,
                 "url": url, "body": body, "attempt": attempt}
        started = time.monotonic()
        ok = False
        try:
            r = requests.post(url, json=body, timeout=self.delivery_timeout, verify=self.verify)
            entry["status"] = r.status_code
            ok = 200 <= r.status_code < 300
        except requests.RequestException as exc:
            entry["status"] = None
            entry["error"] = type(exc).__name__
        elapsed = (time.monotonic() - started) * 1000.0
        entry["elapsed_ms"] = round(elapsed, 1)
        entry["slow"] = elapsed > self.slow_ms
        with self._log_lock:
            self.deliveries.append(entry)
        if not ok and attempt < len(self.retry_delays) and not self._stop.is_set():
            retry = threading.Timer(self.retry_delays[attempt], self._q.put,
                                    args=((url, body, kind, sub_id, attempt + 1),))
            retry.daemon = True
            retry.start()

    # -- resource ------------------------------------------------------------------
    def _resolve_resource(self, resource: str, claims: dict) -> str:
        r = resource.strip().strip("/")
        m = re.fullmatch(r"(?i)me(?:/calendars?(?:/[^/]+)?)?/events", r)
        if m:
            if "scp" not in claims:
                raise GraphError(400, "InvalidRequest", "'me' is not valid for app-only tokens.")
            return claims["oid"]
        m = re.fullmatch(r"(?i)users/([^/]+)(?:/calendars?(?:/[^/]+)?)?/events", r)
        if m:
            ref = m.group(1).strip("'()")
            user = self.directory.user_by_ref(ref)
            if user is None:
                raise GraphError(404, "ExtensionError",
                                 "Operation: Create; Exception: [Status Code: NotFound; Reason: "
                                 "'Resource' is invalid]")
            if "scp" in claims and user.id != claims["oid"]:
                raise GraphError(403, "ExtensionError",
                                 "Operation: Create; Exception: [Status Code: Forbidden; Reason: "
                                 "Access is denied.]")
            return user.id
        raise GraphError(400, "InvalidRequest", f"Resource '{resource}' is not supported by the "
                                                "emulator (use me/events or users/{id}/events).")

    def _check_expiry(self, value: object) -> _dt.datetime:
        try:
            when = parse_query_instant(str(value))
        except ValueError:
            raise GraphError(400, "InvalidRequest",
                             "Could not process subscription creation payload. Are all property "
                             "names spelled and camelCased properly?Also are the dateTimeOffest "
                             "properties in a valid Internet Date and Time format?") from None
        now = self.clock.now()
        if when <= now:
            raise GraphError(400, "InvalidRequest",
                             "Subscription expiration can only be in the future.")
        if when > now + _dt.timedelta(minutes=self.max_minutes):
            raise GraphError(400, "InvalidRequest",
                             f"Subscription expiration can only be {self.max_minutes} minutes in "
                             "the future.")
        return when

    def _check_url(self, url: object, name: str) -> str:
        if not isinstance(url, str) or not url:
            raise GraphError(400, "InvalidRequest", f"{name} is required.")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "https" and not (self.allow_http and scheme == "http" and _loopback(parts.hostname)):
            raise GraphError(400, "InvalidRequest",
                             f"The {name} must be an https URL.")
        return url

    def validate_endpoint(self, url: str) -> None:
        """The validationToken handshake (called without the emulator lock)."""
        token = "Validation: Testing client application reachability for subscription Request-Id: " \
                + str(uuid.uuid4())
        entry = {"time": fmt_ts(self.clock.now()), "kind": "validation", "url": url,
                 "subscriptionId": None, "body": None}
        try:
            r = requests.post(url, params={"validationToken": token}, data=b"",
                              headers={"Content-Type": "text/plain; charset=utf-8"},
                              timeout=self.validation_timeout, verify=self.verify)
            entry["status"] = r.status_code
            ctype = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
            ok = r.status_code == 200 and ctype == "text/plain" and r.text == token
        except requests.RequestException as exc:
            entry["status"] = None
            entry["error"] = type(exc).__name__
            ok = False
        with self._log_lock:
            self.deliveries.append(entry)
        if not ok:
            raise GraphError(400, "ValidationError",
                             "Subscription validation request failed. Response must exactly "
                             "match validationToken query parameter.")

    def prepare(self, body: dict, claims: dict) -> Subscription:
        """Check a create request; the caller validates the URLs, then ``add``s it."""
        if not isinstance(body, dict):
            raise GraphError(400, "InvalidRequest", "Could not process subscription creation payload.")
        raw_ct = str(body.get("changeType") or "")
        cts = {c.strip() for c in raw_ct.split(",") if c.strip()}
        if not cts or not cts <= CHANGE_TYPES:
            raise GraphError(400, "InvalidRequest", f"Invalid changeType '{raw_ct}'.")
        client_state = body.get("clientState")
        if client_state is not None and len(str(client_state)) > 128:
            raise GraphError(400, "InvalidRequest", "clientState must be at most 128 characters.")
        owner = self._resolve_resource(str(body.get("resource") or ""), claims)
        return Subscription(
            id=str(uuid.uuid4()), resource=str(body["resource"]), owner_oid=owner,
            tenant=claims.get("tid", ""), app_id=claims.get("appid", ""),
            creator=claims.get("oid", ""), change_types=cts,
            notification_url=self._check_url(body.get("notificationUrl"), "notificationUrl"),
            lifecycle_url=(self._check_url(body["lifecycleNotificationUrl"], "lifecycleNotificationUrl")
                           if body.get("lifecycleNotificationUrl") else None),
            client_state=client_state, expiration=self._check_expiry(body.get("expirationDateTime")),
            raw_change_type=raw_ct, tls=body.get("latestSupportedTlsVersion") or "v1_2")

    def get(self, sub_id: str, claims: dict) -> Subscription:
        s = self.subs.get(sub_id)
        if s is None or s.expiration <= self.clock.now():
            self.subs.pop(sub_id, None)
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        if s.app_id != claims.get("appid"):
            raise GraphError(403, "ExtensionError", "Access is denied.")
        return s

    def renew(self, sub_id: str, body: dict, claims: dict) -> Subscription:
        s = self.get(sub_id, claims)
        if body.get("lifecycleNotificationUrl"):
            raise GraphError(400, "InvalidRequest",
                             "lifecycleNotificationUrl can only be set when the subscription is created.")
        if "expirationDateTime" in body:
            s.expiration = self._check_expiry(body["expirationDateTime"])
        if "notificationUrl" in body:
            s.notification_url = self._check_url(body["notificationUrl"], "notificationUrl")
        return s

    # -- notifications ---------------------------------------------------------------
    def on_change(self, oid: str, change: str, item_id: str, change_key: str) -> None:
        now = self.clock.now()
        for s in list(self.subs.values()):
            if s.owner_oid != oid or change not in s.change_types or s.expiration <= now:
                continue
            res = f"Users/{oid}/Events/{item_id}"
            body = {"value": [{
                "subscriptionId": s.id, "subscriptionExpirationDateTime": fmt_ts(s.expiration),
                "changeType": change, "resource": res,
                "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": res,
                                 "@odata.etag": f'W/"{change_key}"', "id": item_id},
                "clientState": s.client_state, "tenantId": s.tenant}]}
            self._q.put((s.notification_url, body, "notification", s.id, 0))

    def lifecycle(self, sub_id: str, event: str) -> None:
        s = self.subs.get(sub_id)
        if s is None:
            raise KeyError(sub_id)
        if event not in ("subscriptionRemoved", "missed", "reauthorizationRequired"):
            raise ValueError(event)
        body = {"value": [{"subscriptionId": s.id,
                           "subscriptionExpirationDateTime": fmt_ts(s.expiration),
                           "tenantId": s.tenant, "clientState": s.client_state,
                           "lifecycleEvent": event}]}
        if event == "subscriptionRemoved":
            del self.subs[sub_id]
        self._q.put((s.lifecycle_url or s.notification_url, body, "lifecycle", s.id, 0))

    def log(self) -> list[dict]:
        with self._log_lock:
            return list(self.deliveries)
