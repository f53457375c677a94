"""The virtual board: Unicorn + the native cycle model and UART (C, ``native/``: README.md has the file
map) + the SCS/DWT register model (Python, here)."""

from __future__ import annotations

import ctypes
import enum
import mmap
import struct
import time
from pathlib import Path

from unicorn import (
    UC_ARCH_ARM,
    UC_HOOK_BLOCK,
    UC_HOOK_INTR,
    UC_HOOK_MEM_INVALID,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    UC_HOOK_MEM_WRITE_PROT,
    UC_MODE_THUMB,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as A
from unicorn import unicorn_const as K
from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC, MMIO_WRITE_CFUNC, uccallback, uclib

from costmodel.boards import Board

from measure_agent.elf import ElfImage, parse_elf

try:
    from . import _cyclemodel as _cm
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "measure_agent.vboard needs its C extension _cyclemodel; build it with "
        "`.venv/bin/pip install -e /work/main --no-deps --no-build-isolation -q` "
        "or `.venv/bin/python setup.py build_ext --inplace`"
    ) from exc

from .peripherals import FlashMemory, Peripherals  # noqa: E402  (needs the extension)

#: the timing model's version (native/cyclemodel.h): results measured here carry it
MODEL_VERSION: str = _cm.MODEL_VERSION


class StopReason(enum.Enum):
    IDLE = "idle"  # the firmware polls an empty UART receiver
    BKPT = "bkpt"  # a BKPT instruction
    BUDGET = "budget"  # the cycle / instruction budget of this run() is spent
    STOPPED = "stopped"  # another thread called stop()


class VirtualBoardFault(RuntimeError):
    """The firmware faulted (or ran out of wall-clock time): reason, pc and fault address."""

    def __init__(self, reason: str, pc: int | None = None, address: int | None = None, detail: str = ""):
        self.reason = reason
        self.pc = pc
        self.address = address
        msg = reason
        if pc is not None:
            msg += f" at pc=0x{pc:08x}"
        if address is not None:
            msg += f", address 0x{address:08x}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


_CORES = {
    # core: (unicorn cpu model, C model kind)
    "cortex-m0plus": (A.UC_CPU_ARM_CORTEX_M0, _cm.CORE_M0P),
    "cortex-m3": (A.UC_CPU_ARM_CORTEX_M3, _cm.CORE_M3),
    "cortex-m4": (A.UC_CPU_ARM_CORTEX_M4, _cm.CORE_M4),
    "cortex-m7": (A.UC_CPU_ARM_CORTEX_M7, _cm.CORE_M7),
    "cortex-m33": (A.UC_CPU_ARM_CORTEX_M33, _cm.CORE_M33),
}
_ACCEL = {"none": _cm.ACC_NONE, "prefetch": _cm.ACC_PREFETCH, "art": _cm.ACC_ART, "cache": _cm.ACC_CACHE}
_FPU = {"none": _cm.FPU_NONE, "sp": _cm.FPU_SP, "dp": _cm.FPU_DP}

PPB_BASE = 0xE0000000
PERIPH_BASE, PERIPH_END = 0x40000000, 0x60000000
HOST_BAUD = 115200  # the host's side of the virtual COM port (the firmware's BOARD_UART_BAUD)
_UNTIL = 0xFFFFFFF0  # never reached (EXC_RETURN range, not mapped)

# PPB registers the Python model gives a meaning to (the others are a plain register file)
_DWT_CTRL, _DWT_CYCCNT = 0xE0001000, 0xE0001004
_SCB_CPUID, _SCB_CCR, _SCB_CPACR = 0xE000ED00, 0xE000ED14, 0xE000ED88
_SCB_CLIDR, _SCB_CTR, _SCB_CCSIDR, _SCB_CSSELR = 0xE000ED78, 0xE000ED7C, 0xE000ED80, 0xE000ED84
_DEMCR = 0xE000EDFC
_ICIALLU, _DCISW, _DCCISW = 0xE000EF50, 0xE000EF60, 0xE000EF74  # cache maintenance (M7)
_DCIMVAC = 0xE000EF5C  # D-cache invalidate by address (M7): modelled as invalidating the whole tag store

# UC_HOOK_INTR numbers (Unicorn's QEMU, target/arm/cpu.h EXCP_*)
_EXCP_UDEF, _EXCP_SWI, _EXCP_PREFETCH_ABORT, _EXCP_DATA_ABORT, _EXCP_BKPT = 1, 2, 3, 4, 7
_EXCP_INVSTATE = 18  # (QEMU's EXCP_NOCP is 17: the NOCP message below is the one it always had)
_EXCEPTIONS = {
    _EXCP_UDEF: "undefined instruction (UsageFault)",
    _EXCP_SWI: "SVC (no handler modelled)",
    _EXCP_PREFETCH_ABORT: "prefetch abort",
    _EXCP_DATA_ABORT: "unaligned access (data abort; Armv6-M has no unaligned support)",
    _EXCP_INVSTATE: "NOCP: coprocessor/FPU instruction on a core without (or with a disabled) FPU",
}

_ERRORS = {
    K.UC_ERR_READ_UNMAPPED: "read from unmapped memory",
    K.UC_ERR_WRITE_UNMAPPED: "write to unmapped memory",
    K.UC_ERR_FETCH_UNMAPPED: "wild jump: instruction fetch from unmapped memory",
    K.UC_ERR_READ_PROT: "read from protected memory",
    K.UC_ERR_WRITE_PROT: "write to read-only memory (flash)",
    K.UC_ERR_FETCH_PROT: "wild jump: instruction fetch from non-executable memory",
    K.UC_ERR_INSN_INVALID: "invalid instruction for this core (or branch to an address without the Thumb bit)",
    K.UC_ERR_EXCEPTION: "unhandled CPU exception",
    K.UC_ERR_READ_UNALIGNED: "unaligned read",
    K.UC_ERR_WRITE_UNALIGNED: "unaligned write",
    K.UC_ERR_FETCH_UNALIGNED: "unaligned fetch",
}


def _page_up(n: int) -> int:
    return (n + 0xFFF) & ~0xFFF


class VirtualBoard:
    """A catalogue board running a firmware ELF under the cycle model.

    ``vb.run()`` executes until the firmware idles on the UART receiver, hits BKPT, or spends the budget.
    ``vb.cycles`` are modelled core cycles since reset; ``vb.instructions`` executed instructions.
    """

    def __init__(self, board: Board, elf: str | Path | bytes | bytearray | ElfImage, strict: bool = False,
                 flash: FlashMemory | None = None):
        """``strict=True`` installs a native memory hook on all memory: every unaligned
        LDRD/STRD/LDM/STM/LDREX/VLDR/VLDM faults, and every data read from flash pays its wait states.
        Unicorn then takes its slow path for every access: 5-10x slower on real firmware. The default
        (fast) mode derives every address of a block at block entry (the block's data program) and
        charges the same flash wait states, cache lookups, unaligned splits and alignment faults as strict
        mode, except for the rare accesses whose address it cannot derive (README.md, "strict vs fast").

        ``flash`` is the board's flash array (:class:`~measure_agent.vboard.peripherals.FlashMemory`): pass
        the same one to a new VirtualBoard to keep what the firmware programmed (plans in flash slots and
        their erase counters), as a real board keeps its flash; by default a fresh, erased chip. The FLASH
        controller is modelled (``native/flashctl.c``): the firmware programs the flash through it, a write
        outside a valid programming sequence faults, and FLASH_ACR.LATENCY sets the wait states."""
        if board.core not in _CORES:
            raise ValueError(f"unsupported core {board.core}")
        self.board = board
        self.strict = strict
        self.flash = flash if flash is not None else FlashMemory(board)
        if self.flash.board.flash != board.flash:
            raise ValueError("the FlashMemory belongs to a board with another flash")
        self.image = elf if isinstance(elf, ElfImage) else parse_elf(elf)
        # the UART (RX/TX FIFOs, registers, idle rule) is native: _cyclemodel.Uart, mapped with
        # uc_mmio_map and C callbacks (no Python per UART access)
        self._uart = _cm.Uart(board.uart.kind != "stm32-usart-v1", board.uart.base & 0xFFF)
        self._uart.set_engine(ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value)
        self._stop_requested = False
        self._build()

    # ------------------------------------------------------------------ setup
    def _build(self) -> None:
        b = self.board
        cpu_model, kind = _CORES[b.core]
        self._cpuid = b.cpuid
        fam = b.family  # flash interface width and cache geometry: costmodel/data/families.toml
        fetch, iline, iways, dline, dways = (fam.flash_fetch_bytes, fam.icache_line, fam.icache_ways,
                                             fam.dcache_line, fam.dcache_ways)
        self._is_m7 = b.core == "cortex-m7"
        icache = b.icache_bytes if b.flash_accelerator in ("art", "cache") else 0
        dcache = b.dcache_bytes if b.flash_accelerator in ("art", "cache") else 0
        if b.flash_accelerator == "art":
            # ART: the reference manuals do not document the organisation; modelled as a 4-way
            # set-associative LRU I-cache (fast lookups) and a fully associative LRU D-cache
            iways = min(4, max(1, icache // iline))
            dways = max(1, dcache // dline)
        self.model = _cm.Model(
            kind, _FPU[b.fpu], int(b.dsp), _ACCEL[b.flash_accelerator], b.flash_wait_states, fetch,
            icache, iline, iways, dcache, dline, dways,
            caches_enabled=not self._is_m7,  # M7 L1 caches are off until CCR.IC/DC are set
            strict=self.strict,
        )
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)  # not UC_MODE_MCLASS: it forces a Cortex-M33
        uc.ctl_set_cpu_model(cpu_model)
        self.uc = uc
        self._buffers: list[tuple[int, int, mmap.mmap]] = []

        def add(base: int, size: int, perms: int, flash: bool) -> None:
            size = _page_up(size)
            buf = self.flash.buf if flash else mmap.mmap(-1, size)  # the flash array outlives the board
            addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
            uc.mem_map_ptr(base, size, perms, addr)
            self.model.add_region(base, size, addr, flash)
            self._buffers.append((base, size, buf))

        add(b.flash.base, b.flash.size, UC_PROT_READ | UC_PROT_EXEC, True)
        add(b.sram.base, b.sram.size, UC_PROT_ALL, False)
        for t in b.tcm:
            if b.sram.contains(t.base) or b.flash.contains(t.base):
                continue  # DTCM aliasing the start of SRAM: zero wait state either way
            perms = UC_PROT_ALL if t.instructions else (UC_PROT_READ | UC_PROT_WRITE)
            add(t.base, t.size, perms, False)

        # peripherals: a plain register file, except the native MMIO pages: the UART (_cyclemodel.Uart) and
        # the modelled peripheral pages (peripherals.py: the FLASH controller, the energy pin, the RCC / PWR clock tree)
        uart_page = b.uart.base & ~0xFFF
        self._uart_off = b.uart.base - uart_page
        self._uart.reset_regs()
        self.peripherals = Peripherals(b, self.model, self.flash)
        # the UART's bytes are garbage unless BRR gives the host's baud at the kernel clock that runs
        self._uart.set_baud_check(self.peripherals.uart_clock_address(), 0x0C if b.uart.kind != "stm32-usart-v1"
                                  else 0x08, HOST_BAUD, b.uart.name.upper().startswith("LPUART"))
        rd, wr = _cm.uart_mmio_ptrs()
        prd, pwr = _cm.periph_mmio_ptrs()
        pages = [(uart_page, rd, wr, self._uart.address)]
        pages += [(base, prd, pwr, page.address) for base, page in self.peripherals.pages()]
        if len({base for base, *_ in pages}) != len(pages):
            raise RuntimeError(f"{b.name}: two native peripheral models on one 4 KB page")
        at = PERIPH_BASE
        for base, rd_fn, wr_fn, ud_addr in sorted(pages):
            if base > at:
                uc.mem_map(at, base - at, UC_PROT_READ | UC_PROT_WRITE)
            ud = ctypes.c_void_p(ud_addr)
            err = uclib.uc_mmio_map(uc._uch, base, 0x1000, ctypes.c_void_p(rd_fn), ud, ctypes.c_void_p(wr_fn), ud)
            if err != K.UC_ERR_OK:
                raise RuntimeError(f"uc_mmio_map failed: {err}")
            at = base + 0x1000
        uc.mem_map(at, PERIPH_END - at, UC_PROT_READ | UC_PROT_WRITE)
        # private peripheral bus: DWT, SCS (SysTick, NVIC, SCB, cache maintenance), ITM. Reads of
        # DWT CYCCNT (once per received byte in the firmware's UART loop) are answered natively
        # (_cyclemodel ppb read callback, state in the Model); other reads and all writes go to the
        # Python model below.
        ppb_read = uccallback(uc, MMIO_READ_CFUNC)(
            lambda uc_, offset, size, _key: self._ppb_read(uc_, offset, size, None))
        ppb_write = uccallback(uc, MMIO_WRITE_CFUNC)(
            lambda uc_, offset, size, value, _key: self._ppb_write(uc_, offset, size, value, None))
        self._ppb_cbs = (ppb_read, ppb_write)  # keep the ctypes callbacks alive
        # both directions go through the native callbacks first: every PPB access is attributed to its
        # instruction in fast mode (native/ppb.c), then the Python model serves it
        self.model.set_ppb_fallback(ctypes.cast(ppb_read, ctypes.c_void_p).value, 0,
                                    ctypes.cast(ppb_write, ctypes.c_void_p).value)
        err = uclib.uc_mmio_map(uc._uch, PPB_BASE, 0x100000, ctypes.c_void_p(_cm.ppb_read_ptr()),
                                ctypes.c_void_p(self.model.address), ctypes.c_void_p(_cm.ppb_write_ptr()),
                                ctypes.c_void_p(self.model.address))
        if err != K.UC_ERR_OK:
            raise RuntimeError(f"uc_mmio_map failed: {err}")

        self._ppb: dict[int, int] = {_SCB_CCR: 0x00000200}  # CCR reset value: STKALIGN
        # DWT CYCCNT state lives in the Model (model.cyc_frozen, model.cyc_start: None = stopped)
        self._stop_reason: StopReason | None = None
        self._fault: VirtualBoardFault | None = None
        self._invalid_addr: int | None = None

        # native cycle model hooks (C function pointers, user_data = C state)
        self.model.set_engine(
            ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value,
            ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value,
            A.UC_ARM_REG_PC,
        )
        self.model.set_reg_ids([getattr(A, f"UC_ARM_REG_R{i}") for i in range(13)]
                               + [A.UC_ARM_REG_SP, A.UC_ARM_REG_LR, A.UC_ARM_REG_PC])
        # run-time timing hooks (native/blocks.c): code hooks on single instructions (IT outcome, divide)
        # registered by the block hook, block restarts (uc_reg_write of the PC, dropping translated code)
        self.model.set_hooks(
            ctypes.cast(uclib.uc_hook_add, ctypes.c_void_p).value,
            ctypes.cast(uclib.uc_ctl, ctypes.c_void_p).value,
            ctypes.cast(uclib.uc_reg_write, ctypes.c_void_p).value,
            A.UC_ARM_REG_CPSR, K.UC_HOOK_CODE,
            K.UC_CTL_TB_REMOVE_CACHE | (2 << 26) | (K.UC_CTL_IO_WRITE << 30),  # UC_CTL_WRITE(REMOVE_CACHE, 2)
        )
        self._native_hooks = []
        hooks = [(UC_HOOK_BLOCK, _cm.block_hook_ptr())]
        if self.strict:
            hooks.append((UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, _cm.mem_hook_ptr()))
        for htype, fn in hooks:
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), htype, ctypes.c_void_p(fn),
                                    ctypes.c_void_p(self.model.address), 1, 0)
            if err != K.UC_ERR_OK:
                raise RuntimeError(f"uc_hook_add failed: {err}")
            self._native_hooks.append(h)
        # programming writes to flash: a native hook on the read-only flash mapping (only stores to flash
        # reach it; reads and fetches stay on Unicorn's fast path). Added before the Python hook below,
        # which sees the writes it refuses.
        self._periph_hooks = []  # kept by run_elf_mips' bare baseline: the firmware may program flash
        for fn, ud_addr, begin, end in self.peripherals.write_hooks():
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_MEM_WRITE_PROT, ctypes.c_void_p(fn),
                                    ctypes.c_void_p(ud_addr), ctypes.c_uint64(begin), ctypes.c_uint64(end))
            if err != K.UC_ERR_OK:
                raise RuntimeError(f"uc_hook_add failed: {err}")
            self._periph_hooks.append(h)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)

        self._load()

    def _buffer_for(self, addr: int) -> tuple[int, mmap.mmap] | None:
        for base, size, buf in self._buffers:
            if base <= addr < base + size:
                return base, buf
        return None

    def _load(self) -> None:
        flash_segments = []
        for seg in self.image.segments:
            if not seg.data:
                continue
            hit = self._buffer_for(seg.paddr)
            if hit is None or seg.paddr + len(seg.data) > hit[0] + len(hit[1]):
                raise VirtualBoardFault("ELF segment outside the board's memory", address=seg.paddr,
                                        detail=f"{len(seg.data)} bytes")
            base, buf = hit
            if self.board.flash.contains(seg.paddr):
                flash_segments.append((seg.paddr, seg.data))
                continue
            buf[seg.paddr - base : seg.paddr - base + len(seg.data)] = seg.data
        self.flash.load(flash_segments)  # as a flasher: erase the units the image covers, program it
        flash = self._buffer_for(self.board.flash.base)[1]
        sp, reset = struct.unpack_from("<II", flash, 0)
        if reset & 1 and self._buffer_for(reset & ~1) is not None:
            self._pc = reset & ~1
            self.uc.reg_write(A.UC_ARM_REG_SP, sp)
        else:  # no vector table: start at the ELF entry, stack at the top of SRAM
            self._pc = self.image.entry & ~1
            self.uc.reg_write(A.UC_ARM_REG_SP, self.board.sram.end)

    def reset(self) -> None:
        """Power-on reset: reload the ELF, zero RAM and counters. UART buffers are emptied."""
        self._uart.clear()
        self._build()

    # ------------------------------------------------------------------ API
    @property
    def cycles(self) -> int:
        return self.model.cycles

    @property
    def instructions(self) -> int:
        return self.model.instructions

    @property
    def pc(self) -> int:
        return self._pc

    @property
    def energy_pin(self):
        """The energy pin's edge recorder (``_cyclemodel.GpioPin``: ``edges()`` drains ``(cycle, instructions,
        level)``), None on a board without ``energy_gpio`` in the catalogue."""
        return self.peripherals.energy_pin

    def symbol(self, name: str) -> int:
        return self.image.symbols[name]

    def read_memory(self, addr: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(addr, size))

    def write_memory(self, addr: int, data: bytes) -> None:
        self.uc.mem_write(addr, bytes(data))

    def reg(self, name: str) -> int:
        return self.uc.reg_read(getattr(A, f"UC_ARM_REG_{name.upper()}"))

    def uart_write(self, data: bytes) -> None:
        """Host -> board: bytes appended to the UART receive FIFO."""
        self._uart.write(bytes(data) if not isinstance(data, bytes) else data)

    def uart_read(self) -> bytes:
        """Board -> host: bytes transmitted so far (drained)."""
        return self._uart.read()

    @property
    def uart_rx_pending(self) -> int:
        """Bytes in the UART receive FIFO not yet read by the firmware."""
        return self._uart.rx_pending

    @property
    def _rx(self) -> int:  # backwards compatible truthiness: "is anything left to read?"
        return self._uart.rx_pending

    def stop(self) -> None:
        """Ask a run() in progress (in another thread) to return StopReason.STOPPED; if none is in
        progress, the next run() returns STOPPED at once."""
        self._stop_requested = True
        self.uc.emu_stop()

    def run(self, max_cycles: int | None = None, timeout_s: float = 10.0,
            max_instructions: int | None = None) -> StopReason:
        """Run until IDLE, BKPT or the budget (counted from this call); faults/timeouts raise."""
        if self._fault is not None:
            raise self._fault
        if self._stop_requested:
            self._stop_requested = False
            return StopReason.STOPPED
        m = self.model
        m.max_cycles = m.cycles + max_cycles if max_cycles else 0
        m.max_instructions = m.instructions + max_instructions if max_instructions else 0
        m.stop = _cm.STOP_NONE
        self._stop_reason = None
        self._uart.begin_run()
        self._invalid_addr = None
        t0 = time.monotonic_ns()
        # the wall-clock limit is checked by the native block hook, not by Unicorn's timeout thread
        m.deadline_ns = t0 + max(1, int(timeout_s * 1e9))
        err: UcError | None = None
        try:
            self.uc.emu_start(self._pc | 1, _UNTIL)
        except UcError as e:
            err = e
        finally:
            m.deadline_ns = 0
        pc = self.uc.reg_read(A.UC_ARM_REG_PC) & ~1
        if err is not None:
            m.truncate_at(pc, False)
            self._pc = pc
            addr = self._invalid_addr
            if err.errno in (K.UC_ERR_FETCH_UNMAPPED, K.UC_ERR_FETCH_PROT):
                addr = pc
            fc = self.peripherals.flash_ctl
            if err.errno == K.UC_ERR_WRITE_PROT and fc is not None and fc.fault and addr == fc.fault_address:
                # the flash stays read-only outside the controller's programming sequence: the reason is the
                # plain one, the controller says which rule the write broke
                self._fault = VirtualBoardFault(_ERRORS[err.errno], pc, addr, detail=fc.fault)
            else:
                self._fault = VirtualBoardFault(_ERRORS.get(err.errno, str(err)), pc, addr)
            raise self._fault
        if m.stop == _cm.STOP_FAULT:
            kind, fpc, faddr = m.fault
            m.truncate_at(fpc, False)
            self._pc = fpc
            fc = self.peripherals.flash_ctl
            if kind == _cm.FAULT_FLASH and fc is not None:
                self._fault = VirtualBoardFault("flash programming error", fpc, faddr or None, detail=fc.fault)
                raise self._fault
            clock = self.peripherals.clock
            if kind == _cm.FAULT_CLOCK and clock is not None:
                self._fault = VirtualBoardFault("clock set-up error", fpc, None, detail=clock.fault)
                raise self._fault
            reason = {_cm.FAULT_INVALID_INSN: f"invalid instruction for {self.board.core}",
                      _cm.FAULT_UNALIGNED: "unaligned access (UsageFault UNALIGNED)",
                      _cm.FAULT_NOCP: "NOCP: FPU instruction with the FPU disabled (enable CP10/CP11 "
                                      "in CPACR 0xE000ED88 first)"}.get(kind, "fault")
            self._fault = VirtualBoardFault(reason, fpc, faddr)
            raise self._fault
        self._pc = pc
        if self._fault is None and self._uart.baud_fault:
            self._fault = VirtualBoardFault("UART baud rate mismatch", pc, detail=self._uart.baud_fault)
        if self._fault is not None:
            raise self._fault
        if self._stop_reason is not None:
            return self._stop_reason
        if self._uart.idle:
            return StopReason.IDLE
        if m.stop == _cm.STOP_BUDGET:
            return StopReason.BUDGET
        if self._stop_requested:
            self._stop_requested = False
            return StopReason.STOPPED
        elapsed = (time.monotonic_ns() - t0) / 1e9
        self._fault = VirtualBoardFault(
            "timeout", pc, detail=f"no idle/BKPT after {elapsed:.2f} s wall clock "
            f"({m.instructions} instructions, {m.cycles} cycles): infinite loop?")
        raise self._fault

    # ------------------------------------------------------------------ hooks
    def _on_intr(self, uc: Uc, intno: int, _ud) -> None:
        pc = uc.reg_read(A.UC_ARM_REG_PC) & ~1
        if intno == _EXCP_BKPT:
            self.model.truncate_at(pc, True)
            uc.reg_write(A.UC_ARM_REG_PC, (pc + 2) | 1)
            self._stop_reason = StopReason.BKPT
            self._uart.idle = False  # the later stop wins (as when both were Python callbacks)
        else:
            self.model.truncate_at(pc, False)
            self._fault = VirtualBoardFault(_EXCEPTIONS.get(intno, f"CPU exception {intno}"), pc)
        uc.emu_stop()

    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, _ud) -> bool:
        self._invalid_addr = address
        return False

    # DWT CYCCNT: exact to the reading instruction (cycles accumulated before it starts)
    def _now(self, uc: Uc, addr: int) -> int:
        """Modelled cycles before the instruction doing the current PPB access at ``addr``."""
        if self.strict:  # Unicorn synchronises the PC before memory accesses when a mem hook exists
            return self.model.cycles_at(uc.reg_read(A.UC_ARM_REG_PC))
        return self.model.cycles_at_access(addr)  # match the access against the block's loads/stores

    def _cyccnt(self, uc: Uc, addr: int = _DWT_CYCCNT) -> int:
        if self.model.cyc_start is None:
            return self.model.cyc_frozen & 0xFFFFFFFF
        return (self.model.cyc_frozen + self._now(uc, addr) - self.model.cyc_start) & 0xFFFFFFFF

    def _cyc_update(self, uc: Uc, addr: int) -> None:
        # DWT_CTRL.CYCCNTENA and DEMCR.TRCENA
        enabled = bool(self._ppb.get(_DWT_CTRL, 0) & 1) and bool(self._ppb.get(_DEMCR, 0) & (1 << 24))
        if enabled and self.model.cyc_start is None:
            self.model.cyc_start = self._now(uc, addr)
        elif not enabled and self.model.cyc_start is not None:
            self.model.cyc_frozen = self._cyccnt(uc, addr)
            self.model.cyc_start = None

    def _ppb_read(self, uc: Uc, offset: int, size: int, _ud) -> int:
        addr = PPB_BASE + offset
        word = addr & ~3
        if word == _DWT_CYCCNT:
            v = self._cyccnt(uc, addr)
        elif word == _SCB_CPUID:
            v = self._cpuid
        elif word == _SCB_CCSIDR:  # selected by CSSELR
            if self._is_m7:
                # I: 16K 2-way, D: 16K 4-way
                v = 0xF01FE009 if self._ppb.get(_SCB_CSSELR, 0) & 1 else 0xF00FE019
            else:
                v = 0
        elif word == _SCB_CLIDR:
            v = 0x09000003 if self._is_m7 else 0
        elif word == _SCB_CTR:
            v = 0x8303C003 if self._is_m7 else 0
        elif word == _DWT_CTRL:
            v = self._ppb.get(word, 0x40000000)  # NUMCOMP = 4
        else:
            v = self._ppb.get(word, 0)
        shift = (addr & 3) * 8
        return (v >> shift) & ((1 << (8 * size)) - 1)

    def _ppb_write(self, uc: Uc, offset: int, size: int, value: int, _ud) -> None:
        addr = PPB_BASE + offset
        word = addr & ~3
        if size < 4:
            old = self._ppb.get(word, 0)
            shift = (addr & 3) * 8
            mask = ((1 << (8 * size)) - 1) << shift
            value = (old & ~mask) | ((value << shift) & mask)
        value &= 0xFFFFFFFF
        if word == _DWT_CYCCNT:  # CYCCNT write
            self.model.cyc_frozen = value
            if self.model.cyc_start is not None:
                self.model.cyc_start = self._now(uc, addr)
            return
        self._ppb[word] = value
        if word in (_DWT_CTRL, _DEMCR):
            self._cyc_update(uc, addr)
        elif word == _SCB_CPACR:  # CP10 and CP11 full (or privileged) access
            self.model.fpu_enabled = (value >> 20) & 0x5 == 0x5
        elif word == _SCB_CCR and self._is_m7:  # IC bit 17, DC bit 16
            self.model.icache_enabled = bool(value & (1 << 17))
            self.model.dcache_enabled = bool(value & (1 << 16))
        elif word == _ICIALLU and self._is_m7:
            self.model.invalidate_icache()
        elif word in (_DCISW, _DCCISW, _DCIMVAC) and self._is_m7:  # whole cache, approx.
            self.model.invalidate_dcache()


def run_elf_mips(board: Board, elf, uart_input: bytes = b"", timeout_s: float = 600.0,
                 max_runs: int = 1000, strict: bool = False, baseline: bool = True) -> dict:
    """Benchmark hook: run an ELF (e.g. the KWS firmware) with ``uart_input`` over the in-process API
    until it goes idle with nothing left to read (or BKPT), and report simulation speed. With
    ``baseline`` the same run is repeated with the native cycle-model hooks removed (bare Unicorn plus
    the UART/PPB MMIO models) for the ratio.

    Returns dict(instructions, cycles, wall_s, mips, uart_output[, bare_wall_s, bare_mips, ratio])."""

    def once(hooks: bool):
        vb = VirtualBoard(board, elf, strict=strict)
        if not hooks:
            for h in vb._native_hooks:
                uclib.uc_hook_del(vb.uc._uch, h)
        vb.uart_write(uart_input)
        out = bytearray()
        t0 = time.perf_counter()
        for _ in range(max_runs):
            reason = vb.run(timeout_s=timeout_s)
            out += vb.uart_read()
            if reason is StopReason.BKPT or (reason is StopReason.IDLE and not vb.uart_rx_pending):
                break
        return vb, time.perf_counter() - t0, bytes(out)

    vb, wall, out = once(True)
    res = {"instructions": vb.instructions, "cycles": vb.cycles, "wall_s": wall,
           "mips": vb.instructions / wall / 1e6 if wall else float("nan"), "uart_output": out}
    if baseline:
        _, bare, bare_out = once(False)
        res.update(bare_wall_s=bare, bare_mips=vb.instructions / bare / 1e6 if bare else float("nan"),
                   ratio=bare / wall if wall else float("nan"), bare_output_matches=bare_out == out)
    return res
