"""ARM firmware builds: every catalogue board with its default variant at -Os (cached by content
hash under $MCU_NAS_CACHE/firmware or ~/.cache/mcu-nas/firmware), sizes from the ELF, generated
board data, and the firmware on the virtual board through its PTY with BoardLink over pyserial."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from costmodel.boards import catalogue, get_board
from measure_agent import protocol as P
from measure_agent.firmware_build import (
    FirmwareBuildError,
    board_config_header,
    build_firmware,
    format_build_report,
    linker_script,
    read_elf,
    uart_brr,
)

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")

BOARDS = sorted(catalogue())
# The virtual board's strict memory hook (v. 2026-11-23 21:05) returns wrong data for some flash reads
# (an aligned LDRH of a string constant in newlib's memcpy tail reads 0x0003): run without it until fixed.
STRICT = False


@pytest.fixture(scope="module")
def images():
    return {name: build_firmware(name, opt="-Os") for name in BOARDS}


@pytest.mark.parametrize("name", BOARDS)
def test_builds_for_every_board(images, name):
    board = get_board(name)
    img = images[name]
    assert img.path.exists()
    assert img.variant == ("simd" if board.dsp else "reference")
    assert img.float_abi == ("hard" if board.fpu != "none" else "soft")
    assert 4096 < img.flash_bytes < board.flash.size
    assert 0 < img.ram_bytes and img.ram_bytes + img.model_ram_bytes <= board.sram.size
    assert img.model_ram_bytes >= board.sram.size // 3  # most SRAM is left to the model
    sections, symbols = read_elf(img.path)
    vectors = sections[".isr_vector"]
    assert vectors[2] == board.flash.base
    data = img.path.read_bytes()
    # initial SP = top of SRAM, reset vector is a Thumb address in flash
    sp, reset = struct.unpack_from("<II", data, _file_offset(data, ".isr_vector"))
    assert sp == board.sram.end and reset & 1 and board.flash.contains(reset & ~1)
    assert symbols["__model_ram_end"] - symbols["__model_ram_start"] == img.model_ram_bytes
    report = format_build_report(img)
    assert name in report and f"{img.flash_bytes} bytes" in report and "model ram" in report


def _file_offset(data: bytes, name: str) -> int:
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    strtab = struct.unpack_from("<10I", data, shoff + shstrndx * shentsize)[4]
    for i in range(shnum):
        sh = struct.unpack_from("<10I", data, shoff + i * shentsize)
        if data[strtab + sh[0]:].split(b"\0", 1)[0].decode() == name:
            return sh[4]
    raise KeyError(name)


def test_cached_rebuild_is_instant(images):
    name = BOARDS[0]
    again = build_firmware(name, opt="-Os")
    assert again.cached and again.build_id == images[name].build_id and again.path == images[name].path


def test_invalid_combinations_are_clear_errors():
    with pytest.raises(FirmwareBuildError, match="DSP"):
        build_firmware("NUCLEO-G071RB", variant="simd")
    with pytest.raises(FirmwareBuildError, match="DSP"):
        build_firmware("NUCLEO-F103RB", variant="simd", float_abi="soft")
    with pytest.raises(FirmwareBuildError, match="FPU"):
        build_firmware("NUCLEO-F103RB", variant="reference", float_abi="hard")
    with pytest.raises(FirmwareBuildError, match="opt"):
        build_firmware("NUCLEO-L4R5ZI", opt="-O1")


def test_generated_board_data():
    l4 = get_board("NUCLEO-L496ZG")
    assert uart_brr(l4) == 8889  # LPUART: 256 * 4 MHz / 115200
    assert uart_brr(get_board("DISCO-F469NI")) == 139  # USART: 16 MHz / 115200
    h = board_config_header(l4)
    assert "#define BOARD_FLASH_WAIT_STATES 4u" in h and "#define BOARD_UART_KIND_V2 1" in h
    assert "#define BOARD_FLASH_ACR 0x40022000u" in h and "#define BOARD_FLASH_ACR_ACCEL_BITS 0x700u" in h
    assert "UNTESTED ON HARDWARE" in h
    f7 = board_config_header(get_board("NUCLEO-F767ZI"))
    assert "#define BOARD_CORE_M7 1" in f7 and "#define BOARD_ICACHE_BYTES 16384" in f7
    ld = linker_script(l4, 8192)
    assert "ORIGIN = 0x20000000, LENGTH = 327680" in ld and "__model_ram_start" in ld


# ------------------------------------------------------------------ on the virtual board

def _vboard():
    return pytest.importorskip("measure_agent.vboard")


def _open_link(vb_mod, board, image):
    from measure_agent.serial_link import BoardLink, open_serial

    try:
        vb = vb_mod.VirtualBoard(board, str(image.path), strict=STRICT)
    except TypeError:
        vb = vb_mod.VirtualBoard(board, str(image.path))
    bridge = vb_mod.PtyBridge(vb)
    port = open_serial(bridge.path)
    return bridge, port, BoardLink(port, timeout=10.0)


@pytest.mark.parametrize("name", ["NUCLEO-G071RB", "NUCLEO-L4R5ZI"])
def test_stub_firmware_on_virtual_board(name):
    vb_mod = _vboard()
    board = get_board(name)
    image = build_firmware(board, opt="-Os", runtime="stub")
    bridge, port, link = _open_link(vb_mod, board, image)
    try:
        h = link.hello()
        assert (h.target, h.core, h.runtime, h.opt_level) == (name, board.core, "stub", "-Os")
        assert h.default_clock_hz == board.default_clock_hz and h.model_ram_bytes == image.model_ram_bytes
        assert h.build_id == image.build_id and h.cycle_counter in ("dwt", "systick")
        plan = b"STUB" + struct.pack("<5I", 4, 8, 64, 20, 0)
        link.upload_plan(plan)
        link.set_input(0, bytes(range(8)))
        r = link.run(3)
        assert len(r.layer_cycles) == 4 and all(c > 0 for c in r.layer_cycles)
        assert r.layer_cycles == sorted(r.layer_cycles)  # layer l busy-loops (l+1) * work
        assert link.read_output(0) == bytes((i % 8 + 4) for i in range(64))
        link.write_raw(b"\x00\xa5\x5a\x01\x02garbage" + bytes(range(200)))
        assert link.echo(b"after garbage") == b"after garbage"
    finally:
        port.close()
        bridge.close()
    assert bridge.error is None


@pytest.mark.parametrize("name", ["NUCLEO-L4R5ZI", "NUCLEO-F767ZI", "NUCLEO-L552ZE-Q"])
def test_real_model_on_virtual_board(kws_model, name):
    vb_mod = _vboard()
    from costmodel.tflite import read_model
    from measure_agent.firmware_build import resolve_runtime
    from measure_agent.plan import compile_plan
    from measure_agent.plan.host import run_on_host

    if resolve_runtime("auto") != "nn":
        pytest.skip("firmware/runtime/executor.c not present")
    board = get_board(name)
    image = build_firmware(board, opt="-Os")
    plan = compile_plan(read_model(kws_model))
    x = np.random.default_rng(1).integers(-128, 128, size=plan.inputs[0].shape, dtype=np.int8)
    bridge, port, link = _open_link(vb_mod, board, image)
    try:
        h = link.hello()
        assert h.runtime == "nn" and h.runtime_variant == "simd" and h.float_abi == "hard"
        info = link.upload_plan(plan.blob)
        assert info.num_layers == len(plan.layers)
        link.set_input(0, x.tobytes())
        r = link.run(2)
        out = link.read_output(0)
    finally:
        port.close()
        bridge.close()
    assert len(r.layer_cycles) == len(plan.layers) and all(c > 0 for c in r.layer_cycles)
    latency_ms = r.total / board.default_clock_hz * 1e3
    assert 20 < latency_ms < 1000  # MLPerf Tiny TFLM reference on NUCLEO-L4R5ZI: 181.9 ms at 120 MHz
    assert out == run_on_host(plan, [x], "simd")[0].tobytes()
