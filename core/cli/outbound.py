"""CLI commands for the outbound queue: ``enqueue FILE.json``, ``poison list``, ``poison replay ID``.

``register(subparsers)`` is called from ``core.cli.main.build_parser``. Exit codes follow
``core.cli.errors``: 0 done, 1 failed (nothing to replay), 2 bad usage or an invalid message.
Needs only storage access.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.context import LIST_FORMATS, add_command, output_for, storage_app
from core.cli.errors import EXIT_OK, CliError, usage
from core.cli.output import cols

POISON_COLUMNS = cols("id!", "status", "event_id:event!", "in_poison_queue:in poison queue", "reason")


def _app():
    return storage_app()


def cmd_enqueue(args: argparse.Namespace) -> int:
    from core.app.producer import InvalidMessage, encode, validate

    out = output_for(args)
    try:
        message = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise usage(f"cannot read {args.file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise usage(f"{args.file} is not JSON: {exc}") from exc
    try:
        validate(message)
    except InvalidMessage as exc:
        for problem in exc.problems[1:]:
            sys.stderr.write(f"invalid: {problem}\n")
        raise usage(f"invalid: {exc.problems[0]}" + (f" (and {len(exc.problems) - 1} more above)" if len(exc.problems) > 1 else ""),
                    "docs/messages.md describes the message") from None
    app = _app()
    app.storage.queue(args.queue).send_message(encode(message))
    if out.fmt == "json":
        out.json({"operation_id": message["operation_id"], "queue": args.queue})
    else:
        out.say(f"enqueued operation {message['operation_id']} on queue {args.queue}")
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
    out = output_for(args)
    entries = poison_entries(_app(), args.queue)
    out.listing(f"{len(entries)} poisoned outbound operation(s)", POISON_COLUMNS, entries,
                doc={"queue": f"{args.queue}-poison", "messages": entries})
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
    out = output_for(args)
    if not replay(_app(), args.id, args.queue):
        raise CliError(f"no poisoned message {args.id}", hint="see 'outlook-sync poison list'")
    if out.fmt == "json":
        out.json({"id": args.id, "queue": args.queue, "replayed": True})
    else:
        out.say(f"{args.id} is back on queue {args.queue}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``enqueue`` and ``poison list|replay`` to the CLI's subparsers."""
    p = add_command(subparsers, "enqueue", cmd_enqueue,
                    "validate an outbound message (JSON file) and put it on the queue (docs/messages.md)")
    p.add_argument("file")
    p.add_argument("--queue", default="outbound")
    poison = subparsers.add_parser("poison", help="outbound messages that could not be applied",
                                   description="outbound messages that could not be applied")
    sub = poison.add_subparsers(dest="poison_command", required=True, metavar="{list,replay}")
    pl = add_command(sub, "list", cmd_poison_list, "list poisoned messages with their reason", formats=LIST_FORMATS)
    pl.add_argument("--queue", default="outbound")
    pr = add_command(sub, "replay", cmd_poison_replay, "put a poisoned message back on its queue")
    pr.add_argument("id", help="operation id (or queue message id)")
    pr.add_argument("--queue", default="outbound")


add_commands = register  # the name build_parser used before the command modules
