"""Poison queues, for administrators: list every poisoned message and put messages back.

Owns: reading ``<queue>-poison`` whatever it holds (messages that are not base64, not
UTF-8 or not JSON are listed as such, with their raw size, and never stop the rest), and
replaying by id or all of them.

Invariants (issue 11):
- a listing sees every message, page by page: each page is leased (made invisible) while
  the scan goes on, so nothing is seen twice, and made visible again at the end;
- a replay terminates: each poison message is received at most once per run, and what
  it puts back goes to another queue;
- a replay never duplicates a message, even with another replay or consumer running: it
  first deletes the message it holds the lease on (another holder makes that fail, and
  the message is left to them), then sends it; a failed send puts it back in the poison
  queue;
- replaying again what was replayed changes nothing (the message is no longer there; the
  operation record says ``replayed``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from core.adapters import logs
from core.app.outbound_exec import Operations, message_key, set_status
from core.plan import delivery

log = logging.getLogger(__name__)

#: The app's queues (each has a ``-poison`` twin); the logical names the CLI takes.
QUEUES = ("outbound", "writes", "sync-jobs")
PAGE = 32  # the most Queue Storage returns per receive
LEASE_SECONDS = 300


class UnknownQueue(ValueError):
    def __init__(self, name: str):
        super().__init__(f"unknown queue {name!r}: choose one of {', '.join(QUEUES)}")


def check_queue(name: str) -> str:
    """The logical queue name (``outbound``, also given as ``outbound-poison``)."""
    base = name[: -len("-poison")] if name.endswith("-poison") else name
    if base not in QUEUES:
        raise UnknownQueue(name)
    return base


@dataclass
class PoisonEntry:
    """One poisoned message (or, for ``outbound``, a rejected operation no longer queued)."""

    queue: str
    id: str  # the operation id (outbound), the message's own id (writes), else the queue message id
    queue_message_id: str
    in_poison_queue: bool
    decodable: bool
    raw_size: int
    status: str = "unknown"
    reason: str = ""
    event_id: str = ""
    updated_at: str = ""
    inserted_on: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decoded:
    """A poison message's content: ``data`` None when it is not base64/UTF-8/JSON."""

    text: str | None
    data: Any
    problem: str = ""


def decode(content: str) -> Decoded:
    """Decode as the queue trigger does (base64, then UTF-8 JSON); never raises."""
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return Decoded(None, None, "not base64 (the queue trigger cannot read it; host.json messageEncoding)")
    text = raw.decode("utf-8", "replace")  # as core.app.outbound_exec.run_outbound keys it
    try:
        raw.decode("utf-8")
        return Decoded(text, json.loads(text))
    except ValueError:
        return Decoded(text, None, "not UTF-8 JSON")


def _key(queue: str, message: Any, dec: Decoded) -> str:
    if dec.text is None:
        return str(message.id)
    if queue == "outbound":
        return message_key(dec.text, dec.data)
    if isinstance(dec.data, dict) and isinstance(dec.data.get("message_id"), str):
        return dec.data["message_id"]
    return str(message.id)


class _Scan:
    """Receives every message of a queue once, page by page, holding a lease on each;
    ``release()`` makes the ones still held visible again."""

    def __init__(self, client: Any, lease: int = LEASE_SECONDS):
        self.client = client
        self.lease = lease
        self.held: dict[str, Any] = {}
        self._seen: set[str] = set()

    def __iter__(self) -> Iterator[Any]:
        while True:
            page = list(self.client.receive_messages(messages_per_page=PAGE, max_messages=PAGE,
                                                     visibility_timeout=self.lease))
            fresh = [m for m in page if m.id not in self._seen]
            if not fresh:
                return
            for m in fresh:  # all held before the first is yielded: a caller may stop early
                self._seen.add(m.id)
                self.held[m.id] = m
            yield from fresh

    def take(self, message: Any) -> bool:
        """Delete a held message; False when someone else took it meanwhile."""
        self.held.pop(message.id, None)
        try:
            self.client.delete_message(message.id, message.pop_receipt)
            return True
        except (ResourceNotFoundError, HttpResponseError) as exc:
            logs.info(log, "poison message taken by someone else", message_id=message.id, error=type(exc).__name__)
            return False

    def release(self) -> None:
        for m in list(self.held.values()):
            try:
                self.client.update_message(m.id, m.pop_receipt, visibility_timeout=0)
            except (ResourceNotFoundError, HttpResponseError):
                pass  # replayed or deleted by someone else meanwhile
        self.held.clear()


def _entry(app: Any, queue: str, message: Any, ops: Operations | None) -> PoisonEntry:
    dec = decode(message.content)
    key = _key(queue, message, dec)
    entry = PoisonEntry(queue=queue, id=key, queue_message_id=str(message.id), in_poison_queue=True,
                        decodable=dec.text is not None, raw_size=len(message.content.encode("utf-8")),
                        reason=dec.problem, inserted_on=message.inserted_on.isoformat() if message.inserted_on else "")
    rec = ops.get(key) if ops is not None and dec.text is not None else None
    if rec is not None:
        entry.status, entry.event_id, entry.updated_at = rec.status, rec.event_id, rec.updated_at
        entry.reason = rec.reason or entry.reason
    elif dec.text is None:
        entry.status = "undecodable"
    return entry


def approximate_count(app: Any, queue: str) -> int:
    return int(app.storage.raw_queue(f"{check_queue(queue)}-poison").get_queue_properties().approximate_message_count)


def list_poison(app: Any, queue: str = "outbound") -> list[PoisonEntry]:
    """Every message of ``<queue>-poison``, then (outbound) rejected operations that are
    not in the poison queue any more (their message is on the operation record)."""
    queue = check_queue(queue)
    ops = Operations(app.storage) if queue == "outbound" else None
    scan = _Scan(app.storage.raw_queue(f"{queue}-poison"))
    out: list[PoisonEntry] = []
    try:
        for m in scan:
            out.append(_entry(app, queue, m, ops))
    finally:
        scan.release()
    if ops is not None:
        listed = {e.id for e in out}
        for rec in ops.all():
            if rec.key not in listed and rec.status in (delivery.REJECTED, "failed"):
                out.append(PoisonEntry(queue=queue, id=rec.key, queue_message_id="", in_poison_queue=False,
                                       decodable=True, raw_size=len(rec.message.encode("utf-8")), status=rec.status,
                                       reason=rec.reason, event_id=rec.event_id, updated_at=rec.updated_at))
    return out


@dataclass
class ReplayReport:
    replayed: list[str]
    skipped: list[tuple[str, str]]  # (id, why)
    already: list[str]  # asked for, replayed before (idempotent)

    def to_json(self) -> dict[str, Any]:
        return {"replayed": self.replayed, "skipped": [{"id": i, "why": w} for i, w in self.skipped],
                "already_replayed": self.already}


def _content_for_queue(content: str, dec: Decoded) -> str | None:
    """What to put back: the message as it was; a plain JSON message (a producer that
    forgot base64, AZURE.md section 1) base64-encoded; None when nothing can read it."""
    if dec.text is not None:
        return content
    try:
        json.loads(content)
    except ValueError:
        return None
    return base64.b64encode(content.encode("utf-8")).decode("ascii")


def replay(app: Any, queue: str = "outbound", ident: str | None = None) -> ReplayReport:
    """Move poisoned messages back to their queue: the one whose id (operation id or queue
    message id) is ``ident``, or every one when ``ident`` is None."""
    queue = check_queue(queue)
    ops = Operations(app.storage) if queue == "outbound" else None
    poison = app.storage.raw_queue(f"{queue}-poison")
    target = app.storage.raw_queue(queue)
    report = ReplayReport([], [], [])
    scan = _Scan(poison)
    try:
        for m in scan:
            dec = decode(m.content)
            key = _key(queue, m, dec)
            if ident is not None and ident not in (key, m.id):
                continue
            content = _content_for_queue(m.content, dec)
            if content is None:
                report.skipped.append((key, f"{dec.problem}: left in {queue}-poison"))
                if ident is not None:
                    break
                continue
            if not scan.take(m):
                report.skipped.append((key, "taken by another consumer meanwhile"))
                continue
            try:
                target.send_message(content)
            except Exception:
                poison.send_message(m.content)  # never lose it
                raise
            report.replayed.append(key)
            rec = ops.get(key) if ops is not None else None
            if rec is not None and not delivery.is_final(rec.status):
                set_status(ops, rec, delivery.REPLAYED, app.clock(), reason="replayed by an administrator")
            logs.info(log, "poison message replayed", queue=queue, id=key, message_id=m.id)
            if ident is not None:
                break
    finally:
        scan.release()
    if ident is not None and not report.replayed and not report.skipped and ops is not None:
        rec = ops.get(ident)
        if rec is not None and (rec.status in (delivery.REPLAYED, delivery.RUNNING, delivery.WAITING)
                                or delivery.is_final(rec.status)):
            report.already.append(ident)
        elif rec is not None and rec.status in (delivery.REJECTED, "failed") and rec.message:
            # rejected, but its message is no longer in the poison queue: send the recorded copy
            target.send_message(base64.b64encode(rec.message.encode("utf-8")).decode("ascii"))
            set_status(ops, rec, delivery.REPLAYED, app.clock(), reason="replayed by an administrator")
            report.replayed.append(ident)
    return report
