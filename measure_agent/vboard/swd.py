"""The virtual chip's debug port, as a pyOCD debug probe: a flasher drives the virtual board as it drives a real one.

:class:`VirtualDebugProbe` is a pyOCD ``DebugProbe`` at the DAP register level (no accelerated memory
interface): pyOCD's own DebugPort, MEM-AP, ROM table discovery, Cortex-M debug and flash-algorithm code run
unchanged against it. What it models, from the public specifications:

- the SW-DP (ADIv5, IHI 0031): DPIDR, CTRL/STAT with the power-up handshake, SELECT, RDBUFF, ABORT; a DPv1
  DP (the Cortex-M3/M4's, DPIDR 0x2BA01477: no banked DP registers) for every core, the M7's DPv2 too;
- one AHB-AP (MEM-AP; the Cortex-M3/M4's IDR): CSW (size, address increment), TAR, DRW with byte lanes,
  BD0-3, CFG, BASE, IDR;
- the ROM table at 0xE00FF000 and the CoreSight identification registers of ITM, DWT, FPB and SCS
  (Armv7-M ARM C1.2 and the Cortex-M TRMs' ROM table): Armv7-M cores (M3, M4, M7) only;
- the core debug registers (Armv7-M ARM C1.6): DHCSR (halt, resume, step, S_HALT/S_REGRDY/S_RESET_ST),
  DCRSR/DCRDR (core registers of the Unicorn core), DEMCR (VC_CORERESET), DFSR; AIRCR.SYSRESETREQ and the
  reset pin reset the core, which fetches SP and PC from the vector table in its flash.

Other addresses are the virtual board's memory: SRAM, the flash (read-only: programmed through the modelled
FLASH controller by the code the debugger runs), the peripherals (the FLASH controller's registers), the
rest of the PPB. A resumed core runs on the Unicorn core until BKPT (a flash algorithm's return), until it
idles on its UART receiver, or for at most ``RUN_BUDGET_CYCLES``; the debugger then sees it halted or running.
The chip has no ELF: it boots from what is in its flash, like a board taken out of its box.
"""

from __future__ import annotations

from typing import Callable

from unicorn import arm_const as A

from costmodel.boards import Board
from measure_agent.elf import ElfImage
from pyocd.core import exceptions
from pyocd.probe.debug_probe import DebugProbe

from .board import StopReason, VirtualBoard, VirtualBoardFault
from .peripherals import FlashMemory

DPIDR = 0x2BA01477                 # ARM SW-DP v1 (ADIv5), as on the Cortex-M3/M4
AHB_AP_IDR = 0x24770011            # AHB-AP, ARM, MEM-AP class
ROM_TABLE = 0xE00FF000
#: the ROM table's entries (base addresses) and the components' part numbers: SCS, DWT, FPB, ITM; the M7's FPB
#: is FPBv2 (part 0x00E); the ROM table's own part per core
COMPONENTS = {"cortex-m3": (0x4C3, {0xE000E000: 0x00C, 0xE0001000: 0x002, 0xE0002000: 0x003, 0xE0000000: 0x001}),
              "cortex-m4": (0x4C4, {0xE000E000: 0x00C, 0xE0001000: 0x002, 0xE0002000: 0x003, 0xE0000000: 0x001}),
              "cortex-m7": (0x4C7, {0xE000E000: 0x00C, 0xE0001000: 0x002, 0xE0002000: 0x00E, 0xE0000000: 0x001})}
GENERIC_IP, ROM_CLASS = 0xE, 0x1

DHCSR, DCRSR, DCRDR, DEMCR = 0xE000EDF0, 0xE000EDF4, 0xE000EDF8, 0xE000EDFC
AIRCR, DFSR = 0xE000ED0C, 0xE000ED30
DBGKEY, VECTKEY = 0xA05F, 0x05FA
C_DEBUGEN, C_HALT, C_STEP = 1 << 0, 1 << 1, 1 << 2
S_REGRDY, S_HALT, S_RESET_ST = 1 << 16, 1 << 17, 1 << 25
VC_CORERESET = 1 << 0
DFSR_HALTED, DFSR_BKPT, DFSR_VCATCH = 1 << 0, 1 << 1, 1 << 3
SYSRESETREQ = 1 << 2

CSW_SIZE_MASK, CSW_ADDRINC_SINGLE, CSW_DEVICEEN = 0x7, 0x10, 0x40
CTRL_STAT_REQS = (1 << 30) | (1 << 28)   # CSYSPWRUPREQ, CDBGPWRUPREQ: each acknowledged one bit above

#: a resumed core runs at most this many cycles before the debugger sees it running (and idle)
RUN_BUDGET_CYCLES = 2_000_000_000

_CORE_REGS = {**{i: getattr(A, f"UC_ARM_REG_R{i}") for i in range(13)}, 13: A.UC_ARM_REG_SP, 14: A.UC_ARM_REG_LR,
              17: A.UC_ARM_REG_SP, 18: A.UC_ARM_REG_SP, 33: A.UC_ARM_REG_FPSCR,
              **{64 + i: getattr(A, f"UC_ARM_REG_S{i}") for i in range(32)}}


def _id_registers(part: int, klass: int) -> dict[int, int]:
    """PIDR0-7 and CIDR0-3 (offsets 0xFD0-0xFFC of a component's 4 KB) of an ARM CoreSight component."""
    designer = 0x3B  # JEP106 ARM: continuation 4, code 0x3B
    pidr = {0xFE0: part & 0xFF, 0xFE4: (part >> 8) | (designer & 0xF) << 4, 0xFE8: designer >> 4 | 0x8,
            0xFEC: 0, 0xFD0: 0x04}
    cidr = {0xFF0: 0x0D, 0xFF4: klass << 4, 0xFF8: 0x05, 0xFFC: 0xB1}
    return {**{off: 0 for off in range(0xFD0, 0x1000, 4)}, **pidr, **cidr}


def _debug_rom(core: str) -> dict[int, int]:
    """The ROM table (entries: offset from the table, present, 32-bit format) and every component's ID registers."""
    part, components = COMPONENTS[core]
    entries = {4 * i: (((base - ROM_TABLE) & 0xFFFFF000) | 0x3) for i, base in enumerate(components)}
    rom = {ROM_TABLE + off: v for off, v in {**entries, 4 * len(components): 0,
                                             **_id_registers(part, ROM_CLASS)}.items()}
    for base, component in components.items():
        rom.update({base + off: v for off, v in _id_registers(component, GENERIC_IP).items()})
    return rom


class VirtualDebugProbe(DebugProbe):
    """A debug probe wired to a virtual chip (catalogue board + its flash array), listed by pyOCD under ``serial``."""

    def __init__(self, board: Board, flash: FlashMemory | None = None, serial: str = "VBOARD-0",
                 on_run: Callable[[], None] | None = None):
        """``flash``: the chip's flash array (shared with the board that runs the firmware behind its UART);
        ``on_run``: called when a reset lets the core run the firmware in the flash (not halted by the debugger)."""
        super().__init__()
        if board.core not in COMPONENTS:
            raise ValueError(f"the virtual debug port models Armv7-M cores ({', '.join(COMPONENTS)}), not {board.core}")
        self.on_run = on_run
        self.board = board
        self.flash = flash if flash is not None else FlashMemory(board)
        self._serial = serial
        self._open = False
        self._protocol = None
        self._reset_asserted = False
        self._ctrl_stat = 0
        self._select = 0
        self._csw = CSW_DEVICEEN | 0x2
        self._tar = 0
        self._dhcsr = 0
        self._demcr = 0
        self._dfsr = 0
        self._dcrdr = 0
        self._halted = False
        self._reset_seen = False
        self.resets = 0
        self.fault: VirtualBoardFault | None = None  # the core's last fault while running (it then halts)
        self._rom = _debug_rom(board.core)
        self.vb = self._power_on()

    # ------------------------------------------------------------ what pyOCD asks of a probe
    description = property(lambda self: f"virtual {self.board.name} debug port")
    vendor_name = property(lambda self: "mcu-nas")
    product_name = property(lambda self: "virtual SWD probe")
    unique_id = property(lambda self: self._serial)
    supported_wire_protocols = property(lambda self: frozenset({DebugProbe.Protocol.DEFAULT,
                                                                 DebugProbe.Protocol.SWD}))
    wire_protocol = property(lambda self: self._protocol)
    is_open = property(lambda self: self._open)
    capabilities = property(lambda self: set())

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def connect(self, protocol=None) -> None:
        self._protocol = DebugProbe.Protocol.SWD

    def disconnect(self) -> None:
        self._protocol = None

    def set_clock(self, frequency: float) -> None:
        self.frequency = frequency

    def flush(self) -> None:
        pass

    def reset(self) -> None:
        self.assert_reset(True)
        self.assert_reset(False)

    def assert_reset(self, asserted: bool) -> None:
        if self._reset_asserted and not asserted:
            self._system_reset()
        self._reset_asserted = asserted

    def is_reset_asserted(self) -> bool:
        return self._reset_asserted

    # ------------------------------------------------------------ SW-DP
    def read_dp(self, addr: int, now: bool = True):
        reg = addr & 0xC
        if reg == 0x0:
            value = DPIDR
        elif reg == 0x4:
            value = self._ctrl_stat | ((self._ctrl_stat & CTRL_STAT_REQS) << 1)
        elif reg == 0x8:
            value = self._select
        else:
            value = 0  # RDBUFF: the AP reads here return their data at once
        return value if now else (lambda: value)

    def write_dp(self, addr: int, data: int) -> None:
        reg = addr & 0xC
        if reg == 0x4:
            self._ctrl_stat = data & 0xF0000F3F
        elif reg == 0x8:
            self._select = data

    # ------------------------------------------------------------ AHB-AP
    def read_ap(self, addr: int, now: bool = True):
        value = self._read_ap(addr)
        return value if now else (lambda: value)

    def read_ap_multiple(self, addr: int, count: int = 1, now: bool = True):
        values = [self._read_ap(addr) for _ in range(count)]
        return values if now else (lambda: values)

    def write_ap(self, addr: int, data: int) -> None:
        self._write_ap(addr, data)

    def write_ap_multiple(self, addr: int, values) -> None:
        for value in values:
            self._write_ap(addr, value)

    def _read_ap(self, addr: int) -> int:
        apsel, reg = (addr >> 24) & 0xFF, addr & 0xFF
        if apsel != 0:
            return 0  # no such AP: IDR 0 ends pyOCD's AP scan
        if reg == 0x00:
            return self._csw
        if reg == 0x04:
            return self._tar
        if reg == 0x0C:
            return self._drw_read()
        if 0x10 <= reg <= 0x1C:
            return self._read_word((self._tar & ~0xF) + (reg - 0x10))
        if reg == 0xF8:
            return ROM_TABLE | 0x3  # BASE: a debug entry present, ADIv5 format
        if reg == 0xFC:
            return AHB_AP_IDR
        return 0  # CFG: little-endian, 32-bit addresses

    def _write_ap(self, addr: int, data: int) -> None:
        apsel, reg = (addr >> 24) & 0xFF, addr & 0xFF
        if apsel != 0:
            return
        if reg == 0x00:
            self._csw = (data & ~0x80) | CSW_DEVICEEN
        elif reg == 0x04:
            self._tar = data & 0xFFFFFFFF
        elif reg == 0x0C:
            self._drw_write(data)
        elif 0x10 <= reg <= 0x1C:
            self._write_word((self._tar & ~0xF) + (reg - 0x10), data)

    def _size(self) -> int:
        return {0: 1, 1: 2, 2: 4}.get(self._csw & CSW_SIZE_MASK, 4)

    def _advance(self, size: int) -> None:
        if self._csw & 0x30 == CSW_ADDRINC_SINGLE:
            self._tar = (self._tar + size) & 0xFFFFFFFF

    def _drw_read(self) -> int:
        size, addr = self._size(), self._tar
        if size == 4:
            value = self._read_word(addr)
        else:  # the data on the byte lanes of the address (ADIv5 C2.2.5)
            word = self._read_word(addr & ~3)
            lane = (addr & 3) * 8
            value = word & (((1 << (8 * size)) - 1) << lane)
        self._advance(size)
        return value

    def _drw_write(self, data: int) -> None:
        size, addr = self._size(), self._tar
        if size == 4:
            self._write_word(addr, data)
        else:
            lane = (addr & 3) * 8
            value = (data >> lane) & ((1 << (8 * size)) - 1)
            self._write(addr, value.to_bytes(size, "little"))
        self._advance(size)

    # ------------------------------------------------------------ the system bus as the AHB-AP sees it
    def _read_word(self, addr: int) -> int:
        addr &= ~3
        if addr in self._rom:
            return self._rom[addr]
        if addr == DHCSR:
            value = (self._dhcsr & 0xF) | S_REGRDY | (S_HALT if self._halted else 0)
            if self._reset_seen:
                value |= S_RESET_ST
                self._reset_seen = False
            return value
        if addr == DCRDR:
            return self._dcrdr
        if addr == DEMCR:
            return self._demcr
        if addr == DFSR:
            return self._dfsr
        if addr == AIRCR:
            return 0xFA050000
        try:
            return int.from_bytes(self.vb.read_memory(addr, 4), "little")
        except Exception:  # noqa: BLE001 (unicorn's error: nothing at this address)
            raise exceptions.TransferFaultError("bus fault", fault_address=addr) from None

    def _write_word(self, addr: int, value: int) -> None:
        addr &= ~3
        value &= 0xFFFFFFFF
        if addr in self._rom:
            return
        if addr == DHCSR:
            if value >> 16 == DBGKEY:
                self._debug_control(value)
            return
        if addr == DCRSR:
            self._register_transfer(value)
            return
        if addr == DCRDR:
            self._dcrdr = value
            return
        if addr == DEMCR:
            self._demcr = value
            self.vb.write_memory(DEMCR, value.to_bytes(4, "little"))  # TRCENA: the board's DWT cycle counter
            return
        if addr == DFSR:
            self._dfsr &= ~value
            return
        if addr == AIRCR:
            if value >> 16 == VECTKEY and value & SYSRESETREQ:
                self._system_reset()
            return
        self._write(addr, value.to_bytes(4, "little"))

    def _write(self, addr: int, data: bytes) -> None:
        try:
            self.vb.write_memory(addr, data)
        except Exception:  # noqa: BLE001 (unicorn's error: nothing writable at this address, e.g. the flash)
            raise exceptions.TransferFaultError("bus fault", fault_address=addr) from None

    # ------------------------------------------------------------ the core's debug logic
    def _power_on(self) -> VirtualBoard:
        return VirtualBoard(self.board, ElfImage(entry=0, segments=(), symbols={}), flash=self.flash)

    def _system_reset(self) -> None:
        """Reset the core and the peripherals (not the debug logic): SP and PC from the flash's vector table."""
        self.vb.reset()
        self.vb.write_memory(DEMCR, self._demcr.to_bytes(4, "little"))
        self.resets += 1
        self._reset_seen = True
        self.fault = None
        self._halted = False  # running (not executed here until the debugger halts and resumes it)
        if self._demcr & VC_CORERESET and self._dhcsr & C_DEBUGEN:
            self._halt(DFSR_VCATCH)
        elif self.on_run is not None:
            self.on_run()

    def _halt(self, reason: int) -> None:
        self._halted = True
        self._dfsr |= reason

    def _debug_control(self, value: int) -> None:
        self._dhcsr = value & 0xF
        if not value & C_DEBUGEN:
            self._halted = False  # debug disabled: the core runs (it is not executed further here)
        elif value & C_HALT:
            self._halt(DFSR_HALTED)
        elif self._halted:
            self._resume(step=bool(value & C_STEP))

    def _resume(self, step: bool = False) -> None:
        """Run the core from its PC: until BKPT (halted there), idle on the UART or the budget (running)."""
        self._halted = False
        self.fault = self.vb._fault = None  # a core the debugger halted and restarted left its lockup
        try:
            reason = self.vb.run(max_cycles=None if step else RUN_BUDGET_CYCLES, timeout_s=120.0,
                                 max_instructions=1 if step else None)
        except VirtualBoardFault as fault:
            self.fault = fault
            self._halt(DFSR_HALTED)  # a real core would lock up; the debugger sees it stopped where it failed
            return
        if reason is StopReason.BKPT:
            self.vb._pc -= 2  # a debug halt on BKPT leaves the PC at the BKPT instruction
            self._halt(DFSR_BKPT)
        elif step:
            self._halt(DFSR_HALTED)

    def _register_transfer(self, value: int) -> None:
        regsel, write = value & 0x7F, bool(value & (1 << 16))
        uc = self.vb.uc
        if regsel == 15:  # DebugReturnAddress
            if write:
                self.vb._pc = self._dcrdr & ~1
            else:
                self._dcrdr = self.vb._pc
        elif regsel == 16:  # xPSR: the flags of the APSR, the EPSR's T bit (the core is always in Thumb state)
            if write:
                cpsr = uc.reg_read(A.UC_ARM_REG_CPSR)
                uc.reg_write(A.UC_ARM_REG_CPSR, (cpsr & 0x07FFFFFF) | (self._dcrdr & 0xF8000000))
            else:
                self._dcrdr = (uc.reg_read(A.UC_ARM_REG_CPSR) & 0xF8000000) | 0x01000000
        elif regsel in _CORE_REGS:
            if write:
                uc.reg_write(_CORE_REGS[regsel], self._dcrdr)
            else:
                self._dcrdr = uc.reg_read(_CORE_REGS[regsel]) & 0xFFFFFFFF
        elif not write:
            self._dcrdr = 0  # CONTROL/FAULTMASK/BASEPRI/PRIMASK: thread mode, privileged, nothing masked


def booted_build_id(flash: FlashMemory) -> str:
    """The build id the chip's firmware says in its HELLO when the chip boots from its flash alone (what a
    debugger programmed into it)."""
    from measure_agent.serial_link import BoardLink, open_serial

    from .pty import PtyBridge

    with PtyBridge(VirtualBoard(flash.board, ElfImage(entry=0, segments=(), symbols={}), flash=flash)) as bridge:
        line = open_serial(bridge.path)
        try:
            return BoardLink(line, timeout=5.0).hello().build_id
        finally:
            line.close()
