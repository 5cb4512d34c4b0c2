"""``outlook-sync`` / ``python -m core.cli``: the administrator's command line.

Readable tables by default, ``--json`` for scripts. Exit codes: 0 all well, 1 a check
or an operation failed, 2 bad usage or invalid settings, 3 a sync was held for an
administrator (mass delete) or the user needs to reconnect.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_ATTENTION = 0, 1, 2, 3


def _console() -> Console:
    # Wide enough for a calendar when output is piped (rich assumes 80 columns then).
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _short(iso_time: str) -> str:
    return iso_time.replace("T", " ")[:16] if iso_time else "-"


def _app():  # the composition root, loaded lazily so `keygen` and `--help` need no settings
    from core.app.bootstrap import get_app

    return get_app()


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


# -- doctor -----------------------------------------------------------------------------


def deployed_settings(path: str) -> dict[str, str]:
    """Settings of a deployed app: ``az functionapp config appsettings list`` output (a
    list of {name, value}) or a local.settings.json-style file."""
    data = json.loads(open(path, encoding="utf-8").read())
    if isinstance(data, list):
        return {str(item["name"]): str(item.get("value") or "") for item in data}
    return {k: str(v) for k, v in (data.get("Values") or data).items()}


def _app_url_checks(app_url: str, verify: Any) -> list[tuple[str, bool, str]]:
    """What a deployed function app answers: the callback anonymously, connect only with a key."""
    from core.adapters.http import VerifyingSession

    session = VerifyingSession(verify, timeout=15)
    out: list[tuple[str, bool, str]] = []
    base = app_url.rstrip("/")
    try:
        resp = session.get(f"{base}/oauth2/outlook/callback")
        ok = resp.status_code == 400 and "missing_state" in resp.text
        out.append(("deployed callback", ok, f"HTTP {resp.status_code}" + ("" if ok else " (expected 400 and this app's page: is the route prefix empty?)")))
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        out.append(("deployed callback", False, f"{type(exc).__name__}"))
    try:
        resp = session.get(f"{base}/oauth2/outlook/connect", params={"user": "doctor"})
        ok = resp.status_code == 401
        out.append(("deployed connect key", ok, "function key enforced" if ok else f"HTTP {resp.status_code}: connect must require a function key"))
    except Exception as exc:  # noqa: BLE001
        out.append(("deployed connect key", False, f"{type(exc).__name__}"))
    return out


def doctor_checks(raw: dict[str, str], app_url: str | None = None, deployed: bool = False
                  ) -> tuple[list[tuple[str, str, str]], list[tuple[str, bool, str]]]:
    """(settings rows: name, shown value, problem) and (checks: name, ok, detail).

    ``deployed``: the settings come from Azure, where Key Vault references are resolved
    by the platform; they count as set here (their secret stays in the vault).
    """
    import os

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
            checks.append((name, False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"))

    storage = Storage(settings)
    attempt("table storage", lambda: (storage.ping_tables(), "reachable")[1])
    attempt("queue storage", lambda: (storage.ping_queues(), "reachable")[1])
    session = VerifyingSession(settings.verify, timeout=10)

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

    attempt("authority", authority)
    attempt("graph", graph)
    checks.append(("calendar sync", settings.sync_enabled, "enabled" if settings.sync_enabled else "EnableCalendarSync is false: connect is refused and nothing syncs"))
    if app_url:
        checks += _app_url_checks(app_url, settings.verify)
    return rows, checks


def cmd_doctor(args: argparse.Namespace) -> int:
    from core.app.bootstrap import raw_settings

    raw = deployed_settings(args.settings_file) if args.settings_file else raw_settings()
    rows, checks = doctor_checks(raw, app_url=args.app_url, deployed=bool(args.settings_file))
    ok = all(c[1] for c in checks)
    if args.json:
        _print_json({"ok": ok, "settings": [{"name": n, "value": v, "problem": p} for n, v, p in rows],
                     "checks": [{"name": n, "ok": k, "detail": d} for n, k, d in checks]})
        return EXIT_OK if ok else EXIT_FAIL
    con = _console()
    table = Table(title="Settings", show_lines=False)
    for col in ("setting", "value", "problem"):
        table.add_column(col)
    for name, value, problem in rows:
        table.add_row(name, value, f"[red]{problem}[/red]" if problem else "")
    con.print(table)
    t2 = Table(title="Checks")
    for col in ("check", "result", "detail"):
        t2.add_column(col)
    for name, good, detail in checks:
        t2.add_row(name, "[green]ok[/green]" if good else "[red]FAIL[/red]", detail)
    con.print(t2)
    con.print("[green]All well.[/green]" if ok else "[red]Something needs attention (see above).[/red]")
    return EXIT_OK if ok else EXIT_FAIL


# -- users, sync, calendar, plan, audit -------------------------------------------------------


def cmd_users(args: argparse.Namespace) -> int:
    users = [u.public() for u in _app().users.all()]
    if args.json:
        _print_json({"users": users})
        return EXIT_OK
    table = Table(title=f"{len(users)} user(s)")
    for col in ("user", "state", "account", "last sync", "next due", "pending work", "last error"):
        table.add_column(col)
    for u in users:
        table.add_row(u["user_id"], u["state"], u["upn"], _short(u["last_sync_at"] or ""), _short(u["next_due_at"] or ""),
                      u["pending"] or "-", u["last_error"] or "")
    _console().print(table)
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from core.app import service
    from core.app.sync import sync_user

    app = _app()
    ctx = service.sync_context(app)
    ids = [args.user] if args.user else [u.user_id for u in app.users.all()]
    reports = []
    with Progress(transient=True, disable=args.json or len(ids) < 2) as progress:
        task = progress.add_task("syncing", total=len(ids))
        for user_id in ids:
            try:
                reports.append(sync_user(ctx, user_id, inline=True))
            except Exception as exc:  # noqa: BLE001 - one user's failure must not stop the others
                reports.append(service.SyncReport(user_id, "failed", message=f"{type(exc).__name__}: {exc}"))
            progress.advance(task)
    rows = [{"user_id": r.user_id, "outcome": r.outcome, "changes": len(r.changes),
             "actions": len(r.plan.actions) if r.plan is not None else 0, "message": r.message} for r in reports]
    if args.json:
        _print_json({"results": rows})
    else:
        table = Table(title="Sync")
        for col in ("user", "outcome", "actions", "events changed", "message"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["user_id"], r["outcome"], str(r["actions"]), str(r["changes"]), r["message"])
        _console().print(table)
    if any(r.outcome == "failed" for r in reports):
        return EXIT_FAIL
    if any(r.outcome in ("held", "needs_reconnect") for r in reports):
        return EXIT_ATTENTION
    return EXIT_OK


def load_calendar(app: Any, user_id: str) -> dict[str, Any]:
    from core.plan.calendar_view import calendar_json
    from core.adapters.events import EventStore
    from core.app.sync import window_for

    state, loaded = EventStore(app.storage).load_user_state(user_id)
    now = app.clock()
    links = [l for item in loaded.values() for l in item.links]
    return calendar_json(user_id, state.events, links, window_for(now), now)


def cmd_calendar(args: argparse.Namespace) -> int:
    doc = load_calendar(_app(), args.user)
    if args.json:
        _print_json(doc)
        return EXIT_OK
    print_calendar(doc)
    return EXIT_OK


def print_calendar(doc: dict[str, Any], console: Console | None = None) -> None:
    table = Table(title=f"Communifire calendar of user {doc['user_id']} ({len(doc['events'])} event(s))")
    for col in ("title", "when (UTC)", "repeats", "attendees (RSVP)", "Outlook links"):
        table.add_column(col)
    for e in doc["events"]:
        repeats = "-"
        if e["series"]:
            segs = e["series"]["segments"]
            rec = segs[0]["recurrence"] or {}
            repeats = f"{rec.get('pattern', {}).get('type', '?')}, {len(e['instances'])} in window"
            repeats += f", {len(segs)} segments" if len(segs) > 1 else ""
            exc = sum(1 for i in e["instances"] if i["state"] == "exception")
            dele = sum(1 for i in e["instances"] if i["state"] == "deleted")
            repeats += (f", {exc} changed" if exc else "") + (f", {dele} deleted" if dele else "")
        who = ", ".join(f"{a['email']} ({a['response']})" for a in e["attendees"]) or "-"
        when = f"{_short(e['start'])} - {_short(e['end'])[11:] if e['start'][:10] == e['end'][:10] else _short(e['end'])}"
        if e["all_day"]:
            when = f"{e['start'][:10]} (all day)"
        table.add_row(e["title"], when, repeats, who, str(len(e["outlook"])))
    (console or _console()).print(table)


def cmd_plan(args: argparse.Namespace) -> int:
    from core.app import service
    from core.app.sync import plan_user

    app = _app()
    user = app.users.get(args.user)
    if user is None:
        print(f"user {args.user} is not connected", file=sys.stderr)
        return EXIT_FAIL
    plan = plan_user(service.sync_context(app), user, app.clock(), full=args.full).plan
    doc = {"user_id": args.user, "held": plan.held, "actions": plan.to_json()}
    if args.json:
        _print_json(doc)
    else:
        table = Table(title=f"Plan for user {args.user}: {len(plan.actions)} action(s) (dry run, nothing applied)")
        for col in ("action", "event", "rule", "reason"):
            table.add_column(col)
        for a in plan.actions:
            table.add_row(a.kind, a.event_id, a.rule, a.reason)
        con = _console()
        con.print(table)
        if plan.held:
            con.print(f"[red]HELD:[/red] {plan.held} (apply with: outlook-sync confirm --user {args.user})")
    return EXIT_ATTENTION if plan.held else EXIT_OK


def cmd_confirm(args: argparse.Namespace) -> int:
    """Apply a held plan after an administrator checked it (re-planned now, held check off)."""
    from core.app import service
    from core.app.sync import apply_event_change, changes_for, plan_user

    app = _app()
    ctx = service.sync_context(app)
    user = app.users.get(args.user)
    if user is None or not user.held_plan:
        print(f"user {args.user} has no held plan", file=sys.stderr)
        return EXIT_FAIL
    planned = plan_user(ctx, user, app.clock(), full=True)
    plan = replace(planned.plan, held=None)
    for change in changes_for(args.user, planned.state, planned.loaded, plan):
        apply_event_change(ctx, {"user_id": args.user, "change": change.to_json()})
    app.users.save(replace(app.users.get(args.user), held_plan="", last_error=""))
    print(f"applied {len(plan.actions)} action(s) for user {args.user}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from core.adapters.audit import AuditStore

    entries = list(AuditStore(_app().storage).read(args.user, limit=args.limit))
    if args.json:
        _print_json({"user_id": args.user, "entries": entries})
        return EXIT_OK
    table = Table(title=f"Audit trail of user {args.user} (newest first)")
    for col in ("at", "source", "action", "event", "rule", "reason"):
        table.add_column(col)
    for e in entries:
        table.add_row(str(e["at"]), e["source"], e["kind"], e["event_id"], e["rule"], e["reason"])
    _console().print(table)
    return EXIT_OK


def cmd_disconnect(args: argparse.Namespace) -> int:
    from core.app import service

    existed = service.disconnect(_app(), args.user)
    print(f"user {args.user}: " + ("disconnected; tokens and sync state wiped" if existed else "was not connected"))
    return EXIT_OK


# -- keys ----------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from core.adapters.crypto import new_key

    print(new_key(args.kid))
    return EXIT_OK


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """Re-seal every token cache with the first configured key."""
    app = _app()
    count = 0
    for user in app.users.all():
        if user.sealed_cache and app.sealer.needs_reseal(user.sealed_cache):
            plain = app.sealer.open(user.sealed_cache, owner=user.user_id)
            app.users.save(replace(user, sealed_cache=app.sealer.seal(plain, owner=user.user_id)))
            count += 1
    print(f"re-encrypted {count} token cache(s) with key {app.sealer.current_kid!r}")
    return EXIT_OK


# -- entry point ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outlook-sync", description="Outlook Sync for Communifire: administration")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, user: bool = False,
            json_: bool = True, user_required: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if user:
            p.add_argument("--user", required=user_required, help="Communifire user id")
        if json_:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=fn)
        return p

    p = add("doctor", cmd_doctor, "check every setting and whether storage, sign-in and Graph are reachable")
    p.add_argument("--settings-file", help="check a deployed app's settings: the JSON of "
                   "'az functionapp config appsettings list' (or a local.settings.json)")
    p.add_argument("--app-url", help="also check a running function app at this URL (e.g. https://<app>.azurewebsites.net)")
    add("users", cmd_users, "list connected users: state, last sync, last error")
    add("sync", cmd_sync, "sync one user now (all users without --user)", user=True, user_required=False)
    add("calendar", cmd_calendar, "show a user's Communifire calendar as stored", user=True)
    p = add("plan", cmd_plan, "show what a sync would change now, without applying it", user=True)
    p.add_argument("--full", action="store_true", help="plan from a full read of the window (not only changes)")
    add("confirm", cmd_confirm, "apply a user's held plan (after checking it with 'plan')", user=True, json_=False)
    p = add("audit", cmd_audit, "what each sync changed for a user, and why", user=True)
    p.add_argument("--limit", type=int, default=100)
    add("disconnect", cmd_disconnect, "wipe a user's tokens and sync state", user=True, json_=False)
    p = add("keygen", cmd_keygen, "print a new TokenEncryptionKey value", json_=False)
    p.add_argument("--kid", default="k1", help="key id (letters, digits, - and _)")
    add("rotate-key", cmd_rotate_key, "re-encrypt every token cache with the first key in TokenEncryptionKey", json_=False)
    from core.cli.outbound import add_commands

    add_commands(sub)  # enqueue, poison list, poison replay
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from core.config.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print("Settings are missing or invalid; run 'outlook-sync doctor'.", file=sys.stderr)
        for p in exc.problems:
            print(f"  - {p}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
