"""Token-cache keys: rotation and the health check doctor runs (issue 10).

Owns: ``rotate`` (re-seal every token cache with the first key of TokenEncryptionKey,
user by user: a cache that cannot be opened is listed with its reason and left exactly
as it is, never deleted) and ``key_health`` (which key ids the stored caches use, one
cache per key id opened as a sample, and any key id TokenEncryptionKey lacks).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from azure.core.exceptions import ResourceModifiedError

from core.adapters.auth import key_problem
from core.adapters.users import UserRecord
from core.app.bootstrap import App


@dataclass(frozen=True, slots=True)
class RotateFailure:
    user_id: str
    key_id: str
    reason: str


@dataclass
class RotateReport:
    key_id: str
    dry_run: bool
    resealed: list[str] = field(default_factory=list)
    already_current: int = 0
    failures: list[RotateFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"key_id": self.key_id, "dry_run": self.dry_run, "resealed": self.resealed,
                "already_current": self.already_current,
                "failures": [{"user_id": f.user_id, "key_id": f.key_id, "reason": f.reason} for f in self.failures]}


def _reseal(app: App, user: UserRecord) -> UserRecord:
    plain = app.sealer.open(user.sealed_cache, owner=user.user_id)
    return replace(user, sealed_cache=app.sealer.seal(plain, owner=user.user_id))


def rotate(app: App, *, dry_run: bool = False) -> RotateReport:
    """Re-seal every cache not sealed with the first key; list each one that cannot be opened."""
    report = RotateReport(key_id=app.sealer.current_kid, dry_run=dry_run)
    for user in app.users.all():
        if not user.sealed_cache:
            continue
        problem = key_problem(app.sealer, user.sealed_cache, user.user_id)
        if problem is not None:
            report.failures.append(RotateFailure(user.user_id, problem.kid, str(problem)))
            continue
        if not app.sealer.needs_reseal(user.sealed_cache):
            report.already_current += 1
            continue
        if not dry_run:
            try:
                app.users.save(_reseal(app, user))  # etag-guarded: a sync may have saved meanwhile
            except ResourceModifiedError:
                fresh = app.users.get(user.user_id)
                if fresh is not None and fresh.sealed_cache and app.sealer.needs_reseal(fresh.sealed_cache):
                    app.users.save(_reseal(app, fresh))
        report.resealed.append(user.user_id)
    return report


@dataclass(frozen=True, slots=True)
class KeyUse:
    key_id: str
    users: int
    configured: bool
    sample_opens: bool
    detail: str


def key_health(app: App) -> list[KeyUse]:
    """Each key id the stored token caches use: how many users, and whether one of its
    caches opens with the configured keys (one decryption per key id, not per user)."""
    counts: Counter[str] = Counter()
    samples: dict[str, UserRecord] = {}
    for user in app.users.all():
        if not user.sealed_cache:
            continue
        problem = key_problem(app.sealer, user.sealed_cache, user.user_id, open_it=False)
        kid = problem.kid if problem is not None else app.sealer.kid_of(user.sealed_cache)
        counts[kid] += 1
        samples.setdefault(kid, user)
    out = []
    for kid in sorted(counts):
        sample = samples[kid]
        problem = key_problem(app.sealer, sample.sealed_cache, sample.user_id)
        configured = app.sealer.has_key(kid)
        out.append(KeyUse(kid, counts[kid], configured, problem is None,
                          "opens" if problem is None else str(problem)))
    return out
