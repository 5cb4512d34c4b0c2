"""Entra ID (v2.0 endpoints) for the emulator: directory, sign-in, tokens.

Owns: tenants, app registrations and users (the directory); the RSA signing key and
its JWKS; authorization codes (single use, PKCE-bound, 10 minutes); refresh tokens;
access tokens (JWTs the Graph side verifies); and the HTTP endpoints MSAL uses:
``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/oauth2/v2.0/authorize``,
``/{tenant}/oauth2/v2.0/token`` and ``/{tenant}/discovery/v2.0/keys``.

Invariants: a code is redeemed at most once and only with its PKCE verifier and
redirect URI; a revoked user's refresh tokens answer ``invalid_grant`` (AADSTS50173);
access tokens issued before ``expire_access_tokens`` are rejected by Graph.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .web import Request, Response, html_response, plain_json

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MULTI_TENANT_ALIASES = ("organizations", "common")
CODE_LIFETIME = 600


@dataclass
class Tenant:
    id: str
    name: str
    domain: str


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    tenant_id: str
    multitenant: bool = False
    name: str = "Outlook Sync"


@dataclass
class User:
    id: str              # oid
    tenant: str          # tid
    upn: str
    display_name: str
    rt_generation: int = 0          # bumped by revoke_consent: older refresh tokens die
    consent_denied: bool = False
    mailbox_enabled: bool = True
    webhooks_supported: bool = True  # False: a hybrid/on-premises mailbox (REST works, no webhooks)
    at_generation: int = 0          # bumped by expire_access_tokens: older access tokens die
    wrong_tenant_next: int = 0

    def public(self) -> dict:
        return {"id": self.id, "tenant": self.tenant, "upn": self.upn,
                "displayName": self.display_name, "mail": self.upn}


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: list[str]
    nonce: str | None
    challenge: str
    method: str
    expires: float
    authority_tenant: str
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    user_id: str
    scopes: list[str]
    issued: float
    generation: int = 0


class IdentityError(Exception):
    """An OAuth error answer from the token endpoint."""

    def __init__(self, status: int, error: str, code: int, description: str):
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


@dataclass
class Directory:
    """Tenants, apps, users and the token material (guarded by the emulator lock)."""

    clock: object
    tenants: dict[str, Tenant] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_token_lifetime: int = 3600

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.private_pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    # -- directory -------------------------------------------------------------
    def add_tenant(self, tenant_id: str | None = None, name: str = "Contoso",
                   domain: str | None = None) -> Tenant:
        tid = tenant_id or str(uuid.uuid4())
        slug = "".join(ch for ch in name.lower() if ch.isalnum()) or "tenant"
        t = Tenant(tid, name, domain or f"{slug}.onmicrosoft.com")
        self.tenants[tid] = t
        return t

    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str],
                     tenant_id: str, multitenant: bool = False) -> App:
        if tenant_id not in self.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        app = App(client_id, client_secret, list(redirect_uris), tenant_id, bool(multitenant))
        self.apps[client_id] = app
        return app

    def add_user(self, tenant_id: str, upn: str, display_name: str,
                 user_id: str | None = None) -> User:
        if tenant_id not in self.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        if self.user_by_upn(upn) is not None:
            raise ValueError(f"user {upn} exists")
        u = User(user_id or str(uuid.uuid4()), tenant_id, upn, display_name)
        self.users[u.id] = u
        return u

    def user_by_upn(self, upn: str) -> User | None:
        low = (upn or "").lower()
        for u in self.users.values():
            if u.upn.lower() == low:
                return u
        return None

    def user_by_ref(self, ref: str) -> User | None:
        """A user by oid or UPN (Graph's ``/users/{id|upn}``)."""
        return self.users.get(ref) or self.user_by_upn(ref)

    # -- tokens ----------------------------------------------------------------
    def jwks(self) -> dict:
        nums = self.key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                          "n": b64(nums.n), "e": b64(nums.e), "alg": "RS256"}]}

    def _sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private_pem, algorithm="RS256",
                          headers={"kid": self.kid, "x5t": self.kid, "typ": "JWT"})

    def access_token(self, user: User | None, app: App, scopes: list[str],
                     tenant_id: str) -> tuple[str, int]:
        now = int(self.clock.now().timestamp())
        life = int(self.access_token_lifetime)
        claims = {"aud": GRAPH_RESOURCE, "iss": f"https://sts.windows.net/{tenant_id}/",
                  "iat": now, "nbf": now, "exp": now + life, "tid": tenant_id,
                  "appid": app.client_id, "azp": app.client_id, "ver": "1.0",
                  "uti": secrets.token_urlsafe(16), "jti": str(uuid.uuid4())}
        if user is not None:
            claims.update({"oid": user.id, "sub": user.id, "upn": user.upn,
                           "unique_name": user.upn, "name": user.display_name,
                           "scp": " ".join(graph_scopes(scopes)),
                           "xms_emu_gen": user.at_generation})
        else:
            claims.update({"oid": app.client_id, "sub": app.client_id,
                           "roles": ["Calendars.ReadWrite", "User.Read.All"], "idtyp": "app"})
        return self._sign(claims), life

    def id_token(self, user: User, app: App, base_url: str, nonce: str | None) -> str:
        now = int(self.clock.now().timestamp())
        tid = user.tenant
        if user.wrong_tenant_next > 0:  # fault: wrong_tenant
            user.wrong_tenant_next -= 1
            tid = str(uuid.uuid5(uuid.NAMESPACE_URL, "wrong-tenant/" + user.tenant))
        claims = {"aud": app.client_id, "iss": f"{base_url}/{tid}/v2.0", "iat": now,
                  "nbf": now, "exp": now + 3600, "tid": tid, "oid": user.id,
                  "sub": hashlib.sha256(f"{user.id}/{app.client_id}".encode()).hexdigest()[:43],
                  "preferred_username": user.upn, "name": user.display_name, "ver": "2.0",
                  "uti": secrets.token_urlsafe(16)}
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify_access_token(self, token: str) -> dict:
        """Claims of a token this emulator issued. Raises ``ValueError`` with Graph's message."""
        if not token:
            raise ValueError("Access token is empty.")
        try:
            claims = jwt.decode(token, self.key.public_key(), algorithms=["RS256"],
                                audience=GRAPH_RESOURCE, options={"verify_exp": False,
                                                                  "verify_nbf": False,
                                                                  "verify_iat": False})
        except jwt.InvalidAudienceError as exc:
            raise ValueError("Access token validation failure. Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise ValueError("CompactToken parsing failed with error code: 80049217") from exc
        now = self.clock.now().timestamp()
        if claims["exp"] <= now or claims["nbf"] > now + 300:
            raise ValueError("Access token has expired or is not yet valid.")
        user = self.users.get(claims.get("oid", "")) if "scp" in claims else None
        if "scp" in claims:
            if user is None:
                raise ValueError("Access token validation failure.")
            if claims.get("xms_emu_gen") != user.at_generation:
                raise ValueError("Access token has expired or is not yet valid.")
        return claims


def graph_scopes(scopes: list[str]) -> list[str]:
    """Graph resource scopes in the short form Entra echoes (``Calendars.ReadWrite``)."""
    out = []
    for s in scopes:
        if s in ("openid", "profile", "offline_access", "email"):
            continue
        if s.lower().startswith(GRAPH_RESOURCE + "/"):
            s = s[len(GRAPH_RESOURCE) + 1:]
        if s not in out:
            out.append(s)
    return out


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---------------------------------------------------------------------------
# HTTP endpoints
# ---------------------------------------------------------------------------

def _aad_error(status: int, error: str, code: int, description: str, now) -> Response:
    trace = str(uuid.uuid4())
    corr = str(uuid.uuid4())
    desc = (f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {corr} "
            f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%SZ')}")
    return plain_json(status, {"error": error, "error_description": desc, "error_codes": [code],
                               "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"), "trace_id": trace,
                               "correlation_id": corr,
                               "error_uri": f"https://login.microsoftonline.com/error?code={code}"},
                      {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def _error_page(status: int, code: int, text: str) -> Response:
    body = (f"<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            f"<h1>Sorry, but we're having trouble signing you in.</h1>"
            f"<p id='error'>AADSTS{code}: {html.escape(text)}</p></body></html>")
    return html_response(status, body)


def _redirect(uri: str, params: dict) -> Response:
    parts = urlsplit(uri)
    q = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items()
                                                          if v is not None]
    loc = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), parts.fragment))
    return Response(302, {"Location": loc, "Cache-Control": "no-store, no-cache"}, b"")


def openid_configuration(base: str, tenant: str) -> dict:
    issuer_tid = "{tenantid}" if tenant.lower() in MULTI_TENANT_ALIASES else tenant
    root = f"{base}/{tenant}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tid}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/v1.0/me",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                             "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                             "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                             "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def _known_tenant(directory: Directory, tenant: str) -> str | None:
    """The tenant id for an authority path segment (GUID or domain), or the alias."""
    if tenant.lower() in MULTI_TENANT_ALIASES:
        return tenant.lower()
    if tenant in directory.tenants:
        return tenant
    for t in directory.tenants.values():
        if t.domain.lower() == tenant.lower():
            return t.id
    return None


def handle(state, req: Request) -> Response:
    """Route an Entra request (``/{tenant}/...``)."""
    seg = req.segments
    directory: Directory = state.directory
    now = state.clock.now()
    if len(seg) < 2:
        return _error_page(404, 90002, "Not found.")
    tenant_seg = seg[0]
    tail = "/".join(seg[1:])
    tenant = _known_tenant(directory, tenant_seg)
    if tenant is None:
        if tail.startswith("oauth2/v2.0/token"):
            return _aad_error(400, "invalid_request", 90002,
                              f"Tenant '{tenant_seg}' not found.", now)
        return _error_page(400, 90002, f"Tenant '{tenant_seg}' not found. Check to make sure you "
                                       "have the correct tenant ID and are signing into the "
                                       "correct cloud.")
    if tail == "v2.0/.well-known/openid-configuration" and req.method == "GET":
        return plain_json(200, openid_configuration(req.base_url, tenant_seg))
    if tail == "discovery/v2.0/keys" and req.method == "GET":
        return plain_json(200, directory.jwks())
    if tail == "oauth2/v2.0/authorize" and req.method in ("GET", "POST"):
        params = dict(req.query)
        if req.method == "POST":
            params.update(req.form())
        return _authorize(state, req, tenant, tenant_seg, params)
    if tail == "oauth2/v2.0/token" and req.method == "POST":
        try:
            return _token(state, req, tenant)
        except IdentityError as exc:
            return _aad_error(exc.status, exc.error, exc.code, exc.description, now)
    return _error_page(404, 900561, "The endpoint only accepts the documented methods.")


def _user_list_page(directory: Directory, req: Request, tenant: str, params: dict) -> Response:
    users = [u for u in directory.users.values()
             if tenant in MULTI_TENANT_ALIASES or u.tenant == tenant]
    items = []
    for u in sorted(users, key=lambda x: x.upn.lower()):
        p = dict(params)
        p["login_hint"] = u.upn
        href = f"{req.base_url}/{req.segments[0]}/oauth2/v2.0/authorize?{urlencode(p)}"
        items.append(f"<li><a class='user' href='{html.escape(href)}'>"
                     f"{html.escape(u.display_name)} &lt;{html.escape(u.upn)}&gt;</a></li>")
    body = ("<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            "<h1>Pick an account</h1><ul>" + "".join(items) + "</ul></body></html>")
    return html_response(200, body)


def signing_in_account(params: dict) -> str:
    """The account that signs in: what the person typed on the sign-in page (form field
    ``login``), else the ``login_hint`` that only pre-fills it. As on Entra ID, a hint
    does not stop someone from signing in with another account (or a browser that already
    has a session for one): the app must check the id token's ``oid`` /
    ``preferred_username`` itself (RFC 9700 section 4.7)."""
    return (params.get("login") or params.get("login_hint") or "").strip()


def _authorize(state, req: Request, tenant: str, tenant_seg: str, params: dict) -> Response:
    directory: Directory = state.directory
    client_id = params.get("client_id", "")
    app = directory.apps.get(client_id)
    if app is None:
        return _error_page(400, 700016, f"Application with identifier '{client_id}' was not "
                                        f"found in the directory '{tenant_seg}'.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris:
        return _error_page(400, 50011, f"The redirect URI '{redirect_uri}' specified in the "
                                       f"request does not match the redirect URIs configured "
                                       f"for the application '{client_id}'.")
    st = params.get("state")

    def fail(error: str, code: int, text: str) -> Response:
        return _redirect(redirect_uri, {"error": error,
                                        "error_description": f"AADSTS{code}: {text}",
                                        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
                                        "state": st})

    if params.get("response_type") != "code":
        return fail("unsupported_response_type", 70005,
                    "The provided value for the 'response_type' is not allowed.")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method", "plain")
    if not challenge:
        return fail("invalid_request", 9002325,
                    "Proof Key for Code Exchange is required for this emulated app.")
    if method != "S256":
        return fail("invalid_request", 5000049,
                    "Invalid code_challenge_method: only S256 is accepted.")
    if tenant in MULTI_TENANT_ALIASES and not app.multitenant:
        return fail("invalid_request", 50194,
                    f"Application '{client_id}' is not configured as a multi-tenant "
                    "application. Usage of the /common endpoint is not supported for such "
                    "applications. Use a tenant-specific endpoint or configure the application "
                    "to be multi-tenant.")
    hint = signing_in_account(params)
    if not hint:
        return _user_list_page(directory, req, tenant, params)
    user = directory.user_by_upn(hint)
    if user is None:
        return _error_page(400, 50034, f"The user account {hint} does not exist in the "
                                       f"'{tenant_seg}' directory.")
    req.context["user"] = user.upn
    if tenant not in MULTI_TENANT_ALIASES and user.tenant != tenant:
        return fail("access_denied", 50020,
                    f"User account '{user.upn}' from identity provider "
                    f"'https://sts.windows.net/{user.tenant}/' does not exist in tenant "
                    f"'{directory.tenants[tenant].name}' and cannot access the application "
                    f"'{client_id}'({app.name}) in that tenant.")
    if not app.multitenant and user.tenant != app.tenant_id:
        return fail("access_denied", 50020,
                    f"User account '{user.upn}' does not exist in the application's tenant.")
    if user.consent_denied:
        return fail("access_denied", 65004, "User declined to consent to access the app.")
    scopes = (params.get("scope") or "").split()
    code = "1.A" + secrets.token_urlsafe(48)
    directory.codes[code] = AuthCode(code, client_id, redirect_uri, user.id, scopes,
                                     params.get("nonce"), challenge, method,
                                     state.clock.now().timestamp() + CODE_LIFETIME, tenant)
    out = {"code": code, "state": st, "session_state": str(uuid.uuid4())}
    mode = params.get("response_mode", "query")
    if mode == "form_post":
        fields = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'/>"
                         for k, v in out.items() if v is not None)
        return html_response(200, f"<html><body onload='document.forms[0].submit()'>"
                                  f"<form method='POST' action='{html.escape(redirect_uri)}'>"
                                  f"{fields}</form></body></html>")
    if mode == "fragment":
        return Response(302, {"Location": redirect_uri + "#" + urlencode(
            {k: v for k, v in out.items() if v is not None})}, b"")
    return _redirect(redirect_uri, out)


def _client_auth(directory: Directory, req: Request, form: dict) -> App:
    client_id = form.get("client_id")
    secret = form.get("client_secret")
    auth = req.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        raw = base64.b64decode(auth[6:]).decode()
        from urllib.parse import unquote
        cid, _, sec = raw.partition(":")
        client_id, secret = unquote(cid), unquote(sec)
    app = directory.apps.get(client_id or "")
    if app is None:
        raise IdentityError(400, "unauthorized_client", 700016,
                            f"Application with identifier '{client_id}' was not found in the "
                            "directory.")
    if form.get("client_assertion"):
        raise IdentityError(401, "invalid_client", 7000215,
                            "The emulator accepts client secrets only.")
    if not secret or not secrets.compare_digest(secret, app.client_secret):
        raise IdentityError(401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in the "
                            f"request is the client secret value, not the client secret ID, for "
                            f"a secret added to app '{app.client_id}'.")
    return app


def _token(state, req: Request, tenant: str) -> Response:
    directory: Directory = state.directory
    form = req.form()
    app = _client_auth(directory, req, form)
    grant = form.get("grant_type")
    now = state.clock.now().timestamp()
    if grant == "authorization_code":
        code = directory.codes.get(form.get("code", ""))
        if code is None or code.client_id != app.client_id:
            raise IdentityError(400, "invalid_grant", 9002313,
                                "Invalid request. Request is malformed or invalid.")
        user = directory.users[code.user_id]
        req.context["user"] = user.upn
        if code.used:
            raise IdentityError(400, "invalid_grant", 54005,
                                "OAuth2 Authorization code was already redeemed, please retry "
                                "with a new valid code or use an existing refresh token.")
        if code.expires < now:
            raise IdentityError(400, "invalid_grant", 70008,
                                "The provided authorization code or refresh token has expired "
                                "due to inactivity.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise IdentityError(400, "invalid_grant", 50148,
                                "The redirect_uri does not match the one used in the "
                                "authorization request.")
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
            raise IdentityError(400, "invalid_grant", 501481,
                                "The Code_Verifier does not match the code_challenge supplied in "
                                "the authorization request.")
        code.used = True
        scopes = code.scopes or (form.get("scope") or "").split()
        return _issue(state, req, app, user, scopes, code.nonce, form)
    if grant == "refresh_token":
        rt = directory.refresh_tokens.get(form.get("refresh_token", ""))
        if rt is None or rt.client_id != app.client_id:
            raise IdentityError(400, "invalid_grant", 9002313,
                                "Invalid request. Request is malformed or invalid.")
        user = directory.users.get(rt.user_id)
        if user is None:
            raise IdentityError(400, "invalid_grant", 50173, "The provided grant has expired "
                                                             "due to it being revoked.")
        req.context["user"] = user.upn
        if rt.generation != user.rt_generation:
            raise IdentityError(400, "invalid_grant", 50173,
                                "The provided grant has expired due to it being revoked, a fresh "
                                "auth token is needed. The user might have changed or reset their "
                                "password.")
        scopes = (form.get("scope") or "").split() or rt.scopes
        return _issue(state, req, app, user, scopes, None, form)
    if grant == "client_credentials":
        if tenant in MULTI_TENANT_ALIASES:
            raise IdentityError(400, "invalid_request", 900023,
                                "Specified tenant identifier is neither a valid DNS name, nor a "
                                "valid external domain.")
        token, life = directory.access_token(None, app, [], tenant)
        return plain_json(200, {"token_type": "Bearer", "expires_in": life,
                                "ext_expires_in": life, "access_token": token},
                          {"Cache-Control": "no-store, no-cache"})
    raise IdentityError(400, "unsupported_grant_type", 70003,
                        "The app requested an unsupported grant type.")


def _issue(state, req: Request, app: App, user: User, scopes: list[str], nonce: str | None,
           form: dict) -> Response:
    directory: Directory = state.directory
    access, life = directory.access_token(user, app, scopes, user.tenant)
    granted = graph_scopes(scopes) or ["User.Read"]
    oidc = [s for s in ("openid", "profile", "email") if s in scopes]
    body = {"token_type": "Bearer", "scope": " ".join(granted + oidc), "expires_in": life,
            "ext_expires_in": life, "access_token": access}
    if "offline_access" in scopes or form.get("grant_type") == "refresh_token":
        rt = RefreshToken("1.A" + secrets.token_urlsafe(64), app.client_id, user.id,
                          list(scopes), state.clock.now().timestamp(), user.rt_generation)
        directory.refresh_tokens[rt.token] = rt
        body["refresh_token"] = rt.token
    if "openid" in scopes:
        body["id_token"] = directory.id_token(user, app, req.base_url, nonce)
    if form.get("client_info") == "1":
        body["client_info"] = _b64url(json.dumps({"uid": user.id, "utid": user.tenant}).encode())
    return plain_json(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
