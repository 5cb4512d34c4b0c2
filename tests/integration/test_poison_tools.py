"""Issue 11: poison tools that always work (list every message, paged, with a count;
undecodable ones listed with their raw size; replay by id or --all that terminates, is
idempotent and tolerates a concurrent replay; labels per queue; unknown queues refused).

The local host is stopped first, so what is replayed stays on its queue to be counted."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter

import pytest

from core.app.poison import list_poison, replay
from core.cli.main import EXIT_FAIL, EXIT_OK, EXIT_USAGE, main

pytestmark = pytest.mark.slow
GOOD, PLAIN_JSON, GARBAGE = 70, 3, 4


@pytest.fixture
def quiet(stack, monkeypatch, tmp_path):
    stack.host.stop()  # nobody consumes the queues: this test counts what is on them
    monkeypatch.setenv("OUTLOOK_SYNC_SETTINGS_FILE", str(tmp_path / "absent.json"))
    for key, value in stack.environ.items():
        monkeypatch.setenv(key, value)
    return stack


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _fill(stack, queue: str = "outbound") -> dict[str, str]:
    """GOOD base64 messages with operation ids, PLAIN_JSON ones a producer forgot to
    encode, GARBAGE ones nobody can read. Returns queue message id -> kind."""
    q = stack.app.storage.raw_queue(f"{queue}-poison")
    kinds = {}
    for i in range(GOOD):
        body = {"v": 1, "operation_id": f"op-{i:03d}", "message_id": f"m-{i:03d}"}
        kinds[q.send_message(_b64(json.dumps(body))).id] = "good"
    for i in range(PLAIN_JSON):
        kinds[q.send_message(json.dumps({"v": 1, "operation_id": f"plain-{i}"})).id] = "plain"
    for i in range(GARBAGE):
        kinds[q.send_message(f"%%% not base64 {i} %%%").id] = "garbage"
    return kinds


def _drain(stack, queue: str) -> list[str]:
    q = stack.app.storage.raw_queue(queue)
    out = []
    while True:
        page = list(q.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60))
        if not page:
            return out
        for m in page:
            out.append(m.content)
            q.delete_message(m)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_shows_every_message_past_32_undecodable_ones_with_their_size_and_leaves_them_visible(quiet):
    kinds = _fill(quiet)
    entries = list_poison(quiet.app, "outbound")
    assert len(entries) == len(kinds) == GOOD + PLAIN_JSON + GARBAGE
    assert Counter(e.decodable for e in entries) == {True: GOOD, False: PLAIN_JSON + GARBAGE}
    garbage = [e for e in entries if kinds[e.queue_message_id] == "garbage"]
    assert len(garbage) == GARBAGE
    assert all(e.status == "undecodable" and "not base64" in e.reason for e in garbage)
    assert sorted(e.raw_size for e in garbage) == sorted(len(f"%%% not base64 {i} %%%") for i in range(GARBAGE))
    assert {e.id for e in entries if kinds[e.queue_message_id] == "good"} == {f"op-{i:03d}" for i in range(GOOD)}
    # listing again sees the same (nothing left invisible)
    assert len(list_poison(quiet.app, "outbound")) == len(kinds)


def test_list_cli_pages_with_a_count_and_labels_each_queue(quiet, capsys):
    _fill(quiet, "writes")
    code, out, _ = run(capsys, "poison", "list", "--queue", "writes", "--json", "--offset", "10", "--limit", "25")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["count"] == GOOD + PLAIN_JSON + GARBAGE and len(doc["messages"]) == 25
    assert doc["queue"] == "writes-poison" and {m["queue"] for m in doc["messages"]} == {"writes"}
    code, out, _ = run(capsys, "poison", "list", "--queue", "writes")
    assert code == EXIT_OK and f"{GOOD + PLAIN_JSON + GARBAGE} poisoned writes message(s) in writes-poison" in out
    assert "outbound" not in out
    code, out, _ = run(capsys, "poison", "list")
    assert code == EXIT_OK and "0 poisoned outbound operation(s) in outbound-poison" in out


@pytest.mark.parametrize("argv", [("poison", "list", "--queue", "nope"), ("poison", "replay", "x", "--queue", "nope")])
def test_an_unknown_queue_is_a_clear_usage_error(quiet, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE and "unknown queue 'nope'" in err and "outbound, writes, sync-jobs" in err
    assert "Traceback" not in out + err


def test_replay_by_id_among_many_terminates_moves_only_that_one_and_is_idempotent(quiet, capsys):
    _fill(quiet)
    code, out, _ = run(capsys, "poison", "replay", "op-050")
    assert code == EXIT_OK and "op-050 is back on queue outbound" in out
    (moved,) = _drain(quiet, "outbound")
    assert json.loads(base64.b64decode(moved))["operation_id"] == "op-050"
    assert len(list_poison(quiet.app, "outbound")) == GOOD + PLAIN_JSON + GARBAGE - 1
    code, out, err = run(capsys, "poison", "replay", "op-050")  # again: nothing to do, nothing moved
    assert _drain(quiet, "outbound") == []
    assert code == EXIT_FAIL and "no poisoned message op-050" in err
    code, _, err = run(capsys, "poison", "replay", "op-999")
    assert code == EXIT_FAIL and "no poisoned message op-999 in outbound-poison" in err


def test_replay_all_terminates_re_encodes_plain_json_and_leaves_unreadable_ones(quiet, capsys):
    _fill(quiet)
    code, out, err = run(capsys, "poison", "replay", "--all", "--json")
    report = json.loads(out)
    assert code == EXIT_FAIL  # some could not be replayed: said so
    assert len(report["replayed"]) == GOOD + PLAIN_JSON and len(report["skipped"]) == GARBAGE
    moved = _drain(quiet, "outbound")
    decoded = [json.loads(base64.b64decode(m)) for m in moved]  # every replayed one is base64 now
    assert sorted(d["operation_id"] for d in decoded) == sorted(
        [f"op-{i:03d}" for i in range(GOOD)] + [f"plain-{i}" for i in range(PLAIN_JSON)])
    left = list_poison(quiet.app, "outbound")
    assert len(left) == GARBAGE and not any(e.decodable for e in left)
    report = replay(quiet.app, "outbound")  # again: only the unreadable ones, still left
    assert report.replayed == [] and len(report.skipped) == GARBAGE and _drain(quiet, "outbound") == []


def test_two_concurrent_replay_all_move_each_message_exactly_once(quiet):
    _fill(quiet, "writes")
    results = []

    def worker():
        results.append(replay(quiet.app, "writes"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    moved = _drain(quiet, "writes")
    assert len(moved) == GOOD + PLAIN_JSON == sum(len(r.replayed) for r in results)
    assert len(set(moved)) == len(moved)  # no duplicates
    assert len(list_poison(quiet.app, "writes")) == GARBAGE
