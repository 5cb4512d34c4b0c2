"""Outbound direction, pure part: Communifire's change messages and the outbound planner.

Owns:
- the v1 message contract (``docs/messages.md``, ``schemas/outbound-message.v1.schema.json``):
  ``parse_message`` turns a decoded JSON object into a frozen ``OutboundMessage`` or
  raises ``MessageError`` with a reason an administrator can act on (SPEC section 7);
- ``plan_outbound``: a pure function of (message, the stored event with every user's
  links, the directory of users) giving an ``OutboundPlan``: the ordered Graph writes per
  user (each with the rule that caused it and a readable reason), the Outlook items to
  observe afterwards (their snapshots become the links, rule A9), and the event's new
  Communifire state. A message that cannot be carried out gives a plan with ``refused``
  set (conflicts and refusals are data, STYLE rule 4), never a half plan.
- ``plan_title_fixes``: after the writes, single-instance copies that still show another
  name get Communifire's title (rules A7, O5).

Which module decides what:

=========================================  ============================================
operation, rules                           module
=========================================  ============================================
parsing and validating a message (C6)      ``message.py`` (``parse_message``)
the plan's values                          ``values.py`` (``Step``, ``Expect``,
                                           ``OutboundPlan``, ``transaction_id``)
refusals, dispatch by operation and scope  ``dispatch.py`` (``plan_outbound``)
refusals known before planning (C6, size)  ``admission.py`` (shared with ``enqueue``)
per-event ordering: versions, stale        ``ordering.py``
create (C1, D4)                            ``create.py``
update, scopes all and single              ``update.py``
(C3, A3, A6, O1, O4, O5)
edit or delete "this and following"        ``split.py``
(C2, C3, O2, A1, A3, A8)
delete, scopes all and single (C2, A8, O6) ``delete.py``
RSVP (C4, C5, A5, O3)                      ``rsvp.py``
invite (C5)                                ``invite.py``
title fixes after the writes (A7, O5)      ``titles.py`` (``plan_title_fixes``)
shared helpers (no rule of their own)      ``common.py``, ``context.py``
=========================================  ============================================

Invariants: no I/O, no clock (``occurred_at`` is the change time); every datetime aware
UTC; step ids are derived from the step's content, so a re-plan after a crash or an
ETag conflict gives the same ids and the executor skips the steps already done; the
organizer's mailbox carries the meeting (attendees get Exchange's copies), so writes go
to the organizer's items, except RSVPs (the responder's copy) and clean-ups of copies
Outlook leaves behind (A8, O5, O6).
"""

from core.plan.outbound.dispatch import plan_outbound
from core.plan.outbound.message import (
    CALENDARS,
    OPERATIONS,
    RESPONSES,
    SCOPES,
    VERSION,
    EventFields,
    MessageError,
    OutboundMessage,
    Person,
    parse_message,
)
from core.plan.outbound.titles import plan_title_fixes
from core.plan.outbound.values import DirectoryUser, Expect, OutboundPlan, Step, transaction_id

__all__ = [
    "VERSION",
    "OPERATIONS",
    "SCOPES",
    "CALENDARS",
    "RESPONSES",
    "MessageError",
    "Person",
    "EventFields",
    "OutboundMessage",
    "DirectoryUser",
    "Step",
    "Expect",
    "OutboundPlan",
    "parse_message",
    "plan_outbound",
    "plan_title_fixes",
    "transaction_id",
]
