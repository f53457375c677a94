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
    # M4 Table 3-1: subs 1 + 6 x nop 1 + bne taken 1 + P(2) = 10 per iteration
    assert per_iteration(get_board("NUCLEO-L496ZG"), "sram") == 10


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


def test_flash_data_reads():
    # strict mode: every data read from flash pays the wait states (F103: prefetch only, 2 WS, no
    # data cache). Same code in SRAM, r4 pointing at flash vs. SRAM: 2 loads -> +4 cycles.
    board = get_board("NUCLEO-F103RB")
    seq = "    ldr r0, [r4]\n    nop\n    ldr r1, [r4, #4]\n"
    from_flash = run_measure(board, seq, setup="    ldr r4, =0x08000000\n")[0]
    from_sram = run_measure(board, seq, setup="    mov r4, sp\n")[0]
    assert from_flash - from_sram == 4
    # ART data cache (L496): the second read of the same 32-byte line hits -> only the first pays 4
    board = get_board("NUCLEO-L496ZG")
    from_flash = run_measure(board, seq, setup="    ldr r4, =0x08000100\n")[0]
    from_sram = run_measure(board, seq, setup="    mov r4, sp\n")[0]
    assert from_flash - from_sram == 4


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
