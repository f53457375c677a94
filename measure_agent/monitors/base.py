"""What a tracing energy monitor hands back, and the small interface every adapter implements."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class MonitorError(RuntimeError):
    """The monitor did not answer, or what it recorded cannot be used (one line saying why)."""


@dataclass(frozen=True)
class Trace:
    """A recording: per sample the mean current (A) and voltage (V) over its period, and the level of the
    board's energy pin at its start."""

    monitor: str                 # the adapter's kind: "rocketlogger", "ppk2", ...
    sample_rate_hz: float
    current_a: np.ndarray
    voltage_v: np.ndarray
    pin: np.ndarray              # bool

    def __post_init__(self):
        if not (len(self.current_a) == len(self.voltage_v) == len(self.pin)):
            raise MonitorError(f"{self.monitor}: current, voltage and digital channels differ in length")
        if not self.sample_rate_hz > 0:
            raise MonitorError(f"{self.monitor}: sample rate {self.sample_rate_hz} Hz")

    @property
    def power_w(self) -> np.ndarray:
        return self.current_a * self.voltage_v


class TracingMonitor(Protocol):
    """Records between start() and stop(); stop() returns the trace."""

    kind: str
    sample_rate_hz: float

    def start(self) -> None: ...

    def stop(self) -> Trace: ...


class Control(Protocol):
    """How an adapter arms and stops an instrument that records to a file: commands on a real bench, the
    simulated instrument on a virtual board."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class CommandControl:
    """Two commands (argument lists, never a shell) that start and stop the instrument's recording."""

    start_command: tuple[str, ...]
    stop_command: tuple[str, ...]
    timeout_s: float = 30.0

    def start(self) -> None:
        run_command(self.start_command, self.timeout_s)

    def stop(self) -> None:
        run_command(self.stop_command, self.timeout_s)


def run_command(argv: tuple[str, ...], timeout_s: float) -> str:
    """Run an energy monitor's command (an argument list, never a shell); its standard output."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MonitorError(f"energy monitor command {argv[0]!r} failed: {exc}") from None
    if done.returncode != 0:
        raise MonitorError(f"energy monitor command {argv[0]!r} exited {done.returncode}: "
                           f"{done.stderr.strip()[:200]}")
    return done.stdout


class FileRecording:
    """An instrument that records to a file (``path``), armed and stopped by ``control``: start() removes an
    old recording and arms it, stop() stops it and reads the file with ``read`` (each adapter's own format)."""

    control: Control
    path: Path

    def start(self) -> None:
        Path(self.path).unlink(missing_ok=True)
        self.control.start()

    def stop(self) -> Trace:
        self.control.stop()
        return self.read(Path(self.path))

    def read(self, path: Path) -> Trace:
        raise NotImplementedError
