"""HTTP: Graph change notifications and lifecycle events (anonymous: Graph sends no key).

Both answer the ``validationToken`` handshake and answer a POST with 202 at once; the
clientState check, the debounce and the queueing are in ``core.app.notifications``.
"""

import azure.functions as func

from core.app import notifications, service
from core.app.bootstrap import get_app

bp = func.Blueprint()
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _answer(req: func.HttpRequest) -> func.HttpResponse:
    reply = notifications.handshake(req.params)
    if reply is None:
        try:
            reply = notifications.receive(get_app(), req.get_body() or b"")
        except service.SettingsError:
            reply = notifications.Reply(503, "misconfigured")
    return func.HttpResponse(reply.body, status_code=reply.status, mimetype=reply.content_type,
                             charset="utf-8", headers=_HEADERS)


@bp.route(route="oauth2/outlook/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req)


@bp.route(route="oauth2/outlook/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req)
