"""``measure-agent``: the measurement service of a lab bench, and its client commands."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from costmodel.boards import catalogue
from costmodel.console import print_json, stdout, table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Measurement agent: boards, firmware builds, on-device latency and energy.")


@app.callback()
def _root() -> None:
    """Measurement agent for Arm Cortex-M boards, real and virtual."""


@app.command("targets")
def targets_command(
    json: Annotated[bool, typer.Option("--json", help="Print JSON (with each number's source).")] = False,
) -> None:
    """List the board catalogue."""
    boards = list(catalogue().values())
    if json:
        print_json([dataclasses.asdict(b) for b in boards])
        return
    rows = [[b.name, b.mcu, b.core, b.fpu, "yes" if b.dsp else "no", f"{b.default_clock_hz / 1e6:g} MHz",
             f"{b.flash.size // 1024} KiB", f"{b.sram.size // 1024} KiB", b.flash_wait_states, b.flash_accelerator,
             f"{b.power_mw:g} mW ({b.power_kind})", ", ".join(b.runtime_variants())] for b in boards]
    stdout.print(table("board catalogue", ["target", "MCU", "core", "FPU", "DSP", "clock", "flash", "SRAM", "WS",
                                            "accelerator", "power", "runtime variants"],
                       rows, right_align=("clock", "flash", "SRAM", "WS", "power")))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
