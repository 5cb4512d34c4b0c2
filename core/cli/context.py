"""What every command shares: the common options, where settings come from, the app.

Owns:
- the common options, accepted before or after the command name: ``-o table|json|tsv``
  (``--json`` is ``-o json``), ``--debug``, ``--local``, ``--env-file FILE``;
- settings sources: the environment, then ``local.settings.json`` (or the file named by
  ``OUTLOOK_SYNC_SETTINGS_FILE``); ``--local`` and ``--env-file`` put a file's values
  into the environment first, so they win;
- the two ways a command gets the app: ``storage_app()`` (read-only commands: only
  storage settings are needed, no client secret, no encryption key) and ``full_app()``;
- ``add_command`` (one call per command, in the command group's own module) and
  ``confirm`` (``--yes``, or a y/N question on a terminal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from core.cli.errors import CliError, usage
from core.cli.output import Output

LIST_FORMATS = ("table", "json", "tsv")
DOC_FORMATS = ("table", "json")
#: Written by ``make run`` (git-ignored): the local stack's settings, read by ``--local``.
LOCAL_RUN_DIR = Path(".local") / "run"
LOCAL_SETTINGS_NAME = "local.settings.json"
LOCAL_ENV_NAME = "outlook-sync.env"


def repo_root() -> Path:
    from core.app.bootstrap import ROOT

    return ROOT


def local_run_settings() -> Path:
    return repo_root() / LOCAL_RUN_DIR / LOCAL_SETTINGS_NAME


def add_common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """The common options; on commands they default to SUPPRESS so the top level's value stays."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    g = parser.add_argument_group("common options")
    g.add_argument("-o", "--output", choices=LIST_FORMATS, default=default(None),
                   help="output format: table (default; plain text when piped), json, tsv (lists only)")
    g.add_argument("--json", dest="output", action="store_const", const="json", default=default(None),
                   help="same as -o json")
    g.add_argument("--debug", action="store_true", default=default(False),
                   help="show the traceback of an unexpected error, and the app's log")
    g.add_argument("--local", action="store_true", default=default(False),
                   help=f"use the settings of the stack 'make run' started ({LOCAL_RUN_DIR / LOCAL_SETTINGS_NAME})")
    g.add_argument("--env-file", default=default(None), metavar="FILE",
                   help="read settings from FILE (NAME=value lines, e.g. the one 'make run' writes)")


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str,
                formats: Sequence[str] = DOC_FORMATS, description: str = "") -> argparse.ArgumentParser:
    """Add one command; ``formats`` are the ``-o`` values it supports (LIST_FORMATS for lists)."""
    p = sub.add_parser(name, help=help_, description=description or help_)
    add_common_options(p, top=False)
    p.set_defaults(func=func, formats=tuple(formats))
    return p


def add_user_option(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--user", required=required, metavar="ID", help="Communifire user id")


def add_yes_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--yes", action="store_true", help="do it without asking")


def output_for(args: argparse.Namespace) -> Output:
    fmt = getattr(args, "output", None) or "table"
    formats = getattr(args, "formats", DOC_FORMATS)
    if fmt not in formats:
        raise usage(f"-o {fmt} is not available for this command (choose from: {', '.join(formats)})")
    return Output(fmt)


# -- settings sources -----------------------------------------------------------------------


def parse_env_file(text: str, source: str = "env file") -> dict[str, str]:
    """``NAME=value`` lines (``export`` allowed, ``#`` comments, optional quotes)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "").isalnum():
            raise usage(f"{source} line {number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def apply_settings_sources(args: argparse.Namespace) -> None:
    """``--local`` / ``--env-file``: their values go into the environment (they win)."""
    values: dict[str, str] = {}
    if getattr(args, "local", False):
        path = local_run_settings()
        if not path.is_file():
            raise CliError(f"no local stack settings at {path}", hint="start one with 'make run' (in another terminal)")
        data = json.loads(path.read_text(encoding="utf-8"))
        values.update({k: str(v) for k, v in (data.get("Values") or {}).items()})
    env_file = getattr(args, "env_file", None)
    if env_file:
        try:
            text = Path(env_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise usage(f"cannot read --env-file {env_file}: {exc.strerror}") from exc
        values.update(parse_env_file(text, env_file))
    if values:
        os.environ.update(values)
        from core.app import bootstrap

        bootstrap.set_app(None)  # settings changed: build the app again from them


# -- the app -------------------------------------------------------------------------------


def full_app() -> Any:
    """The app with every setting validated (commands that reach Outlook or keys)."""
    from core.app.bootstrap import get_app

    return get_app()


def storage_app() -> Any:
    """The app for reading stored state: only the storage settings must be valid."""
    from core.app.bootstrap import storage_app as make

    return make()


# -- questions -----------------------------------------------------------------------------


def confirm(args: argparse.Namespace, action: str, question: str) -> None:
    """Go on if ``--yes`` was given or the administrator answers y; else stop (exit 2 / 1).
    ``action`` names what would be done ("disconnect user 1001"), for the refusal."""
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise usage(f"refusing to {action} without --yes (no terminal to ask)")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("nothing done", hint="")
