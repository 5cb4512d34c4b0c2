"""``make demo``: the product's main job, end to end, on this machine.

Starts Azurite and the Outlook emulator, runs the function app on the local host,
connects a Communifire user to an emulated Outlook mailbox through the real OAuth
redirects (MSAL, PKCE, the callback), creates a few events in "Outlook" as that user
would, runs the sync timer once, waits for the fan-out and the writer, and prints the
resulting Communifire calendar. Everything is stopped afterwards.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console

from core.cli.main import print_calendar
from devhost.services import Azurite
from devhost.stack import Stack


def _dt(value: datetime) -> dict[str, str]:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def demo_events(now: datetime, colleague: str) -> list[dict]:
    day = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    monday = day + timedelta(days=(7 - day.weekday()) % 7 or 7)
    return [
        {"subject": "Quarterly planning", "start": _dt(day + timedelta(days=3, hours=9)),
         "end": _dt(day + timedelta(days=3, hours=11)), "location": {"displayName": "Board room"},
         "attendees": [{"emailAddress": {"address": colleague, "name": "Bob"}, "type": "required"}]},
        {"subject": "Dentist", "start": _dt(day + timedelta(days=5, hours=14)),
         "end": _dt(day + timedelta(days=5, hours=15))},
        {"subject": "Company holiday", "isAllDay": True,
         "start": {"dateTime": (day + timedelta(days=20)).strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": "UTC"},
         "end": {"dateTime": (day + timedelta(days=21)).strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": "UTC"}},
        {"subject": "Team stand-up", "start": {"dateTime": (monday + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                                                "timeZone": "GMT Standard Time"},
         "end": {"dateTime": (monday + timedelta(hours=9, minutes=15)).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                 "timeZone": "GMT Standard Time"},
         "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["Monday"]},
                        "range": {"type": "numbered", "startDate": monday.strftime("%Y-%m-%d"), "numberOfOccurrences": 8}}},
    ]


def main() -> int:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    console.print("[bold]Outlook Sync for Communifire: local demo[/bold]")
    azurite = Azurite().start()
    console.print(f"Azurite (Table + Queue Storage) on ports {azurite.ports['table']} / {azurite.ports['queue']}")
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        stack = Stack(connection_string=azurite.connection_string, state_dir=Path(tmp)).start()
        try:
            console.print(f"Outlook emulator (Graph + Entra ID) at {stack.emulator.url}")
            console.print(f"Function app on the local host at {stack.host.url}")
            stack.add_user("alice@contoso.com", "Alice Example")
            stack.add_user("bob@contoso.com", "Bob Example")
            page = stack.connect("1001", "alice@contoso.com")
            console.print(f"Connected Communifire user 1001 to alice@contoso.com: HTTP {page.status_code}")
            if page.status_code != 200:
                console.print(page.text)
                return 1
            now = datetime.now(timezone.utc)
            for event in demo_events(now, "bob@contoso.com"):
                stack.control.create_event("alice@contoso.com", event)
            console.print("Created 4 events in Alice's Outlook (one a weekly series of 8).")
            status = stack.sync_all()
            failures = status.get("recent_failures") or []
            console.print(f"Ran the sync timer once: {len(failures)} failed invocation(s).")
            for failure in failures:
                console.print(f"  [red]{failure['function']}: {failure['error']}[/red]")
            print_calendar(stack.calendar("1001"))
            return 0 if not failures else 1
        finally:
            stack.close()
            azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
