"""Board backends: how the agent reaches one board, real (serial port) or virtual (simulator behind a pty).

Both speak the firmware's serial protocol through :class:`~measure_agent.serial_link.BoardLink`; the
virtual board is reached through a pseudo-terminal, so the code path is the one a real board uses.
A backend keeps the firmware the board runs and changes it only when a request needs another
build (built once, cached by content hash; flashed once). :meth:`Backend.run_plan` is the one board
session: link, upload, set inputs, run, read outputs, and the mapping of link failures to
measurement errors.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from costmodel.boards import Board, get_board
from measure_agent.energy import MODELLED, MONITORED, EnergyMonitor, MonitorError, monitor_from_config
from measure_agent.monitors import Trace, TracedEnergy, layer_energy
from measure_agent.errors import BoardNotAnswering, BoardOffline, InvalidModel, MeasureError
from measure_agent.flashing import Flasher, FlashError, make_flasher
from measure_agent.protocol import RunResult
from measure_agent.settings import FirmwareSettings

#: progress(stage, message) with stage "uploading" or "running"
Progress = Callable[[str, str], None]

#: nn_status values of the firmware's plan check (plan_reader.c) that say the plan's own contents are inconsistent:
#: NN_ERR_BAD_PLAN, NN_ERR_BAD_INDEX, NN_ERR_BAD_SIZE (a compiled model the compiler let through, not a board fault)
PLAN_CHECK_STATUSES = frozenset({1, 5, 6})

#: an offline board is tried again after these delays (seconds), the last one repeating
OFFLINE_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class BoardSpec:
    """One board of a bench, as the agent's configuration describes it."""

    id: str
    kind: str                     # "virtual" | "serial"
    target: str
    port: str | None = None
    baud: int = 115200
    flash_command: tuple[str, ...] = ()
    flash: dict | None = None     # pyOCD flashing ({"tool": "pyocd", "probe", "target", "frequency"}), or None
    energy_monitor: dict | None = None
    runtime: str = "auto"         # the executor the board's firmware links (firmware_build.sources.RUNTIMES)


@dataclass(frozen=True)
class BoardRun:
    """What one session on a board returns."""

    cycles: RunResult             # per layer the minimum over the runs, and the run totals
    outputs: list[bytes]
    energy_j: float | None        # per run, from the board's energy monitor; None without one
    placement: str = "sram"       # where the plan (its constants) was: "flash" (a flash slot) or "sram"
    programmed: bool = False      # placement flash: the plan was programmed for this run (False: already there)
    traced: TracedEnergy | None = None  # a tracing monitor's per-layer energy (cut at the energy pin's edges)


class Backend(ABC):
    """One board. Not thread-safe: the board's worker is its only user.

    ``state`` is "idle", "busy", "recovering" or "offline"; an offline board (one that cannot be opened, or
    whose flashing failed) has its reason in ``state_reason`` and is tried again at ``retry_at``
    (:meth:`probe`), with a backoff that grows while it stays offline.
    """

    kind = ""

    def __init__(self, spec: BoardSpec):
        self.spec = spec
        self.board: Board = get_board(spec.target)
        self.monitor: EnergyMonitor | None = None
        self.state = "idle"
        self.state_reason = ""
        self.retry_at = 0.0
        self._failures = 0
        self._image = None
        self._link = None
        self._images: dict[FirmwareSettings, object] = {}
        #: the board's flash slots as last read (protocol.FlashInfo), None before the agent talked to it
        self.flash_info = None

    # ------------------------------------------------------------ offline and back
    def check_available(self) -> str:
        """Why the board cannot be used now ("" when it can); cheap, does not touch a board that works."""
        return ""

    def probe(self) -> bool:
        """Check the board (at start, and when an offline board's retry time has come): online or offline."""
        reason = self.check_available()
        if reason:
            self.mark_offline(reason)
            return False
        self.mark_online()
        return True

    def mark_offline(self, reason: str) -> None:
        self.close()
        delay = OFFLINE_BACKOFF_S[min(self._failures, len(OFFLINE_BACKOFF_S) - 1)]
        self._failures += 1
        self.state, self.state_reason, self.retry_at = "offline", reason, time.monotonic() + delay

    def mark_online(self) -> None:
        if self.state == "offline":
            self.state = "idle"
        self.state_reason, self.retry_at, self._failures = "", 0.0, 0

    @property
    def offline(self) -> bool:
        return self.state == "offline"

    @property
    def board_id(self) -> str:
        return self.spec.id

    @property
    def energy_source(self) -> str:
        return MONITORED if self.monitor else MODELLED

    @property
    def model_version(self) -> str:
        """The timing model's version of a virtual board; "" for a real one."""
        return ""

    def firmware(self, settings: FirmwareSettings):
        """The firmware image for this board and settings (built on first use, then cached).

        Kept per settings for the backend's life: finding a built image costs a hash of every firmware
        source, which a board serving many requests should not pay per request."""
        from measure_agent.firmware_build import build_firmware

        image = self._images.get(settings)
        if image is None:
            image = self._images[settings] = build_firmware(self.board, settings, runtime=self.spec.runtime)
        return image

    def run_plan(self, image, plan: bytes, inputs: list[bytes], repetitions: int = 1, *,
                 placement: str = "flash", measure_energy: bool = True,
                 progress: Progress = lambda stage, message: None) -> BoardRun:
        """Run ``plan`` on the board running ``image``: ``repetitions`` runs on ``inputs``.

        ``placement="flash"`` (as deployed): the firmware programs the plan into a flash slot (not again when
        a slot holds it already) and the executor reads the constants from there, the arena in SRAM;
        ``"sram"``: the whole plan is uploaded into SRAM. The plan is uploaded only when the board does not
        hold it already. Raises
        :class:`BoardNotAnswering` when the board stopped answering (it is recovered first) and
        :class:`MeasureError` when it refused the plan or the energy monitor failed.
        """
        from measure_agent.serial_link import BoardError, BoardLinkError, BoardTimeout

        monitor = self.monitor if measure_energy else None
        if self.offline:
            raise BoardOffline(f"board {self.board_id} is offline: {self.state_reason}")
        try:
            try:
                link = self.link(image)
            except OSError as exc:  # the port cannot be opened: offline until it can
                if isinstance(exc, BoardLinkError):  # (BoardTimeout is a TimeoutError): the board is there
                    raise
                self.mark_offline(f"cannot open {self.spec.port or 'the board'}: {exc}")
                raise BoardOffline(f"board {self.board_id} is offline: {self.state_reason}") from None
            except FlashError as exc:  # offline until flashing works (retried by probe, with backoff)
                self.mark_offline(str(exc))
                raise BoardOffline(f"board {self.board_id} is offline: {self.state_reason}") from None
            progress("uploading", f"{len(plan)} bytes to {placement}")
            link.last_flash = None
            link.prepare(plan, inputs, placement)
            programmed = placement == "flash" and link.last_flash is not None and not link.last_flash.present
            if placement == "flash":
                self.flash_info = link.flash_info()
            progress("running", f"{repetitions} runs")
            if monitor:
                monitor.start()
            cycles = link.run(repetitions)
            energy, traced = None, None
            if monitor:
                measured = monitor.stop()
                if isinstance(measured, Trace):
                    traced = layer_energy(measured, cycles.layer_cycles, cycles.total, repetitions,
                                          link.info.default_clock_hz)  # the clock the firmware set up
                    energy = traced.run_j
                else:
                    energy = measured / repetitions
            outputs = link.read_outputs()
        except MonitorError as exc:
            raise MeasureError(f"energy monitor of board {self.board_id}: {exc}") from None
        except BoardTimeout as exc:
            self.recover()
            raise BoardNotAnswering(f"board {self.board_id} stopped answering: {exc}") from None
        except BoardError as exc:
            if exc.nn_status in PLAN_CHECK_STATUSES:  # the firmware's plan check: the model is inconsistent
                raise InvalidModel(f"malformed model: the firmware's plan check refused it ({exc.name}, "
                                   f"detail {exc.detail}); its tensors do not fit its ops") from None
            raise MeasureError(f"board {self.board_id} refused the model: {exc}") from None
        except BoardLinkError as exc:
            self.recover()
            raise BoardNotAnswering(f"board {self.board_id}: {exc}") from None
        return BoardRun(cycles, outputs, energy, placement, programmed, traced)

    def link(self, image):
        """A link to the board running ``image``: flashes or restarts the board when it runs another."""
        if self._link is None or self._image is None or self._image.build_id != image.build_id:
            self.close()
            self._link = self._start(image)
            self._image = image
            hello = self._link.hello()
            if hello.build_id != image.build_id:
                self.close()
                raise MeasureError(f"board {self.board_id} runs firmware {hello.build_id}, expected {image.build_id}")
            if hello.core_clock_hz != hello.default_clock_hz:
                why = self._clock_note()
                self.close()
                raise MeasureError(f"board {self.board_id}: the firmware's clock set-up failed, the core runs at "
                                   f"{hello.core_clock_hz / 1e6:g} MHz, not {hello.default_clock_hz / 1e6:g} MHz"
                                   + (f" ({why})" if why else ""))
        return self._link

    def _clock_note(self) -> str:
        """Why the clock set-up could not finish, where the board can tell (the virtual board's RCC model)."""
        return ""

    def recover(self) -> None:
        """Bring a board that stopped answering back; the next :meth:`link` starts afresh."""
        self.state = "recovering"
        try:
            self.close()
        finally:
            self.state = "idle"

    def close(self) -> None:
        if self._link is not None:
            self._close_link()
        self._link = None
        self._image = None

    def release(self) -> None:
        """Close the board and let its energy monitor go (its port, a simulated instrument)."""
        self.close()
        for part in (self.monitor, getattr(self.monitor, "instrument", None)):
            if hasattr(part, "close"):
                part.close()

    @abstractmethod
    def _start(self, image):
        """Make the board run ``image`` and return a connected BoardLink."""

    @abstractmethod
    def _close_link(self) -> None: ...


class VirtualBackend(Backend):
    """A virtual board: the firmware ELF on the cycle-approximate simulator, behind a pseudo-terminal."""

    kind = "virtual"

    #: run the simulator in strict mode (memory hook: every flash data read timed; slow); set before first use
    strict = False

    def __init__(self, spec: BoardSpec):
        super().__init__(spec)
        self._bridge = None
        self._serial = None
        self._flash = None  # the virtual chip's flash: kept across firmware loads and restarts, as a board's
        self._vb = None     # the simulator of the current link (tests read its FLASH controller's counters)
        if spec.energy_monitor:  # a simulated instrument, drawing this board's power model
            from measure_agent.vboard.instruments import simulated_monitor

            self.monitor = simulated_monitor(spec.energy_monitor, lambda: self._vb)

    @property
    def model_version(self) -> str:
        from measure_agent.vboard import MODEL_VERSION

        return MODEL_VERSION

    #: the simulator's deadline for one RUN: the same as the link's, so MAX_REPETITIONS of a large model fit
    RUN_TIMEOUT_S = 600.0

    def _start(self, image):
        from measure_agent.serial_link import BoardLink, open_serial
        from measure_agent.vboard import PtyBridge, VirtualBoard

        from measure_agent.vboard import FlashMemory

        if self._flash is None:
            self._flash = FlashMemory(self.board)
        vb = VirtualBoard(self.board, Path(image.elf), strict=self.strict, flash=self._flash)
        self._vb = vb
        self._bridge = PtyBridge(vb, run_timeout_s=self.RUN_TIMEOUT_S)
        self._serial = open_serial(self._bridge.path)
        return BoardLink(_FaultAwareLine(self._serial, self._bridge), timeout=5.0, run_timeout=self.RUN_TIMEOUT_S)

    def _clock_note(self) -> str:
        clock = self._vb.peripherals.clock if self._vb is not None else None
        return f"virtual board: {clock.note}" if clock is not None and clock.note else ""

    def _close_link(self) -> None:
        for closer in (self._serial, self._bridge):
            if closer is not None:
                try:
                    closer.close()
                except OSError:
                    pass
        self._serial = self._bridge = None

    def freeze(self) -> None:
        """Stop the simulator without closing the line: the board hangs, as a crashed MCU does (fault tests)."""
        if self._bridge is not None:
            self._bridge.pause()

    def inject_line_noise(self, data: bytes) -> None:
        """Put bytes on the line in both directions, as electrical noise would (fault tests)."""
        if self._bridge is not None:
            self._serial.write(data)
            self._bridge.inject_to_host(data)


class _FaultAwareLine:
    """The pty seen by BoardLink, failing at once once the simulator has stopped on a fault (a real board
    that crashed just goes quiet, and its link waits for the timeout)."""

    def __init__(self, serial, bridge):
        self._serial = serial
        self._bridge = bridge

    def read(self, n: int = 1) -> bytes:
        data = self._serial.read(n)
        if not data and self._bridge.error is not None:
            from measure_agent.serial_link import BoardLinkError

            raise BoardLinkError(f"virtual board stopped: {self._bridge.error}")
        return data

    def __getattr__(self, name):
        return getattr(self._serial, name)


class SerialBackend(Backend):
    """A real board on a serial port, flashed (:mod:`measure_agent.flashing`) when it runs other firmware.

    The running firmware's build id comes from the board's hello; the board is flashed only when it differs,
    and after flashing the hello must name the image flashed. A failed flash puts the board offline with the
    reason; :meth:`probe` flashes that image again when the backoff has passed.
    """

    kind = "serial"

    def __init__(self, spec: BoardSpec):
        super().__init__(spec)
        self.monitor = monitor_from_config(spec.energy_monitor)
        self.flasher: Flasher | None = make_flasher(spec.id, spec.flash_command, spec.flash, self.board.cpuid)
        self._serial = None
        self._unflashed = None  # the image whose flashing failed last (flashed again by the next probe)

    def check_available(self) -> str:
        port = self.spec.port or ""
        if self._link is not None:
            return ""
        if not os.path.exists(port):
            return f"serial port {port} does not exist"
        if not os.access(port, os.R_OK | os.W_OK):
            return f"no permission to open serial port {port}"
        if self._unflashed is not None:  # the last flash failed: flashing it again is the check
            try:
                self.link(self._unflashed)
            except (FlashError, OSError) as exc:
                return str(exc)
        return ""

    def _start(self, image):
        from measure_agent.serial_link import BoardLink, BoardLinkError, open_serial

        self._serial = open_serial(self.spec.port, self.spec.baud)
        link = BoardLink(self._serial, timeout=2.0, run_timeout=600.0)
        try:
            running = link.hello().build_id
        except BoardLinkError:
            running = None
        if running != image.build_id:
            try:
                self._flash(image, link)
            except BaseException:
                self._close_link()
                raise
        self._unflashed = None
        return link

    def _flash(self, image, link) -> None:
        """Flash ``image`` and check that the board, restarted, says it runs it."""
        from measure_agent.serial_link import BoardLinkError

        if self.flasher is None:
            raise MeasureError(f"board {self.board_id} runs other firmware and has no flash_command or flash "
                               f"configured")
        self._unflashed = image
        self.flasher.flash(image)
        link.drain(quiet=0.5)
        try:
            now = link.hello().build_id
        except BoardLinkError as exc:
            raise FlashError(f"board {self.board_id}: flashed {image.build_id} but the board does not answer its "
                             f"hello: {exc}") from None
        if now != image.build_id:
            raise FlashError(f"board {self.board_id}: flashed {image.build_id} but the board runs {now}")

    def _close_link(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except OSError:
                pass
        self._serial = None


def make_backend(spec: BoardSpec) -> Backend:
    return VirtualBackend(spec) if spec.kind == "virtual" else SerialBackend(spec)
