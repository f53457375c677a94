"""Console output shared by the command-line tools: tables for people, JSON for machines, clean errors."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from rich.console import Console
from rich.table import Table

EXIT_USAGE = 2

# Piped output is read by people in logs and CI too: do not squeeze tables to 80 columns there.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """An error to report to the user in one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the given exception kinds (and CliError) into a one-line error and an exit code."""
    try:
        yield
    except CliError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", markup=True)
        raise SystemExit(exc.code) from None
    except kinds as exc:
        stderr.print(f"[bold red]error:[/] {exc}", markup=True)
        raise SystemExit(EXIT_USAGE) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dict__"):
        return vars(value)
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          right_align: Sequence[str] = ()) -> Table:
    """A rich table; columns named in ``right_align`` are numeric."""
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col, justify="right" if col in right_align else "left")
    for row in rows:
        t.add_row(*(str(v) for v in row))
    return t


def human_bytes(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def thousands(n: int | float) -> str:
    return f"{n:,.0f}"
