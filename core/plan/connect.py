"""Decisions of the connect flow (issue 10), pure: which account, which mailbox, where back to.

Owns: the expected identity a connect is bound to and the comparison with the id token
that comes back (RFC 9700 section 4.7; AZURE.md section 5: a sign-in link opened by
someone else must not link *their* mailbox to the Communifire user who asked for it);
whether a second connect may replace the mailbox already linked; and the return URL,
which must stay on SiteUrl's origin (no open redirect). No I/O, no clock, no settings:
the shell passes plain values in.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

#: What ``check_account`` answers besides ``None`` (all is well).
WRONG_ACCOUNT = "wrong_account"
#: Outcomes of ``reconnect_decision``.
NEW, SAME_MAILBOX, REPLACE, REFUSE = "new", "same_mailbox", "replace", "refuse"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_RETURN_URL = 2048


class ConnectInputError(ValueError):
    """A connect request parameter is unusable; the message names it."""


@dataclass(frozen=True, slots=True)
class ExpectedAccount:
    """Who the Communifire backend (which knows its user through SSO) says will sign in."""

    upn: str = ""
    oid: str = ""

    @property
    def empty(self) -> bool:
        return not self.upn and not self.oid

    @property
    def domain(self) -> str:
        return self.upn.rpartition("@")[2] if self.upn else ""

    def to_json(self) -> dict[str, str]:
        return {"upn": self.upn, "oid": self.oid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "ExpectedAccount":
        data = data or {}
        return cls(upn=str(data.get("upn") or ""), oid=str(data.get("oid") or ""))


def expected_account(upn: str | None, oid: str | None, *, required: bool) -> ExpectedAccount:
    """Validate the connect request's ``upn`` / ``oid``; ``required``: one of them must be given."""
    upn = (upn or "").strip()
    oid = (oid or "").strip()
    if upn and (len(upn) > 256 or not _EMAIL.match(upn)):
        raise ConnectInputError("'upn' must be the user's sign-in name, like name@example.com")
    if oid:
        try:
            oid = str(uuid.UUID(oid))
        except ValueError as exc:
            raise ConnectInputError("'oid' must be the user's Entra object id, a GUID") from exc
    if required and not upn and not oid:
        raise ConnectInputError(
            "'upn' (the user's sign-in name) or 'oid' (their Entra object id) is required: the callback "
            "refuses any other Microsoft account (RequireMatchingOutlookAccount)"
        )
    return ExpectedAccount(upn=upn, oid=oid)


def _same_guid(a: str, b: str) -> bool:
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return False


def check_account(expected: ExpectedAccount, claims: Mapping[str, Any], *, match_upn: bool) -> str | None:
    """``None`` when the id token's account is the expected one, else ``WRONG_ACCOUNT``.

    An expected object id is always compared (it is exact and never reassigned). The
    sign-in name is compared case-insensitively with ``preferred_username`` unless
    ``match_upn`` is off (RequireMatchingOutlookAccount=false, for directories whose
    Communifire emails differ from sign-in names).
    """
    if expected.oid and not _same_guid(expected.oid, str(claims.get("oid") or "")):
        return WRONG_ACCOUNT
    if match_upn and expected.upn:
        signed_in = str(claims.get("preferred_username") or "")
        if signed_in.casefold() != expected.upn.casefold():
            return WRONG_ACCOUNT
    return None


def reconnect_decision(previous_oid: str | None, previous_tenant: str | None, oid: str, tenant: str,
                       *, replace: bool) -> str:
    """A second connect of one Communifire user: the same mailbox refreshes its tokens; a
    different one is refused unless the backend asked for a replacement explicitly."""
    if previous_oid is None:
        return NEW
    if _same_guid(previous_oid, oid) and (previous_tenant or "").lower() == tenant.lower():
        return SAME_MAILBOX
    return REPLACE if replace else REFUSE


def url_origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, lower-case host, port) of an absolute http(s) URL; None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def check_return_url(value: str | None, site_url: str) -> str:
    """The URL to send the browser back to after connect: ``""`` (none) or an absolute URL
    on SiteUrl's origin. A path (``/calendar``) is taken relative to SiteUrl's origin.
    Anything else (another host, scheme or port, ``//host``, backslashes, user info,
    control characters) raises ``ConnectInputError``: no open redirect (RFC 9700 4.11)."""
    value = (value or "").strip()
    if not value:
        return ""
    bad = "'return_url' must be a page of this intranet (on the origin of SiteUrl)"
    if len(value) > MAX_RETURN_URL or "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ConnectInputError(bad)
    site = urlsplit(site_url)
    if value.startswith("/") and not value.startswith("//"):
        value = urlunsplit((site.scheme, site.netloc, "", "", "")) + value
    parts = urlsplit(value)
    try:
        has_user = parts.username is not None or parts.password is not None
    except ValueError:
        has_user = True
    origin = url_origin(value)
    if has_user or origin is None or origin != url_origin(site_url):
        raise ConnectInputError(bad)
    return value
