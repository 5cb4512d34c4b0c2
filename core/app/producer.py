"""For the Communifire side: build, validate and enqueue one outbound message.

Owns: the producer half of the contract in ``docs/messages.md``: validate with the same
JSON Schema and checks the consumer runs (``core.app.contracts``, strict: a field the
schema does not declare is refused here, where it can only be a typo), then put the
UTF-8 JSON on the ``outbound`` queue *base64-encoded* (``TextBase64EncodePolicy``),
which is what the Functions queue trigger expects by default (AZURE.md section 1: an
unencoded message lands in the poison queue).

The deployed storage account accepts Microsoft Entra tokens only (no account keys), so
in Azure use ``from_identity`` (``DefaultAzureCredential``: a managed identity, or the
admin's ``az login``); ``from_connection_string`` is for Azurite and local tests.

    from core.app.producer import OutboundProducer
    producer = OutboundProducer.from_identity("https://<account>.queue.core.windows.net")
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
    from core.app.contracts import ContractError, check_version, problems

    found = []
    try:
        check_version("outbound", message)
    except ContractError as exc:
        found += exc.problems
    found += [p for p in problems("outbound", message, strict=True) if not p.startswith("v:")]
    size = len(encode(message).encode("utf-8"))
    from core.plan.outbound.admission import refusal, size_refusal

    if size_refusal(size):
        found.append(size_refusal(size))
    if found:
        raise InvalidMessage(found)
    from core.plan.outbound import MessageError, parse_message

    envelope = ("traceparent", "tracestate")  # trace context, not part of the change (telemetry)
    try:
        if message.get("operation") == "bind":  # bind is checked by the schema alone
            return
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

    @classmethod
    def from_identity(cls, queue_service_uri: str, queue: str = QUEUE, credential: Any = None) -> "OutboundProducer":
        """A producer for the deployed storage account: Microsoft Entra ID, no keys
        (``DefaultAzureCredential`` unless a credential is given). The identity needs
        Storage Queue Data Message Sender on the ``outbound`` queue (infra/app/rbac.bicep)."""
        from azure.identity import DefaultAzureCredential
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        client = QueueClient(queue_service_uri.rstrip("/"), queue, credential=credential or DefaultAzureCredential(),
                             message_encode_policy=TextBase64EncodePolicy(),
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
