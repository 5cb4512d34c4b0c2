"""CLI: ``changes tail [--user ID] [--json] [--results] [--once]``: the feeds to Communifire as they arrive.

Peeks at ``calendar-changes`` (or ``outbound-results`` with ``--results``) and prints each
message once, validated as Communifire's consumer validates it (``core.app.contracts``:
unknown fields tolerated, another major version reported and skipped). It never takes a
message away from Communifire: a queue can only be peeked at its 32 oldest messages, so
when nobody reads the feed, later messages show as the older ones are read.

Registered by ``core.cli.main`` (``register``). Output: one line per message, or with
``-o json`` / ``--json`` one JSON message per line (JSON Lines). Exit codes: 0 done
(``--once``), 130 stopped with Ctrl-C, 2 bad usage or invalid settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable, Iterable, Mapping

from core.cli.context import add_command, add_user_option, output_for, storage_app
from core.cli.errors import EXIT_OK, usage

PEEK_MAX = 32  # Queue Storage peeks at most 32 messages


def concerns(message: Mapping[str, Any], user_id: str | None) -> bool:
    """Whether a feed message concerns a user (``--user``): named in ``users``, or, for a
    result, with an Outlook item for the event."""
    if not user_id:
        return True
    if user_id in (message.get("users") or ()):
        return True
    event = message.get("event") or {}
    return any(link.get("user_id") == user_id for link in event.get("outlook") or ())


def line(message: Mapping[str, Any]) -> str:
    """One readable line per message."""
    ids = message.get("event_id") or "-"
    if message.get("communifire_id"):
        ids += f" (communifire {message['communifire_id']})"
    if message.get("kind") == "outbound_result":
        extra = f" until {message['until']}" if message.get("until") else ""
        reason = f": {message['reason']}" if message.get("reason") else ""
        effects = ", ".join(c["type"] for c in message.get("side_effects") or ())
        return (f"{message['at']}  {message['status']}{extra}  operation {message['operation_id']}  event {ids}"
                f"{'  seq ' + str(message['seq']) if message.get('seq') else ''}"
                f"{'  side effects: ' + effects if effects else ''}{reason}")
    kinds = ", ".join(c["type"] for c in message.get("changes") or ())
    rules = ", ".join(sorted({r["rule"] for r in message.get("rules") or () if r.get("rule")}))
    users = ",".join(message.get("users") or ())
    return (f"{message['at']}  seq {message['seq']:>3}  event {ids}  {message['source']}: {kinds}"
            f"  users {users}{'  rules ' + rules if rules else ''}")


def follow(peek: Callable[[], Iterable[Any]], show: Callable[[Mapping[str, Any]], None], feed: str,
           user_id: str | None, *, once: bool, interval: float, sleep: Callable[[float], None] = time.sleep,
           stop: Callable[[], bool] = lambda: False) -> int:
    """Peek, show what was not shown yet, repeat (until ``once`` or ``stop``); returns the count shown."""
    from core.app.contracts import ContractError, accept

    seen: set[str] = set()
    shown = 0
    while True:
        for m in peek():
            if m.id in seen:
                continue
            seen.add(m.id)
            try:
                message = accept(feed, json.loads(m.content), source=f"{feed}:{m.id}")
            except (ValueError, ContractError) as exc:
                print(f"message {m.id} on {feed} cannot be read: {exc}", file=sys.stderr)
                continue
            if concerns(message, user_id):
                show(message)
                shown += 1
        if once or stop():
            return shown
        sleep(interval)


def cmd_tail(args: argparse.Namespace) -> int:
    out = output_for(args)
    feed = "outbound-results" if args.results else "calendar-changes"
    if args.interval <= 0:
        raise usage("--interval must be above 0 seconds")
    queue = storage_app().storage.queue(feed)

    def show(message: Mapping[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"), sort_keys=False) if out.fmt == "json" else line(message)
        print(text, flush=True)

    follow(lambda: queue.peek_messages(max_messages=PEEK_MAX), show, feed, args.user, once=args.once,
           interval=args.interval)  # Ctrl-C: the CLI's handler exits 130
    return EXIT_OK


def register(sub: Any) -> None:
    changes = sub.add_parser("changes", help="the feeds the app sends to Communifire (docs/changes.md)",
                             description="the feeds the app sends to Communifire (docs/changes.md)")
    changes_sub = changes.add_subparsers(dest="changes_command", required=True, metavar="{tail}")
    p = add_command(changes_sub, "tail", cmd_tail, "show calendar-changes (or outbound-results) as messages arrive",
                    description="Show the change feed as it arrives, without taking messages away from "
                                "Communifire (peek). Ctrl-C stops.")
    add_user_option(p, required=False)
    p.add_argument("--results", action="store_true", help="the outbound-results feed instead of calendar-changes")
    p.add_argument("--once", action="store_true", help="print what is waiting now and stop")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two peeks (default 2)")
