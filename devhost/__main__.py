"""``python -m devhost``: run the function app locally, as the Functions host would.

Settings come from the environment, then ``local.settings.json`` ``Values`` (as Core
Tools does); they are validated first, and a missing or invalid one is named in one
line. ``--with-services`` runs the whole local stack instead (Azurite, the Outlook
emulator and generated settings: ``devhost.run``, what ``make run`` uses).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from devhost.services import ROOT


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--with-services" in argv:
        from devhost.run import run

        argv.remove("--with-services")
        return run(argv)
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVHOST_PORT", 7071)))
    parser.add_argument("--settings", default=str(ROOT / "local.settings.json"))
    parser.add_argument("--function-key", default=os.environ.get("DEVHOST_FUNCTION_KEY"))
    parser.add_argument("--no-timers", action="store_true", help="run timers only on demand")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from devhost.run import quiet_sdk_logging

    quiet_sdk_logging(args.debug)

    settings_path = Path(args.settings)
    values = {}
    if settings_path.is_file():
        values = json.loads(settings_path.read_text(encoding="utf-8")).get("Values") or {}
    for key, value in values.items():
        os.environ.setdefault(key, str(value))

    from core.config.settings import DEFAULT_SCHEDULE, QUEUE_SETTINGS, SettingsError, parse_settings

    try:
        settings = parse_settings({k: v for k, v in os.environ.items()}, file_exists=os.path.isfile)
    except SettingsError as exc:
        print(f"python -m devhost: settings are missing or invalid ({settings_path}"
              f"{'' if settings_path.is_file() else ': not found'}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("Run 'make run' for a local stack with generated settings, or fix them "
              "(outlook-sync doctor lists every setting).", file=sys.stderr)
        return 2
    os.environ.setdefault("SyncSchedule", DEFAULT_SCHEDULE)  # the timer binds %SyncSchedule%
    for logical, setting in QUEUE_SETTINGS.items():  # the queue triggers bind %SyncJobsQueue%...
        os.environ.setdefault(setting, settings.queue_name(logical))

    sys.path.insert(0, str(ROOT))
    import function_app  # noqa: E402 - after the settings are in the environment
    from devhost.host import LocalHost

    try:
        host = LocalHost(function_app.app, root=ROOT, environ=dict(os.environ), port=args.port,
                         function_key=args.function_key, run_timers=not args.no_timers)
    except KeyError as exc:  # a %Setting% binding expression or a connection setting is not set
        print(f"python -m devhost: {exc.args[0]} (see local.settings.example.json)", file=sys.stderr)
        return 2
    host.start()
    ready = {"url": host.url, "function_key": host.function_key,
             "functions": sorted(f.get_function_name() for f in host.functions)}
    print(json.dumps(ready), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
