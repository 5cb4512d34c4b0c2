"""The audit trail: what each sync or operation changed for a user, and why.

Owns: the Audit table (PartitionKey user, RowKey newest-first time + sequence), so an
administrator can read, per user, every action with its rule and reason. A sync writes
its rows together, as batched transactions (issue 14), when it hands its changes over.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping

from core.adapters.storage import Storage, batched, escape_key

_MAX_MS = 10**14
_TRANSACTION_LIMIT = 100  # entities per entity-group transaction (AZURE.md 3)


class AuditStore:
    def __init__(self, storage: Storage):
        self._table = storage.table("Audit")

    def record(self, user_id: str, at: datetime, entries: Iterable[Mapping[str, Any]], source: str) -> int:
        """Write the entries as one user's rows, 100 to a transaction (one partition)."""
        ms = int(at.timestamp() * 1000)
        pk = escape_key(user_id)
        rows = [
            {
                "PartitionKey": pk,
                "RowKey": f"{_MAX_MS - ms:014d}-{seq:04d}-{escape_key(str(entry.get('event_id', '')))[:80]}",
                "At": at,
                "Source": source,
                "Kind": str(entry.get("kind", "")),
                "EventId": str(entry.get("event_id", "")),
                "Rule": str(entry.get("rule", "")),
                "Reason": str(entry.get("reason", ""))[:2000],
            }
            for seq, entry in enumerate(entries)
        ]
        for chunk in batched(rows, _TRANSACTION_LIMIT):
            self._table.submit_transaction([("upsert", row, {"mode": "replace"}) for row in chunk])
        return len(rows)

    def read(self, user_id: str, limit: int = 100) -> Iterator[dict[str, Any]]:
        for i, e in enumerate(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(user_id)})):
            if i >= limit:
                return
            at = e.get("At")
            yield {
                "at": at.astimezone(timezone.utc).isoformat() if isinstance(at, datetime) else at,
                "source": e.get("Source", ""),
                "kind": e.get("Kind", ""),
                "event_id": e.get("EventId", ""),
                "rule": e.get("Rule", ""),
                "reason": e.get("Reason", ""),
            }
