"""``outlook-sync changes tail`` and ``calendar --json`` against the real stack (issue 12)."""

from __future__ import annotations

import json

import pytest

from core.cli.main import EXIT_OK, EXIT_USAGE
from tests.integration.feed_helpers import drain, read_api, without_time
from tests.integration.test_cli import ALICE, connected, env, run  # noqa: F401  (fixture)
from tests.integration.test_inbound_rules import synced

pytestmark = pytest.mark.slow


def test_changes_tail_shows_the_feed_without_taking_it_from_communifire(env, capsys):  # noqa: F811
    connected(env)
    synced(env)
    code, out, _ = run(capsys, "changes", "tail", "--once", "--json")
    [message] = [json.loads(line) for line in out.splitlines()]
    assert code == EXIT_OK and message["changes"] == [{"type": "event_created"}] and message["users"] == ["1001"]
    code, out, _ = run(capsys, "changes", "tail", "--once")
    assert code == EXIT_OK and "seq   1" in out and "inbound: event_created" in out and "users 1001" in out
    code, out, _ = run(capsys, "changes", "tail", "--once", "--user", "1002")
    assert code == EXIT_OK and out == ""
    assert [m["change_id"] for m in drain(env)] == [message["change_id"]]  # still there for Communifire
    code, _, err = run(capsys, "changes", "tail", "--once", "--interval", "0")
    assert code == EXIT_USAGE and "--interval" in err


def test_calendar_json_is_the_read_apis_document_with_the_same_from_to(env, capsys):  # noqa: F811
    connected(env)
    synced(env)
    api = read_api(env, "1001", **{"from": "2000-01-01", "to": "2100-01-01"})
    code, out, _ = run(capsys, "calendar", "--user", "1001", "--json", "--from", "2000-01-01", "--to", "2100-01-01")
    assert code == EXIT_OK and without_time(json.loads(out)) == without_time(api)
    assert [e["title"] for e in api["events"]] == ["Review"]
    code, _, err = run(capsys, "calendar", "--user", "1001", "--json", "--from", "someday")
    assert code == EXIT_USAGE and "'from'" in err
