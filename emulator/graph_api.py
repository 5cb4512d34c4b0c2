"""Microsoft Graph v1.0 calendar surface over the store (``/v1.0/...``).

Owns: bearer-token checks (401 InvalidAuthenticationToken), mailbox resolution for
``/me`` and ``/users/{id|upn}``, fault injection and throttling per request, the event
routes (list, create, get, patch, delete, instances, actions), calendarView with
``$skip`` paging, calendarView/delta rounds (window and seen-state kept server-side
behind opaque tokens), ``/subscriptions`` and ``$batch``.

Invariants: calendarView never returns series masters; ``/events`` returns only singles
and masters; delta returns master rows, bare occurrence rows, full exception rows,
``@removed`` for deleted items and for out-of-window changes, and no tombstone for a
deleted occurrence; a page is never larger than the page size; a round returns each
row at most once.
"""
from __future__ import annotations

import datetime as _dt
import json
import random
import re
import secrets
import time
from urllib.parse import quote, urlencode

from . import render
from .render import View
from .store import Item, Mailbox, instance_at, instances, overlaps, parse_id
from .timeutil import fmt_error_date, parse_query_instant, resolve_tz, TimeZoneError
from .web import GraphError, Request, Response, empty, graph_error_body, json_response

NOT_FOUND = ("ErrorItemNotFound", "The specified object was not found in the store.")


# ---------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------

def handle(state, req: Request) -> Response:
    """Answer one Graph request (top level or a $batch item)."""
    try:
        return _handle(state, req)
    except GraphError as exc:
        return error_response(state, req, exc)


def error_response(state, req: Request, exc: GraphError) -> Response:
    body = graph_error_body(exc.code, exc.message, fmt_error_date(state.clock.now()),
                            client_request_id=req.headers.get("client-request-id"),
                            inner=exc.inner)
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate",
                           'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                           'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"')
    return json_response(exc.status, body, headers)


def _handle(state, req: Request) -> Response:
    seg = req.segments[1:]  # drop "v1.0"
    if seg == ["$batch"]:
        if req.method != "POST":
            raise GraphError(405, "Request_BadRequest", "Only POST is allowed on $batch.")
        _auth(state, req)
        return _batch(state, req)
    claims = _auth(state, req)
    if not seg:
        raise GraphError(400, "BadRequest", "Invalid request.")
    if seg[0].lower() == "subscriptions":
        return _with_limits(state, req, claims, claims.get("oid"),
                            lambda: _subscriptions(state, req, claims, seg[1:]))
    if seg[0].lower() == "me":
        if "scp" not in claims:
            raise GraphError(400, "BadRequest",
                             "/me request is only valid with delegated authentication flow.")
        target = state.directory.users.get(claims["oid"])
        rest = seg[1:]
        prefix = "me"
    elif seg[0].lower() == "users" and len(seg) >= 2:
        ref = seg[1]
        target = state.directory.user_by_ref(ref)
        if target is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        if "scp" in claims and target.id != claims["oid"]:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        rest = seg[2:]
        prefix = f"users/{quote(seg[1], safe='@')}"
    else:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{seg[0]}'.")
    if target is None:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
    req.context["user"] = target.upn
    return _with_limits(state, req, claims, target.id,
                        lambda: _mailbox_route(state, req, target, rest, prefix))


def _auth(state, req: Request) -> dict:
    auth = req.headers.get("Authorization") or ""
    if not auth.lower().startswith("bearer "):
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    with state.lock:
        try:
            claims = state.directory.verify_access_token(auth[7:].strip())
        except ValueError as exc:
            raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from exc
    req.context["user"] = claims.get("upn")
    req.context["app"] = claims.get("appid")
    return claims


def _with_limits(state, req: Request, claims: dict, mailbox_oid: str | None, fn) -> Response:
    upn = req.context.get("user")
    kinds = ("429", "503", "504", "expired_token") if req.in_batch else \
        ("429", "503", "504", "expired_token", "drop", "slow")
    fault = state.faults.take(upn, req.path, kinds)
    drop_fault = None
    delay = 0.0
    if fault is not None:
        req.context["fault"] = fault.kind
        if fault.kind == "expired_token":
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token has expired or is not yet valid.")
        if fault.kind == "429":
            ra = fault.retry_after if fault.retry_after is not None else 1
            req.context["retry_after"] = ra
            raise GraphError(429, "TooManyRequests", "Please retry again later.",
                             {"Retry-After": str(ra)})
        if fault.kind in ("503", "504"):
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.retry_after is not None:
                req.context["retry_after"] = fault.retry_after
            if fault.kind == "503":
                raise GraphError(503, "ServiceNotAvailable",
                                 "The service is temporarily unavailable.", headers)
            raise GraphError(504, "GatewayTimeout", "The gateway timed out.", headers)
        if fault.kind == "slow":
            delay = float(fault.delay if fault.delay is not None else 2.0)
        if fault.kind == "drop":
            drop_fault = fault
    key = (claims.get("appid"), mailbox_oid)
    retry = state.throttle.enter(key, concurrent=not req.in_batch)
    if retry is not None:
        req.context["fault"] = req.context.get("fault") or "throttled"
        req.context["retry_after"] = retry
        raise GraphError(429, "ApplicationThrottled",
                         "Application is over its MailboxConcurrency limit." if retry ==
                         state.throttle.concurrency_retry_after else
                         "Application is over its resource limit.",
                         {"Retry-After": _num(retry)})
    try:
        if delay:
            time.sleep(delay)
        resp = fn()
    finally:
        if not req.in_batch:
            state.throttle.leave(key)
    if drop_fault is not None:
        resp.drop_after = max(1, len(resp.body) // 2)
    return resp


def _num(x) -> str:
    f = float(x)
    return str(int(f)) if f == int(f) else str(f)


# ---------------------------------------------------------------------------
# mailbox routes
# ---------------------------------------------------------------------------

def _ctx(req: Request, target, suffix: str) -> str:
    return f"{req.base_url}/v1.0/$metadata#users('{target.id}')/{suffix}"


def _mailbox_route(state, req: Request, target, rest: list[str], prefix: str) -> Response:
    m = req.method
    with state.lock:
        if not target.mailbox_enabled and rest:
            raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
        mb = state.store.mailbox(target)
        if not rest:
            if m != "GET":
                raise GraphError(405, "Request_BadRequest", "Method not allowed.")
            return json_response(200, _profile(req, target))
        # calendar containers: /calendar/..., /calendars/{id}/... map to the default calendar
        if rest[0] == "calendar":
            if len(rest) == 1:
                return json_response(200, _calendar_json(req, target))
            rest = rest[1:]
        elif rest[0] == "calendars":
            if len(rest) == 1:
                return json_response(200, {"@odata.context": _ctx(req, target, "calendars"),
                                           "value": [_calendar_json(req, target)]})
            if rest[1] != _calendar_id(target):
                raise GraphError(404, *NOT_FOUND)
            if len(rest) == 2:
                return json_response(200, _calendar_json(req, target))
            rest = rest[2:]
        head = rest[0]
        if head == "events":
            if len(rest) == 1:
                if m == "GET":
                    return _list_events(state, req, mb, target, prefix)
                if m == "POST":
                    return _create(state, req, mb, target)
                raise GraphError(405, "Request_BadRequest", "Method not allowed.")
            event_id = rest[1]
            if len(rest) == 2:
                if m == "GET":
                    return _get_event(state, req, mb, target, event_id)
                if m == "PATCH":
                    return _patch_event(state, req, mb, target, event_id)
                if m == "DELETE":
                    return _delete_event(state, req, mb, event_id)
                raise GraphError(405, "Request_BadRequest", "Method not allowed.")
            if len(rest) == 3 and rest[2] == "instances" and m == "GET":
                return _instances(state, req, mb, target, event_id, prefix)
            if len(rest) == 3 and m == "POST" and rest[2] in (
                    "cancel", "accept", "decline", "tentativelyAccept"):
                return _action(state, req, mb, event_id, rest[2])
            raise GraphError(400, "BadRequest",
                             f"Resource not found for the segment '{rest[2]}'.")
        if head == "calendarView":
            if len(rest) == 1 and m == "GET":
                return _calendar_view(state, req, mb, target, prefix)
            if len(rest) == 2 and rest[1] == "delta" and m == "GET":
                return _delta(state, req, mb, prefix)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")


def _profile(req: Request, u) -> dict:
    given, _, sur = u.display_name.partition(" ")
    return {"@odata.context": f"{req.base_url}/v1.0/$metadata#users/$entity",
            "businessPhones": [], "displayName": u.display_name, "givenName": given or None,
            "jobTitle": None, "mail": u.upn, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "surname": sur or None, "userPrincipalName": u.upn,
            "id": u.id}


def _calendar_id(u) -> str:
    return "AAMkAGcal" + u.id.replace("-", "") + "AAA="


def _calendar_json(req: Request, u) -> dict:
    return {"@odata.context": _ctx(req, u, "calendar/$entity"), "id": _calendar_id(u),
            "name": "Calendar", "color": "auto", "hexColor": "", "isDefaultCalendar": True,
            "changeKey": "DxYSthXJXEWwAQSYQnXvIgAAAAACNw==", "canShare": True,
            "canViewPrivateItems": True, "canEdit": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True,
            "isRemovable": False, "owner": {"name": u.display_name, "address": u.upn}}


def _view(req: Request, allow_select: bool = True, write: bool = False) -> View:
    view = View.from_request(req, allow_select, write)
    try:
        resolve_tz(view.tz)
    except TimeZoneError:
        raise GraphError(400, "TimeZoneNotSupportedException",
                         "A valid TimeZone value must be specified. The following TimeZone value "
                         f"is not supported: '{view.tz}'.") from None
    return view


def _applied(req: Request, page_pref: bool = False) -> dict:
    pref = req.prefer()
    parts = []
    if "outlook.timezone" in pref:
        parts.append(f'outlook.timezone="{pref["outlook.timezone"]}"')
    if page_pref and "odata.maxpagesize" in pref:
        parts.append(f"odata.maxpagesize={pref['odata.maxpagesize']}")
    if "idtype" in pref:
        parts.append(f'IdType="{pref["idtype"]}"')
    if "outlook.body-content-type" in pref:
        parts.append(f'outlook.body-content-type="{pref["outlook.body-content-type"]}"')
    return {"Preference-Applied": ", ".join(parts)} if parts else {}


def _render(item_or_inst, view: View, odata_type: bool = False) -> dict:
    if isinstance(item_or_inst, Item):
        return render.item_json(item_or_inst, view, odata_type, instance_at)
    return render.instance_json(item_or_inst, view, odata_type)


def _resolve(state, mb: Mailbox, event_id: str):
    item, day = state.store.resolve(mb, event_id)
    return (item if day is None else instance_at(item, day)), item, day


def _get_event(state, req, mb, target, event_id) -> Response:
    view = _view(req)
    obj, _, _ = _resolve(state, mb, event_id)
    out = {"@odata.context": _ctx(req, target, "events/$entity")}
    out.update(_render(obj, view))
    return json_response(200, out, _applied(req))


def _body(req: Request) -> dict:
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError):
        raise GraphError(400, "RequestBodyRead", "Invalid JSON. A token was not recognized in the JSON content.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "RequestBodyRead", "The request body must be a JSON object.")
    return body


def _create(state, req, mb, target) -> Response:
    body = _body(req)
    item, _ = state.store.create(mb, body)
    out = {"@odata.context": _ctx(req, target, "events/$entity")}
    out.update(_render(item, _view(req, write=True)))
    return json_response(201, out, {"Location": f"{req.base_url}/v1.0/users('{target.id}')/events('{item.id}')",
                                    **_applied(req)})


def _check_if_match(req: Request, item: Item, day) -> None:
    """``If-Match`` with a stale ``@odata.etag`` is refused with 412 (GRAPH.md section 10)."""
    wanted = req.headers.get("If-Match")
    if wanted is None or wanted.strip() == "*":
        return
    current = (item if day is None else instance_at(item, day)).change_key
    given = [t.strip() for t in wanted.split(",")]
    if not any(t in (f'W/"{current}"', f'"{current}"', current) for t in given):
        raise GraphError(412, "ErrorIrresolvableConflict",
                         "The send or update operation could not be performed because the change key "
                         "passed in the request does not match the current change key for the item.")


def _patch_event(state, req, mb, target, event_id) -> Response:
    body = _body(req)
    item, day = state.store.resolve(mb, event_id)
    _check_if_match(req, item, day)
    if day is None:
        obj = state.store.update(mb, item, body)
    else:
        obj = state.store.update_occurrence(mb, item, day, body)
    out = {"@odata.context": _ctx(req, target, "events/$entity")}
    out.update(_render(obj, _view(req, write=True)))
    return json_response(200, out, _applied(req))


def _delete_event(state, req, mb, event_id) -> Response:
    item, day = state.store.resolve(mb, event_id)
    _check_if_match(req, item, day)
    if day is None:
        state.store.delete(mb, item)
    else:
        state.store.delete_occurrence(mb, item, day)
    return empty(204)


def _action(state, req, mb, event_id, action) -> Response:
    body = _body(req) if req.body else {}
    item, day = state.store.resolve(mb, event_id)
    if action == "cancel":
        if item.org_user is not None or not item.props.get("isOrganizer", True):
            raise GraphError(400, "ErrorAccessDenied",
                             "Your request can't be completed. You need to be an organizer to "
                             "cancel a meeting.")
        if day is None:
            state.store.delete(mb, item)
        else:
            state.store.delete_occurrence(mb, item, day)
        return empty(202)
    send = body.get("sendResponse", True)
    if body.get("proposedNewTime") is not None:
        if action == "accept":
            raise GraphError(400, "RequestBodyRead",
                             "The property 'proposedNewTime' does not exist on this action.")
        if send is False:
            raise GraphError(400, "ErrorInvalidRequest",
                             "Your request can't be completed. A time proposal can't be sent "
                             "without a response (sendResponse is false).")
        if not item.props.get("allowNewTimeProposals", True):
            raise GraphError(400, "ErrorInvalidRequest",
                             "Your request can't be completed. The organizer doesn't allow new "
                             "time proposals for this meeting.")
    state.store.respond(mb, item, day, action, send=bool(send))
    return empty(202)


# ---------------------------------------------------------------------------
# lists, calendarView, instances
# ---------------------------------------------------------------------------

def _window(req: Request) -> tuple[_dt.datetime, _dt.datetime]:
    s, e = req.q("startDateTime"), req.q("endDateTime")
    if not s or not e:
        raise GraphError(400, "ErrorInvalidParameter",
                         "This request requires a time window specified by the query string "
                         "parameters StartDateTime and EndDateTime.")
    try:
        lo, hi = parse_query_instant(s), parse_query_instant(e)
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter",
                         "The value of the parameter 'StartDateTime' or 'EndDateTime' is invalid.") from None
    return lo, hi


def _page_size(req: Request, default: int = 10) -> int:
    top = req.q("$top")
    if top is not None:
        try:
            n = int(top)
        except ValueError:
            raise GraphError(400, "BadRequest", f"Invalid $top value '{top}'.") from None
        if not 1 <= n <= 1000:
            raise GraphError(400, "ErrorInvalidParameter",
                             "The value of the $top parameter must be between 1 and 1000.")
        return n
    pref = req.prefer().get("odata.maxpagesize")
    if pref:
        try:
            return max(1, min(int(pref), 1000))
        except ValueError:
            pass
    return default


def _filter_pred(expr: str | None):
    """A predicate over rendered (UTC, ext props expanded) events for a small $filter subset."""
    if not expr:
        return lambda ev: True
    clauses = []
    depth, cur, i = 0, "", 0
    low = expr
    while i < len(low):
        ch = low[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and low[i:i + 5].lower() == " and ":
            clauses.append(cur)
            cur = ""
            i += 5
            continue
        cur += ch
        i += 1
    clauses.append(cur)
    preds = []
    for c in (c.strip() for c in clauses):
        m = re.fullmatch(r"(?i)singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'([^']*)'"
                         r"(?:\s+and\s+\1/value\s+eq\s+'([^']*)')?\s*\)", c)
        if m:
            pid, pval = m.group(2).lower(), m.group(3)
            preds.append(lambda ev, pid=pid, pval=pval: any(
                p["id"].lower() == pid and (pval is None or p["value"] == pval)
                for p in ev.get("singleValueExtendedProperties", [])))
            continue
        m = re.fullmatch(r"(?i)(type|iCalUId|subject|seriesMasterId|isCancelled)\s+eq\s+('([^']*)'|true|false)", c)
        if m:
            key = {"type": "type", "icaluid": "iCalUId", "subject": "subject",
                   "seriesmasterid": "seriesMasterId", "iscancelled": "isCancelled"}[m.group(1).lower()]
            val = m.group(3) if m.group(3) is not None else (m.group(2).lower() == "true")
            preds.append(lambda ev, key=key, val=val: ev.get(key) == val)
            continue
        m = re.fullmatch(r"(?i)(start|end)/dateTime\s+(ge|gt|le|lt|eq)\s+'([^']*)'", c)
        if m:
            field, op, val = m.group(1).lower(), m.group(2).lower(), parse_query_instant(m.group(3))

            def p(ev, field=field, op=op, val=val):
                t = parse_query_instant(ev[field]["dateTime"])
                return {"ge": t >= val, "gt": t > val, "le": t <= val, "lt": t < val, "eq": t == val}[op]
            preds.append(p)
            continue
        raise GraphError(400, "BadRequest", f"Invalid filter clause: {c}")
    return lambda ev: all(p(ev) for p in preds)


def _order(rows: list, req: Request) -> list:
    ob = (req.q("$orderby") or "").strip()
    key_name, desc = "start", False
    if ob:
        parts = ob.split()
        f = parts[0].lower()
        desc = len(parts) > 1 and parts[1].lower() == "desc"
        if f in ("start/datetime", "start"):
            key_name = "start"
        elif f in ("end/datetime", "end"):
            key_name = "end"
        elif f == "lastmodifieddatetime":
            key_name = "modified"
        elif f == "subject":
            key_name = "subject"
        elif f == "createddatetime":
            key_name = "created"
        else:
            raise GraphError(400, "BadRequest", f"Unsupported $orderby: {ob}")

    def key(obj):
        if key_name == "subject":
            return (obj.props.get("subject", ""), obj.id)
        if key_name == "modified":
            m = obj.modified if isinstance(obj, Item) else (obj.exc.modified if obj.exc else obj.master.modified)
            return (m, obj.id)
        if key_name == "created":
            c = obj.created if isinstance(obj, Item) else (obj.exc.created if obj.exc else obj.master.created)
            return (c, obj.id)
        return (getattr(obj, key_name), obj.id)
    return sorted(rows, key=key, reverse=desc)


def _paged(state, req: Request, rows: list, view: View, context: str, default: int = 10) -> Response:
    pred = _filter_pred(req.q("$filter"))
    if req.q("$filter"):
        probe = View("UTC", False, None, "singleValueExtendedProperties")
        rows = [r for r in rows if pred(_render(r, probe))]
    rows = _order(rows, req)
    size = min(_page_size(req, default), state.max_page_size)
    try:
        skip = int(req.q("$skip") or 0)
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid $skip value.") from None
    page = rows[skip:skip + size]
    out: dict = {"@odata.context": context, "value": [_render(r, view) for r in page]}
    if skip + size < len(rows):
        params = [(k, v) for k, v in _query_pairs(req) if k.lower() not in ("$skip", "%24skip")]
        params.append(("$skip", str(skip + size)))
        out["@odata.nextLink"] = f"{req.base_url}{req.path}?{urlencode(params, safe='$:')}"
    return json_response(200, out, _applied(req, page_pref=True))


def _query_pairs(req: Request) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl
    return parse_qsl(req.raw_query, keep_blank_values=True)


def _list_events(state, req, mb, target, prefix) -> Response:
    view = _view(req)
    rows = [i for i in mb.items.values()]
    return _paged(state, req, rows, view, _ctx(req, target, "events"))


def _view_rows(mb: Mailbox, lo: _dt.datetime, hi: _dt.datetime) -> list:
    rows = []
    for item in mb.items.values():
        if item.is_master:
            rows.extend(instances(item, lo, hi))
        elif overlaps(item, lo, hi):
            rows.append(item)
    return rows


def _calendar_view(state, req, mb, target, prefix) -> Response:
    lo, hi = _window(req)
    view = _view(req)
    if view.select is not None:  # not selectable on calendarView (GRAPH.md section 1)
        view.select = [s for s in view.select if s not in ("createdDateTime", "lastModifiedDateTime")]
    return _paged(state, req, _view_rows(mb, lo, hi), view, _ctx(req, target, "calendarView"))


def _instances(state, req, mb, target, event_id, prefix) -> Response:
    lo, hi = _window(req)
    view = _view(req)
    item, day = state.store.resolve(mb, event_id)
    rows = instances(item, lo, hi) if (item.is_master and day is None) else []
    return _paged(state, req, rows, view, _ctx(req, target, f"events('{quote(item.id)}')/instances"))


# ---------------------------------------------------------------------------
# calendarView delta
# ---------------------------------------------------------------------------

def _delta_rows(mb: Mailbox, lo, hi) -> dict:
    """id -> (version, kind, obj) of what the window holds now."""
    rows: dict = {}
    for item in mb.items.values():
        if item.is_master:
            insts = instances(item, lo, hi)
            if insts:
                rows[item.id] = (item.change_key, "master", item)
                for inst in insts:
                    rows[inst.id] = (inst.version, inst.kind, inst)
        elif overlaps(item, lo, hi):
            rows[item.id] = (item.change_key, "single", item)
    return rows


def _delta(state, req: Request, mb: Mailbox, prefix: str) -> Response:
    for bad in ("$select", "$expand", "$filter", "$orderby", "$search"):
        if req.q(bad) is not None:
            raise GraphError(400, "ErrorInvalidUrlQuery",
                             f"The following parameters are not supported with change tracking "
                             f"over the 'CalendarView' resource: '{bad}'.")
    view = _view(req, allow_select=False)
    base = f"{req.base_url}/v1.0/{prefix}/calendarView/delta"
    skip = req.q("$skiptoken")
    dtoken = req.q("$deltatoken")
    if skip:
        rnd = mb.delta_rounds.get(skip)
        if rnd is None:
            return _gone(state, req, base)
        del mb.delta_rounds[skip]
        return _delta_page(state, req, mb, rnd, base)
    if dtoken:
        st = mb.delta_tokens.get(dtoken)
        if st is None:
            return _gone(state, req, base)
        lo, hi, seen, seq = st["lo"], st["hi"], st["seen"], st["seq"]
    else:
        lo, hi = _window(req)
        seen, seq = {}, None
    now_rows = _delta_rows(mb, lo, hi)
    items: list[dict] = []
    emitted = set()
    for rid, (version, kind, obj) in sorted(now_rows.items(), key=lambda kv: _row_sort(kv[1])):
        if seen.get(rid) == version:
            continue
        emitted.add(rid)
        if kind == "occurrence":
            items.append(render.bare_occurrence(obj, view.tz))
        else:
            items.append(_render(obj, View(view.tz, view.body_text), odata_type=True))
    if seq is not None:
        for rid in seen:
            if rid in now_rows:
                continue
            try:
                kind, ident, _ = parse_id(rid)
            except ValueError:
                continue
            master = mb.items.get(ident) if kind == "occ" else None
            if kind == "occ" and master is not None and master.is_master:
                continue  # a deleted / cut occurrence leaves no tombstone (GRAPH.md section 2)
            items.append(render.tombstone(rid))
            emitted.add(rid)
        for s, rid in mb.changelog:
            if s > seq and rid not in now_rows and rid not in emitted:
                items.append(render.tombstone(rid))  # out-of-window change: @removed as well
                emitted.add(rid)
    new_token = secrets.token_urlsafe(24)
    mb.delta_tokens[new_token] = {"lo": lo, "hi": hi, "seq": mb.seq,
                                  "seen": {rid: v[0] for rid, v in now_rows.items()}}
    rnd = {"items": items, "pos": 0, "size": _delta_page_size(state, req), "delta": new_token}
    return _delta_page(state, req, mb, rnd, base)


def _row_sort(row) -> tuple:
    version, kind, obj = row
    order = {"single": 0, "master": 1, "exception": 2, "occurrence": 2}[kind]
    return (obj.start if hasattr(obj, "start") else _dt.datetime.min, order, obj.id)


def _delta_page_size(state, req: Request) -> int:
    # odata.maxpagesize is a preference: the server may serve smaller pages (max_page_size)
    pref = req.prefer().get("odata.maxpagesize")
    try:
        size = max(1, min(int(pref), 1000)) if pref else state.delta_page_size
    except ValueError:
        size = state.delta_page_size
    return min(size, state.max_page_size)


def _delta_page(state, req, mb: Mailbox, rnd: dict, base: str) -> Response:
    size = _delta_page_size(state, req) if req.prefer().get("odata.maxpagesize") else rnd["size"]
    pos = rnd["pos"]
    page = rnd["items"][pos:pos + size]
    out: dict = {"@odata.context": f"{req.base_url}/v1.0/$metadata#Collection(event)", "value": page}
    if pos + size <= len(rnd["items"]) and page:
        # more to come, or a full last page: the deltaLink comes on a following (maybe empty) page
        rnd = dict(rnd, pos=pos + size)
        tok = secrets.token_urlsafe(24)
        mb.delta_rounds[tok] = rnd
        out["@odata.nextLink"] = f"{base}?$skiptoken={tok}"
    else:
        out["@odata.deltaLink"] = f"{base}?$deltatoken={rnd['delta']}"
    return json_response(200, out, _applied(req, page_pref=True))


def _gone(state, req, base: str) -> Response:
    exc = GraphError(410, "SyncStateNotFound",
                     "The sync state generation is not found. Start a full synchronization.",
                     {"Location": f"{base}?$deltatoken="})
    return error_response(state, req, exc)


# ---------------------------------------------------------------------------
# subscriptions
# ---------------------------------------------------------------------------

def _subscriptions(state, req: Request, claims: dict, rest: list[str]) -> Response:
    subs = state.subscriptions
    m = req.method
    if not rest:
        if m == "POST":
            body = _body(req)
            with state.lock:
                sub = subs.prepare(body, claims)
                mb_user = state.directory.users.get(sub.owner_oid)
                if mb_user is not None and not mb_user.mailbox_enabled:
                    raise GraphError(404, "ExtensionError",
                                     "Operation: Create; Exception: [Status Code: NotFound; Reason: "
                                     "REST API is not yet supported for this mailbox.]")
                if mb_user is not None and not mb_user.webhooks_supported:
                    # a hybrid / on-premises mailbox: calendar REST works, webhooks do not
                    raise GraphError(400, "ExtensionError",
                                     "Operation: Create; Exception: [Status Code: BadRequest; Reason: "
                                     f"Mailbox '{mb_user.id}' is currently on backend 'Unknown'.]")
            subs.validate_endpoint(sub.notification_url)  # outside the lock
            if sub.lifecycle_url:
                subs.validate_endpoint(sub.lifecycle_url)
            with state.lock:
                subs.subs[sub.id] = sub
            return json_response(201, sub.public(req.base_url))
        if m == "GET":
            with state.lock:
                now = state.clock.now()
                # delegated: the app's subscriptions made for the signed-in user only
                vals = [s.public(req.base_url) for s in subs.subs.values()
                        if s.app_id == claims.get("appid") and s.expiration > now
                        and ("scp" not in claims or s.creator == claims.get("oid"))]
            for v in vals:
                v.pop("@odata.context", None)
            return json_response(200, {"@odata.context": f"{req.base_url}/v1.0/$metadata#subscriptions",
                                       "value": vals})
        raise GraphError(405, "Request_BadRequest", "Method not allowed.")
    sub_id = rest[0]
    with state.lock:
        if len(rest) == 2 and rest[1] == "reauthorize" and m == "POST":
            subs.get(sub_id, claims)
            return empty(200)
        if len(rest) != 1:
            raise GraphError(400, "BadRequest", "Invalid request.")
        if m == "GET":
            return json_response(200, subs.get(sub_id, claims).public(req.base_url))
        if m == "PATCH":
            return json_response(200, subs.renew(sub_id, _body(req), claims).public(req.base_url))
        if m == "DELETE":
            subs.get(sub_id, claims)
            del subs.subs[sub_id]
            return empty(204)
    raise GraphError(405, "Request_BadRequest", "Method not allowed.")


# ---------------------------------------------------------------------------
# $batch
# ---------------------------------------------------------------------------

def _batch(state, req: Request) -> Response:
    try:
        body = json.loads(req.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.") from None
    reqs = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(reqs, list) or not reqs:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(reqs) > 20:
        raise GraphError(400, "BadRequest", "Number of requests in batch exceeds the limit of 20.")
    ids: dict[str, dict] = {}
    for r in reqs:
        if not isinstance(r, dict) or not r.get("id") or not r.get("method") or not r.get("url"):
            raise GraphError(400, "BadRequest", "Each batch request needs id, method and url.")
        rid = str(r["id"])
        if rid.lower() in {k.lower() for k in ids}:
            raise GraphError(400, "BadRequest", f"Batch request ids must be unique: '{rid}'.")
        headers = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
        if r.get("body") is not None and "content-type" not in headers:
            raise GraphError(400, "BadRequest",
                             f"Content-Type header is required for a request with a body (id {rid}).")
        ids[rid] = r
    for r in reqs:
        deps = r.get("dependsOn") or []
        for d in deps:
            if str(d) not in ids:
                raise GraphError(400, "BadRequest", f"Depends on an unknown request id '{d}'.")
    results: dict[str, dict] = {}

    def run(rid: str, stack=()):
        if rid in results:
            return results[rid]
        if rid in stack:
            raise GraphError(400, "BadRequest", "Circular dependsOn in batch.")
        r = ids[rid]
        failed = False
        for d in r.get("dependsOn") or []:
            dep = run(str(d), stack + (rid,))
            if dep["status"] >= 400:
                failed = True
        if failed:
            results[rid] = {"id": rid, "status": 424, "headers": {"Content-Type": "application/json"},
                            "body": graph_error_body("FailedDependency",
                                                     "Dependent request failed.",
                                                     fmt_error_date(state.clock.now()))}
            return results[rid]
        url = str(r["url"]).lstrip("/")
        if url.lower().startswith("v1.0/"):
            url = url[5:]
        headers = dict(r.get("headers") or {})
        headers["Authorization"] = req.headers.get("Authorization", "")
        raw_body = r.get("body")
        data = b"" if raw_body is None else (
            raw_body.encode() if isinstance(raw_body, str) else json.dumps(raw_body).encode())
        sub = Request.build(r["method"], "/v1.0/" + url, headers, data, req.base_url, in_batch=True)
        resp = handle(state, sub)
        state.log_request(sub, resp.status)
        hdrs = {k: v for k, v in resp.headers.items()}
        item = {"id": rid, "status": resp.status, "headers": hdrs}
        if resp.body:
            try:
                item["body"] = json.loads(resp.body)
            except ValueError:
                item["body"] = resp.body.decode("utf-8", "replace")
        results[rid] = item
        return item

    for r in reqs:
        run(str(r["id"]))
    out = list(results.values())
    random.Random(state.batch_order_seed).shuffle(out)  # Graph answers in any order
    return json_response(200, {"responses": out})
