"""HTTP: connect and status (function key), callback (anonymous, Entra ID redirects here), disconnect."""

import json

import azure.functions as func

from core.app import service
from core.app.bootstrap import get_app

bp = func.Blueprint()


def _json(status: int, body: dict) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})


@bp.route(route="oauth2/outlook/connect", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def oauth_connect(req: func.HttpRequest) -> func.HttpResponse:
    try:
        p = req.params
        url = service.connect_url(get_app(), p.get("user"), upn=p.get("upn"), oid=p.get("oid"),
                                  return_url=p.get("return_url"), replace=p.get("replace"))
    except service.BadRequest as exc:
        return _json(400, {"error": "bad_request", "message": str(exc)})
    except service.SyncDisabled as exc:
        return _json(403, {"error": "sync_disabled", "message": str(exc)})
    except service.SettingsError as exc:
        return _json(503, {"error": "misconfigured", "message": str(exc)})
    if req.params.get("redirect") in ("1", "true"):
        return func.HttpResponse(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})
    return _json(200, {"auth_url": url})


@bp.route(route="oauth2/outlook/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def oauth_callback(req: func.HttpRequest) -> func.HttpResponse:
    try:
        result = service.callback(get_app(), dict(req.params))
    except service.SettingsError:
        result = service.auth.outcome("disabled")
    return func.HttpResponse(service.callback_page(result), status_code=result.status, mimetype="text/html",
                             headers=service.CALLBACK_HEADERS)


@bp.route(route="oauth2/outlook/status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def oauth_status(req: func.HttpRequest) -> func.HttpResponse:
    """The user's connection for My Calendar: connected, needs_reconnect, key_missing, not_connected."""
    try:
        return _json(200, service.connection_status(get_app(), req.params.get("user")))
    except service.BadRequest as exc:
        return _json(400, {"error": "bad_request", "message": str(exc)})
    except service.SettingsError as exc:
        return _json(503, {"error": "misconfigured", "message": str(exc)})


@bp.route(route="oauth2/outlook/disconnect", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def oauth_disconnect(req: func.HttpRequest) -> func.HttpResponse:
    user = req.params.get("user")
    if user is None and req.get_body():
        try:
            user = (req.get_json() or {}).get("user")
        except ValueError:
            return _json(400, {"error": "bad_request", "message": "body must be JSON like {\"user\": \"123\"}"})
    try:
        existed = service.disconnect(get_app(), user)
    except service.BadRequest as exc:
        return _json(400, {"error": "bad_request", "message": str(exc)})
    except service.SettingsError as exc:
        return _json(503, {"error": "misconfigured", "message": str(exc)})
    return _json(200, {"disconnected": True, "was_connected": existed})
