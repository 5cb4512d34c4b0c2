"""Concurrent edits, merged by field (pure; issue 11, rule D2).

Our PATCH of an Outlook item carries ``If-Match`` with the item's change key as last
synced. Graph answers 412 when the item changed since; the shell then re-reads it
("theirs") and ``merge_patch`` merges three ways against the last synced snapshot (the
base) and our patch ("ours"):

- a field only Communifire changes: written;
- a field only Outlook changed: left alone (not in the PATCH); the snapshot keeps the
  base value for it, so the next inbound sync brings Outlook's change to Communifire;
- a field both changed: D2, the newer change wins (Outlook's ``lastModifiedDateTime``
  against the message's ``occurred_at``; a tie goes to Communifire, the change being
  applied now); the loser is returned as a ``Conflict`` for the audit trail.

The time fields (start, end, all day, time zone, recurrence) are one group: they only
make sense together.

After a write, ``snapshot_after_write`` builds the link's new snapshot from the base and
what we wrote (the values as Graph's write response shows them), never from a later
read-back that may hold someone else's edit (A9: that edit must still look new).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

__all__ = ["GRAPH_FIELDS", "Conflict", "Merge", "merge_patch", "written_fields", "snapshot_after_write"]

#: Graph event property -> the snapshot fields (``core.plan.outlook_items.content_of``) it sets
GRAPH_FIELDS: dict[str, tuple[str, ...]] = {
    "subject": ("title",), "body": ("body",), "location": ("location",), "attendees": ("attendees",),
    "start": ("start", "time_zone"), "end": ("end",), "isAllDay": ("is_all_day",), "recurrence": ("recurrence",),
}
_TIME = ("start", "end", "isAllDay", "recurrence")


@dataclass(frozen=True, slots=True)
class Conflict:
    """One field changed on both sides; ``winner`` is ``outlook`` or ``communifire``."""

    field: str
    winner: str
    kept: Any
    lost: Any
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "winner": self.winner, "kept": self.kept, "lost": self.lost, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Merge:
    """The PATCH body to retry with (empty: nothing of ours left to write)."""

    body: dict[str, Any]
    conflicts: tuple[Conflict, ...] = ()
    outlook_only: tuple[str, ...] = ()  # fields Outlook changed that we leave to the inbound sync


def written_fields(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The snapshot fields a PATCH body sets."""
    return tuple(sorted({f for key in body for f in GRAPH_FIELDS.get(key, ())}))


def _changed(fields: tuple[str, ...], base: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    return [f for f in fields if theirs.get(f) != base.get(f)]


def merge_patch(ours: Mapping[str, Any], base: Mapping[str, Any], theirs: Mapping[str, Any],
                theirs_modified: datetime | None, ours_at: datetime) -> Merge:
    """Merge our PATCH body with the item as it is now (``theirs``) against ``base``."""
    outlook_newer = theirs_modified is not None and theirs_modified > ours_at
    when = f"Outlook's edit at {theirs_modified:%Y-%m-%dT%H:%M:%SZ}" if theirs_modified else "Outlook's edit"
    mine = f"Communifire's change at {ours_at:%Y-%m-%dT%H:%M:%SZ}"
    # the groups our body writes: one per property, the time properties together
    groups: dict[str, list[str]] = {}
    for key in ours:
        groups.setdefault("time" if key in _TIME else key, []).append(key)
    body: dict[str, Any] = {k: v for k, v in ours.items() if k not in GRAPH_FIELDS}  # e.g. sensitivity
    conflicts: list[Conflict] = []
    for group, keys in groups.items():
        fields = tuple(f for k in keys for f in GRAPH_FIELDS.get(k, ()))
        if not fields:
            continue
        if group == "time":
            fields = tuple(f for k in _TIME for f in GRAPH_FIELDS[k])
        if not _changed(fields, base, theirs):
            body.update({k: ours[k] for k in keys})
            continue
        name = group if group == "time" else fields[0]
        theirs_value = theirs.get(name) if group != "time" else {f: theirs.get(f) for f in fields}
        ours_value = ours[keys[0]] if group != "time" else {k: ours[k] for k in keys}
        if outlook_newer:
            conflicts.append(Conflict(name, "outlook", theirs_value, ours_value, f"D2: {when} is newer than {mine}"))
        else:
            body.update({k: ours[k] for k in keys})
            conflicts.append(Conflict(name, "communifire", ours_value, theirs_value,
                                      f"D2: {mine} is not older than {when}"))
    touched = set(written_fields(ours))
    others = tuple(sorted(f for f in theirs if f not in touched and theirs.get(f) != base.get(f)
                          and f not in ("organizer", "is_organizer")))
    return Merge(body, tuple(conflicts), others)


def snapshot_after_write(base: Mapping[str, Any], written: tuple[str, ...] | list[str],
                         response: Mapping[str, Any]) -> dict[str, Any]:
    """The synced snapshot after our write: the base, with the fields we wrote as the
    write's response shows them. Anything else Outlook holds that differs from the base
    stays a change for the inbound sync to bring in."""
    out = dict(base)
    for f in written:
        if f in response:
            out[f] = response[f]
    for f in ("organizer", "is_organizer"):
        if f in response:
            out[f] = response[f]
    return out
