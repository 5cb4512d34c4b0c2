"""``outlook-sync`` / ``python -m core.cli``: the administrator's command line.

Owns: the parser (common options, ``--version``, one ``register(sub)`` per command
module) and the one top-level error handler: whatever goes wrong ends as one line on
stderr and a documented exit code (``core.cli.errors``); a traceback only with
``--debug``. Each command group lives in its own module:

=================  ==========================================================
``doctor``         core/cli/doctor.py
``users``          core/cli/users.py (also ``disconnect``)
``sync``           core/cli/sync.py (also ``plan``, ``confirm``)
``calendar``       core/cli/calendar.py (also ``audit``)
``keygen``         core/cli/keys.py (also ``rotate-key``)
``enqueue``        core/cli/outbound.py (also ``poison list|replay``)
``notifications``  core/cli/notifications.py
=================  ==========================================================

A new command: a module with ``register(sub)`` that calls ``context.add_command``, gets
its output from ``context.output_for(args)`` (``Output.listing`` / ``record`` / ``say``)
and its app from ``context.storage_app()`` (reads only) or ``context.full_app()``, and
raises ``errors.CliError`` to stop; then one line in ``COMMAND_MODULES`` below.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import Sequence

from core.cli.calendar import load_calendar, print_calendar  # noqa: F401 - used by devhost and tests
from core.cli.context import add_common_options, apply_settings_sources, output_for
from core.cli.errors import (  # noqa: F401 - re-exported: the exit codes
    EXIT_ATTENTION, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError, describe,
)

PROG = "outlook-sync"
COMMAND_MODULES = (
    "core.cli.doctor",
    "core.cli.users",
    "core.cli.sync",
    "core.cli.calendar",
    "core.cli.keys",
    "core.cli.outbound",
    "core.cli.notifications",
    "core.cli.changes",
)

EPILOG = """exit codes: 0 all well; 1 a check or an operation failed, or an unknown user;
2 bad usage, invalid input or invalid settings; 3 attention needed (a sync held for
confirmation, a user who must reconnect); 130 interrupted (Ctrl-C).
settings: the environment, then local.settings.json; --local uses the stack of 'make run'."""


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("outlook-sync-communifire")
    except PackageNotFoundError:
        return "unknown (not installed: run 'make setup')"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line plus a pointer to --help (not the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(message, 2, f"see '{self.prog} --help'")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Outlook Sync for Communifire: administration", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    add_common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (as logging's last resort does)."""

    marker = "outlook-sync-cli"

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _configure_logging(debug: bool) -> None:
    """The app's own warnings reach stderr as one short line; ``--debug`` shows its INFO log.
    Library HTTP logging stays at WARNING either way (it is long and says nothing new)."""
    from core.adapters.logs import quiet_libraries

    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if getattr(h, "marker", "") != _StderrHandler.marker]
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if debug else "warning: %(message)s"))
    handler.setLevel(logging.INFO if debug else logging.WARNING)
    root.addHandler(handler)
    if debug and root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    logging.getLogger("azure").setLevel(logging.WARNING)
    quiet_libraries()


def _silence_stdout() -> None:
    """After a closed pipe (``| head``): drop what is left so Python's exit flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except Exception:  # noqa: BLE001 - stdout may not even be a file
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; always returns an exit code (never raises, never a traceback
    unless ``--debug``)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        debug = bool(getattr(args, "debug", False))
        _configure_logging(debug)
        apply_settings_sources(args)
        output_for(args)  # an -o value the command does not offer is bad usage, before any work
        return int(args.func(args))
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()  # the reader (head, less) has all it wanted: not an error
        return EXIT_OK
    except BaseException as exc:  # noqa: BLE001 - the one place every error becomes a line and a code
        found = describe(exc)
        if debug and not isinstance(exc, KeyboardInterrupt):
            traceback.print_exc(file=sys.stderr)
        try:
            sys.stderr.write(f"{PROG}: error: {found.message}\n" if found.code != EXIT_INTERRUPTED
                             else f"{PROG}: {found.message}\n")
            if found.hint:
                sys.stderr.write(f"  {found.hint}\n")
            sys.stderr.flush()
        except (BrokenPipeError, OSError):
            pass
        return found.code


if __name__ == "__main__":
    sys.exit(main())
