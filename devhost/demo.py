"""``make demo``: what the product is for, in the terminal, in under a minute.

Outlook gets repeat events wrong in ways Communifire must not: an edit of "this and all
following" makes an unconnected new series (O2), a deleted series leaves invitees'
single-instance copies behind (O6). The demo walks one weekly meeting through those
cases, one line per step and the Communifire calendar after it:

1. Alice creates a weekly series in Outlook; the sync makes one Communifire event (D4).
2. She moves one instance in Outlook: it becomes that instance's exception (O1, D2).
3. She edits "this and all following" in Outlook: still one Communifire event, the new
   Outlook series linked as its child (A1, A2).
4. The series is renamed in Communifire: the parent and the child series are renamed in
   her Outlook (A3).
5. Bob, invited to one instance in Outlook, holds a single-instance copy; the series is
   deleted in Communifire and that orphaned copy is cancelled too (A8, O6).

Everything goes through the real paths: Outlook edits through the emulator's control API
(which behaves as Outlook does), Communifire's changes as messages on the outbound
queue, and syncs by the function app's own timer, sync-jobs queue and writer, on the
local host over Azurite. Everything is stopped afterwards.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from core.cli.calendar import print_calendar
from core.cli.output import Output
from devhost.services import Azurite
from devhost.stack import Stack

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
ZONE = "GMT Standard Time"
TITLE, NEW_TITLE = "Team sync", "Weekly planning"


class DemoFailed(Exception):
    """A step did not end as the product promises (the demo exits 1)."""


def local(day: date, hour: int, minute: int = 0) -> dict[str, str]:
    return {"dateTime": f"{day.isoformat()}T{hour:02d}:{minute:02d}:00.0000000", "timeZone": ZONE}


def weekly_series(first: date, count: int = 8) -> dict[str, Any]:
    return {"subject": TITLE, "start": local(first, 9), "end": local(first, 9, 30),
            "location": {"displayName": "Room 1"},
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
                           "range": {"type": "numbered", "startDate": first.isoformat(), "numberOfOccurrences": count}}}


def next_monday(today: date) -> date:
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


class Demo:
    def __init__(self, stack: Stack, out: Output):
        self.stack, self.out, self.step = stack, out, 0
        self.ops = 0

    # -- the real paths ------------------------------------------------------------------

    def sync(self) -> None:
        """The sync timer once, then the sync-jobs and writes queues until idle."""
        status = self.stack.sync_all()
        self._check_idle(status)

    def communifire(self, operation: str, event_id: str, **event: Any) -> None:
        """Communifire's backend: one message on the outbound queue, as docs/messages.md says."""
        from core.app.producer import encode, validate

        self.ops += 1
        message = {"v": 1, "operation_id": f"demo-{uuid.uuid4().hex[:8]}-{self.ops}",
                   "occurred_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "actor": {"user_id": "1001"}, "calendar": "my", "operation": operation, "scope": "all",
                   "event": {"id": event_id, "organizer": {"user_id": "1001", "email": ALICE, "name": "Alice"}, **event}}
        validate(message)
        self.stack.app.storage.queue("outbound").send_message(encode(message))
        self._check_idle(self.stack.host.wait_idle(timeout=60))

    def _check_idle(self, status: dict[str, Any]) -> None:
        failures = status.get("recent_failures") or []
        poisoned = {q: n for q, n in (status.get("queues") or {}).items() if q.endswith("-poison") and n}
        if failures or poisoned:
            raise DemoFailed(f"the function app reported {failures or poisoned}")

    # -- what the people see -------------------------------------------------------------

    def calendar(self, user_id: str = "1001") -> dict[str, Any]:
        return self.stack.calendar(user_id)

    def live(self, upn: str) -> list[dict[str, Any]]:
        return [i for i in self.stack.control.mailbox(upn) if not i.get("isCancelled")]

    def say(self, line: str, user_id: str | None = "1001") -> None:
        self.step += 1
        self.out.say("")
        self.out.say(f"{self.step}. {line}")
        self.heard()
        if user_id:
            print_calendar(self.calendar(user_id), self.out)

    def heard(self) -> None:
        """What Communifire's backend reads from the two feeds since the last step
        (docs/changes.md), one line each, as ``outlook-sync changes tail`` shows them."""
        from core.cli.changes import line

        for feed in ("calendar-changes", "outbound-results"):
            for message in self.stack.feed(feed):
                self.out.say(f"   Communifire hears: {line(message)}")

    def only_event(self) -> dict[str, Any]:
        events = self.calendar()["events"]
        if len(events) != 1:
            raise DemoFailed(f"expected one Communifire event, found {[e['title'] for e in events]}")
        return events[0]


def run_story(demo: Demo) -> None:
    control = demo.stack.control
    first = next_monday(datetime.now(timezone.utc).date())

    master = control.create_event(ALICE, weekly_series(first))
    demo.sync()
    event = demo.only_event()
    demo.say(f"Alice creates '{TITLE}', 8 Mondays, in Outlook; the sync timer runs: one Communifire event with "
             f"{len(event['instances'])} instances (D4).")

    moved = first + timedelta(weeks=2)
    tuesday = moved + timedelta(days=1)
    control.edit_occurrence(ALICE, master["id"], moved, {"start": local(tuesday, 14), "end": local(tuesday, 14, 30)})
    demo.sync()
    changed = [i for i in demo.only_event()["instances"] if i["state"] == "exception"]
    if len(changed) != 1:
        raise DemoFailed(f"expected one exception, found {len(changed)}")
    demo.say(f"She moves the {moved:%d %b} instance to {tuesday:%a %d %b} 14:00 in Outlook: it becomes that "
             f"instance's exception (changed: {', '.join(changed[0]['changed_fields'])}; O1, D2).")

    cut = first + timedelta(weeks=4)
    child = control.edit_following(ALICE, master["id"], cut, {"location": {"displayName": "Room 9"}})
    demo.sync()
    event = demo.only_event()
    segments = event["series"]["segments"]
    if len(segments) != 2:
        raise DemoFailed(f"expected two segments, found {len(segments)}")
    demo.say(f"She edits 'this and all following' from {cut:%d %b} (Room 9): Outlook now has two unconnected series; "
             f"Communifire still has one event, the new series linked as its child (A1, A2).")

    demo.communifire("update", event["id"], title=NEW_TITLE)
    subjects = sorted({i["subject"] for i in demo.live(ALICE) if i["id"] in (master["id"], child["id"])})
    if subjects != [NEW_TITLE]:
        raise DemoFailed(f"Outlook series are called {subjects}")
    demo.say(f"The series is renamed '{NEW_TITLE}' in Communifire: Alice's Outlook parent and child series are "
             f"both renamed (A3).")

    invited = first + timedelta(weeks=1)
    control.invite_occurrence(ALICE, master["id"], invited, [BOB])
    demo.sync()  # Bob's copy is linked to the same event (C5)
    bobs = demo.live(BOB)
    links = len(demo.only_event()["outlook"])
    demo.communifire("delete", event["id"])
    left = {upn: len(demo.live(upn)) for upn in (ALICE, BOB)}
    if any(left.values()) or len(bobs) != 1:
        raise DemoFailed(f"Bob had {len(bobs)} copy(ies); live Outlook items left: {left}")
    demo.say(f"Bob, invited to the {invited:%d %b} instance in Outlook, holds a single-instance copy (linked: "
             f"{links} Outlook links); the series is deleted in Communifire: both of Alice's series and Bob's "
             f"orphaned copy are cancelled in Outlook (A8, O6).")


def main() -> int:
    out = Output()
    started = time.monotonic()
    out.say("Outlook Sync for Communifire: local demo (Azurite, the Outlook emulator and the function app on "
            "this machine)")
    azurite = Azurite().start()
    try:
        with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
            stack = Stack(connection_string=azurite.connection_string, state_dir=Path(tmp)).start()
            try:
                for upn, name in ((ALICE, "Alice Example"), (BOB, "Bob Example")):
                    stack.add_user(upn, name)
                for user_id, upn in (("1001", ALICE), ("1002", BOB)):
                    page = stack.connect(user_id, upn)
                    if page.status_code != 200:
                        raise DemoFailed(f"connecting {upn} answered HTTP {page.status_code}")
                out.say(f"Connected Communifire users 1001 and 1002 to {ALICE} and {BOB} through the real "
                        "sign-in redirects.")
                run_story(Demo(stack, out))
            finally:
                stack.close()
    except DemoFailed as exc:
        out.say(f"\nDEMO FAILED: {exc}")
        return 1
    finally:
        azurite.stop()
    out.say(f"\nDone in {time.monotonic() - started:.0f} s; everything it started is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
