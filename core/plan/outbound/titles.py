"""Title fixes after the writes: rules A7, O5.

Single-instance copies in attendees' mailboxes can keep another name after a series reset
(Outlook leaves them alone, O5); ``plan_title_fixes`` gives them Communifire's title, the
meeting's one name (A7).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from core.plan.model import Event, OutlookLink
from core.plan.outbound.common import _instance_values, _step
from core.plan.outbound.values import Step


def plan_title_fixes(event: Event, observed: Sequence[tuple[OutlookLink, Mapping[str, Any]]],
                     organizer_id: str, writable: Iterable[str]) -> tuple[Step, ...]:
    """A7/O5: items that still show another name than Communifire's get its title.

    ``observed`` pairs each link with the raw Graph item just read. Only single-instance
    copies in attendees' mailboxes can drift (Outlook leaves them alone after a series
    reset, O5); items of the meeting itself follow the organizer's writes.
    """
    allowed = set(writable)
    steps = []
    for link, item in observed:
        if link.kind != "instance" or link.user_id == organizer_id or link.user_id not in allowed:
            continue
        if item.get("isCancelled") or link.instance_start is None:
            continue
        want = _instance_values(event, link.instance_start)["title"] if link.instance_start in event.exceptions \
            else event.segment_for(link.instance_start).title
        if item.get("subject") != want:
            steps.append(_step(link.user_id, "patch", link.outlook_id, {"subject": want}, "A7",
                               f"the single-instance copy shows {item.get('subject')!r}; Communifire's name is {want!r}"))
    return tuple(steps)
