"""Instruction-set checks per core: what a core must reject ends in VirtualBoardFault (invalid instruction)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import build  # noqa: E402

from costmodel.boards import get_board  # noqa: E402
from measure_agent.vboard import StopReason, VirtualBoard, VirtualBoardFault  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")


def run(board_name: str, body: str, cpu: str | None = None):
    board = get_board(board_name)
    vb = VirtualBoard(board, build(board, body + "\n    bkpt #0\n", cpu=cpu))
    return vb, vb.run(timeout_s=5.0)


def rejects(board_name: str, insn: str, cpu: str) -> VirtualBoardFault:
    with pytest.raises(VirtualBoardFault) as exc:
        run(board_name, "    nop\n    " + insn + "\n    nop\n", cpu=cpu)
    assert "invalid instruction" in exc.value.reason or "NOCP" in exc.value.reason, exc.value
    return exc.value


def test_m4_rejects_double_precision():
    rejects("NUCLEO-L496ZG", "vadd.f64 d0, d1, d2", cpu="cortex-m7")


def test_m4_accepts_double_register_load_store():
    # FPv4-SP-D16 moves D registers (pairs of S registers) to and from memory; GCC emits this for doubles
    vb, reason = run("NUCLEO-L496ZG", "    sub sp, #8\n    vstr d0, [sp]\n    vldr d1, [sp]\n    add sp, #8\n")
    assert reason is StopReason.BKPT


def test_m4_rejects_armv8m():
    rejects("NUCLEO-L496ZG", "lda r0, [sp]", cpu="cortex-m33")


def test_m33_rejects_double_precision():
    rejects("NUCLEO-L552ZE-Q", "vadd.f64 d0, d1, d2", cpu="cortex-m33+dp")


def test_m33_accepts_armv8m():
    vb, reason = run("NUCLEO-L552ZE-Q", "    lda r0, [sp]\n")
    assert reason is StopReason.BKPT


def test_m7_accepts_double_precision():
    vb, reason = run("NUCLEO-F767ZI", "    vmov.f64 d1, #1.5\n    vadd.f64 d0, d1, d1\n    vmov r0, r1, d0\n")
    assert reason is StopReason.BKPT
    assert vb.reg("r1") == 0x40080000  # 3.0 as a double, high word


def test_m0p_rejects_thumb2():
    f = rejects("NUCLEO-G071RB", "add.w r0, r1, r2", cpu="cortex-m3")
    assert f.pc is not None


def test_m0p_rejects_udiv():
    rejects("NUCLEO-G071RB", "udiv r0, r1, r2", cpu="cortex-m3")


def test_m3_rejects_dsp_and_fpu():
    f = rejects("NUCLEO-F103RB", "smlad r0, r1, r2, r0", cpu="cortex-m4")
    assert f.reason == "invalid instruction for cortex-m3"
    rejects("NUCLEO-F103RB", "vadd.f32 s0, s1, s2", cpu="cortex-m4")


def test_m4_accepts_dsp_and_sp_fpu():
    vb, reason = run("NUCLEO-L496ZG", "    smlad r0, r1, r2, r0\n    vadd.f32 s0, s1, s2\n")
    assert reason is StopReason.BKPT


@pytest.mark.parametrize("insn", ["pkhbt r0, r1, r2", "ssat16 r0, #8, r1", "sxtb16 r0, r1", "uadd8 r0, r1, r2",
                                  "qadd r0, r1, r2", "smulbb r0, r1, r2", "smlalbb r0, r1, r2, r3"])
def test_m3_rejects_more_dsp(insn):
    rejects("NUCLEO-F103RB", insn, cpu="cortex-m4")


@pytest.mark.parametrize("insn", ["sxtb r0, r1", "sxth.w r0, r1", "rev r0, r1", "clz r0, r1", "ssat r0, #8, r1",
                                  "rbit r0, r1", "umlal r0, r1, r2, r3", "lsl.w r0, r1, r2"])
def test_m3_accepts_armv7m(insn):
    vb, reason = run("NUCLEO-F103RB", "    " + insn + "\n")
    assert reason is StopReason.BKPT


# ---------------------------------------------------------------- IT blocks (both memory modes)
# Unicorn 2.1.4 with a memory hook installed stores the IT state of an IT-block load/store into the CPU
# state before the access and never clears it when the IT block ends: the block entered next then starts
# inside a phantom IT block and skips its first instruction(s) (../shared/DESIGN.md, "Known pitfalls").
# Each program counts in r2 the instructions after a taken branch that leaves the block with the IT
# block: two `adds r2, #1` must both execute (r2 == 2); the phantom condition (EQ / NE of the IT) is
# false there, so a skipped instruction shows as r2 < 2.
IT_CASES = {
    # a single conditional load ends the IT block; a taken conditional branch leaves the block
    "ldr-ends-it-then-bcc": """
    it eq
    ldreq r1, [r4]
    cmp r3, #2
    bne 1f
    nop
""",
    # a conditional store in the last slot of an ITE block
    "str-ends-ite-then-bcc": """
    ite ne
    addne r0, #1
    streq r0, [r4]
    cmp r3, #2
    bne 1f
    nop
""",
    # the load is in the first of two slots: the stale state covers two instructions
    "ldr-in-itt-then-bcc": """
    itt eq
    ldreq r1, [r4]
    addeq r5, #1
    cmp r3, #2
    bne 1f
    nop
""",
    # an unconditional branch leaves the block
    "ldr-ends-it-then-b": """
    it eq
    ldreq r1, [r4]
    cmp r3, #2
    b 1f
    nop
""",
}


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "fast"])
@pytest.mark.parametrize("case", sorted(IT_CASES))
def test_it_block_memory_access_then_branch(case, strict):
    board = get_board("NUCLEO-L496ZG")
    body = ("    mov r4, sp\n    movs r0, #0\n    movs r2, #0\n    movs r3, #1\n    movs r5, #0\n"
            "    cmp r0, #0\n" + IT_CASES[case] + "1:  adds r2, #1\n    adds r2, #1\n    bkpt #0\n")
    vb = VirtualBoard(board, build(board, body), strict=strict)
    assert vb.run(timeout_s=5.0) is StopReason.BKPT
    assert vb.reg("r2") == 2, f"{vb.reg('r2')} of the 2 instructions after the branch executed"
    assert vb.reg("r5") == (1 if "itt" in case else 0)
