"""Firmware settings: the runtime variant, float ABI and optimisation level a measurement runs with.

One type and one place for the defaults: the firmware build, the measurement, validation and the
command-line tools all call :meth:`FirmwareSettings.for_board`.
"""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.boards import Board

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

    @classmethod
    def for_board(cls, board: Board, variant: str = "", float_abi: str = "", opt_level: str = "") -> FirmwareSettings:
        """Defaults: the SIMD variant where the core has the DSP extension, hard float where it has an FPU,
        ``-O2``. ``opt_level`` may be given with or without its dash (``O3``)."""
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
        return cls(variant, float_abi, opt_level)

    def label(self) -> str:
        return f"{self.variant} {self.float_abi}-float {self.opt_level}"
