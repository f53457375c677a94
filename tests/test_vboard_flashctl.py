"""The virtual board's FLASH controller (native/flashctl.c): the programming sequences of the three controller
styles run for real (unlock, erase, program, BSY time), every sequence error faults the board with the flag
the hardware sets, and FLASH_ACR.LATENCY written by the program sets the modelled wait states.

The programs are bare Thumb assembly in SRAM (tests/vboard_asm), as the firmware's .ramfunc routines are."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import build, run_measure  # noqa: E402

from costmodel.boards import get_board  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")

L4 = get_board("NUCLEO-L496ZG")    # page-number style, 2 KB pages, dual bank
F4 = get_board("DISCO-F469NI")     # sector style
F1 = get_board("NUCLEO-F103RB")    # page-address style
L4_PAGE = 0x08020000               # page 64 of bank 1 (PNB 64), in the plan slot area
F4_SECTOR = 0x08020000             # sector 5 (128 KB)
F1_PAGE = 0x08010000               # page 64 (1 KB)

UNLOCK = """
    ldr r1, =0x45670123
    str r1, [r0, #{keyr}]
    ldr r1, =0xCDEF89AB
    str r1, [r0, #{keyr}]
"""
WAIT = """
1:  ldr r1, [r0, #{sr}]
    ldr r2, ={busy}
    tst r1, r2
    bne 1b
"""


def _vb(board, body: str):
    from measure_agent.vboard import VirtualBoard

    return VirtualBoard(board, build(board, body + "\n    bkpt #0\n    .ltorg\n"))


def _run(board, body: str):
    from measure_agent.vboard import StopReason

    vb = _vb(board, body)
    assert vb.run(timeout_s=5.0) is StopReason.BKPT
    return vb


def _fault(board, body: str):
    from measure_agent.vboard import VirtualBoardFault

    vb = _vb(board, body)
    with pytest.raises(VirtualBoardFault) as info:
        vb.run(timeout_s=5.0)
    # a refused store: "write to read-only memory (flash)"; a register sequence error: "flash programming error"
    assert info.value.reason in ("flash programming error", "write to read-only memory (flash)"), info.value
    return str(info.value), vb


def l4(text: str) -> str:
    return text.format(keyr=0x08, sr=0x10, busy=0x10000, page=hex(L4_PAGE))


L4_ERASE = l4("""
    ldr r0, =0x40022000
""" + UNLOCK + f"""
    ldr r1, =(2 | (64 << 3))     @ PER, PNB 64 (bank 1)
    str r1, [r0, #0x14]
    ldr r1, =(2 | (64 << 3) | (1 << 16))   @ + STRT
    str r1, [r0, #0x14]
""" + WAIT + """
    movs r1, #0
    str r1, [r0, #0x14]
""")

L4_PROGRAM = l4("""
    movs r1, #1                  @ PG
    str r1, [r0, #0x14]
    ldr r3, ={page}
    ldr r4, =0x11223344
    ldr r5, =0x55667788
    str r4, [r3]
    str r5, [r3, #4]
""" + WAIT + """
    movs r1, #0
    str r1, [r0, #0x14]
""")


def test_l4_erase_and_program_with_datasheet_times():
    """Unlock, erase page 64, program one double word: the contents change and BSY lasts the datasheet's
    22 ms page erase + 81.7 us double-word programming, at the 4 MHz the core runs at."""
    body = L4_ERASE + L4_PROGRAM + """
    ldr r1, =0x80000000         @ LOCK
    str r1, [r0, #0x14]
"""
    cycles, vb = run_measure(L4, body, strict=False)
    fc = vb.peripherals.flash_ctl
    assert vb.flash.read(L4_PAGE, 8) == bytes.fromhex("4433221188776655")
    assert vb.flash.read(L4_PAGE + 8, 8) == b"\xff" * 8
    assert (fc.erases, fc.programs, fc.faults) == (1, 1, 0) and fc.locked
    assert vb.flash.erase_count(L4_PAGE) == 1
    clock = L4.reset_clock_hz
    wait = round(22.0e-3 * clock) + round(81.7e-6 * clock)
    assert fc.stall_cycles <= wait and cycles >= wait * 0.99, (cycles, wait)


def test_l4_write_without_unlock_faults():
    msg, vb = _fault(L4, f"""
    ldr r3, ={L4_PAGE:#x}
    ldr r4, =0x11223344
    str r4, [r3]
""")
    assert "PGSERR" in msg and "locked" in msg and f"0x{L4_PAGE:08x}" in msg
    assert vb.flash.read(L4_PAGE, 4) == b"\xff" * 4  # the store did not land


def test_l4_double_word_programmed_twice_faults_even_with_ones():
    """ECC: a double word is programmed once after its erase; programming all-ones counts too."""
    once = L4_ERASE + L4_PROGRAM
    _run(L4, once)
    msg, _ = _fault(L4, once + l4("""
    movs r1, #1
    str r1, [r0, #0x14]
    str r4, [r3]
"""))
    assert "PROGERR" in msg and "already programmed" in msg
    ones = L4_ERASE + L4_PROGRAM.replace("0x11223344", "0xFFFFFFFF").replace("0x55667788", "0xFFFFFFFF")
    msg, _ = _fault(L4, ones + l4("""
    movs r1, #1
    str r1, [r0, #0x14]
    ldr r4, =0x0
    str r4, [r3]
"""))
    assert "PROGERR" in msg


def test_l4_erase_while_locked_faults():
    msg, vb = _fault(L4, """
    ldr r0, =0x40022000
    ldr r1, =(2 | (64 << 3) | (1 << 16))
    str r1, [r0, #0x14]
""")
    assert "while locked" in msg and vb.peripherals.flash_ctl.erases == 0


def test_l4_wrong_key_and_misaligned_or_narrow_writes_fault():
    msg, _ = _fault(L4, """
    ldr r0, =0x40022000
    ldr r1, =0x45670123
    str r1, [r0, #8]
    ldr r1, =0x12345678
    str r1, [r0, #8]
""")
    assert "wrong key" in msg
    msg, _ = _fault(L4, L4_ERASE + l4(f"""
    movs r1, #1
    str r1, [r0, #0x14]
    ldr r3, ={L4_PAGE + 4:#x}
    str r1, [r3]
"""))
    assert "PGAERR" in msg
    msg, _ = _fault(L4, L4_ERASE + l4(f"""
    movs r1, #1
    str r1, [r0, #0x14]
    ldr r3, ={L4_PAGE:#x}
    strb r1, [r3]
"""))
    assert "SIZERR" in msg


F4_ERASE = """
    ldr r0, =0x40023C00
""" + UNLOCK.format(keyr=0x04) + """
    ldr r1, =(2 | (5 << 3) | (2 << 8))     @ SER, SNB 5, PSIZE x32
    str r1, [r0, #0x10]
    ldr r1, =(2 | (5 << 3) | (2 << 8) | (1 << 16))
    str r1, [r0, #0x10]
""" + WAIT.format(sr=0x0C, busy=0x10000) + """
    movs r1, #0
    str r1, [r0, #0x10]
"""


def test_f4_sector_erase_program_and_rules():
    program = F4_ERASE + f"""
    ldr r1, =(1 | (2 << 8))      @ PG, PSIZE x32
    str r1, [r0, #0x10]
    ldr r3, ={F4_SECTOR:#x}
    ldr r4, =0xCAFEF00D
    str r4, [r3]
""" + WAIT.format(sr=0x0C, busy=0x10000)
    vb = _run(F4, program)
    assert vb.flash.read(F4_SECTOR, 4) == (0xCAFEF00D).to_bytes(4, "little")
    fc = vb.peripherals.flash_ctl
    assert (fc.erases, fc.programs) == (1, 1)
    assert fc.stall_cycles >= round(1.0 * F4.reset_clock_hz) * 0.99  # 128 KB sector erase, ~1 s at 16 MHz
    msg, _ = _fault(F4, program + """
    movs r4, #0
    str r4, [r3]
""")
    assert "over programmed bits" in msg
    msg, _ = _fault(F4, F4_ERASE + f"""
    movs r1, #1                  @ PG with PSIZE x8
    str r1, [r0, #0x10]
    ldr r3, ={F4_SECTOR:#x}
    str r1, [r3]
""")
    assert "PGPERR" in msg


def test_f1_page_erase_by_address_and_half_words():
    erase = """
    ldr r0, =0x40022000
""" + UNLOCK.format(keyr=0x04) + f"""
    movs r1, #2                  @ PER
    str r1, [r0, #0x10]
    ldr r1, ={F1_PAGE:#x}
    str r1, [r0, #0x14]          @ FLASH_AR
    movs r1, #0x42               @ PER | STRT
    str r1, [r0, #0x10]
""" + WAIT.format(sr=0x0C, busy=0x1) + """
    movs r1, #1                  @ PG
    str r1, [r0, #0x10]
"""
    vb = _run(F1, erase + f"""
    ldr r3, ={F1_PAGE:#x}
    ldr r4, =0xBEEF
    strh r4, [r3]
""" + WAIT.format(sr=0x0C, busy=0x1))
    assert vb.flash.read(F1_PAGE, 4) == b"\xef\xbe\xff\xff"
    assert vb.peripherals.flash_ctl.sr & 0x20  # EOP (set without EOPIE on the F1)
    msg, _ = _fault(F1, erase + f"""
    ldr r3, ={F1_PAGE:#x}
    str r1, [r3]
""")
    assert "half words only" in msg
    msg, _ = _fault(F1, erase + f"""
    ldr r3, ={F1_PAGE:#x}
    ldr r4, =0xBEEF
    strh r4, [r3]
""" + WAIT.format(sr=0x0C, busy=0x1) + """
    ldr r4, =0x1234
    strh r4, [r3]
""")
    assert "PGERR" in msg and "not erased" in msg


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


@pytest.mark.parametrize("strict", [False, True], ids=["fast", "strict"])
def test_acr_latency_written_by_the_program_sets_the_wait_states(strict):
    """The same loop in flash after FLASH_ACR.LATENCY = 0 and = 2 (NUCLEO-F103RB, prefetch: a taken branch
    pays the wait states): the model's wait states are what the program wrote, not the catalogue's."""
    def run(latency: int, n: int):
        setup = f"""
    ldr r0, =0x40022000
    ldr r1, [r0]
    bic r1, r1, #7
    orr r1, r1, #{latency}
    str r1, [r0]
"""
        cycles, vb = run_measure(F1, LOOP.format(n=n), setup=setup, where="flash", strict=strict)
        assert vb.peripherals.flash_ctl.wait_states == latency
        return cycles

    per_iter = {ws: (run(ws, 200) - run(ws, 100)) / 100 for ws in (0, 2)}
    assert per_iter[2] >= per_iter[0] + 2 - 1e-9, per_iter
    assert F1.flash_wait_states == 2  # the catalogue's value did not decide it


def test_flash_memory_survives_a_new_board():
    """The flash array (contents, ECC state, erase counts) is the chip's: a new VirtualBoard given the same
    FlashMemory sees what the previous one programmed, and refuses to program it again."""
    from measure_agent.vboard import FlashMemory, StopReason, VirtualBoard, VirtualBoardFault

    flash = FlashMemory(L4)
    vb = VirtualBoard(L4, build(L4, L4_ERASE + L4_PROGRAM + "\n    bkpt #0\n    .ltorg\n"), flash=flash)
    assert vb.run(timeout_s=5.0) is StopReason.BKPT
    again = l4("""
    ldr r0, =0x40022000
""" + UNLOCK + f"""
    movs r1, #1
    str r1, [r0, #0x14]
    ldr r3, ={L4_PAGE:#x}
    str r1, [r3]
    bkpt #0
    .ltorg
""")
    vb2 = VirtualBoard(L4, build(L4, again), flash=flash)
    assert vb2.flash.read(L4_PAGE, 4) == (0x11223344).to_bytes(4, "little") and flash.erase_count(L4_PAGE) == 1
    with pytest.raises(VirtualBoardFault, match="PROGERR"):
        vb2.run(timeout_s=5.0)
