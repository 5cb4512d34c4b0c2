"""HTTP: the read API for Communifire, ``GET /calendar/{user}?from=&to=`` (function key).

Answers the same document as ``outlook-sync calendar --user ID --json``
(docs/calendar-json.md): every event the user has, effective values per instance.
"""

import json

import azure.functions as func

from core.app import service
from core.app.bootstrap import get_app

bp = func.Blueprint()


def _json(status: int, body: dict) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})


@bp.route(route="calendar/{user}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def read_calendar(req: func.HttpRequest) -> func.HttpResponse:
    try:
        doc = service.read_calendar(get_app(), req.route_params.get("user"), req.params.get("from"),
                                    req.params.get("to"), req.params.get("event"))
    except service.BadRequest as exc:
        return _json(400, {"error": "bad_request", "message": str(exc)})
    except service.SettingsError as exc:
        return _json(503, {"error": "misconfigured", "message": str(exc)})
    return _json(200, doc)
