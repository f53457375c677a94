"""Energy of a measured run: from an attached energy monitor, or from the board's power model.

The paper found energy almost linear in latency per MCU (r = 0.9995 per layer), so a layer's share
of a run's energy is its share of the run's cycles. Without a monitor, energy = catalogue power x
latency, and results say so (``energy_source = "power-model"``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol

from costmodel.boards import Board

#: ``energy_source`` of a result: measured by the board's energy monitor, or the catalogue power x latency
MONITORED = "monitor"
MODELLED = "power-model"


class EnergyMonitor(Protocol):
    """Measures the energy the board draws between start() and stop() (joules)."""

    def start(self) -> None: ...

    def stop(self) -> float: ...


class MonitorError(RuntimeError):
    pass


@dataclass
class CommandMonitor:
    """A monitor driven by two commands (argument lists, never a shell): ``start`` arms it, ``stop`` prints
    the energy in joules since start on its standard output (e.g. a RocketLogger or Joulescope script)."""

    start_command: tuple[str, ...]
    stop_command: tuple[str, ...]
    timeout_s: float = 30.0

    def start(self) -> None:
        self._run(self.start_command)

    def stop(self) -> float:
        out = self._run(self.stop_command)
        try:
            return float(out.split()[0])
        except (IndexError, ValueError):
            raise MonitorError(f"energy monitor printed {out[:80]!r}, expected joules") from None

    def _run(self, argv: tuple[str, ...]) -> str:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MonitorError(f"energy monitor command {argv[0]!r} failed: {exc}") from None
        if done.returncode != 0:
            raise MonitorError(f"energy monitor command {argv[0]!r} exited {done.returncode}: {done.stderr.strip()[:200]}")
        return done.stdout


def monitor_from_config(raw: dict | None) -> EnergyMonitor | None:
    if not raw:
        return None
    kind = raw.get("kind", "command")
    if kind != "command":
        raise ValueError(f"energy monitor kind {kind!r} is not supported (use kind = \"command\")")
    start, stop = raw.get("start"), raw.get("stop")
    if not (isinstance(start, list) and isinstance(stop, list) and start and stop):
        raise ValueError("a command energy monitor needs start and stop argument lists")
    return CommandMonitor(tuple(map(str, start)), tuple(map(str, stop)), float(raw.get("timeout_s", 30.0)))


def split_energy(total_j: float, layer_cycles: list[int]) -> list[float]:
    """Share a run's energy among its layers by their cycles."""
    cycles = sum(layer_cycles)
    return [total_j * c / cycles if cycles else 0.0 for c in layer_cycles]


def modelled_energy(board: Board, cycles: int) -> float:
    return board.energy_joules(cycles)
