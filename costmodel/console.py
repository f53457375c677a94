"""Console output shared by the command-line tools: tables for people, JSON for machines, clean errors."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_USAGE = 2
EXIT_INTERNAL = 3
#: every JSON document the command-line tools print or save carries this ``schema_version``
JSON_SCHEMA_VERSION = 1


def _stdout_width() -> int | None:
    """The terminal's width; piped output is read by people in logs and CI too, so it is not squeezed to
    80 columns there: $COLUMNS when set, else 160."""
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else 160


stdout = Console(highlight=False, width=_stdout_width())
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """An error to report to the user in one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def error_line(message: object) -> None:
    """Print ``error: <message>`` on stderr as one line (the message is text, never console markup)."""
    text = " ".join(str(message).split()) or type(message).__name__
    stderr.print(f"[bold red]error:[/] {escape(text)}", markup=True)


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the given exception kinds (and CliError) into a one-line error and an exit code."""
    try:
        yield
    except CliError as exc:
        error_line(exc)
        raise SystemExit(exc.code) from None
    except kinds as exc:
        error_line(exc)
        raise SystemExit(EXIT_USAGE) from None


def run_app(app) -> None:
    """Run a typer app: an exception no command expected is one line and exit code 3, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        error_line("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001
        error_line(f"internal error: {type(exc).__name__}: {exc}")
        raise SystemExit(EXIT_INTERNAL) from None


@contextmanager
def working(message: str) -> Iterator[None]:
    """Say what a slow step is doing: a spinner on a terminal, one line otherwise."""
    if stderr.is_terminal:
        with stderr.status(escape(message)):
            yield
    else:
        stderr.print(escape(message), markup=True)
        yield


def versioned(data: dict) -> dict:
    """``data`` with the JSON schema version first."""
    return {"schema_version": JSON_SCHEMA_VERSION, **data}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dict__"):
        return vars(value)
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          right_align: Sequence[str] = (), console: Console | None = None, wrap: Sequence[str] = ()) -> Table:
    """A rich table that fits the console's width (``stdout`` by default): columns named in ``right_align``
    are numeric and never shortened; when the table is too wide it drops its vertical lines, then text
    columns are shortened with an ellipsis, except those named in ``wrap``, which wrap onto more lines."""
    console = console or stdout
    cells = [[str(v) for v in row] for row in rows]

    def build(compact: bool) -> Table:
        t = Table(title=title, title_justify="left", header_style="bold",
                  **({"box": box.SIMPLE_HEAD, "padding": (0, 0), "show_edge": False} if compact else {}))
        for i, col in enumerate(columns):
            if col in right_align:
                widest = max([len(col)] + [len(row[i]) for row in cells if i < len(row)])
                t.add_column(col, justify="right", no_wrap=True, min_width=widest)
            elif col in wrap:
                t.add_column(col, justify="left", overflow="fold", min_width=min(len(col), 8))
            else:
                t.add_column(col, justify="left", overflow="ellipsis", no_wrap=True, min_width=min(len(col), 8))
        for row in cells:
            t.add_row(*row)
        return t

    def records() -> Table:  # one block of "column value" lines per row: what still fits a narrow terminal
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_header=False, show_edge=False,
                  padding=(0, 1, 0, 0))
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
        for row in cells:
            for col, value in zip(columns, row):
                t.add_row(col or "-", value)
            t.add_section()
        return t

    wide = Console(width=100_000)
    t = build(False)
    if wide.measure(t).maximum > console.width:
        t = build(True)
        if sum(c.min_width or 0 for c in t.columns) + len(columns) > console.width:
            t = records()
    return t


def human_bytes(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def thousands(n: int | float) -> str:
    return f"{n:,.0f}"
