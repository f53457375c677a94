"""Bad firmware ends with a clear VirtualBoardFault (reason, pc, address) within bounded time."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import build  # noqa: E402

from costmodel.boards import get_board  # noqa: E402
from measure_agent.vboard import StopReason, VirtualBoard, VirtualBoardFault  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")

M4 = get_board("NUCLEO-L496ZG")


def board_for(body: str, board=M4, **kw) -> VirtualBoard:
    return VirtualBoard(board, build(board, body + "\n    bkpt #0\n    .ltorg\n"), **kw)


def test_wild_jump():
    vb = board_for("    ldr r0, =0x30000001\n    bx r0\n")
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    f = exc.value
    assert "wild jump" in f.reason
    assert f.pc == 0x30000000 and f.address == 0x30000000
    # the fault is sticky: the board does not continue
    with pytest.raises(VirtualBoardFault):
        vb.run(timeout_s=5)


def test_jump_without_thumb_bit():
    vb = board_for("    ldr r0, =start\n    bics r0, r0, #1\n    bx r0\n")
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    assert "Thumb" in str(exc.value)


def test_unmapped_read_reports_address():
    vb = board_for("    ldr r0, =0x30000010\n    ldr r1, [r0]\n")
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    assert "unmapped" in exc.value.reason and exc.value.address == 0x30000010
    assert 0x20000000 <= exc.value.pc < 0x20010000


def test_write_to_flash_faults():
    vb = board_for("    ldr r0, =0x08000100\n    str r0, [r0]\n")
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    assert "read-only" in exc.value.reason


@pytest.mark.parametrize("insn", ["ldrd r2, r3, [r0]", "strd r2, r3, [r0]", "ldm r0, {r2, r3}",
                                  "vldr s0, [r0]"])
def test_unaligned_multiword_faults(insn):
    # Unicorn executes these without complaint; with strict=True the board's memory hook raises
    # UsageFault UNALIGNED on the access itself (base computed in the same block).
    vb = board_for(f"    ldr r0, =0x20001001\n    nop\n    {insn}\n    nop\n", strict=True)
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    f = exc.value
    assert "unaligned" in f.reason
    assert f.address == 0x20001001
    assert vb.read_memory(f.pc, 2) != b"\x00\xbf"  # pc is the faulting instruction, not the NOP


@pytest.mark.parametrize("insn", ["ldrd r2, r3, [r0, #8]", "strd r2, r3, [r0]", "ldm r0!, {r2, r3}",
                                  "stmdb r0!, {r2, r3}", "vstr s0, [r0, #4]", "vldmia r0, {s0-s3}"])
def test_unaligned_multiword_faults_fast_mode(insn):
    # default (fast) mode: checked at the start of the block when the base register comes from an
    # earlier block (here: set before a branch)
    vb = board_for(f"    ldr r0, =0x20001002\n    b 1f\n1:  nop\n    {insn}\n    nop\n")
    assert not vb.strict
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    f = exc.value
    assert "unaligned" in f.reason and f.address & 3 == 2
    assert vb.read_memory(f.pc - 2, 2) == b"\x00\xbf"  # the faulting instruction follows the NOP


def test_aligned_multiword_ok_fast_mode():
    vb = board_for("    mov r0, sp\n    b 1f\n1:  ldrd r2, r3, [r0, #8]\n    ldm r0, {r2, r3}\n")
    assert vb.run(timeout_s=5) is StopReason.BKPT


def test_unaligned_single_ldr_is_fine_on_m4_but_faults_on_m0p():
    vb = board_for("    ldr r0, =0x20001001\n    ldr r1, [r0]\n")
    assert vb.run(timeout_s=5) is StopReason.BKPT
    m0 = get_board("NUCLEO-G071RB")
    vb = board_for("    ldr r0, =0x20001001\n    ldr r1, [r0]\n", board=m0)
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    assert "unaligned" in exc.value.reason


def test_undefined_instruction():
    vb = board_for("    nop\n    udf #3\n")
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    assert "invalid instruction" in exc.value.reason or "undefined" in exc.value.reason


def test_infinite_loop_times_out():
    vb = board_for("1:  b 1b\n")
    t0 = time.monotonic()
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=0.5)
    assert time.monotonic() - t0 < 3.0
    assert exc.value.reason == "timeout" and "infinite loop" in str(exc.value)


def test_a_run_starts_no_timer_thread():
    """The wall-clock limit is the block hook's (Model.deadline_ns): a run adds no OS thread to the process
    (Unicorn's own timeout thread wakes every few microseconds: a fifth of a core per running board)."""
    import os
    import threading

    def tasks() -> int:
        return len(os.listdir("/proc/self/task"))

    vb = board_for("1:  b 1b\n")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            vb.run(timeout_s=1.0)
        except VirtualBoardFault as e:
            errors.append(e)

    runner = threading.Thread(target=run)
    before = tasks()
    runner.start()
    counts = []
    while runner.is_alive():
        counts.append(tasks())
        time.sleep(0.05)
    runner.join()
    assert errors and errors[0].reason == "timeout"
    assert len(counts) >= 5 and max(counts) == before + 1, (before, counts)


def test_cycle_and_instruction_budget():
    vb = board_for("1:  adds r0, #1\n    b 1b\n")
    assert vb.run(max_cycles=100_000, timeout_s=5) is StopReason.BUDGET
    # the budget is checked per translation block: overshoot is at most one block
    assert 100_000 <= vb.cycles < 100_000 + 10
    c = vb.cycles
    assert vb.run(max_instructions=1000, timeout_s=5) is StopReason.BUDGET
    assert vb.cycles > c and vb.instructions >= 1000


def test_fpu_disabled_faults_nocp():
    # the FPU is off after reset: an FP instruction before CPACR grants CP10/CP11 is a NOCP UsageFault
    vb = VirtualBoard(M4, build(M4, "    nop\n    vadd.f32 s0, s1, s2\n    bkpt #0\n", fpu=False))
    with pytest.raises(VirtualBoardFault) as exc:
        vb.run(timeout_s=5)
    assert exc.value.reason.startswith("NOCP")
    assert vb.read_memory(exc.value.pc, 4) != b"\x00\xbf\x00\xbf"
