"""Connecting and disconnecting an Outlook account, against Azurite and the emulator.

Every bad case of SPEC section 7 gets its own clear page and stores nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import uuid

import pytest

pytestmark = pytest.mark.slow

ALICE = "alice@contoso.com"


def users_rows(stack):
    return list(stack.app.storage.table("Users").list_entities())


def flows_rows(stack):
    return list(stack.app.storage.table("AuthFlows").list_entities())


def query(url):
    return dict(parse_qsl(urlsplit(url).query))


def with_query(url, **changes):
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query))
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


def test_connect_happy_path_stores_an_encrypted_token_cache_and_marks_the_user_connected(stack):
    stack.add_user(ALICE)
    resp = stack.connect_url("1001", ALICE)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    auth_url = resp.json()["auth_url"]
    params = query(auth_url)
    # MSAL's auth-code flow: state, nonce and PKCE (S256) on the sign-in URL.
    assert params["code_challenge_method"] == "S256" and params["state"] and params["nonce"]
    assert params["redirect_uri"] == stack.settings.redirect_uri
    assert len(flows_rows(stack)) == 1  # the flow waits server-side, keyed by state

    location = stack.control.sign_in(auth_url, ALICE)
    page = stack.callback(location)
    assert page.status_code == 200 and "Outlook calendar connected" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer" and "no-store" in page.headers["Cache-Control"]

    assert flows_rows(stack) == []  # single use: deleted on redemption
    user = stack.app.users.get("1001")
    assert user.state == "connected" and user.upn == ALICE and user.tenant_id == stack.tenant_id
    row = users_rows(stack)[0]
    cache_text = "".join(str(v) for k, v in row.items() if k.startswith("TokenCache"))
    assert cache_text.startswith("v1.k1.") and "refresh_token" not in cache_text.lower()


def test_connect_can_answer_with_a_redirect(stack):
    resp = stack.http.get(f"{stack.host.url}/oauth2/outlook/connect", params=stack.key_params(user="1001", upn=ALICE, redirect="1"),
                          allow_redirects=False)
    assert resp.status_code == 302 and resp.headers["Location"].startswith(stack.emulator.url)


def test_connect_needs_the_function_key(stack):
    resp = stack.http.get(f"{stack.host.url}/oauth2/outlook/connect", params={"user": "1001"})
    assert resp.status_code == 401 and flows_rows(stack) == []


def test_connect_refuses_a_missing_or_malformed_user_id(stack):
    for params in ({}, {"user": ""}, {"user": "a/b#c"}):
        resp = stack.http.get(f"{stack.host.url}/oauth2/outlook/connect", params=stack.key_params(**params))
        assert resp.status_code == 400 and "user" in resp.json()["message"]
    assert flows_rows(stack) == []


def test_connect_is_refused_with_a_clear_message_when_calendar_sync_is_disabled(make_stack):
    stack = make_stack(sync_enabled=False)
    resp = stack.connect_url("1001", ALICE)
    assert resp.status_code == 403 and "EnableCalendarSync" in resp.json()["message"]
    assert flows_rows(stack) == []


def test_access_denied_gets_its_own_page_and_stores_nothing(stack):
    stack.add_user(ALICE)
    stack.control.set_consent_denied(ALICE)
    location = stack.control.sign_in(stack.connect_url("1001", ALICE).json()["auth_url"], ALICE)
    assert query(location)["error"] == "access_denied"
    page = stack.callback(location)
    assert page.status_code == 403 and "Permission not given" in page.text
    assert users_rows(stack) == [] and flows_rows(stack) == []


def test_a_replayed_state_is_refused_and_changes_nothing(stack):
    stack.add_user(ALICE)
    location = stack.control.sign_in(stack.connect_url("1001", ALICE).json()["auth_url"], ALICE)
    assert stack.callback(location).status_code == 200
    before = users_rows(stack)
    replay = stack.callback(location)
    assert replay.status_code == 400 and "no longer valid" in replay.text
    assert users_rows(stack) == before


def test_a_missing_or_unknown_state_is_refused(stack):
    stack.add_user(ALICE)
    location = stack.control.sign_in(stack.connect_url("1001", ALICE).json()["auth_url"], ALICE)
    missing = stack.callback(with_query(location, state=""))
    assert missing.status_code == 400 and "without a sign-in request" in missing.text
    forged = stack.callback(with_query(location, state="forged-state-value"))
    assert forged.status_code == 400 and "no longer valid" in forged.text
    assert users_rows(stack) == []


def test_an_expired_state_is_refused_and_stores_nothing(azurite, tmp_path):
    from devhost.stack import Stack

    clock = {"now": datetime.now(timezone.utc)}
    stack = Stack(azurite.connection_string, tmp_path / "em", clock=lambda: clock["now"]).start()
    try:
        stack.add_user(ALICE)
        location = stack.control.sign_in(stack.connect_url("1001", ALICE).json()["auth_url"], ALICE)
        clock["now"] += timedelta(minutes=11)
        page = stack.callback(location)
        assert page.status_code == 400 and "expired" in page.text
        assert users_rows(stack) == [] and flows_rows(stack) == []
    finally:
        stack.close()


def test_a_sign_in_from_another_tenant_is_refused_in_single_tenant_mode(stack):
    stack.add_user(ALICE)
    stack.control.inject_fault("wrong_tenant", upn=ALICE)
    location = stack.control.sign_in(stack.connect_url("1001", ALICE).json()["auth_url"], ALICE)
    page = stack.callback(location)
    assert page.status_code == 403 and "another organization" in page.text
    assert users_rows(stack) == []


def test_the_tokens_go_to_the_user_who_started_the_flow(stack):
    stack.add_user(ALICE)
    stack.add_user("bob@contoso.com")
    url_a = stack.connect_url("1001", ALICE).json()["auth_url"]
    url_b = stack.connect_url("1002", "bob@contoso.com").json()["auth_url"]
    stack.callback(stack.control.sign_in(url_b, "bob@contoso.com"))
    stack.callback(stack.control.sign_in(url_a, ALICE))
    assert stack.app.users.get("1001").upn == ALICE
    assert stack.app.users.get("1002").upn == "bob@contoso.com"


def test_multitenant_mode_accepts_a_user_from_an_allowed_tenant(make_stack):
    other = str(uuid.uuid4())
    stack = make_stack(single_tenant=False, extra={"OutlookAllowedTenantIDs": other})
    stack.control.add_tenant(tenant_id=other, name="Fabrikam")
    stack.add_user("eve@fabrikam.com", tenant_id=other)
    page = stack.connect("1001", "eve@fabrikam.com")
    assert page.status_code == 200
    assert stack.app.users.get("1001").tenant_id == other


def test_disconnect_wipes_tokens_and_sync_state(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, {
        "subject": "Lunch", "start": {"dateTime": _day(2, 12), "timeZone": "UTC"},
        "end": {"dateTime": _day(2, 13), "timeZone": "UTC"}})
    stack.sync_all()
    assert stack.calendar("1001")["events"]
    resp = stack.disconnect("1001")
    assert resp.status_code == 200 and resp.json()["was_connected"] is True
    assert users_rows(stack) == []
    assert list(stack.app.storage.table("OutlookIndex").list_entities()) == []
    links = [e for e in stack.app.storage.table("Events").list_entities() if e["RowKey"].startswith("link|")]
    assert links == []
    assert stack.disconnect("1001").json()["was_connected"] is False


def _day(days: int, hour: int) -> str:
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return d.strftime("%Y-%m-%dT%H:%M:%S.0000000")
