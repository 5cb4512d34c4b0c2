"""Telemetry (issue 15): custom dimensions, envelopes, and no cost when it is off."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from core.adapters import logs, telemetry

ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# An address only: the exporter never reaches it in these tests.
CONNECTION_STRING = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"


def _exported(fields: dict) -> dict:
    """The customDimensions Application Insights would get for one log line."""
    from azure.monitor.opentelemetry.exporter import AzureMonitorLogExporter

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("tests.telemetry.dimensions")
    logger.handlers[:] = [LoggingHandler(logger_provider=provider)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logs.info(logger, "sync job done", **fields)
    (record,) = exporter.get_finished_logs()
    azure = AzureMonitorLogExporter(connection_string=CONNECTION_STRING, disable_offline_storage=True)
    # The exporter's own conversion of a record into the row it sends (its properties are
    # the row's customDimensions).
    envelope = azure._log_to_envelope(record)
    return {"message": envelope.data.base_data.message, **envelope.data.base_data.properties}


def test_log_fields_become_custom_dimensions():
    row = _exported({"user_id": "1001", "event_id": "cf-evt-1", "operation_id": "op-7", "count": 3,
                     "outcome": None})
    assert row["user_id"] == "1001" and row["event_id"] == "cf-evt-1" and row["operation_id"] == "op-7"
    assert row["count"] == "3"
    assert "outcome" not in row  # empty values are left out, in the text and the dimensions
    assert row["message"].startswith("sync job done | user_id=1001")


@pytest.mark.parametrize("field", ["upn", "email", "subject", "name", "body", "refresh_token", "code", "state"])
def test_personal_data_and_secrets_are_refused_as_log_fields_and_span_attributes(field):
    with pytest.raises(ValueError, match="refusing to log"):
        logs.info(logging.getLogger("tests.telemetry"), "x", **{field: "value"})
    with pytest.raises(ValueError, match="refusing to log"):
        with telemetry.span("x", **{field: "value"}):
            pass


def test_envelope_fields_read_the_trace_context_and_nothing_else():
    body = json.dumps({"v": 1, "user_id": "1001", "traceparent": TRACEPARENT, "tracestate": "az=1"})
    assert telemetry.envelope_fields(body) == {"traceparent": TRACEPARENT, "tracestate": "az=1"}
    assert telemetry.envelope_fields(b'{"v": 1}') == {}
    assert telemetry.envelope_fields("not json") == {}
    assert telemetry.envelope_fields("[1, 2]") == {}
    assert telemetry.envelope_fields({"traceparent": 7}) == {}


def test_a_consumer_continues_the_trace_it_was_sent_without_an_sdk():
    """Locally (no exporter) an incoming trace is passed on unchanged, not dropped."""
    with telemetry.consuming("sync_user", "sync-jobs", json.dumps({"traceparent": TRACEPARENT})):
        with telemetry.producing("writes") as fields:
            assert fields["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]


def test_configure_does_nothing_without_a_connection_string():
    assert telemetry.configure({}) is False
    assert telemetry.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": "  "}) is False


def _python(code: str, env: dict[str, str]) -> str:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**environ, **env}, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_cold_start_imports_no_telemetry_sdk_graph_sdk_or_aiohttp_when_telemetry_is_off():
    out = _python("import sys, function_app; print(sorted({m.split('.')[0] for m in sys.modules} & "
                  "{'opentelemetry', 'aiohttp', 'msgraph', 'kiota_abstractions', 'psutil'})); "
                  "print('azure.monitor.opentelemetry' in sys.modules)", {})
    assert out.splitlines() == ["[]", "False"]


def test_with_a_connection_string_the_function_app_sends_traces_and_logs_through_the_distro():
    out = _python(
        "import logging, function_app\n"
        "from opentelemetry import trace\n"
        "from opentelemetry._logs import get_logger_provider\n"
        "print(type(trace.get_tracer_provider()).__module__)\n"
        "print(type(get_logger_provider()).__module__)\n"
        "print(any(type(h).__name__ == 'LoggingHandler' for h in logging.getLogger().handlers))\n",
        {"APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION_STRING},
    )
    tracer_module, logger_module, handler = out.splitlines()[-3:]
    assert tracer_module.startswith("opentelemetry.sdk.trace")
    assert logger_module.startswith("opentelemetry.sdk._logs")
    assert handler == "True"


def test_work_handed_to_a_thread_pool_stays_in_the_callers_trace():
    """A fan-out through a ThreadPoolExecutor keeps each send inside the timer's trace."""
    from concurrent.futures import ThreadPoolExecutor

    def fields(_: int) -> dict:
        with telemetry.producing("sync-jobs") as carried:
            return carried

    with telemetry.consuming("sync_timer", "timer", json.dumps({"traceparent": TRACEPARENT})):
        with ThreadPoolExecutor(max_workers=4) as pool:
            kept = list(pool.map(telemetry.in_current_context(fields), range(8)))
        with ThreadPoolExecutor(max_workers=4) as pool:
            lost = list(pool.map(fields, range(8)))
    assert all(f["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1] for f in kept)
    assert lost == [{}] * 8  # what happens without it
