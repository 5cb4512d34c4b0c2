"""``python -m emulator``: serve until SIGINT/SIGTERM; print one JSON line when ready."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .control_api import seed
from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulator",
                                description="Local Entra ID + Microsoft Graph calendar emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--seed", help="JSON seed file (tenants, apps, users, events)")
    args = p.parse_args(argv)
    em = EmulatorServer(args.host, args.port, args.state_dir)
    if args.seed:
        with open(args.seed, encoding="utf-8") as fh:
            data = json.load(fh)
        with em.state.lock:
            seed(em.state, data)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    em.start()
    sys.stdout.write(json.dumps({"url": em.url, "ca_bundle": em.ca_bundle}) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        em.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
