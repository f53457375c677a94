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


# ------------------------------------------------------------------ native UART model (_cyclemodel.Uart)
@pytest.mark.parametrize("name", ["NUCLEO-L496ZG", "NUCLEO-F103RB"])  # v2 and v1 register layouts
def test_native_uart_status_register_and_register_file(name):
    # status read: TXE|TC (+TEACK|REACK on v2), RXNE only with data, ORE never; other registers of the
    # page read back what was written (the firmware's BRR/CR1 configuration)
    board = get_board(name)
    v1 = board.uart.kind == "stm32-usart-v1"
    status, rdr, tdr = (0x00, 0x04, 0x04) if v1 else (0x1C, 0x24, 0x28)
    # v2: a BRR the model's baud check accepts at the reset clock (LPUART1: 256 * 4 MHz / 115200 = 8889)
    value = 0x1234 if v1 else 8889
    body = f"""
    ldr r0, =0x{board.uart.base:08x}
    ldr r4, [r0, #{status}]       @ RX empty
    ldr r1, ={value}
    str r1, [r0, #0x0C]           @ BRR (v2) / CR1 (v1): register file
    ldr r6, [r0, #0x0C]
1:  ldr r5, [r0, #{status}]       @ wait for RXNE
    movs r3, #0x20
    tst r5, r3
    beq 1b
    ldr r7, [r0, #{rdr}]
    str r7, [r0, #{tdr}]
    bkpt #0
    .ltorg
"""
    vb = VirtualBoard(board, build(board, body, where="flash"))
    assert vb.run(timeout_s=5) is StopReason.IDLE  # two status reads with RX empty
    vb.uart_write(b"Z")
    assert vb.uart_rx_pending == 1
    assert vb.run(timeout_s=5) is StopReason.BKPT
    base = (1 << 7) | (1 << 6) | (0 if v1 else (1 << 21) | (1 << 22))
    assert vb.reg("r4") == base
    assert vb.reg("r5") == base | (1 << 5)
    assert vb.reg("r6") == value and vb.reg("r7") == ord("Z")
    assert vb.uart_read() == b"Z" and vb.uart_rx_pending == 0


def test_native_uart_large_transfer_and_reset():
    vb = echo_board("NUCLEO-L4R5ZI")
    data = os.urandom(200_000)
    vb.uart_write(data[:1000])
    vb.uart_write(bytearray(data[1000:]))  # any bytes-like
    assert vb.run(timeout_s=30) is StopReason.IDLE
    assert vb.uart_read() == data
    vb.uart_write(b"left over")
    vb.reset()  # power-on reset empties both FIFOs
    assert vb.uart_rx_pending == 0 and vb.uart_read() == b""
    assert vb.run(timeout_s=5) is StopReason.IDLE and vb.uart_read() == b""


def test_native_uart_write_from_another_thread_during_run():
    import threading

    board = get_board("NUCLEO-L496ZG")
    # echo, but spin a while between bytes so that run() is in progress while the host thread writes
    vb = echo_board("NUCLEO-L496ZG")
    chunks = [os.urandom(97) for _ in range(50)]

    def feed():
        for c in chunks:
            vb.uart_write(c)
            time.sleep(0.001)

    t = threading.Thread(target=feed)
    t.start()
    got = bytearray()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        vb.run(timeout_s=5)
        got += vb.uart_read()
        if not t.is_alive() and vb.uart_rx_pending == 0:
            vb.run(timeout_s=5)
            got += vb.uart_read()
            break
    t.join()
    assert bytes(got) == b"".join(chunks)
    assert board.uart.kind == "stm32-usart-v2"


def test_native_uart_object_fifo_semantics():
    from measure_agent.vboard import _cyclemodel as cm

    u = cm.Uart(True, 0x800)
    assert u.rx_pending == 0 and u.read() == b"" and not u.idle
    u.write(b"abc")
    u.write(b"")
    assert u.rx_pending == 3
    u.clear()
    assert u.rx_pending == 0 and u.tx_pending == 0
