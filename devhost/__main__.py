"""``python -m devhost``: run the function app locally, as the Functions host would.

Settings come from the environment, then ``local.settings.json`` ``Values`` (as Core
Tools does). ``--with-services`` also starts Azurite and the Outlook emulator and points
the settings at them (what ``make run`` uses).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from devhost.host import LocalHost
from devhost.services import ROOT, Azurite, EmulatorProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVHOST_PORT", 7071)))
    parser.add_argument("--settings", default=str(ROOT / "local.settings.json"))
    parser.add_argument("--function-key", default=os.environ.get("DEVHOST_FUNCTION_KEY"))
    parser.add_argument("--no-timers", action="store_true", help="run timers only on demand")
    parser.add_argument("--with-services", action="store_true", help="also start Azurite and the Outlook emulator")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    settings_path = Path(args.settings)
    values = {}
    if settings_path.is_file():
        values = json.loads(settings_path.read_text(encoding="utf-8")).get("Values") or {}
    for key, value in values.items():
        os.environ.setdefault(key, str(value))

    services: list = []
    if args.with_services:
        azurite = Azurite().start()
        services.append(azurite)
        emulator = EmulatorProcess().start(seed=os.environ.get("EMULATOR_SEED"))
        services.append(emulator)
        os.environ["AzureWebJobsStorage"] = azurite.connection_string
        os.environ["GraphApiBaseUrl"] = f"{emulator.url}/v1.0"
        os.environ["AuthorityHost"] = emulator.url
        os.environ["TlsCaBundle"] = emulator.ca_bundle

    sys.path.insert(0, str(ROOT))
    import function_app  # noqa: E402 - after the settings are in the environment

    host = LocalHost(function_app.app, root=ROOT, environ=dict(os.environ), port=args.port,
                     function_key=args.function_key, run_timers=not args.no_timers)
    host.start()
    ready = {"url": host.url, "function_key": host.function_key,
             "functions": sorted(f.get_function_name() for f in host.functions)}
    if args.with_services:
        ready["emulator"] = os.environ["AuthorityHost"]
    print(json.dumps(ready), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    host.stop()
    for svc in reversed(services):
        svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
