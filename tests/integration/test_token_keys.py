"""Token-cache keys (issue 10): a cache that cannot be opened is a configuration error,
never a reason to delete data; rotate-key and doctor name what is missing.

Runs the function app on the local host against Azurite and the emulator; "a new
deployment with other settings" is ``Stack.reconfigure``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from core.adapters.crypto import new_key
from core.cli.main import EXIT_ATTENTION, EXIT_FAIL, EXIT_OK, main

pytestmark = pytest.mark.slow

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def at(days, hour):
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def titles(stack, user_id):
    return sorted(e["title"] for e in stack.calendar(user_id)["events"])


def kid_of(sealed):
    return sealed.split(".")[1]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def two_users(stack):
    """Alice and Bob connected and synced with key k1."""
    for upn, user_id, subject in ((ALICE, "1001", "Alice's review"), (BOB, "1002", "Bob's lunch")):
        stack.add_user(upn)
        stack.connect(user_id, upn)
        stack.control.create_event(upn, {"subject": subject, "start": at(1, 9), "end": at(1, 10)})
    stack.sync_all()
    assert titles(stack, "1001") == ["Alice's review"] and titles(stack, "1002") == ["Bob's lunch"]
    return stack


def test_a_missing_key_keeps_every_cache_pauses_the_users_with_one_error_and_recovers_when_it_returns(two_users, caplog):
    stack = two_users
    k1 = stack.environ["TokenEncryptionKey"]
    sealed = {u: stack.app.users.get(u).sealed_cache for u in ("1001", "1002")}
    stack.reconfigure(TokenEncryptionKey=new_key("k2"))  # k1 forgotten by mistake
    stack.control.create_event(ALICE, {"subject": "Planned while paused", "start": at(2, 9), "end": at(2, 10)})

    caplog.set_level(logging.INFO)
    stack.sync_all()
    for user_id in ("1001", "1002"):
        user = stack.app.users.get(user_id)
        assert user.state == "connected" and user.sealed_cache == sealed[user_id]  # nothing deleted
        assert "'k1'" in user.last_error and user.last_error.startswith("key missing: ")
        status = stack.status(user_id).json()
        assert status["status"] == "key_missing" and status["key_id"] == "k1"
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "token cache cannot be opened" in r.getMessage()]
    assert {r.user_id for r in warned} == {"1001", "1002"}  # named, per user, with the key id
    assert titles(stack, "1001") == ["Alice's review"]  # Communifire's side untouched

    caplog.clear()
    stack.sync_all()  # the next round: one error for the round, not one per user
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].users == 2 and errors[0].key_ids == "k1"
    assert all(stack.app.users.get(u).sealed_cache == sealed[u] for u in ("1001", "1002"))

    stack.reconfigure(TokenEncryptionKey=f"{new_key('k2')},{k1}")  # the key is back (after a new first key)
    stack.sync_all()
    for user_id in ("1001", "1002"):
        user = stack.app.users.get(user_id)
        assert user.last_error == "" and user.state == "connected"
        assert stack.status(user_id).json()["status"] == "connected"
    assert titles(stack, "1001") == ["Alice's review", "Planned while paused"]


def test_a_key_id_given_another_value_is_reported_and_deletes_nothing(two_users, capsys, monkeypatch):
    stack = two_users
    sealed = stack.app.users.get("1001").sealed_cache
    stack.reconfigure(TokenEncryptionKey=new_key("k1"))  # same key id, different key
    stack.sync_all()
    user = stack.app.users.get("1001")
    assert user.state == "connected" and user.sealed_cache == sealed
    assert "does not open with the configured key 'k1'" in user.last_error
    assert stack.status("1001").json()["status"] == "key_missing"
    code, out, _ = run(capsys, "sync", "--user", "1001", "--json")
    assert code == EXIT_ATTENTION and json.loads(out)["results"][0]["outcome"] == "key_missing"
    assert stack.app.users.get("1001").sealed_cache == sealed


def _mixed_keys(stack):
    """Alice sealed with k1; Bob with k0; then deployed with 'k2,k1' (k0 lost)."""
    k1 = stack.environ["TokenEncryptionKey"]
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.reconfigure(TokenEncryptionKey=f"{new_key('k0')},{k1}")
    stack.add_user(BOB)
    stack.connect("1002", BOB)
    assert kid_of(stack.app.users.get("1002").sealed_cache) == "k0"
    stack.reconfigure(TokenEncryptionKey=f"{new_key('k2')},{k1}")
    return stack


def test_rotate_key_reseals_what_it_can_lists_what_it_cannot_and_fails(stack, capsys):
    _mixed_keys(stack)
    bob_before = stack.app.users.get("1002").sealed_cache

    code, out, _ = run(capsys, "rotate-key", "--dry-run")
    assert code == EXIT_FAIL and "would re-seal 1 token cache(s) with key 'k2'" in out
    assert "user 1002: key 'k0'" in out and "TokenEncryptionKey does not contain" in out
    assert kid_of(stack.app.users.get("1001").sealed_cache) == "k1"  # dry run: nothing written

    code, out, _ = run(capsys, "rotate-key", "--json")
    report = json.loads(out)
    assert code == EXIT_FAIL and report["resealed"] == ["1001"]
    assert [(f["user_id"], f["key_id"]) for f in report["failures"]] == [("1002", "k0")]
    assert kid_of(stack.app.users.get("1001").sealed_cache) == "k2"
    assert stack.app.users.get("1002").sealed_cache == bob_before  # left exactly as it was

    stack.control.create_event(ALICE, {"subject": "After rotation", "start": at(1, 9), "end": at(1, 10)})
    stack.sync_all()
    assert titles(stack, "1001") == ["After rotation"]  # the re-sealed cache works

    assert stack.disconnect("1002").status_code == 200  # the administrator lets Bob connect again instead
    code, out, _ = run(capsys, "rotate-key")
    assert code == EXIT_OK and "re-sealed 0 token cache(s)" in out and "1 already on it" in out


def test_doctor_opens_one_cache_per_key_id_and_names_the_missing_one(stack, capsys, monkeypatch, tmp_path):
    _mixed_keys(stack)
    monkeypatch.setenv("OUTLOOK_SYNC_SETTINGS_FILE", str(tmp_path / "absent.json"))
    for key, value in stack.environ.items():
        monkeypatch.setenv(key, value)
    code, out, _ = run(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == EXIT_FAIL
    assert checks["token caches key k1"]["ok"] is True and "1 user(s)" in checks["token caches key k1"]["detail"]
    missing = checks["token caches key k0"]
    assert missing["ok"] is False and "TokenEncryptionKey lacks" in missing["detail"]
