"""The emulator's whole state, shared by the HTTP routers and the control API.

Owns: the lock that serialises every read and write of the directory and mailboxes,
the clock, the directory (identity), the store (mailboxes), faults, throttle,
subscriptions, the request log (never tokens, codes or secrets) and ``seed``.
"""
from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode

from .faults import Faults, Throttle
from .identity import Directory
from .store import Store
from .subscriptions import Subscriptions
from .timeutil import Clock, fmt_ts

SECRET_PARAMS = {"code", "client_secret", "refresh_token", "access_token", "id_token",
                 "assertion", "client_assertion", "code_verifier", "validationtoken", "state",
                 "session_state"}


def redact_query(raw: str) -> str:
    pairs = parse_qsl(raw, keep_blank_values=True)
    return urlencode([(k, "REDACTED" if k.lower() in SECRET_PARAMS else v) for k, v in pairs])


class EmulatorState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.directory = Directory(self.clock)
        self.subscriptions = Subscriptions(self.clock, self.directory)
        self.store = Store(self.directory, self.clock, self.subscriptions.on_change)
        self.faults = Faults()
        self.throttle = Throttle(self.clock)
        self._log: list[dict] = []
        self._log_lock = threading.Lock()
        self.batch_order_seed: int | None = None
        self.delta_page_size = 10
        self.max_page_size = 1000  # the largest page served, whatever the client prefers

    def log_request(self, req, status: int) -> None:
        entry = {"time": fmt_ts(self.clock.now()), "method": req.method, "path": req.path,
                 "query": redact_query(req.raw_query), "status": status,
                 "user": req.context.get("user"), "fault": req.context.get("fault"),
                 "batch": req.in_batch, "prefer": req.headers.get("Prefer", "") or ""}
        if req.context.get("retry_after") is not None:
            entry["retry_after"] = req.context["retry_after"]
        with self._log_lock:
            self._log.append(entry)

    def requests_log(self) -> list[dict]:
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def reset(self) -> None:
        """Forget everything (directory, mailboxes, faults, log, subscriptions)."""
        with self.lock:
            self.clock.set_now(None)
            self.directory.tenants.clear()
            self.directory.apps.clear()
            self.directory.users.clear()
            self.directory.codes.clear()
            self.directory.refresh_tokens.clear()
            self.directory.access_token_lifetime = 3600
            self.store.mailboxes.clear()
            self.subscriptions.subs.clear()
            with self.subscriptions._log_lock:
                self.subscriptions.deliveries.clear()
            self.faults.clear()
            self.throttle.configure(4, 10000, 600.0, 1.0)
            self.max_page_size = 1000
            self.clear_log()
