"""HTTP request/response values shared by the emulator's routers.

Owns: the parsed ``Request`` (method, decoded path segments, query, headers, body),
the ``Response`` value a router returns, and helpers for Graph's JSON and error
shapes. No socket code lives here (see ``server.py``), so routers are plain functions
that batch requests can call directly.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit


class CIDict(dict):
    """A header dict with case-insensitive lookups."""

    def __init__(self, items=()):
        super().__init__()
        for k, v in (items.items() if isinstance(items, dict) else items):
            self[k] = v

    def __setitem__(self, key, value):
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(key.lower())


@dataclass
class Request:
    method: str
    target: str                      # raw path + query as received
    headers: CIDict
    body: bytes = b""
    base_url: str = ""               # https://host:port
    path: str = ""                   # percent-decoded path
    segments: list[str] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    raw_query: str = ""
    in_batch: bool = False
    context: dict = field(default_factory=dict)  # filled while handling (user, fault...)

    @classmethod
    def build(cls, method: str, target: str, headers, body: bytes, base_url: str,
              in_batch: bool = False) -> "Request":
        parts = urlsplit(target)
        raw_path = parts.path or "/"
        segments = [unquote(s) for s in raw_path.split("/") if s != ""]
        query: dict[str, str] = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(k, v)
        return cls(method=method.upper(), target=target, headers=CIDict(headers), body=body or b"",
                   base_url=base_url, path=unquote(raw_path), segments=segments, query=query,
                   raw_query=parts.query, in_batch=in_batch)

    def q(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, OData names matched with or without ``$`` and in any case."""
        lname = name.lower()
        for k, v in self.query.items():
            kl = k.lower()
            if kl == lname or kl.lstrip("$") == lname.lstrip("$"):
                return v
        return default

    def json(self):
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def prefer(self) -> dict[str, str]:
        """``Prefer`` header preferences, lower-cased names, unquoted values."""
        out: dict[str, str] = {}
        raw = self.headers.get("Prefer", "") or ""
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip().lower()] = v.strip().strip('"')
            else:
                out[part.lower()] = ""
        return out


@dataclass
class Response:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    drop_after: int | None = None    # fault: write this many body bytes then cut the connection
    delay: float = 0.0               # fault: sleep before answering

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None


def json_response(status: int, obj, headers: dict | None = None) -> Response:
    h = {"Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;"
                         "IEEE754Compatible=false;charset=utf-8"}
    if headers:
        h.update(headers)
    return Response(status, h, json.dumps(obj).encode("utf-8"))


def plain_json(status: int, obj, headers: dict | None = None) -> Response:
    h = {"Content-Type": "application/json; charset=utf-8"}
    if headers:
        h.update(headers)
    return Response(status, h, json.dumps(obj).encode("utf-8"))


def html_response(status: int, html: str, headers: dict | None = None) -> Response:
    h = {"Content-Type": "text/html; charset=utf-8"}
    if headers:
        h.update(headers)
    return Response(status, h, html.encode("utf-8"))


def empty(status: int, headers: dict | None = None) -> Response:
    return Response(status, dict(headers or {}), b"")


class GraphError(Exception):
    """A Graph error answer: raised anywhere in Graph handling, rendered by the router."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None,
                 inner: bool = True):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner


def graph_error_body(code: str, message: str, date: str, request_id: str | None = None,
                     client_request_id: str | None = None, inner: bool = True) -> dict:
    err: dict = {"code": code, "message": message}
    if inner:
        rid = request_id or str(uuid.uuid4())
        err["innerError"] = {"date": date, "request-id": rid,
                             "client-request-id": client_request_id or rid}
    return {"error": err}
