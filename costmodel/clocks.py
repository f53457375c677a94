"""Clock trees (``data/clocks.toml``): a family's RCC / PWR register layout, a board's clock facts, and the
plan that brings a board to a clock: oscillator, PLL M/N/R, prescalers, voltage level, flash wait states.

The firmware build turns a :class:`ClockPlan` into register values (``board_config.h``); the virtual board
decodes the same registers with the same layout (:class:`ClockLayout`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from .boards import Board, CatalogueError

HPRE_DIVS = {1: 0b0000, 2: 0b1000, 4: 0b1001, 8: 0b1010, 16: 0b1011, 64: 0b1100, 128: 0b1101, 256: 0b1110,
             512: 0b1111}  # RM: CFGR.HPRE
PPRE_DIVS = {1: 0b000, 2: 0b100, 4: 0b101, 8: 0b110, 16: 0b111}  # RM: CFGR.PPRE1/PPRE2/PPRE


@dataclass(frozen=True)
class Field:
    """A register field: ``[shift, bits]``; ``add`` = value - code (PLLN/PLLM encodings), [lo, hi] values."""

    shift: int
    bits: int
    add: int = 0
    lo: int = 0
    hi: int = 0

    @property
    def mask(self) -> int:
        return ((1 << self.bits) - 1) << self.shift

    def encode(self, value: int) -> int:
        code = value - self.add
        if not 0 <= code < (1 << self.bits):
            raise CatalogueError(f"value {value} does not fit a {self.bits}-bit field")
        return code << self.shift

    def decode(self, reg: int) -> int:
        return ((reg >> self.shift) & ((1 << self.bits) - 1)) + self.add


@dataclass(frozen=True)
class Oscillator:
    on: int
    rdy: int
    hz: int
    startup_us: float
    byp: int = -1
    reset_on: bool = False


@dataclass(frozen=True)
class ClockLayout:
    """RCC / PWR layout of one family, with a board's overrides applied."""

    family: str
    rcc: int
    pwr: int
    cr: int
    cfgr: int
    pllcfgr: int
    osc: dict[str, Oscillator]
    pll_on: int
    pll_rdy: int
    pll_lock_us: float
    sw: Field
    sws: Field
    sw_codes: dict[str, int]
    hpre: int
    ppre: dict[str, int]
    pll_src: Field
    pll_src_codes: dict[str, int]
    pll_src_fixed_div: dict[str, int]
    pllcfgr_reset: int
    pll_m: Field
    pll_n: Field
    pll_r: Field
    pll_r_kind: str
    pll_r_enable: int
    pll_q: Field | None
    vco_in: tuple[int, int]
    vco_out: tuple[int, int]
    uart_bus: dict[str, str]
    pwr_enable: tuple[int, int]
    voltage: dict = field(default_factory=dict)

    @property
    def reset_source(self) -> str:
        return next(name for name, o in self.osc.items() if o.reset_on)

    def r_divider(self, code: int) -> int:
        return {"2r+2": 2 * (code + 1), "r+1": code + 1, "none": 1}[self.pll_r_kind]

    def r_code(self, div: int) -> int:
        if self.pll_r_kind == "2r+2":
            return div // 2 - 1
        return div - 1 if self.pll_r_kind == "r+1" else 0

    def r_dividers(self) -> list[int]:
        if self.pll_r_kind == "none":
            return [1]
        codes = range(1 << self.pll_r.bits)
        return [self.r_divider(c) for c in codes if not (self.pll_r_kind == "r+1" and c == 0)]


@dataclass(frozen=True)
class ClockPlan:
    """How one board reaches ``hz``: PLL from ``source`` (``bypass``: an external clock on OSC_IN)."""

    board: str
    hz: int
    source: str
    bypass: bool
    source_hz: int
    m: int
    n: int
    r: int
    q: int
    hpre: int
    ppre: dict[str, int]
    level: str
    wait_states: int
    ahb_step: bool
    layout: ClockLayout
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def vco_hz(self) -> int:
        return self.source_hz // self.m * self.n

    def pclk(self, bus: str) -> int:
        return self.hz // self.hpre // self.ppre.get(bus, 1)

    def pllcfgr_fields(self) -> tuple[int, int]:
        """(mask, value) of the PLL configuration register."""
        lay = self.layout
        src = "HSE" if self.source.startswith("HSE") else self.source
        mask = lay.pll_src.mask | lay.pll_m.mask | lay.pll_n.mask | lay.pll_r.mask
        value = (lay.pll_src_codes[src] << lay.pll_src.shift) | lay.pll_n.encode(self.n)
        value |= lay.pll_m.encode(self.m) if lay.pll_m.bits else 0
        if lay.pll_r.bits:
            value |= lay.r_code(self.r) << lay.pll_r.shift
        if lay.pll_r_enable >= 0:
            mask |= 1 << lay.pll_r_enable
            value |= 1 << lay.pll_r_enable
        if lay.pll_q is not None:
            mask |= lay.pll_q.mask
            value |= lay.pll_q.encode(self.q)
        return mask, value

    def prescaler_fields(self, hpre: int | None = None) -> tuple[int, int]:
        """(mask, value) of CFGR's AHB and APB prescalers (``hpre`` overrides the AHB divider)."""
        lay = self.layout
        mask = 0xF << lay.hpre
        value = HPRE_DIVS[self.hpre if hpre is None else hpre] << lay.hpre
        for bus, shift in lay.ppre.items():
            mask |= 0x7 << shift
            value |= PPRE_DIVS[self.ppre.get(bus, 1)] << shift
        return mask, value


def _field(raw, what: str) -> Field:
    try:
        return Field(*[int(x) for x in raw])
    except (TypeError, ValueError):
        raise CatalogueError(f"clocks: {what} must be [shift, bits, add, min, max]") from None


def _layout(family: str, raw: dict) -> ClockLayout:
    try:
        osc = {k: Oscillator(on=int(v["on"]), rdy=int(v["rdy"]), hz=int(v["hz"]), startup_us=float(v["startup_us"]),
                             byp=int(v.get("byp", -1)), reset_on=bool(v.get("reset_on", False)))
               for k, v in raw["osc"].items()}
        r = raw["pll_r"]
        return ClockLayout(
            family=family, rcc=int(raw["rcc"]), pwr=int(raw["pwr"]), cr=int(raw["cr"]), cfgr=int(raw["cfgr"]),
            pllcfgr=int(raw["pllcfgr"]), osc=osc, pll_on=int(raw["pll"]["on"]), pll_rdy=int(raw["pll"]["rdy"]),
            pll_lock_us=float(raw["pll"]["lock_us"]), sw=_field(raw["sw"], "sw"), sws=_field(raw["sws"], "sws"),
            sw_codes={str(k): int(v) for k, v in raw["sw_codes"].items()}, hpre=int(raw["hpre"]),
            ppre={str(k): int(v) for k, v in raw["ppre"].items()},
            pll_src=_field(raw["pll_src"]["field"], "pll_src"),
            pll_src_codes={str(k): int(v) for k, v in raw["pll_src"]["codes"].items()},
            pll_src_fixed_div={str(k): int(v) for k, v in raw["pll_src"].get("fixed_div", {}).items()},
            pllcfgr_reset=int(raw["pllcfgr_reset"]),
            pll_m=_field(raw["pll_m"], "pll_m"), pll_n=_field(raw["pll_n"], "pll_n"),
            pll_r=Field(int(r[0]), int(r[1])), pll_r_kind=str(r[2]), pll_r_enable=int(r[3]),
            pll_q=Field(int(raw["pll_q"][0]), int(raw["pll_q"][1]), 0, int(raw["pll_q"][2]), int(raw["pll_q"][3]))
            if "pll_q" in raw else None,
            vco_in=(int(raw["vco_in"][0]), int(raw["vco_in"][1])),
            vco_out=(int(raw["vco_out"][0]), int(raw["vco_out"][1])),
            uart_bus={str(k): str(v) for k, v in raw["uart_bus"].items()},
            pwr_enable=(int(raw["pwr_enable"][0]), int(raw["pwr_enable"][1])), voltage=dict(raw["voltage"]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CatalogueError(f"clocks: family {family}: missing or bad {exc}") from None


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads(resources.files("costmodel").joinpath("data/clocks.toml").read_text())


_LAYOUT_KEYS = ("pll_m", "pll_n", "pll_r", "vco_in", "vco_out")


def clock_layout(board: Board) -> ClockLayout:
    """The RCC / PWR layout of ``board``'s family with the board's overrides (L4+ PLL, boost bit)."""
    data = _data()
    fam = data.get("families", {}).get(board.family.name)
    if fam is None:
        raise CatalogueError(f"clocks: no clock tree for family {board.family.name}")
    raw = dict(fam)
    braw = data.get("boards", {}).get(board.name, {})
    raw.update({k: braw[k] for k in _LAYOUT_KEYS if k in braw})
    if "boost" in braw:
        raw["voltage"] = {**raw["voltage"], "boost": braw["boost"]}
    return _layout(board.family.name, raw)


def clock_limits(board: Board) -> tuple[dict[str, int], list[int], dict[str, int]]:
    """(voltage_max_hz, ws_max_hz, apb_max_hz) of ``board``."""
    braw = _board_raw(board)
    return ({str(k): int(v) for k, v in braw["voltage_max_hz"].items()}, [int(x) for x in braw["ws_max_hz"]],
            {str(k): int(v) for k, v in braw["apb_max_hz"].items()})


def _board_raw(board: Board) -> dict:
    braw = _data().get("boards", {}).get(board.name)
    if braw is None:
        raise CatalogueError(f"clocks: no clock tree for board {board.name}")
    return braw


def _pll(lay: ClockLayout, source_hz: int, hz: int) -> tuple[int, int, int]:
    """M, N, R that give exactly ``hz`` within the VCO ranges; the highest VCO input (least jitter) wins."""
    best = None
    for m in range(max(1, lay.pll_m.lo), (lay.pll_m.hi or 1) + 1):
        if source_hz % m or not lay.vco_in[0] <= source_hz // m <= lay.vco_in[1]:
            continue
        fin = source_hz // m
        for r in lay.r_dividers():
            if (hz * r) % fin:
                continue
            n = hz * r // fin
            if lay.pll_n.lo <= n <= lay.pll_n.hi and lay.vco_out[0] <= fin * n <= lay.vco_out[1]:
                if best is None or fin > best[0]:
                    best = (fin, m, n, r)
    if best is None:
        raise CatalogueError(f"no PLL setting of the {lay.family} gives {hz / 1e6:g} MHz from {source_hz / 1e6:g} MHz")
    return best[1], best[2], best[3]


def clock_plan(board: Board, hz: int | None = None) -> ClockPlan:
    """How ``board`` reaches ``hz`` (default: its catalogue clock), within its range."""
    hz = board.default_clock_hz if hz is None else int(hz)
    if not board.reset_clock_hz <= hz <= board.max_clock_hz:
        raise CatalogueError(f"{board.name}: clock {hz / 1e6:g} MHz outside the board's range "
                             f"{board.reset_clock_hz / 1e6:g}-{board.max_clock_hz / 1e6:g} MHz")
    lay, braw = clock_layout(board), _board_raw(board)
    vmax, ws_max, apb_max = clock_limits(board)
    source = str(braw["source"])
    bypass = source == "HSE-BYPASS"
    osc = lay.osc["HSE" if bypass else source]
    if source in lay.pll_src_fixed_div:
        raise CatalogueError(f"{board.name}: the PLL input {source} / {lay.pll_src_fixed_div[source]} is not "
                             "supported by the plan (no M to choose)")
    m, n, r = _pll(lay, osc.hz, hz)
    q = 0
    if lay.pll_q is not None:
        vco = osc.hz // m * n
        q = max(lay.pll_q.lo, min(lay.pll_q.hi, -(-vco // 48_000_000)))
    ppre = {}
    for bus in lay.ppre:
        div = next((d for d in PPRE_DIVS if hz // d <= apb_max.get(bus, hz)), None)
        if div is None:
            raise CatalogueError(f"{board.name}: no APB prescaler keeps {bus} under {apb_max[bus]}")
        ppre[bus] = div
    level = str(braw["level"])
    if vmax.get(level, 0) < hz:
        raise CatalogueError(f"{board.name}: voltage level {level} allows {vmax.get(level, 0) / 1e6:g} MHz, "
                             f"not {hz / 1e6:g} MHz")
    ws = next((i for i, top in enumerate(ws_max) if hz <= top), None)
    if ws is None:
        raise CatalogueError(f"{board.name}: no flash wait states for {hz / 1e6:g} MHz")
    return ClockPlan(board=board.name, hz=hz, source="HSE" if bypass else source, bypass=bypass, source_hz=osc.hz,
                     m=m, n=n, r=r, q=q, hpre=1, ppre=ppre, level=level, wait_states=ws,
                     ahb_step=bool(braw.get("ahb_step", False)) and hz > 80_000_000, layout=lay,
                     sources=dict(braw.get("sources", {})))
