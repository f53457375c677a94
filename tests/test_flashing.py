"""Flashing real boards (measure_agent/flashing.py and SerialBackend): flash only when the hello's build id differs,
check the hello after flashing, a failed flash puts the board offline with the reason and is retried with
backoff, the external-command flasher, the pyOCD flasher (pyOCD's own probe discovery with a probe plugin;
programming at the session seam), the bench.toml options.

The serial board here is a virtual chip behind a pseudo-terminal that stays open across flashes (as an ST-LINK's
virtual COM port does while the MCU is reprogrammed and reset): real serial protocol bytes, real firmware ELFs."""

from __future__ import annotations

import os
import select
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from costmodel.boards import catalogue, get_board
from measure_agent.backends import OFFLINE_BACKOFF_S, BoardSpec, SerialBackend
from measure_agent.config import ConfigError, parse_config
from measure_agent.elf import ElfImage, parse_elf
from measure_agent.errors import BoardOffline
from measure_agent.firmware_build import build_firmware
from measure_agent.flashing import CommandFlasher, Flasher, FlashError, PyOcdApi, PyOcdFlasher, PyOcdSettings
from measure_agent.settings import FirmwareSettings
from measure_agent.vboard import FlashMemory, PtyBridge, VirtualBoard

TARGET = "NUCLEO-L4R5ZI"
CPUID_M4 = get_board(TARGET).cpuid


@pytest.fixture(scope="module")
def images():
    """Two firmware images of the board (stub runtime: quick to build) with different build ids."""
    board = get_board(TARGET)
    first = build_firmware(board, FirmwareSettings("simd", "hard", "-O2"), runtime="stub")
    second = build_firmware(board, FirmwareSettings("reference", "hard", "-O2"), runtime="stub")
    assert first.build_id != second.build_id
    return first, second


class BenchBoard:
    """A board on the bench: its serial port (a pty that stays open) and the virtual chip behind it, which
    :meth:`boot` restarts on an image written into its flash (the flash array outlives the restart), or on what
    its flash holds (``elf=None``: after a debugger programmed it)."""

    def __init__(self, elf: Path, target: str = TARGET):
        self.board = get_board(target)
        self.flash = FlashMemory(self.board)
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._lock = threading.Lock()
        self._bridge = None
        self._fd = None
        self._closing = False
        self.boot(elf)
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def boot(self, elf: Path | None) -> None:
        image = Path(elf) if elf is not None else ElfImage(entry=0, segments=(), symbols={})
        bridge = PtyBridge(VirtualBoard(self.board, image, flash=self.flash))
        fd = os.open(bridge.path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        with self._lock:
            old, old_fd = self._bridge, self._fd
            self._bridge, self._fd = bridge, fd
        if old is not None:
            os.close(old_fd)
            old.close()

    def _relay(self) -> None:
        while not self._closing:
            with self._lock:
                fd = self._fd
            try:
                ready, _, _ = select.select([self._master, fd], [], [], 0.02)
                for src, dst in ((self._master, fd), (fd, self._master)):
                    if src in ready:
                        data = os.read(src, 4096)
                        while data:
                            data = data[os.write(dst, data):]
            except OSError:  # the chip was restarted under the relay: take the new one
                continue

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=2)
        os.close(self._fd)
        self._bridge.close()
        os.close(self._master)
        os.close(self._slave)


class ChipFlasher(Flasher):
    """Writes the image into the bench board's virtual chip and restarts it; ``fail``: that many failures first;
    ``runs``: the image the chip really boots (a flash that did not take)."""

    def __init__(self, bench: BenchBoard, fail: int = 0, runs=None):
        super().__init__("bench-0")
        self.bench, self.fail, self.runs = bench, fail, runs
        self.attempts = 0

    def flash(self, image) -> None:
        self.attempts += 1
        if self.attempts <= self.fail:
            raise FlashError(f"flashing bench-0 failed: attempt {self.attempts}: no ST-LINK detected")
        self.bench.boot((self.runs or image).elf)


@pytest.fixture
def bench(images):
    board = BenchBoard(images[0].elf)
    yield board
    board.close()


def _backend(bench: BenchBoard, flasher: Flasher | None) -> SerialBackend:
    backend = SerialBackend(BoardSpec(id="bench-0", kind="serial", target=TARGET, port=bench.port))
    backend.flasher = flasher
    return backend


def test_board_running_the_image_is_not_flashed(bench, images):
    first, second = images
    flasher = ChipFlasher(bench)
    backend = _backend(bench, flasher)
    try:
        assert backend.link(first).hello().build_id == first.build_id
        assert flasher.attempts == 0                      # the hello named the image: nothing flashed
        assert backend.link(second).hello().build_id == second.build_id
        assert flasher.attempts == 1
        backend.close()                                   # the agent restarts: the board still runs the second
        assert backend.link(second).hello().build_id == second.build_id
        assert flasher.attempts == 1
    finally:
        backend.close()


def test_board_that_does_not_run_the_flashed_image_is_offline(bench, images):
    first, second = images
    backend = _backend(bench, ChipFlasher(bench, runs=first))
    with pytest.raises(BoardOffline) as err:
        backend.run_plan(second, b"", [])
    reason = f"board bench-0: flashed {second.build_id} but the board runs {first.build_id}"
    assert reason in str(err.value)
    assert backend.offline and backend.state_reason == reason


def test_failed_flash_is_offline_with_the_reason_and_retried_with_backoff(bench, images):
    _, second = images
    flasher = ChipFlasher(bench, fail=2)
    backend = _backend(bench, flasher)
    with pytest.raises(BoardOffline, match="attempt 1: no ST-LINK detected"):
        backend.run_plan(second, b"", [])
    assert backend.state == "offline" and backend.state_reason.endswith("attempt 1: no ST-LINK detected")
    assert OFFLINE_BACKOFF_S[0] - 0.5 < backend.retry_at - time.monotonic() <= OFFLINE_BACKOFF_S[0]
    with pytest.raises(BoardOffline, match="is offline"):   # offline: a request does not touch the board
        backend.run_plan(second, b"", [])
    assert flasher.attempts == 1
    assert not backend.probe()                              # the retry flashes again, fails again: longer backoff
    assert flasher.attempts == 2 and "attempt 2" in backend.state_reason
    assert OFFLINE_BACKOFF_S[1] - 0.5 < backend.retry_at - time.monotonic() <= OFFLINE_BACKOFF_S[1]
    assert backend.probe()                                  # the third attempt takes: online, running the image
    assert flasher.attempts == 3 and backend.state == "idle" and backend.state_reason == ""
    assert backend.link(second).hello().build_id == second.build_id and flasher.attempts == 3
    backend.close()


def test_agent_shows_a_failed_flash_and_measures_once_the_retry_flashed(bench, tmp_path):
    """Through the agent (gRPC, the board's worker thread): the request that needs a flash the board cannot take
    fails UNAVAILABLE with the reason, ListBoards and Health show the board offline with it; after the backoff
    the worker flashes again, the board comes back and measures on the image flashed."""
    from measure_agent.client import AgentClient, AgentError
    from measure_agent.config import AgentConfig
    from measure_agent.service import serve
    from tests.test_agent_e2e import small_model

    flasher = ChipFlasher(bench, fail=1)
    backend = _backend(bench, flasher)
    token = "f" * 24
    cfg = AgentConfig(listen="127.0.0.1:0", journal=tmp_path / "journal.sqlite", clients={"alice": token},
                      boards=(backend.spec,), workers="thread")
    server, agent, port = serve(cfg, [backend])
    try:
        with AgentClient(f"127.0.0.1:{port}", token, retry_for_s=0) as client:
            with pytest.raises(AgentError) as err:
                client.measure(small_model(), TARGET, request_id="flash-1", repetitions=1)
            assert "offline" in err.value.message and "attempt 1: no ST-LINK detected" in err.value.message
            (board,) = client.boards()
            assert board.state == "offline" and board.state_reason.endswith("attempt 1: no ST-LINK detected")
            assert any("no ST-LINK detected" in p for p in client.health().problems)
            deadline = time.monotonic() + 15
            while client.boards()[0].state == "offline":
                assert time.monotonic() < deadline, "the board was not flashed again"
                time.sleep(0.1)
            assert flasher.attempts == 2 and not client.health().problems
            result = client.measure(small_model(), TARGET, request_id="flash-2", repetitions=1)
            assert result.board_id == "bench-0" and result.total_cycles > 0 and flasher.attempts == 2
    finally:
        server.stop(grace=1).wait()
        agent.close()


def test_board_without_a_flasher_says_so(bench, images):
    from measure_agent.errors import MeasureError

    backend = _backend(bench, None)
    with pytest.raises(MeasureError, match="runs other firmware and has no flash_command or flash configured"):
        backend.link(images[1])


# ------------------------------------------------------------ the external command
def test_command_flasher_runs_the_command_on_the_images_files(tmp_path, images):
    image = images[0]
    out = tmp_path / "flashed.bin"
    script = tmp_path / "fake-st-flash.py"
    script.write_text("import shutil, sys\nassert sys.argv[1] == 'write' and sys.argv[3] == '0x08000000'\n"
                      "shutil.copyfile(sys.argv[2], sys.argv[4])\n")
    CommandFlasher("l4r5-a", (sys.executable, str(script), "write", "{bin}", "0x08000000", str(out))).flash(image)
    binary = Path(image.elf).with_suffix(".bin").read_bytes()
    assert out.read_bytes() == binary
    flash_segments = [s for s in parse_elf(image.elf).segments if s.data and get_board(TARGET).flash.contains(s.paddr)]
    assert binary.startswith(flash_segments[0].data)      # objcopy's binary starts with the vector table's segment


def test_command_flasher_failures_are_one_line(tmp_path, images):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('Error: no ST-LINK\\n  detected', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(FlashError) as err:
        CommandFlasher("l4r5-a", (sys.executable, str(script), "{elf}")).flash(images[0])
    assert str(err.value) == f"flashing l4r5-a failed: {sys.executable} exited 3: Error: no ST-LINK detected"
    with pytest.raises(FlashError, match=r"^flashing l4r5-a failed: cannot run no-such-flasher: No such file"):
        CommandFlasher("l4r5-a", ("no-such-flasher", "{bin}")).flash(images[0])
    sleeper = tmp_path / "hang.py"
    sleeper.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(FlashError, match=r"did not finish in 0.5 s$"):
        CommandFlasher("l4r5-a", (sys.executable, str(sleeper)), timeout_s=0.5).flash(images[0])


# ------------------------------------------------------------ pyOCD
from pyocd.probe.debug_probe import DebugProbe  # noqa: E402


class _AttachedProbe(DebugProbe):
    """A debug probe as pyOCD's probe plugins describe one (serial numbers as ST-LINK/V2-1 reports them); it is
    listed, never opened."""

    attached: list[str] = []

    def __init__(self, serial: str):
        super().__init__()
        self._serial = serial

    unique_id = property(lambda self: self._serial)
    vendor_name = property(lambda self: "STMicroelectronics")
    product_name = property(lambda self: "STM32 STLink")

    @classmethod
    def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
        return [cls(s) for s in cls.attached]

    @classmethod
    def get_probe_with_id(cls, unique_id, is_explicit=False):
        return None


@pytest.fixture
def probes(monkeypatch):
    """The probes pyOCD finds: pyOCD's own discovery (ConnectHelper, the probe aggregator) over a plugin that
    reports the probes a test attaches, in place of the USB plugins."""
    from pyocd.probe import aggregator

    monkeypatch.setattr(aggregator, "PROBE_CLASSES", {"bench": _AttachedProbe})
    monkeypatch.setattr(_AttachedProbe, "attached", [])
    return _AttachedProbe.attached


L4R5_SERIAL = "066DFF535254887767184417"
F767_SERIAL = "0670FF504955857567102232"


def _pyocd(probe: str = "", api=None) -> PyOcdFlasher:
    return PyOcdFlasher("l4r5-a", PyOcdSettings(target="stm32l4r5zitx", probe=probe, cpuid=CPUID_M4), api)


def test_pyocd_chooses_the_probe_by_serial(probes):
    probes += [L4R5_SERIAL, F767_SERIAL]
    assert _pyocd(L4R5_SERIAL).choose_probe().unique_id == L4R5_SERIAL
    assert _pyocd("0670FF50").choose_probe().unique_id == F767_SERIAL   # a unique part of the serial is enough
    with pytest.raises(FlashError) as err:
        _pyocd().choose_probe()
    assert str(err.value) == (f"flashing l4r5-a with pyOCD failed: several probes are attached ({L4R5_SERIAL}, "
                              f"{F767_SERIAL}) and the board names none: set flash.probe")
    with pytest.raises(FlashError) as err:
        _pyocd("FF").choose_probe()
    assert "serial FF matches several probes" in str(err.value)
    with pytest.raises(FlashError) as err:
        _pyocd("066DFF0000").choose_probe()
    assert str(err.value) == (f"flashing l4r5-a (probe 066DFF0000) with pyOCD failed: no debug probe with serial "
                              f"066DFF0000; attached: {L4R5_SERIAL}, {F767_SERIAL}")
    probes.clear()
    with pytest.raises(FlashError, match="with pyOCD failed: no debug probe is attached$"):
        _pyocd().choose_probe()
    probes.append(F767_SERIAL)
    assert _pyocd().choose_probe().unique_id == F767_SERIAL             # one probe: no serial needed


def test_pyocd_session_is_pyocds_for_the_target(probes, images):
    """The real pyOCD Session (not opened: no probe hardware) with the flasher's options: pyOCD's built-in target
    for the F767 and its flash map, which holds every segment of our F767 firmware; a target pyOCD does not know
    (a pack not installed here) is one line saying how to install it."""
    probes.append(F767_SERIAL)
    board = get_board("NUCLEO-F767ZI")
    flasher = PyOcdFlasher("f767-a", PyOcdSettings(target=board.pyocd_target, probe=F767_SERIAL, cpuid=board.cpuid))
    session = flasher.api.session(flasher.choose_probe(), flasher.session_options())
    assert session.options.get("target_override") == "stm32f767zi" and session.options.get("frequency") == 4_000_000
    assert session.options.get("hide_programming_progress") is True
    assert session.target.part_number == "STM32F767xx"
    image = build_firmware(board, runtime="stub")
    for segment in (s for s in parse_elf(image.elf).segments if s.data and board.flash.contains(s.paddr)):
        region = session.target.memory_map.get_region_for_address(segment.paddr)
        assert region.is_flash and region.contains_range(segment.paddr, length=len(segment.data))
    probes[:] = [L4R5_SERIAL]
    with pytest.raises(FlashError) as err:
        _pyocd(L4R5_SERIAL).flash(images[0])  # pyOCD 0.46 has no built-in STM32L4R5 and no pack is installed here
    assert str(err.value).startswith(f"flashing l4r5-a (probe {L4R5_SERIAL}) with pyOCD failed: pyOCD does not know "
                                     f"target 'stm32l4r5zitx' (Target type stm32l4r5zitx not recognized.")
    assert str(err.value).endswith("; install its pack: pyocd pack install stm32l4r5zitx")


# ------------------------------------------------------------ pyOCD on the virtual chip's debug port
F767 = get_board("NUCLEO-F767ZI")   # the catalogue's board with a target built into pyOCD (no pack needed)


@pytest.fixture(scope="module")
def f767_images():
    first = build_firmware(F767, FirmwareSettings("simd", "hard", "-O2"), runtime="stub")
    second = build_firmware(F767, FirmwareSettings("reference", "hard", "-O2"), runtime="stub")
    return first, second


@pytest.fixture
def virtual_probes(monkeypatch):
    """pyOCD's probe discovery over the virtual chips' debug ports a test attaches (``list.append``)."""
    from pyocd.probe import aggregator

    attached = []

    class VirtualProbes:
        @classmethod
        def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
            return list(attached)

        @classmethod
        def get_probe_with_id(cls, unique_id, is_explicit=False):
            return None

    monkeypatch.setattr(aggregator, "PROBE_CLASSES", {"vboard": VirtualProbes})
    return attached


def test_pyocd_programs_the_virtual_chip_through_its_debug_port(virtual_probes, f767_images):
    """pyOCD's own code end to end: probe discovery, SW-DP and AHB-AP, ROM table, the Cortex-M7 core, connect
    under reset, its built-in STM32F767 flash algorithm running on the Unicorn core against the modelled FLASH
    controller (sector erase, programming), our read-back verify, reset. The chip, booted from its flash alone,
    then says the image's build id in its hello."""
    from measure_agent.vboard.swd import VirtualDebugProbe, booted_build_id

    image = f767_images[0]
    probe = VirtualDebugProbe(F767, serial="VB-F767-0")
    virtual_probes.append(probe)
    flasher = PyOcdFlasher("f767-a", PyOcdSettings(target=F767.pyocd_target, probe="VB-F767-0", cpuid=F767.cpuid))
    flasher.flash(image)
    assert probe.resets == 2 and probe.fault is None          # connect under reset, reset after programming
    for segment in (s for s in parse_elf(image.elf).segments if s.data and F767.flash.contains(s.paddr)):
        assert probe.flash.read(segment.paddr, len(segment.data)) == segment.data
    end = max(s.paddr + len(s.data) for s in parse_elf(image.elf).segments if F767.flash.contains(s.paddr))
    assert end <= 0x08008000                                   # the image lies in sector 0 (32 KB, RM0410 3.3.1)
    assert probe.flash.erase_count(0x08000000) == 1 and probe.flash.erase_count(0x08008000) == 0
    assert booted_build_id(probe.flash) == image.build_id


def test_pyocd_on_a_probe_of_another_core_is_a_target_mismatch(virtual_probes, f767_images):
    """The F767's settings, the probe on a Cortex-M4 chip (an L4R5): pyOCD connects, our CPUID check refuses
    before anything is erased."""
    from measure_agent.vboard.swd import VirtualDebugProbe

    probe = VirtualDebugProbe(get_board(TARGET), serial="VB-L4R5-0")
    virtual_probes.append(probe)
    flasher = PyOcdFlasher("f767-a", PyOcdSettings(target="stm32f767zi", probe="VB-L4R5-0", cpuid=F767.cpuid))
    with pytest.raises(FlashError) as err:
        flasher.flash(f767_images[0])
    assert str(err.value) == (f"flashing f767-a (probe VB-L4R5-0) with pyOCD failed: target mismatch: the probe's "
                              f"core has CPUID 0x{CPUID_M4:08X}, the board's catalogue entry a core with CPUID "
                              f"0x{F767.cpuid:08X}; is the probe on this board?")
    assert probe.flash.erases == 0


def test_pyocd_flash_that_reads_back_other_bytes_is_a_verify_error(virtual_probes, f767_images):
    """A flash cell that does not hold what was programmed (a worn or disturbed cell, flipped here after pyOCD
    programmed the page): the read-back through pyOCD's MEM-AP finds it, the board is not reset."""
    from measure_agent.vboard.swd import VirtualDebugProbe

    probe = VirtualDebugProbe(F767, serial="VB-F767-2")
    virtual_probes.append(probe)

    class FlippingApi(PyOcdApi):
        def program(self, session, elf):
            super().program(session, elf)
            probe.flash.buf[0x100] ^= 0x10  # 0x08000100: in the vector table

    flasher = PyOcdFlasher("f767-a", PyOcdSettings(target="stm32f767zi", probe="VB-F767-2", cpuid=F767.cpuid),
                           FlippingApi())
    with pytest.raises(FlashError) as err:
        flasher.flash(f767_images[0])
    image_byte = next(s for s in parse_elf(f767_images[0].elf).segments if s.paddr == 0x08000000).data[0x100]
    assert str(err.value) == (f"flashing f767-a (probe VB-F767-2) with pyOCD failed: verify: 0x08000100 reads "
                              f"0x{image_byte ^ 0x10:02x}, the image has 0x{image_byte:02x}")
    assert probe.resets == 1                                   # the connect's, no reset to run the image


def test_virtual_debug_port_models_armv7m_cores_only():
    from measure_agent.vboard.swd import VirtualDebugProbe

    for name in ("NUCLEO-G071RB", "NUCLEO-L552ZE-Q"):
        with pytest.raises(ValueError, match="models Armv7-M cores"):
            VirtualDebugProbe(get_board(name))


def test_serial_board_flashed_with_pyocd_from_its_bench_toml(virtual_probes, f767_images):
    """bench.toml's ``flash = { tool = "pyocd" }`` on a serial board: the hello names another image, the agent
    flashes through pyOCD (the debug port of the chip behind the serial port), the chip restarts from its flash
    and its hello names the image; the next link flashes nothing."""
    from measure_agent.vboard.swd import VirtualDebugProbe

    first, second = f767_images
    bench = BenchBoard(first.elf, target=F767.name)
    probe = VirtualDebugProbe(F767, flash=bench.flash, serial="VB-F767-1", on_run=lambda: bench.boot(None))
    virtual_probes.append(probe)
    cfg = parse_config(f'[clients]\nsearch = "{"t" * 20}"\n[[boards]]\nkind = "serial"\nid = "f767-a"\n'
                       f'target = "NUCLEO-F767ZI"\nport = "{bench.port}"\nflash = {{ tool = "pyocd", probe = "VB-F767" }}\n')
    backend = SerialBackend(cfg.boards[0])
    try:
        assert backend.link(first).hello().build_id == first.build_id and probe.resets == 0
        assert backend.link(second).hello().build_id == second.build_id and probe.resets == 2
        backend.close()
        assert backend.link(second).hello().build_id == second.build_id and probe.resets == 2
    finally:
        backend.close()
        bench.close()


class _Target:
    """The target of a pyOCD session at the calls the flasher makes: a memory, the CPUID, reset."""

    def __init__(self, cpuid: int):
        self.memory: dict[int, int] = {}
        self.cpuid = cpuid
        self.resets = 0

    def read32(self, address: int) -> int:
        assert address == 0xE000ED00
        return self.cpuid

    def read_memory_block8(self, address: int, size: int) -> list[int]:
        return [self.memory.get(address + i, 0xFF) for i in range(size)]

    def reset(self) -> None:
        self.resets += 1


class _SessionApi(PyOcdApi):
    """pyOCD's probe discovery as it is; the session and FileProgrammer replaced (no probe hardware here)."""

    def __init__(self, cpuid=CPUID_M4, corrupt=None, fail=None):
        self.target = _Target(cpuid)
        self.corrupt, self.fail = corrupt, fail
        self.opened: list[tuple[str, dict]] = []

    def session(self, probe, options):
        self.opened.append((probe.unique_id, options))
        api = self

        class Session:
            board = type("Board", (), {"target": api.target})

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        return Session()

    def program(self, session, elf):
        if self.fail:
            raise self.fail
        for segment in parse_elf(elf).segments:
            for i, byte in enumerate(segment.data):
                self.target.memory[segment.paddr + i] = byte
        if self.corrupt is not None:
            self.target.memory[self.corrupt] ^= 0x01


def test_pyocd_flash_programs_verifies_and_resets(probes, images):
    probes.append(L4R5_SERIAL)
    api = _SessionApi()
    _pyocd(L4R5_SERIAL, api).flash(images[0])
    assert api.opened == [(L4R5_SERIAL, {"target_override": "stm32l4r5zitx", "frequency": 4_000_000,
                                         "hide_programming_progress": True})]
    assert api.target.resets == 1
    vectors = next(s for s in parse_elf(images[0].elf).segments if s.paddr == 0x08000000)
    assert bytes(api.target.read_memory_block8(0x08000000, 8)) == vectors.data[:8]


def test_pyocd_failures_are_one_line_naming_board_and_probe(probes, images):
    from pyocd.core import exceptions

    probes.append(L4R5_SERIAL)
    head = f"flashing l4r5-a (probe {L4R5_SERIAL}) with pyOCD failed: "
    cases = [
        (_SessionApi(corrupt=0x08000004), "verify: 0x08000004 reads 0x"),
        (_SessionApi(cpuid=0x411FC270), "target mismatch: the probe's core has CPUID 0x411FC270, the board's catalogue "
                                        f"entry a core with CPUID 0x{CPUID_M4:08X}; is the probe on this board?"),
        (_SessionApi(fail=exceptions.FlashProgramFailure("flash program page failure", address=0x08004000,
                                                         result_code=1)),
         "programming: flash program page failure (address 0x08004000; result code 0x1)"),
        (_SessionApi(fail=exceptions.TransferFaultError("SWD fault")), 
         "programming: TransferFaultError: Memory transfer fault (SWD fault)"),
    ]
    for api, message in cases:
        with pytest.raises(FlashError) as err:
            _pyocd(L4R5_SERIAL, api).flash(images[0])
        text = str(err.value)
        assert text.startswith(head) and message in text and "\n" not in text, text
        assert api.target.resets == 0


# ------------------------------------------------------------ bench.toml
BASE = (f'[clients]\nsearch = "{"t" * 20}"\n'
        f'[[boards]]\nkind = "serial"\nid = "l4r5-a"\ntarget = "{TARGET}"\nport = "/dev/ttyACM0"\n')


def test_pyocd_flash_options():
    cfg = parse_config(BASE + f'flash = {{ tool = "pyocd", probe = "{L4R5_SERIAL}" }}\n')
    assert cfg.boards[0].flash == {"tool": "pyocd", "probe": L4R5_SERIAL, "target": "stm32l4r5zitx",
                                   "frequency": 4_000_000}
    backend = SerialBackend(cfg.boards[0])
    assert isinstance(backend.flasher, PyOcdFlasher) and backend.flasher.settings.cpuid == CPUID_M4
    cfg = parse_config(BASE + 'flash = { tool = "pyocd", target = "stm32l4r5vitx", frequency = 1_800_000 }\n')
    assert cfg.boards[0].flash["target"] == "stm32l4r5vitx" and cfg.boards[0].flash["probe"] is None
    cfg = parse_config(BASE + 'flash_command = ["st-flash", "write", "{bin}", "0x08000000"]\n')
    assert isinstance(SerialBackend(cfg.boards[0]).flasher, CommandFlasher) and cfg.boards[0].flash is None


@pytest.mark.parametrize("line, error", [
    ('flash = { tool = "pyocd" }\nflash_command = ["st-flash"]',
     "boards[0]: flash and flash_command are two ways to flash the board: set one of them"),
    ('flash = { tool = "jlink" }', "boards[0].flash.tool must be 'pyocd', not 'jlink'"),
    ('flash = { probe = "066D" }', "boards[0].flash: needs a tool"),
    ('flash = { tool = "pyocd", speed = 4000000 }',
     "unknown key 'speed' in boards[0].flash (known keys: tool, probe, target, frequency)"),
    ('flash = { tool = "pyocd", frequency = "fast" }', "boards[0].flash.frequency must be an integer, not 'fast'"),
    ('flash = { tool = "pyocd", frequency = 5 }',
     "boards[0].flash.frequency must be greater than or equal to 10000, not 5"),
    ('flash = "pyocd"', "boards[0].flash must be a table, not 'pyocd'"),
])
def test_flash_option_errors_are_one_line(line, error):
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + line + "\n")
    assert str(err.value) == error


def test_every_board_has_a_pyocd_target_with_its_source():
    from pyocd.target.builtin import BUILTIN_TARGETS

    for name, board in catalogue().items():
        assert board.pyocd_target, name
        source = board.sources["pyocd_target"]
        built_in = board.pyocd_target in BUILTIN_TARGETS
        assert ("built-in target" in source) == built_in, (name, source)
        if not built_in:  # a pack device name: the MCU's part number in lower case (with its package letters)
            assert board.pyocd_target.startswith(board.mcu.lower()) and "CMSIS pack" in source, name
