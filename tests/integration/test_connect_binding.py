"""Connect binds the account the backend expects (issue 10), against Azurite and the emulator.

The account-linking attack (RFC 9700 section 4.7, AZURE.md section 5): Communifire user
A's sign-in link, opened by someone else V (forwarded, phished, or V's browser with a
live Microsoft session), must never link V's mailbox to A. The emulator lets V sign in
on A's link exactly as Entra ID does (``login_hint`` only pre-fills the sign-in page);
our callback must refuse.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest

pytestmark = pytest.mark.slow

ALICE, MALLORY, BOB = "alice@contoso.com", "mallory@contoso.com", "bob@contoso.com"


def query(url):
    return dict(parse_qsl(urlsplit(url).query))


def users_rows(stack):
    return list(stack.app.storage.table("Users").list_entities())


def flows_rows(stack):
    return list(stack.app.storage.table("AuthFlows").list_entities())


def sealed_cache(stack, user_id):
    return stack.app.users.get(user_id).sealed_cache


def at(days, hour):
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def test_the_sign_in_link_carries_the_expected_account_as_login_and_domain_hint(stack):
    url = stack.connect_url("1001", ALICE).json()["auth_url"]
    params = query(url)
    assert params["login_hint"] == ALICE and params["domain_hint"] == "contoso.com"


def test_someone_else_signing_in_on_a_users_link_is_refused_and_nothing_is_stored(stack):
    stack.add_user(ALICE)
    stack.add_user(MALLORY)
    stack.control.create_event(MALLORY, {"subject": "Mallory's private meeting", "start": at(2, 9), "end": at(2, 10)})
    link = stack.connect_url("1001", ALICE).json()["auth_url"]  # made for Alice
    location = stack.control.sign_in(link, MALLORY)  # opened and signed in by Mallory
    assert query(location)["code"]  # Entra ID let Mallory sign in: only our callback can refuse
    page = stack.callback(location)
    assert page.status_code == 403 and "Not the expected Microsoft account" in page.text
    assert "nothing was connected" in page.text
    assert users_rows(stack) == [] and flows_rows(stack) == []
    stack.sync_all()
    assert stack.calendar("1001")["events"] == []  # Mallory's meetings never reach Alice's My Calendar


def test_the_expected_sign_in_name_matches_whatever_its_letter_case(stack):
    stack.add_user(ALICE)
    page = stack.connect("1001", "Alice@CONTOSO.com", signs_in_as=ALICE)
    assert page.status_code == 200 and stack.app.users.get("1001").upn == ALICE


def test_connect_without_an_expected_account_is_refused_while_matching_is_required(stack):
    resp = stack.connect_url("1001")
    assert resp.status_code == 400 and "'upn'" in resp.json()["message"] and flows_rows(stack) == []
    bad = stack.connect_url("1001", oid="not-a-guid")
    assert bad.status_code == 400 and "GUID" in bad.json()["message"]


def test_relaxed_matching_still_binds_an_expected_object_id(make_stack):
    """RequireMatchingOutlookAccount=false: Communifire's email may differ from the sign-in
    name, but an object id given by the backend is still compared."""
    stack = make_stack(extra={"RequireMatchingOutlookAccount": "false"})
    alice = stack.add_user(ALICE)
    stack.add_user(MALLORY)
    refused = stack.connect("1001", "alice.smith@intranet.example.com", signs_in_as=MALLORY, oid=alice["id"])
    assert refused.status_code == 403 and users_rows(stack) == []
    page = stack.connect("1001", "alice.smith@intranet.example.com", signs_in_as=ALICE, oid=alice["id"])
    assert page.status_code == 200 and stack.app.users.get("1001").oid == alice["id"]
    # with nothing to bind to, relaxed mode connects whoever signs in (doctor warns about it)
    assert stack.connect_url("1002").status_code == 200


def test_reconnecting_the_same_mailbox_refreshes_its_tokens_and_keeps_the_sync_position(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, {"subject": "Standup", "start": at(1, 9), "end": at(1, 10)})
    stack.sync_all()
    before = stack.app.users.get("1001")
    assert before.delta_link
    page = stack.connect("1001", ALICE)
    assert page.status_code == 200 and "connected" in page.text
    after = stack.app.users.get("1001")
    assert after.sealed_cache != before.sealed_cache  # new tokens
    assert after.delta_link == before.delta_link and after.oid == before.oid
    assert [e["title"] for e in stack.calendar("1001")["events"]] == ["Standup"]


def test_reconnecting_to_a_different_mailbox_is_refused_unless_a_replacement_is_asked(stack):
    stack.add_user(ALICE)
    stack.add_user(BOB)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, {"subject": "Alice's review", "start": at(1, 9), "end": at(1, 10)})
    stack.sync_all()
    before = stack.app.users.get("1001")

    refused = stack.connect("1001", BOB)
    assert refused.status_code == 409 and "already connected to a different Outlook account" in refused.text
    kept = stack.app.users.get("1001")
    assert (kept.upn, kept.sealed_cache, kept.delta_link) == (ALICE, before.sealed_cache, before.delta_link)

    replaced = stack.connect("1001", BOB, replace="1")
    assert replaced.status_code == 200
    user = stack.app.users.get("1001")
    assert user.upn == BOB and user.delta_link == ""
    index = [e for e in stack.app.storage.table("OutlookIndex").list_entities() if e["PartitionKey"] == "1001"]
    assert index == []  # Alice's mailbox no longer reachable from user 1001


def test_multitenant_mode_refuses_a_tenant_that_is_not_on_the_allowlist(make_stack):
    stack = make_stack(single_tenant=False)
    outsider = stack.control.add_tenant(name="Fabrikam")
    stack.add_user("eve@fabrikam.com", tenant_id=outsider)
    page = stack.connect("1001", "eve@fabrikam.com")
    assert page.status_code == 403 and "another organization" in page.text
    assert users_rows(stack) == [] and flows_rows(stack) == []
    assert "domain_hint" not in query(stack.connect_url("1002", ALICE).json()["auth_url"])  # multitenant: no domain


def test_the_callback_page_links_back_to_a_return_url_on_the_site_origin(stack):
    stack.add_user(ALICE)
    stack.add_user(MALLORY)
    page = stack.connect("1001", ALICE, return_url="/calendar/my?tab=sync")
    back = f"{stack.settings.site_url}/calendar/my?tab=sync"
    assert page.status_code == 200
    assert f"href='{back.replace('&', '&amp;')}'" in page.text and f"url={back}" in page.text  # link and refresh
    failed = stack.connect("1002", BOB, signs_in_as=MALLORY, return_url=back)
    assert failed.status_code == 403 and f"href='{back}'" in failed.text and "http-equiv" not in failed.text


@pytest.mark.parametrize("target", ["https://evil.example.com/calendar", "//evil.example.com/x", "/\\evil.example.com"])
def test_a_return_url_off_the_site_origin_is_refused_no_open_redirect(stack, target):
    resp = stack.connect_url("1001", ALICE, return_url=target)
    assert resp.status_code == 400 and "return_url" in resp.json()["message"]
    assert flows_rows(stack) == []


def test_status_answers_not_connected_connected_and_needs_reconnect(stack):
    stack.add_user(ALICE)
    assert stack.status("1001").json()["status"] == "not_connected"
    stack.connect("1001", ALICE)
    doc = stack.status("1001").json()
    assert doc["status"] == "connected" and doc["account"] == ALICE and doc["user"] == "1001"
    stack.control.revoke_consent(ALICE)
    stack.control.expire_access_tokens(ALICE)
    stack.sync_all()
    assert stack.status("1001").json()["status"] == "needs_reconnect"
    assert stack.http.get(f"{stack.host.url}/oauth2/outlook/status", params={"user": "1001"}).status_code == 401
    assert stack.status("../x").status_code == 400


def test_no_secret_reaches_the_refusal_pages(stack):
    stack.add_user(ALICE)
    stack.add_user(MALLORY)
    link = stack.connect_url("1001", ALICE).json()["auth_url"]
    location = stack.control.sign_in(link, MALLORY)
    page = stack.callback(location).text
    q = query(location)
    assert q["code"] not in page and q["state"] not in page and not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", page)
    assert str(uuid.UUID(stack.tenant_id)) not in page


def _doctor(stack, monkeypatch, tmp_path, capsys, **changes):
    import json

    from core.cli.main import main

    monkeypatch.setenv("OUTLOOK_SYNC_SETTINGS_FILE", str(tmp_path / "absent.json"))
    for key, value in {**stack.environ, **changes}.items():
        monkeypatch.setenv(key, value)
    code = main(["doctor", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_doctor_fails_in_multitenant_mode_without_a_tenant_allowlist(stack, monkeypatch, tmp_path, capsys):
    code, doc = _doctor(stack, monkeypatch, tmp_path, capsys, UseSAMLtenantIDForOutlook="false")
    problems = {s["name"]: s["problem"] for s in doc["settings"] if s["problem"]}
    assert code == 2 and set(problems) == {"OutlookAllowedTenantIDs"}  # exit 2: a setting is missing
    code, doc = _doctor(stack, monkeypatch, tmp_path, capsys, UseSAMLtenantIDForOutlook="false",
                        OutlookAllowedTenantIDs=stack.tenant_id)
    checks = {c["name"]: c for c in doc["checks"]}
    assert code == 0 and checks["tenant allowlist"]["ok"] is True


def test_doctor_warns_while_account_matching_is_relaxed(stack, monkeypatch, tmp_path, capsys):
    code, doc = _doctor(stack, monkeypatch, tmp_path, capsys)
    checks = {c["name"]: c for c in doc["checks"]}
    assert code == 0 and checks["account matching"]["warning"] is False
    code, doc = _doctor(stack, monkeypatch, tmp_path, capsys, RequireMatchingOutlookAccount="false")
    relaxed = {c["name"]: c for c in doc["checks"]}["account matching"]
    assert code == 0 and relaxed["warning"] is True and "someone else" in relaxed["detail"]
