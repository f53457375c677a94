"""The board catalogue: targets a model can be measured on, read from ``data/boards.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

CORES = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")
FPUS = ("none", "sp", "dp")
ACCELERATORS = ("none", "prefetch", "art", "cache")
UART_KINDS = ("stm32-usart-v1", "stm32-usart-v2")


@dataclass(frozen=True)
class Region:
    """A memory region: base address and size in bytes."""

    base: int
    size: int
    name: str = ""
    instructions: bool = True

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int) -> bool:
        return self.base <= address < self.end


@dataclass(frozen=True)
class Uart:
    kind: str
    name: str
    base: int


@dataclass(frozen=True)
class Board:
    """One catalogue target. ``sources`` maps a field name to where its number comes from."""

    name: str
    mcu: str
    core: str
    fpu: str
    dsp: bool
    max_clock_hz: int
    default_clock_hz: int
    reset_clock_hz: int
    flash: Region
    sram: Region
    tcm: tuple[Region, ...]
    flash_wait_states: int
    flash_accelerator: str
    icache_bytes: int
    dcache_bytes: int
    uart: Uart
    power_mw: float
    power_kind: str
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def simd(self) -> bool:
        """Whether the Armv7E-M SIMD runtime variant can run on this core."""
        return self.dsp

    def runtime_variants(self) -> tuple[str, ...]:
        return ("reference", "simd") if self.simd else ("reference",)

    def float_abis(self) -> tuple[str, ...]:
        return ("hard", "soft") if self.fpu != "none" else ("soft",)

    def cycles_to_seconds(self, cycles: int | float) -> float:
        return cycles / self.default_clock_hz

    def energy_joules(self, cycles: int | float) -> float:
        """Energy of ``cycles`` under the board's power model (power x time)."""
        return self.power_mw * 1e-3 * self.cycles_to_seconds(cycles)


class CatalogueError(ValueError):
    """The catalogue file is malformed, or a board name is unknown."""


def _region(raw: dict, what: str) -> Region:
    try:
        return Region(
            base=int(raw["base"]),
            size=int(raw["size"]),
            name=str(raw.get("name", what)),
            instructions=bool(raw.get("instructions", True)),
        )
    except (KeyError, TypeError) as exc:
        raise CatalogueError(f"{what}: needs base and size ({exc})") from None


def _board(name: str, raw: dict) -> Board:
    def choice(key: str, allowed: tuple[str, ...]) -> str:
        value = raw.get(key)
        if value not in allowed:
            raise CatalogueError(f"board {name}: {key} must be one of {', '.join(allowed)}, not {value!r}")
        return value

    try:
        board = Board(
            name=name,
            mcu=str(raw["mcu"]),
            core=choice("core", CORES),
            fpu=choice("fpu", FPUS),
            dsp=bool(raw["dsp"]),
            max_clock_hz=int(raw["max_clock_hz"]),
            default_clock_hz=int(raw["default_clock_hz"]),
            reset_clock_hz=int(raw["reset_clock_hz"]),
            flash=_region(raw["flash"], "flash"),
            sram=_region(raw["sram"], "sram"),
            tcm=tuple(_region(t, t.get("name", "tcm")) for t in raw.get("tcm", [])),
            flash_wait_states=int(raw["flash_wait_states"]),
            flash_accelerator=choice("flash_accelerator", ACCELERATORS),
            icache_bytes=int(raw["icache_bytes"]),
            dcache_bytes=int(raw["dcache_bytes"]),
            uart=Uart(kind=str(raw["uart"]["kind"]), name=str(raw["uart"]["name"]), base=int(raw["uart"]["base"])),
            power_mw=float(raw["power_mw"]),
            power_kind=choice("power_kind", ("measured", "datasheet")),
            sources=dict(raw.get("sources", {})),
        )
    except KeyError as exc:
        raise CatalogueError(f"board {name}: missing field {exc}") from None
    if board.uart.kind not in UART_KINDS:
        raise CatalogueError(f"board {name}: uart kind must be one of {', '.join(UART_KINDS)}")
    if board.default_clock_hz > board.max_clock_hz:
        raise CatalogueError(f"board {name}: default clock above max clock")
    return board


def parse_catalogue(text: str) -> dict[str, Board]:
    """Parse catalogue TOML text into boards by name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"catalogue is not valid TOML: {exc}") from None
    return {name: _board(name, raw) for name, raw in data.get("boards", {}).items()}


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Board]:
    """The shipped board catalogue."""
    text = resources.files("costmodel").joinpath("data/boards.toml").read_text()
    return parse_catalogue(text)


def get_board(name: str) -> Board:
    """Look a board up by name (case-insensitive)."""
    boards = catalogue()
    for key, board in boards.items():
        if key.lower() == name.lower():
            return board
    raise CatalogueError(f"unknown target {name!r}; known: {', '.join(boards)}")
