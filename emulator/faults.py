"""Fault injection and Outlook-style throttling.

Owns: the queue of injected faults (429, 503, 504, drop, slow, expired_token and
wrong_tenant), each consumed by the next matching request (by mailbox UPN and/or path
substring), and the per (app id, mailbox) throttle: at most ``max_concurrent`` requests
in flight and ``budget`` requests per ``window_seconds`` (Outlook: 4, 10,000 per 10 min),
answering 429 with a (possibly fractional) ``Retry-After``.
"""
from __future__ import annotations

import collections
import itertools
import threading
from dataclasses import dataclass

FAULT_KINDS = ("429", "503", "504", "drop", "slow", "expired_token", "wrong_tenant")


@dataclass
class Fault:
    id: int
    kind: str
    count: int
    upn: str | None = None
    route: str | None = None
    retry_after: float | str | None = None
    delay: float | None = None

    def matches(self, upn: str | None, path: str) -> bool:
        if self.upn and (upn or "").lower() != self.upn.lower():
            return False
        if self.route and self.route.lower() not in path.lower():
            return False
        return True

    def public(self) -> dict:
        return {"id": self.id, "kind": self.kind, "remaining": self.count, "upn": self.upn,
                "route": self.route, "retry_after": self.retry_after, "delay": self.delay}


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, kind: str, count: int = 1, upn: str | None = None, route: str | None = None,
            retry_after=None, delay: float | None = None) -> Fault:
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        f = Fault(next(self._ids), kind, int(count), upn, route, retry_after, delay)
        with self._lock:
            self._faults.append(f)
        return f

    def take(self, upn: str | None, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """Consume one matching fault of one of ``kinds`` (first injected first)."""
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and f.count > 0 and f.matches(upn, path):
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return [f.public() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class Throttle:
    """Outlook's per app + mailbox limits."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.max_concurrent = 4
        self.budget = 10000
        self.window_seconds = 600.0
        self.concurrency_retry_after = 1.0
        self._active: dict = collections.Counter()
        self._times: dict = collections.defaultdict(collections.deque)

    def configure(self, max_concurrent=None, budget=None, window_seconds=None,
                  concurrency_retry_after=None) -> dict:
        with self._lock:
            if max_concurrent is not None:
                self.max_concurrent = int(max_concurrent)
            if budget is not None:
                self.budget = int(budget)
            if window_seconds is not None:
                self.window_seconds = float(window_seconds)
            if concurrency_retry_after is not None:
                self.concurrency_retry_after = float(concurrency_retry_after)
            self._times.clear()
            return self.settings()

    def settings(self) -> dict:
        return {"max_concurrent": self.max_concurrent, "budget": self.budget,
                "window_seconds": self.window_seconds,
                "concurrency_retry_after": self.concurrency_retry_after}

    def enter(self, key, concurrent: bool = True) -> float | None:
        """Admit a request: None, or the Retry-After seconds of a 429."""
        now = self.clock.now().timestamp()
        with self._lock:
            times = self._times[key]
            while times and times[0] <= now - self.window_seconds:
                times.popleft()
            if len(times) >= self.budget:
                return max(round(times[0] + self.window_seconds - now, 3), 0.001)
            if concurrent and self._active[key] >= self.max_concurrent:
                return self.concurrency_retry_after
            times.append(now)
            if concurrent:
                self._active[key] += 1
            return None

    def leave(self, key) -> None:
        with self._lock:
            self._active[key] -= 1
            if self._active[key] <= 0:
                del self._active[key]

    def reset(self) -> None:
        with self._lock:
            self._times.clear()
