"""Unit tests of the serial protocol's host side (measure_agent.protocol) and of BoardLink against
a scripted fake port. No firmware, no I/O: milliseconds."""

from __future__ import annotations

import random
import re
import struct
from pathlib import Path

import pytest

from measure_agent import protocol as P
from measure_agent.serial_link import BoardError, BoardFault, BoardLink, BoardTimeout

PROTO_H = Path(__file__).resolve().parents[1] / "firmware" / "shell" / "proto.h"


def test_crc_check_values():
    assert P.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value
    assert P.crc32(b"123456789") == 0xCBF43926


def test_constants_match_firmware_header():
    text = PROTO_H.read_text()
    c_values = {m[0]: int(m[1], 16) for m in re.findall(r"\b((?:CMD|ERR|MSG)_[A-Z_]+)\s*=?\s*(0x[0-9A-Fa-f]+)", text)}
    c_values.update({m[0]: int(m[1], 16) for m in re.findall(r"#define ((?:MSG|HELLO_FLAG)_[A-Z_]+) (0x[0-9A-Fa-f]+)", text)})
    assert len(c_values) > 25
    for name, value in c_values.items():
        assert getattr(P, name) == value, name
    assert f"#define PROTO_VERSION {P.PROTOCOL_VERSION}u" in text
    assert f"#define PROTO_MAX_PAYLOAD {P.MAX_PAYLOAD}u" in text
    assert f"#define PROTO_HEADER_BYTES {P.HEADER_BYTES}u" in text


@pytest.mark.parametrize("size", [0, 1, 2, 255, 256, 1023, 1024])
def test_round_trip(size):
    payload = bytes(random.Random(size).randrange(256) for _ in range(size))
    wire = P.encode_frame(P.CMD_ECHO, 42, payload)
    assert len(wire) == P.OVERHEAD + size
    assert wire[:2] == P.SYNC
    frames = P.decode_frames(wire)
    assert frames == [P.Frame(P.CMD_ECHO, 42, payload)]


def test_byte_at_a_time_and_back_to_back():
    wire = P.encode_frame(1, 1) + P.encode_frame(2, 2, b"abc") + P.encode_frame(3, 3, b"\xa5\x5a" * 10)
    d = P.Deframer()
    got = []
    for b in wire:
        got += d.feed(bytes([b]))
    assert [(f.cmd, f.seq) for f in got] == [(1, 1), (2, 2), (3, 3)]
    assert got[2].payload == b"\xa5\x5a" * 10


def test_crc_failure_reported_then_next_frame_found():
    bad = bytearray(P.encode_frame(P.CMD_UPLOAD, 7, b"hello world"))
    bad[12] ^= 0x40
    good = P.encode_frame(P.CMD_HELLO, 8)
    out = P.decode_frames(bytes(bad) + good)
    assert isinstance(out[0], P.BadFrame) and out[0].code == P.ERR_BAD_CRC and out[0].seq == 7
    assert out[-1] == P.Frame(P.CMD_HELLO, 8)


def test_header_corruption():
    bad = bytearray(P.encode_frame(P.CMD_RUN, 9, b"\x01\x00\x00\x00"))
    bad[6] ^= 0x01  # length byte: header CRC catches it
    out = P.decode_frames(bytes(bad) + P.encode_frame(P.CMD_HELLO, 10))
    assert out[0] == P.BadFrame(P.ERR_BAD_HEADER, 0, 0, "header crc mismatch")
    assert out[-1] == P.Frame(P.CMD_HELLO, 10)


def test_truncated_frame_timeout_then_valid():
    d = P.Deframer()
    wire = P.encode_frame(P.CMD_SET_INPUT, 11, b"x" * 50)
    assert d.feed(wire[:30]) == []
    out = d.flush()
    assert out and out[0].code == P.ERR_TIMEOUT and out[0].seq == 11 and out[0].cmd == P.CMD_SET_INPUT
    assert d.buffer == bytearray()
    assert d.feed(P.encode_frame(P.CMD_HELLO, 12)) == [P.Frame(P.CMD_HELLO, 12)]


def test_truncated_frame_followed_by_valid_frame_without_pause():
    """The truncated header claims more bytes; the valid frame completes it, CRC fails, rescan finds it."""
    trunc = P.encode_frame(P.CMD_ECHO, 13, b"y" * 40)[:20]
    out = P.decode_frames(trunc + P.encode_frame(P.CMD_HELLO, 14) + b"\0" * 40)
    assert P.Frame(P.CMD_HELLO, 14) in out
    assert any(isinstance(f, P.BadFrame) and f.code == P.ERR_BAD_CRC for f in out)


def test_garbage_resync():
    rng = random.Random(1)
    for trial in range(50):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        if trial % 3 == 0:
            garbage += b"\xa5\x5a\x01"  # a false sync right before the frame
        frame = P.encode_frame(P.CMD_ECHO, trial + 1, b"payload")
        out = [f for f in P.decode_frames(garbage + frame + garbage[:5]) if isinstance(f, P.Frame)]
        assert out[-1] == P.Frame(P.CMD_ECHO, trial + 1, b"payload")


def test_oversized_length():
    header = struct.pack("<BBBBH", 1, P.CMD_UPLOAD, 5, 0, 5000)
    wire = P.SYNC + header + bytes([P.crc8(header)]) + b"\0" * 20
    out = P.decode_frames(wire + P.encode_frame(P.CMD_HELLO, 6))
    assert out[0].code == P.ERR_TOO_LONG and out[0].seq == 5
    assert out[-1] == P.Frame(P.CMD_HELLO, 6)
    with pytest.raises(P.ProtocolError):
        P.encode_frame(P.CMD_ECHO, 1, b"z" * 1025, max_payload=1024)


def test_bad_version():
    wire = P.encode_frame(P.CMD_HELLO, 3, version=2)
    out = P.decode_frames(wire)
    assert out[0].code == P.ERR_BAD_VERSION and out[0].seq == 3


def test_payload_codecs():
    strings = ["NUCLEO-L4R5ZI", "STM32L4R5ZI", "cortex-m4", "simd", "hard", "-Os", "0123456789abcdef", "nn", "12.2"]
    payload = struct.pack("<BBHIIIIII", 1, 0x07, 1024, 120_000_000, 4_000_000, 600_000, 0x20001000, 200, 256)
    payload += b"".join(bytes([len(s)]) + s.encode() for s in strings)
    h = P.decode_hello(payload)
    assert (h.target, h.core, h.runtime_variant, h.float_abi, h.opt_level) == ("NUCLEO-L4R5ZI", "cortex-m4", "simd", "hard", "-Os")
    assert h.default_clock_hz == 120_000_000 and h.model_ram_bytes == 600_000 and h.cycle_counter == "dwt"
    with pytest.raises(P.ProtocolError):
        P.decode_hello(payload[:40])

    run = struct.pack("<IIIIIII", 3, 2, 110, 100, 110, 0, 2) + struct.pack("<II", 40, 50)
    r = P.decode_run(run)
    assert (r.runs, r.num_layers, r.min_total, r.chunk.cycles) == (3, 2, 100, (40, 50))

    err = P.decode_error(P.encode_error(P.ERR_NN_BASE + 3, P.CMD_LOAD, 12345, "arena too small"))
    assert err.nn_status == 3 and err.detail == 12345 and err.name == "NN_ERR_ARENA_TOO_SMALL"

    load = struct.pack("<IIIIHH", 100, 1000, 50, 4, 1, 2) + struct.pack("<III", 490, 12, 8)
    li = P.decode_load(load)
    assert li.input_bytes == (490,) and li.output_bytes == (12, 8)


# ------------------------------------------------------------------ BoardLink against a fake device

class FakeDevice:
    """A pyserial-like port whose 'board' answers ECHO/HELLO in Python; behaviours are injectable."""

    def __init__(self, script=None):
        self.rx = bytearray()   # host -> device
        self.tx = bytearray()   # device -> host
        self.deframer = P.Deframer()
        self.script = script or (lambda frame, n: [P.encode_frame(frame.cmd | 0x80, frame.seq, frame.payload)])
        self.requests = 0

    def write(self, data):
        for item in self.deframer.feed(bytes(data)):
            if isinstance(item, P.Frame):
                self.requests += 1
                for out in self.script(item, self.requests):
                    self.tx += out
        return len(data)

    def read(self, n=1):
        out = bytes(self.tx[:n])
        del self.tx[:n]
        return out


def test_link_echo_and_unsolicited_frames_ignored():
    def script(frame, n):
        return [b"\x00garbage\xa5", P.encode_frame(P.MSG_BOOT, 0, b"\0\0\1\0"),
                P.encode_frame(P.MSG_ERROR, 0, P.encode_error(P.ERR_BAD_HEADER, 0, 0, "x")),
                P.encode_frame(frame.cmd | 0x80, (frame.seq + 1) % 256, b"stale"),
                P.encode_frame(frame.cmd | 0x80, frame.seq, frame.payload)]
    link = BoardLink(FakeDevice(script), timeout=0.5)
    assert link.echo(b"abc") == b"abc"
    assert len(link.stats.unsolicited) == 3


def test_link_retries_after_line_error():
    def script(frame, n):
        if n == 1:
            return [P.encode_frame(P.MSG_ERROR, frame.seq, P.encode_error(P.ERR_BAD_CRC, frame.cmd))]
        return [P.encode_frame(frame.cmd | 0x80, frame.seq, frame.payload)]
    dev = FakeDevice(script)
    link = BoardLink(dev, timeout=0.5)
    assert link.echo(b"retry") == b"retry"
    assert dev.requests == 2 and link.stats.retries == 1


def test_link_retries_after_silence_then_times_out():
    dev = FakeDevice(lambda frame, n: [] if n == 1 else [P.encode_frame(frame.cmd | 0x80, frame.seq, b"ok")])
    link = BoardLink(dev, timeout=0.1)
    assert link.echo(b"x") == b"ok"
    silent = FakeDevice(lambda frame, n: [])
    link = BoardLink(silent, timeout=0.05, retries=2)
    with pytest.raises(BoardTimeout, match="ECHO"):
        link.echo(b"x")
    assert silent.requests == 3


def test_link_raises_board_error_and_fault():
    def err(frame, n):
        return [P.encode_frame(P.MSG_ERROR, frame.seq, P.encode_error(P.ERR_NN_BASE + 4, frame.cmd, 7, "unsupported op"))]
    with pytest.raises(BoardError) as info:
        BoardLink(FakeDevice(err), timeout=0.5).echo(b"")
    assert info.value.code == 0x24 and info.value.nn_status == 4 and "NN_ERR_UNSUPPORTED_OP" in str(info.value)

    def fault(frame, n):
        return [P.encode_frame(P.MSG_FAULT, 0, struct.pack("<9I", 3, 0x08001234, 0xFFFFFFF9, 0x01000000, 0x400, 0x40000000, 0, 0, 0x2001FF00))]
    with pytest.raises(BoardFault) as finfo:
        BoardLink(FakeDevice(fault), timeout=0.5).echo(b"")
    assert finfo.value.registers["pc"] == 0x08001234 and finfo.value.registers["exception"] == 3


def test_flash_payload_codecs():
    plan = bytes(range(200))
    assert P.load_payload(plan) == struct.pack("<I", P.crc32(plan))  # SRAM: the 4-byte form of version 1
    assert P.load_payload(plan, "flash") == struct.pack("<IB", P.crc32(plan), P.PLACEMENT_FLASH)
    with pytest.raises(P.ProtocolError):
        P.load_payload(plan, "eeprom")
    begin = P.flash_begin_payload(plan)
    assert begin[:8] == struct.pack("<II", 200, P.crc32(plan)) and len(begin) == 8 + P.SLOT_HASH_BYTES
    assert P.plan_hash(plan) == __import__("hashlib").sha256(plan).digest()[:16]
    fb = P.decode_flash_begin(struct.pack("<BBHHHIII", 1, 0, 5, 2, 0, 0x08020100, 200, 7))
    assert fb == P.FlashBegin(True, 5, 2, 0x08020100, 200, 7)
    info = P.decode_flash_info(struct.pack("<BBHIIIIII", 1, 1, 2, 10000, 8, 256, 3, 40, 4)
                               + struct.pack("<IIIBBH", 0x08020000, 32768, 3, 1, 0, 4)
                               + struct.pack("<IIIBBH", 0x08028000, 32768, 2, 0, 0, 0xFFFF))
    assert info.available and info.endurance == 10000 and info.area_bytes == 65536
    assert info.slots[0] == P.FlashSlot(4, 0x08020000, 32768, 3, "plan", 4)
    assert info.slots[1].state == "free" and info.slots[1].head is None and info.slots[1].index == 5
    with pytest.raises(P.ProtocolError):
        P.decode_flash_info(b"\x01\x01\x05\x00" + bytes(24))
