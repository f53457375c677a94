"""UART model, idle semantics, the in-process API and the pty bridge (pyserial end to end)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import build, uart_echo  # noqa: E402

from costmodel.boards import get_board  # noqa: E402
from measure_agent.vboard import PtyBridge, StopReason, VirtualBoard, VirtualBoardFault, parse_elf  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")


def echo_board(name: str, where: str = "flash") -> VirtualBoard:
    board = get_board(name)
    return VirtualBoard(board, build(board, uart_echo(board), where=where))


@pytest.mark.parametrize("name", ["NUCLEO-L496ZG", "DISCO-F469NI", "NUCLEO-G071RB", "NUCLEO-F103RB",
                                  "NUCLEO-F767ZI", "NUCLEO-L552ZE-Q"])
def test_echo_both_register_layouts(name):
    vb = echo_board(name)
    assert vb.run(timeout_s=5) is StopReason.IDLE  # nothing to read yet
    assert vb.uart_read() == b""
    vb.uart_write(b"hello")
    assert vb.run(timeout_s=5) is StopReason.IDLE
    assert vb.uart_read() == b"hello"
    assert vb.uart_read() == b""  # drained
    c = vb.cycles
    assert vb.run(timeout_s=5) is StopReason.IDLE  # idle again, a couple of polls later
    assert 0 < vb.cycles - c < 100
    vb.uart_write(b"x")
    assert vb.run(timeout_s=5) is StopReason.IDLE and vb.uart_read() == b"x"


def test_elf_from_path_and_bytes(tmp_path):
    board = get_board("NUCLEO-L496ZG")
    blob = build(board, uart_echo(board))
    p = tmp_path / "fw.elf"
    p.write_bytes(blob)
    a, b = VirtualBoard(board, p), VirtualBoard(board, blob)
    for vb in (a, b):
        vb.uart_write(b"abc")
        vb.run(timeout_s=5)
    assert a.uart_read() == b.uart_read() == b"abc"
    assert a.cycles == b.cycles and a.instructions == b.instructions
    assert parse_elf(blob).symbols["start"] & ~1 == a.symbol("start") & ~1


def test_idle_does_not_fire_while_transmitting():
    # the transmitter polls the status register between data writes: never mistaken for idle
    board = get_board("NUCLEO-L496ZG")
    vb = echo_board("NUCLEO-L496ZG")
    vb.uart_write(bytes(range(256)) * 4)
    assert vb.run(timeout_s=5) is StopReason.IDLE
    assert vb.uart_read() == bytes(range(256)) * 4
    assert board.uart.kind == "stm32-usart-v2"


def test_pty_bridge_with_pyserial():
    serial = pytest.importorskip("serial")
    vb = echo_board("NUCLEO-L496ZG")
    with PtyBridge(vb) as bridge:
        port = serial.Serial(bridge.path, baudrate=115200, timeout=3)
        try:
            port.write(b"ping\n")
            assert port.read(5) == b"ping\n"
            # idle: the bridge thread blocks in select(), it does not spin
            cpu0 = time.process_time()
            time.sleep(0.5)
            assert time.process_time() - cpu0 < 0.2
            payload = os.urandom(3000)
            port.write(payload)
            got = b""
            deadline = time.monotonic() + 10
            while len(got) < len(payload) and time.monotonic() < deadline:
                got += port.read(len(payload) - len(got))
            assert got == payload
        finally:
            port.close()
    assert bridge.error is None


def test_pty_bridge_reports_faults():
    board = get_board("NUCLEO-L496ZG")
    vb = VirtualBoard(board, build(board, "    ldr r0, =0x30000001\n    bx r0\n    .ltorg\n"))
    bridge = PtyBridge(vb)
    deadline = time.monotonic() + 5
    while bridge.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    bridge.close()
    assert isinstance(bridge.error, VirtualBoardFault)


def test_pty_pause_resume_and_noise():
    serial = pytest.importorskip("serial")
    vb = echo_board("NUCLEO-L496ZG")
    with PtyBridge(vb) as bridge:
        port = serial.Serial(bridge.path, timeout=0.3)
        try:
            port.write(b"a")
            assert port.read(1) == b"a"
            bridge.pause()
            port.write(b"b")
            assert port.read(1) == b""  # frozen: no answer
            bridge.inject_to_host(b"~~")
            assert port.read(2) == b"~~"
            bridge.resume()
            port.timeout = 3
            assert port.read(1) == b"b"  # the byte waited in the line
        finally:
            port.close()
    assert bridge.error is None


def test_stop_from_another_thread():
    import threading

    board = get_board("NUCLEO-L496ZG")
    vb = VirtualBoard(board, build(board, "1:  b 1b\n"))
    threading.Timer(0.2, vb.stop).start()
    t0 = time.monotonic()
    assert vb.run(timeout_s=10) is StopReason.STOPPED
    assert time.monotonic() - t0 < 5


def test_run_elf_mips_hook():
    from measure_agent.vboard import run_elf_mips

    board = get_board("NUCLEO-L496ZG")
    r = run_elf_mips(board, build(board, uart_echo(board)), b"benchmark input")
    assert r["uart_output"] == b"benchmark input" and r["bare_output_matches"]
    assert r["instructions"] > 0 and r["cycles"] >= r["instructions"] and r["mips"] > 0
