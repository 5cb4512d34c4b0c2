"""Connected users: their record, when they are due, and the Users table adapter.

Owns: the user record (connection state, tenant, sealed token cache, delta state, last
sync, last error, next due time, a held plan, the Graph subscription's id, expiry,
state and reason) and the pure decision of who is due.
States: ``connected`` (syncing), ``needs_reconnect`` (consent revoked or token refused:
kept, not synced, rule in SPEC section 7), ``disconnected`` is not stored (the row is
deleted with everything that could reach the mailbox).
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError

from core.adapters.storage import Storage, escape_key, join_chunks, split_chunks, unescape_key
from core.plan import notify

CONNECTED = "connected"
NEEDS_RECONNECT = "needs_reconnect"
#: ``last_error`` of a user whose token cache's key is not configured (kept, not synced).
KEY_MISSING_PREFIX = "key missing: "
_PK = "user"
_TRANSACTION_LIMIT = 100
#: The Users columns the timer reads (``UserStore.schedule_view``): everything the due
#: rule (``due_users``) looks at. A rule that reads another column adds it here.
SCHEDULE_COLUMNS = ("RowKey", "State", "NextDueAt", "LastSyncAt", "Failures", "DeltaWindowStart",
                    # which users wait for a token key, for the round's one error (issue 10)
                    "LastError",
                    # the subscription's, for the due rule with notifications on (issue 13)
                    "SubscriptionId", "SubscriptionExpiresAt", "SubscriptionStatus", "SubscriptionRetryAt")
_T = TypeVar("_T")
_KID_IN_ERROR = re.compile(r"key '([^']+)'")


def waiting_for_key(users: Iterable["UserRecord"]) -> tuple[list[str], list[str]]:
    """The users whose token cache's key is not configured (``last_error`` starts with
    ``KEY_MISSING_PREFIX``) and the key ids they need, sorted: what the timer reports as
    one error per round (issue 10), however many users wait."""
    held, kids = [], set()
    for user in users:
        if user.state == CONNECTED and user.last_error.startswith(KEY_MISSING_PREFIX):
            held.append(user.user_id)
            match = _KID_IN_ERROR.search(user.last_error)
            kids.add(match.group(1) if match else "?")
    return sorted(held), sorted(kids)


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    state: str
    tenant_id: str = ""
    oid: str = ""
    upn: str = ""
    home_account_id: str = ""
    sealed_cache: str = field(default="", repr=False)
    connected_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_error: str = ""
    next_due_at: datetime | None = None
    failures: int = 0
    delta_link: str = field(default="", repr=False)
    delta_window_start: str = ""
    held_plan: str = ""
    subscription_id: str = ""
    subscription_expires_at: datetime | None = None
    subscription_status: str = ""
    subscription_error: str = ""
    subscription_retry_at: datetime | None = None
    etag: str = ""
    #: read with only some columns (``UserStore.schedule_view``): never saved whole
    partial: bool = field(default=False, repr=False, compare=False)

    @property
    def subscription(self) -> notify.SubscriptionState:
        return notify.SubscriptionState(self.subscription_id, self.subscription_expires_at, self.subscription_status,
                                        self.subscription_error, self.subscription_retry_at)

    def with_subscription(self, sub: notify.SubscriptionState) -> "UserRecord":
        return replace(self, subscription_id=sub.id, subscription_expires_at=sub.expires_at,
                       subscription_status=sub.status, subscription_error=sub.error, subscription_retry_at=sub.retry_at)

    def public(self) -> dict[str, Any]:
        """What an administrator may see (no tokens, no delta link)."""
        return {
            "user_id": self.user_id,
            "state": self.state,
            "upn": self.upn,
            "tenant_id": self.tenant_id,
            "connected_at": _iso(self.connected_at),
            "last_sync_at": _iso(self.last_sync_at),
            "next_due_at": _iso(self.next_due_at),
            "last_error": self.last_error,
            "held_plan": bool(self.held_plan),
            "pending": self.pending(),
            "subscription": {
                "state": self.subscription_status or "none",
                "expires_at": _iso(self.subscription_expires_at),
                "reason": self.subscription_error,
            },
        }

    def pending(self) -> str:
        """What is waiting on this user, in words an administrator can act on."""
        if self.state == NEEDS_RECONNECT:
            return "the user must connect Outlook again"
        if self.last_error.startswith(KEY_MISSING_PREFIX):
            return "an administrator must configure the token cache's key (outlook-sync doctor)"
        if self.held_plan:
            return "a sync held for confirmation (outlook-sync plan / confirm)"
        if self.failures:
            return f"retrying after {self.failures} failed sync(s)"
        return ""

    def notifications(self) -> str:
        """The subscription in words: state, expiry, and why a user is polled instead."""
        sub = self.subscription
        if sub.status == notify.ACTIVE and sub.expires_at is not None:
            return f"active until {_iso(sub.expires_at)}"
        if sub.status:
            return f"{sub.status}: {sub.error} (timer polling)" if sub.error else f"{sub.status} (timer polling)"
        return "none (timer polling)"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def is_due(user: UserRecord, now: datetime, subscription_max_minutes: int | None = None) -> bool:
    """A connected user whose next sync time has come, or (with notifications on, i.e.
    ``subscription_max_minutes`` given) whose subscription must be created or renewed:
    the sync job does that work, the timer never calls Graph (issue 13)."""
    if user.state != CONNECTED:
        return False
    if user.next_due_at is None or user.next_due_at <= now:
        return True
    if subscription_max_minutes is None:
        return False
    return notify.subscription_action(user.subscription, now, subscription_max_minutes, True) is not None


def due_users(users: Iterable[UserRecord], now: datetime, subscription_max_minutes: int | None = None) -> list[UserRecord]:
    """Users due now (``is_due``), oldest first."""
    due = [u for u in users if is_due(u, now, subscription_max_minutes)]
    return sorted(due, key=lambda u: (u.next_due_at or datetime.min.replace(tzinfo=timezone.utc), u.user_id))


def after_success(user: UserRecord, now: datetime, interval_minutes: int) -> UserRecord:
    return replace(user, last_sync_at=now, last_error="", failures=0, next_due_at=now + timedelta(minutes=interval_minutes))


def after_failure(user: UserRecord, now: datetime, interval_minutes: int, error: str) -> UserRecord:
    """Back off exponentially (up to a day) after transient failures."""
    failures = user.failures + 1
    delay = min(timedelta(minutes=interval_minutes * 2 ** min(failures, 7)), timedelta(days=1))
    return replace(user, last_error=error[:500], failures=failures, next_due_at=now + delay)


class UserStore:
    """The Users table (PartitionKey 'user', RowKey the Communifire user id)."""

    def __init__(self, storage: Storage):
        self._table = storage.table("Users")

    @staticmethod
    def _to_record(entity: dict[str, Any]) -> UserRecord:
        return UserRecord(
            user_id=unescape_key(entity["RowKey"]),
            state=entity.get("State", CONNECTED),
            tenant_id=entity.get("TenantId", ""),
            oid=entity.get("Oid", ""),
            upn=entity.get("Upn", ""),
            home_account_id=entity.get("HomeAccountId", ""),
            sealed_cache=join_chunks("TokenCache", entity) or "",
            connected_at=entity.get("ConnectedAt"),
            last_sync_at=entity.get("LastSyncAt"),
            last_error=entity.get("LastError", ""),
            next_due_at=entity.get("NextDueAt"),
            failures=int(entity.get("Failures", 0)),
            delta_link=join_chunks("DeltaLink", entity) or "",
            delta_window_start=entity.get("DeltaWindowStart", ""),
            held_plan=join_chunks("HeldPlan", entity) or "",
            subscription_id=entity.get("SubscriptionId", ""),
            subscription_expires_at=entity.get("SubscriptionExpiresAt"),
            subscription_status=entity.get("SubscriptionStatus", ""),
            subscription_error=entity.get("SubscriptionError", ""),
            subscription_retry_at=entity.get("SubscriptionRetryAt"),
            etag=entity.metadata.get("etag", "") if hasattr(entity, "metadata") else "",
            partial="TokenCacheChunks" not in entity,
        )

    @staticmethod
    def _to_entity(user: UserRecord) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": _PK,
            "RowKey": escape_key(user.user_id),
            "State": user.state,
            "TenantId": user.tenant_id,
            "Oid": user.oid,
            "Upn": user.upn,
            "HomeAccountId": user.home_account_id,
            "LastError": user.last_error,
            "Failures": user.failures,
            "DeltaWindowStart": user.delta_window_start,
            "SubscriptionId": user.subscription_id,
            "SubscriptionStatus": user.subscription_status,
            "SubscriptionError": user.subscription_error,
        }
        for name, value in (
            ("ConnectedAt", user.connected_at),
            ("LastSyncAt", user.last_sync_at),
            ("NextDueAt", user.next_due_at),
            ("SubscriptionExpiresAt", user.subscription_expires_at),
            ("SubscriptionRetryAt", user.subscription_retry_at),
        ):
            if value is not None:
                entity[name] = value
        entity.update(split_chunks("TokenCache", user.sealed_cache))
        entity.update(split_chunks("DeltaLink", user.delta_link))
        entity.update(split_chunks("HeldPlan", user.held_plan))
        return entity

    def get(self, user_id: str) -> UserRecord | None:
        try:
            return self._to_record(self._table.get_entity(_PK, escape_key(user_id)))
        except ResourceNotFoundError:
            return None

    def all(self) -> Iterator[UserRecord]:
        for entity in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": _PK}):
            yield self._to_record(entity)

    def schedule_view(self) -> Iterator[UserRecord]:
        """Every user with only the columns the timer's due rule reads (``SCHEDULE_COLUMNS``),
        so a tick over 10,000 users does not move their token caches (issue 14). Such a
        record is ``partial``: ``save`` refuses it."""
        for entity in self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _PK}, select=list(SCHEDULE_COLUMNS), results_per_page=1000
        ):
            yield self._to_record(entity)

    def claim(self, user_ids: Iterable[str], until: datetime) -> list[str]:
        """Set ``next_due_at`` of these users to ``until`` (only that column), 100 to a
        transaction (all users share one partition), so their next tick does not queue
        them again while their jobs wait. A user whose row is gone (disconnected
        meanwhile) is left out. Returns the claimed users' ids."""
        claimed: list[str] = []
        for chunk in _chunks(list(user_ids), _TRANSACTION_LIMIT):
            ops = [("update", {"PartitionKey": _PK, "RowKey": escape_key(uid), "NextDueAt": until}, {"mode": "merge"})
                   for uid in chunk]
            try:
                self._table.submit_transaction(ops)
                claimed.extend(chunk)
                continue
            except (TableTransactionError, ResourceNotFoundError):
                pass  # one of them is gone: claim them one by one
            for uid, op in zip(chunk, ops, strict=True):
                try:
                    self._table.update_entity(op[1], mode="merge")
                    claimed.append(uid)
                except ResourceNotFoundError:
                    continue
        return claimed

    def save(self, user: UserRecord) -> UserRecord:
        """Write the record; with an etag, only if nobody changed it meanwhile."""
        if user.partial:
            raise ValueError(f"user {user.user_id} was read without all its columns; read it whole to save it")
        entity = self._to_entity(user)
        # mode="replace", so chunks of a once-longer value do not linger.
        if user.etag:
            meta = self._table.update_entity(
                entity, mode="replace", etag=user.etag, match_condition=MatchConditions.IfNotModified
            )
        else:
            meta = self._table.upsert_entity(entity, mode="replace")
        return replace(user, etag=meta.get("etag", ""))

    def delete(self, user_id: str) -> bool:
        """Delete the record; False when there was none (delete_entity ignores a 404)."""
        if self.get(user_id) is None:
            return False
        self._table.delete_entity(_PK, escape_key(user_id))
        return True
