"""``users`` (who is connected, in which state) and ``disconnect`` (wipe a user's tokens).

Both need only storage access: no client secret, no encryption key.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.context import LIST_FORMATS, add_command, add_user_option, add_yes_option, confirm, output_for, storage_app
from core.cli.errors import EXIT_OK, unknown_user
from core.cli.output import Column, cols, short_time

#: ``users --state``: the stored states, and "held" (a sync waits for ``confirm``).
STATES = ("connected", "needs_reconnect", "held")

USER_COLUMNS = [
    Column("user_id", "user", whole=True), Column("state"), Column("upn", "account", whole=True),
    Column("last_sync_at", "last sync (UTC)"), Column("next_due_at", "next due (UTC)"), Column("notifications"),
    Column("pending", "pending work"), Column("last_error", "last error"),
]


def check_user(value: str) -> str:
    """A well-formed Communifire user id, else exit 2 (the app's own rule)."""
    from core.app.service import check_user_id

    return check_user_id(value)


def user_rows(app: Any, state: str | None = None) -> list[dict[str, Any]]:
    rows = [u.public() for u in app.users.all()]
    if state == "held":
        return [r for r in rows if r["held_plan"]]
    if state:
        return [r for r in rows if r["state"] == state]
    return rows


def _notifications(sub: dict[str, Any]) -> str:
    """The subscription in words (issue 13): active until when, or why the user is polled."""
    if sub["state"] == "active":
        return f"active until {short_time(sub['expires_at'])}"
    if sub["state"] == "none":
        return "none (timer polling)"
    return f"{sub['state']}: {sub['reason']} (timer polling)" if sub["reason"] else f"{sub['state']} (timer polling)"


def cmd_users(args: argparse.Namespace) -> int:
    out = output_for(args)
    rows = user_rows(storage_app(), args.state)
    words = [dict(r, notifications=_notifications(r["subscription"])) for r in rows]
    shown = words if out.machine else [dict(r, last_sync_at=short_time(r["last_sync_at"]),
                                            next_due_at=short_time(r["next_due_at"])) for r in words]
    what = f" in state {args.state}" if args.state else ""
    out.listing(f"{len(rows)} user(s){what}", USER_COLUMNS, shown, doc={"users": rows})
    return EXIT_OK


def cmd_disconnect(args: argparse.Namespace) -> int:
    from core.app import service

    out = output_for(args)
    user_id = check_user(args.user)
    app = storage_app()
    user = app.users.get(user_id)
    if user is None:
        raise unknown_user(user_id)
    confirm(args, f"disconnect user {user_id}",
            f"Disconnect user {user_id} ({user.upn or 'no account'})? Their Outlook tokens and sync state are wiped; "
            "Communifire's events stay.")
    service.disconnect(app, user_id)
    if out.fmt == "json":
        out.json({"user_id": user_id, "disconnected": True})
    else:
        out.say(f"user {user_id}: disconnected; tokens and sync state wiped")
    return EXIT_OK


def register(sub: Any) -> None:
    p = add_command(sub, "users", cmd_users, "list connected users: state, last sync, pending work, last error",
                    formats=LIST_FORMATS)
    p.add_argument("--state", choices=STATES, help="only users in this state ('held': a sync waits for confirm)")
    p = add_command(sub, "disconnect", cmd_disconnect, "wipe a user's Outlook tokens and sync state (asks first)")
    add_user_option(p)
    add_yes_option(p)


__all__ = ["register", "user_rows", "check_user", "cmd_users", "cmd_disconnect", "cols"]
