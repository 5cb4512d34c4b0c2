"""Shared helpers for the outbound integration tests (organizer Alice, invitees Bob and Carol)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from core.app import service
from core.app.outbound_exec import run_outbound
from core.app.sync import plan_user

ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
USERS = {"1001": ALICE, "1002": BOB, "1003": CAROL}
ORG = {"user_id": "1001", "email": ALICE, "name": "Alice"}


def z(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day0() -> datetime:
    """09:00 UTC three days from now: inside the sync window."""
    return (datetime.now(timezone.utc) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)


def connect_all(stack) -> None:
    for uid, upn in USERS.items():
        stack.add_user(upn)
        stack.connect(uid, upn)


class Communifire:
    """Acts as Communifire's backend: numbered operations on one event."""

    def __init__(self, stack, event_id: str = "cf-evt-1"):
        self.stack = stack
        self.event_id = event_id
        self.n = 0

    def message(self, operation: str, scope: str = "all", instance: datetime | None = None,
                actor: str = "1001", **extra: Any) -> dict[str, Any]:
        self.n += 1
        event = {"id": self.event_id, "organizer": ORG, **extra.pop("event", {})}
        msg = {"v": 1, "operation_id": f"{self.event_id}-op-{self.n}", "occurred_at": z(datetime.now(timezone.utc)),
               "actor": {"user_id": actor}, "calendar": "my", "operation": operation, "scope": scope,
               "event": event, **extra}
        if instance is not None:
            msg["instance"] = {"original_start": z(instance)}
        return msg

    def send(self, msg: dict[str, Any]) -> str:
        return run_outbound(self.stack.app, json.dumps(msg))

    def do(self, operation: str, scope: str = "all", instance: datetime | None = None, **extra: Any) -> str:
        return self.send(self.message(operation, scope, instance, **extra))

    def create_series(self, start: datetime, count: int = 5, title: str = "Standup", attendees=(BOB, CAROL),
                      minutes: int = 30) -> str:
        return self.do("create", event={
            "title": title, "start": z(start), "end": z(start + timedelta(minutes=minutes)), "time_zone": "UTC",
            "recurrence": {"pattern": {"type": "daily", "interval": 1},
                           "range": {"type": "numbered", "startDate": start.date().isoformat(),
                                     "numberOfOccurrences": count}},
            "attendees": [{"user_id": uid, "email": e} for uid, e in USERS.items() if e in attendees]})


def inbound_plans(stack) -> dict[str, list[tuple[str, str, str]]]:
    """Each connected user's inbound plan from a full read (dry run)."""
    ctx = service.sync_context(stack.app)
    out = {}
    for uid in USERS:
        user = stack.app.users.get(uid)
        if user is None:
            continue
        plan = plan_user(ctx, user, stack.app.clock(), full=True).plan
        out[uid] = [(a.kind, a.rule, a.reason) for a in plan.actions]
    return out


def assert_no_echo(stack) -> None:
    """Rule A9: the next inbound sync plans nothing for anyone."""
    plans = inbound_plans(stack)
    assert plans == {uid: [] for uid in plans}, plans


def live(stack, upn: str) -> list[dict[str, Any]]:
    """The items of a mailbox that are not cancelled."""
    return [i for i in stack.control.mailbox(upn) if not i.get("isCancelled")]


def event_doc(stack, user_id: str, event_id: str = "cf-evt-1") -> dict[str, Any] | None:
    return next((e for e in stack.calendar(user_id)["events"] if e["id"] == event_id), None)
