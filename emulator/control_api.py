"""The control API (``/_control/...``): JSON, no auth, for tests and the demo.

Owns: the routes that set up tenants, apps and users, change consent, expire tokens,
act in Outlook as a mailbox owner (``outlook.py``), dump mailboxes, inject faults,
configure throttling, subscriptions and the clock, read the request and notification
logs, seed and reset. ``control.py`` is the Python client; ``README.md`` documents both.
"""
from __future__ import annotations

import datetime as _dt
import re

from .outlook import Outlook
from .timeutil import parse_query_instant
from .web import GraphError, Request, Response, plain_json


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _user(state, upn: str):
    u = state.directory.user_by_ref(upn)
    if u is None:
        raise ControlError(404, f"unknown user {upn}")
    return u


def handle(state, req: Request) -> Response:
    try:
        return _handle(state, req)
    except ControlError as exc:
        return plain_json(exc.status, {"error": {"code": "ControlError", "message": exc.message}})
    except GraphError as exc:
        return plain_json(exc.status, {"error": {"code": exc.code, "message": exc.message}})
    except (KeyError, ValueError, TypeError) as exc:
        return plain_json(400, {"error": {"code": "ControlError", "message": f"{type(exc).__name__}: {exc}"}})


def _handle(state, req: Request) -> Response:
    seg = req.segments[1:]
    m = req.method
    body = req.json() if req.body else {}
    body = body or {}
    ok = plain_json(200, {"ok": True})
    d = state.directory
    with state.lock:
        if seg == ["reset"] and m == "POST":
            state.reset()
            return ok
        if seg == ["seed"] and m == "POST":
            return plain_json(200, seed(state, body))
        if seg == ["tenants"]:
            if m == "POST":
                t = d.add_tenant(body.get("tenant_id"), body.get("name", "Contoso"), body.get("domain"))
                return plain_json(200, {"id": t.id, "name": t.name, "domain": t.domain})
            return plain_json(200, [{"id": t.id, "name": t.name, "domain": t.domain}
                                    for t in d.tenants.values()])
        if seg == ["apps"] and m == "POST":
            a = d.register_app(body["client_id"], body["client_secret"], body["redirect_uris"],
                               body["tenant_id"], body.get("multitenant", False))
            return plain_json(200, {"client_id": a.client_id, "tenant_id": a.tenant_id,
                                    "multitenant": a.multitenant, "redirect_uris": a.redirect_uris})
        if seg == ["users"]:
            if m == "POST":
                u = d.add_user(body["tenant_id"], body["upn"], body.get("display_name") or body["upn"],
                               body.get("id"))
                state.store.mailbox(u)
                return plain_json(200, u.public())
            return plain_json(200, [u.public() for u in d.users.values()])
        if len(seg) == 3 and seg[0] == "users" and m == "POST":
            u = _user(state, seg[1])
            action = seg[2]
            if action == "revoke_consent":
                u.rt_generation += 1
            elif action == "consent_denied":
                u.consent_denied = bool(body.get("denied", True))
            elif action == "mailbox_enabled":
                u.mailbox_enabled = bool(body.get("enabled", True))
            elif action == "webhooks_supported":
                u.webhooks_supported = bool(body.get("supported", True))
            else:
                raise ControlError(404, f"unknown user action {action}")
            return ok
        if seg == ["expire_access_tokens"] and m == "POST":
            for u in d.users.values():
                if not body.get("upn") or u.upn.lower() == body["upn"].lower():
                    u.at_generation += 1
            return ok
        if seg == ["token_lifetime"] and m == "POST":
            d.access_token_lifetime = int(body["seconds"])
            return ok
        if seg and seg[0] == "outlook":
            return _outlook(state, req, seg[1:], body)
        if len(seg) == 2 and seg[0] == "mailbox" and m == "GET":
            u = _user(state, seg[1])
            return plain_json(200, Outlook(state.store).mailbox(state.store.mailbox(u)))
        if seg == ["faults"]:
            if m == "POST":
                kind = str(body["kind"])
                count = int(body.get("count", 1))
                if kind == "wrong_tenant":
                    u = _user(state, body["upn"])
                    u.wrong_tenant_next += count
                    return plain_json(200, {"kind": kind, "remaining": u.wrong_tenant_next})
                f = state.faults.add(kind, count, body.get("upn"), body.get("route"),
                                     body.get("retry_after"), body.get("delay"))
                return plain_json(200, f.public())
            if m == "DELETE":
                state.faults.clear()
                return ok
            return plain_json(200, state.faults.pending())
        if seg == ["requests"]:
            if m == "DELETE":
                state.clear_log()
                return ok
            return plain_json(200, state.requests_log())
        if seg == ["throttle"] and m == "POST":
            return plain_json(200, state.throttle.configure(
                body.get("max_concurrent"), body.get("budget"), body.get("window_seconds"),
                body.get("concurrency_retry_after")))
        if seg == ["clock"] and m == "POST":
            when = body.get("now")
            state.clock.set_now(parse_query_instant(when) if when else None)
            return plain_json(200, {"now": state.clock.now().isoformat()})
        if seg == ["clock", "advance"] and m == "POST":
            state.clock.advance(float(body["seconds"]))
            return plain_json(200, {"now": state.clock.now().isoformat()})
        if seg == ["clock"] and m == "GET":
            return plain_json(200, {"now": state.clock.now().isoformat()})
        if seg == ["delta", "expire"] and m == "POST":
            for mb in state.store.mailboxes.values():
                if not body.get("upn") or mb.user.upn.lower() == body["upn"].lower():
                    mb.delta_tokens.clear()
                    mb.delta_rounds.clear()
            return ok
        if seg == ["delta", "page_size"] and m == "POST":
            state.delta_page_size = int(body["size"])
            return ok
        if seg == ["page_size", "max"] and m == "POST":
            state.max_page_size = max(1, min(int(body["size"]), 1000))
            return ok
        if seg == ["batch_order"] and m == "POST":
            state.batch_order_seed = body.get("seed")
            return ok
        if seg == ["subscriptions"] and m == "GET":
            return plain_json(200, [s.public(req.base_url) for s in state.subscriptions.subs.values()])
        if seg == ["subscriptions", "config"] and m == "POST":
            subs = state.subscriptions
            if "allow_http" in body:
                subs.allow_http = bool(body["allow_http"])
            if "max_minutes" in body:
                subs.max_minutes = int(body["max_minutes"])
            if "verify" in body:
                subs.verify = body["verify"]
            if "delivery_timeout" in body:
                subs.delivery_timeout = float(body["delivery_timeout"])
            if "retry_delays" in body:
                subs.retry_delays = tuple(float(x) for x in body["retry_delays"])
            return ok
        if len(seg) == 3 and seg[0] == "subscriptions" and seg[2] == "lifecycle" and m == "POST":
            try:
                state.subscriptions.lifecycle(seg[1], body["event"])
            except KeyError:
                raise ControlError(404, f"unknown subscription {seg[1]}") from None
            return ok
        if seg == ["notifications"] and m == "GET":
            pass
        else:
            raise ControlError(404, f"unknown control route {m} {req.path}")
    # outside the lock: wait for deliveries
    if req.q("drain", "1") != "0":
        state.subscriptions.drain()
    return plain_json(200, state.subscriptions.log())


def _outlook(state, req: Request, seg: list[str], body: dict) -> Response:
    """``/_control/outlook/{upn}/...``: act as the mailbox owner in Outlook."""
    if not seg:
        raise ControlError(404, "missing user")
    u = _user(state, seg[0])
    mb = state.store.mailbox(u)
    ol = Outlook(state.store)
    rest = seg[1:]
    m = req.method
    if rest == ["events"] and m == "POST":
        return plain_json(201, ol.create_event(mb, body))
    if len(rest) == 2 and rest[0] == "events":
        if m == "PATCH":
            return plain_json(200, ol.update_event(mb, rest[1], body))
        if m == "DELETE":
            ol.delete_event(mb, rest[1])
            return plain_json(200, {"ok": True})
    if len(rest) == 3 and rest[0] == "events" and m == "POST":
        eid, action = rest[1], rest[2]
        if action == "edit_occurrence":
            return plain_json(200, ol.edit_occurrence(mb, eid, body["date"], body.get("changes", {})))
        if action == "edit_following":
            return plain_json(200, ol.edit_following(mb, eid, body["from_date"], body.get("changes", {})))
        if action == "invite_following":
            return plain_json(200, ol.invite_following(mb, eid, body["from_date"], body["attendees"]))
        if action == "invite_occurrence":
            return plain_json(200, ol.invite_occurrence(mb, eid, body["date"], body["attendees"]))
        if action == "change_series":
            return plain_json(200, ol.change_series(mb, eid, body.get("changes", {})))
        if action == "delete_occurrence":
            ol.delete_occurrence(mb, eid, body["date"])
            return plain_json(200, {"ok": True})
        if action == "respond":
            ol.respond(mb, eid, body["response"])
            return plain_json(200, {"ok": True})
    raise ControlError(404, f"unknown outlook route {m} {req.path}")


_REL = re.compile(r"^today(?:([+-])(\d+))?(T.*)?$")


def _relative_dates(obj, today: _dt.date):
    """Replace ``today``, ``today+N``, ``today-N`` (also as a dateTime's date part)."""
    if isinstance(obj, dict):
        return {k: _relative_dates(v, today) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative_dates(v, today) for v in obj]
    if isinstance(obj, str):
        m = _REL.match(obj)
        if m:
            n = int(m.group(2) or 0) * (-1 if m.group(1) == "-" else 1)
            return (today + _dt.timedelta(days=n)).isoformat() + (m.group(3) or "")
    return obj


def seed(state, data: dict) -> dict:
    """Create tenants, apps, users and events from a seed document (see README)."""
    d = state.directory
    out: dict = {"tenants": {}, "users": {}, "events": {}}
    for t in data.get("tenants", []):
        tid = t.get("id") or t.get("tenant_id")
        if tid in d.tenants:
            ten = d.tenants[tid]
        else:
            ten = d.add_tenant(tid, t.get("name", "Contoso"), t.get("domain"))
        out["tenants"][t.get("key", ten.name)] = ten.id
        for u in t.get("users", []):
            existing = d.user_by_upn(u["upn"])
            usr = existing or d.add_user(ten.id, u["upn"], u.get("display_name") or u["upn"], u.get("id"))
            state.store.mailbox(usr)
            out["users"][usr.upn] = usr.public()
        for a in t.get("apps", []):
            d.register_app(a["client_id"], a["client_secret"], a["redirect_uris"], ten.id,
                           a.get("multitenant", False))
    ol = Outlook(state.store)
    today = state.clock.now().date()
    for upn, events in (data.get("events") or {}).items():
        u = _user(state, upn)
        mb = state.store.mailbox(u)
        created = []
        for ev in events:
            created.append(ol.create_event(mb, _relative_dates(ev, today))["id"])
        out["events"][u.upn] = created
    return out
