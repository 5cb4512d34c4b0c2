"""Pulling Outlook calendars through the timer, the fan-out queue and the writer.

Runs the function app's own functions on the local host, against Azurite and the
Outlook emulator.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.slow

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def at(days: int, hour: int, minute: int = 0) -> dict[str, str]:
    d = datetime.now(timezone.utc).replace(hour=hour, minute=minute, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def single(subject: str, days: int, hour: int = 10, **extra) -> dict:
    return {"subject": subject, "start": at(days, hour), "end": at(days, hour + 1), **extra}


def titles(stack, user_id: str) -> list[str]:
    return sorted(e["title"] for e in stack.calendar(user_id)["events"])


def test_the_timer_pulls_every_page_of_a_users_window_into_table_storage(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    for i in range(105):  # more than one page of the 50 the server serves here
        stack.control.create_event(ALICE, single(f"Meeting {i:03d}", days=1 + i % 60, hour=8 + i % 9))
    stack.control.create_event(ALICE, single("Too far ahead", days=400))
    stack.control.create_event(ALICE, single("Long past", days=-10))
    stack.control.set_max_page_size(50)  # Graph may serve smaller pages than odata.maxpagesize asks
    stack.control.clear_requests_log()
    status = stack.sync_all()
    assert status["recent_failures"] == []
    got = titles(stack, "1001")
    assert got == sorted(f"Meeting {i:03d}" for i in range(105))  # nothing outside the window, nothing lost
    views = [r for r in stack.control.requests_log() if "calendarView" in r["path"]]
    assert len(views) >= 3  # followed @odata.nextLink
    user = stack.app.users.get("1001")
    assert user.last_sync_at is not None and user.next_due_at > user.last_sync_at


def test_a_pulled_event_keeps_its_times_attendees_and_outlook_link(stack):
    stack.add_user(ALICE)
    stack.add_user(BOB)
    stack.connect("1001", ALICE)
    created = stack.control.create_event(ALICE, single(
        "Design review", 3, 14, location={"displayName": "Room 4"},
        attendees=[{"emailAddress": {"address": BOB, "name": "Bob"}, "type": "required"}]))
    stack.sync_all()
    (event,) = stack.calendar("1001")["events"]
    assert event["title"] == "Design review" and event["location"] == "Room 4" and not event["all_day"]
    assert event["start"].endswith("14:00:00Z") and event["end"].endswith("15:00:00Z")
    assert [a["email"] for a in event["attendees"]] == [BOB]
    assert event["organizer"] == ALICE
    assert [(l["user_id"], l["outlook_id"], l["kind"]) for l in event["outlook"]] == [("1001", created["id"], "single")]


def test_a_second_sync_with_no_change_writes_nothing(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, single("Standing item", 2))
    stack.sync_all()
    audit_before = list(stack.app.storage.table("Audit").list_entities())
    stack.sync_all()
    assert list(stack.app.storage.table("Audit").list_entities()) == audit_before


def test_changes_and_deletes_in_outlook_reach_communifire(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    keep = stack.control.create_event(ALICE, single("Keep me", 2))
    gone = stack.control.create_event(ALICE, single("Delete me", 3))
    stack.sync_all()
    stack.control.update_event(ALICE, keep["id"], {"subject": "Kept and renamed"})
    stack.control.delete_event(ALICE, gone["id"])
    stack.sync_all()
    assert titles(stack, "1001") == ["Kept and renamed"]


def test_a_revoked_consent_marks_the_user_needs_reconnect_and_keeps_their_data(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, single("Before revoke", 2))
    stack.sync_all()
    stack.control.revoke_consent(ALICE)
    stack.control.expire_access_tokens(ALICE)
    stack.sync_all()
    user = stack.app.users.get("1001")
    assert user.state == "needs_reconnect" and "invalid_grant" in user.last_error
    assert titles(stack, "1001") == ["Before revoke"]  # data kept
    stack.control.clear_requests_log()
    stack.sync_all()  # not enqueued any more: nothing reaches Graph for this user
    assert [r for r in stack.control.requests_log() if r["path"].startswith("/v1.0")] == []


def test_disabled_sync_runs_nothing(make_stack):
    from core.adapters.users import CONNECTED, UserRecord

    stack = make_stack(sync_enabled=False)
    stack.app.users.save(UserRecord("1001", CONNECTED, upn=ALICE))  # connected before sync was turned off
    stack.control.clear_requests_log()
    stack.run_timer()
    stack.host.wait_idle()
    assert [i.ok for i in stack.host.invocations if i.function == "sync_timer"] == [True]
    assert [i for i in stack.host.invocations if i.function == "sync_user"] == []
    assert [r for r in stack.control.requests_log() if r["path"].startswith("/v1.0")] == []


def test_many_users_fan_out_to_one_job_each(stack):
    for n in range(3):
        upn = f"user{n}@contoso.com"
        stack.add_user(upn)
        stack.connect(f"10{n}", upn)
        stack.control.create_event(upn, single(f"Event of user {n}", 2 + n))
    stack.sync_all()
    for n in range(3):
        assert titles(stack, f"10{n}") == [f"Event of user {n}"]


def test_a_malformed_sync_job_goes_to_the_poison_queue_after_the_hosts_retries(azurite, tmp_path):
    from devhost.stack import Stack

    stack = Stack(azurite.connection_string, tmp_path / "em", queue_overrides={"visibility_timeout": 0}).start()
    try:
        stack.app.storage.queue("sync-jobs").send_message('{"v": 99, "user_id": "1001"}')
        stack.host.wait_idle(timeout=60)
        poison = list(stack.app.storage.queue("sync-jobs-poison").peek_messages(max_messages=5))
        assert len(poison) == 1 and '"v": 99' in poison[0].content
        failures = [i for i in stack.host.invocations if not i.ok and i.function == "sync_user"]
        assert len(failures) == stack.host.queue_options.max_dequeue_count
        assert "unknown message version" in failures[-1].error
    finally:
        stack.close()


def test_no_token_code_secret_or_state_reaches_the_logs(stack, caplog):
    caplog.set_level(logging.DEBUG)
    stack.add_user(ALICE)
    auth_url = stack.connect_url("1001", ALICE).json()["auth_url"]
    location = stack.control.sign_in(auth_url, ALICE)
    q = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))
    stack.callback(location)
    stack.control.create_event(ALICE, single("Secretive", 2))
    stack.sync_all()
    stack.control.revoke_consent(ALICE)
    stack.control.expire_access_tokens(ALICE)
    stack.sync_all()
    ours = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records
        if not r.name.startswith(("emulator", "urllib3"))  # the emulator and the test's browser are not the app
    )
    assert ours  # the app did log
    secrets_ = [q["code"], q["state"], stack.client_secret, stack.environ["TokenEncryptionKey"].split(":")[1]]
    for secret in secrets_:
        assert secret not in ours
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", ours)  # no JWT (access or id token)
    assert "refresh_token" not in ours


def test_throttling_and_dropped_connections_are_retried_and_nothing_is_lost(stack):
    """SPEC section 7: 429 with a fractional Retry-After, 503/504 and a dropped page."""
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    for i in range(12):
        stack.control.create_event(ALICE, single(f"Busy {i:02d}", 1 + i))
    stack.control.inject_fault("429", count=2, upn=ALICE, retry_after=0.25)
    stack.control.inject_fault("503", count=1, upn=ALICE)
    stack.control.inject_fault("drop", count=1, upn=ALICE)
    status = stack.sync_all()
    assert status["recent_failures"] == []
    assert titles(stack, "1001") == [f"Busy {i:02d}" for i in range(12)]
    injected = [r for r in stack.control.requests_log() if r.get("fault")]
    assert len(injected) >= 4  # every fault was really served, and survived


def test_an_outage_longer_than_the_retries_backs_off_and_the_next_sync_catches_up(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, single("Before outage", 2))
    stack.sync_all()
    stack.control.create_event(ALICE, single("During outage", 3))
    stack.control.inject_fault("503", count=50, upn=ALICE)
    from core.app import service
    from core.adapters.graph import GraphError
    from core.app.sync import sync_user

    ctx = service.sync_context(stack.app)
    waits = []
    ctx.sleep = waits.append  # the back-off is real; the test does not wait it out
    with pytest.raises(GraphError) as info:
        sync_user(ctx, "1001")
    assert info.value.status == 503 and waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    user = stack.app.users.get("1001")
    assert user.failures == 1 and "503" in user.last_error and user.next_due_at > stack.app.clock()
    assert titles(stack, "1001") == ["Before outage"]  # nothing lost, nothing half-written
    stack.control.clear_faults()
    stack.sync_all()
    assert titles(stack, "1001") == ["Before outage", "During outage"]
    assert stack.app.users.get("1001").failures == 0


def test_a_change_too_large_for_a_queue_message_goes_by_reference_and_is_cleaned_up(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    agenda = "<p>" + " ".join(f"item {i}" for i in range(12_000)) + "</p>"  # ~100 KB of HTML
    stack.control.create_event(ALICE, single("Long agenda", 2, body={"contentType": "html", "content": agenda}))
    status = stack.sync_all()
    assert status["recent_failures"] == []
    (event,) = stack.calendar("1001")["events"]
    assert event["title"] == "Long agenda"
    loaded = stack.app.storage.table("Events").query_entities("RowKey ge 'seg|' and RowKey lt 'seg}'")
    assert sum(int(e.get("BodyChunks", 0)) for e in loaded) >= 2  # the body was kept whole, in chunks
    assert list(stack.app.storage.table("Payloads").list_entities()) == []


def test_a_write_that_fails_makes_the_next_sync_a_full_round_so_nothing_is_lost(stack):
    import json as _json

    from core.app import service

    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, single("First", 2))
    stack.sync_all()
    assert stack.app.users.get("1001").delta_link
    broken = {"v": 1, "kind": "event_change", "message_id": "m1", "user_id": "1001",
              "change": {"event_id": "x", "base_etag": 'W/"stale"', "upserts": {}, "deletes": []}}
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):  # the event the change was planned on is gone
        service.run_write(stack.app, _json.dumps(broken))
    assert stack.app.users.get("1001").delta_link == ""
