"""Peripheral models of the virtual board and the flash array that outlives a reset.

* :class:`FlashMemory` is the board's flash as a chip keeps it: contents (erased = 0xFF), which programming
  units have been written since their erase (the ECC rule of the L4/G0/L5 parts) and how often each erase
  unit was erased. A :class:`~measure_agent.vboard.VirtualBoard` given the same ``FlashMemory`` finds what
  an earlier firmware programmed (plans in flash slots, their erase counters), across resets and firmware
  loads, as a real board does; loading an ELF writes only the units its segments cover, as a flasher does.
* :class:`Peripherals` builds the native peripheral pages (``native/periph.c``) of a board: the FLASH
  controller (``native/flashctl.c``, from the family's ``flash_ctl`` and the board's ``flash_layout`` in the
  catalogue), the energy pin (``native/gpio.c``: the BSRR of the catalogue's ``energy_gpio`` port, recording
  the pin's edges with their core cycle) and the clock tree (``native/clock.c``: RCC and PWR, from
  ``costmodel/data/clocks.toml``), each attached to its 4 KB page (:meth:`Peripherals.pages`; the F4/F7's
  RCC shares the FLASH page).

Times: the datasheet's programming / erase times are given to the FLASH model in core cycles at the reset
clock; the model scales them to the clock that runs (HCLK from the clock tree).
"""

from __future__ import annotations

import ctypes
import mmap

from costmodel.boards import Board, CatalogueError
from costmodel.clocks import clock_layout, clock_limits

try:
    from . import _cyclemodel as _cm
except ImportError:  # pragma: no cover - board.py reports the missing extension
    _cm = None

FLASH_BLOCK_BYTES = 0x400  # the FLASH register block of every family in the catalogue
CLOCK_BLOCK_BYTES = 0x400  # the RCC and the PWR register blocks
_R_KINDS = {"none": 0, "2r+2": 1, "r+1": 2}


def _page_up(n: int) -> int:
    return (n + 0xFFF) & ~0xFFF


def _mask(bit: int) -> int:
    return 1 << bit if bit >= 0 else 0


class FlashMemory:
    """The flash array of one board (see the module docstring)."""

    def __init__(self, board: Board):
        self.board = board
        self.size = _page_up(board.flash.size)
        self.buf = mmap.mmap(-1, self.size)
        self.buf.write(b"\xff" * self.size)
        self.buf.seek(0)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        ctl = board.family.flash_ctl
        self.program_bytes = ctl.program_bytes if ctl else 8
        self.ecc = bool(ctl and ctl.style == "page-number")
        self._programmed = (ctypes.c_uint8 * (self.size // self.program_bytes))()
        self.units: list[tuple[int, int, int, int]] = [
            (g.base + i * g.bytes, g.bytes, g.number + i, g.bank) for g in board.erase_units for i in range(g.count)]
        self._counts = (ctypes.c_uint32 * max(1, len(self.units)))()

    @property
    def programmed_address(self) -> int:
        """The ECC map (one byte per programming unit) for the native model; 0 where there is no ECC rule."""
        return ctypes.addressof(self._programmed) if self.ecc else 0

    @property
    def counts_address(self) -> int:
        return ctypes.addressof(self._counts)

    def erase_count(self, address: int) -> int:
        """Erases of the erase unit at ``address`` the model has performed."""
        for i, (base, size, _n, _b) in enumerate(self.units):
            if base <= address < base + size:
                return int(self._counts[i])
        raise ValueError(f"0x{address:08x} is not in the flash")

    @property
    def erases(self) -> int:
        return sum(int(c) for c in self._counts[:len(self.units)])

    def read(self, address: int, n: int) -> bytes:
        off = address - self.board.flash.base
        return bytes(self.buf[off:off + n])

    def load(self, segments: list[tuple[int, bytes]]) -> None:
        """Write an image's ``(address, data)`` segments as a flasher does: erase every unit they cover,
        then program them."""
        base, pb = self.board.flash.base, self.program_bytes
        units = self.units or [(base, self.board.flash.size, 0, 0)]
        for ub, us, _n, _b in units:
            if any(ub < a + len(d) and a < ub + us for a, d in segments):
                self.buf[ub - base:ub - base + us] = b"\xff" * us
                ctypes.memset(ctypes.addressof(self._programmed) + (ub - base) // pb, 0, us // pb)
        for address, data in segments:
            self.buf[address - base:address - base + len(data)] = bytes(data)
            for unit in range((address - base) // pb, (address - base + len(data) + pb - 1) // pb):
                self._programmed[unit] = 1


def flash_controller_config(board: Board) -> tuple[dict, list[tuple[int, int, int, int, int]]]:
    """The native FlashCtl's configuration and erase units (with their erase time in core cycles)."""
    fam, ctl = board.family, board.family.flash_ctl
    if ctl.base != fam.flash_acr:
        raise ValueError(f"family {fam.name}: flash_ctl.base 0x{ctl.base:08x} is not FLASH_ACR 0x{fam.flash_acr:08x}")
    clock = board.reset_clock_hz  # the core's clock: the firmware keeps the reset clock
    prog = max(1, round(ctl.program_us * clock / 1e6))
    art = board.flash_accelerator == "art"  # ICRST / DCRST reset the ART caches the model has
    cfg = {
        "style": {"page-number": _cm.FC_PAGE_NUMBER, "sector": _cm.FC_SECTOR,
                  "page-address": _cm.FC_PAGE_ADDRESS}[ctl.style],
        "offset": ctl.base & 0xFFF, "acr": 0, "keyr": ctl.keyr, "sr": ctl.sr, "cr": ctl.cr,
        "ar": ctl.ar if ctl.ar >= 0 else 0xFFFFFFFF, "key1": ctl.keys[0], "key2": ctl.keys[1],
        "sr_busy": ctl.sr_busy, "sr_eop": ctl.sr_eop, "sr_errors": ctl.sr_errors,
        "eop_needs_eopie": int(ctl.eop_needs_eopie),
        "cr_pg": _mask(ctl.cr_pg), "cr_erase": _mask(ctl.cr_erase), "cr_strt": _mask(ctl.cr_strt),
        "cr_lock": _mask(ctl.cr_lock), "cr_eopie": _mask(ctl.cr_eopie), "cr_bank": _mask(ctl.cr_bank),
        "number_shift": ctl.number_shift, "number_mask": ctl.number_mask,
        "psize_mask": 3 << ctl.psize_shift if ctl.psize_shift >= 0 else 0,
        "psize_bits": ctl.psize << ctl.psize_shift if ctl.psize_shift >= 0 else 0,
        "acr_latency_mask": fam.flash_acr_latency_mask,
        "acr_icrst": _mask(ctl.acr_icrst) if art else 0, "acr_dcrst": _mask(ctl.acr_dcrst) if art else 0,
        "prog_bytes": ctl.program_bytes, "prog_cycles_lo": prog & 0xFFFFFFFF, "prog_cycles_hi": prog >> 32,
        "flash_base": board.flash.base, "flash_size": board.flash.size,
        # FLASH_ACR.LATENCY resets to the catalogue's wait states here (the hardware's reset value is 0), so
        # that a bare test program that never writes ACR sees the catalogue board; the firmware writes it
        "acr_reset": board.flash_wait_states,
    }
    units = [(base, size, number, bank, max(1, round(ctl.erase_ms_for(size) * clock / 1e3)))
             for g in board.erase_units for base, size, number, bank in
             [(g.base + i * g.bytes, g.bytes, g.number + i, g.bank) for i in range(g.count)]]
    return cfg, units


def clock_tree_config(board: Board) -> tuple[dict, list[tuple]]:
    """The native ClockTree's configuration and oscillators, from ``costmodel/data/clocks.toml``."""
    lay = clock_layout(board)
    vmax, ws_max, _apb = clock_limits(board)
    names = list(lay.osc)
    oscs = [(name, 1 << o.on, 1 << o.rdy, 1 << o.byp if o.byp >= 0 else 0, o.hz, round(o.startup_us * 1000),
             name == "HSE", o.reset_on) for name, o in lay.osc.items()]  # no HSE crystal: an external clock only
    src_osc, src_div, uses_m = [-1] * 4, [1] * 4, [1] * 4
    for src, code in lay.pll_src_codes.items():
        src_osc[code] = names.index(src)
        if src in lay.pll_src_fixed_div:  # a fixed predivider instead of PLLM (the F1's HSI / 2)
            src_div[code], uses_m[code] = lay.pll_src_fixed_div[src], 0
    sw_src = [-1] * 8
    for src, code in lay.sw_codes.items():
        sw_src[code] = 7 if src == "PLL" else names.index(src)  # 7: CLK_PLL in native/clock.c
    v = lay.voltage
    style = {"none": 0, "vos": 1, "overdrive": 2}[v["style"]]
    level_max, level_names = [0] * 8, [""] * 8
    for code, name in v.get("levels", {}).items():
        for extra, suffix in ((0, ""), (1, "-boost" if style == 1 else "-overdrive")):
            key = f"{name}{suffix}"
            if key in vmax:
                level_max[int(code) * 2 + extra], level_names[int(code) * 2 + extra] = vmax[key], key
    if style == 0:
        level_max[0], level_names[0] = next(iter(vmax.values())), next(iter(vmax))
    boost = v.get("boost", [0, -1])
    cfg = {
        "cr": lay.cr, "cfgr": lay.cfgr, "pllcfgr": lay.pllcfgr, "pllcfgr_reset": lay.pllcfgr_reset,
        "pll_on": 1 << lay.pll_on, "pll_rdy": 1 << lay.pll_rdy, "pll_lock_ns": round(lay.pll_lock_us * 1000),
        "sw_shift": lay.sw.shift, "sw_mask": (1 << lay.sw.bits) - 1, "sws_shift": lay.sws.shift, "sw_src": sw_src,
        "hpre_shift": lay.hpre, "ppre_shift": [lay.ppre[b] for b in ("APB1", "APB2") if b in lay.ppre],
        "src_shift": lay.pll_src.shift, "src_bits": lay.pll_src.bits, "src_osc": src_osc, "src_div": src_div,
        "src_uses_m": uses_m, "m_shift": lay.pll_m.shift, "m_bits": lay.pll_m.bits, "m_add": lay.pll_m.add,
        "n_shift": lay.pll_n.shift, "n_bits": lay.pll_n.bits, "n_add": lay.pll_n.add, "r_shift": lay.pll_r.shift,
        "r_bits": lay.pll_r.bits, "r_kind": _R_KINDS[lay.pll_r_kind],
        "r_enable": 1 << lay.pll_r_enable if lay.pll_r_enable >= 0 else 0,
        "vco_in_lo": lay.vco_in[0], "vco_in_hi": lay.vco_in[1], "vco_out_lo": lay.vco_out[0],
        "vco_out_hi": lay.vco_out[1], "ws_max_hz": ws_max, "vstyle": style, "v_cr": int(v.get("cr", 0)),
        "v_sr": int(v.get("sr", 0)), "vos_shift": int(v.get("vos", [0, 0])[0]),
        "vos_bits": int(v.get("vos", [0, 0])[1]),
        "vosf": 1 << int(v["vosf"]) if "vosf" in v else 0, "boost_off": int(boost[0]),
        "boost_mask": 1 << int(boost[1]) if int(boost[1]) >= 0 else 0, "vos_reset": int(v.get("reset_vos", 0)),
        "v_ns": round(float(v.get("vos_us", v.get("od_us", 0))) * 1000), "od_csr": int(v.get("csr", 0)),
        "oden": _bit(v, "oden"), "odswen": _bit(v, "odswen"), "odrdy": _bit(v, "odrdy"), "odswrdy": _bit(v, "odswrdy"),
        "level_max_hz": level_max, "level_names": level_names, "reset_hz": board.reset_clock_hz,
    }
    return cfg, oscs


def _bit(v: dict, key: str) -> int:
    return 1 << int(v[key]) if key in v else 0


class Peripherals:
    """The native peripheral models of one VirtualBoard instance."""

    def __init__(self, board: Board, model, flash: FlashMemory):
        self.board = board
        self.flash_ctl = None
        self.energy_pin = None
        self.clock = None
        self._pages: dict[int, object] = {}
        if board.family.flash_ctl is not None and board.erase_units:
            cfg, units = flash_controller_config(board)
            self.flash_ctl = _cm.FlashCtl(model, cfg, units, flash.address, flash.programmed_address,
                                          flash.counts_address)
            self._page(board.family.flash_acr).attach_flashctl(self.flash_ctl, board.family.flash_acr & 0xFFF,
                                                               FLASH_BLOCK_BYTES)
        if board.energy_gpio is not None:
            gpio = board.family.gpio
            bsrr = gpio.port_base(board.energy_gpio.port) + gpio.bsrr_offset
            self.energy_pin = _cm.GpioPin(model, bsrr, board.energy_gpio.number)
            self._page(bsrr).attach_gpio_pin(self.energy_pin, bsrr & 0xFFF)
        try:
            lay = clock_layout(board)
        except CatalogueError:
            lay = None  # a board without a clock tree in the catalogue: RCC / PWR stay a register file
        if lay is not None:
            cfg, oscs = clock_tree_config(board)
            self.clock = _cm.ClockTree(model, cfg, oscs, self.flash_ctl)
            self._page(lay.rcc).attach_clock(self.clock, lay.rcc & 0xFFF, CLOCK_BLOCK_BYTES, "rcc")
            self._page(lay.pwr).attach_clock(self.clock, lay.pwr & 0xFFF, CLOCK_BLOCK_BYTES, "pwr")

    def _page(self, address: int):
        """The native page holding ``address`` (created on first use)."""
        base = address & ~0xFFF
        if base not in self._pages:
            self._pages[base] = _cm.PeriphPage(base)
        return self._pages[base]

    def uart_clock_address(self) -> int:
        """Where the clock tree publishes the debug UART's kernel clock (its APB's PCLK); 0 without a clock tree."""
        if self.clock is None:
            return 0
        bus = clock_layout(self.board).uart_bus.get(self.board.uart.name, "APB1")
        return self.clock.pclk_address(1 if bus == "APB2" else 0)

    def pages(self) -> list:
        """The native pages to map: ``(page base, PeriphPage)`` (callbacks: ``_cyclemodel.periph_mmio_ptrs()``)."""
        return sorted(self._pages.items())

    def write_hooks(self) -> list[tuple[int, int, int, int]]:
        """Native UC_HOOK_MEM_WRITE_PROT hooks: ``(callback, user_data, begin, end)``."""
        if self.flash_ctl is None:
            return []
        b = self.board.flash
        return [(_cm.flash_write_hook_ptr(), self.flash_ctl.address, b.base, b.end - 1)]
