"""Per-core instruction timing of the virtual board, measured with DWT CYCCNT as firmware does.

Every program runs from SRAM (zero wait state) and reads CYCCNT before and after the sequence
(tests/vboard_asm/asmtool.py):

    ldr r6, =CYCCNT ; nop ; ldr r7, [r6] (T0) ; nop ; <seq> ; ldr r6, [r6] (T1)

CYCCNT is sampled when the reading LDR starts, so T1 - T0 = LDR + NOP + seq. The overhead is
3 cycles on M0+/M3/M4/M33 (LDR 2, not pipelined after a NOP; NOP 1) and 1 cycle on the M7 (LDR 1,
NOP dual-issued with it).

Sources of the hand-derived numbers:
  [M0+] Cortex-M0+ TRM (Arm DDI 0484), sec. 3.3 "Instruction set summary", Table 3-1
        (ALU 1, MULS 1 with the fast multiplier, LDR/STR 2, LDM/STM 1+N, B taken 2 / not taken 1, BL 3).
  [M3]  Cortex-M3 TRM (Arm DDI 0337), ch. 18 "Instruction Timing", Table 18-1.
  [M4]  Cortex-M4 TRM (Arm DDI 0439), sec. 3.3 "Instruction set summary", Table 3-1 "Cortex-M4
        instruction set summary" + sec. 3.3.2 "Load/store timings"; FPU: Table 7-1 "FPU instruction set".
  [M33] no published table: the M4 figures (README.md).
  Branch refill P (TRM: "1 to 3"): the model uses P = 2 for direct/register branches.
  UDIV/SDIV (TRM: 2..12, data dependent): fixed 7 in the model (README.md).
  [M7]  no published table: approximate model (dual-issue pairing rule, README.md); checked within
        a tolerance.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import run_measure  # noqa: E402

from costmodel.boards import get_board  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")

M0P = "NUCLEO-G071RB"
M3 = "NUCLEO-F103RB"
M4 = "NUCLEO-L496ZG"
M33 = "NUCLEO-L552ZE-Q"
M7 = "NUCLEO-F767ZI"
V7 = [M3, M4, M33]  # same integer table except multiplies

SETUP = """
    mov r4, sp          @ word-aligned scratch (64 bytes reserved by the prologue)
    movs r5, #16
    movs r1, #7
    movs r2, #3
    movs r3, #5
"""


_MODE = {"strict": True}


@pytest.fixture(autouse=True, params=[True, False], ids=["strict", "fast"])
def memory_mode(request):
    """Every timing test runs with the memory hook (strict=True: Unicorn provides the exact PC of the
    CYCCNT read) and without (strict=False: the read is attributed by matching its address against the
    block's loads/stores). Both must give the same numbers."""
    _MODE["strict"] = request.param
    yield


def cycles(board: str, seq: str, setup: str = SETUP) -> int:
    return run_measure(get_board(board), seq, setup, strict=_MODE["strict"])[0]


# ---------------------------------------------------------------- ALU
@pytest.mark.parametrize("board", [M0P, M3, M4, M33])
def test_alu(board):
    # 8 x ADDS: 1 cycle each (all tables)  -> 3 + 8 = 11
    assert cycles(board, "    adds r0, r0, #1\n" * 8) == 11


@pytest.mark.parametrize("board", [M3, M4, M33])
def test_alu_thumb2(board):
    # ADD.W with shifted register, ORR.W imm, UBFX, MOVW/MOVT: 1 each ([M3]/[M4] "ALU ... 1")
    seq = """
    add.w r0, r1, r2, lsl #2
    orr.w r0, r0, #0xff
    ubfx r0, r1, #2, #3
    movw r0, #0x1234
    movt r0, #0x5678
    """
    assert cycles(board, seq) == 3 + 5


# ---------------------------------------------------------------- multiplies
def test_mul_m0p():
    # MULS 1 (single-cycle multiplier implemented on STM32 M0+) x 3 -> 3 + 3 = 6
    assert cycles(M0P, "    muls r0, r1, r0\n" * 3) == 6


@pytest.mark.parametrize(
    "board,expected",
    [
        # M3 Table 18-1: MUL 1, MLA 2, UMULL 3..5 -> model 4, SMLAL 4..7 -> model 5 => 12
        (M3, 3 + 1 + 2 + 4 + 5),
        # M4 Table 3-1: MUL 1, MLA 1, UMULL 1, SMLAL 1 => 4
        (M4, 3 + 4),
        (M33, 3 + 4),
    ],
)
def test_mul_mla(board, expected):
    seq = """
    mul r0, r1, r2
    mla r0, r1, r2, r0
    umull r8, r9, r1, r2
    smlal r8, r9, r1, r2
    """
    assert cycles(board, seq) == expected


@pytest.mark.parametrize("board", [M4, M33])
def test_smlad(board):
    # SMLAD 1, SMULBB 1, SMLABB 1, SMUAD 1 (M4 Table 3-1, "Multiply" rows) -> 3 + 4 = 7
    seq = """
    smlad r0, r1, r2, r0
    smulbb r8, r1, r2
    smlabb r0, r1, r2, r0
    smuad r8, r1, r2
    """
    assert cycles(board, seq) == 7


# ---------------------------------------------------------------- loads / stores
@pytest.mark.parametrize("board", V7)
def test_load_store_pipelining(board):
    # [M4] sec. 3.3.2: LDR 2; a following LDR/STR whose address does not use the first LDR's result
    # is pipelined (-1); STR Rx,[Ry,#imm] is always 1; STR with register offset 2 unless after a LDR.
    #   ldr r0,[r4]        2
    #   ldr r1,[r4,#4]     1  (pipelined)
    #   ldr r2,[r4,#8]     1  (pipelined)
    #   str r0,[r4,#12]    1  (imm offset)
    #   nop                1
    #   str r1,[r4,r5]     2  (register offset, not after a load)
    #   ldr r3,[r4,r5]     2
    #   str r3,[r4,r5]     1  (register offset after LDR: pipelined)
    # total 11 -> 3 + 11 = 14
    seq = """
    ldr r0, [r4]
    ldr r1, [r4, #4]
    ldr r2, [r4, #8]
    str r0, [r4, #12]
    nop
    str r1, [r4, r5]
    ldr r3, [r4, r5]
    str r3, [r4, r5]
    """
    assert cycles(board, seq) == 14


@pytest.mark.parametrize("board", V7)
def test_agu_stall_and_dependent_load(board):
    # [M4] 3.3.2: an address depending on the preceding data-processing result stalls 1 cycle;
    # a load whose address is the previous load's result is not pipelined.
    #   adds r4, r4, #4    1
    #   ldr r0, [r4]       2 + 1 (AGU stall)
    #   ldr r1, [r0, #0]   -> address = r0, result of the previous LDR: 2 (no pipelining)
    # r0 must point at valid memory: [r4] holds r4 itself (stored in the setup)
    setup = SETUP + "    str r4, [r4, #4]\n"
    seq = """
    adds r4, r4, #4
    ldr r0, [r4]
    ldr r1, [r0, #0]
    """
    assert cycles(board, seq, setup) == 3 + 1 + 3 + 2


def test_load_store_m0p():
    # [M0+] LDR 2, LDR 2 (no pipelining on the M0+), STR 2, STRB 2 -> 3 + 8 = 11
    seq = """
    ldr r0, [r4]
    ldr r1, [r4, #4]
    str r0, [r4, #8]
    strb r1, [r4, #12]
    """
    assert cycles(M0P, seq) == 11


@pytest.mark.parametrize("board", [M0P, M3, M4, M33])
def test_ldm_stm(board):
    # LDM/STM of N registers: 1 + N (all tables) -> (1+4) + (1+4) = 10, + 3 = 13
    seq = """
    ldm r4!, {r0, r1, r2, r3}
    stm r4!, {r0, r1, r2, r3}
    """
    assert cycles(board, seq) == 13


@pytest.mark.parametrize("board", [M0P, M3, M4, M33])
def test_push_pop(board):
    # PUSH/POP {r0-r3}: 1 + N each -> 10, + 3 = 13
    assert cycles(board, "    push {r0-r3}\n    pop {r0-r3}\n") == 13


@pytest.mark.parametrize("board", V7)
def test_ldrd(board):
    # LDRD/STRD: 1 + N with N = 2 -> 3 each ([M4] Table 3-1) -> 6 + 3 = 9
    assert cycles(board, "    ldrd r0, r1, [r4]\n    strd r0, r1, [r4, #8]\n") == 9


# ---------------------------------------------------------------- branches
@pytest.mark.parametrize("board,taken", [(M0P, 2), (M3, 3), (M4, 3), (M33, 3)])
def test_branch_taken(board, taken):
    # B to the next instruction is still a taken branch: M0+ 2, M3/M4/M33 1 + P = 3; then NOP 1
    assert cycles(board, "    b 1f\n1:  nop\n") == 3 + taken + 1


@pytest.mark.parametrize("board", [M0P, M3, M4, M33])
def test_branch_not_taken(board):
    # CMP 1, BNE not taken 1, NOP 1 (all tables) -> 3 + 3 = 6
    assert cycles(board, "    cmp r0, r0\n    bne 1f\n    nop\n1:\n") == 6


@pytest.mark.parametrize("board,taken", [(M0P, 2), (M3, 3), (M4, 3), (M33, 3)])
def test_count_loop(board, taken):
    # movs 1; 10 x (subs 1 + bne 1) with 9 taken (+1 on M0+, +P=2 on v7-M/v8-M) and 1 not taken
    # M0+: 1 + 20 + 9 = 30 -> 33 ; M3/M4/M33: 1 + 20 + 18 = 39 -> 42
    seq = "    movs r0, #10\n1:  subs r0, #1\n    bne 1b\n"
    assert cycles(board, seq) == 3 + 1 + 20 + 9 * (taken - 1)


@pytest.mark.parametrize("board", V7)
def test_call_return(board):
    # BL 1+P = 3 ; callee: adds 1 ; BX LR 1+P = 3 ; nop 1 -> 8 + 3 = 11
    seq = """
    bl 2f
    nop
    b 3f
2:  adds r0, #1
    bx lr
3:
    """
    # after "bx lr" comes nop (1) then "b 3f" (1 + P = 3): total 3 + 1 + 3 + 1 + 3 = 11, + 3 = 14
    assert cycles(board, seq) == 14


def test_call_return_m0p():
    # [M0+]: BL 3, ADDS 1, BX 2, NOP 1, B 2 -> 9 + 3 = 12
    seq = """
    bl 2f
    nop
    b 3f
2:  adds r0, #1
    bx lr
3:
    """
    assert cycles(M0P, seq) == 12


# ---------------------------------------------------------------- divide
@pytest.mark.parametrize("board", V7)
def test_udiv(board):
    # UDIV/SDIV: TRM 2..12 cycles, data dependent; the model uses a fixed 7 -> 3 + 14 = 17
    assert cycles(board, "    udiv r0, r1, r2\n    sdiv r0, r1, r2\n") == 17


# ---------------------------------------------------------------- FPU
@pytest.mark.parametrize("board", [M4, M33])
def test_vfp(board):
    # [M4] Table 7-1: VADD 1, VMUL 1, VDIV 14, VSQRT 14, VMLA 3, VLDR.32 2, VSTR.32 2, VMOV 1
    # -> 38, + 3 = 41
    seq = """
    vadd.f32 s0, s1, s2
    vmul.f32 s3, s4, s5
    vdiv.f32 s6, s7, s8
    vsqrt.f32 s9, s10
    vmla.f32 s0, s1, s2
    vldr s11, [r4]
    vstr s11, [r4, #4]
    vmov s12, r1
    """
    assert cycles(board, seq) == 41


# ---------------------------------------------------------------- M7 (approximate)
M7_TOL = 0.25  # +/- 25 % (and at least 1 cycle) against the documented approximation


def near(value: int, expected: float) -> bool:
    return abs(value - expected) <= max(1.0, M7_TOL * expected)


def test_m7_dual_issue():
    # 8 independent ADDS pair up (4 issue cycles) while 8 dependent ADDS cannot (8 cycles).
    # Overhead on the M7 is 1 (LDR 1, NOP dual-issued).
    indep = cycles(M7, "    adds r0, #1\n    adds r1, #1\n    adds r2, #1\n    adds r3, #1\n" * 2)
    dep = cycles(M7, "    adds r0, r0, #1\n" * 8)
    assert near(indep, 1 + 4)
    assert near(dep, 1 + 8)
    assert indep < dep


def test_m7_loop_and_fp():
    # loop: movs 1 + 10 x (subs, bne pair: 1) + 9 taken x 1 refill (predicted branch) = 20 -> 21
    assert near(cycles(M7, "    movs r0, #10\n1:  subs r0, #1\n    bne 1b\n"), 21)
    # VADD.F64 1, VMUL.F64 1 (no pairing between FP ops), VDIV.F64 ~29, VDIV.F32 14 -> 45 + 1
    seq = """
    vadd.f64 d0, d1, d2
    vmul.f64 d3, d4, d5
    vdiv.f64 d6, d7, d8
    vdiv.f32 s0, s1, s2
    """
    assert near(cycles(M7, seq), 46)


def test_m7_loads():
    # LDR 1 each, the second pairs with a preceding ALU op: adds 1, ldr 0 (paired), ldr 1 -> 2 + 1
    assert near(cycles(M7, "    adds r0, #1\n    ldr r1, [r4]\n    ldr r2, [r4, #4]\n"), 3)


def test_m7_mul_dsp_div_ldm():
    # MUL 1 (no pairing with the paired NOP before), SMLAD 1 (two multiplies never pair), UDIV 7
    # (fixed), LDM of 4 registers 1 + ceil(4/2) = 3 over the 64-bit bus -> 12, + 1 overhead = 13
    seq = """
    mul r0, r1, r2
    smlad r8, r1, r2, r8
    udiv r9, r1, r2
    ldm r4, {r0-r3}
    """
    assert near(cycles(M7, seq), 13)
