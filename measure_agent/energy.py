"""Energy of a measured run: from an attached energy monitor, or from the board's power model.

The paper found energy almost linear in latency per MCU (r = 0.9995 per layer), so a layer's energy is
its own cycles x the run's power: the catalogue power without a monitor (energy = power x latency, and
results say so: ``energy_source = "power-model"``), the run's average power (measured energy / run time)
with one. What a run spends outside its layers (the executor between layers) is its own line, the
overhead, never spread over the layers.
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


@dataclass(frozen=True)
class RunEnergy:
    """A run's energy: per layer, the overhead outside the layers, and the total (their sum)."""

    layers: list[float]
    overhead_j: float
    total_j: float


def run_energy(board: Board, total_cycles: int, layer_cycles: list[int], measured_j: float | None = None) -> RunEnergy:
    """Energy of one run of ``total_cycles`` whose layers took ``layer_cycles``: each layer its cycles x power
    (the catalogue power, or with ``measured_j`` the run's average measured power); the overhead is the rest."""
    overhead_cycles = max(0, total_cycles - sum(layer_cycles))
    if measured_j is None:
        layers = [board.energy_joules(c) for c in layer_cycles]
        return RunEnergy(layers, board.energy_joules(overhead_cycles), board.energy_joules(total_cycles))
    per_cycle = measured_j / total_cycles if total_cycles else 0.0
    layers = [per_cycle * c for c in layer_cycles]
    return RunEnergy(layers, max(0.0, measured_j - sum(layers)), measured_j)


def modelled_energy(board: Board, cycles: int) -> float:
    return board.energy_joules(cycles)
