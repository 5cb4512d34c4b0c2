"""CLI commands for the queues: ``enqueue FILE.json``, ``poison list``, ``poison replay ID|--all``.

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
from core.cli.errors import EXIT_FAIL, EXIT_OK, CliError, usage
from core.cli.output import cols

POISON_COLUMNS = cols("id!", "status", "event_id:event!", "in_poison_queue:in poison queue",
                      "raw_size:size (bytes)", "reason")


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
    """Every poisoned message of a queue (decodable or not), joined with its operation record."""
    from core.app.poison import list_poison

    return [e.to_json() for e in list_poison(app, queue)]


def _queue(name: str) -> str:
    from core.app.poison import UnknownQueue, check_queue

    try:
        return check_queue(name)
    except UnknownQueue as exc:
        raise usage(str(exc)) from None


def cmd_poison_list(args: argparse.Namespace) -> int:
    out = output_for(args)
    queue = _queue(args.queue)
    if (args.limit is not None and args.limit < 1) or args.offset < 0:
        raise usage("--limit must be at least 1 and --offset at least 0")
    entries = poison_entries(_app(), queue)
    total = len(entries)
    page = entries[args.offset: args.offset + args.limit if args.limit else None]
    label = "outbound operation(s)" if queue == "outbound" else f"{queue} message(s)"
    shown = f", showing {args.offset + 1}-{args.offset + len(page)}" if len(page) < total and page else ""
    out.listing(f"{total} poisoned {label} in {queue}-poison{shown}", POISON_COLUMNS, page,
                doc={"queue": f"{queue}-poison", "count": total, "offset": args.offset, "messages": page})
    return EXIT_OK


def replay(app: Any, ident: str, queue: str = "outbound") -> bool:
    """Move one message (by operation id or queue message id) back onto its queue."""
    from core.app.poison import replay as replay_messages

    report = replay_messages(app, queue, ident)
    return bool(report.replayed or report.already)


def cmd_poison_replay(args: argparse.Namespace) -> int:
    from core.app.poison import replay as replay_messages

    out = output_for(args)
    queue = _queue(args.queue)
    if bool(args.id) == bool(args.all):
        raise usage("give one message id, or --all")
    report = replay_messages(_app(), queue, None if args.all else args.id)
    if out.fmt == "json":
        out.json({"queue": queue, **report.to_json()})
    else:
        for key in report.replayed:
            out.say(f"{key} is back on queue {queue}")
        for key in report.already:
            out.say(f"{key} was replayed already: nothing to do")
        for key, why in report.skipped:
            out.note(f"{key} not replayed: {why}")
        if args.all:
            out.say(f"{len(report.replayed)} message(s) replayed, {len(report.skipped)} left in {queue}-poison")
    if args.id and not (report.replayed or report.already or report.skipped):
        raise CliError(f"no poisoned message {args.id} in {queue}-poison", hint="see 'outlook-sync poison list'")
    return EXIT_FAIL if report.skipped else EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``enqueue`` and ``poison list|replay`` to the CLI's subparsers."""
    p = add_command(subparsers, "enqueue", cmd_enqueue,
                    "validate an outbound message (JSON file) and put it on the queue (docs/messages.md)")
    p.add_argument("file")
    p.add_argument("--queue", default="outbound")
    poison = subparsers.add_parser("poison", help="messages that could not be applied (outbound, writes, sync-jobs)",
                                   description="messages that could not be applied (outbound, writes, sync-jobs)")
    sub = poison.add_subparsers(dest="poison_command", required=True, metavar="{list,replay}")
    pl = add_command(sub, "list", cmd_poison_list, "list every poisoned message with its reason (count, paged)",
                     formats=LIST_FORMATS)
    pl.add_argument("--queue", default="outbound", help="outbound (default), writes or sync-jobs")
    pl.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N messages (all by default)")
    pl.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N messages")
    pr = add_command(sub, "replay", cmd_poison_replay, "put poisoned messages back on their queue (one id, or --all)")
    pr.add_argument("id", nargs="?", help="operation id (or queue message id)")
    pr.add_argument("--all", action="store_true", help="every readable message of the poison queue")
    pr.add_argument("--queue", default="outbound", help="outbound (default), writes or sync-jobs")


add_commands = register  # the name build_parser used before the command modules
