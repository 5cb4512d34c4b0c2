"""System figures against the real stack: Azurite and the Outlook emulator, each in a
process of its own, and the app's code in this one (the "host"), so this process's CPU
time is the host's.

Counts come from instrumentation, not estimates: Graph and authority requests from the
emulator's request log, storage round trips from ``Storage.calls`` (a counting transport
under the Azure SDKs). Times are wall-clock medians of interleaved rounds.
"""

from __future__ import annotations

import secrets
import statistics
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

UPN = "alice@contoso.com"


class System:
    """Azurite + the emulator process + an ``App`` in this process."""

    def __init__(self) -> None:
        from devhost.services import Azurite, EmulatorProcess
        from emulator.control import EmulatorControl

        self.azurite = Azurite().start()
        self.emulator = EmulatorProcess().start()
        self.control = EmulatorControl(self.emulator.url, self.emulator.ca_bundle)
        self.control.set_throttle(max_concurrent=64, budget=10_000_000)
        self.tenant_id = self.control.add_tenant(name="Contoso")
        self.client_id, self.secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
        self.redirect = "https://bench.invalid/oauth2/outlook/callback"
        self.control.register_app(self.client_id, self.secret, [self.redirect], self.tenant_id)
        self.control.add_user(self.tenant_id, UPN, "Alice")

    def app(self, prefix: str | None = None, clock: Callable[[], datetime] | None = None) -> Any:
        """A fresh App (its own tables, its own process-wide MSAL apps and session)."""
        from core.adapters.crypto import new_key
        from core.app.bootstrap import App
        from core.config.settings import parse_settings

        if not hasattr(self, "_key"):
            self._key = new_key("k1")
        settings = parse_settings({
            "AzureWebJobsStorage": self.azurite.connection_string,
            "OutlookApiClientID": self.client_id, "OutlookApiClientSecret": self.secret,
            "SAMLTenantID": self.tenant_id, "UseSAMLtenantIDForOutlook": "true", "EnableCalendarSync": "true",
            "TokenEncryptionKey": self._key, "GraphApiBaseUrl": f"{self.emulator.url}/v1.0",
            "AuthorityHost": self.emulator.url, "TlsCaBundle": self.emulator.ca_bundle,
            "SiteUrl": "https://bench.invalid", "StorageNamePrefix": prefix or ("b" + secrets.token_hex(4)),
        })
        app = App(settings, clock=clock) if clock is not None else App(settings)
        app.storage.ensure()
        for queue in ("sync-jobs", "writes", "outbound"):
            app.storage.queue(queue).clear_messages()
        return app

    def connect(self, app: Any, user_id: str) -> None:
        """The connect flow, as the callback runs it (start, sign in, redeem)."""
        from core.adapters import auth

        url = auth.start_connect(app.settings, app.flows, app.make_msal, user_id, app.clock())
        location = self.control.sign_in(url, UPN)
        params = dict(parse_qsl(urlsplit(location).query))
        outcome = auth.finish_connect(app.settings, app.flows, app.users, app.sealer, app.make_msal, params, app.clock())
        assert outcome.ok, outcome.code

    def fill_mailbox(self, singles: int = 200, series: int = 30) -> None:
        """The issue's calendar: 200 singles and 30 series (a third of them twice a week)."""
        today = datetime.now(timezone.utc).date()
        for i in range(singles):
            day = today + timedelta(days=1 + i % 300)
            self.control.create_event(UPN, {
                "subject": f"Meeting {i}",
                "start": {"dateTime": f"{day.isoformat()}T{8 + i % 9:02d}:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": f"{day.isoformat()}T{9 + i % 9:02d}:00:00.0000000", "timeZone": "UTC"}})
        for s in range(series):
            first = today + timedelta(days=1 + s % 7)
            days = [first.strftime("%A").lower()]
            if s % 3 == 0:
                days.append((first + timedelta(days=2)).strftime("%A").lower())
            self.control.create_event(UPN, {
                "subject": f"Series {s}",
                "start": {"dateTime": f"{first.isoformat()}T{9 + s % 8:02d}:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": f"{first.isoformat()}T{9 + s % 8:02d}:30:00.0000000", "timeZone": "UTC"},
                "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": days},
                               "range": {"type": "noEnd", "startDate": first.isoformat()}}})

    def drain(self, app: Any, name: str) -> Any:
        """Every message of a queue, as the Functions host delivers them (its own client:
        the host's dequeue calls are not the app's)."""
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy

        queue = QueueClient.from_connection_string(self.azurite.connection_string, app.storage.queue_name(name),
                                                   message_decode_policy=TextBase64DecodePolicy())
        self.host_calls = 0
        while True:
            batch = list(queue.receive_messages(messages_per_page=32, max_messages=32))
            self.host_calls += 1
            if not batch:
                return
            for msg in batch:
                yield msg.content
                queue.delete_message(msg)
                self.host_calls += 1

    def graph_log(self) -> tuple[int, int]:
        """(Graph requests, authority requests) since the log was cleared."""
        log = self.control.requests_log()
        graph = sum(1 for r in log if r["path"].startswith("/v1.0/"))
        return graph, len(log) - graph

    def stop(self) -> None:
        self.emulator.stop()
        self.azurite.stop()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def single_user(system: System) -> dict[str, float]:
    """One user with the issue's calendar: the first (full) round, the writer's calls per
    event, then unchanged syncs timed side by side with the floor."""
    from core.app import service
    from core.app.sync import sync_user

    app = system.app()
    system.connect(app, "1001")
    system.fill_mailbox()
    ctx = service.sync_context(app)
    out: dict[str, float] = {}

    system.control.clear_requests_log()
    calls = app.storage.calls
    t0 = time.perf_counter()
    sync_user(ctx, "1001", inline=False)
    out["full_round_plan_s"] = time.perf_counter() - t0
    out["full_round_graph_requests"], out["full_round_authority_requests"] = system.graph_log()
    # the writer: each queued change applied as the writes queue trigger applies it
    changes = 0
    for body in system.drain(app, "writes"):
        service.run_write(app, body)
        changes += 1
    out["changes"] = float(changes)
    out["writer_storage_calls_per_event"] = _writer_calls(app, system, ctx)

    # unchanged syncs, interleaved with the floor: 1 delta GET + 1 user-row write
    sync_user(ctx, "1001")  # settle: a delta link exists, nothing pending
    system.control.clear_requests_log()
    mine0 = calls.mine()
    sync_user(ctx, "1001")
    out["unchanged_sync_storage_calls"] = float(calls.mine() - mine0)
    out["unchanged_sync_graph_requests"], out["unchanged_sync_authority_requests"] = system.graph_log()
    floor_op = _floor(app, ctx)
    syncs, floors = [], []
    for _ in range(30):
        t0 = time.perf_counter()
        sync_user(ctx, "1001")
        t1 = time.perf_counter()
        floor_op()
        t2 = time.perf_counter()
        syncs.append(t1 - t0)
        floors.append(t2 - t1)
    out["unchanged_sync_ms"] = _median_ms(syncs)
    out["floor_ms"] = _median_ms(floors)
    out["unchanged_sync_time_over_floor"] = out["unchanged_sync_ms"] / out["floor_ms"]
    return out


def _writer_calls(app: Any, system: System, ctx: Any) -> float:
    """Storage calls per changed event for a new user's first round (every event new),
    each change applied as the writer applies a queued one."""
    from core.app.sync import apply_event_change, changes_for, plan_user

    system.connect(app, "1002")  # the same mailbox, another Communifire user: all new links
    user = app.users.get("1002")
    planned = plan_user(ctx, user, app.clock(), full=True)
    changes = changes_for("1002", planned.state, planned.loaded, planned.plan)
    calls = app.storage.calls
    start = calls.mine()
    for change in changes:
        apply_event_change(ctx, {"user_id": "1002", "change": change.to_json(), "audited": True})
    return (calls.mine() - start) / max(1, len(changes))


def _floor(app: Any, ctx: Any) -> Callable[[], None]:
    """The least an unchanged sync can do: GET the delta link, write the user row."""
    from core.adapters.graph import PREFER_IMMUTABLE, PREFER_UTC, MAX_PAGE_SIZE

    user = app.users.get("1001")
    graph, tokens = ctx.graph_for(user)
    tokens()  # the token is not part of the floor
    prefer = (PREFER_UTC, PREFER_IMMUTABLE, f"odata.maxpagesize={MAX_PAGE_SIZE}")
    table = app.storage.table("Users")
    entity = app.users._to_entity(user)

    def run() -> None:
        body = graph.request("GET", user.delta_link, prefer=prefer)[1]
        assert body is not None and "@odata.deltaLink" in body and not body.get("value")
        table.upsert_entity(entity, mode="replace")

    return run


def fanout(system: System, users: int = 10_000) -> dict[str, float]:
    """The timer's fan-out with ``users`` due users (rows seeded in transactions)."""
    from core.adapters.users import CONNECTED, UserRecord, UserStore
    from core.app import service

    app = system.app()
    table = app.storage.table("Users")
    now = app.clock()
    rows = [UserStore._to_entity(UserRecord(user_id=f"u{n:05d}", state=CONNECTED, sealed_cache="x" * 3000,
                                            next_due_at=now - timedelta(minutes=1))) for n in range(users)]
    for start in range(0, users, 100):
        table.submit_transaction([("upsert", r) for r in rows[start:start + 100]])
    calls = app.storage.calls
    before = calls.total
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    enqueued = service.enqueue_due(app)
    cpu = time.process_time() - cpu0
    took = time.perf_counter() - t0
    timer_calls = calls.total - before
    assert len(enqueued) == users, len(enqueued)
    # the trigger's half: each batch claimed (one transaction) and split into jobs, here one
    # batch after another (on Azure, batches run in parallel on the queue's instances)
    t1 = time.perf_counter()
    jobs = 0
    for body in system.drain(app, "sync-jobs"):
        if '"user_ids"' not in body:
            break
        service.run_sync_job(app, body)
        jobs += 1
    split = time.perf_counter() - t1
    app.storage.queue("sync-jobs").clear_messages()
    return {"fanout_10000_users_s": took, "fanout_cpu_s": cpu, "fanout_storage_calls": float(timer_calls),
            "fanout_split_batches_s": split, "fanout_split_batches": float(jobs)}


def tick(system: System, users: int = 1_000) -> dict[str, float]:
    """A tick over ``users`` connected users with nothing changed: the timer's fan-out,
    then every sync job, run as the queue trigger runs them. Host CPU is this process's
    CPU time over the tick (the emulator and Azurite run in processes of their own)."""
    from core.adapters.users import UserStore
    from core.app import service
    from core.adapters.rows import iso
    from core.app.sync import sync_user, user_window

    frozen = datetime.now(timezone.utc)
    # one instant for the whole tick: no user's daily turnover (their full round) falls inside it
    app = system.app(clock=lambda: frozen)
    system.connect(app, "seed")
    ctx = service.sync_context(app)
    sync_user(ctx, "seed")  # a delta link for the mailbox
    seed = app.users.get("seed")
    cache = app.sealer.open(seed.sealed_cache, owner="seed")
    table = app.storage.table("Users")
    rows = []
    for n in range(users):
        uid = f"t{n:05d}"
        record = replace(seed, user_id=uid, sealed_cache=app.sealer.seal(cache, owner=uid),
                         next_due_at=frozen - timedelta(minutes=1), etag="",
                         delta_window_start=iso(user_window(app.clock(), uid).start))
        rows.append(UserStore._to_entity(record))
    table.delete_entity("user", "seed")
    for start in range(0, users, 100):
        table.submit_transaction([("upsert", r) for r in rows[start:start + 100]])
    calls = app.storage.calls
    before = calls.total
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    enqueued = service.enqueue_due(app)
    synced = 0
    for body in system.drain(app, "sync-jobs"):
        report = service.run_sync_job(app, body)
        if report.outcome == "fanned_out":
            continue
        if report.outcome != "synced" or report.changes:
            raise AssertionError(f"{report.user_id}: {report.outcome}, {len(report.changes)} changes")
        synced += 1
    took = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    app_calls = calls.total - before
    host_calls = system.host_calls
    assert len(enqueued) == users and synced == users, (len(enqueued), synced)
    return {"tick_1000_unchanged_s": took,
            "tick_1000_unchanged_storage_calls_per_user": app_calls / users,
            "tick_1000_unchanged_host_queue_calls_per_user": host_calls / users,
            "tick_1000_unchanged_host_cpu_ms_per_user": cpu * 1000.0 / users}
