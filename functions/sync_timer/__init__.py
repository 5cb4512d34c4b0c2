"""Timer: fan out one sync job per due user; queue `%SyncJobsQueue%` (sync-jobs): sync one user."""

import logging

import azure.functions as func

from core.app import service
from core.app.bootstrap import get_app

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="%SyncSchedule%", run_on_startup=False, use_monitor=True)
def sync_timer(timer: func.TimerRequest) -> None:
    # The root of one trace: each sync job it queues carries it on (docs/operations.md, "Tracing").
    with service.telemetry.span("sync_timer", past_due=timer.past_due):
        if timer.past_due:
            service.logs.info(log, "sync timer is past due")
        app = get_app()
        service.enqueue_due(app)
        service.report_queue_depths(app)  # for the poison-messages alert


@bp.queue_trigger(arg_name="msg", queue_name="%SyncJobsQueue%", connection="AzureWebJobsStorage")
def sync_user(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode("utf-8")
    with service.telemetry.consuming("sync_user", "sync-jobs", body, message_id=msg.id,
                                     dequeue_count=msg.dequeue_count):
        report = service.run_sync_job(get_app(), body)
        service.telemetry.annotate(user_id=report.user_id, outcome=report.outcome)
        service.logs.info(log, "sync job done", user_id=report.user_id, outcome=report.outcome)
