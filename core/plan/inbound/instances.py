"""Exceptions and deletions: rules D2, D3, O7, O4, O5, D1, C2, A1, A7.

- C2, A1: an item gone from Outlook (tombstone, 404, or absent from a full read) deletes
  the event when the organizer deleted every part of it, or only the child segment it was
  (the rest of the event stays, A1); an attendee's vanished copy is an unlink (A7) and
  drops their RSVP (C4, C5);
- D2: an instance is keyed by its original start in UTC; an exception records only the
  fields it changed against its series (O4); both sides changed: the newer change wins;
- D3, O7: a deleted occurrence is found only by its absence from Outlook's occurrences,
  never at the window's edges or beyond a range cut; an attendee deleting one occurrence is
  a declined instance;
- O5: a change of the series' time resets its exceptions in Outlook, and slots that no
  longer exist in the series are forgotten;
- D1: a re-sent series causes work only for the instances that differ.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from core.plan.inbound.actions import _sec
from core.plan.inbound.base import PlannerBase
from core.plan.inbound.common import _SeriesView
from core.plan.model import FIELDS, OutlookLink
from core.plan.outlook_items import OutlookItem, OutlookSeries, iso
from core.plan.recurrence import RecurrenceError


def _exception_changes(inst: OutlookItem, master: OutlookItem, key: datetime) -> dict[str, Any]:
    """The fields an exception changed, against its series (not just 'it changed': D2, O4)."""
    changes: dict[str, Any] = {}
    if inst.start != key:
        changes["start"] = inst.start
    view = _SeriesView.of_item(master)
    if inst.end != (view.end_of(key) if view is not None else key + master.duration):
        changes["end"] = inst.end
    if inst.bare:
        return changes
    for name in FIELDS:
        if name in ("start", "end"):
            continue
        if inst.value(name) != master.value(name):
            changes[name] = inst.value(name)
    return changes


class InstanceRules(PlannerBase):
    """C2, A1, D2, D3, O5, O7: deletions and per-instance changes."""

    def plan_gone(self, gone: list[OutlookLink]) -> None:
        by_event: dict[str, list[OutlookLink]] = {}
        for link in gone:
            by_event.setdefault(link.event_id, []).append(link)
        for event_id, links in sorted(by_event.items()):
            event = self.events.get(event_id)
            if event is None:
                for link in links:
                    self.emit("unlink", event_id, "A9", f"Outlook item {link.outlook_id} is gone and its event is not loaded",
                              outlook_id=link.outlook_id)
                continue
            organizer_links = [l for l in links if l.snapshot.get("is_organizer") is True and l.kind != "instance"
                               and not l.evidence.startswith("A7")]
            other_links = [l for l in links if l not in organizer_links]
            removed_starts = set()
            for link in organizer_links:
                seg = self._segment_for_link(event, link)
                if seg is not None:
                    removed_starts.add(seg.start)
            if organizer_links and removed_starts >= {s.start for s in event.segments}:
                # scenario: the organizer deleted the whole event in Outlook
                self.emit("delete_event", event_id, "C2",
                          f"the organizer deleted '{event.title}' in Outlook ({len(organizer_links)} item(s) gone)")
                self.gone_events.add(event_id)
                continue
            for start in sorted(removed_starts):
                # scenario: the organizer deleted a child series; its instances go, the event stays (A1)
                self.emit("remove_segment", event_id, "A1",
                          f"Outlook series for the part from {iso(start)} was deleted; the rest of the event stays",
                          segment_start=start)
            for link in organizer_links:
                self.emit("unlink", event_id, "A1", f"Outlook item {link.outlook_id} was deleted", outlook_id=link.outlook_id)
            answered = []
            for link in other_links:
                # scenario: an attendee's copy disappeared: they declined (or deleted it, which Outlook
                # sends as a decline); the link goes, the answer stays (issue 11 item 6)
                self.emit("unlink", event_id, "A7",
                          f"{self.user}'s copy {link.outlook_id} is gone: the attendee declined or deleted it",
                          outlook_id=link.outlook_id)
                if self.plan_copy_gone(event_id, link):
                    answered.append(link)
            remaining = self.links_of(event_id)
            if not remaining:
                self.gone_events.add(event_id)
                event = self.events.get(event_id)
                for r in (event.rsvps if event and not answered else ()):
                    if r.user_id == self.user:
                        self.emit("remove_rsvp", event_id, "C4", f"{self.user} no longer has the event in Outlook", rsvp=r)
            else:
                event = self.events.get(event_id)
                for link in other_links:
                    if link in answered:
                        continue
                    if link.kind == "instance" and link.instance_start is not None and event is not None:
                        for r in event.rsvps:
                            if r.user_id == self.user and r.original_start == link.instance_start:
                                self.emit("remove_rsvp", event_id, "C5",
                                          f"{self.user}'s single-instance copy is gone", rsvp=r)

    def plan_instances(self, event_id: str, master_id: str, series: OutlookSeries, *, authoritative: bool,
                       reset: bool) -> None:
        event = self.events.get(event_id)
        if event is None:
            return
        master = series.master
        view = _SeriesView.of_item(master)
        window = self.snap.window
        seg_start = self.links[master_id].segment_start if master_id in self.links else master.start
        seg = next((s for s in event.segments if s.start == seg_start), None) or event.segment_for(master.start)
        try:
            expected = set(view.expand(window.start, window.end)) if view else set()
        except RecurrenceError as exc:
            self.notes.append(f"series {master.id}: cannot expand its recurrence ({exc}); deleted instances not checked")
            expected, view = set(), None
        duration = master.duration
        instances = dict(series.instances)
        if view is not None and master.is_all_day:
            instances = self._snap_all_day(instances, expected, view)

        def covered(key: datetime) -> bool:
            return event.segment_for(key).start == seg.start

        def inside(key: datetime) -> bool:
            # strictly inside the window: the edges are never mistaken for deletions (D3)
            return key > window.start and key + duration < window.end

        keys = set(expected) | set(instances)
        keys |= {k for k in event.exceptions if window.start <= k <= window.end}
        keys |= {k for k in event.deleted if window.start <= k <= window.end}
        for key in sorted(keys):
            if not covered(key):
                continue
            inst = instances.get(key)
            if inst is not None and inst.is_cancelled:
                inst = None
            current = event.exceptions.get(key)
            is_deleted = key in event.deleted
            if inst is not None:
                if not authoritative:
                    continue  # an attendee's copy never changes the meeting's instances (A7)
                if is_deleted:
                    continue  # never undelete: Communifire's delete is on its way to Outlook
                changes = _exception_changes(inst, master, key) if inst.type == "exception" else {}
                modified = _sec(inst.last_modified or master.last_modified or self.now)
                if changes:
                    if current is None:
                        # scenario: one instance was changed in Outlook (an exception, D2)
                        self.emit("set_exception", event_id, "D2",
                                  f"instance {iso(key)} changed in Outlook: {', '.join(sorted(changes))}",
                                  original_start=key, changes=changes, modified_at=modified)
                    elif dict(current.changes) != changes and modified > current.modified_at:
                        # scenario: both sides changed the instance; Outlook's change is newer (D2)
                        self.emit("set_exception", event_id, "D2",
                                  f"instance {iso(key)} changed in Outlook after Communifire's change: "
                                  f"{', '.join(sorted(changes))}",
                                  original_start=key, changes=changes, modified_at=modified)
                elif current is not None:
                    if inst.type == "exception" and modified > current.modified_at:
                        # scenario: the instance was edited back to match its series in Outlook (D2)
                        self.emit("remove_exception", event_id, "D2",
                                  f"instance {iso(key)} matches its series again in Outlook", original_start=key)
                    elif reset and _sec(master.last_modified or self.now) > current.modified_at:
                        # scenario: the series' time changed in Outlook, which resets exceptions (O5)
                        self.emit("remove_exception", event_id, "O5",
                                  f"the series' time changed in Outlook, which reset instance {iso(key)}",
                                  original_start=key)
                continue
            if key in expected:
                if not inside(key):
                    continue  # at the window's edge: absence proves nothing (D3)
                if series.cancelled is not None and view is not None and not (
                        view.local_date(key) in series.cancelled or key.date() in series.cancelled):
                    self.notes.append(f"series {master.id}: instance {iso(key)} missing but not in cancelledOccurrences")
                    continue
                if authoritative:
                    if not is_deleted:
                        # scenario: an occurrence was deleted in Outlook; only its absence shows it (D3, O7)
                        self.emit("delete_instance", event_id, "D3",
                                  f"instance {iso(key)} is missing from Outlook's occurrences (deleted there, O7)",
                                  original_start=key)
                else:
                    self._decline_instance(event_id, key, master)
                continue
            # not an occurrence of the series as Outlook now has it: a slot that moved away
            if authoritative and reset and view is not None:
                if current is not None:
                    # scenario: the series moved or was cut in Outlook; this exception's slot is gone (O2, O5)
                    self.emit("remove_exception", event_id, "O5",
                              f"instance {iso(key)} no longer exists in the series as Outlook has it",
                              original_start=key)
                if is_deleted:
                    self.emit("forget_deleted", event_id, "O5",
                              f"deleted slot {iso(key)} no longer exists in the series as Outlook has it",
                              original_start=key)
        self.plan_instance_rsvps(event_id, master, instances)

    @staticmethod
    def _snap_all_day(instances: Mapping[datetime, OutlookItem], expected: set[datetime],
                      view: _SeriesView) -> dict[datetime, OutlookItem]:
        """All-day keys: match Graph's originalStart to the expanded slot by date."""
        by_date = {view.local_date(e): e for e in expected}
        out = {}
        for key, inst in instances.items():
            target = key if key in expected else by_date.get(view.local_date(key)) or by_date.get(key.date()) or key
            out[target] = inst
        return out
