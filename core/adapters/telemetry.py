"""Telemetry: OpenTelemetry traces and logs to Application Insights, and one trace per
piece of work across the queues.

Owns:
- turning the Azure Monitor OpenTelemetry distro on, the way Azure Functions recommends
  for Python (``azure-monitor-opentelemetry`` in the worker, ``"telemetryMode":
  "OpenTelemetry"`` in host.json), and only when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
  is set: local runs and tests never import the distro (cold start stays light);
- the W3C trace context (``traceparent``/``tracestate``) carried inside every queue
  message envelope the app sends (``sync-jobs``, ``writes``, and ``outbound`` from the
  producer), and continued by the consumer: the timer, each user's sync, each write and
  each outbound change are one trace end to end (docs/operations.md, "Tracing");
- span attributes: the same non-personal ids as the log lines (core/adapters/logs.py).

The OpenTelemetry API is imported on first use, not at import. Without a configured
SDK (local runs) its tracer does nothing, but an incoming ``traceparent`` is still
passed on, so a trace started by the Communifire backend is not broken by a local hop.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Callable, Iterator, Mapping, TypeVar

T = TypeVar("T")

#: Envelope fields that carry the W3C trace context (https://www.w3.org/TR/trace-context/).
TRACE_FIELDS = ("traceparent", "tracestate")
TRACER_NAME = "outlook_sync"
#: Libraries the distro would instrument that this app does not use (fewer imports at start).
_UNUSED_INSTRUMENTATIONS = ("django", "fastapi", "flask", "psycopg2", "urllib", "urllib3")

_lock = threading.Lock()
_configured = False
_provider: Any = None  # None: OpenTelemetry's global tracer provider


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Send traces and logs to Application Insights, once per process.

    Does nothing (and imports nothing) unless ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is
    set. In Azure the exporter authenticates with the managed identity named by
    ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (local auth is disabled on the
    component, infra/core/monitoring.bicep). Returns whether telemetry is on.
    """
    global _configured
    environ = os.environ if environ is None else environ
    connection_string = (environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip()
    if not connection_string:
        return False
    with _lock:
        if not _configured:
            from azure.monitor.opentelemetry import configure_azure_monitor

            configure_azure_monitor(
                connection_string=connection_string,
                # Log records from every logger; their attributes become customDimensions.
                logger_name="",
                instrumentation_options={name: {"enabled": False} for name in _UNUSED_INSTRUMENTATIONS},
                enable_live_metrics=False,
            )
            _configured = True
    return True


@lru_cache(maxsize=1)
def _otel() -> Any:
    """The OpenTelemetry API pieces, imported once on first use."""
    from types import SimpleNamespace

    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return SimpleNamespace(trace=trace, propagator=TraceContextTextMapPropagator())


def use_tracer_provider(provider: Any) -> None:
    """Send the app's spans to ``provider`` instead of the global one; ``None`` restores it.

    For tests, which cannot replace OpenTelemetry's global provider once it is set.
    """
    global _provider
    _provider = provider


def _tracer() -> Any:
    return _otel().trace.get_tracer(TRACER_NAME, tracer_provider=_provider)


def _attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes: primitives only, empty values left out (same names as the logs)."""
    from core.adapters.logs import attribute_value, check_fields

    check_fields(fields)
    return {k: attribute_value(v) for k, v in fields.items() if v is not None and v != ""}


def trace_fields() -> dict[str, str]:
    """The current trace context as envelope fields; empty outside any trace."""
    carrier: dict[str, str] = {}
    _otel().propagator.inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_FIELDS}


def envelope_fields(body: str | bytes | Mapping[str, Any]) -> dict[str, str]:
    """The trace context a queue message carries (``{}`` when none, or not JSON)."""
    if isinstance(body, Mapping):
        message: Any = body
    else:
        try:
            message = json.loads(body)
        except (TypeError, ValueError):
            return {}
    if not isinstance(message, dict):
        return {}
    return {k: message[k] for k in TRACE_FIELDS if isinstance(message.get(k), str)}


@contextmanager
def span(name: str, /, **fields: Any) -> Iterator[None]:
    """An internal span around some work (a timer run, a use case)."""
    with _tracer().start_as_current_span(name, attributes=_attributes(fields)):
        yield


@contextmanager
def producing(queue: str, /, **fields: Any) -> Iterator[dict[str, str]]:
    """A PRODUCER span for one queue send; yields the envelope fields to add to the message."""
    otel = _otel()
    attributes = _attributes({"messaging.system": "azure_queue", "messaging.destination.name": queue,
                              "messaging.operation": "publish", **fields})
    with _tracer().start_as_current_span(f"{queue} publish", kind=otel.trace.SpanKind.PRODUCER,
                                         attributes=attributes):
        yield trace_fields()


@contextmanager
def consuming(name: str, queue: str, body: str | bytes | Mapping[str, Any], /, **fields: Any) -> Iterator[None]:
    """A CONSUMER span that continues the trace the message carries.

    Its parent is the producer's span (from the envelope's ``traceparent``); the span of
    the host's own invocation, when there is one, is kept as a link. A message without a
    trace context (an old message, a backend that sends none) starts from the current one.
    """
    otel = _otel()
    carried = envelope_fields(body)
    current = otel.trace.get_current_span().get_span_context()
    parent = otel.propagator.extract(carried) if carried else None
    links = [otel.trace.Link(current)] if parent is not None and current.is_valid else []
    attributes = _attributes({"messaging.system": "azure_queue", "messaging.destination.name": queue,
                              "messaging.operation": "process", **fields})
    with _tracer().start_as_current_span(name, context=parent, kind=otel.trace.SpanKind.CONSUMER,
                                         links=links, attributes=attributes):
        yield


def in_current_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` to run on another thread (a thread pool) inside the caller's trace.

    OpenTelemetry keeps the current span in a context variable, which a new thread does
    not inherit; without this, a send from a pool thread would start a trace of its own.
    Each call runs in its own copy of the caller's context, so calls may overlap.
    """
    captured = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> T:
        return captured.copy().run(fn, *args, **kwargs)

    return run


def annotate(**fields: Any) -> None:
    """Add ids learnt during the work (user, event, outcome) to the current span."""
    attributes = _attributes(fields)
    if attributes:
        _otel().trace.get_current_span().set_attributes(attributes)
