"""The local stand-in for the Azure Functions host (Core Tools cannot be installed here).

Owns: running the function app's *own* registered functions, read from
``function_app.app.get_functions()`` (no second list):

- HTTP triggers on 127.0.0.1 (route, methods, auth level; ``host.json``'s route prefix).
  Function-level routes need a key (``?code=`` or ``x-functions-key``), as in Azure.
- Timer triggers on their NCRONTAB schedule (``%Setting%`` resolved from the
  environment), and on demand through ``POST /admin/functions/<name>`` as Core Tools
  offers.
- Queue triggers polling Azurite with ``host.json``'s ``extensions.queues``: base64
  bodies, ``batchSize``, ``maxPollingInterval``, ``visibilityTimeout`` before a retry and
  ``maxDequeueCount`` after which the message moves to ``<queue>-poison``.

``GET /admin/host/status`` reports in-flight invocations and queue depths, so tests and
the demo can wait until the app is idle.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueServiceClient
from croniter import croniter

log = logging.getLogger("devhost")


_INDEXED: dict[int, list[Any]] = {}
_INDEX_LOCK = threading.Lock()


def functions_of(app: func.FunctionApp) -> list[Any]:
    """The app's functions, indexed once: like the worker, ``get_functions()`` validates
    and records the names, so a second call on the same app fails as a duplicate."""
    with _INDEX_LOCK:
        if id(app) not in _INDEXED:
            _INDEXED[id(app)] = list(app.get_functions())
        return _INDEXED[id(app)]


def _duration(value: str | None, default: float) -> float:
    """host.json 'hh:mm:ss' -> seconds."""
    if not value:
        return default
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def resolve_setting(value: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """Replace ``%Name%`` binding expressions with app settings, as the host does."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise KeyError(f"binding expression %{name}% names an app setting that is not set")
        return environ[name]

    return re.sub(r"%([^%]+)%", sub, value)


@dataclass
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 2.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, data: dict[str, Any]) -> "QueueOptions":
        q = (data.get("extensions") or {}).get("queues") or {}
        return cls(
            batch_size=int(q.get("batchSize", 16)),
            new_batch_threshold=int(q.get("newBatchThreshold", 8)),
            max_polling_interval=_duration(q.get("maxPollingInterval"), 2.0),
            visibility_timeout=_duration(q.get("visibilityTimeout"), 0.0),
            max_dequeue_count=int(q.get("maxDequeueCount", 5)),
            message_encoding=str(q.get("messageEncoding", "base64")),
        )


@dataclass
class Invocation:
    function: str
    trigger: str
    ok: bool
    error: str = ""
    at: float = field(default_factory=time.time)


class LocalHost:
    """Runs one FunctionApp's functions locally until ``stop()``."""

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        root: Path,
        environ: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 7071,
        function_key: str | None = None,
        run_timers: bool = True,
        run_queues: bool = True,
        poll_floor: float = 0.1,
        queue_overrides: dict[str, Any] | None = None,
    ):
        self.environ = environ if environ is not None else dict(os.environ)
        self.host_json = json.loads((root / "host.json").read_text(encoding="utf-8"))
        self.route_prefix = ((self.host_json.get("extensions") or {}).get("http") or {}).get("routePrefix", "api")
        self.queue_options = QueueOptions.from_host_json(self.host_json)
        for key, value in (queue_overrides or {}).items():
            setattr(self.queue_options, key, value)
        self.function_key = function_key or secrets.token_urlsafe(24)
        self.run_timers = run_timers
        self.run_queues = run_queues
        self.poll_floor = poll_floor
        self.functions = functions_of(app)
        self.http_routes: list[tuple[re.Pattern[str], set[str], str, Any]] = []
        self.timers: dict[str, tuple[str, Callable[..., Any]]] = {}
        self.queues: dict[str, tuple[str, str, Callable[..., Any]]] = {}
        self.invocations: list[Invocation] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._index()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"

    # -- indexing ----------------------------------------------------------------------

    def _index(self) -> None:
        for fn in self.functions:
            name = fn.get_function_name()
            trigger = fn.get_trigger().get_dict_repr()
            user_fn = fn.get_user_function()
            kind = trigger["type"]
            if kind == "httpTrigger":
                route = trigger.get("route") or name
                prefix = f"{self.route_prefix}/" if self.route_prefix else ""
                pattern = re.compile("^/" + re.escape(prefix + route).replace(r"\{", "{").replace(r"\}", "}") + "$")
                pattern = re.compile(re.sub(r"\{(\w+)(:\w+)?\??\}", r"(?P<\1>[^/]+)", pattern.pattern))
                methods = {str(getattr(m, "value", m)).upper() for m in trigger.get("methods") or ["GET", "POST"]}
                auth = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "function")).lower()
                self.http_routes.append((pattern, methods, auth, (name, user_fn, trigger["name"])))
            elif kind == "timerTrigger":
                self.timers[name] = (resolve_setting(trigger["schedule"], self.environ), user_fn)
            elif kind == "queueTrigger":
                queue = resolve_setting(trigger["queueName"], self.environ)
                conn = self.environ.get(trigger.get("connection") or "AzureWebJobsStorage", "")
                if not conn:
                    raise KeyError(f"{name}: connection setting {trigger.get('connection')!r} is not set")
                self.queues[name] = (queue, conn, user_fn)
            else:
                raise ValueError(f"{name}: trigger type {kind!r} is not supported by the local host")

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "LocalHost":
        self._started = True
        self._spawn(self._server.serve_forever, "http")
        for name in self.queues if self.run_queues else ():
            self._spawn(lambda n=name: self._poll_queue(n), f"queue:{name}")
        if self.run_timers:
            for name in self.timers:
                self._spawn(lambda n=name: self._run_timer(n), f"timer:{name}")
        return self

    def stop(self) -> None:
        self._stop.set()
        if getattr(self, "_started", False):  # shutdown() waits for a serve_forever that never ran
            self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=10)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=f"devhost-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _record(self, inv: Invocation) -> None:
        with self._lock:
            self.invocations.append(inv)
            del self.invocations[:-1000]

    # -- timers --------------------------------------------------------------------------

    def next_run(self, name: str, after: datetime) -> datetime:
        schedule = self.timers[name][0]
        fields = schedule.split()
        it = croniter(schedule, after, second_at_beginning=len(fields) == 6)
        return it.get_next(datetime)

    def run_timer_now(self, name: str, past_due: bool = False) -> None:
        _, user_fn = self.timers[name]
        self._invoke(name, "timer", lambda: user_fn(TimerRequest(past_due=past_due)))

    def _run_timer(self, name: str) -> None:
        nxt = self.next_run(name, datetime.now(timezone.utc))
        while not self._stop.is_set():
            wait = (nxt - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                self._stop.wait(min(wait, 1.0))
                continue
            self.run_timer_now(name, past_due=wait < -60)
            nxt = self.next_run(name, datetime.now(timezone.utc))

    # -- queues --------------------------------------------------------------------------

    def _queue_client(self, conn: str, queue: str):  # type: ignore[no-untyped-def]
        service = QueueServiceClient.from_connection_string(conn)
        client = service.get_queue_client(queue)
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        return service, client

    def _decode(self, raw: str) -> bytes:
        if self.queue_options.message_encoding == "none":
            return raw.encode("utf-8")
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("message is not base64 (host.json messageEncoding is base64)") from exc

    def _poll_queue(self, name: str) -> None:
        queue, conn, user_fn = self.queues[name]
        service, client = self._queue_client(conn, queue)
        poison = service.get_queue_client(f"{queue}-poison")
        try:
            poison.create_queue()
        except ResourceExistsError:
            pass
        opts = self.queue_options
        idle = self.poll_floor
        lease = 300  # seconds a message stays invisible while its invocation runs
        while not self._stop.is_set():
            try:
                batch = list(client.receive_messages(messages_per_page=opts.batch_size, max_messages=opts.batch_size,
                                                     visibility_timeout=lease))
            except Exception as exc:  # noqa: BLE001 - storage hiccup: log, back off, poll again
                log.warning("queue poll failed: %s", type(exc).__name__)
                self._stop.wait(1.0)
                continue
            if not batch:
                self._stop.wait(idle)
                idle = min(opts.max_polling_interval, idle * 2)
                continue
            idle = self.poll_floor
            for message in batch:
                self._handle_message(name, user_fn, client, poison, message)

    def _handle_message(self, name: str, user_fn: Callable[..., Any], client: Any, poison: Any, message: Any) -> None:
        opts = self.queue_options
        with self._lock:
            self._in_flight += 1
        try:
            try:
                body = self._decode(message.content)
                qm = QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                                  pop_receipt=message.pop_receipt, insertion_time=message.inserted_on,
                                  expiration_time=message.expires_on, time_next_visible=message.next_visible_on)
                user_fn(qm)
            except Exception as exc:  # noqa: BLE001 - the host catches every failure of a function
                self._record(Invocation(name, "queue", False, f"{type(exc).__name__}: {exc}"))
                log.warning("%s failed (dequeue %s): %s: %s", name, message.dequeue_count, type(exc).__name__, exc)
                if message.dequeue_count >= opts.max_dequeue_count:
                    poison.send_message(message.content)
                    client.delete_message(message.id, message.pop_receipt)
                    log.warning("%s: message %s moved to %s", name, message.id, poison.queue_name)
                else:
                    client.update_message(message.id, message.pop_receipt,
                                          visibility_timeout=int(opts.visibility_timeout))
                return
            client.delete_message(message.id, message.pop_receipt)
            self._record(Invocation(name, "queue", True))
        finally:
            with self._lock:
                self._in_flight -= 1

    def status(self) -> dict[str, Any]:
        depths: dict[str, int] = {}
        for queue, conn, _ in self.queues.values():
            service = QueueServiceClient.from_connection_string(conn)
            for qname in (queue, f"{queue}-poison"):
                client = service.get_queue_client(qname)
                try:
                    depths[qname] = len(list(client.peek_messages(max_messages=32)))
                except Exception:  # noqa: BLE001 - a queue not made yet is empty
                    depths[qname] = 0
        with self._lock:
            in_flight = self._in_flight
            failures = [i.__dict__ for i in self.invocations if not i.ok][-20:]
        return {"in_flight": in_flight, "queues": depths, "recent_failures": failures}

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> dict[str, Any]:
        """Block until no message is queued or running (poison queues aside)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            st = self.status()
            busy = st["in_flight"] or any(n for q, n in st["queues"].items() if not q.endswith("-poison"))
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return st
            time.sleep(0.1)
        raise TimeoutError(f"local host still busy after {timeout}s: {self.status()}")

    # -- invocation ---------------------------------------------------------------------

    def _invoke(self, name: str, trigger: str, call: Callable[[], Any]) -> Any:
        with self._lock:
            self._in_flight += 1
        try:
            result = call()
            self._record(Invocation(name, trigger, True))
            return result
        except Exception as exc:
            self._record(Invocation(name, trigger, False, f"{type(exc).__name__}: {exc}"))
            log.error("%s failed: %s", name, "".join(traceback.format_exception_only(type(exc), exc)).strip())
            raise
        finally:
            with self._lock:
                self._in_flight -= 1

    # -- HTTP ----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:  # the query may hold a code or state
                log.debug("%s %s", self.command, urlsplit(self.path).path)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: Any) -> None:
                self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

            def _dispatch(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                if parts.path.startswith("/admin/"):
                    return self._admin(parts.path, params)
                for pattern, methods, auth, (name, user_fn, arg) in host.http_routes:
                    match = pattern.match(parts.path)
                    if not match:
                        continue
                    if self.command not in methods:
                        return self._send(405, b"", {"Allow": ", ".join(sorted(methods))})
                    if auth != "anonymous" and not host._key_ok(params, self.headers):
                        return self._send(401, b"", {})
                    clean = {k: v for k, v in params.items() if k != "code" or auth == "anonymous"}
                    req = func.HttpRequest(self.command, f"{host.url}{self.path}", headers=dict(self.headers),
                                           params=clean, route_params=match.groupdict(), body=body)
                    try:
                        resp = host._invoke(name, "http", lambda fn=user_fn, arg=arg, req=req: fn(**{arg: req}))
                    except Exception:  # noqa: BLE001 - the host answers 500 for an unhandled error
                        return self._send(500, b"", {})
                    headers = {k: v for k, v in resp.headers.items()}
                    if resp.mimetype and "Content-Type" not in headers:
                        ctype = resp.mimetype + (f"; charset={resp.charset}" if resp.charset else "")
                        headers["Content-Type"] = ctype
                    return self._send(resp.status_code, resp.get_body() or b"", headers)
                self._send(404, b"", {})

            def _admin(self, path: str, params: dict[str, str]) -> None:
                if not host._key_ok(params, self.headers):
                    return self._send(401, b"", {})
                if path == "/admin/host/status" and self.command == "GET":
                    return self._json(200, host.status())
                m = re.fullmatch(r"/admin/functions/([\w-]+)", path)
                if m and self.command == "POST" and m.group(1) in host.timers:
                    try:
                        host.run_timer_now(m.group(1))
                    except Exception as exc:  # noqa: BLE001 - report the failure to the caller
                        return self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
                    return self._send(202, b"", {})
                return self._send(404, b"", {})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch  # noqa: N815

        return Handler

    def _key_ok(self, params: dict[str, str], headers: Any) -> bool:
        given = params.get("code") or headers.get("x-functions-key") or ""
        return secrets.compare_digest(given, self.function_key)
