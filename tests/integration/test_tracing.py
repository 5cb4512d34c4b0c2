"""One trace per piece of work, across every queue hop (issue 15, docs/operations.md "Tracing").

The real stack (Azurite, the emulator, the local host) runs the real triggers; the only
stand-in is where spans go: an OpenTelemetry SDK with an in-memory exporter, in place
of the Azure Monitor exporter that `configure_azure_monitor` installs in Azure.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.adapters import telemetry
from core.app.producer import OutboundProducer
from tests.integration.outbound_helpers import Communifire, connect_all, day0, z

pytestmark = pytest.mark.slow

ALICE = "alice@contoso.com"


@pytest.fixture
def spans():
    """The app's finished spans, from every thread (the local host runs the triggers in
    threads); only for this test: the global provider is left alone."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    try:
        yield exporter, provider
    finally:
        telemetry.use_tracer_provider(None)
        provider.shutdown()


def _single(subject: str, days: int) -> dict:
    start = (datetime.now(timezone.utc) + timedelta(days=days)).replace(hour=10, minute=0, second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return {"subject": subject, "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"}}


def _named(finished, name: str) -> list:
    return [s for s in finished if s.name == name]


def test_the_timer_sync_jobs_and_writes_are_one_trace(stack, spans):
    spans, _ = spans
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, _single("Planning", 2))
    stack.control.create_event(ALICE, _single("Review", 3))
    spans.clear()

    stack.sync_all()

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (timer,) = _named(finished, "sync_timer")
    jobs, writes = _named(finished, "sync_user"), _named(finished, "apply_writes")
    assert len(jobs) == 1 and len(writes) >= 2  # one job for the one user, one write per new event
    for span in [*jobs, *writes]:
        assert span.context.trace_id == timer.context.trace_id, span.name
        assert span.kind == SpanKind.CONSUMER
    # timer -> "sync-jobs publish" -> sync_user -> "writes publish" -> apply_writes
    (job,) = jobs
    publish = by_id[job.parent.span_id]
    assert (publish.name, publish.kind) == ("sync-jobs publish", SpanKind.PRODUCER)
    assert publish.parent.span_id == timer.context.span_id
    for write in writes:
        publish = by_id[write.parent.span_id]
        assert (publish.name, publish.kind) == ("writes publish", SpanKind.PRODUCER)
        assert publish.parent.span_id == job.context.span_id
    # custom dimensions: ids only
    assert job.attributes["user_id"] == "1001"
    assert job.attributes["messaging.destination.name"] == "sync-jobs"
    assert {w.attributes["outcome"] for w in writes} <= {"applied", "duplicate", "nothing", "conflict", "stale"}
    for span in finished:
        assert ALICE not in str(dict(span.attributes or {})), span.name  # no mailbox address on any span


def test_an_outbound_message_continues_the_senders_trace(stack, spans):
    spans, provider = spans
    connect_all(stack)
    communifire = Communifire(stack)
    start = day0()
    message = communifire.message("create", event={
        "title": "Kick-off", "start": z(start), "end": z(start + timedelta(minutes=30)), "time_zone": "UTC"})
    producer = OutboundProducer(stack.app.storage.queue("outbound"))
    spans.clear()

    with provider.get_tracer("communifire-backend").start_as_current_span("save event") as sender:
        producer.send(message)
    stack.host.wait_idle(timeout=60)

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (consumer,) = _named(finished, "apply_outbound")
    assert consumer.context.trace_id == sender.get_span_context().trace_id
    publish = by_id[consumer.parent.span_id]
    assert (publish.name, publish.kind) == ("outbound publish", SpanKind.PRODUCER)
    assert publish.parent.span_id == sender.get_span_context().span_id
    assert publish.attributes["operation_id"] == message["operation_id"]
    assert consumer.attributes["outcome"] == "applied"
    assert consumer.status.is_ok


def test_a_message_without_trace_context_is_still_processed_in_a_trace_of_its_own(stack, spans):
    spans, _ = spans
    """Messages queued before this version (or by a sender without tracing) carry no traceparent."""
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    spans.clear()

    stack.app.storage.queue("sync-jobs").send_message('{"v": 1, "user_id": "1001", "reason": "admin"}')
    stack.host.wait_idle(timeout=60)

    (job,) = _named(spans.get_finished_spans(), "sync_user")
    assert job.parent is None and job.status.is_ok
    assert stack.app.users.get("1001").last_sync_at is not None
