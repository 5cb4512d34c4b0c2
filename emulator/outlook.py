"""What a person does in the Outlook client, with Outlook's behaviour (SPEC section 4).

Owns: the O-rule actions the control API offers (O1 edit one instance, O2 edit "this and
all following", O3 invite to "this and all following", invite to one instance (C5), O4/O5
series changes, O6 series delete, O7 occurrence delete, responses) and the full mailbox
dump tests assert on. These act as the mailbox owner, not as the app, and go through
the same store as Graph writes, so both sides see one Exchange.
"""
from __future__ import annotations

import datetime as _dt

from . import render
from .render import View
from .store import Item, Mailbox, Store, instance_at, live_slot, local_date
from .timeutil import parse_query_instant
from .web import GraphError


def _day(master: Item, when: str | _dt.date) -> _dt.date:
    if isinstance(when, _dt.datetime):
        return local_date(master, when)
    if isinstance(when, _dt.date):
        return when
    s = str(when)
    if len(s) > 10:
        return local_date(master, parse_query_instant(s))
    return _dt.date.fromisoformat(s)


def _master(store: Store, mb: Mailbox, master_id: str) -> Item:
    item, day = store.resolve(mb, master_id)
    if day is not None or not item.is_master:
        raise GraphError(400, "ErrorInvalidRequest", "This action needs a series master id.")
    return item


def _slot(master: Item, day: _dt.date) -> None:
    if not live_slot(master, day):
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _with_attendees(current: list, new: list) -> list:
    out = [{"emailAddress": dict(a["emailAddress"]), "type": a.get("type", "required")} for a in current]
    have = {a["emailAddress"]["address"].lower() for a in out}
    for a in new:
        if isinstance(a, str):
            a = {"emailAddress": {"address": a}, "type": "required"}
        if a["emailAddress"]["address"].lower() not in have:
            out.append(a)
            have.add(a["emailAddress"]["address"].lower())
    return out


class Outlook:
    def __init__(self, store: Store):
        self.store = store

    def create_event(self, mb: Mailbox, body: dict) -> dict:
        item, _ = self.store.create(mb, body)
        return self.render(item)

    def update_event(self, mb: Mailbox, event_id: str, changes: dict) -> dict:
        item, day = self.store.resolve(mb, event_id)
        if day is not None:
            return self.render(self.store.update_occurrence(mb, item, day, changes))
        return self.render(self.store.update(mb, item, changes))

    def delete_event(self, mb: Mailbox, event_id: str) -> None:
        item, day = self.store.resolve(mb, event_id)
        if day is not None:
            self.store.delete_occurrence(mb, item, day)
            return
        if item.org_user is not None and not item.props.get("isCancelled"):
            self.store._report_response(mb, item, None, {
                "response": "declined", "time": _now_str(self.store.clock.now())})
        self.store.delete(mb, item)

    def edit_occurrence(self, mb: Mailbox, master_id: str, when, changes: dict) -> dict:
        """O1: one instance becomes an exception."""
        master = _master(self.store, mb, master_id)
        day = _day(master, when)
        _slot(master, day)
        return self.render(self.store.update_occurrence(mb, master, day, changes))

    def edit_following(self, mb: Mailbox, master_id: str, from_date, changes: dict) -> dict:
        """O2: the original ends before ``from_date``; a new, unconnected series starts there."""
        master = _master(self.store, mb, master_id)
        day = _day(master, from_date)
        return self.render(self.store.split_series(mb, master, day, changes))

    def invite_following(self, mb: Mailbox, master_id: str, from_date, attendees: list) -> dict:
        """O3: inviting to "this and all following" is an O2 split with the new attendees."""
        master = _master(self.store, mb, master_id)
        day = _day(master, from_date)
        atts = _with_attendees(master.props.get("attendees", []), attendees)
        return self.render(self.store.split_series(mb, master, day, {"attendees": atts}))

    def invite_occurrence(self, mb: Mailbox, master_id: str, when, attendees: list) -> dict:
        """Invite someone to one instance: an exception; the invitee gets a single event (C5)."""
        master = _master(self.store, mb, master_id)
        day = _day(master, when)
        _slot(master, day)
        inst = instance_at(master, day)
        atts = _with_attendees(inst.props.get("attendees", []), attendees)
        return self.render(self.store.update_occurrence(mb, master, day, {"attendees": atts}))

    def change_series(self, mb: Mailbox, master_id: str, changes: dict) -> dict:
        """O4/O5: a change to all instances. Time changes reset exceptions; others skip them."""
        master = _master(self.store, mb, master_id)
        return self.render(self.store.update(mb, master, changes))

    def delete_occurrence(self, mb: Mailbox, master_id: str, when) -> None:
        """O7: the occurrence is simply gone."""
        master = _master(self.store, mb, master_id)
        day = _day(master, when)
        _slot(master, day)
        self.store.delete_occurrence(mb, master, day)

    def respond(self, mb: Mailbox, event_id: str, response: str) -> None:
        if response not in ("accept", "decline", "tentativelyAccept"):
            raise GraphError(400, "ErrorInvalidRequest", f"Unknown response {response!r}.")
        item, day = self.store.resolve(mb, event_id)
        self.store.respond(mb, item, day, response, send=True)

    # -- reading -------------------------------------------------------------------
    def render(self, obj) -> dict:
        view = View("UTC", False, None, "singleValueExtendedProperties")
        if isinstance(obj, Item):
            return self._dump_item(obj, view)
        out = render.instance_json(obj, View("UTC", False, None, "singleValueExtendedProperties"))
        out["originalStart"] = render.fmt_original_start(obj.original_start)
        return out

    def _dump_item(self, item: Item, view: View) -> dict:
        out = render.item_json(item, view, False, instance_at)
        if item.is_master:
            out["exceptions"] = []
            for d in sorted(item.exceptions):
                if d in item.cancelled or d in item.local_cancelled:
                    continue
                e = render.instance_json(instance_at(item, d), view)
                e["originalStart"] = render.fmt_original_start(instance_at(item, d).original_start)
                out["exceptions"].append(e)
            out["cancelledOccurrences"] = [f"OID.{item.id}.{d.isoformat()}"
                                           for d in sorted(item.cancelled | item.local_cancelled)]
        if item.org_user is not None:
            org = self.store.directory.users.get(item.org_user)
            out["copyOf"] = {"organizer": org.upn if org else None, "eventId": item.org_item,
                             "occurrenceDate": item.copy_day.isoformat() if item.copy_day else None}
        return out

    def mailbox(self, mb: Mailbox) -> list[dict]:
        view = View("UTC", False, None, "singleValueExtendedProperties")
        items = sorted(mb.items.values(), key=lambda i: (i.start, i.id))
        return [self._dump_item(i, view) for i in items]


def _now_str(now: _dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}0000Z"
