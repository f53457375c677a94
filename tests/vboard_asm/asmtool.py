"""Assemble small test programs for the virtual board with arm-none-eabi-as/ld (cached in the test-programs folder of the cache root).

A program is a Thumb assembly body placed in SRAM (zero wait state, default) or flash. The reset
vector points straight at it. The prologue enables DWT CYCCNT (DEMCR.TRCENA, DWT_CTRL.CYCCNTENA) and
the FPU (CPACR) when the core has one, then falls into the body. Bodies end with ``bkpt``.

``measure(seq)`` wraps a sequence between two CYCCNT reads, as real firmware does:

    ldr r6, =0xE0001004     @ CYCCNT address
    nop
    ldr r7, [r6]            @ T0 (sampled before this LDR executes)
    nop
    <seq>
    ldr r6, [r6]            @ T1
    bkpt #0

so T1 - T0 = cost(LDR) + cost(NOP) + cost(seq). The sequences must not use r6/r7.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from costmodel.boards import Board
from measure_agent.firmware_build import cache_dir

CACHE = cache_dir("test-programs") / "vboard-asm"

CPU_FLAGS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus"],
    "cortex-m3": ["-mcpu=cortex-m3"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
    # only to assemble instructions a core must reject:
    "cortex-m33+dp": ["-mcpu=cortex-m33", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
}

PROLOGUE = """
    sub sp, #64               @ scratch stack space for the tests
    ldr r0, =0xE000EDFC      @ DEMCR
    ldr r1, [r0]
    ldr r2, =0x01000000      @ TRCENA
    orrs r1, r2
    str r1, [r0]
    ldr r0, =0xE0001000      @ DWT_CTRL
    ldr r1, [r0]
    movs r2, #1              @ CYCCNTENA
    orrs r1, r2
    str r1, [r0]
"""
FPU_ON = """
    ldr r0, =0xE000ED88      @ CPACR: CP10/CP11 full access
    ldr r1, [r0]
    ldr r2, =0x00F00000
    orrs r1, r2
    str r1, [r0]
    dsb
    isb
"""

MEASURE_HEAD = """
    ldr r6, =0xE0001004
    nop
    ldr r7, [r6]
    nop
"""
MEASURE_TAIL = """
    ldr r6, [r6]
    bkpt #0
    .ltorg
"""


def have_toolchain() -> bool:
    return shutil.which("arm-none-eabi-as") is not None and shutil.which("arm-none-eabi-ld") is not None


def linker_script(board: Board) -> str:
    return f"""
MEMORY {{
  FLASH (rx) : ORIGIN = 0x{board.flash.base:08x}, LENGTH = {board.flash.size}
  RAM (rwx) : ORIGIN = 0x{board.sram.base:08x}, LENGTH = {board.sram.size}
}}
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {{
  .vectors : {{ KEEP(*(.vectors)) }} > FLASH
  .text : {{ *(.text*) *(.rodata*) }} > FLASH
  .ramcode : {{ *(.ramcode*) }} > RAM
  .data : {{ *(.data*) }} > RAM
}}
"""


UART_ECHO = """
    ldr r0, =0x{base:08x}
1:  ldr r1, [r0, #{status}]
    movs r3, #0x20          @ RXNE
    tst r1, r3
    beq 1b
    ldr r1, [r0, #{rdr}]
2:  ldr r2, [r0, #{status}]
    movs r3, #0x80          @ TXE
    tst r2, r3
    beq 2b
    str r1, [r0, #{tdr}]
    b 1b
    .ltorg
"""


def uart_echo(board: Board) -> str:
    """Polling echo loop on the board's UART (both register layouts)."""
    if board.uart.kind == "stm32-usart-v1":
        status, rdr, tdr = 0x00, 0x04, 0x04
    else:
        status, rdr, tdr = 0x1C, 0x24, 0x28
    return UART_ECHO.format(base=board.uart.base, status=status, rdr=rdr, tdr=tdr)


def program(board: Board, body: str, where: str = "sram", fpu: bool | None = None) -> str:
    if fpu is None:
        fpu = board.fpu != "none"
    section = ".ramcode" if where == "sram" else ".text"
    return f"""
    .syntax unified
    .thumb
    .section .vectors, "a"
    .word _estack
    .word start
    .section {section}, "ax"
    .align 2
    .thumb_func
    .global start
start:
{PROLOGUE}
{FPU_ON if fpu else ""}
{body}
    .ltorg
"""


def measure(seq: str) -> str:
    return MEASURE_HEAD + seq + MEASURE_TAIL


def build(board: Board, body: str, where: str = "sram", cpu: str | None = None, fpu: bool | None = None) -> bytes:
    """Assemble and link ``body`` for ``board``; returns the ELF bytes (cached by content)."""
    src = program(board, body, where, fpu)
    lds = linker_script(board)
    flags = CPU_FLAGS[board.core if cpu is None else cpu]
    key = hashlib.sha256("\0".join([src, lds, " ".join(flags)]).encode()).hexdigest()[:24]
    CACHE.mkdir(parents=True, exist_ok=True)
    elf = CACHE / f"{key}.elf"
    if not elf.exists():
        work = CACHE / f"{key}.tmp"
        work.mkdir(exist_ok=True)
        (work / "t.s").write_text(src)
        (work / "t.ld").write_text(lds)
        subprocess.run(["arm-none-eabi-as", *flags, "t.s", "-o", "t.o"], cwd=work, check=True,
                       capture_output=True, text=True)
        subprocess.run(["arm-none-eabi-ld", "-T", "t.ld", "t.o", "-o", "t.elf"], cwd=work, check=True,
                       capture_output=True, text=True)
        (work / "t.elf").replace(elf)
        shutil.rmtree(work, ignore_errors=True)
    return elf.read_bytes()


def run_measure(board: Board, seq: str, setup: str = "", where: str = "sram", cpu: str | None = None,
                strict: bool = True, post: str = ""):
    """Build ``setup + measure(seq)``, run to the BKPT; returns (CYCCNT delta, VirtualBoard)."""
    from measure_agent.vboard import StopReason, VirtualBoard

    body = setup + MEASURE_HEAD + seq + "\n    ldr r6, [r6]\n" + post + "\n    bkpt #0\n    .ltorg\n"
    vb = VirtualBoard(board, build(board, body, where=where, cpu=cpu), strict=strict)
    reason = vb.run(timeout_s=5.0)
    assert reason is StopReason.BKPT, reason
    return (vb.reg("r6") - vb.reg("r7")) & 0xFFFFFFFF, vb
