"""The board catalogue: targets a model can be measured on, read from ``data/boards.toml``, with the
facts of their MCU families and cores from ``data/families.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
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
class Pin:
    """A GPIO pin such as PG7: port index (A = 0) and pin number."""

    port: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Pin:
        text = str(text).upper()
        if len(text) < 3 or text[0] != "P" or not "A" <= text[1] <= "K" or not text[2:].isdigit() \
                or int(text[2:]) > 15:
            raise CatalogueError(f"{text!r} is not a pin name like PA2 or PG7")
        return cls(ord(text[1]) - ord("A"), int(text[2:]))

    def __str__(self) -> str:
        return f"P{chr(ord('A') + self.port)}{self.number}"


@dataclass(frozen=True)
class Uart:
    kind: str
    name: str
    base: int
    tx: Pin
    rx: Pin
    af: int = 0


@dataclass(frozen=True)
class Gpio:
    """GPIO register layout of a family: ``moder`` (MODER/AFR) or ``f1`` (CRL/CRH)."""

    layout: str
    base: int           # port A
    stride: int         # between ports
    rcc_enable: int     # RCC register whose bit (first_bit + port) clocks a port
    first_bit: int

    def port_base(self, port: int) -> int:
        return self.base + port * self.stride

    @property
    def bsrr_offset(self) -> int:
        """GPIOx_BSRR (bit n sets pin n, bit n + 16 resets it, one store): RM0008 9.2.5 at 0x10 on the F1,
        0x18 on the MODER layout (RM0351 8.5.7, RM0386/RM0410 GPIOx_BSRR, RM0444 7.4.7, RM0438 9.4.7)."""
        return 0x10 if self.layout == "f1" else 0x18


FLASH_STYLES = ("page-number", "sector", "page-address")


@dataclass(frozen=True)
class FlashController:
    """The FLASH controller of a family (``[families.<f>.flash_ctl]``): registers, bits, programming rules,
    times and endurance; what the firmware's programming routines and the virtual board's model follow."""

    style: str                  # page-number | sector | page-address
    base: int
    keyr: int
    sr: int
    cr: int
    ar: int                     # FLASH_AR offset (page-address style), else -1
    keys: tuple[int, int]
    program_bytes: int
    psize: int
    sr_busy: int
    sr_eop: int
    sr_errors: int
    eop_needs_eopie: bool
    cr_pg: int
    cr_erase: int
    cr_strt: int
    cr_lock: int
    cr_eopie: int
    number_shift: int
    number_mask: int
    cr_bank: int
    psize_shift: int
    acr_icrst: int
    acr_dcrst: int
    acr_dcen: int
    endurance: int
    program_us: float
    erase_ms: dict[int, float]

    def erase_ms_for(self, unit_bytes: int) -> float:
        """Erase time of one unit of ``unit_bytes`` (the listed size, else scaled from the nearest one)."""
        if unit_bytes in self.erase_ms:
            return self.erase_ms[unit_bytes]
        size, ms = min(self.erase_ms.items(), key=lambda kv: abs(kv[0] - unit_bytes))
        return ms * unit_bytes / size


@dataclass(frozen=True)
class EraseUnits:
    """``count`` consecutive flash erase units (pages or sectors) of ``bytes`` from ``base``; the first is
    erased with number ``number`` (PNB / SNB), in bank ``bank`` (0 = bank 1)."""

    base: int
    count: int
    bytes: int
    number: int
    bank: int

    @property
    def end(self) -> int:
        return self.base + self.count * self.bytes


@dataclass(frozen=True)
class Family:
    """Facts shared by the boards of one MCU family (``data/families.toml``)."""

    name: str
    flash_acr: int
    flash_acr_latency_mask: int
    accelerator_bits: dict[str, int]
    flash_fetch_bytes: int
    icache_line: int
    icache_ways: int
    dcache_line: int
    dcache_ways: int
    gpio: Gpio
    uart_clocks: dict[str, tuple[int, int]]
    icache_cr: int | None = None
    power_enable: tuple[int, int] | None = None
    vddio2: tuple[int, int] | None = None
    afio_enable: tuple[int, int] | None = None
    flash_ctl: FlashController | None = None


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
    family: Family
    cpuid: int
    power_mw: float
    power_kind: str
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    erase_units: tuple[EraseUnits, ...] = ()   # the flash's pages / sectors in address order (flash_layout)
    pyocd_target: str = ""                     # pyOCD's target type for the MCU (built-in or a CMSIS pack's)
    energy_gpio: Pin | None = None             # toggled at every layer boundary, for an energy monitor

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


GPIO_LAYOUTS = ("moder", "f1")


def _pair(raw, what: str) -> tuple[int, int]:
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, int) for v in raw)):
        raise CatalogueError(f"{what} must be [register, bit]")
    return int(raw[0]), int(raw[1])


def _flash_ctl(name: str, raw: dict | None) -> FlashController | None:
    if raw is None:
        return None
    try:
        keys = raw["keys"]
        if not (isinstance(keys, list) and len(keys) == 2):
            raise CatalogueError(f"family {name}: flash_ctl.keys must be two unlock keys")
        ctl = FlashController(
            style=str(raw["style"]), base=int(raw["base"]), keyr=int(raw["keyr"]), sr=int(raw["sr"]),
            cr=int(raw["cr"]), ar=int(raw.get("ar", -1)), keys=(int(keys[0]), int(keys[1])),
            program_bytes=int(raw["program_bytes"]), psize=int(raw.get("psize", 0)), sr_busy=int(raw["sr_busy"]),
            sr_eop=int(raw["sr_eop"]), sr_errors=int(raw["sr_errors"]), eop_needs_eopie=bool(raw["eop_needs_eopie"]),
            cr_pg=int(raw["cr_pg"]), cr_erase=int(raw["cr_erase"]), cr_strt=int(raw["cr_strt"]),
            cr_lock=int(raw["cr_lock"]), cr_eopie=int(raw["cr_eopie"]), number_shift=int(raw["number_shift"]),
            number_mask=int(raw["number_mask"]), cr_bank=int(raw["cr_bank"]), psize_shift=int(raw["psize_shift"]),
            acr_icrst=int(raw["acr_icrst"]), acr_dcrst=int(raw["acr_dcrst"]), acr_dcen=int(raw["acr_dcen"]),
            endurance=int(raw["endurance"]), program_us=float(raw["program_us"]),
            erase_ms={int(k): float(v) for k, v in raw["erase_ms"].items()})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogueError(f"family {name}: missing or malformed flash_ctl field {exc}") from None
    if ctl.style not in FLASH_STYLES:
        raise CatalogueError(f"family {name}: flash_ctl.style must be one of {', '.join(FLASH_STYLES)}")
    if ctl.program_bytes not in (2, 4, 8) or (ctl.style == "page-address") != (ctl.ar >= 0):
        raise CatalogueError(f"family {name}: flash_ctl program_bytes must be 2, 4 or 8, and ar is given for "
                             "the page-address style only")
    return ctl


def _erase_units(name: str, raw: dict | None, flash: Region) -> tuple[EraseUnits, ...]:
    if raw is None:
        return ()
    units, base = [], flash.base
    try:
        for count, size, number, bank in raw["erase_units"]:
            units.append(EraseUnits(base, int(count), int(size), int(number), int(bank)))
            base = units[-1].end
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogueError(f"board {name}: flash_layout.erase_units must be [count, bytes, number, bank] "
                             f"lists ({exc})") from None
    if base != flash.end:
        raise CatalogueError(f"board {name}: flash_layout covers {base - flash.base} bytes, flash has {flash.size}")
    return tuple(units)


def _family(name: str, raw: dict) -> Family:
    try:
        gpio = raw["gpio"]
        if gpio.get("layout") not in GPIO_LAYOUTS:
            raise CatalogueError(f"family {name}: gpio.layout must be one of {', '.join(GPIO_LAYOUTS)}")
        optional = {key: _pair(raw[key], f"family {name}: {key}") for key in ("power_enable", "vddio2", "afio_enable")
                    if key in raw}
        return Family(
            name=name, flash_acr=int(raw["flash_acr"]), flash_acr_latency_mask=int(raw["flash_acr_latency_mask"]),
            accelerator_bits={str(k): int(v) for k, v in raw["accelerator_bits"].items()},
            flash_fetch_bytes=int(raw["flash_fetch_bytes"]),
            icache_line=int(raw["icache_line"]), icache_ways=int(raw["icache_ways"]),
            dcache_line=int(raw["dcache_line"]), dcache_ways=int(raw["dcache_ways"]),
            gpio=Gpio(str(gpio["layout"]), int(gpio["base"]), int(gpio["stride"]), int(gpio["rcc_enable"]),
                      int(gpio["first_bit"])),
            uart_clocks={str(k): _pair(v, f"family {name}: uart_clocks.{k}") for k, v in raw["uart_clocks"].items()},
            icache_cr=int(raw["icache_cr"]) if "icache_cr" in raw else None,
            flash_ctl=_flash_ctl(name, raw.get("flash_ctl")), **optional)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatalogueError(f"family {name}: missing or malformed field {exc}") from None


def parse_families(text: str) -> tuple[dict[str, Family], dict[str, int]]:
    """Parse families TOML text: (families by name, CPUID by core)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"families file is not valid TOML: {exc}") from None
    cores = {}
    for core, raw in data.get("cores", {}).items():
        if core not in CORES or not isinstance(raw.get("cpuid"), int):
            raise CatalogueError(f"cores.{core}: unknown core or no integer cpuid")
        cores[core] = int(raw["cpuid"])
    return {name: _family(name, raw) for name, raw in data.get("families", {}).items()}, cores


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


def _board(name: str, raw: dict, families: dict[str, Family], cpuids: dict[str, int]) -> Board:
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
            uart=Uart(kind=str(raw["uart"]["kind"]), name=str(raw["uart"]["name"]), base=int(raw["uart"]["base"]),
                      tx=Pin.parse(raw["uart"]["tx"]), rx=Pin.parse(raw["uart"]["rx"]), af=int(raw["uart"].get("af", 0))),
            family=families[choice("family", tuple(families))],
            cpuid=cpuids[choice("core", tuple(cpuids))],
            power_mw=float(raw["power_mw"]),
            power_kind=choice("power_kind", ("measured", "datasheet")),
            sources=dict(raw.get("sources", {})),
            pyocd_target=str(raw.get("pyocd_target", "")),
            energy_gpio=Pin.parse(raw["energy_gpio"]) if "energy_gpio" in raw else None,
        )
        layout = raw.get("flash_layout")
        board = replace(board, erase_units=_erase_units(name, layout, board.flash))
        if layout and layout.get("source"):
            board.sources["flash_layout"] = str(layout["source"])
    except KeyError as exc:
        raise CatalogueError(f"board {name}: missing field {exc}") from None
    if board.uart.kind not in UART_KINDS:
        raise CatalogueError(f"board {name}: uart kind must be one of {', '.join(UART_KINDS)}")
    if board.default_clock_hz > board.max_clock_hz:
        raise CatalogueError(f"board {name}: default clock above max clock")
    if board.uart.name not in board.family.uart_clocks:
        raise CatalogueError(f"board {name}: family {board.family.name} has no clock enable for {board.uart.name}")
    if board.flash_accelerator not in ("none", *board.family.accelerator_bits):
        raise CatalogueError(f"board {name}: family {board.family.name} does not say how to enable "
                             f"the {board.flash_accelerator} accelerator")
    return board


def _data(name: str) -> str:
    return resources.files("costmodel").joinpath(f"data/{name}").read_text()


def parse_catalogue(text: str, families_text: str | None = None) -> dict[str, Board]:
    """Parse catalogue TOML text into boards by name (families from ``families_text``, default the shipped file)."""
    families, cpuids = parse_families(families_text if families_text is not None else _data("families.toml"))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"catalogue is not valid TOML: {exc}") from None
    return {name: _board(name, raw, families, cpuids) for name, raw in data.get("boards", {}).items()}


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Board]:
    """The shipped board catalogue."""
    return parse_catalogue(_data("boards.toml"))


def get_board(name: str) -> Board:
    """Look a board up by name (case-insensitive)."""
    boards = catalogue()
    for key, board in boards.items():
        if key.lower() == name.lower():
            return board
    raise CatalogueError(f"unknown target {name!r}; known: {', '.join(boards)}")
