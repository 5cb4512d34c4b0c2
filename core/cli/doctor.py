"""``outlook-sync doctor``: every setting (secrets masked), what is wrong, what answers.

Exit codes: 0 all well; 2 a setting is missing or invalid (nothing else is tried); 1 a
reachability check failed. Each check gives up quickly (a few seconds, no retries), so an
unreachable endpoint is reported in seconds, not minutes.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Callable

from core.cli.context import DOC_FORMATS, add_command, output_for
from core.cli.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, usage
from core.cli.keys import WARNING
from core.cli.output import cols

#: (connect, read) seconds for each HTTP check; storage checks use the same, without retries.
CHECK_TIMEOUT = (3.0, 8.0)
STORAGE_CHECK_OPTIONS = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 8}


def deployed_settings(path: str) -> dict[str, str]:
    """Settings of a deployed app: ``az functionapp config appsettings list`` output (a
    list of {name, value}) or a local.settings.json-style file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise usage(f"cannot read --settings-file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise usage(f"--settings-file {path} is not JSON: {exc}") from exc
    if isinstance(data, list):
        return {str(item["name"]): str(item.get("value") or "") for item in data if isinstance(item, dict) and "name" in item}
    if isinstance(data, dict):
        return {k: str(v) for k, v in (data.get("Values") or data).items()}
    raise usage(f"--settings-file {path}: expected a list of {{name, value}} or a local.settings.json")


def _app_url_checks(app_url: str, verify: Any) -> list[tuple[str, bool, str]]:
    """What a deployed function app answers: the callback anonymously, connect only with a key."""
    from core.adapters.http import VerifyingSession

    session = VerifyingSession(verify, timeout=CHECK_TIMEOUT)
    out: list[tuple[str, bool, str]] = []
    base = app_url.rstrip("/")
    try:
        resp = session.get(f"{base}/oauth2/outlook/callback")
        ok = resp.status_code == 400 and "missing_state" in resp.text
        out.append(("deployed callback", ok, f"HTTP {resp.status_code}" + ("" if ok else " (expected 400 and this app's page: is the route prefix empty?)")))
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        out.append(("deployed callback", False, _reason(exc)))
    try:
        resp = session.get(f"{base}/oauth2/outlook/connect", params={"user": "doctor"})
        ok = resp.status_code == 401
        out.append(("deployed connect key", ok, "function key enforced" if ok else f"HTTP {resp.status_code}: connect must require a function key"))
    except Exception as exc:  # noqa: BLE001
        out.append(("deployed connect key", False, _reason(exc)))
    return out


def notification_checks(settings: Any, probe: bool) -> list[tuple[str, bool, str]]:
    """NotificationUrl (issue 13): Graph delivers only to https; with ``probe`` (a deployed
    app) both endpoints must answer Graph's validation handshake as Graph requires."""
    import secrets
    from urllib.parse import urlsplit

    from core.adapters.http import VerifyingSession

    if not settings.notifications_enabled:
        return [("notifications", True, "NotificationUrl not set: Outlook changes arrive at the next timer sync")]
    https = urlsplit(settings.notification_url).scheme == "https"
    out = [("notification url", https, settings.notification_url if https else
            f"{settings.notification_url}: Graph delivers notifications to https URLs only")]
    if not probe:
        return out
    session = VerifyingSession(settings.verify, timeout=CHECK_TIMEOUT)
    for name, url in (("notification handshake", settings.notification_endpoint),
                      ("lifecycle handshake", settings.lifecycle_endpoint)):
        token = f"Validation: outlook-sync doctor {secrets.token_hex(8)} +&?"
        try:
            resp = session.post(url, params={"validationToken": token}, headers={"Content-Type": "text/plain"})
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
            ok = resp.status_code == 200 and ctype == "text/plain" and resp.text == token
            out.append((name, ok, "answers as Graph requires" if ok else
                        f"HTTP {resp.status_code} {ctype or '-'}: Graph would refuse to subscribe (is {url} this app?)"))
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            out.append((name, False, f"{_reason(exc)}: Graph could not reach {url}"))
    return out


def _reason(exc: BaseException) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return f"no answer within {CHECK_TIMEOUT[0]:g}+{CHECK_TIMEOUT[1]:g} s"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect (refused, no route or name not found)"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"


def doctor_checks(raw: dict[str, str], app_url: str | None = None, deployed: bool = False
                  ) -> tuple[list[tuple[str, str, str]], list[tuple[str, bool, str]]]:
    """(settings rows: name, shown value, problem) and (checks: name, ok, detail).

    ``deployed``: the settings come from Azure, where Key Vault references are resolved
    by the platform; they count as set here (their secret stays in the vault).
    """
    shown = dict(raw)
    if deployed:
        stand_in = {"OutlookApiClientSecret": "resolved-in-azure", "TokenEncryptionKey": "kv:" + "A" * 43}
        raw = {k: stand_in.get(k, v) if v.startswith("@Microsoft.KeyVault(") else v for k, v in raw.items()}

    from core.config.settings import SETTING_HELP, SettingsError, mask, parse_settings

    settings = None
    problems: dict[str, str] = {}
    try:
        settings = parse_settings(raw, file_exists=os.path.isfile)
    except SettingsError as exc:
        problems = {p.setting: p.message for p in exc.problems}
    rows = [(name, "(Key Vault reference)" if deployed and shown.get(name, "").startswith("@Microsoft.KeyVault(")
             else mask(name, shown.get(name)), problems.get(name, "")) for name in SETTING_HELP]
    checks: list[tuple[str, bool, str]] = [("settings", not problems, f"{len(problems)} problem(s)" if problems else "valid")]
    if settings is None:
        return rows, checks
    from core.adapters.http import VerifyingSession
    from core.adapters.storage import Storage

    def attempt(name: str, fn: Callable[[], str]) -> None:
        try:
            checks.append((name, True, fn()))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            checks.append((name, False, _reason(exc)))

    storage = Storage(settings, **STORAGE_CHECK_OPTIONS)
    attempt("table storage", lambda: (storage.ping_tables(), "reachable")[1])
    attempt("queue storage", lambda: (storage.ping_queues(), "reachable")[1])
    session = VerifyingSession(settings.verify, timeout=CHECK_TIMEOUT)

    def authority() -> str:
        url = f"{settings.authority}/v2.0/.well-known/openid-configuration"
        resp = session.get(url)
        resp.raise_for_status()
        if "authorization_endpoint" not in resp.json():
            raise ValueError("not an OpenID configuration document")
        return f"{settings.authority} answers"

    def graph() -> str:
        resp = session.get(f"{settings.graph_base_url}/me")
        if resp.status_code not in (200, 401):
            raise ValueError(f"unexpected HTTP {resp.status_code}")
        return f"{settings.graph_base_url} answers"

    def token_keys() -> str:
        # Envelope encryption: Key Vault unwraps each entry (the caller needs Crypto User/Officer).
        from core.app.bootstrap import App

        App(settings).encryption_keys()
        return f"{len(settings.wrapped_keys)} wrapped key(s) unwrapped with {settings.key_vault_key}"

    attempt("authority", authority)
    attempt("graph", graph)
    if settings.wrapped_keys:
        attempt("token keys", token_keys)
    checks.append(("calendar sync", settings.sync_enabled, "enabled" if settings.sync_enabled else "EnableCalendarSync is false: connect is refused and nothing syncs"))
    from core.cli.keys import settings_checks, token_cache_checks

    checks += settings_checks(settings)  # issue 10: account matching, tenant allowlist
    tables_ok = any(name == "table storage" and good for name, good, _ in checks)
    if not deployed and tables_ok:  # a deployed app's key stays in Key Vault: run doctor with it to open caches
        try:
            from core.app.bootstrap import App

            checks += token_cache_checks(App(settings))
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            checks.append(("token caches", False, _reason(exc)))
    checks += notification_checks(settings, probe=bool(app_url) or deployed)
    if app_url:
        checks += _app_url_checks(app_url, settings.verify)
    return rows, checks


def cmd_doctor(args: argparse.Namespace) -> int:
    from core.app.bootstrap import raw_settings

    out = output_for(args)
    raw = deployed_settings(args.settings_file) if args.settings_file else raw_settings()
    rows, checks = doctor_checks(raw, app_url=args.app_url, deployed=bool(args.settings_file))
    ok = all(c[1] for c in checks)
    invalid = any(problem for _, _, problem in rows) or not checks[0][1]
    code = EXIT_OK if ok else EXIT_USAGE if invalid else EXIT_FAIL
    settings = [{"name": n, "value": v, "problem": p} for n, v, p in rows]
    results = [{"name": n, "ok": k, "detail": d, "warning": d.startswith(WARNING)} for n, k, d in checks]
    if out.fmt == "json":
        out.json({"ok": ok, "exit_code": code, "settings": settings, "checks": results})
        return code
    out.table("Settings", cols("name:setting", "value", "problem"), settings)
    out.say("")
    out.table("Checks", cols("name:check", "result", "detail"),
              [dict(r, result="FAIL" if not r["ok"] else "warn" if r["warning"] else "ok") for r in results])
    if ok:
        out.say("All well, with warnings (see the checks above)." if any(r["warning"] for r in results) else "All well.")
    elif invalid:
        out.say("Settings are missing or invalid (see 'problem' above); nothing else was checked.")
        if not args.settings_file and not raw.get("AzureWebJobsStorage"):
            out.say("No settings found: copy local.settings.example.json to local.settings.json for a real tenant, "
                    "or run 'make run' for a local stack and use 'outlook-sync --local'.")
    else:
        out.say("Something needs attention (see the checks above).")
    return code


def register(sub: Any) -> None:
    p = add_command(sub, "doctor", cmd_doctor, "check every setting and whether storage, sign-in and Graph are reachable",
                    formats=DOC_FORMATS)
    p.add_argument("--settings-file", metavar="FILE", help="check a deployed app's settings: the JSON of "
                   "'az functionapp config appsettings list' (or a local.settings.json)")
    p.add_argument("--app-url", metavar="URL",
                   help="also check a running function app at this URL (e.g. https://<app>.azurewebsites.net)")


__all__ = ["doctor_checks", "deployed_settings", "register", "cmd_doctor", "EXIT_FAIL"]
