"""How every command prints: ``-o table`` for people, ``-o json`` / ``-o tsv`` for scripts.

Owns: the output formats and their rules, so each command only says *what* to show.

- ``table`` on a terminal: a rich table whose cells wrap (ids and addresses are folded
  onto the next line, never cut with "..."), so every id can be copied whole.
- ``table`` into a pipe or a file: plain aligned text, no box drawing, no colour, no
  width limit (``grep``, ``less -S`` and ``cut`` work on it).
- ``json``: one JSON document on stdout (the shapes in README/docs are stable).
- ``tsv`` (lists only): a header line of field names, then one line per row, tab-separated;
  tabs and newlines inside values become spaces.

Notes (warnings, "held" explanations) go to stdout with a table and to stderr with
json/tsv, so a script's stdout holds only data. Progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence, TextIO

FORMATS = ("table", "json", "tsv")


@dataclass(frozen=True)
class Column:
    """One column: ``key`` in each row dict (and the tsv header), ``heading`` in tables."""

    key: str
    heading: str = ""
    #: style on a terminal (rich markup style), e.g. "bold"
    style: str = ""
    #: an id or address: on a terminal it keeps its full width when it can, and other
    #: columns wrap first (it still folds, never cuts, when the terminal is too narrow)
    whole: bool = False

    @property
    def title(self) -> str:
        return self.heading or self.key.replace("_", " ")


def cols(*specs: str | Column) -> list[Column]:
    """``cols("user_id:user", "state", "id!")`` -> columns (``key:heading``; a trailing
    ``!`` marks an id kept whole when the terminal allows)."""
    out = []
    for spec in specs:
        if isinstance(spec, Column):
            out.append(spec)
        else:
            whole = spec.endswith("!")
            key, _, heading = spec.rstrip("!").partition(":")
            out.append(Column(key, heading, whole=whole))
    return out


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


@dataclass
class Output:
    """Where and how a command prints; built once from the common options."""

    fmt: str = "table"
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    @property
    def machine(self) -> bool:
        return self.fmt in ("json", "tsv")

    # -- documents ---------------------------------------------------------------------

    def json(self, data: Any) -> None:
        self.stream.write(json.dumps(data, indent=2, default=str) + "\n")
        self.stream.flush()

    def listing(self, title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]], doc: Any = None,
                notes: Iterable[str] = ()) -> None:
        """A list: a table, the JSON ``doc`` (default ``{"items": rows}``), or TSV rows."""
        if self.fmt == "json":
            self.json(doc if doc is not None else {"items": list(rows)})
        elif self.fmt == "tsv":
            self.stream.write("\t".join(c.key for c in columns) + "\n")
            for row in rows:
                self.stream.write("\t".join(_tsv_cell(row.get(c.key)) for c in columns) + "\n")
            self.stream.flush()
        else:
            self.table(title, columns, rows)
        for note in notes:
            self.note(note)

    def record(self, title: str, doc: dict[str, Any], fields: Sequence[Column] | None = None,
               notes: Iterable[str] = ()) -> None:
        """One object: ``field  value`` lines, or the JSON ``doc``."""
        fields = list(fields or cols(*doc))
        if self.fmt == "json":
            self.json(doc)
        elif self.fmt == "tsv":
            for c in fields:
                self.stream.write(f"{c.key}\t{_tsv_cell(doc.get(c.key))}\n")
        else:
            self.table(title, cols("field", "value"), [{"field": c.title, "value": doc.get(c.key)} for c in fields])
        for note in notes:
            self.note(note)

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
        if self.tty and _has_rich():
            self._rich_table(title, columns, rows)
        else:
            self._plain_table(title, columns, rows)

    def _rich_table(self, title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # no vertical rules: a wrapped id can be selected and copied without box characters
        console = Console(file=self.stream, highlight=False, soft_wrap=False)
        table = Table(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD)
        texts = [[cell(row.get(c.key)) for c in columns] for row in rows]
        widest = [max([len(c.title)] + [len(t[i]) for t in texts]) for i, c in enumerate(columns)]
        # Ids and addresses keep their whole width when the other columns can still have a
        # few characters each: those get a max width (they wrap). No column gets a min
        # width, so rich never crops a line; at worst everything folds, nothing is cut.
        caps: list[int | None] = [None] * len(columns)
        others = [i for i, c in enumerate(columns) if not c.whole]
        room = console.width - 3 * len(columns) - 2 - sum(w for c, w in zip(columns, widest, strict=True) if c.whole)
        natural = sum(widest[i] for i in others)
        if others and natural > room >= 8 * len(others):
            for i in others:
                caps[i] = min(widest[i], max(8, room * widest[i] // natural))
            while sum(caps[i] or 0 for i in others) > room:  # the 8-character floor overshot
                widest_cap = max(others, key=lambda i: caps[i] or 0)
                caps[widest_cap] = (caps[widest_cap] or 0) - 1
        for c, cap in zip(columns, caps, strict=True):
            # fold: a long value wraps onto the next line whole, it is never cut with an ellipsis
            table.add_column(c.title, overflow="fold", style=c.style or None, max_width=cap)
        for t in texts:
            table.add_row(*(Text(v) for v in t))
        console.print(table)

    def _plain_table(self, title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
        grid = [[c.title for c in columns]] + [[cell(row.get(c.key)).replace("\n", " ") for c in columns]
                                                for row in rows]
        widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
        lines = [title] if title else []
        for line in grid:
            lines.append("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip())
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    # -- words -------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A result line for people (stdout); json/tsv callers print a document instead."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A remark about the result: stdout with a table, stderr with json/tsv."""
        target = self.err if self.machine else self.stream
        target.write(text + "\n")
        target.flush()

    def progress(self, text: str) -> None:
        """Progress of a long command, always on stderr."""
        self.err.write(text + "\n")
        self.err.flush()


def _has_rich() -> bool:
    """rich draws terminal tables; without it (a slim install) tables are plain text."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def short_time(iso_time: str | None) -> str:
    """``2026-12-01T10:15:00Z`` -> ``2026-12-01 10:15`` (UTC)."""
    return iso_time.replace("T", " ")[:16] if iso_time else "-"
