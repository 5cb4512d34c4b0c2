"""Python client for the emulator's control API, so tests never hand-build paths.

Owns: ``EmulatorControl``, one plain method per ``/_control`` route, plus ``sign_in``
(the browser step of the auth-code flow) and small helpers. Every call passes
``verify=ca_bundle`` explicitly.
"""
from __future__ import annotations

import datetime as _dt
from urllib.parse import quote, urlencode

import requests


class ControlAPIError(RuntimeError):
    def __init__(self, status: int, body):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def _day(value) -> str:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


class EmulatorControl:
    def __init__(self, url: str, ca_bundle: str):
        self.url = url.rstrip("/")
        self.ca_bundle = ca_bundle
        self.session = requests.Session()
        self.session.verify = ca_bundle
        self.session.trust_env = False

    # -- plumbing ------------------------------------------------------------------
    def _call(self, method: str, path: str, body=None, params=None):
        r = self.session.request(method, f"{self.url}/_control/{path}", json=body, params=params,
                                 verify=self.ca_bundle, timeout=60)
        try:
            data = r.json()
        except ValueError:
            data = r.text
        if r.status_code >= 400:
            raise ControlAPIError(r.status_code, data)
        return data

    @staticmethod
    def _u(upn: str) -> str:
        return quote(upn, safe="@")

    # -- directory -----------------------------------------------------------------
    def reset(self) -> None:
        self._call("POST", "reset")

    def seed(self, data: dict) -> dict:
        return self._call("POST", "seed", data)

    def add_tenant(self, tenant_id: str | None = None, name: str = "Contoso",
                   domain: str | None = None) -> str:
        return self._call("POST", "tenants", {"tenant_id": tenant_id, "name": name,
                                              "domain": domain})["id"]

    def tenants(self) -> list[dict]:
        return self._call("GET", "tenants")

    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str],
                     tenant_id: str, multitenant: bool = False) -> dict:
        return self._call("POST", "apps", {"client_id": client_id, "client_secret": client_secret,
                                           "redirect_uris": list(redirect_uris),
                                           "tenant_id": tenant_id, "multitenant": multitenant})

    def add_user(self, tenant_id: str, upn: str, display_name: str, user_id: str | None = None) -> dict:
        return self._call("POST", "users", {"tenant_id": tenant_id, "upn": upn,
                                            "display_name": display_name, "id": user_id})

    def users(self) -> list[dict]:
        return self._call("GET", "users")

    def revoke_consent(self, upn: str) -> None:
        self._call("POST", f"users/{self._u(upn)}/revoke_consent")

    def set_consent_denied(self, upn: str, denied: bool = True) -> None:
        self._call("POST", f"users/{self._u(upn)}/consent_denied", {"denied": denied})

    def set_mailbox_enabled(self, upn: str, enabled: bool = True) -> None:
        self._call("POST", f"users/{self._u(upn)}/mailbox_enabled", {"enabled": enabled})

    def set_webhooks_supported(self, upn: str, supported: bool = True) -> None:
        """False: creating a subscription on this mailbox fails with ``ExtensionError`` (backend 'Unknown')."""
        self._call("POST", f"users/{self._u(upn)}/webhooks_supported", {"supported": supported})

    def expire_access_tokens(self, upn: str | None = None) -> None:
        self._call("POST", "expire_access_tokens", {"upn": upn})

    def set_access_token_lifetime(self, seconds: int) -> None:
        self._call("POST", "token_lifetime", {"seconds": seconds})

    def sign_in(self, authorize_url: str, upn: str) -> str:
        """The browser step: open the authorize URL exactly as given and sign in as ``upn``
        (typed on the sign-in page: a ``login_hint`` in the link only pre-fills it, so this
        may be another account than the link was made for). Returns the redirect Location."""
        r = requests.post(authorize_url, data={"login": upn}, allow_redirects=False, verify=self.ca_bundle,
                          timeout=30)
        if r.status_code in (301, 302, 303, 307):
            return r.headers["Location"]
        if r.status_code == 200 and "<form" in r.text and "action=" in r.text:  # form_post
            import html as _html
            import re
            action = _html.unescape(re.search(r"action='([^']*)'", r.text).group(1))
            fields = [(_html.unescape(k), _html.unescape(v))
                      for k, v in re.findall(r"name='([^']*)' value='([^']*)'", r.text)]
            return action + ("&" if "?" in action else "?") + urlencode(fields)
        raise ControlAPIError(r.status_code, r.text)

    # -- Outlook client actions (as the mailbox owner) -------------------------------
    def create_event(self, upn: str, event: dict) -> dict:
        return self._call("POST", f"outlook/{self._u(upn)}/events", event)

    def update_event(self, upn: str, event_id: str, changes: dict) -> dict:
        return self._call("PATCH", f"outlook/{self._u(upn)}/events/{quote(event_id, safe='')}", changes)

    def delete_event(self, upn: str, event_id: str) -> None:
        self._call("DELETE", f"outlook/{self._u(upn)}/events/{quote(event_id, safe='')}")

    def _action(self, upn: str, event_id: str, action: str, body: dict):
        return self._call("POST", f"outlook/{self._u(upn)}/events/{quote(event_id, safe='')}/{action}", body)

    def edit_occurrence(self, upn: str, master_id: str, original_start, changes: dict) -> dict:
        """O1. ``original_start``: the slot's local date (``2024-03-05``) or its start instant."""
        return self._action(upn, master_id, "edit_occurrence", {"date": _day(original_start),
                                                               "changes": changes})

    def edit_following(self, upn: str, master_id: str, from_date, changes: dict) -> dict:
        """O2. Returns the new series master."""
        return self._action(upn, master_id, "edit_following", {"from_date": _day(from_date),
                                                               "changes": changes})

    def invite_following(self, upn: str, master_id: str, from_date, attendees: list) -> dict:
        """O3. ``attendees``: addresses or Graph attendee dicts. Returns the new series master."""
        return self._action(upn, master_id, "invite_following", {"from_date": _day(from_date),
                                                                 "attendees": attendees})

    def invite_occurrence(self, upn: str, master_id: str, date, attendees: list) -> dict:
        return self._action(upn, master_id, "invite_occurrence", {"date": _day(date),
                                                                  "attendees": attendees})

    def change_series(self, upn: str, master_id: str, changes: dict) -> dict:
        """O4/O5. Returns the master."""
        return self._action(upn, master_id, "change_series", {"changes": changes})

    def delete_occurrence(self, upn: str, master_id: str, date) -> None:
        """O7."""
        self._action(upn, master_id, "delete_occurrence", {"date": _day(date)})

    def respond(self, upn: str, event_id: str, response: str) -> None:
        """``accept`` | ``decline`` | ``tentativelyAccept`` on a master, occurrence or single."""
        self._action(upn, event_id, "respond", {"response": response})

    def mailbox(self, upn: str) -> list[dict]:
        return self._call("GET", f"mailbox/{self._u(upn)}")

    def find_events(self, upn: str, subject: str) -> list[dict]:
        """Items of ``upn``'s mailbox whose subject equals ``subject`` (helper)."""
        return [e for e in self.mailbox(upn) if e.get("subject") == subject]

    # -- faults, throttling, clock, logs ---------------------------------------------
    def inject_fault(self, kind, count: int = 1, upn: str | None = None, route: str | None = None,
                     retry_after=None, delay: float | None = None) -> dict:
        return self._call("POST", "faults", {"kind": str(kind), "count": count, "upn": upn,
                                             "route": route, "retry_after": retry_after,
                                             "delay": delay})

    def pending_faults(self) -> list[dict]:
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def requests_log(self) -> list[dict]:
        return self._call("GET", "requests")

    def clear_requests_log(self) -> None:
        self._call("DELETE", "requests")

    def set_throttle(self, max_concurrent: int | None = None, budget: int | None = None,
                     window_seconds: float | None = None,
                     concurrency_retry_after: float | None = None) -> dict:
        return self._call("POST", "throttle", {"max_concurrent": max_concurrent, "budget": budget,
                                               "window_seconds": window_seconds,
                                               "concurrency_retry_after": concurrency_retry_after})

    def set_now(self, iso: str | None) -> str:
        """Freeze the emulator clock at ``iso`` (None: real time again)."""
        return self._call("POST", "clock", {"now": iso})["now"]

    def advance_clock(self, seconds: float) -> str:
        return self._call("POST", "clock/advance", {"seconds": seconds})["now"]

    def now(self) -> str:
        return self._call("GET", "clock")["now"]

    def expire_delta_tokens(self, upn: str | None = None) -> None:
        self._call("POST", "delta/expire", {"upn": upn})

    def set_delta_page_size(self, size: int) -> None:
        self._call("POST", "delta/page_size", {"size": size})

    def set_max_page_size(self, size: int) -> None:
        """The largest page the emulator serves, whatever ``odata.maxpagesize`` asks (1..1000)."""
        self._call("POST", "page_size/max", {"size": size})

    def set_batch_order_seed(self, seed: int | None) -> None:
        self._call("POST", "batch_order", {"seed": seed})

    # -- subscriptions ---------------------------------------------------------------
    def subscriptions(self) -> list[dict]:
        return self._call("GET", "subscriptions")

    def configure_subscriptions(self, allow_http: bool | None = None, max_minutes: int | None = None,
                                verify=None, delivery_timeout: float | None = None,
                                retry_delays: list[float] | None = None) -> None:
        body = {k: v for k, v in (("allow_http", allow_http), ("max_minutes", max_minutes),
                                  ("verify", verify), ("delivery_timeout", delivery_timeout),
                                  ("retry_delays", retry_delays)) if v is not None}
        self._call("POST", "subscriptions/config", body)

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        self._call("POST", f"subscriptions/{subscription_id}/lifecycle", {"event": event})

    def notifications(self, drain: bool = True) -> list[dict]:
        """Validation and notification deliveries so far (waits for queued ones by default)."""
        return self._call("GET", "notifications", params={"drain": "1" if drain else "0"})
