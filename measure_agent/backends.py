"""Board backends: how the agent reaches one board, real (serial port) or virtual (simulator behind a pty).

Both speak the firmware's serial protocol through :class:`~measure_agent.serial_link.BoardLink`; the
virtual board is reached through a pseudo-terminal, so the code path is the one a real board uses.
A backend keeps the firmware the board runs and changes it only when a request needs another
build (built once, cached by content hash; flashed once). :meth:`Backend.run_plan` is the one board
session: link, upload, set inputs, run, read outputs, and the mapping of link failures to
measurement errors.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from costmodel.boards import Board, get_board
from measure_agent.energy import MODELLED, MONITORED, EnergyMonitor, MonitorError, monitor_from_config
from measure_agent.errors import BoardNotAnswering, MeasureError
from measure_agent.protocol import RunResult
from measure_agent.settings import FirmwareSettings

#: progress(stage, message) with stage "uploading" or "running"
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class BoardSpec:
    """One board of a bench, as the agent's configuration describes it."""

    id: str
    kind: str                     # "virtual" | "serial"
    target: str
    port: str | None = None
    baud: int = 115200
    flash_command: tuple[str, ...] = ()
    energy_monitor: dict | None = None


@dataclass(frozen=True)
class BoardRun:
    """What one session on a board returns."""

    cycles: RunResult             # per layer the minimum over the runs, and the run totals
    outputs: list[bytes]
    energy_j: float | None        # per run, from the board's energy monitor; None without one


class Backend(ABC):
    """One board. Not thread-safe: the board's worker is its only user."""

    kind = ""

    def __init__(self, spec: BoardSpec):
        self.spec = spec
        self.board: Board = get_board(spec.target)
        self.monitor: EnergyMonitor | None = None
        self.state = "idle"
        self._image = None
        self._link = None

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
        """The firmware image for this board and settings (built on first use, then cached)."""
        from measure_agent.firmware_build import build_firmware

        return build_firmware(self.board, settings)

    def run_plan(self, image, plan: bytes, inputs: list[bytes], repetitions: int = 1, *,
                 measure_energy: bool = True, progress: Progress = lambda stage, message: None) -> BoardRun:
        """Run ``plan`` on the board running ``image``: ``repetitions`` runs on ``inputs``.

        The plan is uploaded only when the board does not hold it already. Raises
        :class:`BoardNotAnswering` when the board stopped answering (it is recovered first) and
        :class:`MeasureError` when it refused the plan or the energy monitor failed.
        """
        from measure_agent.serial_link import BoardError, BoardLinkError, BoardTimeout

        monitor = self.monitor if measure_energy else None
        try:
            link = self.link(image)
            progress("uploading", f"{len(plan)} bytes")
            link.prepare(plan, inputs)
            progress("running", f"{repetitions} runs")
            if monitor:
                monitor.start()
            cycles = link.run(repetitions)
            energy = monitor.stop() / repetitions if monitor else None
            outputs = link.read_outputs()
        except MonitorError as exc:
            raise MeasureError(f"energy monitor of board {self.board_id}: {exc}") from None
        except BoardTimeout as exc:
            self.recover()
            raise BoardNotAnswering(f"board {self.board_id} stopped answering: {exc}") from None
        except BoardError as exc:
            raise MeasureError(f"board {self.board_id} refused the model: {exc}") from None
        except BoardLinkError as exc:
            self.recover()
            raise BoardNotAnswering(f"board {self.board_id}: {exc}") from None
        return BoardRun(cycles, outputs, energy)

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
        return self._link

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

    @abstractmethod
    def _start(self, image):
        """Make the board run ``image`` and return a connected BoardLink."""

    @abstractmethod
    def _close_link(self) -> None: ...


class VirtualBackend(Backend):
    """A virtual board: the firmware ELF on the cycle-approximate simulator, behind a pseudo-terminal."""

    kind = "virtual"

    def __init__(self, spec: BoardSpec):
        super().__init__(spec)
        self._bridge = None
        self._serial = None

    @property
    def model_version(self) -> str:
        from measure_agent.vboard import MODEL_VERSION

        return MODEL_VERSION

    def _start(self, image):
        from measure_agent.serial_link import BoardLink, open_serial
        from measure_agent.vboard import PtyBridge, VirtualBoard

        vb = VirtualBoard(self.board, Path(image.elf))
        self._bridge = PtyBridge(vb)
        self._serial = open_serial(self._bridge.path)
        return BoardLink(_FaultAwareLine(self._serial, self._bridge), timeout=5.0, run_timeout=600.0)

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
    """A real board on a serial port, flashed with the configured command when it runs other firmware."""

    kind = "serial"

    def __init__(self, spec: BoardSpec):
        super().__init__(spec)
        self.monitor = monitor_from_config(spec.energy_monitor)
        self._serial = None

    def _start(self, image):
        from measure_agent.serial_link import BoardLink, BoardLinkError, open_serial

        self._serial = open_serial(self.spec.port, self.spec.baud)
        link = BoardLink(self._serial, timeout=2.0, run_timeout=600.0)
        try:
            running = link.hello().build_id
        except BoardLinkError:
            running = None
        if running != image.build_id:
            self._flash(image)
            link.drain(quiet=0.5)
        return link

    def _flash(self, image) -> None:
        if not self.spec.flash_command:
            raise MeasureError(f"board {self.board_id} runs other firmware and has no flash_command configured")
        elf = Path(image.elf)
        binary = elf.with_suffix(".bin")
        if not binary.exists():
            subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
        argv = [a.replace("{elf}", str(elf)).replace("{bin}", str(binary)) for a in self.spec.flash_command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BoardNotAnswering(f"flashing {self.board_id} failed: {exc}") from None
        if done.returncode != 0:
            raise MeasureError(f"flashing {self.board_id} failed ({argv[0]} exited {done.returncode}): "
                               f"{done.stderr.strip()[:300]}")

    def _close_link(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except OSError:
                pass
        self._serial = None


def make_backend(spec: BoardSpec) -> Backend:
    return VirtualBackend(spec) if spec.kind == "virtual" else SerialBackend(spec)
