"""``plan_outbound``: one message against the stored event, dispatched by operation and scope.

Refuses what can never be carried out (conflicts and refusals are data, STYLE rule 4):
space calendars (C6), an organizer unknown to the app or not connected, another organizer,
an unknown event, an instance that is not one of the event's. Then: ``create.py``,
``update.py`` (scopes all, single), ``delete.py`` (all, single), ``split.py`` (following),
``rsvp.py``, ``invite.py``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from core.plan.model import Event, ModelError, OutlookLink
from core.plan.outbound.admission import SPACE_CALENDAR
from core.plan.outbound.common import _is_occurrence
from core.plan.outbound.context import _Ctx, _refuse
from core.plan.outbound.create import _plan_create
from core.plan.outbound.delete import _plan_delete_all, _plan_delete_single
from core.plan.outbound.invite import _plan_invite
from core.plan.outbound.message import OutboundMessage
from core.plan.outbound.rsvp import _plan_rsvp
from core.plan.outbound.split import _split
from core.plan.outbound.update import _plan_update_all, _plan_update_single
from core.plan.outbound.values import DirectoryUser, OutboundPlan, _iso
from core.plan.recurrence import RecurrenceError
from core.plan.timezones import TimeZoneError


def plan_outbound(
    msg: OutboundMessage,
    event: Event | None,
    links: Sequence[OutlookLink],
    users: Mapping[str, DirectoryUser],
    *,
    app_property: str,
) -> OutboundPlan:
    """Plan one outbound message against the stored event (pure).

    Args:
        event: the stored event (None when Communifire's event is not stored yet).
        links: every user's links to the event.
        users: the directory: every user the message or the event names, by user id.
        app_property: the extended property id our event id is stamped on.
    """
    if msg.calendar != "my":
        return _refuse(msg, SPACE_CALENDAR)
    if event is not None and event.calendar != "my":
        return _refuse(msg, "the event belongs to a space calendar, which is never synced (rule C6)")
    organizer = msg.event.organizer
    assert organizer is not None
    org = users.get(organizer.user_id)
    needs_organizer = msg.operation in ("create", "update", "delete", "invite")
    if org is None or (needs_organizer and not org.connected):
        state = "unknown to the app" if org is None else "not connected to Outlook"
        if org is None or needs_organizer:
            return _refuse(msg, f"the organizer {organizer.user_id} is {state}; their Outlook holds the meeting")
    if event is not None and org is not None and event.organizer and org.upn and event.organizer.lower() != org.upn.lower() \
            and event.organizer.lower() != organizer.email:
        return _refuse(msg, f"event {event.id} is organized by {event.organizer}, not by {organizer.email}")
    if event is None and msg.operation != "create":
        if msg.operation == "delete":
            return OutboundPlan(msg.operation_id, msg.event.id, msg.operation, msg.scope,
                                notes=("the event is not stored (already deleted, or never synced): nothing to do",))
        return _refuse(msg, f"event {msg.event.id} is unknown to the app (never created through it, or deleted)")
    ctx = _Ctx(msg, event, tuple(links), users, app_property, org)  # type: ignore[arg-type]
    key = msg.instance
    if event is not None and msg.operation != "create":
        if key is not None and event.is_series and not _is_occurrence(event, key):
            return _refuse(msg, f"instance.original_start {_iso(key)} is not an instance of event {event.id}")
        if key is None and event.is_series and msg.scope in ("single", "following") and msg.operation != "rsvp":
            return _refuse(msg, f"scope {msg.scope} on a series needs instance.original_start (InstanceReplaceDate)")
        if msg.operation == "rsvp" and msg.scope != "all" and event.is_series and key is None:
            return _refuse(msg, f"scope {msg.scope} on a series needs instance.original_start (InstanceReplaceDate)")
    try:
        if msg.operation == "create":
            return _plan_create(ctx)
        assert event is not None
        if msg.operation == "update":
            if not event.is_series or msg.scope == "all":
                return _plan_update_all(ctx)
            assert key is not None
            if msg.scope == "single":
                return _plan_update_single(ctx, key)
            return _split(ctx, key, msg.event, delete_tail=False)
        if msg.operation == "delete":
            if not event.is_series or msg.scope == "all":
                return _plan_delete_all(ctx)
            assert key is not None
            if msg.scope == "single":
                return _plan_delete_single(ctx, key)
            return _split(ctx, key, None, delete_tail=True)
        if msg.operation == "rsvp":
            return _plan_rsvp(ctx, key if event.is_series else None)
        return _plan_invite(ctx, key)
    except (ModelError, RecurrenceError, TimeZoneError) as exc:
        return _refuse(msg, f"the change does not fit event {msg.event.id}: {exc}")
