"""The one HTTP session factory for outgoing calls (Graph and MSAL).

The composition root builds one per process (``App.session``) and shares it between
Graph and MSAL, so connections (and their TLS handshakes) are reused across calls and
across users (issue 14).

Owns: TLS verification. ``requests`` lets the ``REQUESTS_CA_BUNDLE`` environment
variable override a ``Session.verify`` path whenever a call passes no ``verify=`` of
its own, so a CA bundle set only on the session (MSAL's included) is silently ignored.
This session passes its ``verify`` on every call, so ``TlsCaBundle`` always applies.
"""

from __future__ import annotations

from typing import Any

import requests

USER_AGENT = "outlook-sync-communifire/1.0"


class VerifyingSession(requests.Session):
    """A session whose ``verify`` value is used for every request."""

    def __init__(self, verify: str | bool = True, timeout: float = 30.0, pool_size: int = 32):
        super().__init__()
        self.verify = verify
        self.default_timeout = timeout
        self.headers["User-Agent"] = USER_AGENT
        # One session per process is shared by every sync running on the instance's
        # threads: keep a connection per thread to each host (Graph, the authority).
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)
