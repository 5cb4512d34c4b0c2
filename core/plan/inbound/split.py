"""Split-series linking: rules A1, A2, A4, O2.

Outlook's series splits never split a Communifire event (A1, A2). When the organizer edits
"this and all following" in Outlook, the original series is cut short (O2: ``_cut_evidence``
records what it was) and a new series appears; ``split_child`` makes the new series a child
segment of the same event when (a) it has the same subject, (b) the original is already
synced, and (c) the original's range was cut short and the new series takes over from there
(``_takes_over``, with ``_gap_taken`` for a series split twice in one round). A child that
itself is cut inherits what is left of the original sequence (``_is_cut``), so a chain of
splits is recognised the same way. Each child is then edited on its own (A4).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from core.plan.inbound.base import PlannerBase, norm_title
from core.plan.inbound.common import _SeriesView, _link_for, _segment_of
from core.plan.model import OutlookLink
from core.plan.outlook_items import OutlookItem, OutlookSeries, iso, recurrence_to_json
from core.plan.recurrence import Recurrence, RecurrenceError, occurrence_dates, restart_from


_norm_title = norm_title


def _period(rec: Recurrence) -> timedelta:
    """Roughly one step of the pattern (a tolerance for 'takes over from there', A2)."""
    step = {"daily": 1, "weekly": 7, "absoluteMonthly": 31, "relativeMonthly": 31}.get(rec.pattern.type, 366)
    return timedelta(days=step * rec.pattern.interval)


class SplitRules(PlannerBase):
    """A1, A2, A4, O2: a new series that takes over a cut one."""

    def split_child(self, series: OutlookSeries) -> bool:
        new = series.master
        new_view = _SeriesView.of_item(new)
        if new_view is None:
            return False
        best: tuple[timedelta, str, OutlookLink, str, dict[str, Any]] | None = None
        # only the linked series that may carry its subject (A2 (a)): an index, not every
        # link per new series (issue 14: a first plan stays linear)
        for oid, link in self.series_links_titled(norm_title(new.title)):
            if link.kind != "series" or link.event_id not in self.events or oid == new.id:
                continue
            found = self._takes_over(link, new, new_view)
            if found is None:
                continue
            gap, evidence, parent_extra = found
            if best is None or (gap, oid) < (best[0], best[1]):
                best = (gap, oid, link, evidence, parent_extra)
        if best is None:
            return False
        _, _, parent, evidence, parent_extra = best
        event = self.events[parent.event_id]
        segment = _segment_of(new)
        if any(s.start == segment.start for s in event.segments):
            return False
        # scenario: Outlook's "this and all following" edit: the new series continues the event (A2, O2)
        self.emit("add_segment", event.id, "A2", evidence, segment=segment)
        self.emit("link", event.id, "A2", f"link the new Outlook series {new.id} as a child of the event",
                  link=_link_for(new, self.user, event.id, "series", segment_start=new.start, evidence=evidence,
                                 extra=parent_extra))
        if parent.snapshot.get("_cut_from"):
            # the parent's cut has now been taken over: forget it so it cannot be claimed twice
            snapshot = {k: v for k, v in parent.snapshot.items() if not k.startswith("_cut")}
            self.relink(replace(parent, snapshot=snapshot), "A2",
                        f"the cut of Outlook series {parent.outlook_id} was taken over by {new.id}")
        self.jobs.append((event.id, new.id, series, True, True))
        self.rsvp_jobs.append((event.id, new))
        return True

    def _takes_over(self, link: OutlookLink, new: OutlookItem,
                    new_view: _SeriesView) -> tuple[timedelta, str, dict[str, Any]] | None:
        """The A2 test of a new series against one linked series (None: no match)."""
        event = self.events[link.event_id]
        current_item = self.snap.series[link.outlook_id].master if link.outlook_id in self.snap.series else None
        cur = _SeriesView.of_item(current_item) if current_item is not None else _SeriesView.of_snapshot(link)
        if cur is None:
            return None
        seg = self._segment_for_link(event, link)
        # (a) same subject
        titles = {_norm_title(str(link.snapshot.get("title") or ""))}
        synced = self.state.links.get(link.outlook_id)
        if synced is not None:  # the subject as last synced, before any rename in this round
            titles.add(_norm_title(str(synced.snapshot.get("title") or "")))
            synced_event = self.state.events.get(synced.event_id)
            synced_seg = self._segment_for_link(synced_event, synced) if synced_event else None
            if synced_seg is not None:
                titles.add(_norm_title(synced_seg.title))
        if current_item is not None:
            titles.add(_norm_title(current_item.title))
        if seg is not None:
            titles.add(_norm_title(seg.title))
        if _norm_title(new.title) not in titles:
            return None
        # (b) the original is already synced: it is linked (we are iterating links)
        # (c) its range was cut short, and the new series takes over from there
        previous = [v for v in (_SeriesView.of_snapshot(link, "_cut_from"), _SeriesView.of_snapshot(link))
                    if v is not None]
        try:
            cur_last = cur.last()
        except RecurrenceError:
            return None
        if cur_last is None:
            return None
        new_first = new.start
        if new_first <= cur_last:
            return None
        nxt = next((s.start for s in event.segments if seg is not None and s.start > seg.start), None)
        if nxt is not None and nxt <= new_first:
            return None  # a later part of the event already covers that stretch
        for prev in previous:
            try:
                prev_last = prev.last()
            except RecurrenceError:
                continue
            cur_last_day = prev.local_date(cur_last)
            if prev_last is not None and prev.local_date(prev_last) <= cur_last_day:
                continue  # not cut short against this earlier version
            horizon = cur_last_day + _period(prev.recurrence) * 2
            try:
                missing = occurrence_dates(prev.recurrence, start=cur_last_day + timedelta(days=1), until=horizon)
            except RecurrenceError:
                continue
            if not missing:
                continue
            first_missing = missing[0]
            new_day = new_view.local_date(new_first)
            tolerance = _period(prev.recurrence)
            if abs(new_day - first_missing) > tolerance and not (
                    new_day > first_missing
                    and self._gap_taken(prev, first_missing, new_day - tolerance, {new.id, link.outlook_id})):
                continue
            if prev_last is not None and new_day > prev.local_date(prev_last) + tolerance:
                continue
            evidence = (f"A2: same subject '{new.title}'; original Outlook series {link.outlook_id} already synced; "
                        f"its range was cut to end {cur_last_day.isoformat()} (it ran to "
                        f"{prev.local_date(prev_last).isoformat() if prev_last else 'no end'}); "
                        f"new series {new.id} takes over from {new_day.isoformat()}")
            # a chain: the child inherits what is left of the original sequence, so a further
            # split of the child is recognised the same way
            try:
                tail = restart_from(prev.recurrence, new_day)
                extra = {"_cut_from": recurrence_to_json(tail), "_cut_start": iso(new_first),
                         "_cut_end": iso(new_first + prev.duration)} if self._is_cut(new_view, tail, new_first,
                                                                                      prev.duration) else {}
            except RecurrenceError:
                extra = {}
            return abs(new_first - datetime.combine(first_missing, new_first.timetz())), evidence, extra
        return None

    def _gap_taken(self, prev: _SeriesView, first: date, last: date, exclude: set[str]) -> bool:
        """Whether every occurrence of ``prev`` from ``first`` to ``last`` falls within another
        series of this snapshot (the original was split twice in one round: O2, A2)."""
        try:
            days = occurrence_dates(prev.recurrence, start=first, until=last)
        except RecurrenceError:
            return False
        spans = []
        for sid, other in self.snap.series.items():
            view = _SeriesView.of_item(other.master)
            if sid in exclude or view is None:
                continue
            try:
                end = view.last()
            except RecurrenceError:
                continue
            spans.append((view.local_date(other.master.start), view.local_date(end) if end else date.max))
        return bool(days) and all(any(lo <= d <= hi for lo, hi in spans) for d in days)

    @staticmethod
    def _is_cut(new_view: _SeriesView, tail: Recurrence, new_first: datetime, duration: timedelta) -> bool:
        """Whether the new child itself already ends before what is left of the original."""
        try:
            new_last = new_view.last()
            tail_view = _SeriesView(tail, new_first.astimezone(new_view.zone), duration, new_view.is_all_day,
                                    new_view.zone)
            tail_last = tail_view.last()
        except RecurrenceError:
            return False
        return new_last is not None and (tail_last is None or tail_last > new_last)

    def _cut_evidence(self, link: OutlookLink, master: OutlookItem) -> dict[str, Any]:
        """``{"_cut_from": previous recurrence}`` when the master's range was cut short (O2)."""
        old = _SeriesView.of_snapshot(link)
        new = _SeriesView.of_item(master)
        if old is None or new is None:
            return {}
        try:
            new_last, old_last = new.last(), old.last()
        except RecurrenceError:
            return {}
        if new_last is not None and (old_last is None or new.local_date(old_last) > new.local_date(new_last)):
            return {"_cut_from": link.snapshot.get("_cut_from") or link.snapshot.get("recurrence"),
                    "_cut_start": link.snapshot.get("start"), "_cut_end": link.snapshot.get("end")}
        if link.snapshot.get("_cut_from"):
            return {k: link.snapshot.get(k) for k in ("_cut_from", "_cut_start", "_cut_end")}
        return {}
