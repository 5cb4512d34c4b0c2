"""Measure the speed and memory targets of the app and write bench/REPORT.md.

Targets (why each matters):
- cold start: importing ``function_app`` (what a new Flex Consumption instance does
  before its first invocation) stays under 600 ms median; the Graph SDK alone would
  cost about a second, which is why it is not used.
- planning: one user with 500 single events and 50 weekly series (a year window,
  about 2,600 instances) is snapshotted and planned in under 3 s, and re-planned
  (nothing changed) in under 3 s, with peak Python memory under 200 MB.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"cold_start_ms": 600.0, "plan_s": 3.0, "replan_s": 3.0, "peak_mb": 200.0}


def cold_start(runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", "import time; t=time.perf_counter(); import function_app; "
             "print((time.perf_counter()-t)*1000)"], cwd=ROOT, capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def _dt(value: datetime) -> dict[str, str]:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def synthetic_mailbox(now: datetime, singles: int = 500, series: int = 50):
    """Graph-shaped rows of one busy mailbox (singles, masters and their instances)."""
    day0 = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    single_rows = []
    for i in range(singles):
        start = day0 + timedelta(days=i % 360, hours=8 + i % 9)
        single_rows.append({"id": f"single-{i}", "type": "singleInstance", "subject": f"Meeting {i}",
                            "start": _dt(start), "end": _dt(start + timedelta(hours=1)),
                            "iCalUId": f"uid-s-{i}", "changeKey": "ck", "isOrganizer": True,
                            "organizer": {"emailAddress": {"address": "alice@contoso.com"}},
                            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
                            "lastModifiedDateTime": "2026-01-01T00:00:00Z"})
    masters, instances = {}, {}
    for s in range(series):
        first = day0 + timedelta(days=s % 7, hours=9 + s % 8)
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
        for w in range(52):
            start = first + timedelta(weeks=w)
            rows.append({"id": f"{mid}-occ-{w}", "type": "occurrence", "seriesMasterId": mid,
                         "originalStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "start": _dt(start),
                         "end": _dt(start + timedelta(minutes=30)), "subject": f"Series {s}",
                         "occurrenceId": f"OID.{mid}.{start.date().isoformat()}"})
        instances[mid] = rows
    return single_rows, masters, instances


def planning() -> dict[str, float]:
    from core.plan import inbound, outlook_items
    from core.plan.model import UserState
    from core.app.sync import window_for

    now = datetime.now(timezone.utc)
    window = window_for(now)
    singles, masters, instances = synthetic_mailbox(now)
    tracemalloc.start()
    t0 = time.perf_counter()
    snap = outlook_items.build_snapshot("u1", window, singles, masters, instances)
    state = UserState("u1")
    plan = inbound.plan_inbound(state, snap, now)
    after = inbound.apply_plan(state, plan)
    t1 = time.perf_counter()
    again = inbound.plan_inbound(after, snap, now)
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert not again.actions, "a converged state must plan nothing"
    return {"plan_s": t1 - t0, "replan_s": t2 - t1, "peak_mb": peak, "actions": float(len(plan.actions))}


def main() -> int:
    sys.path.insert(0, str(ROOT))
    results = {"cold_start_ms": cold_start(), **planning()}
    lines = ["# Benchmark report", "", f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {sys.platform}, "
             f"Python {sys.version.split()[0]}.", "", "| measure | result | target | ok |", "|---|---|---|---|"]
    ok_all = True
    for key, target in TARGETS.items():
        ok = results[key] <= target
        ok_all &= ok
        lines.append(f"| {key} | {results[key]:.2f} | <= {target} | {'yes' if ok else 'NO'} |")
    lines.append(f"| actions planned | {int(results['actions'])} | | |")
    report = "\n".join(lines) + "\n"
    (ROOT / "bench" / "REPORT.md").write_text(report)
    print(report)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
