"""Entra ID endpoints: discovery, authorize, token, MSAL end to end."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import msal
import pytest
import requests

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cret-value"
REDIRECT = "https://intranet.example.com/oauth2/outlook/callback"
SCOPES = ["Calendars.ReadWrite", "User.Read"]


def _query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def msal_env(monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE override a Session's verify=, which is what MSAL's
    # verify= sets; without these variables MSAL's own verify= is what counts.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _app(server, authority: str) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=CLIENT_SECRET, authority=authority,
        instance_discovery=False, verify=server.ca_bundle)


def test_msal_auth_code_flow_then_refresh_then_revoked_consent(server, ctl, tenant, msal_env):
    alice = tenant.user("alice")
    app = _app(server, f"{server.url}/{tenant.id}")
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    location = ctl.sign_in(flow["auth_uri"], alice["upn"])
    params = _query(location)
    assert location.startswith(REDIRECT) and params["state"] == flow["state"]
    assert "session_state" in params

    result = app.acquire_token_by_auth_code_flow(flow, params)

    claims = result["id_token_claims"]
    assert claims["tid"] == tenant.id and claims["oid"] == alice["id"]
    assert claims["preferred_username"] == alice["upn"]
    assert claims["iss"] == f"{server.url}/{tenant.id}/v2.0"
    assert claims["aud"] == CLIENT_ID
    me = requests.get(f"{server.url}/v1.0/me", verify=server.ca_bundle,
                      headers={"Authorization": "Bearer " + result["access_token"]}).json()
    assert me["id"] == alice["id"] and me["userPrincipalName"] == alice["upn"]

    account = app.get_accounts()[0]
    assert account["home_account_id"] == f"{alice['id']}.{tenant.id}"
    refreshed = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert "access_token" in refreshed and refreshed["access_token"] != result["access_token"]

    ctl.revoke_consent(alice["upn"])
    denied = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert denied["error"] == "invalid_grant" and denied["error_codes"] == [50173]
    assert denied["error_description"].startswith("AADSTS50173")


def test_msal_with_multitenant_app_at_organizations(server, ctl, msal_env):
    home = ctl.add_tenant(name="Home")
    other = ctl.add_tenant(name="Fabrikam")
    ctl.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT], home, multitenant=True)
    bob = ctl.add_user(other, "bob@fabrikam.onmicrosoft.com", "Bob")
    app = _app(server, f"{server.url}/organizations")
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    result = app.acquire_token_by_auth_code_flow(flow, _query(ctl.sign_in(flow["auth_uri"], bob["upn"])))
    assert result["id_token_claims"]["tid"] == other
    conf = requests.get(f"{server.url}/organizations/v2.0/.well-known/openid-configuration",
                        verify=server.ca_bundle).json()
    assert conf["issuer"] == f"{server.url}/{{tenantid}}/v2.0"


def test_openid_configuration_and_keys_verify_id_token(server, ctl, tenant):
    alice = tenant.user("alice")
    conf = requests.get(f"{server.url}/{tenant.id}/v2.0/.well-known/openid-configuration",
                        verify=server.ca_bundle).json()
    assert conf["issuer"] == f"{server.url}/{tenant.id}/v2.0"
    assert conf["token_endpoint"] == f"{server.url}/{tenant.id}/oauth2/v2.0/token"
    assert conf["authorization_endpoint"] == f"{server.url}/{tenant.id}/oauth2/v2.0/authorize"
    jwks = requests.get(conf["jwks_uri"], verify=server.ca_bundle).json()
    key = jwt.PyJWK(jwks["keys"][0])
    tokens = tenant.tokens(alice["upn"])
    claims = jwt.decode(tokens["id_token"], key.key, algorithms=["RS256"], audience=CLIENT_ID)
    assert claims["nonce"] == "n0" and claims["tid"] == tenant.id
    info = json.loads(base64.urlsafe_b64decode(tokens["client_info"] + "=="))
    assert info == {"uid": alice["id"], "utid": tenant.id}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600


def _authorize_url(server, tenant_id, **over):
    params = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT,
              "scope": "openid offline_access Calendars.ReadWrite", "state": "xyz",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
              "code_challenge_method": "S256"}
    params.update(over)
    params = {k: v for k, v in params.items() if v is not None}
    return f"{server.url}/{tenant_id}/oauth2/v2.0/authorize?{urlencode(params)}"


def test_authorize_without_login_hint_lists_the_tenants_users(server, ctl, tenant):
    tenant.user("alice")
    tenant.user("carol")
    r = requests.get(_authorize_url(server, tenant.id), verify=server.ca_bundle, allow_redirects=False)
    assert r.status_code == 200
    assert "alice@contoso.onmicrosoft.com" in r.text and "carol@contoso.onmicrosoft.com" in r.text
    assert "login_hint=" in r.text


def test_login_hint_only_prefills_someone_else_can_sign_in_on_the_link(server, ctl, tenant, msal_env):
    """As on Entra ID: a link made for Alice (login_hint) signed in by Mallory gives a code
    for Mallory; only the app's check of the id token can refuse it (RFC 9700 4.7)."""
    alice, mallory = tenant.user("alice"), tenant.user("mallory")
    app = _app(server, f"{server.url}/{tenant.id}")
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, login_hint=alice["upn"])
    assert _query(flow["auth_uri"])["login_hint"] == alice["upn"]
    result = app.acquire_token_by_auth_code_flow(flow, _query(ctl.sign_in(flow["auth_uri"], mallory["upn"])))
    assert result["id_token_claims"]["oid"] == mallory["id"]
    assert result["id_token_claims"]["preferred_username"] == mallory["upn"]
    plain = requests.get(flow["auth_uri"], verify=server.ca_bundle, allow_redirects=False)  # no typing: the hint
    assert plain.status_code == 302 and "code=" in plain.headers["Location"]


def test_consent_denied_redirects_with_access_denied(server, ctl, tenant):
    alice = tenant.user("alice")
    ctl.set_consent_denied(alice["upn"])
    q = _query(ctl.sign_in(_authorize_url(server, tenant.id), alice["upn"]))
    assert q["error"] == "access_denied" and q["state"] == "xyz" and "code" not in q


def test_user_of_another_tenant_gets_aadsts50020_at_single_tenant_authority(server, ctl, tenant):
    other = ctl.add_tenant(name="Fabrikam")
    mallory = ctl.add_user(other, "mallory@fabrikam.onmicrosoft.com", "Mallory")
    q = _query(ctl.sign_in(_authorize_url(server, tenant.id), mallory["upn"]))
    assert "code" not in q and q["error_description"].startswith("AADSTS50020")


def test_single_tenant_app_at_organizations_is_refused(server, ctl, tenant):
    alice = tenant.user("alice")
    q = _query(ctl.sign_in(_authorize_url(server, "organizations"), alice["upn"]))
    assert "code" not in q and "AADSTS50194" in q["error_description"]


def test_bad_redirect_uri_and_unknown_client_do_not_redirect(server, ctl, tenant):
    tenant.user("alice")
    for url in (_authorize_url(server, tenant.id, redirect_uri="https://evil.example/cb"),
                _authorize_url(server, tenant.id, client_id="nope")):
        r = requests.get(url + "&login_hint=alice@contoso.onmicrosoft.com", verify=server.ca_bundle,
                         allow_redirects=False)
        assert r.status_code == 400 and "Location" not in r.headers


def test_pkce_is_required_and_checked(server, ctl, tenant):
    alice = tenant.user("alice")
    q = _query(ctl.sign_in(_authorize_url(server, tenant.id, code_challenge=None), alice["upn"]))
    assert q["error"] == "invalid_request"
    q = _query(ctl.sign_in(_authorize_url(server, tenant.id), alice["upn"]))
    data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "authorization_code",
            "code": q["code"], "redirect_uri": REDIRECT, "code_verifier": "wrong"}
    r = requests.post(f"{server.url}/{tenant.id}/oauth2/v2.0/token", data=data, verify=server.ca_bundle)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_is_single_use_and_bad_secret_is_401(server, ctl, tenant):
    alice = tenant.user("alice")
    q = _query(ctl.sign_in(_authorize_url(server, tenant.id), alice["upn"]))
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 example pair
    data = {"client_id": CLIENT_ID, "client_secret": "wrong", "grant_type": "authorization_code",
            "code": q["code"], "redirect_uri": REDIRECT, "code_verifier": verifier}
    url = f"{server.url}/{tenant.id}/oauth2/v2.0/token"
    r = requests.post(url, data=data, verify=server.ca_bundle)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    data["client_secret"] = CLIENT_SECRET
    assert requests.post(url, data=data, verify=server.ca_bundle).status_code == 200
    again = requests.post(url, data=data, verify=server.ca_bundle)
    assert again.status_code == 400 and again.json()["error_codes"] == [54005]


def test_expired_and_missing_tokens_get_graph_401(server, ctl, tenant):
    alice = tenant.user("alice")
    g = tenant.graph(alice["upn"])
    assert g.get("/me").status_code == 200
    r = requests.get(f"{server.url}/v1.0/me", verify=server.ca_bundle)
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    ctl.expire_access_tokens(alice["upn"])
    r = g.get("/me/events")
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "Access token has expired or is not yet valid."
    assert set(r.json()["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_access_token_lifetime_follows_the_clock(server, ctl, tenant):
    alice = tenant.user("alice")
    ctl.set_access_token_lifetime(60)
    g = tenant.graph(alice["upn"])
    assert g.get("/me").status_code == 200
    ctl.advance_clock(61)
    assert g.get("/me").status_code == 401


def test_wrong_tenant_fault_changes_the_next_id_token_tid(server, ctl, tenant):
    alice = tenant.user("alice")
    ctl.inject_fault("wrong_tenant", upn=alice["upn"])
    first = jwt.decode(tenant.tokens(alice["upn"])["id_token"], options={"verify_signature": False})
    second = jwt.decode(tenant.tokens(alice["upn"])["id_token"], options={"verify_signature": False})
    assert first["tid"] != tenant.id and second["tid"] == tenant.id


def test_request_log_never_holds_codes_or_tokens(server, ctl, tenant):
    alice = tenant.user("alice")
    tokens = tenant.tokens(alice["upn"])
    log = json.dumps(ctl.requests_log())
    assert tokens["access_token"] not in log and tokens["refresh_token"] not in log
    assert CLIENT_SECRET not in log
    assert any(e["path"].endswith("/oauth2/v2.0/token") for e in ctl.requests_log())
