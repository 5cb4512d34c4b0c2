"""CLI commands for the outbound queue: ``enqueue FILE.json``, ``poison list``, ``poison replay ID``.

``add_commands(subparsers)`` is called from ``core.cli.main.build_parser``. Exit codes follow
``core.cli.main``: 0 done, 1 failed, 2 bad usage or an invalid message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _app():
    from core.app.bootstrap import get_app

    return get_app()


def cmd_enqueue(args: argparse.Namespace) -> int:
    from core.app.producer import InvalidMessage, encode, validate

    try:
        message = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        validate(message)
    except InvalidMessage as exc:
        for problem in exc.problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return EXIT_USAGE
    app = _app()
    app.storage.queue(args.queue).send_message(encode(message))
    print(f"enqueued operation {message['operation_id']} on queue {args.queue}")
    return EXIT_OK


def poison_entries(app: Any, queue: str = "outbound") -> list[dict[str, Any]]:
    """Poison-queue messages joined with their operation record (reason, status)."""
    from core.app.outbound_exec import Operations, message_key

    ops = Operations(app.storage)
    out = []
    seen = set()
    for m in app.storage.queue(f"{queue}-poison").peek_messages(max_messages=32):
        try:
            data = json.loads(m.content)
        except ValueError:
            data = None
        key = message_key(m.content, data)
        rec = ops.get(key)
        seen.add(key)
        out.append({"id": key, "queue_message_id": m.id, "in_poison_queue": True,
                    "status": rec.status if rec else "unknown", "reason": rec.reason if rec else "",
                    "event_id": rec.event_id if rec else "", "updated_at": rec.updated_at if rec else ""})
    for rec in ops.all():
        if rec.key not in seen and rec.status in ("rejected", "failed"):
            out.append({"id": rec.key, "queue_message_id": "", "in_poison_queue": False, "status": rec.status,
                        "reason": rec.reason, "event_id": rec.event_id, "updated_at": rec.updated_at})
    return out


def cmd_poison_list(args: argparse.Namespace) -> int:
    entries = poison_entries(_app(), args.queue)
    if args.json:
        print(json.dumps({"queue": f"{args.queue}-poison", "messages": entries}, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} poisoned outbound operation(s)")
    for col in ("id", "status", "event", "in poison queue", "reason"):
        table.add_column(col)
    for e in entries:
        table.add_row(e["id"], e["status"], e["event_id"], "yes" if e["in_poison_queue"] else "no", e["reason"])
    Console(highlight=False, soft_wrap=True).print(table)
    return EXIT_OK


def replay(app: Any, ident: str, queue: str = "outbound") -> bool:
    """Move one message (by operation id or queue message id) back onto its queue."""
    from core.app.outbound_exec import Operations, message_key

    poison = app.storage.queue(f"{queue}-poison")
    ops = Operations(app.storage)
    found = None
    for m in poison.receive_messages(messages_per_page=32, visibility_timeout=30):
        try:
            data = json.loads(m.content)
        except ValueError:
            data = None
        if found is None and (m.id == ident or message_key(m.content, data) == ident):
            found = (m, message_key(m.content, data))
        else:
            poison.update_message(m, visibility_timeout=0)
    if found is not None:
        m, key = found
        rec = ops.get(key)
        if rec is not None and rec.status != "done":
            rec.status, rec.reason = "new", ""
            ops.save(rec, app.clock())
        app.storage.queue(queue).send_message(m.content)
        poison.delete_message(m)
        return True
    rec = ops.get(ident)
    if rec is not None and rec.status in ("rejected", "failed") and rec.message:
        rec.status, rec.reason = "new", ""
        ops.save(rec, app.clock())
        app.storage.queue(queue).send_message(rec.message)
        return True
    return False


def cmd_poison_replay(args: argparse.Namespace) -> int:
    if replay(_app(), args.id, args.queue):
        print(f"{args.id} is back on queue {args.queue}")
        return EXIT_OK
    print(f"no poisoned message {args.id}", file=sys.stderr)
    return EXIT_FAIL


def add_commands(subparsers: Any) -> None:
    """Add ``enqueue`` and ``poison list|replay`` to the CLI's subparsers."""
    p = subparsers.add_parser("enqueue", help="validate an outbound message (JSON file) and put it on the queue")
    p.add_argument("file")
    p.add_argument("--queue", default="outbound")
    p.set_defaults(func=cmd_enqueue)
    poison = subparsers.add_parser("poison", help="outbound messages that could not be applied")
    sub = poison.add_subparsers(dest="poison_command", required=True)
    pl = sub.add_parser("list", help="list poisoned messages with their reason")
    pl.add_argument("--queue", default="outbound")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_poison_list)
    pr = sub.add_parser("replay", help="put a poisoned message back on its queue")
    pr.add_argument("id", help="operation id (or queue message id)")
    pr.add_argument("--queue", default="outbound")
    pr.set_defaults(func=cmd_poison_replay)
