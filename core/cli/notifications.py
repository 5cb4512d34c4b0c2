"""CLI command for Graph change notifications: ``notifications [--json]`` (issue 13).

Shows, per user, the subscription's state and expiry (as ``users`` does), and the per-day
counters the endpoints keep: notifications discarded (wrong ``clientState``, unknown
subscription, malformed), lifecycle events and the sync jobs scheduled.
``add_commands(subparsers)`` is called from ``core.cli.main.build_parser``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_OK = 0


def _app():
    from core.app.bootstrap import get_app

    return get_app()


def report(app: Any) -> dict[str, Any]:
    from core.adapters.subscriptions import NotificationStats

    days: dict[str, dict[str, int]] = {}
    for day, name, count in NotificationStats(app.storage).read():
        days.setdefault(day, {})[name] = count
    users = [{"user_id": u.user_id, "user_state": u.state, "subscription": u.public()["subscription"]}
             for u in app.users.all()]
    return {"enabled": app.settings.notifications_enabled, "notification_url": app.settings.notification_url,
            "users": users, "days": [{"day": d, **days[d]} for d in sorted(days, reverse=True)]}


def cmd_notifications(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    doc = report(_app())
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    con = Console(highlight=False)
    if not doc["enabled"]:
        con.print("NotificationUrl is not set: Outlook changes arrive at the next timer sync.")
    t = Table(title="Subscriptions")
    for col in ("user", "user state", "subscription", "expires (UTC)", "reason"):
        t.add_column(col)
    for u in doc["users"]:
        sub = u["subscription"]
        t.add_row(u["user_id"], u["user_state"], sub["state"], (sub["expires_at"] or "-")[:16].replace("T", " "),
                  sub["reason"] or "")
    con.print(t)
    names = sorted({k for d in doc["days"] for k in d if k != "day"})
    t2 = Table(title="Per day (accepted notifications are in the logs)")
    for col in ("day", *names):
        t2.add_column(col)
    for d in doc["days"]:
        t2.add_row(d["day"], *(str(d.get(n, 0)) for n in names))
    con.print(t2)
    return EXIT_OK


def add_commands(sub: Any) -> None:
    p = sub.add_parser("notifications", help="Graph subscriptions per user and notification counters per day",
                       description="Graph subscriptions per user and notification counters per day")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_notifications)
