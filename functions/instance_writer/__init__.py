"""Queue `%WritesQueue%` (writes): apply one event's reconciled change to Table Storage.
Queue `%OutboundQueue%` (outbound): apply one Communifire change to Table Storage and to Outlook."""

import logging

import azure.functions as func

from core.app import outbound_exec, service
from core.app.bootstrap import get_app

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name="%WritesQueue%", connection="AzureWebJobsStorage")
def apply_writes(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode("utf-8")
    with service.telemetry.consuming("apply_writes", "writes", body, message_id=msg.id,
                                     dequeue_count=msg.dequeue_count):
        outcome = service.run_write(get_app(), body)
        service.telemetry.annotate(outcome=outcome)
        service.logs.info(log, "write applied", message_id=msg.id, outcome=outcome, dequeue_count=msg.dequeue_count)


@bp.queue_trigger(arg_name="msg", queue_name="%OutboundQueue%", connection="AzureWebJobsStorage")
def apply_outbound(msg: func.QueueMessage) -> None:
    raw = msg.get_body()  # bytes: a message that is not UTF-8 JSON is poisoned at once, as it came
    # Continues the trace of the Communifire backend when its message carries a traceparent.
    with service.telemetry.consuming("apply_outbound", "outbound", raw.decode("utf-8", "replace"),
                                     message_id=msg.id, dequeue_count=msg.dequeue_count):
        outcome = outbound_exec.run_outbound(get_app(), raw)
        service.telemetry.annotate(outcome=outcome)
        service.logs.info(log, "outbound message done", message_id=msg.id, outcome=outcome,
                          dequeue_count=msg.dequeue_count)
