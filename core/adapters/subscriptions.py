"""Graph subscriptions and the notification endpoint's storage (the shell, issue 13).

Owns: the Graph calls on ``/subscriptions`` (create, renew, delete; GRAPH.md 7), the
``Subscriptions`` table (subscription id -> Communifire user and the sealed
``clientState``, read by the anonymous endpoints), the ``SyncRequests`` table (the
per-user debounce marker) and the ``NotificationStats`` table (per-day counters of
accepted and discarded notifications). A ``clientState`` is sealed at rest, bound to its
subscription id, and never logged.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from core.adapters.crypto import CryptoError, Sealer
from core.adapters.graph import GraphClient
from core.adapters.storage import Storage, escape_key, unescape_key
from core.plan import notify
from core.plan.timezones import parse_graph_datetime

_SUB_PK = "sub"
_REQ_PK = "user"


def _graph_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def parse_expiry(value: Any) -> datetime:
    """Graph's ``expirationDateTime`` (an ISO instant with 7 fraction digits)."""
    return parse_graph_datetime({"dateTime": str(value), "timeZone": "UTC"})


# -- Graph ---------------------------------------------------------------------------


def create(graph: GraphClient, *, notification_url: str, lifecycle_url: str, expires_at: datetime,
           client_state: str) -> tuple[str, datetime]:
    """POST /subscriptions on the user's events; returns (id, expiry). Graph validates
    both URLs with the handshake before it answers (GRAPH.md 7)."""
    body = {
        "changeType": notify.CHANGE_TYPES,
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": lifecycle_url,  # only settable at creation
        "resource": notify.RESOURCE,
        "expirationDateTime": _graph_time(expires_at),
        "clientState": client_state,
    }
    made = graph.request("POST", "subscriptions", json_body=body, prefer=())[1] or {}
    return str(made["id"]), parse_expiry(made["expirationDateTime"])


def renew(graph: GraphClient, subscription_id: str, expires_at: datetime) -> datetime:
    """PATCH the expiry (GRAPH.md 7: renew well before it)."""
    done = graph.request("PATCH", f"subscriptions/{subscription_id}",
                         json_body={"expirationDateTime": _graph_time(expires_at)}, prefer=())[1] or {}
    return parse_expiry(done.get("expirationDateTime") or _graph_time(expires_at))


def delete(graph: GraphClient, subscription_id: str) -> None:
    graph.request("DELETE", f"subscriptions/{subscription_id}", prefer=())


# -- tables --------------------------------------------------------------------------


class SubscriptionIndex:
    """Subscriptions table: PartitionKey 'sub', RowKey the Graph subscription id."""

    def __init__(self, storage: Storage, sealer: Sealer | None = None):
        """``sealer``: needed to store or check a clientState, not to list or remove rows."""
        self._table = storage.table("Subscriptions")
        self._sealer = sealer

    @staticmethod
    def _owner(subscription_id: str) -> str:
        return f"subscription:{subscription_id}"

    def put(self, subscription_id: str, user_id: str, client_state: str, expires_at: datetime) -> None:
        assert self._sealer is not None, "storing a clientState needs the sealer"
        self._table.upsert_entity({
            "PartitionKey": _SUB_PK, "RowKey": escape_key(subscription_id), "UserId": user_id,
            "ClientState": self._sealer.seal(client_state.encode("utf-8"), owner=self._owner(subscription_id)),
            "ExpiresAt": expires_at,
        }, mode="replace")

    def lookup(self, subscription_id: str) -> tuple[str, str] | None:
        """(user id, clientState) of a subscription of ours, or None."""
        try:
            entity = self._table.get_entity(_SUB_PK, escape_key(subscription_id))
        except ResourceNotFoundError:
            return None
        assert self._sealer is not None, "checking a clientState needs the sealer"
        try:
            state = self._sealer.open(entity["ClientState"], owner=self._owner(subscription_id)).decode("utf-8")
        except CryptoError:
            return None  # a key no longer configured: treated as unknown, the timer still polls
        return str(entity["UserId"]), state

    def touch(self, subscription_id: str, expires_at: datetime) -> None:
        """Record a renewed expiry."""
        try:
            self._table.update_entity({"PartitionKey": _SUB_PK, "RowKey": escape_key(subscription_id),
                                       "ExpiresAt": expires_at}, mode="merge")
        except ResourceNotFoundError:
            pass

    def remove(self, subscription_id: str) -> None:
        try:
            self._table.delete_entity(_SUB_PK, escape_key(subscription_id))
        except ResourceNotFoundError:
            pass

    def ids_for_user(self, user_id: str) -> list[str]:
        rows = self._table.query_entities("PartitionKey eq @pk and UserId eq @u",
                                          parameters={"pk": _SUB_PK, "u": user_id}, select=["RowKey"])
        return [unescape_key(r["RowKey"]) for r in rows]


class SyncRequests:
    """SyncRequests table: one debounce marker per user (PartitionKey 'user')."""

    def __init__(self, storage: Storage):
        self._table = storage.table("SyncRequests")

    def get(self, user_id: str) -> tuple[notify.SyncRequest | None, str]:
        try:
            e = self._table.get_entity(_REQ_PK, escape_key(user_id))
        except ResourceNotFoundError:
            return None, ""
        return notify.SyncRequest(bool(e.get("Pending")), e.get("VisibleAt")), e.metadata.get("etag", "")

    def claim(self, user_id: str, visible_at: datetime, etag: str) -> bool:
        """Mark a job pending; False when another request got there first."""
        entity = {"PartitionKey": _REQ_PK, "RowKey": escape_key(user_id), "Pending": True, "VisibleAt": visible_at}
        try:
            if etag:
                self._table.update_entity(entity, mode="replace", etag=etag, match_condition=MatchConditions.IfNotModified)
            else:
                self._table.create_entity(entity)
        except (ResourceExistsError, ResourceModifiedError):
            return False
        return True

    def started(self, user_id: str) -> None:
        """A notification sync starts: later notifications schedule another one."""
        try:
            self._table.update_entity({"PartitionKey": _REQ_PK, "RowKey": escape_key(user_id), "Pending": False},
                                      mode="merge")
        except ResourceNotFoundError:
            pass

    def remove(self, user_id: str) -> None:
        try:
            self._table.delete_entity(_REQ_PK, escape_key(user_id))
        except ResourceNotFoundError:
            pass


class NotificationStats:
    """NotificationStats table: PartitionKey the UTC day, RowKey a counter name."""

    def __init__(self, storage: Storage):
        self._table = storage.table("NotificationStats")

    def add(self, now: datetime, counts: dict[str, int]) -> None:
        """Best effort: a counter lost to contention must never fail a notification."""
        day = now.astimezone(timezone.utc).date().isoformat()
        for name, n in counts.items():
            if n <= 0:
                continue
            for _ in range(5):
                try:
                    e = self._table.get_entity(day, name)
                    e["Count"] = int(e.get("Count", 0)) + n
                    self._table.update_entity(e, mode="replace", etag=e.metadata["etag"],
                                              match_condition=MatchConditions.IfNotModified)
                    break
                except ResourceNotFoundError:
                    try:
                        self._table.create_entity({"PartitionKey": day, "RowKey": name, "Count": n})
                        break
                    except ResourceExistsError:
                        continue
                except ResourceModifiedError:
                    continue

    def read(self) -> Iterator[tuple[str, str, int]]:
        """(day, counter, count), every day kept."""
        for e in self._table.list_entities():
            yield e["PartitionKey"], e["RowKey"], int(e.get("Count", 0))
