"""RSVPs read from Outlook: rules C4, C5, A5, D3.

- C4: the mailbox owner's answer to the whole event, or to one instance, is their RSVP
  unless a newer one stands; an instance that follows the series' answer again loses its own;
- C5: the answer on a one-instance copy is an RSVP for that instance only;
- A5: Outlook answers all instances, so a "from this point forward" RSVP that came back as
  an all-instances answer becomes one;
- D3: an attendee who deleted one occurrence from their calendar declined that instance;
- C4 (issue 11 item 6): an attendee's copy that leaves their calendar (declined, or
  deleted, which Outlook sends as a decline) is an answer, not a deletion: their RSVP
  becomes declined, for the series or for that one instance (a C5 one-instance copy),
  and the event stays for everyone else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from core.plan.inbound.actions import _sec
from core.plan.inbound.base import PlannerBase
from core.plan.model import OutlookLink, Rsvp
from core.plan.outlook_items import OutlookItem, iso


_ANSWERS = frozenset({"accepted", "tentative", "declined"})


class RsvpRules(PlannerBase):
    """C4, C5, A5, D3: the mailbox owner's answers."""

    def _rsvp(self, event_id: str, scope: str, start: datetime | None) -> Rsvp | None:
        event = self.events.get(event_id)
        if event is None:
            return None
        return next((r for r in event.rsvps if r.key == (self.user, scope, start)), None)

    def _answer(self, event_id: str, item: OutlookItem, scope: str, key: datetime | None, rule: str,
                what: str) -> datetime | None:
        """Record the mailbox owner's answer as an RSVP unless a newer one stands; returns its time."""
        if item.is_organizer or item.response not in _ANSWERS:
            return None
        at = _sec(item.response_time or item.last_modified or self.now)
        existing = self._rsvp(event_id, scope, key)
        if existing is None or (existing.response != item.response and at > existing.at):
            self.emit("set_rsvp", event_id, rule, f"{self.user} answered '{item.response}' to {what} in Outlook",
                      rsvp=Rsvp(self.user, scope, item.response, at, key))
        return at

    def plan_copy_gone(self, event_id: str, link: OutlookLink) -> bool:
        """An attendee's copy left their calendar: they declined (issue 11 item 6).

        Returns whether the copy counted as an answer (an attendee's copy of a live event);
        the organizer's own items are deletions, decided elsewhere (C2, A1).
        """
        event = self.events.get(event_id)
        if event is None or link.snapshot.get("is_organizer") is True:
            return False
        if link.kind == "instance" and link.instance_start is not None:
            scope, key, what = "single", link.instance_start, f"the instance {iso(link.instance_start)}"
        else:
            scope, key, what = "all", None, "all instances"
        existing = self._rsvp(event_id, scope, key)
        if existing is None or existing.response != "declined":
            # scenario: an attendee declined (or deleted) the meeting in Outlook; it left their calendar
            self.emit("set_rsvp", event_id, "C4",
                      f"{self.user}'s copy left their Outlook calendar (declined, or deleted, which Outlook "
                      f"sends as a decline): declined {what}; the event stays for everyone else",
                      rsvp=Rsvp(self.user, scope, "declined", self.now, key))
        if scope == "all":
            for r in event.rsvps:
                if r.user_id == self.user and r.scope != "all":
                    # scenario: the whole meeting was declined; per-instance answers give way to it (C4)
                    self.emit("remove_rsvp", event_id, "C4",
                              f"{self.user} declined the whole meeting; the answer for {iso(r.original_start)} "
                              "gives way", rsvp=r)
        return True

    def plan_all_rsvp(self, event_id: str, item: OutlookItem) -> None:
        # scenario: the user answered the whole event/series in Outlook (C4)
        at = self._answer(event_id, item, "all", None, "C4", "all instances")
        if at is None:
            return
        event = self.events.get(event_id)
        for r in (event.rsvps if event else ()):
            if r.user_id == self.user and r.scope == "following" and r.at <= at:
                # scenario: a 'from this point forward' RSVP came back as an all-instances one (A5)
                self.emit("remove_rsvp", event_id, "A5",
                          "Outlook answers all instances; the 'from this point' RSVP became an all-instances RSVP",
                          rsvp=r)

    def plan_instance_rsvps(self, event_id: str, master: OutlookItem, instances: Mapping[datetime, OutlookItem]) -> None:
        if master.is_organizer:
            return
        for key, inst in sorted(instances.items()):
            if inst.bare or inst.is_organizer:
                continue
            existing = self._rsvp(event_id, "single", key)
            at = _sec(inst.response_time or inst.last_modified or self.now)
            if inst.response in _ANSWERS and inst.response != master.response:
                if existing is None or (existing.response != inst.response and at > existing.at):
                    # scenario: the user answered one instance in Outlook (C4)
                    self.emit("set_rsvp", event_id, "C4",
                              f"{self.user} answered '{inst.response}' to the instance {iso(key)} in Outlook",
                              rsvp=Rsvp(self.user, "single", inst.response, at, key))
            elif existing is not None and inst.response_time is not None and at > existing.at \
                    and existing.response != master.response:
                # scenario: the instance follows the series' answer again in Outlook (C4)
                self.emit("remove_rsvp", event_id, "C4",
                          f"the instance {iso(key)} follows the series' answer again in Outlook", rsvp=existing)

    def _decline_instance(self, event_id: str, key: datetime, master: OutlookItem) -> None:
        event = self.events.get(event_id)
        if event is None or key in event.deleted:
            return
        existing = self._rsvp(event_id, "single", key)
        if existing is not None and existing.response == "declined":
            return
        # scenario: an attendee deleted one occurrence from their calendar: a declined instance (C4, D3)
        self.emit("set_rsvp", event_id, "D3",
                  f"{self.user} removed the instance {iso(key)} from their Outlook calendar",
                  rsvp=Rsvp(self.user, "single", "declined", _sec(master.last_modified or self.now), key))
