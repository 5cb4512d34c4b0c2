"""Connecting a user's Outlook account (OAuth 2.0 auth-code flow with MSAL) and tokens.

Owns: the pending-flow store (single use, bound to the Communifire user who started it,
expiring), the callback's decisions (each bad case of SPEC section 7 gets its own
outcome and stores nothing), the sealed per-user MSAL token cache, and silent token
acquisition (``invalid_grant`` -> the user needs to reconnect). One MSAL application per
authority per process, sharing one ``http_cache`` and the process's HTTP session, so the
authority's metadata is fetched once per process, not once per call (STYLE, MSAL
sample note; issue 14); each user's token cache is loaded per use. Nothing here logs a
token, code, secret or state value.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping

import msal
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from core.adapters import logs
from core.adapters.crypto import CryptoError, Sealer
from core.adapters.http import VerifyingSession
from core.config.settings import SCOPES, Settings
from core.adapters.storage import Storage, escape_key
from core.adapters.users import CONNECTED, NEEDS_RECONNECT, UserRecord, UserStore
from core.plan.connect import REFUSE, REPLACE, SAME_MAILBOX, ExpectedAccount, check_account, reconnect_decision

log = logging.getLogger(__name__)
#: No expected account (RequireMatchingOutlookAccount=false and nothing passed).
ANYONE = ExpectedAccount()

FLOW_LIFETIME = timedelta(minutes=10)
_FLOW_PK = "flow"
RECONNECT_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})

MsalFactory = Callable[..., msal.ConfidentialClientApplication]


class ReconnectRequired(Exception):
    """The user's consent or refresh token is gone: they must connect again."""


class TransientAuthError(Exception):
    """Token acquisition failed for a reason worth retrying later."""


class KeyUnavailable(Exception):
    """The user's token cache cannot be opened with the configured TokenEncryptionKey.

    A configuration error, never a reason to delete anything (issue 10): the sealed cache
    is kept and the user syncs again by themselves once the key ``kid`` is configured.
    """

    def __init__(self, kid: str, detail: str):
        self.kid = kid
        super().__init__(detail)


def key_problem(sealer: Sealer, sealed: str, owner: str, *, open_it: bool = True) -> KeyUnavailable | None:
    """Why this sealed value cannot be opened with the configured keys (None: it can).

    ``open_it=False`` only checks that its key id is configured (no decryption)."""
    try:
        kid = sealer.kid_of(sealed)
    except CryptoError as exc:
        return KeyUnavailable("?", str(exc))
    if not sealer.has_key(kid):
        return KeyUnavailable(kid, f"token cache sealed with key {kid!r}, which TokenEncryptionKey does not contain: "
                                   "add that key back (after the new first key) and the user syncs again")
    if open_it:
        try:
            sealer.open(sealed, owner=owner)
        except CryptoError as exc:
            return KeyUnavailable(kid, f"token cache does not open with the configured key {kid!r} ({exc}): "
                                       "was that key id given a new value?")
    return None


class PerUseTokenCache:
    """The token cache MSAL sees: whichever user's cache the calling thread loaded.

    A shared MSAL application keeps one ``token_cache`` for its lifetime; users' caches
    are loaded per use (``with cache.use(user_cache)``), per thread, so concurrent syncs
    in one process never see each other's tokens. The callbacks MSAL binds once at
    construction (``add``, ``remove_rt``, ``update_rt``) are forwarded at call time.
    """

    CredentialType = msal.TokenCache.CredentialType

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def use(self, cache: msal.TokenCache) -> Iterator[msal.TokenCache]:
        previous = getattr(self._local, "cache", None)
        self._local.cache = cache
        try:
            yield cache
        finally:
            self._local.cache = previous

    def _current(self) -> msal.TokenCache:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            raise RuntimeError("no token cache loaded for this call (use PerUseTokenCache.use)")
        return cache

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().add(*args, **kwargs)

    def remove_rt(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().remove_rt(*args, **kwargs)

    def update_rt(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().update_rt(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current(), name)


class _AppWithCache:
    """A shared MSAL application seen through one token cache: every call runs with it."""

    def __init__(self, app: msal.ConfidentialClientApplication, per_use: PerUseTokenCache, cache: msal.TokenCache):
        self._app = app
        self._per_use = per_use
        self.token_cache = cache

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._app, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._per_use.use(self.token_cache):
                return attr(*args, **kwargs)

        return call


def msal_factory(settings: Settings, session: Any = None) -> MsalFactory:
    """MSAL for these settings: one application per authority, built on first use.

    ``make(cache, authority)`` answers that authority's shared application seen through
    ``cache`` (a throwaway one when None). The applications share one ``http_cache`` and
    ``session`` (one connection pool per process for the authority, issue 14).
    """
    http = session if session is not None else VerifyingSession(settings.verify)
    http_cache: dict[Any, Any] = {}
    per_use = PerUseTokenCache()
    apps: dict[str, msal.ConfidentialClientApplication] = {}
    lock = threading.Lock()

    def shared(authority: str) -> msal.ConfidentialClientApplication:
        with lock:
            app = apps.get(authority)
            if app is None:
                app = msal.ConfidentialClientApplication(
                    settings.client_id,
                    client_credential=settings.client_secret,
                    authority=authority,
                    token_cache=per_use,  # type: ignore[arg-type]
                    http_client=http,
                    http_cache=http_cache,
                    # For an authority host that is not Microsoft's (a national cloud proxy, the
                    # local emulator), discovery would still call login.microsoftonline.com.
                    instance_discovery=None if settings.microsoft_authority else False,
                )
                apps[authority] = app
            return app

    def make(cache: msal.TokenCache | None = None, authority: str | None = None) -> Any:
        return _AppWithCache(shared(authority or settings.authority), per_use, cache or msal.TokenCache())

    return make


# -- pending flows -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingFlow:
    user_id: str
    flow: dict[str, Any]
    expires_at: datetime
    expected: ExpectedAccount = ANYONE
    return_url: str = ""
    replace: bool = False


class FlowStore:
    """AuthFlows table: the MSAL flow dict, sealed, keyed by its ``state``."""

    def __init__(self, storage: Storage, sealer: Sealer):
        self._table = storage.table("AuthFlows")
        self._sealer = sealer

    def put(self, user_id: str, flow: Mapping[str, Any], expires_at: datetime, expected: ExpectedAccount = ANYONE,
            return_url: str = "", replace: bool = False) -> None:
        state = flow["state"]
        data = {"user_id": user_id, "flow": dict(flow), "expected": expected.to_json(), "return_url": return_url,
                "replace": replace}
        sealed = self._sealer.seal(json.dumps(data).encode(), owner=f"flow:{state}")
        self._table.create_entity(
            {"PartitionKey": _FLOW_PK, "RowKey": escape_key(state), "Flow": sealed, "ExpiresAt": expires_at}
        )

    def take(self, state: str) -> PendingFlow | None:
        """Fetch and delete a flow: a state value is good for one callback only."""
        try:
            entity = self._table.get_entity(_FLOW_PK, escape_key(state))
            self._table.delete_entity(
                _FLOW_PK, escape_key(state), etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return None
        try:
            data = json.loads(self._sealer.open(entity["Flow"], owner=f"flow:{state}"))
        except CryptoError:
            return None
        return PendingFlow(user_id=data["user_id"], flow=data["flow"], expires_at=entity["ExpiresAt"],
                           expected=ExpectedAccount.from_json(data.get("expected")),
                           return_url=str(data.get("return_url") or ""), replace=bool(data.get("replace")))

    def purge_expired(self, now: datetime) -> int:
        count = 0
        for entity in self._table.query_entities(
            "PartitionKey eq @pk and ExpiresAt lt @now", parameters={"pk": _FLOW_PK, "now": now}
        ):
            try:
                self._table.delete_entity(_FLOW_PK, entity["RowKey"])
                count += 1
            except ResourceNotFoundError:
                pass
        return count


# -- connect / callback / disconnect ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a callback: ``code`` names the case (tests and logs use it)."""

    ok: bool
    code: str
    title: str
    message: str
    status: int = 200
    user_id: str = ""
    return_url: str = ""


class SyncDisabled(Exception):
    """EnableCalendarSync is false."""


def ensure_enabled(settings: Settings) -> None:
    if not settings.sync_enabled:
        raise SyncDisabled("Calendar sync is turned off (EnableCalendarSync is false).")


def start_connect(settings: Settings, flows: FlowStore, make_app: MsalFactory, user_id: str, now: datetime,
                  expected: ExpectedAccount = ANYONE, return_url: str = "", replace: bool = False) -> str:
    """Begin the auth-code flow for a Communifire user; returns the sign-in URL.

    The flow is bound to the account the backend expects (issue 10): the sign-in page is
    pre-filled with it (``login_hint``; ``domain_hint`` in single-tenant mode) and the
    callback refuses any other account."""
    ensure_enabled(settings)
    hints: dict[str, str] = {}
    if expected.upn:
        hints["login_hint"] = expected.upn
        if settings.single_tenant:
            hints["domain_hint"] = expected.domain
    with warnings.catch_warnings():
        # MSAL recommends response_mode=form_post (RFC 9700 4.3.1). The admin guide's
        # redirect is a GET to /oauth2/outlook/callback; the leak that form_post avoids
        # (code and state in history and Referer) is closed instead by single-use state,
        # PKCE, Referrer-Policy: no-referrer and Cache-Control: no-store on the callback.
        warnings.filterwarnings("ignore", message="response_mode='form_post'")
        flow = make_app().initiate_auth_code_flow(list(SCOPES), redirect_uri=settings.redirect_uri, **hints)
    flows.put(user_id, flow, now + FLOW_LIFETIME, expected, return_url, replace)
    return flow["auth_uri"]


_OUTCOMES = {
    "connected": (True, "Outlook calendar connected", "Your Outlook calendar is now connected. You can close this window.", 200),
    "missing_state": (False, "Sign-in link incomplete", "This page was opened without a sign-in request. Start again from My Calendar.", 400),
    "invalid_state": (False, "Sign-in link expired or already used", "This sign-in link is no longer valid. Start again from My Calendar.", 400),
    "expired": (False, "Sign-in took too long", "The sign-in request expired. Start again from My Calendar.", 400),
    "access_denied": (False, "Permission not given", "You did not allow access to your Outlook calendar, so nothing was connected.", 403),
    "signin_error": (False, "Sign-in failed", "Microsoft sign-in reported an error, so nothing was connected. Try again later.", 400),
    "wrong_tenant": (False, "Account from another organization", "This account belongs to another organization. Sign in with your work account.", 403),
    "wrong_account": (False, "Not the expected Microsoft account",
                      "The Microsoft account you signed in with is not the one this sign-in link was made for, so nothing "
                      "was connected. If you did not ask to connect a calendar, close this window. Otherwise start again "
                      "from My Calendar and sign in with your own work account.", 403),
    "already_connected": (False, "Another Outlook account is already connected",
                          "My Calendar is already connected to a different Outlook account, so nothing was changed. To "
                          "switch accounts, disconnect first from My Calendar (or ask your administrator).", 409),
    "token_error": (False, "Sign-in could not be completed", "Microsoft refused to complete the sign-in. Start again from My Calendar.", 400),
    "disabled": (False, "Calendar sync is turned off", "Your administrator has not enabled calendar sync.", 403),
}


def outcome(code: str, user_id: str = "", return_url: str = "") -> Outcome:
    ok, title, message, status = _OUTCOMES[code]
    return Outcome(ok, code, title, message, status, user_id, return_url)


def finish_connect(
    settings: Settings,
    flows: FlowStore,
    users: UserStore,
    sealer: Sealer,
    make_app: MsalFactory,
    params: Mapping[str, str],
    now: datetime,
    forget_mailbox: Callable[[str], None] = lambda _user_id: None,
) -> Outcome:
    """Handle the redirect back from Entra ID; on any bad case store nothing.

    ``forget_mailbox(user_id)`` wipes what links the user to a previous mailbox; it is
    called only when the backend asked for a replacement of a different mailbox."""
    state = params.get("state", "")
    if not state:
        return outcome("missing_state")
    pending = flows.take(state)  # single use: deleted before anything else happens
    if pending is None:
        return outcome("invalid_state")
    user_id, back = pending.user_id, pending.return_url

    def refuse(code: str) -> Outcome:
        return outcome(code, user_id, back)

    if pending.expires_at <= now:
        return refuse("expired")
    if params.get("error"):
        return refuse("access_denied" if params["error"] == "access_denied" else "signin_error")
    if not settings.sync_enabled:
        return refuse("disabled")
    cache = msal.SerializableTokenCache()
    app = make_app(cache)
    try:
        result = app.acquire_token_by_auth_code_flow(pending.flow, dict(params), scopes=list(SCOPES))
    except ValueError:  # state mismatch: MSAL's CSRF signal
        return refuse("invalid_state")
    except RuntimeError:  # id token nonce mismatch
        return refuse("token_error")
    if "error" in result:
        logs.warning(log, "token redemption refused", user_id=user_id, error=result.get("error"))
        return refuse("token_error")
    claims = result.get("id_token_claims") or {}
    tenant = claims.get("tid", "")
    if not settings.tenant_allowed(tenant):
        logs.warning(log, "sign-in from a tenant that is not allowed refused", user_id=user_id)
        return refuse("wrong_tenant")
    if check_account(pending.expected, claims, match_upn=settings.require_matching_account):
        # RFC 9700 4.7: someone else's sign-in on this user's link must not link their mailbox.
        logs.warning(log, "sign-in with another account than the expected one refused", user_id=user_id)
        return refuse("wrong_account")
    oid = claims.get("oid", "")
    previous = users.get(user_id)
    decision = reconnect_decision(previous.oid if previous else None, previous.tenant_id if previous else None,
                                  oid, tenant, replace=pending.replace)
    if decision == REFUSE:
        logs.warning(log, "connect to a different mailbox refused (no replacement asked)", user_id=user_id)
        return refuse("already_connected")
    accounts = app.get_accounts()
    home = accounts[0]["home_account_id"] if accounts else f"{oid}.{tenant}"
    record = UserRecord(
        user_id=user_id,
        state=CONNECTED,
        tenant_id=tenant,
        oid=oid,
        upn=claims.get("preferred_username", ""),
        home_account_id=home,
        sealed_cache=sealer.seal(cache.serialize().encode(), owner=user_id),
        connected_at=now,
        next_due_at=now,
    )
    if decision == SAME_MAILBOX and previous is not None:
        # Reconnecting the same mailbox refreshes the tokens and keeps its sync position.
        record = replace(record, delta_link=previous.delta_link, delta_window_start=previous.delta_window_start,
                         connected_at=previous.connected_at or now)
    elif decision == REPLACE:
        forget_mailbox(user_id)  # the old mailbox's links and index, as a disconnect would
        logs.info(log, "outlook account replaced", user_id=user_id)
    users.save(record)
    logs.info(log, "outlook account connected", user_id=user_id)
    return outcome("connected", user_id, back)


# -- tokens for sync -------------------------------------------------------------------


class TokenSource:
    """Access tokens for one user, acquired silently from their sealed cache.

    One acquisition per sync: the token is kept for the life of this object (one sync)
    and acquired again only when a call asks for a refresh (a 401 from Graph).
    """

    def __init__(self, settings: Settings, users: UserStore, sealer: Sealer, make_app: MsalFactory, user: UserRecord):
        self._settings = settings
        self._users = users
        self._sealer = sealer
        self._make_app = make_app
        self.user = user
        self._token: str | None = None
        self.acquisitions = 0

    def __call__(self, force_refresh: bool = False) -> str:
        if self._token is not None and not force_refresh:
            return self._token
        self._token = self._acquire(force_refresh)
        return self._token

    def _acquire(self, force_refresh: bool) -> str:
        self.acquisitions += 1
        user = self.user
        if user.state != CONNECTED or not user.sealed_cache:
            raise ReconnectRequired("the user is not connected")
        cache = msal.SerializableTokenCache()
        problem = key_problem(self._sealer, user.sealed_cache, user.user_id, open_it=False)
        if problem is not None:
            raise problem
        try:
            cache.deserialize(self._sealer.open(user.sealed_cache, owner=user.user_id).decode())
        except CryptoError as exc:
            # A configuration error (wrong key), never a reason to drop the cache (issue 10).
            raise key_problem(self._sealer, user.sealed_cache, user.user_id) or KeyUnavailable("?", str(exc)) from exc
        app = self._make_app(cache, authority=self._settings.tenant_authority(user.tenant_id))
        account = next((a for a in app.get_accounts() if a.get("home_account_id") == user.home_account_id), None)
        if account is None:
            raise ReconnectRequired("no account in the token cache")
        result = app.acquire_token_silent_with_error(list(SCOPES), account, force_refresh=force_refresh)
        if result is None:
            raise ReconnectRequired("no token could be acquired silently")
        if "error" in result:
            if result["error"] in RECONNECT_ERRORS:
                raise ReconnectRequired(f"{result['error']} (codes {result.get('error_codes', [])})")
            raise TransientAuthError(str(result["error"]))
        if cache.has_state_changed:
            self._save_cache(cache)
        return result["access_token"]

    def _save_cache(self, cache: msal.SerializableTokenCache) -> None:
        sealed = self._sealer.seal(cache.serialize().encode(), owner=self.user.user_id)
        try:
            self.user = self._users.save(replace(self.user, sealed_cache=sealed))
        except ResourceModifiedError:
            fresh = self._users.get(self.user.user_id)
            if fresh is not None:
                self.user = self._users.save(replace(fresh, sealed_cache=sealed))


def mark_needs_reconnect(users: UserStore, user: UserRecord, reason: str) -> UserRecord:
    """Stop syncing a user whose consent is gone; keep their data (SPEC section 7)."""
    fresh = users.get(user.user_id) or user
    return users.save(replace(fresh, state=NEEDS_RECONNECT, last_error=f"needs reconnect: {reason}"[:500], sealed_cache=""))
