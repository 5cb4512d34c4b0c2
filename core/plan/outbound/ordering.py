"""Per-event ordering of outbound messages (pure; issue 11).

Queue Storage does not keep order: updates made at t1 < t2 < t3 may arrive t1, t3, t2.
Each message carries the event's **version**: ``sequence`` when the backend gives one (a
number it increments with every change of the event), else ``occurred_at``. Comparing
two versions: when both carry a sequence, the sequence decides (it wins over the clock);
otherwise ``occurred_at`` does. Equal versions are not older (the later delivery applies).

What was applied is remembered per event as a map **key -> version**, where a key names
what a message changes, so an older message is stale only for what a newer one changed
since (per field where the change is per field):

=========================  ==============================================================
message                    keys
=========================  ==============================================================
create                     ``event`` and ``all:<group>`` for every field group
update, scope all          ``all:<group>`` for each field group given
update, following          ``all:<group>`` (it rewrites the series from the instance on)
update, single             ``<original start>:<group>``
delete, all                ``event`` (kept after the event is deleted: the tombstone)
delete, single             ``<original start>:deleted``
delete, following          ``all:time`` (the series' range changes)
rsvp                       ``rsvp:<user>:<original start or all>``
invite                     ``<original start>:invite:<email>``
=========================  ==============================================================

Field groups: ``title``, ``body``, ``location``, ``time`` (start, end, all_day,
time_zone, recurrence: they only make sense together), ``attendees``, ``private``.

A message is **stale** when a newer version was applied for the whole event (``event``)
or for every key it would change; an update that is stale for some groups only is applied
without those fields (a newer change of them stands). Either way the reason names what
was newer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping

from core.plan.outbound.message import OutboundMessage
from core.plan.timezones import UTC

__all__ = ["Version", "Verdict", "GROUPS", "version_of", "newer", "keys_of", "check", "record",
           "dumps", "loads", "stale_after_delete"]

#: field group -> the message's event fields it covers
GROUPS: dict[str, tuple[str, ...]] = {
    "title": ("title",), "body": ("body",), "location": ("location",),
    "time": ("start", "end", "all_day", "time_zone", "recurrence"),
    "attendees": ("attendees",), "private": ("private",),
}
EVENT = "event"


@dataclass(frozen=True, slots=True)
class Version:
    """One change's place in its event's history."""

    occurred_at: datetime
    sequence: int | None = None
    operation_id: str = ""

    def describe(self) -> str:
        seq = f"sequence {self.sequence}, " if self.sequence is not None else ""
        return f"{self.operation_id or 'a change'} ({seq}{self.occurred_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.occurred_at.astimezone(UTC).isoformat(), "op": self.operation_id}
        if self.sequence is not None:
            out["seq"] = self.sequence
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Version":
        return cls(datetime.fromisoformat(str(data["at"])).astimezone(UTC),
                   int(data["seq"]) if data.get("seq") is not None else None, str(data.get("op", "")))


def version_of(msg: OutboundMessage) -> Version:
    return Version(msg.occurred_at, msg.sequence, msg.operation_id)


def newer(a: Version, b: Version) -> bool:
    """Whether ``a`` is a strictly later change than ``b`` (sequence wins when both have one)."""
    if a.sequence is not None and b.sequence is not None:
        return a.sequence > b.sequence
    return a.occurred_at > b.occurred_at


def _inst(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "all"


def _groups_given(msg: OutboundMessage) -> list[str]:
    return [g for g, names in GROUPS.items() if any(msg.event.has(n) for n in names)]


def keys_of(msg: OutboundMessage) -> list[str]:
    """The keys a message changes (see the table above)."""
    op, scope = msg.operation, msg.scope
    if op == "create":
        return [EVENT] + [f"all:{g}" for g in GROUPS]
    if op == "update":
        prefix = _inst(msg.instance) if scope == "single" and msg.instance is not None else "all"
        return [f"{prefix}:{g}" for g in _groups_given(msg)]
    if op == "delete":
        if scope == "all" or msg.instance is None:
            return [EVENT]
        return [f"{_inst(msg.instance)}:deleted"] if scope == "single" else ["all:time"]
    if op == "rsvp":
        return [f"rsvp:{msg.actor}:{_inst(msg.instance) if scope != 'all' else 'all'}"]
    if op == "invite":
        return [f"{_inst(msg.instance)}:invite:{msg.invitee.email if msg.invitee else ''}"]
    return []


@dataclass(frozen=True, slots=True)
class Verdict:
    """``stale``: the whole message changes nothing (``reason`` says why). Otherwise
    ``message`` is what to apply: the original, or an update without its stale fields
    (``dropped`` names them)."""

    message: OutboundMessage
    stale: bool = False
    reason: str = ""
    dropped: tuple[str, ...] = ()


def check(msg: OutboundMessage, applied: Mapping[str, Version]) -> Verdict:
    """Compare a message with what was applied for its event (pure)."""
    mine = version_of(msg)
    whole = applied.get(EVENT)
    if whole is not None and newer(whole, mine) and msg.operation != "create":
        # the event was created after this change was made: there was nothing for it to change
        return Verdict(msg, True, f"stale: event {msg.event.id} was created by {whole.describe()}, after this "
                                  f"change {mine.describe()}")
    keys = keys_of(msg)
    newer_than_me = {k: applied[k] for k in keys if k in applied and newer(applied[k], mine)}
    if not newer_than_me:
        return Verdict(msg)
    detail = "; ".join(f"{k} by {v.describe()}" for k, v in sorted(newer_than_me.items()))
    if msg.operation != "update" or len(newer_than_me) == len(keys):
        return Verdict(msg, True, f"stale: a newer change was applied to event {msg.event.id} ({detail}); "
                                  f"this change {mine.describe()} changes nothing")
    stale_groups = {k.rsplit(":", 1)[1] for k in newer_than_me}
    dropped = tuple(sorted(n for g in stale_groups for n in GROUPS[g] if msg.event.has(n)))
    event = replace(msg.event, given=frozenset(msg.event.given - set(dropped)))
    return Verdict(replace(msg, event=event), False,
                   f"partly stale: {', '.join(dropped)} left as a newer change set them ({detail})", dropped)


def record(msg: OutboundMessage, applied: Mapping[str, Version]) -> dict[str, Version]:
    """What is applied after ``msg`` (as ``check`` returned it) is: every key it changed
    takes its version, unless a newer one is there already."""
    mine = version_of(msg)
    out = dict(applied)
    for key in keys_of(msg):
        if key not in out or not newer(out[key], mine):
            out[key] = mine
    return out


def stale_after_delete(msg: OutboundMessage, deleted: Version | None) -> str:
    """For a message about an event that is not stored: the reason it is stale when the
    event was deleted by a newer change ("" when it was not)."""
    if deleted is not None and newer(deleted, version_of(msg)) and msg.operation != "create":
        return (f"stale: event {msg.event.id} was deleted by {deleted.describe()}, a newer change than "
                f"this one {version_of(msg).describe()}")
    return ""


def dumps(applied: Mapping[str, Version]) -> str:
    return json.dumps({k: v.to_json() for k, v in sorted(applied.items())}, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> dict[str, Version]:
    if not text:
        return {}
    return {str(k): Version.from_json(v) for k, v in json.loads(text).items()}
