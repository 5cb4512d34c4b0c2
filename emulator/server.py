"""The emulator's HTTPS server (stdlib ``ThreadingHTTPServer`` + ``ssl``).

Owns: ``EmulatorServer`` (start/stop, ``url``, ``ca_bundle``), TLS per connection (the
handshake runs in the connection's thread), reading requests, dispatching by path
(``/_control/`` -> control API, ``/v1.0/`` -> Graph, ``/{tenant}/`` -> Entra ID), writing
responses (including the injected "drop" fault that cuts a body half-way) and logging
each request without secrets.
"""
from __future__ import annotations

import os
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import control_api, graph_api, identity
from .state import EmulatorState
from .tls import ensure_tls, server_context
from .web import Request, Response, graph_error_body, json_response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16            # headers and body leave in one write (no delayed-ACK stalls)
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""

    def setup(self) -> None:
        ctx: ssl.SSLContext = self.server.ssl_context
        self.request.settimeout(30)
        self.request = ctx.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, fmt, *args) -> None:  # quiet; the state keeps its own log
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        em: "EmulatorServer" = self.server.emulator
        req = Request.build(self.command, self.path, dict(self.headers.items()), body, em.url)
        state = em.state
        first = req.segments[0] if req.segments else ""
        try:
            if first == "_control":
                resp = control_api.handle(state, req)
            elif first == "v1.0":
                resp = graph_api.handle(state, req)
            elif first:
                with state.lock:
                    resp = identity.handle(state, req)
            else:
                resp = json_response(200, {"emulator": "Outlook Sync emulator", "url": em.url})
        except Exception as exc:  # an emulator bug: answer 500 in Graph's shape, keep serving
            resp = json_response(500, graph_error_body(
                "InternalServerError", f"emulator error: {type(exc).__name__}: {exc}", "", None))
            em.errors.append(repr(exc))
        if first != "_control":
            state.log_request(req, resp.status)
        self._write(resp)

    def _write(self, resp: Response) -> None:
        self.send_response(resp.status)
        headers = dict(resp.headers)
        headers.setdefault("request-id", headers.get("request-id") or os.urandom(8).hex())
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.drop_after is not None:
            self.wfile.write(resp.body[:resp.drop_after])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        self.wfile.flush()

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:  # TLS/client hang-ups: stay quiet
        pass


class EmulatorServer:
    """The emulator, in-process: ``start()`` serves in threads, ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state_dir: str | None = None):
        self.host = host
        self.port = port
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="outlook-emulator-")
        os.makedirs(self.state_dir, exist_ok=True)
        self.state = EmulatorState()
        self.errors: list[str] = []
        self._tls = ensure_tls(self.state_dir, host)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def ca_bundle(self) -> str:
        return self._tls.ca_cert

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("emulator not started")
        host = self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"https://{host}:{self._httpd.server_address[1]}"

    def start(self) -> "EmulatorServer":
        httpd = _Server((self.host, self.port), _Handler)
        httpd.ssl_context = server_context(self._tls)
        httpd.emulator = self
        self._httpd = httpd
        self.state.subscriptions.verify = self.ca_bundle
        self.state.subscriptions.start()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="emulator-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.state.subscriptions.stop()

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
