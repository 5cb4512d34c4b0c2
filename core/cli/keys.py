"""``keygen`` (a new TokenEncryptionKey value), ``rotate-key [--dry-run]`` (re-seal token
caches) and the key and connect-safety checks ``doctor`` adds (issue 10).

rotate-key never deletes: a cache it cannot open is listed (user, key id, reason), left
exactly as it is, and makes the exit code 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.context import add_command, full_app, output_for
from core.cli.errors import EXIT_FAIL, EXIT_OK, usage

#: A doctor check whose detail starts so is shown as a warning and does not fail.
WARNING = "warning: "


def cmd_keygen(args: argparse.Namespace) -> int:
    """Print ``kid:key``; the key id is checked exactly as the setting is (doctor agrees)."""
    from core.adapters.crypto import new_key
    from core.config.settings import kid_problem

    if problem := kid_problem(args.kid):
        raise usage(problem)
    out = output_for(args)
    if args.wrap_with:
        from core.config.settings import vault_key_problem

        if problem := vault_key_problem(args.wrap_with):
            raise usage(f"--wrap-with {problem}")
        # Envelope encryption: the new key is printed only wrapped by the Key Vault key.
        from core.adapters import keyvault

        entry = keyvault.wrap_new_key(args.kid, args.wrap_with,
                                      keyvault.key_vault_wrapper(keyvault.credential()))
        if out.fmt == "json":
            out.json({"kid": args.kid, "TokenEncryptionKeyWrapped": entry})
        else:
            out.say(entry)
        return EXIT_OK
    key = new_key(args.kid)
    if out.fmt == "json":
        out.json({"kid": args.kid, "TokenEncryptionKey": key})
    else:
        out.say(key)
    return EXIT_OK


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """Re-seal every token cache with the first key; list what cannot be, exit 1 if any."""
    from core.app.keys import rotate

    out = output_for(args)
    report = rotate(full_app(), dry_run=args.dry_run)
    if out.fmt == "json":
        out.json(report.to_json())
        return EXIT_OK if report.ok else EXIT_FAIL
    verb = "would re-seal" if report.dry_run else "re-sealed"
    out.say(f"{verb} {len(report.resealed)} token cache(s) with key {report.key_id!r}; "
            f"{report.already_current} already on it" + (" (dry run: nothing written)" if report.dry_run else ""))
    if report.failures:
        out.say(f"{len(report.failures)} token cache(s) cannot be opened and were left exactly as they are:")
        for f in report.failures:
            out.say(f"  user {f.user_id}: key {f.key_id!r}: {f.reason}")
    return EXIT_OK if report.ok else EXIT_FAIL


def settings_checks(settings: Any) -> list[tuple[str, bool, str]]:
    """Connect-safety rows for doctor; a ``warning: `` detail is shown but does not fail."""
    if settings.require_matching_account:
        detail = "connect refuses any Microsoft account other than the expected one"
    else:
        detail = (WARNING + "RequireMatchingOutlookAccount is false: unless Communifire passes the user's Entra "
                  "object id (oid), a sign-in link opened by someone else links THEIR mailbox to the user "
                  "(docs/connect-a-tenant.md, 'Which account connects')")
    checks = [("account matching", True, detail)]
    if not settings.single_tenant:
        checks.append(("tenant allowlist", bool(settings.allowed_tenants),
                       f"{len(settings.allowed_tenants)} tenant(s) may connect (OutlookAllowedTenantIDs)"))
    return checks


def token_cache_checks(app: Any) -> list[tuple[str, bool, str]]:
    """One row per key id the stored token caches use (one cache opened per key id)."""
    from core.app.keys import key_health

    rows = []
    for use in key_health(app):
        name = f"token caches key {use.key_id}"
        if use.sample_opens:
            rows.append((name, True, f"{use.users} user(s); a sample cache opens"))
        elif not use.configured:
            rows.append((name, False, f"{use.users} user(s) sealed with key {use.key_id!r}, which TokenEncryptionKey "
                                      "lacks: add it back (their sync is paused, nothing is lost), then run "
                                      "'outlook-sync rotate-key'"))
        else:
            rows.append((name, False, f"{use.users} user(s): {use.detail}"))
    return rows or [("token caches", True, "no connected user yet")]


def register(sub: Any) -> None:
    p = add_command(sub, "keygen", cmd_keygen, "print a new TokenEncryptionKey value (kid:key)")
    p.add_argument("--kid", default="k1", help="key id: 1-32 letters, digits, - or _ (default k1)")
    p.add_argument("--wrap-with", metavar="KEY_URI",
                   help="Azure: print a TokenEncryptionKeyWrapped entry instead, the new key wrapped by this "
                        "Key Vault key (azd output TOKEN_ENCRYPTION_KEK_URI; needs Key Vault Crypto Officer/User)")
    p = add_command(sub, "rotate-key", cmd_rotate_key,
                    "re-encrypt every token cache with the first key in TokenEncryptionKey",
                    description="Re-encrypt every token cache with the first key in TokenEncryptionKey. Caches that "
                                "cannot be opened are listed with the reason and left as they are; the exit code is "
                                "1 if there were any.")
    p.add_argument("--dry-run", action="store_true", help="only report what would be re-sealed and what cannot be")
