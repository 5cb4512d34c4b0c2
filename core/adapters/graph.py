"""Microsoft Graph calendar client over plain REST (no Graph SDK: cold start).

Owns: authentication headers, retries (429/503/504 honour a possibly fractional
``Retry-After``, else exponential backoff; a dropped connection is retried; a 401 is
retried once with a fresh token), paging through ``@odata.nextLink`` verbatim,
``$batch`` in chunks of 20 with per-item retries, and Graph's error shape turned into
``GraphError`` with the code and request id (GRAPH.md section 6). Never logs tokens.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import requests

from core.adapters import logs

log = logging.getLogger(__name__)

TokenProvider = Callable[..., str]
PREFER_UTC = 'outlook.timezone="UTC"'
PREFER_IMMUTABLE = 'IdType="ImmutableId"'
#: Bodies as text (GRAPH.md 1): nothing active (script, event handlers) comes in from Outlook (issue 10).
PREFER_TEXT_BODY = 'outlook.body-content-type="text"'
DEFAULT_PREFER = (PREFER_UTC, PREFER_IMMUTABLE, PREFER_TEXT_BODY)
BATCH_LIMIT = 20
#: The largest page Graph serves: calendarView's ``$top`` is at most 1000 (GRAPH.md 1) and
#: ``Prefer: odata.maxpagesize`` asks delta for as much (GRAPH.md 2); Graph may answer
#: smaller pages, which ``@odata.nextLink`` then carries on (issue 14: 2 requests, not 52,
#: for a 1,500-item window).
MAX_PAGE_SIZE = 1000


class GraphError(Exception):
    """A Graph call failed; ``status`` and ``code`` as Graph gave them."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "", retry_after: float | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(f"Graph {status} {code}: {message}" + (f" (request-id {request_id})" if request_id else ""))

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def transient(self) -> bool:
        return self.status in (429, 500, 502, 503, 504) or self.status == 0


class DeltaExpired(GraphError):
    """The delta token is no longer valid: start a new round (GRAPH.md section 2)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_total_wait: float = 300.0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def error_from(status: int, body: Any, headers: Mapping[str, str]) -> GraphError:
    code, message, request_id = "", "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code", ""))
        message = str(err.get("message", ""))
        inner = err.get("innerError") or err.get("innererror") or {}
        request_id = str(inner.get("request-id", "")) if isinstance(inner, dict) else ""
    request_id = request_id or headers.get("request-id", "")
    cls = DeltaExpired if status == 410 or code in ("syncStateNotFound", "resyncRequired", "SyncStateNotFound") else GraphError
    return cls(status, code or f"HTTP{status}", message, request_id, _retry_after(headers))


def _with_prefer(request: dict[str, Any]) -> dict[str, Any]:
    headers = dict(request.get("headers") or {})
    if not any(k.lower() == "prefer" for k in headers):
        headers["Prefer"] = ", ".join(DEFAULT_PREFER)
    return {**request, "headers": headers}


class GraphClient:
    """Calls Graph for one user with their token provider."""

    def __init__(
        self,
        base_url: str,
        token: TokenProvider,
        session: requests.Session,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        user_path: str = "/me",
    ):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session = session
        self._retry = retry
        self._sleep = sleep
        self.user_path = user_path

    def url(self, path: str) -> str:
        if path.startswith("https://") or path.startswith("http://"):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        prefer: tuple[str, ...] = DEFAULT_PREFER,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """One call with retries; returns (status, parsed body or None, headers)."""
        url = self.url(path)
        waited = 0.0
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            hdrs = {"Authorization": f"Bearer {self._token(force_refresh=refreshed)}", "Accept": "application/json"}
            if prefer:
                hdrs["Prefer"] = ", ".join(prefer)
            hdrs.update(headers or {})
            try:
                resp = self._session.request(method, url, params=params, json=json_body, headers=hdrs)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                status, body, rheaders = 0, None, {}
                err = GraphError(0, "ConnectionError", type(exc).__name__)
            else:
                status, rheaders = resp.status_code, resp.headers
                try:
                    body = resp.json() if resp.content else None
                except ValueError:
                    body = None
                if status < 400:
                    return status, body, rheaders
                err = error_from(status, body, rheaders)
            if status == 401 and not refreshed:
                refreshed = True  # an expired access token: refresh once
                continue
            if not err.transient or attempt >= self._retry.max_attempts:
                raise err
            delay = err.retry_after if err.retry_after is not None else min(
                self._retry.max_delay, self._retry.base_delay * 2 ** (attempt - 1)
            )
            if waited + delay > self._retry.max_total_wait:
                raise err
            logs.info(log, "graph call retried", status=status, graph_code=err.code, delay=delay)
            self._sleep(delay)
            waited += delay

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)[1]

    def pages(self, path: str, params: Mapping[str, Any] | None = None, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following ``@odata.nextLink`` verbatim."""
        prefer = (*DEFAULT_PREFER, f"odata.maxpagesize={page_size}")
        body = self.request("GET", path, params=params, prefer=prefer)[1] or {}
        while True:
            yield body
            nxt = body.get("@odata.nextLink")
            if not nxt:
                return
            body = self.request("GET", nxt, prefer=prefer)[1] or {}

    def items(self, path: str, params: Mapping[str, Any] | None = None, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        for page in self.pages(path, params, page_size):
            yield from page.get("value", [])

    def batch(self, requests_: list[dict[str, Any]]) -> dict[str, tuple[int, Any]]:
        """Run requests through ``$batch`` (20 at a time); per-item 429/503 are retried.

        Each request is ``{"id", "method", "url" (relative to the version root), ...}``.
        Returns id -> (status, body) for every request. Graph applies no header of the
        envelope to its items, so each item gets this client's ``Prefer`` (UTC times,
        immutable ids, text bodies) unless it carries its own.
        """
        requests_ = [_with_prefer(r) for r in requests_]
        results: dict[str, tuple[int, Any]] = {}
        pending = list(requests_)
        rounds = 0
        while pending:
            rounds += 1
            retry: list[dict[str, Any]] = []
            longest = 0.0
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                by_id = {r["id"]: r for r in chunk}
                body = self.request("POST", "$batch", json_body={"requests": chunk})[1] or {}
                for item in body.get("responses", []):
                    status = int(item.get("status", 0))
                    if status in (429, 503, 504) and rounds < self._retry.max_attempts:
                        retry.append(by_id[item["id"]])
                        longest = max(longest, _retry_after(item.get("headers") or {}) or 2.0 ** rounds)
                    else:
                        results[item["id"]] = (status, item.get("body"))
            pending = retry
            if pending:
                self._sleep(min(longest, self._retry.max_delay))
        return results
