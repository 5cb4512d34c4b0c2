"""The CLI's output rules and pure helpers (issue 15): tables wrap and never cut, piped
output is plain, TSV is one line per row, env files parse, queued sync outcomes."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from core.adapters.users import CONNECTED, NEEDS_RECONNECT, UserRecord
from core.cli.context import parse_env_file
from core.cli.errors import EXIT_ATTENTION, EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError
from core.cli.output import Output, cols
from core.cli.sync import exit_code_for, job_outcome

LONG_ID = "AAMkAGI2TG93AAA=" + "x" * 150
ROWS = [{"id": LONG_ID, "who": "alice@contoso.com", "note": "tab\there\nnewline"}]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_piped_tables_are_plain_text_with_whole_values():
    stream = io.StringIO()
    Output("table", stream=stream).listing("Items", cols("id", "who:account", "note"), ROWS)
    text = stream.getvalue()
    assert text.splitlines()[0] == "Items" and text.splitlines()[1].split() == ["id", "account", "note"]
    assert LONG_ID in text and "…" not in text and not set("│─┃━") & set(text)


def test_terminal_tables_wrap_long_ids_instead_of_cutting_them():
    stream = Terminal()
    Output("table", stream=stream).listing("Items", cols("id"), ROWS)
    text = stream.getvalue()
    assert "…" not in text and LONG_ID not in text  # too wide for one line of 80 columns...
    assert LONG_ID in "".join(text.split())  # ...so folded across lines, every character kept


def test_tsv_has_a_header_and_one_line_per_row():
    stream = io.StringIO()
    Output("tsv", stream=stream).listing("ignored", cols("id", "who", "note"), ROWS + [{"id": "2", "who": None}])
    lines = stream.getvalue().splitlines()
    assert lines == ["id\twho\tnote", f"{LONG_ID}\talice@contoso.com\ttab here newline", "2\t\t"]


def test_json_notes_go_to_stderr_so_stdout_stays_parseable():
    out, err = io.StringIO(), io.StringIO()
    Output("json", stream=out, err=err).listing("t", cols("id"), [{"id": "1"}], doc={"items": [1]}, notes=["HELD: x"])
    assert out.getvalue() == '{\n  "items": [\n    1\n  ]\n}\n' and err.getvalue() == "HELD: x\n"


def test_env_files_parse_like_a_shell_would_read_them():
    text = "# comment\nexport A='x=1'\nB=\"two words\"\n\nC=plain\n"
    assert parse_env_file(text) == {"A": "x=1", "B": "two words", "C": "plain"}
    with pytest.raises(CliError) as info:
        parse_env_file("just words\n", "run.env")
    assert info.value.code == EXIT_USAGE and "run.env line 1" in info.value.message


T0 = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
BEFORE = UserRecord("1001", CONNECTED, upn="a@x", last_sync_at=T0, etag="e1")


@pytest.mark.parametrize("after,outcome", [
    (BEFORE, None),  # nothing happened yet
    (replace(BEFORE, etag="e2", next_due_at=T0), None),  # the timer claimed the user: not an outcome
    (replace(BEFORE, etag="e2", last_sync_at=T0.replace(minute=5)), "synced"),
    (replace(BEFORE, etag="e2", failures=1, last_error="GraphError 503"), "failed"),
    (replace(BEFORE, etag="e2", held_plan="{}", last_error="held: would delete 5 of 5"), "held"),
    (replace(BEFORE, etag="e2", state=NEEDS_RECONNECT), "needs_reconnect"),
    (None, "disconnected"),
])
def test_a_queued_sync_job_outcome_is_read_from_the_user_record(after, outcome):
    assert job_outcome(BEFORE, after) == outcome


def test_exit_codes_put_failures_before_attention():
    assert exit_code_for(["synced", "synced"]) == EXIT_OK
    assert exit_code_for(["synced", "held"]) == exit_code_for(["needs_reconnect"]) == EXIT_ATTENTION
    assert exit_code_for(["held", "failed"]) == exit_code_for(["timeout"]) == EXIT_FAIL


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 160, 220])
def test_terminal_tables_never_exceed_the_width_nor_cut_an_id(width, monkeypatch):
    """Ids are kept whole when the other columns can wrap instead, else folded: never cropped."""
    import re

    from core.cli.calendar import CALENDAR_COLUMNS

    monkeypatch.setenv("COLUMNS", str(width))
    ids = [f"{n}b727c15-6326-50a0-a453-3a7992d39ae{n}" for n in range(3)]
    rows = [{"title": f"Review {n} with a rather long subject line", "when": "2026-12-03 10:00 - 11:00",
             "repeats": "weekly, 8 in window, 2 segments", "attendees": "bob@contoso.com (accepted)", "links": 3,
             "id": i} for n, i in enumerate(ids)]
    stream = Terminal()
    Output("table", stream=stream).table("Calendar", CALENDAR_COLUMNS, rows)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue()).splitlines()
    assert all(len(line.rstrip()) <= width for line in lines)
    offset = next(line for line in lines if ids[0][:3] in line).find(ids[0][:3])
    id_column = "".join(line[offset:].strip() for line in lines if line.strip() and set(line.strip()) != {"─"})
    assert all(i in id_column for i in ids)
    if width >= 120:
        assert all(any(i in line for line in lines) for i in ids)  # room enough: each on one line


def test_a_record_is_field_value_lines_or_its_json_document():
    doc = {"user_id": "1001", "held": True, "reason": None}
    table, tsv, js = io.StringIO(), io.StringIO(), io.StringIO()
    Output("table", stream=table).record("User 1001", doc)
    Output("tsv", stream=tsv).record("User 1001", doc)
    Output("json", stream=js).record("User 1001", doc)
    assert table.getvalue().splitlines() == ["User 1001", "field    value", "user id  1001", "held     yes",
                                             "reason   -"]
    assert tsv.getvalue() == "user_id\t1001\nheld\ttrue\nreason\t\n"
    assert js.getvalue().startswith('{\n  "user_id": "1001"')
