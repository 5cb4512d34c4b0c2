"""``outlook-sync notifications``: Graph subscriptions and notification counters (issue 13).

Shows, per user, the subscription's state and expiry (as ``users`` does), and the per-day
counters the endpoints keep: notifications discarded (wrong ``clientState``, unknown
subscription, malformed), lifecycle events and the sync jobs scheduled. Reads stored
state only: storage settings are enough.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.context import DOC_FORMATS, add_command, output_for, storage_app
from core.cli.errors import EXIT_OK
from core.cli.output import Column, short_time

SUBSCRIPTION_COLUMNS = [Column("user_id", "user"), Column("user_state", "user state"), Column("state", "subscription"),
                        Column("expires_at", "expires (UTC)"), Column("reason")]


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
    out = output_for(args)
    doc = report(storage_app())
    if out.fmt == "json":
        out.json(doc)
        return EXIT_OK
    if not doc["enabled"]:
        out.say("NotificationUrl is not set: Outlook changes arrive at the next timer sync.")
    rows = [{"user_id": u["user_id"], "user_state": u["user_state"], **u["subscription"],
             "expires_at": short_time(u["subscription"]["expires_at"])} for u in doc["users"]]
    out.listing("Subscriptions", SUBSCRIPTION_COLUMNS, rows)
    names = sorted({k for d in doc["days"] for k in d if k != "day"})
    out.listing("Per UTC day (accepted notifications are counted in the logs)",
                [Column("day"), *(Column(n) for n in names)], [{n: d.get(n, 0) for n in ("day", *names)} for d in doc["days"]])
    return EXIT_OK


def register(sub: Any) -> None:
    add_command(sub, "notifications", cmd_notifications,
                "Graph subscriptions per user and notification counters per day", formats=DOC_FORMATS)


__all__ = ["register", "report", "cmd_notifications"]
