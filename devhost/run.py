"""``make run``: the whole app on this machine, from a fresh clone, until Ctrl-C.

Starts Azurite (Table and Queue Storage) and the Outlook emulator (Graph + Entra ID),
registers the emulator's tenant, app registration and three mailboxes (through its
control API, as the demo and the tests do), generates the app's settings exactly as
``make demo`` does (``devhost.stack.Stack``), writes them to a git-ignored file for the
CLI, connects Communifire user 1001 to alice@contoso.com, and runs the function app on
the local host (HTTP on 127.0.0.1:7071, the timer on ``SyncSchedule``, the queue
triggers). Prints where everything listens and how to point ``outlook-sync`` at it.

Whatever ends it (Ctrl-C, SIGTERM, the terminal closing, an error while starting), it
stops everything it started and removes the settings files it wrote.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from devhost.services import ROOT, Azurite

#: Where the CLI's ``--local`` finds the settings (``.local/`` is git-ignored); tests pass
#: their own ``--run-dir``. The file names match ``core.cli.context``.
RUN_DIR = ROOT / ".local" / "run"
SETTINGS_NAME = "local.settings.json"
ENV_NAME = "outlook-sync.env"
MAILBOXES = (("alice@contoso.com", "Alice Example"), ("bob@contoso.com", "Bob Example"),
             ("carol@contoso.com", "Carol Example"))


def quiet_sdk_logging(debug: bool = False) -> None:
    """App INFO lines, one per line; the Azure SDK's HTTP logging (hundreds of lines per
    poll) and MSAL stay at WARNING."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("azure", "msal", "urllib3", "devhost.http"):
        logging.getLogger(name).setLevel(logging.WARNING)


def write_settings(run_dir: Path, environ: dict[str, str], function_key: str, host_url: str) -> None:
    """The generated settings, for the CLI: local.settings.json form and NAME=value form."""
    run_dir.mkdir(parents=True, exist_ok=True)
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", **environ}
    for path, text in (
        (run_dir / SETTINGS_NAME, json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n"),
        (run_dir / ENV_NAME, "# Written by 'make run' for this run only; removed when it stops.\n"
                             f"# outlook-sync --env-file {_shown(run_dir / ENV_NAME)} ...   "
                             f"or   set -a; . {_shown(run_dir / ENV_NAME)}; set +a\n"
                             + "".join(f"{k}='{v}'\n" for k, v in values.items())
                             + f"DEVHOST_URL='{host_url}'\nDEVHOST_FUNCTION_KEY='{function_key}'\n"),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets: owner only
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)


def remove_settings(run_dir: Path) -> None:
    for path in (run_dir / SETTINGS_NAME, run_dir / ENV_NAME):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _shown(path: Path) -> str:
    """A path as the administrator types it: relative to the checkout when inside it."""
    try:
        return "./" + str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def banner(stack: Any, azurite: Azurite, connected: str, run_dir: Path = RUN_DIR) -> str:
    """What listens where and how to use it (secrets masked; the file has them)."""
    from core.config.settings import mask

    key = stack.host.function_key
    url = stack.host.url
    settings_file, env_file = _shown(run_dir / SETTINGS_NAME), _shown(run_dir / ENV_NAME)
    local = "--local" if run_dir == RUN_DIR else f"--env-file {env_file}"
    lines = [
        "Outlook Sync for Communifire: local stack (make run)",
        "",
        f"  function app      {url}  (function key: {key})",
        f"  Azurite           table http://127.0.0.1:{azurite.ports['table']}  queue http://127.0.0.1:{azurite.ports['queue']}"
        f"  blob http://127.0.0.1:{azurite.ports['blob']}  (account devstoreaccount1)",
        f"  Outlook emulator  {stack.emulator.url}  (Graph {stack.emulator.url}/v1.0, Entra ID sign-in; "
        f"CA certificate {stack.emulator.ca_bundle})",
        f"  tenant            Contoso {stack.tenant_id}, app registration {stack.client_id}",
        f"  mailboxes         {', '.join(upn for upn, _ in MAILBOXES)}",
        f"  connected         {connected}",
        f"  timer             sync_timer on SyncSchedule '{stack.environ['SyncSchedule']}' (UTC); run it now:",
        f"                    curl -X POST '{url}/admin/functions/sync_timer?code={key}'",
        "",
        f"Settings (generated, as for make demo; full values in {settings_file} and {env_file}):",
    ]
    lines += [f"  {name:<26} {mask(name, value)}" for name, value in stack.environ.items()]
    lines += [
        "",
        "Point the CLI at it (another terminal):",
        f"  .venv/bin/outlook-sync {local} users",
        f"  .venv/bin/outlook-sync --env-file {env_file} calendar --user 1001",
        f"  set -a; . {env_file}; set +a; .venv/bin/outlook-sync doctor",
        "Connect another Communifire user (open in a browser; upn is the account the link is bound to;",
        "the emulator's certificate is its own: accept it, or trust the CA certificate above):",
        f"  {url}/oauth2/outlook/connect?user=1002&upn={MAILBOXES[1][0]}&redirect=1&code={key}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def run(argv: list[str] | None = None, ready: Callable[[Any], None] | None = None,
        stop: threading.Event | None = None) -> int:
    """Run until ``stop`` is set (by SIGINT/SIGTERM/SIGHUP); ``ready`` gets the stack once up."""
    from devhost.stack import Stack

    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVHOST_PORT", 7071)))
    parser.add_argument("--debug", action="store_true", help="DEBUG logging (the Azure SDK's stays at WARNING)")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR,
                        help=f"where to write the generated settings for the CLI (default {_shown(RUN_DIR)})")
    args = parser.parse_args(argv)
    quiet_sdk_logging(args.debug)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
    azurite = stack = None
    with tempfile.TemporaryDirectory(prefix="make-run-") as tmp:
        try:
            azurite = Azurite().start()
            stack = Stack(connection_string=azurite.connection_string, state_dir=Path(tmp) / "emulator",
                          port=args.port, function_key=os.environ.get("DEVHOST_FUNCTION_KEY"), run_timers=True)
            stack.start()
            for upn, name in MAILBOXES:
                stack.add_user(upn, name)
            page = stack.connect("1001", MAILBOXES[0][0])
            connected = (f"Communifire user 1001 -> {MAILBOXES[0][0]}" if page.status_code == 200
                         else f"(connecting user 1001 failed: HTTP {page.status_code})")
            write_settings(args.run_dir, stack.environ, stack.host.function_key, stack.host.url)
            print(banner(stack, azurite, connected, args.run_dir), flush=True)
            if ready:
                ready(stack)
            stop.wait()
            print("stopping...", flush=True)
            return 0
        except Exception as exc:  # noqa: BLE001 - one clear line; everything started is stopped below
            if args.debug:
                raise
            if isinstance(exc, OSError) and exc.errno == 98:
                reason = f"port {args.port} is in use (another 'make run'?); try: DEVHOST_PORT=7072 make run"
            else:
                reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            print(f"make run: could not start: {reason} (run with --debug for the traceback)", file=sys.stderr)
            return 1
        finally:
            remove_settings(args.run_dir)
            if stack is not None and hasattr(stack, "host"):
                stack.close()
            elif stack is not None and hasattr(stack, "emulator"):
                stack.emulator.stop()
            if azurite is not None:
                azurite.stop()


if __name__ == "__main__":
    sys.exit(run())
