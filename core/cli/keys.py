"""``keygen`` (a new TokenEncryptionKey value) and ``rotate-key`` (re-seal token caches)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from core.cli.context import add_command, full_app, output_for
from core.cli.errors import EXIT_OK, usage


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
    """Re-seal every token cache with the first configured key."""
    out = output_for(args)
    app = full_app()
    count = 0
    for user in app.users.all():
        if user.sealed_cache and app.sealer.needs_reseal(user.sealed_cache):
            plain = app.sealer.open(user.sealed_cache, owner=user.user_id)
            app.users.save(replace(user, sealed_cache=app.sealer.seal(plain, owner=user.user_id)))
            count += 1
    if out.fmt == "json":
        out.json({"resealed": count, "kid": app.sealer.current_kid})
    else:
        out.say(f"re-encrypted {count} token cache(s) with key {app.sealer.current_kid!r}")
    return EXIT_OK


def register(sub: Any) -> None:
    p = add_command(sub, "keygen", cmd_keygen, "print a new TokenEncryptionKey value (kid:key)")
    p.add_argument("--kid", default="k1", help="key id: 1-32 letters, digits, - or _ (default k1)")
    p.add_argument("--wrap-with", metavar="KEY_URI",
                   help="Azure: print a TokenEncryptionKeyWrapped entry instead, the new key wrapped by this "
                        "Key Vault key (azd output TOKEN_ENCRYPTION_KEK_URI; needs Key Vault Crypto Officer/User)")
    add_command(sub, "rotate-key", cmd_rotate_key,
                "re-encrypt every token cache with the first key in TokenEncryptionKey")
