"""Fixtures: one emulator per test module (port 0, tmp state dir), a fresh state per test."""
from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from emulator.control import EmulatorControl
from emulator.server import EmulatorServer

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cret-value"
REDIRECT = "https://intranet.example.com/oauth2/outlook/callback"
SCOPES = ["Calendars.ReadWrite", "User.Read"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    em = EmulatorServer(host="127.0.0.1", port=0, state_dir=str(tmp_path_factory.mktemp("emu")))
    em.start()
    yield em
    em.stop()
    assert em.errors == [], em.errors


@pytest.fixture
def ctl(server):
    c = EmulatorControl(server.url, server.ca_bundle)
    c.reset()
    return c


class Tenant:
    """A tenant with the app registered and helpers to get Graph sessions."""

    CLIENT_ID = CLIENT_ID
    CLIENT_SECRET = CLIENT_SECRET
    REDIRECT = REDIRECT
    SCOPES = SCOPES

    def __init__(self, server, ctl):
        self.server = server
        self.ctl = ctl
        self.id = ctl.add_tenant(name="Contoso")
        ctl.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT], self.id)

    def user(self, name: str) -> dict:
        return self.ctl.add_user(self.id, f"{name}@contoso.onmicrosoft.com", name.capitalize() + " Doe")

    def tokens(self, upn: str, scopes=None) -> dict:
        """The auth-code flow by hand (PKCE, nonce) -> token response."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT,
                  "scope": " ".join((scopes or SCOPES) + ["openid", "profile", "offline_access"]),
                  "state": "st", "nonce": "n0", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        loc = self.ctl.sign_in(f"{self.server.url}/{self.id}/oauth2/v2.0/authorize?{urlencode(params)}", upn)
        code = parse_qs(urlsplit(loc).query)["code"][0]
        r = requests.post(f"{self.server.url}/{self.id}/oauth2/v2.0/token", verify=self.server.ca_bundle,
                          data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                "grant_type": "authorization_code", "code": code,
                                "redirect_uri": REDIRECT, "code_verifier": verifier,
                                "client_info": "1"})
        assert r.status_code == 200, r.text
        return r.json()

    def graph(self, upn: str) -> "Graph":
        return Graph(self.server, self.tokens(upn)["access_token"])


class Graph:
    """A tiny Graph client for tests (always verify=ca_bundle)."""

    def __init__(self, server, token: str):
        self.base = server.url + "/v1.0"
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = server.ca_bundle
        self.s.headers["Authorization"] = f"Bearer {token}"

    def req(self, method: str, path: str, **kw) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        return self.s.request(method, url, timeout=30, **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.req("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.req("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw):
        r = self.req(method, path, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        return r.json() if r.content else None

    def all_pages(self, path: str, headers=None) -> list[dict]:
        out, url = [], path
        while url:
            page = self.ok("GET", url, headers=headers)
            out.extend(page["value"])
            url = page.get("@odata.nextLink")
        return out

    def delta_round(self, url: str, headers=None) -> tuple[list[dict], str]:
        out = []
        while True:
            page = self.ok("GET", url, headers=headers)
            out.extend(page["value"])
            if "@odata.deltaLink" in page:
                return out, page["@odata.deltaLink"]
            url = page["@odata.nextLink"]


@pytest.fixture
def tenant(server, ctl):
    return Tenant(server, ctl)


@pytest.fixture
def ev():
    """Builds a Graph event body: ``ev("Title", "2030-01-01T10:00:00", "...T11:00:00")``."""
    return event_body


def event_body(subject: str, start: str, end: str, tz: str = "UTC", **extra) -> dict:
    body = {"subject": subject, "start": {"dateTime": start, "timeZone": tz},
            "end": {"dateTime": end, "timeZone": tz}}
    body.update(extra)
    return body


def new_guid() -> str:
    return str(uuid.uuid4())
