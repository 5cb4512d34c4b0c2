"""Planning figures, run in a process of their own (``python -m bench.planning``).

Prints one JSON object: first-plan times (no memory tracing anywhere in this process:
tracemalloc slows Python code 4-8x) and the process's peak resident set size, which is
what an instance actually pays for.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any


def _dt(value: datetime) -> dict[str, str]:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def synthetic_mailbox(now: datetime, singles: int = 500, series: int = 50, weeks: int = 52):
    """Graph-shaped rows of one busy mailbox (singles, masters and their instances)."""
    day0 = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    single_rows = []
    for i in range(singles):
        start = day0 + timedelta(days=i % 360, hours=8 + i % 9, minutes=(i // 360) % 60)
        single_rows.append({"id": f"single-{i}", "type": "singleInstance", "subject": f"Meeting {i}",
                            "start": _dt(start), "end": _dt(start + timedelta(hours=1)),
                            "iCalUId": f"uid-s-{i}", "changeKey": "ck", "isOrganizer": True,
                            "organizer": {"emailAddress": {"address": "alice@contoso.com"}},
                            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
                            "lastModifiedDateTime": "2026-01-01T00:00:00Z"})
    masters: dict[str, Any] = {}
    instances: dict[str, Any] = {}
    for s in range(series):
        first = day0 + timedelta(days=s % 7, hours=9 + s % 8, minutes=(s // 56) % 60)
        mid = f"master-{s}"
        masters[mid] = {"id": mid, "type": "seriesMaster", "subject": f"Series {s}", "start": _dt(first),
                        "end": _dt(first + timedelta(minutes=30)), "iCalUId": f"uid-m-{s}", "changeKey": "ck",
                        "isOrganizer": True, "organizer": {"emailAddress": {"address": "alice@contoso.com"}},
                        "originalStartTimeZone": "UTC",
                        "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                                   "daysOfWeek": [first.strftime("%A").lower()]},
                                       "range": {"type": "noEnd", "startDate": first.date().isoformat(),
                                                 "recurrenceTimeZone": "UTC"}},
                        "lastModifiedDateTime": "2026-01-01T00:00:00Z"}
        rows = []
        for w in range(weeks):
            start = first + timedelta(weeks=w)
            rows.append({"id": f"{mid}-occ-{w}", "type": "occurrence", "seriesMasterId": mid,
                         "originalStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "start": _dt(start),
                         "end": _dt(start + timedelta(minutes=30)), "subject": f"Series {s}",
                         "occurrenceId": f"OID.{mid}.{start.date().isoformat()}"})
        instances[mid] = rows
    return single_rows, masters, instances


def first_plan(singles: int, series: int, repeats: int = 1) -> dict[str, float]:
    """Best-of-``repeats`` time to snapshot and plan a mailbox for a new user, and to
    re-plan it once applied (nothing changed: nothing planned)."""
    from core.app.sync import window_for
    from core.plan import inbound, outlook_items
    from core.plan.model import UserState

    now = datetime.now(timezone.utc)
    window = window_for(now)
    rows = synthetic_mailbox(now, singles, series)
    best_plan = best_replan = float("inf")
    actions = 0
    for _ in range(repeats):
        gc.collect()  # each run starts from the same heap (GC stays on while timing)
        t0 = time.perf_counter()
        snap = outlook_items.build_snapshot("u1", window, *rows)
        state = UserState("u1")
        plan = inbound.plan_inbound(state, snap, now)
        t1 = time.perf_counter()
        after = inbound.apply_plan(state, plan)
        t2 = time.perf_counter()
        again = inbound.plan_inbound(after, snap, now)
        t3 = time.perf_counter()
        if again.actions:
            raise AssertionError("a converged state must plan nothing")
        best_plan = min(best_plan, t1 - t0)
        best_replan = min(best_replan, t3 - t2)
        actions = len(plan.actions)
    return {"plan_s": best_plan, "replan_s": best_replan, "actions": float(actions)}


def main(argv: list[str]) -> int:
    """``busy``: one busy mailbox, and the process's peak RSS; ``scale``: the 10x figures."""
    out: dict[str, Any] = {}
    if "scale" in argv:
        # small and large interleaved, best of each: on a shared machine a quiet moment
        # must not favour one side of the ratio
        for small, large, args in (("singles_1k", "singles_10k", ((1_000, 0), (10_000, 0))),
                                   ("series_100", "series_1000", ((0, 100), (0, 1_000)))):
            out[small] = out[large] = float("inf")
            for _ in range(3):
                out[small] = min(out[small], first_plan(*args[0], repeats=2)["plan_s"])
                out[large] = min(out[large], first_plan(*args[1], repeats=1)["plan_s"])
    else:
        out["busy"] = first_plan(500, 50, repeats=2)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
