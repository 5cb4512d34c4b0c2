"""``calendar`` (a user's stored Communifire calendar) and ``audit`` (what each sync did).

Both read Table Storage only: no client secret, no encryption key.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.context import LIST_FORMATS, add_command, add_user_option, output_for, storage_app
from core.cli.errors import EXIT_OK, unknown_user
from core.cli.output import Column, Output, short_time
from core.cli.users import check_user

CALENDAR_COLUMNS = [Column("title"), Column("when", "when (UTC)"), Column("repeats"),
                    Column("attendees", "attendees (RSVP)"), Column("links", "links"), Column("id", "event id", whole=True)]
AUDIT_COLUMNS = [Column("at", "at (UTC)"), Column("source"), Column("kind", "action"), Column("event_id", "event", whole=True),
                 Column("rule"), Column("reason")]


def load_calendar(app: Any, user_id: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """The calendar JSON of docs/calendar-json.md for one user: the very document the read
    API ``GET /calendar/{user}?from=&to=`` answers (``core.app.service.read_calendar``).

    Raises:
        core.app.service.BadRequest: a bad date or range (exit 2 with the reason).
    """
    from core.app.service import read_calendar

    return read_calendar(app, user_id, start, end)


def calendar_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per event: when, the repeat pattern with instance counts, attendees, links."""
    rows = []
    for e in doc["events"]:
        repeats = "-"
        if e["series"]:
            segs = e["series"]["segments"]
            rec = segs[0]["recurrence"] or {}
            repeats = f"{rec.get('pattern', {}).get('type', '?')}, {len(e['instances'])} in window"
            repeats += f", {len(segs)} segments" if len(segs) > 1 else ""
            exc = sum(1 for i in e["instances"] if i["state"] == "exception")
            dele = sum(1 for i in e["instances"] if i["state"] == "deleted")
            repeats += (f", {exc} changed" if exc else "") + (f", {dele} deleted" if dele else "")
        who = ", ".join(f"{a['email']} ({a['response']})" for a in e["attendees"]) or "-"
        same_day = e["start"][:10] == e["end"][:10]
        when = f"{short_time(e['start'])} - {short_time(e['end'])[11:] if same_day else short_time(e['end'])}"
        if e["all_day"]:
            when = f"{e['start'][:10]} (all day)"
        rows.append({"title": e["title"], "when": when, "repeats": repeats, "attendees": who,
                     "links": len(e["outlook"]), "id": e["id"]})
    return rows


def print_calendar(doc: dict[str, Any], out: Output | None = None) -> None:
    """The human-readable calendar (also used by ``make demo``)."""
    (out or Output()).table(f"Communifire calendar of user {doc['user_id']} ({len(doc['events'])} event(s))",
                            CALENDAR_COLUMNS, calendar_rows(doc))


def cmd_calendar(args: argparse.Namespace) -> int:
    out = output_for(args)
    user_id = check_user(args.user)
    app = storage_app()
    doc = load_calendar(app, user_id, args.start, args.end)
    if not doc["events"] and app.users.get(user_id) is None:
        raise unknown_user(user_id)
    if out.fmt == "json":
        out.json(doc)
    elif out.fmt == "tsv":
        out.listing("", CALENDAR_COLUMNS, calendar_rows(doc))
    else:
        print_calendar(doc, out)
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from core.adapters.audit import AuditStore

    out = output_for(args)
    user_id = check_user(args.user)
    app = storage_app()
    entries = list(AuditStore(app.storage).read(user_id, limit=args.limit))
    if not entries and app.users.get(user_id) is None:
        raise unknown_user(user_id)
    rows = entries if out.machine else [dict(e, at=short_time(str(e["at"]))) for e in entries]
    out.listing(f"Audit trail of user {user_id} (newest first)", AUDIT_COLUMNS, rows,
                doc={"user_id": user_id, "entries": entries})
    return EXIT_OK


def register(sub: Any) -> None:
    p = add_command(sub, "calendar", cmd_calendar, "show a user's Communifire calendar as stored "
                    "(-o json: docs/calendar-json.md, the read API's document)", formats=LIST_FORMATS)
    add_user_option(p)
    p.add_argument("--from", dest="start", metavar="WHEN",
                   help="only what overlaps this date or UTC time and after (the read API's from=)")
    p.add_argument("--to", dest="end", metavar="WHEN", help="only what starts before this (the read API's to=)")
    p = add_command(sub, "audit", cmd_audit, "what each sync changed for a user, and why", formats=LIST_FORMATS)
    add_user_option(p)
    p.add_argument("--limit", type=int, default=100, help="newest entries to show (default 100)")
