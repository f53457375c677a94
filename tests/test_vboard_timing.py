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
  Branch refill P (TRM Table 3-1: "1 to 3 depending on the alignment and width of the target
        instruction, and whether the processor manages to speculate the address early"): P = 1 for direct
        branches (B, Bcc, CBZ, BL: target computed at decode and fetched early), 2 for register branches
        (BX, BLX, MOV PC), 3 for loads to PC and TBB/TBH (3.3.2: "three cycles for the pipeline reload"),
        +1 when the target is a 32-bit instruction at a halfword offset (its second half is in the next
        fetch word: a second fetch).
  UDIV/SDIV (TRM: 2..12, "early termination" on the leading zeros/ones of the operands): 1 + ceil(q/3)
        cycles, at least 2, with q = clz(|Rm|) - clz(|Rn|) + 1 the quotient bits (README.md).
  [M7]  no published table: approximate model (dual-issue pairing rule, README.md); checked within
        a tolerance.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import build, run_measure  # noqa: E402

from costmodel.boards import get_board  # noqa: E402
from measure_agent.vboard import StopReason, VirtualBoard  # noqa: E402

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
@pytest.mark.parametrize("board,taken", [(M0P, 2), (M3, 2), (M4, 2), (M33, 2)])
def test_branch_taken(board, taken):
    # B to the next instruction is still a taken branch: M0+ 2, M3/M4/M33 1 + P with P = 1 (direct branch,
    # 16-bit target); then NOP 1
    assert cycles(board, "    b 1f\n1:  nop\n") == 3 + taken + 1


@pytest.mark.parametrize("board", [M0P, M3, M4, M33])
def test_branch_not_taken(board):
    # CMP 1, BNE not taken 1, NOP 1 (all tables) -> 3 + 3 = 6
    assert cycles(board, "    cmp r0, r0\n    bne 1f\n    nop\n1:\n") == 6


@pytest.mark.parametrize("board,taken", [(M0P, 2), (M3, 2), (M4, 2), (M33, 2)])
def test_count_loop(board, taken):
    # movs 1; 10 x (subs 1 + bne 1) with 9 taken (+1 on M0+, +P=1 on v7-M/v8-M: direct branch to a
    # 16-bit target) and 1 not taken -> 1 + 20 + 9 = 30 -> 33 on every core
    seq = "    movs r0, #10\n1:  subs r0, #1\n    bne 1b\n"
    assert cycles(board, seq) == 3 + 1 + 20 + 9 * (taken - 1)


@pytest.mark.parametrize("board", V7)
def test_call_return(board):
    # BL 1+P = 2 (direct, 16-bit target) ; callee: adds 1 ; BX LR 1+P = 3 (register branch, 16-bit
    # target) ; nop 1 ; "b 3f" 1 + P = 2 (direct; the target is the 16-bit LDR of the measurement)
    seq = """
    bl 2f
    nop
    b 3f
2:  adds r0, #1
    bx lr
3:
    """
    # total 2 + 1 + 3 + 1 + 2 = 9, + 3 = 12
    assert cycles(board, seq) == 12


@pytest.mark.parametrize("board", V7)
def test_branch_refill_target_width_and_alignment(board):
    # TRM Table 3-1, P = 1..3 "depending on the alignment and width of the target instruction": the fetch
    # unit reads aligned words; a 32-bit target at a halfword offset spans two words and needs a second
    # fetch before it can be decoded (+1). Direct branches speculate the target early (P = 1).
    #   b 1f  -> 16-bit nop, word aligned            1 + 1      = 2 ; nop   1
    #   b 2f  -> 32-bit add.w at a halfword offset   1 + 1 + 1  = 3 ; add.w 1
    #   b 3f  -> 32-bit add.w, word aligned          1 + 1      = 2 ; add.w 1
    #   bx r5 -> 32-bit add.w at a halfword offset   1 + 2 + 1  = 4 ; add.w 1   (register branch: P = 2)
    # total 2+1+3+1+2+1+4+1 = 15, + 3 = 18
    setup = SETUP + "    ldr r5, =4f + 1\n"
    seq = """
    b 1f
    .align 2
1:  nop
    b 2f
    .align 2
    nop
2:  add.w r0, r0, #1
    b 3f
    .align 2
3:  add.w r0, r0, #1
    bx r5
    .align 2
    nop
4:  add.w r0, r0, #1
    """
    assert cycles(board, seq, setup) == 18


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
    # UDIV/SDIV 7 / 3: q = clz(3) - clz(7) + 1 = 30 - 29 + 1 = 2 quotient bits -> 1 + ceil(2/3) = 2 each
    # -> 3 + 4 = 7
    assert cycles(board, "    udiv r0, r1, r2\n    sdiv r0, r1, r2\n") == 7


@pytest.mark.parametrize("board", V7)
def test_udiv_early_termination(board):
    # TRM Table 3-1: SDIV/UDIV 2..12, "division operations use early termination to minimize the number
    # of cycles required based on the number of leading ones and zeros in the input operands". Model: the
    # divider produces 3 quotient bits per cycle after one issue cycle, q = clz(|Rm|) - clz(|Rn|) + 1
    # quotient bits, cycles = max(2, 1 + ceil(q / 3)) (2..12 exactly: q = 32 for 0xFFFFFFFF / 1):
    #   udiv 0xFFFFFFFF / 1   q = 31 - 0 + 1 = 32   -> 1 + 11 = 12
    #   udiv 1 / 0xFFFFFFFF   q <= 0                -> 2
    #   udiv 1000 / 10        q = 28 - 22 + 1 = 7   -> 1 + 3  = 4
    #   sdiv -1000 / 10       |-1000| = 1000: q = 7 -> 4
    #   udiv 1 / 0            divisor 0 (result 0)  -> 2
    # total 24, + 3 = 27
    setup = SETUP + """
    mvn r0, #0
    movs r1, #1
    movw r2, #1000
    movs r3, #10
    movs r5, #0
    movw r8, #1000
    rsb r8, r8, #0
"""
    seq = """
    udiv r9, r0, r1
    udiv r9, r1, r0
    udiv r9, r2, r3
    sdiv r9, r8, r3
    udiv r9, r1, r5
    """
    assert cycles(board, seq, setup) == 27


@pytest.mark.parametrize("board", V7)
def test_failed_condition_in_it_block(board):
    # Armv7-M ARM A7.3: an instruction whose condition fails in an IT block does not execute (behaves as a
    # NOP): it takes its issue cycle only, 1 (as a not-taken branch, TRM Table 3-1), whatever it would
    # have cost.
    #   cmp r0, r0        1   (Z = 1)
    #   ite ne            1
    #   ldrne r5, [r4]    1   (fails: not 2)
    #   moveq r5, #0      1
    #   it ne             1
    #   udivne r3, r1, r2 1   (fails: not 2..12)
    #   it eq             1
    #   ldreq r5, [r4]    2   (passes: LDR 2)
    # total 9, + 3 = 12
    seq = """
    cmp r0, r0
    ite ne
    ldrne r5, [r4]
    moveq r5, #0
    it ne
    udivne r3, r1, r2
    it eq
    ldreq r5, [r4]
    """
    assert cycles(board, seq) == 12


@pytest.mark.parametrize("board", V7)
def test_literal_load_contends_with_fetch(board):
    # TRM 3.3.2: "LDR Rx,[PC,#imm] might add a cycle because of contention with the fetch unit": the
    # literal and the instruction stream come through the same code-memory interface (on STM32 the
    # flash interface serves D-Code before I-Code, RM0351 3.3.3 "Data management"), so a PC-relative
    # load costs one cycle more than the same load through a register: +1 at any wait states.
    #   ldr r0, [r4]          2
    #   ldr r1, =0x12345678   1 (pipelined after a load) + 1 (fetch contention) = 2
    #   nop                   1
    #   ldr r2, =0x9abcdef0   2 + 1 = 3
    # total 8, + 3 = 11
    seq = """
    ldr r0, [r4]
    ldr r1, =0x12345678
    nop
    ldr r2, =0x9abcdef0
    """
    assert cycles(board, seq) == 11


@pytest.mark.parametrize("board", V7)
def test_unaligned_access_split(board):
    # Cortex-M3 TRM (DDI0337) 14.9 / Cortex-M4 TRM 3.3.2: unaligned LDR/STR(H) are "converted into two or
    # more aligned accesses" by the bus interface; every extra transfer costs a cycle:
    #   ldr.w r0, [r4, #1]    word at +1: byte + halfword + byte  2 + 2 = 4
    #   nop                                                       1
    #   ldr.w r1, [r4, #2]    word at +2: two halfwords            2 + 1 = 3
    #   nop                                                       1
    #   ldrh.w r2, [r4, #1]   halfword at +1: two bytes            2 + 1 = 3
    #   nop                                                       1
    #   ldrh.w r3, [r4, #3]   halfword crossing a word: two bytes  2 + 1 = 3
    #   nop                                                       1
    #   str.w r0, [r4, #6]    word at +2: two halfwords            1 + 1 = 2
    # total 19, + 3 = 22
    seq = """
    ldr.w r0, [r4, #1]
    nop
    ldr.w r1, [r4, #2]
    nop
    ldrh.w r2, [r4, #1]
    nop
    ldrh.w r3, [r4, #3]
    nop
    str.w r0, [r4, #6]
    """
    assert cycles(board, seq) == 22


@pytest.mark.parametrize("board", [M0P, M4, M7])
def test_cyccnt_right_after_dwt_ctrl_store(board):
    # CYCCNT is exact to the instruction in both modes: stop the counter, zero it, then start it again
    # with a read-modify-write of DWT_CTRL (the read goes through the Python PPB model) and read CYCCNT
    # right after the enabling store. CYCCNT counts from the cycle the enabling STR starts: the value
    # read is the STR's cost (1 on M3/M4/M7, 2 on the M0+: [M0+] STR 2).
    board_ = get_board(board)
    body = """
    ldr r0, =0xE0001000
    ldr r5, =0xE0001004
    movs r2, #1
    ldr r1, [r0]
    bics r1, r2
    str r1, [r0]
    movs r3, #0
    str r3, [r5]
    ldr r1, [r0]
    orrs r1, r2
    str r1, [r0]
    ldr r7, [r5]
    bkpt #0
    .ltorg
"""
    vb = VirtualBoard(board_, build(board_, body), strict=_MODE["strict"])
    assert vb.run(timeout_s=5.0) is StopReason.BKPT
    assert vb.reg("r7") == (2 if board == M0P else 1)


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
