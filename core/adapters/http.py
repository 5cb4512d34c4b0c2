"""The one HTTP session factory for outgoing calls (Graph and MSAL).

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

    def __init__(self, verify: str | bool = True, timeout: float = 30.0):
        super().__init__()
        self.verify = verify
        self.default_timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)
