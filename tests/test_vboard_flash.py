"""Flash wait states and accelerators: the same loop in flash and in SRAM.

The loop (16 bytes, aligned to 32 bytes, entered by a branch) is

    1:  subs r0, #1 ; nop x 6 ; bne 1b

Running it N = 100 and N = 200 times and subtracting cancels the entry/exit effects, so
(delta(200) - delta(100)) / 100 is the per-iteration cost. The extra cost of an iteration in flash
over SRAM, by the model documented in README.md ("Flash wait states"):
  none      (L496 geometry: 64-bit fetch lines, 4 WS): two lines fetched per iteration -> +8
  prefetch  (F103, 64-bit lines, 2 WS): sequential line hidden, the branch target line pays -> +2
  art       (L496, 4 WS, I-cache of 32-byte lines): the loop stays cached -> +0
  cache     (F767 L1 I-cache, 7 WS) disabled (reset state): the 32-byte line is refetched
            after every taken branch -> +7 ; enabled by the firmware through CCR.IC -> +0
  cache     (L552 ICACHE, 5 WS): +0
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import run_measure  # noqa: E402

from costmodel.boards import get_board  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")

LOOP = """
    movs r0, #{n}
    b 1f
    .align 5
1:  subs r0, #1
    nop
    nop
    nop
    nop
    nop
    nop
    bne 1b
"""

M7_CACHES_ON = """
    ldr r0, =0xE000EF50     @ ICIALLU
    movs r1, #0
    str r1, [r0]
    ldr r0, =0xE000ED84     @ CSSELR = 0 (data cache)
    str r1, [r0]
    ldr r0, =0xE000EF60     @ DCISW (one write stands for the set/way loop)
    str r1, [r0]
    dsb
    isb
    ldr r0, =0xE000ED14     @ CCR: IC (bit 17) | DC (bit 16)
    ldr r1, [r0]
    ldr r2, =0x00030000
    orrs r1, r2
    str r1, [r0]
    dsb
    isb
"""


def per_iteration(board, where: str, setup: str = "") -> float:
    d100 = run_measure(board, LOOP.format(n=100), setup=setup, where=where)[0]
    d200 = run_measure(board, LOOP.format(n=200), setup=setup, where=where)[0]
    return (d200 - d100) / 100


def flash_extra(board, setup: str = "") -> float:
    return per_iteration(board, "flash", setup) - per_iteration(board, "sram", setup)


def test_sram_loop_cost_m4():
    # M4 Table 3-1: subs 1 + 6 x nop 1 + bne taken 1 + P(1: direct branch, 16-bit target) = 9 per iteration
    assert per_iteration(get_board("NUCLEO-L496ZG"), "sram") == 9


def test_no_accelerator():
    board = dataclasses.replace(get_board("NUCLEO-L496ZG"), flash_accelerator="none")
    assert flash_extra(board) == 8


def test_prefetch():
    assert flash_extra(get_board("NUCLEO-F103RB")) == 2


def test_art():
    assert flash_extra(get_board("NUCLEO-L496ZG")) == 0


def test_art_cold_misses_cost_once():
    # same code, one run: flash costs more than SRAM by a bounded amount (cold ART misses + literals)
    board = get_board("NUCLEO-L496ZG")
    f = run_measure(board, LOOP.format(n=100), where="flash")[0]
    s = run_measure(board, LOOP.format(n=100), where="sram")[0]
    assert 0 < f - s <= 4 * 4


def test_m7_cache_disabled_then_enabled():
    board = get_board("NUCLEO-F767ZI")
    assert flash_extra(board) == 7
    assert flash_extra(board, setup=M7_CACHES_ON) == 0


def test_l5_icache():
    assert flash_extra(get_board("NUCLEO-L552ZE-Q")) == 0


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "fast"])
def test_flash_data_reads(strict):
    # every data read from flash pays the wait states (F103: prefetch only, 2 WS, no data cache), in both
    # modes: strict through the memory hook, fast through the data program replayed at block entry.
    # Same code in SRAM, r4 pointing at flash vs. SRAM: 2 loads -> +4 cycles.
    board = get_board("NUCLEO-F103RB")
    seq = "    ldr r0, [r4]\n    nop\n    ldr r1, [r4, #4]\n"
    from_flash = run_measure(board, seq, setup="    ldr r4, =0x08000000\n", strict=strict)[0]
    from_sram = run_measure(board, seq, setup="    mov r4, sp\n", strict=strict)[0]
    assert from_flash - from_sram == 4
    # ART data cache (L496): the second read of the same 32-byte line hits -> only the first pays 4
    board = get_board("NUCLEO-L496ZG")
    from_flash = run_measure(board, seq, setup="    ldr r4, =0x08000100\n", strict=strict)[0]
    from_sram = run_measure(board, seq, setup="    mov r4, sp\n", strict=strict)[0]
    assert from_flash - from_sram == 4


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "fast"])
def test_flash_data_reads_through_any_base(strict):
    # F103 (M3, prefetch, 2 WS, no data cache): a flash read transfer costs 2 WS wherever the address comes
    # from. The flash pointer is stored to the stack and loaded back in the same block (fast mode follows
    # the stored value), then used with a register offset, an immediate offset and an unaligned word.
    #   ldr r2, [r3, #8]     pointer from the stack (SRAM)                           2
    #   nop                                                                         1
    #   ldr r0, [r2, r5]     flash word 0x08000008: LDR 2 + 2 WS                     4
    #   nop                                                                         1
    #   ldrh r1, [r2, #6]    flash halfword 0x08000006: 2 + 2 WS                     4
    #   nop                                                                         1
    #   ldr.w r0, [r2, #13]  flash word at 0x0800000D: byte + halfword + byte:
    #                        LDR 2 + 2 extra transfers + 3 transfers x 2 WS         10
    #   nop                                                                         1
    # total 24, + 3 = 27 (the same code on an SRAM buffer: 2+1+2+1+2+1+4+1 = 14, + 3 = 17)
    board = get_board("NUCLEO-F103RB")
    seq = """
    ldr r2, [r3, #8]
    nop
    ldr r0, [r2, r5]
    nop
    ldrh r1, [r2, #6]
    nop
    ldr.w r0, [r2, #13]
    nop
"""
    setup = "    str r4, [sp, #8]\n    mov r3, sp\n    movs r5, #8\n"
    assert run_measure(board, seq, setup="    ldr r4, =0x08000000\n" + setup, strict=strict)[0] == 27
    assert run_measure(board, seq, setup="    add r4, sp, #16\n" + setup, strict=strict)[0] == 17


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "fast"])
def test_conditional_flash_load(strict):
    # F103, 2 WS: a conditional load that executes pays its flash read; one that fails its condition
    # neither reads nor costs more than its issue cycle (Armv7-M ARM A7.3).
    #   cmp r0, r0; it eq; ldreq r1, [r4]      1 + 1 + (2 + 2 WS) = 6
    #   it ne; ldrne r1, [r4, #4]              1 + 1 (fails)      = 2
    # total 8, + 3 = 11
    board = get_board("NUCLEO-F103RB")
    seq = "    cmp r0, r0\n    it eq\n    ldreq r1, [r4]\n    it ne\n    ldrne r1, [r4, #4]\n"
    assert run_measure(board, seq, setup="    ldr r4, =0x08000000\n", strict=strict)[0] == 11


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "fast"])
def test_unaligned_flash_read_across_art_lines(strict):
    # L496 ART D-cache, 32-byte lines, 4 WS: a word at line offset 30 is two halfword transfers, one in
    # each line. r4 = a line start, the line already cached by the first load:
    #   ldr r0, [r4]          miss: 2 + 4                                   6
    #   nop                                                                1
    #   ldr.w r1, [r4, #30]   halfword (hit) + halfword in the next line (miss 4) + 1 split: 2 + 1 + 4 = 7
    # total 14, + 3 = 17
    board = get_board("NUCLEO-L496ZG")
    seq = "    ldr r0, [r4]\n    nop\n    ldr.w r1, [r4, #30]\n"
    assert run_measure(board, seq, setup="    ldr r4, =0x08000200\n", strict=strict)[0] == 17


def _two_regions(board, seq, setup):
    """setup, then the measured seq twice, with a BKPT between the two (r6 - r7 after each)."""
    from asmtool import MEASURE_HEAD, build

    once = MEASURE_HEAD + seq + "\n    ldr r6, [r6]\n    bkpt #0\n"
    return build(board, setup + once + once + "    .ltorg\n")


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "fast"])
def test_wait_states_changed_at_run_time(strict):
    # Model.set_wait_states (what the FLASH_ACR model calls when the firmware writes LATENCY): every later
    # flash access pays the new latency. F103 (no data cache): two flash reads, 2 WS then 5 WS:
    # 3 + (2 + 2) + 1 + (2 + 2) = 12, then 3 + (2 + 5) + 1 + (2 + 5) = 18
    from measure_agent.vboard import StopReason, VirtualBoard

    board = get_board("NUCLEO-F103RB")
    elf = _two_regions(board, "    ldr r0, [r4]\n    nop\n    ldr r1, [r4, #4]\n", "    ldr r4, =0x08000000\n")
    vb = VirtualBoard(board, elf, strict=strict)
    assert vb.run(timeout_s=5) is StopReason.BKPT
    assert (vb.reg("r6") - vb.reg("r7")) & 0xFFFFFFFF == 12
    vb.model.set_wait_states(5)
    assert vb.run(timeout_s=5) is StopReason.BKPT
    assert (vb.reg("r6") - vb.reg("r7")) & 0xFFFFFFFF == 18


KERNEL_C = r"""
#include <stdint.h>
#define N 240
static const int8_t weights[N] = { WEIGHTS };
static const uint8_t lut[256] = { LUT };
static const int16_t pairs[N / 2 + 1] = { PAIRS };
int8_t x[N];
volatile int32_t sink;

__attribute__((noinline)) int32_t dot(const int8_t *w, const int8_t *v, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += (int32_t)w[i] * v[i];
    return acc;
}
__attribute__((noinline)) int32_t lookup(const uint8_t *t, const int8_t *v, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += t[(uint8_t)v[i]];
    return acc;
}
__attribute__((noinline)) int32_t unaligned_halves(const uint8_t *p, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) { int16_t h; __builtin_memcpy(&h, p + 2 * i + 1, 2); acc += h; }
    return acc;
}
__attribute__((noinline)) int32_t clamped(const int16_t *p, const int8_t *v, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) { int32_t a = v[i]; acc += a > 0 ? p[i] : a; }
    return acc;
}
void start(void) {
    for (int i = 0; i < N; i++) x[i] = (int8_t)(i * 37 + 11);
    for (int r = 0; r < 3; r++) {
        sink = dot(weights, x, N);
        sink = lookup(lut, x, N);
        sink = unaligned_halves((const uint8_t *)pairs, N / 2 - 1);
        sink = clamped(pairs, x, N / 2);
    }
    __asm__ volatile ("bkpt #0");
    for (;;) ;
}
extern uint32_t _estack;
__attribute__((section(".vectors"), used)) const void *vectors[2] = { &_estack, (void *)start };
"""

KERNEL_LDS = """
MEMORY {{ FLASH (rx) : ORIGIN = 0x{fb:08x}, LENGTH = {fs}
          RAM (rwx) : ORIGIN = 0x{rb:08x}, LENGTH = {rs} }}
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {{
  .vectors : {{ KEEP(*(.vectors)) }} > FLASH
  .text : {{ *(.text*) *(.rodata*) }} > FLASH
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) *(.data*) }} > RAM
}}
"""


def _flash_table_kernel(board) -> bytes:
    import hashlib
    import subprocess
    import tempfile

    from measure_agent.firmware_build import cache_dir

    src = (KERNEL_C.replace("WEIGHTS", ", ".join(str((i * 53) % 255 - 127) for i in range(240)))
           .replace("LUT", ", ".join(str((i * 97 + 5) % 256) for i in range(256)))
           .replace("PAIRS", ", ".join(str((i * 811) % 65536 - 32768) for i in range(121))))
    cpu = {"cortex-m3": "-mcpu=cortex-m3", "cortex-m4": "-mcpu=cortex-m4", "cortex-m7": "-mcpu=cortex-m7",
           "cortex-m0plus": "-mcpu=cortex-m0plus", "cortex-m33": "-mcpu=cortex-m33"}[board.core]
    lds = KERNEL_LDS.format(fb=board.flash.base, fs=board.flash.size, rb=board.sram.base, rs=board.sram.size)
    key = hashlib.sha256((src + lds + cpu).encode()).hexdigest()[:16]
    out = cache_dir("test-programs") / "vboard-flash" / f"tables_{key}.elf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as d:
            Path(d, "k.c").write_text(src)
            Path(d, "k.ld").write_text(lds)
            subprocess.run(["arm-none-eabi-gcc", "-O2", cpu, "-mthumb", "-mfloat-abi=soft", "-nostdlib",
                            "-nostartfiles", "-ffreestanding", "-T", "k.ld", "k.c", "-o", "k.elf"], cwd=d, check=True)
            Path(d, "k.elf").replace(out)
    return out.read_bytes()


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("name", ["NUCLEO-L496ZG", "NUCLEO-F103RB", "NUCLEO-F767ZI", "DISCO-F469NI"])
def test_fast_mode_times_flash_tables_like_strict(name):
    # GCC -O2 code reading const tables in flash through pointers (a dot product, a byte look-up table
    # indexed by data, unaligned halfwords, a conditional load): the fast mode derives every address at
    # block entry and charges the same flash wait states, cache lookups and unaligned splits as the
    # strict mode's memory hook, access by access.
    from measure_agent.vboard import StopReason, VirtualBoard

    board = get_board(name)
    elf = _flash_table_kernel(board)
    res = {}
    for strict in (True, False):
        vb = VirtualBoard(board, elf, strict=strict)
        assert vb.run(timeout_s=30) is StopReason.BKPT
        res[strict] = (vb.cycles, vb.instructions, vb.model.stats())
    assert res[True][1] == res[False][1]
    assert res[False][2]["unresolved"] == 0
    assert res[True][0] == res[False][0]


def test_determinism():
    for name, setup in (("NUCLEO-L496ZG", ""), ("NUCLEO-F767ZI", M7_CACHES_ON)):
        board = get_board(name)
        a = run_measure(board, LOOP.format(n=150), setup=setup, where="flash")
        b = run_measure(board, LOOP.format(n=150), setup=setup, where="flash")
        assert a[0] == b[0]
        assert (a[1].cycles, a[1].instructions) == (b[1].cycles, b[1].instructions)
        vb = a[1]
        cycles, insns = vb.cycles, vb.instructions
        vb.reset()
        vb.run(timeout_s=5)
        assert (vb.cycles, vb.instructions) == (cycles, insns)


@pytest.mark.parametrize("name", ["NUCLEO-L496ZG", "NUCLEO-F103RB", "NUCLEO-F767ZI", "NUCLEO-G071RB"])
def test_fast_mode_times_literal_pools_like_strict(name):
    # strict=False drops the memory hook; literal-pool loads (the only flash data reads here: the
    # `ldr rX, =const` of the program, placed in flash) are then charged statically, same result.
    board = get_board(name)
    a = run_measure(board, LOOP.format(n=50), where="flash", strict=True)
    b = run_measure(board, LOOP.format(n=50), where="flash", strict=False)
    assert a[0] == b[0] and a[1].cycles == b[1].cycles
