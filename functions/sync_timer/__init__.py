"""Timer: fan out one sync job per due user; queue `%SyncJobsQueue%` (sync-jobs): sync one user."""

import logging

import azure.functions as func

from core.app import service
from core.app.bootstrap import get_app

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="%SyncSchedule%", run_on_startup=False, use_monitor=True)
def sync_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        service.logs.info(log, "sync timer is past due")
    service.enqueue_due(get_app())


@bp.queue_trigger(arg_name="msg", queue_name="%SyncJobsQueue%", connection="AzureWebJobsStorage")
def sync_user(msg: func.QueueMessage) -> None:
    report = service.run_sync_job(get_app(), msg.get_body().decode("utf-8"))
    service.logs.info(log, "sync job done", user_id=report.user_id, outcome=report.outcome)
