"""Plans in flash slots, end to end through the real shell code built for the host (firmware/shell/slots.c,
flash emulated in a file with the ECC programming rule): FLASH_BEGIN / FLASH_WRITE / LOAD placement flash, a
plan already in a slot is not programmed again, rotation over the slots, erase counters that survive a
restart, the endurance refusal with its numbers, resent and wrong chunks, and a corrupted slot."""

from __future__ import annotations

import struct

import pytest

from measure_agent import protocol as P
from measure_agent.firmware_build import build_host_shell
from measure_agent.serial_link import BoardError, BoardLink, PipeSerial

SLOT = 4096
SLOTS = 16
FIRST = 2


def stub_plan(size: int, tag: int = 0, layers: int = 3) -> bytes:
    head = b"STUB" + struct.pack("<5I", layers, 10, 40, 20, 0)
    return head + bytes(((i * 7) + tag) & 0xFF for i in range(size - len(head)))


@pytest.fixture(scope="module")
def stub_shell():
    return build_host_shell("stub")


@pytest.fixture
def flash_file(tmp_path):
    return tmp_path / "flash.bin"


def open_link(exe, flash_file, endurance=10000, program_bytes=8):
    port = PipeSerial([str(exe), "--timeout-ms", "100", "--model-ram", str(1 << 16),
                       "--flash-bytes", str(SLOT * SLOTS), "--flash-slot-bytes", str(SLOT),
                       "--flash-first-slot", str(FIRST), "--flash-endurance", str(endurance),
                       "--flash-program-bytes", str(program_bytes), "--flash-file", str(flash_file)])
    link = BoardLink(port, timeout=2.0)
    assert link.read_frame().cmd == P.MSG_BOOT
    return port, link


def counts(link) -> dict[int, int]:
    return {s.index: s.erase_count for s in link.flash_info().slots}


@pytest.mark.parametrize("program_bytes", [8, 4, 2])
def test_flash_plan_runs_and_is_not_programmed_twice(stub_shell, flash_file, program_bytes):
    port, link = open_link(stub_shell, flash_file, program_bytes=program_bytes)
    with port:
        assert link.hello().flags & P.HELLO_FLAG_FLASH
        info = link.flash_info()
        assert info.available and info.first_slot == FIRST and len(info.slots) == SLOTS - FIRST
        assert info.program_bytes == program_bytes and info.header_bytes == P.SLOT_HEADER_BYTES
        plan = stub_plan(5003)  # not a multiple of the programming unit: the board pads the last one
        load = link.upload_plan(plan, placement="flash")
        assert load.plan_bytes == len(plan) and load.arena_available == 1 << 16  # all model RAM is arena
        first = link.last_flash
        assert not first.present and (first.first_slot, first.slots) == (FIRST, 2) and first.max_erases == 1
        assert first.address == info.slots[0].address + P.SLOT_HEADER_BYTES
        link.set_input(0, bytes(range(10)))
        link.run(1)
        assert link.read_output(0) == bytes((i % 10) + 3 for i in range(40))
        after = link.flash_info()
        assert after.erases_since_boot == 2 and after.programs_since_boot > 0
        assert [s.state for s in after.slots[:3]] == ["plan", "plan-continued", "free"]
        link.upload_plan(plan, placement="flash")  # the same plan: found, CRC verified, nothing written
        assert link.last_flash.present and link.last_flash.programmed == len(plan)
        again = link.flash_info()
        assert (again.erases_since_boot, again.programs_since_boot) == (after.erases_since_boot,
                                                                        after.programs_since_boot)
    port, link = open_link(stub_shell, flash_file, program_bytes=program_bytes)  # a restart: flash kept
    with port:
        link.upload_plan(plan, placement="flash")
        assert link.last_flash.present and link.flash_info().erases_since_boot == 0


def test_plans_rotate_over_the_slots_and_counts_survive_a_restart(stub_shell, flash_file):
    port, link = open_link(stub_shell, flash_file)
    with port:
        runs = []
        for tag in range(10):  # 10 plans of 2 slots over 14 slots: the ring wraps once
            link.upload_plan(stub_plan(6000, tag), placement="flash")
            runs.append(link.last_flash.first_slot)
        assert runs == [2, 4, 6, 8, 10, 12, 14, 2, 4, 6]
        c = counts(link)
        assert c == {s: (2 if s < 8 else 1) for s in range(FIRST, SLOTS)}
    port, link = open_link(stub_shell, flash_file)
    with port:
        assert counts(link) == c  # the erase counts live in the slot headers
        link.upload_plan(stub_plan(6000, 99), placement="flash")
        assert link.last_flash.first_slot == 8  # the ring continues after the newest plan
        states = {s.index: s.state for s in link.flash_info().slots}
        assert states[8] == "plan" and states[9] == "plan-continued"


def test_a_worn_board_refuses_with_the_numbers(stub_shell, flash_file):
    port, link = open_link(stub_shell, flash_file, endurance=3)
    with port:
        big = stub_plan((SLOTS - FIRST) * SLOT - P.SLOT_HEADER_BYTES)  # every slot at once
        for tag in range(2):
            link.upload_plan(big[:-1] + bytes([tag]), placement="flash")
        assert set(counts(link).values()) == {2}
        with pytest.raises(BoardError) as exc:
            link.upload_plan(big[:-1] + b"\x07", placement="flash")
        e = exc.value
        assert e.code == P.ERR_FLASH_WORN and e.detail == 3
        assert "erased 2 times" in e.message and "endurance 3" in e.message
        assert set(counts(link).values()) == {2}  # refused before erasing anything
        link.upload_plan(big[:-1] + b"\x01", placement="flash")  # one already in flash still runs
        assert link.last_flash.present


def slot_header(seq: int, first: int, count: int, plan: bytes, erase_counts: dict[int, int]) -> bytes:
    """A slot header as firmware/PROTOCOL.md ("Flash slots") lays it out, committed."""
    h = bytearray(b"\xff" * 240)
    struct.pack_into("<IIIHHII", h, 0, 0x4C534E4E, 1, seq, first, count, len(plan), P.crc32(plan))
    h[24:40] = P.plan_hash(plan)
    for i in range(32):
        struct.pack_into("<I", h, 48 + 4 * i, erase_counts.get(i, 0))
    struct.pack_into("<I", h, 40, P.crc32(bytes(h[:40]) + bytes(4) + bytes(h[44:240])))
    return bytes(h) + struct.pack("<II", 0x454E4F44, ~P.crc32(plan) & 0xFFFFFFFF) + b"\xff" * 8


def test_the_documented_header_is_read_and_worn_slots_are_skipped(stub_shell, flash_file):
    """A header written by hand (the documented layout) is the board's state: its plan runs without being
    programmed, its erase counts are the board's, and the next run skips the slot at its endurance."""
    plan = stub_plan(3000, 5)
    image = bytearray(b"\xff" * (SLOT * SLOTS))
    at = FIRST * SLOT
    image[at:at + 256] = slot_header(7, FIRST, 1, plan, {FIRST: 1, FIRST + 1: 2, FIRST + 2: 1})
    image[at + 256:at + 256 + len(plan)] = plan
    flash_file.write_bytes(bytes(image))
    port, link = open_link(stub_shell, flash_file, endurance=3)
    with port:
        info = link.flash_info()
        assert {s.index: s.erase_count for s in info.slots if s.erase_count} == {2: 1, 3: 2, 4: 1}
        assert info.slots[0].state == "plan" and info.slots[0].head == FIRST
        link.upload_plan(plan, placement="flash")
        assert link.last_flash.present and link.flash_info().erases_since_boot == 0
        link.upload_plan(stub_plan(3000, 6), placement="flash")  # the ring points at slot 3: worn, skipped
        assert link.last_flash.first_slot == FIRST + 2 and link.last_flash.max_erases == 2
        assert counts(link)[FIRST + 1] == 2


def test_chunks_resent_or_wrong_and_sequence_errors(stub_shell, flash_file):
    port, link = open_link(stub_shell, flash_file)
    with port:
        link.hello()
        with pytest.raises(BoardError) as exc:
            link.request(P.CMD_FLASH_WRITE, P.flash_write_payload(0, b"x" * 8))
        assert exc.value.code == P.ERR_BAD_ARG
        plan = stub_plan(3000)
        with pytest.raises(BoardError) as exc:  # LOAD from flash before any plan is there
            link.load(plan, placement="flash")
        assert exc.value.code == P.ERR_PLAN_INCOMPLETE
        begin = P.decode_flash_begin(link.request(P.CMD_FLASH_BEGIN, P.flash_begin_payload(plan)))
        assert not begin.present
        ok = P.decode_flash_write(link.request(P.CMD_FLASH_WRITE, P.flash_write_payload(0, plan[:1000])))
        again = P.decode_flash_write(link.request(P.CMD_FLASH_WRITE, P.flash_write_payload(0, plan[:1000])))
        assert ok == again == 1000  # a resent chunk is acknowledged, not programmed again
        with pytest.raises(BoardError) as exc:  # a resent chunk that differs from flash
            link.request(P.CMD_FLASH_WRITE, P.flash_write_payload(0, b"\0" * 1000))
        assert exc.value.code == P.ERR_BAD_OFFSET
        with pytest.raises(BoardError) as exc:  # a hole
            link.request(P.CMD_FLASH_WRITE, P.flash_write_payload(2000, plan[2000:2500]))
        assert exc.value.code == P.ERR_BAD_OFFSET
        # a retried FLASH_BEGIN continues the same session: nothing erased again
        erases = link.flash_info().erases_since_boot
        begin = P.decode_flash_begin(link.request(P.CMD_FLASH_BEGIN, P.flash_begin_payload(plan)))
        assert begin.programmed == 1000 and link.flash_info().erases_since_boot == erases
        for offset in (1000, 2000):
            link.request(P.CMD_FLASH_WRITE, P.flash_write_payload(offset, plan[offset:offset + 1000]))
        assert link.load(plan, placement="flash").plan_bytes == len(plan)
        with pytest.raises(BoardError) as exc:
            link.upload_plan(stub_plan((SLOTS - FIRST) * SLOT), placement="flash")
        assert exc.value.code == P.ERR_TOO_LARGE and exc.value.detail == (SLOTS - FIRST) * SLOT - 256


def test_a_corrupted_slot_is_programmed_again(stub_shell, flash_file):
    port, link = open_link(stub_shell, flash_file)
    plan = stub_plan(5000)
    with port:
        link.upload_plan(plan, placement="flash")
        address = link.last_flash.address
    data = bytearray(flash_file.read_bytes())
    data[address - 0x08000000 + 4000] ^= 0x01  # a bit flipped in the stored plan
    flash_file.write_bytes(bytes(data))
    port, link = open_link(stub_shell, flash_file)
    with port:
        link.upload_plan(plan, placement="flash")
        assert not link.last_flash.present and link.last_flash.first_slot == FIRST + 2


def test_sram_and_flash_placements_alternate(stub_shell, flash_file):
    port, link = open_link(stub_shell, flash_file)
    with port:
        plan = stub_plan(4000)
        link.prepare(plan, [bytes(10)], "flash")
        link.run(1)
        link.prepare(plan, [bytes(10)], "sram")  # another placement: uploaded again, into RAM
        assert link.hello().loaded
        link.run(1)
        assert link.read_output(0) == bytes(3 for _ in range(40))
