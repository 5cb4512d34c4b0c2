"""``sync`` (one user now, or every user through the queue), ``plan`` (dry run), ``confirm``.

- ``sync --user ID`` runs that user's sync here and now (needs every setting: it reads
  Outlook with the user's token). Exit 0 synced, 1 unknown user or failed, 3 the user must
  reconnect or the sync was held (mass delete).
- ``sync --all`` puts one job per connected user on the ``sync-jobs`` queue, as the timer
  does, naming each user as it goes; the function app does the work. Needs only storage
  access. ``--wait`` follows each job to its outcome.
- ``plan`` shows what a sync would change, without applying it; ``confirm`` applies a
  held plan after the administrator checked it (asks first; ``--yes`` for scripts).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

from core.cli.context import (
    LIST_FORMATS, add_command, add_user_option, add_yes_option, confirm, full_app, output_for, storage_app,
)
from core.cli.errors import EXIT_ATTENTION, EXIT_FAIL, EXIT_OK, CliError, unknown_user, usage
from core.cli.output import Column, Output
from core.cli.users import check_user

RESULT_COLUMNS = [Column("user_id", "user", whole=True), Column("upn", "account", whole=True), Column("outcome"), Column("actions"),
                  Column("changes", "events changed"), Column("message")]
PLAN_COLUMNS = [Column("kind", "action"), Column("event_id", "event", whole=True), Column("rule"), Column("reason")]


def exit_code_for(outcomes: list[str]) -> int:
    """1 if anything failed, else 3 if anything needs an administrator, else 0."""
    if any(o in ("failed", "skipped", "timeout", "disconnected") for o in outcomes):
        return EXIT_FAIL
    if any(o in ("held", "needs_reconnect", "key_missing") for o in outcomes):
        return EXIT_ATTENTION
    return EXIT_OK


def job_outcome(before: Any, after: Any) -> str | None:
    """What became of a queued sync job, judged from the user's record before and after
    (pure): None while nothing tells yet."""
    from core.adapters.users import KEY_MISSING_PREFIX, NEEDS_RECONNECT

    if after is None:
        return "disconnected"
    if after.state == NEEDS_RECONNECT:
        return "needs_reconnect"
    if after.last_error.startswith(KEY_MISSING_PREFIX):
        return "key_missing"  # issue 10: the token cache's key is not configured (kept, not synced)
    if after.etag == before.etag:
        return None
    if after.last_sync_at != before.last_sync_at:
        return "synced"
    if after.failures > before.failures:
        return "failed"
    if after.held_plan and after.last_error.startswith("held"):
        return "held"
    return None


# -- sync ------------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> int:
    out = output_for(args)
    if args.all == bool(args.user):
        raise usage("give --user ID (sync that user now, here) or --all (queue a sync for every connected user)")
    if args.wait and not args.all:
        raise usage("--wait goes with --all (sync --user already waits)")
    return _sync_all(args, out) if args.all else _sync_one(args, out)


def _row(user_id: str, upn: str, outcome: str, message: str = "", actions: int | None = None,
         changes: int | None = None) -> dict[str, Any]:
    return {"user_id": user_id, "upn": upn, "outcome": outcome, "actions": actions, "changes": changes, "message": message}


def _sync_one(args: argparse.Namespace, out: Output) -> int:
    from core.adapters.users import NEEDS_RECONNECT
    from core.app import service
    from core.app.sync import sync_user

    user_id = check_user(args.user)
    app = full_app()
    user = app.users.get(user_id)
    if user is None:
        raise unknown_user(user_id)
    if user.state == NEEDS_RECONNECT:
        row = _row(user_id, user.upn, "needs_reconnect", "the user must connect Outlook again (nothing synced)")
    elif not app.settings.sync_enabled:
        row = _row(user_id, user.upn, "skipped", "EnableCalendarSync is false: nothing syncs")
    else:
        if not out.machine:
            out.progress(f"syncing user {user_id} ({user.upn}) ...")
        try:
            report = sync_user(service.sync_context(app), user_id, inline=True)
        except Exception as exc:  # noqa: BLE001 - reported as this user's outcome
            report = service.SyncReport(user_id, "failed", message=f"{type(exc).__name__}: {str(exc)[:300]}")
        row = _row(user_id, user.upn, report.outcome, report.message,
                   len(report.plan.actions) if report.plan is not None else 0, len(report.changes))
    out.listing("Sync", RESULT_COLUMNS, [row], doc={"results": [row]})
    if row["outcome"] == "held":
        out.note(f"held: {row['message']} (check with: outlook-sync plan --user {user_id}; "
                 f"apply with: outlook-sync confirm --user {user_id})")
    elif row["outcome"] == "needs_reconnect":
        out.note(f"user {user_id} must connect Outlook again from My Calendar")
    elif row["outcome"] == "key_missing":
        out.note("the token cache's key is not in TokenEncryptionKey: configure it (outlook-sync doctor); "
                 "nothing was deleted and the user need not reconnect")
    return exit_code_for([row["outcome"]])


def _sync_all(args: argparse.Namespace, out: Output) -> int:
    from core.adapters.users import CONNECTED
    from core.app import service

    app = storage_app()
    users = sorted(app.users.all(), key=lambda u: u.user_id)
    rows: dict[str, dict[str, Any]] = {}
    before: dict[str, Any] = {}
    queued = [u for u in users if u.state == CONNECTED]
    for user in users:
        if user.state != CONNECTED:
            rows[user.user_id] = _row(user.user_id, user.upn, user.state, "not queued: " + user.pending())
    try:
        for n, user in enumerate(queued, 1):
            service.request_sync(app, user.user_id)
            before[user.user_id] = user
            rows[user.user_id] = _row(user.user_id, user.upn, "queued")
            out.progress(f"[{n}/{len(queued)}] queued a sync for user {user.user_id} ({user.upn})")
    except KeyboardInterrupt:
        raise CliError(f"interrupted after queuing {len(before)} of {len(queued)} user(s); the queued ones will "
                       "still sync", 130) from None
    if not users:
        out.progress("no connected users")
    if args.wait and before:
        _follow(app, before, rows, out, args.timeout)
    ordered = [rows[u.user_id] for u in users]
    out.listing(f"Sync of {len(users)} user(s)", RESULT_COLUMNS, ordered, doc={"results": ordered})
    outcomes = [r["outcome"] for r in ordered if r["outcome"] != "queued"]
    return exit_code_for(outcomes)


def _follow(app: Any, before: dict[str, Any], rows: dict[str, dict[str, Any]], out: Output, timeout: float) -> None:
    """Poll the users' records until each queued job has an outcome (or the timeout)."""
    pending = dict(before)
    deadline = time.monotonic() + timeout
    done = 0
    while pending and time.monotonic() < deadline:
        time.sleep(1.0)
        for user_id, old in list(pending.items()):
            new = app.users.get(user_id)
            outcome = job_outcome(old, new)
            if outcome is None:
                continue
            done += 1
            message = new.last_error if new is not None and outcome != "synced" else ""
            rows[user_id] = _row(user_id, old.upn, outcome, message)
            out.progress(f"[{done}/{len(before)}] user {user_id} ({old.upn}): {outcome}")
            del pending[user_id]
    for user_id in pending:
        rows[user_id] = dict(rows[user_id], outcome="timeout",
                             message=f"no outcome within {timeout:g} s: is the function app running?")


# -- plan and confirm ---------------------------------------------------------------------


def _connected_user(app: Any, raw_id: str) -> Any:
    from core.adapters.users import NEEDS_RECONNECT

    user_id = check_user(raw_id)
    user = app.users.get(user_id)
    if user is None:
        raise unknown_user(user_id)
    if user.state == NEEDS_RECONNECT:
        raise CliError(f"user {user_id} must connect Outlook again before anything can be planned", EXIT_ATTENTION)
    return user


def _plan(app: Any, user: Any, full: bool) -> Any:
    from core.adapters.auth import KeyUnavailable, ReconnectRequired, mark_needs_reconnect
    from core.app import service
    from core.app.sync import plan_user

    try:
        return plan_user(service.sync_context(app), user, app.clock(), full=full)
    except KeyUnavailable as exc:
        raise CliError(f"user {user.user_id}: {exc}", EXIT_ATTENTION, "outlook-sync doctor names the missing key") from None
    except ReconnectRequired as exc:
        mark_needs_reconnect(app.users, user, str(exc))
        raise CliError(f"user {user.user_id} must connect Outlook again: {exc}", EXIT_ATTENTION) from None


def cmd_plan(args: argparse.Namespace) -> int:
    out = output_for(args)
    app = full_app()
    user = _connected_user(app, args.user)
    plan = _plan(app, user, args.full).plan
    actions = plan.to_json()
    doc = {"user_id": user.user_id, "held": plan.held, "actions": actions}
    rows = [{"kind": a.kind, "event_id": a.event_id, "rule": a.rule, "reason": a.reason} for a in plan.actions]
    notes = [f"HELD: {plan.held} (apply with: outlook-sync confirm --user {user.user_id})"] if plan.held else []
    out.listing(f"Plan for user {user.user_id}: {len(rows)} action(s) (dry run, nothing applied)", PLAN_COLUMNS, rows,
                doc=doc, notes=notes)
    return EXIT_ATTENTION if plan.held else EXIT_OK


def cmd_confirm(args: argparse.Namespace) -> int:
    """Apply a held plan after an administrator checked it (re-planned now, held check off)."""
    from core.app import service
    from core.app.sync import apply_event_change, changes_for

    out = output_for(args)
    app = full_app()
    user = _connected_user(app, args.user)
    if not user.held_plan:
        raise CliError(f"user {user.user_id} has no held plan", EXIT_FAIL, "see 'outlook-sync users --state held'")
    planned = _plan(app, user, full=True)
    plan = replace(planned.plan, held=None)
    deletes = sum(1 for a in plan.actions if "delete" in a.kind)
    confirm(args, f"apply user {user.user_id}'s held plan",
            f"Apply {len(plan.actions)} action(s) ({deletes} delete(s)) to user {user.user_id}'s Communifire calendar?")
    ctx = service.sync_context(app)
    import uuid

    for change in changes_for(user.user_id, planned.state, planned.loaded, plan, app.clock(), uuid.uuid4().hex):
        apply_event_change(ctx, {"user_id": user.user_id, "change": change.to_json()})
    app.users.save(replace(app.users.get(user.user_id), held_plan="", last_error=""))
    if out.fmt == "json":
        out.json({"user_id": user.user_id, "applied": len(plan.actions), "deletes": deletes})
    else:
        out.say(f"applied {len(plan.actions)} action(s) for user {user.user_id}")
    return EXIT_OK


def register(sub: Any) -> None:
    p = add_command(sub, "sync", cmd_sync, "sync one user now (--user), or queue a sync for every connected user (--all)",
                    formats=LIST_FORMATS)
    add_user_option(p, required=False)
    p.add_argument("--all", action="store_true", help="queue one sync job per connected user (the app does the work)")
    p.add_argument("--wait", action="store_true", help="with --all: follow each job until its outcome")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS", help="with --wait (default 300)")
    p = add_command(sub, "plan", cmd_plan, "show what a sync would change now, without applying it", formats=LIST_FORMATS)
    add_user_option(p)
    p.add_argument("--full", action="store_true", help="plan from a full read of the window (not only changes)")
    p = add_command(sub, "confirm", cmd_confirm, "apply a user's held plan (after checking it with 'plan'; asks first)")
    add_user_option(p)
    add_yes_option(p)
