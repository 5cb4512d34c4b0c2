"""Table and Queue Storage adapters (the shell): clients, names, keys, messages.

Owns: table and queue names (with the optional prefix), the key escaping that keeps
external ids (Outlook ids, Communifire ids) valid as PartitionKey/RowKey, chunking of
long values across properties (64 KiB per property), and base64 queue messages as the
Functions queue trigger expects (AZURE.md). Clients are built once per process from
``Settings`` and passed in (STYLE rule 8).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from core.adapters import telemetry
from core.config.settings import FEED_QUEUES, QUEUE_SETTINGS, Settings

log = logging.getLogger(__name__)

TABLES = ("Users", "AuthFlows", "Events", "OutlookIndex", "MeetingIndex", "Audit", "Payloads", "Operations",
          "Subscriptions", "SyncRequests", "NotificationStats", "Bindings")
QUEUES = tuple(QUEUE_SETTINGS)  # logical names; the real ones come from settings
#: Queue messages are at most 64 KiB; base64 adds a third. Larger payloads go by reference.
MAX_INLINE_MESSAGE = 45_000
_CHUNK = 30_000  # characters per string property (64 KiB of UTF-16 with room to spare)
_FORBIDDEN = {"/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F"}


def escape_key(value: str) -> str:
    """Make any string usable as a PartitionKey/RowKey, reversibly (AZURE.md section 3)."""
    out = value.replace("%", "%25")
    for ch, rep in _FORBIDDEN.items():
        out = out.replace(ch, rep)
    return "".join(ch if ord(ch) >= 0x20 and ord(ch) != 0x7F else f"%{ord(ch):02X}" for ch in out)


def unescape_key(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


def split_chunks(prefix: str, text: str) -> dict[str, str]:
    """Spread a long string over ``prefix0..prefixN`` properties."""
    parts = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    out = {f"{prefix}{i}": part for i, part in enumerate(parts)}
    out[f"{prefix}Chunks"] = len(parts)  # type: ignore[assignment]
    return out


def join_chunks(prefix: str, entity: Mapping[str, Any]) -> str | None:
    count = entity.get(f"{prefix}Chunks")
    if not count:
        return None
    return "".join(entity.get(f"{prefix}{i}", "") for i in range(int(count)))


class StorageCalls:
    """Round trips to the storage account, counted where they leave the process.

    ``total`` counts every HTTP request the Table and Queue clients send (retries and
    transaction batches included, one each); ``by_kind`` splits them by
    ``table:<name>`` / ``queue:<name>`` (``table:transaction`` for a transaction); ``mine()`` is the calling thread's own count, so
    one sync can report its own calls while other syncs run on other threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.by_kind: Counter[str] = Counter()

    def record(self, kind: str) -> None:
        with self._lock:
            self.by_kind[kind] += 1
        self._local.count = getattr(self._local, "count", 0) + 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_kind.values())

    def mine(self) -> int:
        return getattr(self._local, "count", 0)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.by_kind)


class CountingTransport(RequestsTransport):
    """The SDKs' own HTTP transport, counting each request it sends (``StorageCalls``)."""

    def __init__(self, calls: StorageCalls, service: str, **kwargs: Any):
        super().__init__(**kwargs)
        self._calls = calls
        self._service = service

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        path = urlsplit(request.url).path.strip("/").split("/")
        # Azurite puts the account name first (path-style URLs); Azure does not.
        name = path[1] if len(path) > 1 and path[0].startswith("devstoreaccount") else path[0]
        name = name.split("(", 1)[0] or "-"
        if name == "$batch":
            name = "transaction"  # an entity-group transaction (its table is inside the body)
        self._calls.record(f"{self._service}:{name}")
        return super().send(request, **kwargs)


class Storage:
    """Named tables and queues of one storage account."""

    def __init__(self, settings: Settings, **client_options: Any):
        """``client_options`` go to the SDK clients (e.g. ``retry_total=0, connection_timeout=3``
        for a quick reachability check; the defaults retry patiently)."""
        self._settings = settings
        self._prefix = settings.name_prefix
        self._tables: dict[str, TableClient] = {}
        self._queues: dict[str, QueueClient] = {}
        self.calls = StorageCalls()
        # the transports take the connection options (timeouts); the clients the rest (retries)
        tables = CountingTransport(self.calls, "table", **client_options)
        queues = CountingTransport(self.calls, "queue", **client_options)
        conn = settings.storage
        if conn.uses_identity:
            from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

            cred = ManagedIdentityCredential(client_id=conn.client_id) if conn.client_id else DefaultAzureCredential()
            self._table_service = TableServiceClient(endpoint=conn.table_uri, credential=cred, transport=tables,
                                                     **client_options)
            self._queue_service = QueueServiceClient(account_url=conn.queue_uri, credential=cred, transport=queues,
                                                     **client_options)
        else:
            self._table_service = TableServiceClient.from_connection_string(conn.connection_string, transport=tables,
                                                                            **client_options)
            self._queue_service = QueueServiceClient.from_connection_string(conn.connection_string, transport=queues,
                                                                            **client_options)

    def table_name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def queue_name(self, name: str) -> str:
        """The real queue behind a logical name (``sync-jobs``, ``outbound-poison``...):
        from the settings the triggers bind (``%SyncJobsQueue%``...)."""
        return self._settings.queue_name(name)

    def table(self, name: str) -> TableClient:
        if name not in self._tables:
            self._tables[name] = self._table_service.get_table_client(self.table_name(name))
        return self._tables[name]

    def queue(self, name: str) -> QueueClient:
        if name not in self._queues:
            self._queues[name] = self._queue_service.get_queue_client(
                self.queue_name(name),
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        return self._queues[name]

    def raw_queue(self, name: str) -> QueueClient:
        """A queue client that neither encodes nor decodes: message content exactly as stored
        (poison tools read messages that may not be base64; see ``core.app.poison``)."""
        return self._queue_service.get_queue_client(self.queue_name(name))

    def ensure(self) -> None:
        """Create every table and queue (and poison queue) that does not exist yet."""
        for name in TABLES:
            try:
                self._table_service.create_table(self.table_name(name))
            except ResourceExistsError:
                pass
        for name in QUEUES:
            # the feeds Communifire reads have no trigger, so no poison twin
            for qname in (name,) if name in FEED_QUEUES else (name, f"{name}-poison"):
                try:
                    self._queue_service.create_queue(self.queue_name(qname))
                except ResourceExistsError:
                    pass

    def publish(self, feed: str, message: Mapping[str, Any]) -> None:
        """One message on a Communifire-facing feed (base64 JSON, at most 64 KiB: the
        caller shrinks large ones, they are never stored by reference in a table the
        backend cannot read)."""
        body = json.dumps(message, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        with telemetry.producing(feed, event_id=message.get("event_id")):  # a span; the contract has no trace fields
            self.queue(feed).send_message(body)

    def ping_tables(self) -> None:
        next(iter(self._table_service.list_tables(results_per_page=1)), None)

    def ping_queues(self) -> None:
        next(iter(self._queue_service.list_queues(results_per_page=1)), None)

    # -- queue messages -------------------------------------------------------------

    def send(self, queue: str, message: Mapping[str, Any], visibility_timeout: int | None = None) -> None:
        """Put a JSON message on a queue; a large one goes by reference (Payloads table).

        The envelope carries the sender's W3C trace context (``traceparent``), so the
        consumer continues the same trace (core/adapters/telemetry.py).
        """
        with telemetry.producing(queue, user_id=message.get("user_id")) as trace_fields:
            message = {**message, **trace_fields}
            body = json.dumps(message, separators=(",", ":"), sort_keys=True)
            if len(body) > MAX_INLINE_MESSAGE:
                ref = message.get("message_id") or message.get("id")
                if not ref:
                    raise ValueError("a large message needs a message_id to be stored by reference")
                entity = {"PartitionKey": "payload", "RowKey": escape_key(str(ref))}
                entity.update(split_chunks("Body", body))
                self.table("Payloads").upsert_entity(entity)
                body = json.dumps({"payload_ref": str(ref), **trace_fields})
            self.queue(queue).send_message(body, visibility_timeout=visibility_timeout)

    def resolve(self, body: str) -> dict[str, Any]:
        """Parse a message body, fetching a by-reference payload.

        The envelope's trace context is left out: it is for the consumer's span
        (telemetry.consuming), not part of the message.
        """
        message = json.loads(body)
        if isinstance(message, dict) and set(message) - set(telemetry.TRACE_FIELDS) == {"payload_ref"}:
            entity = self.table("Payloads").get_entity("payload", escape_key(message["payload_ref"]))
            message = json.loads(join_chunks("Body", entity) or "{}")
        if not isinstance(message, dict):
            raise ValueError("a queue message must be a JSON object")
        for name in telemetry.TRACE_FIELDS:
            message.pop(name, None)
        return message

    def drop_payload(self, ref: str) -> None:
        try:
            self.table("Payloads").delete_entity("payload", escape_key(ref))
        except ResourceNotFoundError:
            pass


def query_all(table: TableClient, filter_: str, parameters: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every entity matching a parameterised filter, across continuation pages."""
    yield from table.query_entities(filter_, parameters=dict(parameters or {}))


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
