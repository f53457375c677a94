"""``nas``: architecture searches measured on (virtual) boards."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Neural architecture search by on-device latency and energy.")


@app.callback()
def _root() -> None:
    """Neural architecture search for Arm Cortex-M."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
