"""Edits of items already linked: rules D1, A4, A7, O2, A9.

- D1: a single event or a series edited in Outlook updates the segment, field by field,
  only for the fields that changed against the link's last synced snapshot (STYLE rule 5);
- A4: an edit of one child series of a split event changes only that segment;
- O2: a series whose range was cut short ("this and all following") keeps the evidence of
  the cut in its link, so ``split`` can recognise the series that takes over (A2);
- A7: an attendee's copy that changed never changes Communifire's values;
- A9: a new changeKey alone, or our own write coming back, plans nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.plan.bodies import same_body
from core.plan.inbound.actions import _SEGMENT_FIELDS
from core.plan.inbound.base import PlannerBase
from core.plan.inbound.common import _link_for
from core.plan.model import TIME_FIELDS, OutlookLink, Segment
from core.plan.outlook_items import OutlookItem, OutlookSeries, content_hash, content_of


_SERIES_TIME_FIELDS = frozenset(TIME_FIELDS | {"recurrence"})


def differs(name: str, a: Any, b: Any) -> bool:
    """Did a field change? A body by its meaning (A9, GRAPH.md section 10), the rest by value."""
    if name == "body" and isinstance(a, str) and isinstance(b, str):
        return not same_body(a, b)
    return a != b


class LinkedRules(PlannerBase):
    """D1, A4, A7, O2: changes to linked items."""

    def _changed_fields(self, link: OutlookLink, item: OutlookItem, seg: Segment) -> list[str]:
        """The fields that changed in Outlook since the last sync (vs the snapshot)."""
        new = content_of(item)
        if not link.snapshot:
            # no snapshot kept: everything that differs from the segment counts as changed
            return [f for f in _SEGMENT_FIELDS if differs(f, item.value(f), seg.value(f))]
        return [f for f in _SEGMENT_FIELDS if differs(f, new[f], link.snapshot.get(f))]

    def plan_linked_single(self, link: OutlookLink, item: OutlookItem) -> None:
        event = self.events[link.event_id]
        if content_hash(item) != link.content_hash:
            seg = self._segment_for_link(event, link) or event.segments[0]
            if link.kind == "instance" or not self._authoritative(link, item):
                # scenario: an attendee's copy changed; Communifire's name and times stay (A7)
                self.emit("link", event.id, "A7",
                          f"{self.user}'s copy changed in Outlook; the event keeps Communifire's values",
                          link=replace(_link_for(item, self.user, event.id, link.kind, segment_start=link.segment_start,
                                                 instance_start=link.instance_start), evidence=link.evidence))
            else:
                changed = self._changed_fields(link, item, seg)
                changes = {f: item.value(f) for f in changed if differs(f, seg.value(f), item.value(f))}
                if changes:
                    # scenario: the single event was edited in Outlook
                    self.emit("update_segment", event.id, "D1",
                              f"changed in Outlook: {', '.join(sorted(changes))}",
                              segment_start=seg.start, changes=changes)
                self.emit("link", event.id, "A9", "record the synced snapshot so the change does not echo",
                          link=_link_for(item, self.user, event.id, "single", segment_start=None, evidence=link.evidence))
        self.rsvp_jobs.append((event.id, item))

    def plan_linked_series(self, link: OutlookLink, series: OutlookSeries) -> None:
        event = self.events[link.event_id]
        master = series.master
        seg = self._segment_for_link(event, link) or event.segments[0]
        authoritative = self._authoritative(link, master)
        changed_master = content_hash(master) != link.content_hash
        time_changed = False
        if changed_master:
            changed = self._changed_fields(link, master, seg)
            time_changed = bool(set(changed) & _SERIES_TIME_FIELDS)
            extra = self._cut_evidence(link, master)
            if not authoritative:
                # scenario: an attendee's copy of the series changed; the event keeps its values (A7)
                self.emit("link", event.id, "A7",
                          f"{self.user}'s copy of the series changed in Outlook; the event keeps Communifire's values",
                          link=replace(_link_for(master, self.user, event.id, "series", segment_start=master.start,
                                                 extra=extra), evidence=link.evidence))
            else:
                changes = {f: master.value(f) for f in changed if differs(f, seg.value(f), master.value(f))}
                if "start" in changes and any(s.start == master.start for s in event.segments if s is not seg):
                    changes.pop("start")
                    self.notes.append(f"series {master.id}: its new start collides with another segment; start kept")
                if changes and set(changes) == {"recurrence"} and extra.get("_cut_from") \
                        and not link.snapshot.get("_cut_from"):
                    # scenario: "this and all following" in Outlook ended this series early (O2)
                    self.emit("update_segment", event.id, "O2",
                              "the series' range was cut short in Outlook (this and all following)",
                              segment_start=seg.start, changes=changes)
                elif changes:
                    child = seg is not event.segments[0]
                    # scenario: the series (or one child of a split series) was edited in Outlook
                    self.emit("update_segment", event.id, "A4" if child else "D1",
                              ("the child series changed in Outlook (only its instances): " if child
                               else "the series changed in Outlook: ") + ", ".join(sorted(changes)),
                              segment_start=seg.start, changes=changes)
                self.emit("link", event.id, "A9", "record the synced snapshot so the change does not echo",
                          link=_link_for(master, self.user, event.id, "series",
                                         segment_start=changes.get("start", seg.start), evidence=link.evidence,
                                         extra=extra))
        self.jobs.append((event.id, link.outlook_id, series, authoritative, changed_master and time_changed))
        self.rsvp_jobs.append((event.id, master))
