"""Reading the Communifire-facing feeds and the read API as Communifire's backend does (issue 12)."""

from __future__ import annotations

import json
from typing import Any, Iterable

from core.app.contracts import validate_feed


def read_api(stack, user_id: str, **params: str) -> dict[str, Any]:
    resp = stack.http.get(f"{stack.host.url}/calendar/{user_id}", params=stack.key_params(**params))
    assert resp.status_code == 200, resp.text
    return resp.json()


def drain(stack, name: str = "calendar-changes") -> list[dict[str, Any]]:
    """Every message so far, each validated with the same schema the producer used."""
    messages = stack.feed(name)
    for m in messages:
        validate_feed(name, m)
    return messages


def of_event(messages: Iterable[dict[str, Any]], event_id: str) -> list[dict[str, Any]]:
    return sorted((m for m in messages if m["event_id"] == event_id), key=lambda m: m["seq"])


def change_types(message: dict[str, Any]) -> list[str]:
    return [c["type"] for c in message["changes"]]


def replay(messages: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """An empty Communifire model, with every message of both feeds (``calendar-changes``
    and ``outbound-results``) applied in per-event sequence order, as docs/changes.md
    tells the consumer to; duplicates are skipped by change id, older ones by seq."""
    model: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    last: dict[str, int] = {}
    for m in sorted((m for m in messages if m.get("seq")), key=lambda m: (m["event_id"], m["seq"])):
        if m["change_id"] in seen or m["seq"] <= last.get(m["event_id"], 0):
            continue
        seen.add(m["change_id"])
        last[m["event_id"]] = m["seq"]
        if m["event"] is not None:
            model[m["event_id"]] = m["event"]
        elif "by_reference" not in m:  # event_deleted, or an applied delete on outbound-results
            model.pop(m["event_id"], None)
    return model


def users_events(model: dict[str, dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    docs = [d for d in model.values() if any(l["user_id"] == user_id for l in d["outlook"])]
    return sorted(docs, key=lambda d: (d["start"], d["id"]))


def without_time(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "generated_at"}


def assert_agree(stack, user_id: str, messages: list[dict[str, Any]], event_id: str | None = None) -> dict[str, Any]:
    """The feed's last snapshot of each event, the read API and ``calendar --json`` show the
    same thing, and replaying the feed gives the read API's answer (issue 12)."""
    api = read_api(stack, user_id)
    cli = stack.calendar(user_id)
    assert without_time(api) == without_time(json.loads(json.dumps(cli)))
    replayed = users_events(replay(messages), user_id)
    assert replayed == api["events"]
    if event_id is not None:
        last = of_event(messages, event_id)[-1]
        doc = next((e for e in api["events"] if e["id"] == event_id), None)
        assert last["event"] == doc
    return api
