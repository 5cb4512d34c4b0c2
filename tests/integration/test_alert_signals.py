"""The telemetry the alert rules read (infra/alerts/*.kql) is what the app logs (issue 15)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "infra" / "alerts"


def _records(caplog, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(message)]


def test_the_timer_logs_the_depth_of_every_poison_queue(stack, caplog):
    """poison-messages.kql reads the newest 'queue depths' line's custom dimensions."""
    caplog.set_level(logging.INFO)
    stack.app.storage.queue("writes-poison").send_message('{"v": 1, "kind": "event_change"}')
    stack.app.storage.queue("outbound-poison").send_message('{"v": 1}')
    stack.app.storage.queue("outbound-poison").send_message('{"v": 1}')

    stack.run_timer()
    stack.host.wait_idle(timeout=60)

    (record,) = _records(caplog, "queue depths")
    dims = {k: getattr(record, k) for k in ("poison_messages", "sync_jobs_poison", "writes_poison", "outbound_poison")}
    assert dims == {"poison_messages": 3, "sync_jobs_poison": 0, "writes_poison": 1, "outbound_poison": 2}
    query = (ALERTS / "poison-messages.kql").read_text(encoding="utf-8")
    for name in dims:
        assert f"customDimensions.{name}" in query


def test_every_log_line_and_span_an_alert_query_names_is_emitted_by_the_app():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in [*ROOT.joinpath("core").rglob("*.py"),
                                                                *ROOT.joinpath("functions").rglob("*.py")])
    for kql in sorted(ALERTS.glob("*.kql")):
        text = kql.read_text(encoding="utf-8")
        for message in re.findall(r'message startswith "([^"]+)"', text):
            assert f'"{message}' in sources, (kql.name, message)
        for span in re.findall(r'name == "([^"]+)"', text):
            assert f'"{span}"' in sources, (kql.name, span)
