"""Firmware settings: the runtime variant, float ABI, optimisation level and core clock a measurement runs with.

One type and one place for the defaults: the firmware build, the measurement, validation and the
command-line tools all call :meth:`FirmwareSettings.for_board`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from costmodel.boards import Board, CatalogueError
from costmodel.clocks import clock_plan

VARIANTS = ("reference", "simd")
FLOAT_ABIS = ("hard", "soft")
OPT_LEVELS = ("-Os", "-O2", "-O3")
DEFAULT_OPT_LEVEL = "-O2"


class SettingsError(ValueError):
    """A firmware setting that does not exist, or that the board cannot run."""


@dataclass(frozen=True)
class FirmwareSettings:
    """What a firmware image is built with; ``for_board`` fills in defaults and checks the choices."""

    variant: str
    float_abi: str
    opt_level: str
    clock_hz: int = 0  # the core clock the firmware sets up; 0: the catalogue's (``clock(board)``)
    ops: tuple[str, ...] = ()  # the plan op kinds the image runs (plan.format.OP_KINDS), sorted; (): every one

    @classmethod
    def for_board(cls, board: Board, variant: str = "", float_abi: str = "", opt_level: str = "",
                  clock_hz: int = 0, ops: Iterable[str] = ()) -> FirmwareSettings:
        """Defaults: the SIMD variant where the core has the DSP extension, hard float where it has an FPU,
        ``-O2``, the catalogue clock. ``opt_level`` may be given with or without its dash (``O3``); a
        ``clock_hz`` must be one the board's clock tree reaches within its range (``costmodel.clocks``); ``ops``
        (plan op kinds such as ``CONV_S8``) selects the ops of an image that runs only those, as a deployment
        registers only its model's ops (default: every op of the runtime)."""
        variant = variant or board.runtime_variants()[-1]
        float_abi = float_abi or board.float_abis()[0]
        opt_level = opt_level or DEFAULT_OPT_LEVEL
        if not opt_level.startswith("-"):
            opt_level = "-" + opt_level
        if variant not in VARIANTS:
            raise SettingsError(f"runtime variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        if variant not in board.runtime_variants():
            raise SettingsError(
                f"runtime variant {variant!r} is not available on {board.name}: the simd variant needs the DSP "
                f"extension (Armv7E-M / Armv8-M Mainline DSP), which {board.core} lacks; "
                f"choose from {', '.join(board.runtime_variants())}")
        if float_abi not in FLOAT_ABIS:
            raise SettingsError(f"float ABI must be one of {', '.join(FLOAT_ABIS)}, not {float_abi!r}")
        if float_abi not in board.float_abis():
            raise SettingsError(f"float ABI {float_abi!r} is not available on {board.name}: hard float needs an "
                                f"FPU, which {board.core} on {board.mcu} lacks; choose from "
                                f"{', '.join(board.float_abis())}")
        if opt_level not in OPT_LEVELS:
            raise SettingsError(f"optimisation level must be one of {', '.join(OPT_LEVELS)}, not {opt_level!r}")
        clock_hz = int(clock_hz or 0)
        if clock_hz == board.default_clock_hz:
            clock_hz = 0  # one way to say the catalogue clock
        if clock_hz:
            try:
                clock_plan(board, clock_hz)
            except CatalogueError as exc:
                raise SettingsError(f"clock: {exc}") from None
        return cls(variant, float_abi, opt_level, clock_hz, op_set(ops))

    def clock(self, board: Board) -> int:
        """The core clock in Hz (latencies are cycles / this clock)."""
        return self.clock_hz or board.default_clock_hz

    def label(self) -> str:
        clock = f" @ {self.clock_hz / 1e6:g} MHz" if self.clock_hz else ""
        ops = f", ops {','.join(self.ops)}" if self.ops else ""
        return f"{self.variant} {self.float_abi}-float {self.opt_level}{clock}{ops}"


def op_set(ops: Iterable[str]) -> tuple[str, ...]:
    """Plan op kinds, checked and sorted (an image's op set); SettingsError naming an unknown one."""
    from measure_agent.plan.format import OP_KINDS

    names = sorted({str(o).strip().upper() for o in ops if str(o).strip()})
    unknown = [n for n in names if n not in OP_KINDS]
    if unknown:
        raise SettingsError(f"unknown op kind {', '.join(unknown)} (known: {', '.join(sorted(OP_KINDS))})")
    return tuple(names)
