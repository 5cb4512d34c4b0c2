"""``make bench``: measure the app's speed and costs, write bench/results.json and bench/REPORT.md.

Figures (issue 14), each ``{"value", "floor", "unit", "ok"}`` in results.json, where
``floor`` is the bound the figure must meet (a count, a time or a ratio):

- unchanged sync (the issue's calendar: 200 singles, 30 series): Graph requests (1),
  authority requests after the process's first (0), storage calls (<= 3), time over the
  floor of 1 delta GET + 1 user-row write, timed side by side, interleaved (<= 2x);
- first plan linearity: 10x the items costs at most 12x the time (singles 1k -> 10k,
  series 100 -> 1,000); no memory tracing in this or any timed section;
- writer: storage calls per changed event (<= 2);
- timer fan-out of 10,000 due users (<= 20 s);
- a tick over 1,000 unchanged users: storage calls (<= 4) and host CPU (<= 15 ms) per user;
- cold start: a new process importing ``function_app`` from compiled bytecode and exiting
  (<= 1,000 ms, best of 7: interpreter start and exit included, unlike the old in-process
  import time); memory: the planning process's peak RSS for a busy mailbox (<= 200 MB);
- change notifications (issue 13, bench/notifications.py): seconds from an Outlook edit to
  the Communifire write, p50 and p95 (<= 5), and the sync jobs of a 1,000-notification
  burst for one user (<= 2).

Azurite and the emulator run in processes of their own; the app's code runs in this one.
Counts come from the emulator's request log and the storage clients' counting transport.
"""

from __future__ import annotations

import compileall
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: name -> (floor, unit, what it is). ``floor`` is the bound the value must meet.
FIGURES: dict[str, tuple[float, str, str]] = {
    "unchanged_sync_graph_requests": (1, "requests", "Graph requests of an unchanged sync"),
    "unchanged_sync_authority_requests": (0, "requests", "authority (sign-in) requests of an unchanged sync, after the process's first"),
    "unchanged_sync_storage_calls": (3, "calls", "Table/Queue Storage round trips of an unchanged sync"),
    "unchanged_sync_time_over_floor": (2, "ratio", "unchanged sync time / (1 delta GET + 1 user-row write), medians, interleaved"),
    "first_plan_singles_10x_time_ratio": (12, "ratio", "first plan time, 10,000 / 1,000 singles"),
    "first_plan_series_10x_time_ratio": (12, "ratio", "first plan time, 1,000 / 100 weekly series"),
    "writer_storage_calls_per_event": (2, "calls", "storage round trips per changed event (a new user's first round)"),
    "fanout_10000_users_s": (20, "s", "timer fan-out of 10,000 due users"),
    "tick_1000_unchanged_storage_calls_per_user": (4, "calls", "app storage calls per user, 1,000 unchanged users (timer + sync)"),
    "tick_1000_unchanged_host_cpu_ms_per_user": (15, "ms", "host CPU per user, 1,000 unchanged users (timer + sync)"),
    "cold_start_ms": (1000, "ms", "a new process importing function_app and exiting (compiled bytecode), best of 7"),
    "plan_s": (3, "s", "first plan of a busy mailbox (500 singles, 50 series)"),
    "replan_s": (3, "s", "re-plan of that mailbox once applied (nothing to do)"),
    "peak_rss_mb": (200, "MB", "peak RSS of the process that planned the busy mailbox"),
    "notification_latency_p50_s": (5, "s", "Outlook edit -> Communifire write by notification, 50 edits over 5 users, median"),
    "notification_latency_p95_s": (5, "s", "the same, 95th percentile"),
    "notification_burst_jobs_per_1000": (2, "jobs", "sync jobs for 1,000 notifications of one user, posted at once"),
}
#: Reported with no bound.
INFO_UNITS = {
    "full_round_graph_requests": "requests", "full_round_authority_requests": "requests",
    "full_round_plan_s": "s", "cold_start_cpu_ms": "ms", "unchanged_sync_ms": "ms", "floor_ms": "ms", "changes": "events",
    "fanout_cpu_s": "s", "fanout_storage_calls": "calls", "fanout_split_batches_s": "s", "fanout_split_batches": "messages", "tick_1000_unchanged_s": "s",
    "tick_1000_unchanged_host_queue_calls_per_user": "calls",
    "first_plan_singles_1k_s": "s", "first_plan_singles_10k_s": "s",
    "first_plan_series_100_s": "s", "first_plan_series_1000_s": "s", "plan_actions": "actions",
}


def cold_start(runs: int = 7) -> tuple[float, float]:
    """A new Python process that imports function_app and exits, with the bytecode
    compiled beforehand (as a deployed package has it): the best wall time of ``runs``
    (a shared machine's load only ever adds) and the median CPU time of the processes."""
    for folder in ("core", "functions"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    compileall.compile_file(str(ROOT / "function_app.py"), quiet=1)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import function_app"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        walls.append((time.perf_counter() - t0) * 1000.0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000.0)
    return min(walls), statistics.median(cpus)


def planning(mode: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.planning", mode], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure() -> dict[str, float]:
    from bench import system

    wall, cpu = cold_start()
    results: dict[str, float] = {"cold_start_ms": wall, "cold_start_cpu_ms": cpu}
    busy = planning("busy")
    results.update(plan_s=busy["busy"]["plan_s"], replan_s=busy["busy"]["replan_s"],
                   plan_actions=busy["busy"]["actions"], peak_rss_mb=busy["peak_rss_mb"])
    scale = planning("scale")
    results.update(first_plan_singles_1k_s=scale["singles_1k"], first_plan_singles_10k_s=scale["singles_10k"],
                   first_plan_series_100_s=scale["series_100"], first_plan_series_1000_s=scale["series_1000"])
    results["first_plan_singles_10x_time_ratio"] = scale["singles_10k"] / scale["singles_1k"]
    results["first_plan_series_10x_time_ratio"] = scale["series_1000"] / scale["series_100"]
    stack = system.System()
    try:
        results.update(system.single_user(stack))
        results.update(system.fanout(stack))
        results.update(system.tick(stack))
    finally:
        stack.stop()
    from bench import notifications

    results.update(notifications.measure())
    return results


def write(results: dict[str, float]) -> bool:
    doc: dict[str, dict[str, Any]] = {}
    lines = ["# Benchmark report", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {sys.platform}, Python {sys.version.split()[0]} "
             "(`make bench`; Azurite and the Outlook emulator in their own processes).", "",
             "| figure | value | bound | unit | ok | what |", "|---|---|---|---|---|---|"]
    ok_all = True
    for name, (floor, unit, what) in FIGURES.items():
        value = results[name]
        ok = value <= floor
        ok_all &= ok
        doc[name] = {"value": round(value, 4), "floor": floor, "unit": unit, "ok": ok}
        lines.append(f"| `{name}` | {value:.3g} | <= {floor:g} | {unit} | {'yes' if ok else 'NO'} | {what} |")
    lines += ["", "Also measured (no bound):", "", "| figure | value | unit |", "|---|---|---|"]
    for name, unit in INFO_UNITS.items():
        if name in results:
            doc[name] = {"value": round(results[name], 4), "floor": None, "unit": unit}
            lines.append(f"| `{name}` | {results[name]:.4g} | {unit} |")
    (ROOT / "bench" / "results.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    report = "\n".join(lines) + "\n"
    (ROOT / "bench" / "REPORT.md").write_text(report)
    print(report)
    return ok_all


def main() -> int:
    sys.path.insert(0, str(ROOT))
    return 0 if write(measure()) else 1


if __name__ == "__main__":
    sys.exit(main())
