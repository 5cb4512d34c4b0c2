"""For the Communifire side: build, validate and enqueue one outbound message.

Owns: the producer half of the contract in ``docs/messages.md``. Usable on its own
(it needs only ``azure-storage-queue`` and ``jsonschema``): validate against the JSON
Schema and the app's own parser, then put the UTF-8 JSON on the ``outbound`` queue
*base64-encoded* (``TextBase64EncodePolicy``), which is what the Functions queue trigger
expects by default (AZURE.md section 1: an unencoded message lands in the poison queue).

    from core.app.producer import OutboundProducer
    producer = OutboundProducer.from_connection_string(conn)
    producer.send(message_dict)
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "outbound-message.v1.schema.json"
QUEUE = "outbound"


class InvalidMessage(ValueError):
    """The message breaks the contract; ``problems`` lists each reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate(message: Mapping[str, Any]) -> None:
    """Check a message as the consumer will: the JSON Schema, the size in bytes of what goes
    on the queue, the app's parser and its admission rules (space calendar, rule C6), with
    the reasons the operation record would show (``core.plan.outbound.admission``).

    Raises:
        InvalidMessage: with every schema problem, or the parser's reason.
    """
    from jsonschema import Draft202012Validator

    problems = [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<message>'}: {err.message}"
        for err in sorted(Draft202012Validator(schema()).iter_errors(dict(message)), key=lambda e: list(e.absolute_path))
    ]
    size = len(encode(message).encode("utf-8"))
    from core.plan.outbound.admission import refusal, size_refusal

    if size_refusal(size):
        problems.append(size_refusal(size))
    if problems:
        raise InvalidMessage(problems)
    from core.plan.outbound import MessageError, parse_message

    envelope = ("traceparent", "tracestate")  # trace context, not part of the change (telemetry)
    try:
        parsed = parse_message({k: v for k, v in message.items() if k not in envelope})
    except MessageError as exc:
        raise InvalidMessage([f"invalid message: {exc}"]) from exc
    reason = refusal(parsed, size)
    if reason:
        raise InvalidMessage([reason])


def encode(message: Mapping[str, Any]) -> str:
    """The queue body (before base64): compact UTF-8 JSON."""
    return json.dumps(dict(message), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class OutboundProducer:
    """Enqueues validated messages on the ``outbound`` queue (base64)."""

    def __init__(self, queue_client: Any):
        self._queue = queue_client

    @classmethod
    def from_connection_string(cls, connection_string: str, queue: str = QUEUE) -> "OutboundProducer":
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        client = QueueClient.from_connection_string(
            connection_string, queue, message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy())
        return cls(client)

    def send(self, message: Mapping[str, Any]) -> str:
        """Validate and enqueue; returns the queue message id.

        Raises:
            InvalidMessage: nothing is enqueued.
        """
        validate(message)
        from core.adapters import telemetry
        from core.plan.outbound.admission import size_refusal

        # The W3C trace context of the caller, so apply_outbound continues its trace.
        with telemetry.producing(QUEUE, operation_id=message.get("operation_id")) as trace_fields:
            body = encode({**message, **trace_fields})
            too_big = size_refusal(len(body.encode("utf-8")))  # the trace context counts too
            if too_big:
                raise InvalidMessage([too_big])
            sent = self._queue.send_message(body)
        return str(getattr(sent, "id", ""))
