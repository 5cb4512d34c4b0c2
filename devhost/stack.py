"""The whole local system in one process: emulator + local host over a running Azurite.

Owns: wiring the emulator's tenant, app registration and users to the app's settings,
and the browser's part of connecting an Outlook account (follow the sign-in URL, let
the emulated user sign in, follow the redirect back to the callback). Used by
``make demo`` and the integration tests, so both exercise the same code Azure runs.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import requests

from core.app.bootstrap import App, set_app, utcnow
from core.adapters.crypto import new_key
from core.config.settings import FEED_QUEUES, QUEUE_SETTINGS, Settings, parse_settings
from devhost.host import LocalHost
from devhost.services import ROOT


@dataclass
class Stack:
    """A running local system; ``close()`` stops what it started (not Azurite)."""

    connection_string: str
    state_dir: Path
    sync_enabled: bool = True
    single_tenant: bool = True
    clock: Callable[[], datetime] = utcnow
    extra: dict[str, str] = field(default_factory=dict)
    queue_overrides: dict[str, Any] = field(default_factory=dict)
    #: the host's port (0: any free one), function key (None: a new random one) and
    #: whether timers fire on their schedule (``make run``) or only on demand (tests, demo)
    port: int = 0
    function_key: str | None = None
    run_timers: bool = False
    #: False: the host serves HTTP and timers on demand but consumes no queue, so a test
    #: that calls a trigger directly can read what it enqueued without racing the host.
    run_queues: bool = True
    #: Graph change notifications on: NotificationUrl is the local host (plain http on
    #: loopback, which the emulator admits only when told to, as Graph never would).
    notifications: bool = False

    def start(self) -> "Stack":
        from emulator.control import EmulatorControl
        from emulator.server import EmulatorServer

        self.emulator = EmulatorServer(host="127.0.0.1", port=0, state_dir=str(self.state_dir))
        self.emulator.start()
        self.control = EmulatorControl(self.emulator.url, self.emulator.ca_bundle)
        self.tenant_id = self.control.add_tenant(name="Contoso")
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(24)
        self.prefix = "t" + secrets.token_hex(4)
        self.environ = {
            "AzureWebJobsStorage": self.connection_string,
            "OutlookApiClientID": self.client_id,
            "OutlookApiClientSecret": self.client_secret,
            "SAMLTenantID": self.tenant_id,
            "UseSAMLtenantIDForOutlook": "true" if self.single_tenant else "false",
            "EnableCalendarSync": "true" if self.sync_enabled else "false",
            "TokenEncryptionKey": new_key("k1"),
            "SyncSchedule": "0 */15 * * * *",
            "GraphApiBaseUrl": f"{self.emulator.url}/v1.0",
            "AuthorityHost": self.emulator.url,
            "TlsCaBundle": self.emulator.ca_bundle,
            "StorageNamePrefix": self.prefix,
        }
        # Each stack has its own queues (issue 11 item 8): stacks sharing one Azurite never
        # consume each other's messages. The triggers bind these settings (%SyncJobsQueue%...).
        self.environ |= {setting: f"{self.prefix}-{logical}" for logical, setting in QUEUE_SETTINGS.items()}
        self.host = LocalHost(_function_app(), root=ROOT, environ=self.environ | {"SiteUrl": "http://127.0.0.1"},
                              port=self.port, function_key=self.function_key, run_timers=self.run_timers,
                              run_queues=self.run_queues, poll_floor=0.05,
                              queue_overrides={"max_polling_interval": 0.5, **self.queue_overrides})
        self.environ["SiteUrl"] = self.host.url
        if not self.single_tenant:  # multitenant mode needs its allowlist (issue 10); tests widen it via extra
            self.environ["OutlookAllowedTenantIDs"] = self.tenant_id
        if self.notifications:
            self.environ["NotificationUrl"] = self.host.url
            self.control.configure_subscriptions(allow_http=True)
        self.environ.update(self.extra)
        self.settings: Settings = parse_settings(self.environ)
        self.app = App(self.settings, clock=self.clock)
        set_app(self.app)
        self.app.storage.ensure()
        for queue in QUEUE_SETTINGS:
            for name in (queue,) if queue in FEED_QUEUES else (queue, f"{queue}-poison"):
                self.app.storage.queue(name).clear_messages()
        self.control.register_app(self.client_id, self.client_secret, [self.settings.redirect_uri], self.tenant_id,
                                  multitenant=not self.single_tenant)
        self.host.start()
        self.http = requests.Session()
        self.http.trust_env = False
        return self

    def reconfigure(self, **changes: str) -> App:
        """Restart the app with changed settings (e.g. another TokenEncryptionKey), as a new
        deployment of the same function app would; storage and the emulator stay."""
        self.environ.update(changes)
        self.settings = parse_settings(self.environ)
        self.app = App(self.settings, clock=self.clock)
        set_app(self.app)
        return self.app

    def close(self) -> None:
        self.host.stop()
        self.emulator.stop()
        set_app(None)

    # -- acting as Communifire's backend and as the user's browser -----------------------

    def add_user(self, upn: str, name: str = "", tenant_id: str | None = None) -> dict[str, Any]:
        return self.control.add_user(tenant_id or self.tenant_id, upn, name or upn.split("@")[0].title())

    def key_params(self, **params: str) -> dict[str, str]:
        return {"code": self.host.function_key, **params}

    def connect_url(self, user_id: str, upn: str | None = None, **params: str) -> requests.Response:
        """Ask for a user's sign-in link as Communifire's backend does: with the account it
        knows the user by (``upn``; issue 10) and any other connect parameter."""
        extra = {"upn": upn} if upn else {}
        return self.http.get(f"{self.host.url}/oauth2/outlook/connect",
                             params=self.key_params(user=user_id, **extra, **params))

    def callback(self, location: str) -> requests.Response:
        """The browser following Entra's redirect back to our callback."""
        return self.http.get(location, allow_redirects=False)

    def connect(self, user_id: str, upn: str, signs_in_as: str | None = None, **params: str) -> requests.Response:
        """Connect a Communifire user to an emulated mailbox through the real redirects.

        ``signs_in_as``: someone else opens the link and signs in (the account-linking case)."""
        resp = self.connect_url(user_id, upn, **params)
        resp.raise_for_status()
        location = self.control.sign_in(resp.json()["auth_url"], signs_in_as or upn)
        return self.callback(location)

    def status(self, user_id: str) -> requests.Response:
        return self.http.get(f"{self.host.url}/oauth2/outlook/status", params=self.key_params(user=user_id))

    def disconnect(self, user_id: str) -> requests.Response:
        return self.http.post(f"{self.host.url}/oauth2/outlook/disconnect", params=self.key_params(user=user_id))

    def run_timer(self) -> None:
        resp = self.http.post(f"{self.host.url}/admin/functions/sync_timer", params=self.key_params())
        resp.raise_for_status()

    def sync_all(self, timeout: float = 120.0) -> dict[str, Any]:
        """Run the timer once and wait until every job and write is done."""
        self.make_everyone_due()
        self.run_timer()
        return self.host.wait_idle(timeout=timeout)

    def make_everyone_due(self) -> None:
        from dataclasses import replace

        for user in self.app.users.all():
            self.app.users.save(replace(user, next_due_at=None))

    def calendar(self, user_id: str) -> dict[str, Any]:
        from core.cli.main import load_calendar

        return load_calendar(self.app, user_id)

    def feed(self, name: str = "calendar-changes") -> list[dict[str, Any]]:
        """Every message on a Communifire-facing feed so far (read and deleted, as Communifire does)."""
        out = []
        queue = self.app.storage.queue(name)
        while True:
            batch = list(queue.receive_messages(messages_per_page=32, max_messages=32))
            if not batch:
                return out
            for m in batch:
                out.append(json.loads(m.content))
                queue.delete_message(m)

    def dump(self, user_id: str) -> str:
        return json.dumps(self.calendar(user_id), indent=2)


def _function_app():  # imported late: function_app reads nothing at import, but keep it lazy
    import function_app

    return function_app.app
