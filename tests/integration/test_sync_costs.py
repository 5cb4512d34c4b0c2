"""What a sync costs, counted against the real stack (issue 14): Graph requests in the
emulator's request log, Table and Queue Storage round trips where they leave the process
(``Storage.calls``, a counting transport under the Azure SDKs). Counts, never times:
speed is measured by ``make bench``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.app import service
from core.app.sync import apply_event_change, changes_for, plan_user, sync_user

pytestmark = pytest.mark.slow

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def at(days: int, hour: int) -> dict[str, str]:
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def single(subject: str, days: int, hour: int = 10) -> dict:
    return {"subject": subject, "start": at(days, hour), "end": at(days, hour + 1)}


def weekly(subject: str, weeks: int = 6) -> dict:
    first = datetime.now(timezone.utc).date() + timedelta(days=3)
    return {
        "subject": subject,
        "start": {"dateTime": f"{first.isoformat()}T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": f"{first.isoformat()}T09:30:00.0000000", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
                       "range": {"type": "numbered", "startDate": first.isoformat(), "numberOfOccurrences": weeks}},
    }


class Counted:
    """Storage round trips made by this thread, and by table/queue, over a block."""

    def __init__(self, stack):
        self.calls = stack.app.storage.calls
        self.prefix = stack.prefix
        # this stack's own queues (%SyncJobsQueue%...) under their logical names
        self.queues = {stack.app.storage.queue_name(q): q for q in ("sync-jobs", "writes", "outbound")}

    def __enter__(self) -> "Counted":
        self._mine = self.calls.mine()
        self._kinds = self.calls.snapshot()
        return self

    def __exit__(self, *exc) -> None:
        self.mine = self.calls.mine() - self._mine
        after = self.calls.snapshot()
        self.kinds = {self._logical(k): after[k] - self._kinds.get(k, 0)
                      for k in after if after[k] != self._kinds.get(k, 0)}

    def _logical(self, kind: str) -> str:
        service, _, name = kind.partition(":")
        if service == "queue":
            return f"queue:{self.queues.get(name, name)}"
        return f"table:{name.replace(self.prefix, '')}"

    def table(self, name: str) -> int:
        return self.kinds.get(f"table:{name}", 0)


def graph_and_authority(log: list[dict]) -> tuple[list[dict], list[dict]]:
    graph = [r for r in log if r["path"].startswith("/v1.0/")]
    authority = [r for r in log if not r["path"].startswith("/v1.0/")]
    return graph, authority


@pytest.fixture
def alice(stack):
    stack.add_user(ALICE, "Alice")
    stack.add_user(BOB, "Bob")
    assert stack.connect("1001", ALICE).status_code == 200
    return stack


def synced(stack) -> None:
    status = stack.sync_all()
    assert status["recent_failures"] == [], status["recent_failures"]


def test_an_unchanged_sync_makes_one_graph_request_and_at_most_three_storage_calls(alice):
    for i in range(4):
        alice.control.create_event(ALICE, single(f"Item {i}", 2 + i))
    alice.control.create_event(ALICE, weekly("Standup"))
    synced(alice)  # the first (full) round, and the process's first authority metadata
    ctx = service.sync_context(alice.app)
    alice.control.clear_requests_log()
    with Counted(alice) as counted:
        report = sync_user(ctx, "1001")
    graph, authority = graph_and_authority(alice.control.requests_log())
    assert report.outcome == "synced" and report.changes == ()
    assert [r["path"].rsplit("/", 1)[-1] for r in graph] == ["delta"]  # 1 Graph request: the delta GET
    assert authority == []  # no authority metadata, no token request: one MSAL app per process, token cached
    assert counted.mine <= 3  # the user row read and written, nothing else
    assert counted.table("Events") == counted.table("OutlookIndex") == counted.table("MeetingIndex") == 0
    assert counted.table("Audit") == 0


def test_one_msal_application_and_one_connection_serve_every_sync_of_the_process(alice):
    alice.connect("1002", BOB)
    alice.control.create_event(ALICE, single("Alice's", 2))
    alice.control.create_event(BOB, single("Bob's", 3))
    ctx = service.sync_context(alice.app)
    alice.control.clear_requests_log()
    for user_id in ("1001", "1002", "1001", "1002"):
        sync_user(ctx, user_id, inline=True)
    _, authority = graph_and_authority(alice.control.requests_log())
    metadata = [r for r in authority if "openid-configuration" in r["path"] or "discovery" in r["path"]]
    assert len(metadata) <= 1  # the tenant authority's metadata at most once (the connect may have read it)
    tokens = [r for r in authority if r["path"].endswith("/token")]
    assert tokens == []  # both users' access tokens came from their caches
    pools = alice.app.session.get_adapter(alice.settings.graph_base_url).poolmanager.pools
    before = sum(pool.num_connections for pool in pools._container.values())
    for user_id in ("1001", "1002"):
        sync_user(ctx, user_id)
    after = sum(pool.num_connections for pool in pools._container.values())
    assert after == before  # the same connection (and TLS session) carried on


def test_one_token_acquisition_per_sync(alice):
    from core.adapters.auth import TokenSource

    for i in range(3):
        alice.control.create_event(ALICE, single(f"Item {i}", 2 + i))
    alice.control.create_event(ALICE, weekly("Series"))
    ctx = service.sync_context(alice.app)
    made: list[TokenSource] = []
    graph_for = ctx.graph_for

    def recording(user):
        graph, tokens = graph_for(user)
        made.append(tokens)
        return graph, tokens

    ctx.graph_for = recording
    alice.control.clear_requests_log()
    sync_user(ctx, "1001", inline=True)  # a full round: delta pages, $batch reads, /instances
    graph, _ = graph_and_authority(alice.control.requests_log())
    assert len(graph) >= 3 and [t.acquisitions for t in made] == [1]


def test_a_round_of_changes_loads_only_the_events_its_items_touch(alice):
    created = [alice.control.create_event(ALICE, single(f"Item {i}", 2 + i)) for i in range(6)]
    synced(alice)
    alice.control.update_event(ALICE, created[2]["id"], {"subject": "Item 2, renamed"})
    ctx = service.sync_context(alice.app)
    with Counted(alice) as counted:
        planned = plan_user(ctx, alice.app.users.get("1001"), alice.app.clock())
    assert [a.kind for a in planned.plan.actions] == ["update_segment", "link"]
    assert counted.table("Events") == 1  # the renamed item's event, not all six
    assert counted.table("OutlookIndex") == 1  # the user's index, one query
    assert set(planned.loaded) == {planned.plan.actions[0].event_id}


def test_the_writer_makes_at_most_two_storage_calls_per_changed_event(alice):
    made = [alice.control.create_event(ALICE, single(f"New {i}", 2 + i)) for i in range(3)]
    made.append(alice.control.create_event(ALICE, weekly("New series")))
    ctx = service.sync_context(alice.app)

    def apply_all() -> list[int]:
        planned = plan_user(ctx, alice.app.users.get("1001"), alice.app.clock(), full=True)
        costs = []
        for change in changes_for("1001", planned.state, planned.loaded, planned.plan):
            with Counted(alice) as counted:
                assert apply_event_change(ctx, {"user_id": "1001", "change": change.to_json(), "audited": True}) == "applied"
            costs.append(counted.mine)
        return costs

    new = apply_all()
    assert len(new) == 4 and max(new) <= 2  # the event's transaction and its OutlookIndex rows
    alice.control.update_event(ALICE, made[0]["id"], {"subject": "New 0, renamed"})
    alice.control.delete_event(ALICE, made[1]["id"])
    changed = apply_all()
    assert len(changed) == 2 and max(changed) <= 2
    titles = sorted(e["title"] for e in alice.calendar("1001")["events"])
    assert titles == ["New 0, renamed", "New 2", "New series"]


def test_a_syncs_audit_rows_are_written_as_one_batched_transaction(alice):
    for i in range(5):
        alice.control.create_event(ALICE, single(f"Item {i}", 2 + i))
    ctx = service.sync_context(alice.app)
    with Counted(alice) as counted:
        report = sync_user(ctx, "1001")  # changes go to the writes queue
    entries = sum(len(c.audit) for c in report.changes)
    # the sync's only transaction; the writes themselves are the writer's (queued)
    assert entries >= 10 and counted.table("transaction") == 1 and counted.table("Audit") == 0
    assert len(list(alice.app.storage.table("Audit").list_entities())) == entries


def test_the_timer_sends_batches_and_the_batch_claims_its_users_in_one_transaction(make_stack):
    stack = make_stack()
    for i in range(3):
        upn = f"user{i}@contoso.com"
        stack.add_user(upn)
        assert stack.connect(f"20{i}", upn).status_code == 200
    stack.host.wait_idle(timeout=60)
    stack.host.stop()  # this test plays the queue trigger itself, so it can count each half
    stack.make_everyone_due()
    queue = stack.app.storage.queue("sync-jobs")
    queue.clear_messages()
    with Counted(stack) as counted:
        enqueued = service.enqueue_due(stack.app)
    assert sorted(enqueued) == ["200", "201", "202"]
    assert counted.table("Users") == 1 and counted.table("transaction") == 0  # one query (schedule columns), no write
    assert counted.kinds.get("queue:sync-jobs") == 1  # one message for the batch of users
    (batch,) = queue.receive_messages(visibility_timeout=60)
    with Counted(stack) as counted:
        report = service.run_sync_job(stack.app, batch.content)
    assert report.outcome == "fanned_out"
    assert counted.table("transaction") == 1 and counted.kinds.get("queue:sync-jobs") == 3  # one claim, one job each
    queue.delete_message(batch)
    jobs = list(queue.receive_messages(messages_per_page=32, visibility_timeout=60))
    assert sorted(stack.app.storage.resolve(j.content)["user_id"] for j in jobs) == ["200", "201", "202"]
    users = {u.user_id: u for u in stack.app.users.all()}
    assert all(u.next_due_at > stack.app.clock() and u.sealed_cache for u in users.values())  # claimed, tokens kept
    assert service.enqueue_due(stack.app) == []  # claimed: the next tick queues nobody again
    for job in jobs:
        assert service.run_sync_job(stack.app, job.content).outcome == "synced"
    assert service.fan_out(stack.app, ["gone"], "schedule", "") == 0  # a user disconnected meanwhile: no row, no job
    assert set(u.user_id for u in stack.app.users.all()) == {"200", "201", "202"}


def test_a_record_read_for_the_schedule_is_never_written_back_whole(make_stack):
    stack = make_stack()
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    (seen,) = list(stack.app.users.schedule_view())
    assert seen.partial and not seen.sealed_cache
    with pytest.raises(ValueError):
        stack.app.users.save(seen)  # it would wipe the token cache
    assert stack.app.users.get("1001").sealed_cache
