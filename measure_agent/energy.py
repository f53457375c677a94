"""Energy of a measured run: from an attached energy monitor, or from the board's power model.

Without a monitor a layer's energy is its own cycles x the catalogue power (energy = power x latency, and
results say so: ``energy_source = "power-model"``; the paper found energy almost linear in latency, r = 0.9995
per layer). A command monitor (two commands, a total in joules) gives the run's average power, spread over the
layers by their cycles. A tracing monitor (``measure_agent/monitors/``: RocketLogger, PPK2, Joulescope, Otii)
measures each layer between the energy pin's edges that the firmware makes at every layer boundary, so
per-layer energy is measured, not spread. What a run spends outside its layers is its own line, the overhead.
At a clock other than the catalogue's (a request's ``clock_hz``), the power model keeps the catalogue's energy
per cycle: its power scales with the clock, as dynamic power does (static power is not modelled on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from costmodel.boards import Board
from measure_agent.monitors.base import CommandControl, MonitorError, Trace, run_command

__all__ = ["MONITORED", "MODELLED", "MONITOR_SPREAD", "CommandMonitor", "EnergyMonitor", "MonitorError", "monitor_from_config",
           "run_energy", "modelled_energy"]

#: ``energy_source`` of a result: measured by the board's energy monitor, or the catalogue power x latency
MONITORED = "monitor"
MODELLED = "power-model"
#: a layer's ``energy_source`` when the monitor could not resolve it: its stretch's measured energy, spread
MONITOR_SPREAD = "monitor-spread"


class EnergyMonitor(Protocol):
    """Measures what the board draws between start() and stop(): joules (a command monitor), or a trace of
    current, voltage and the energy pin (:class:`~measure_agent.monitors.Trace`, a tracing monitor)."""

    kind: str

    def start(self) -> None: ...

    def stop(self) -> float | Trace: ...


@dataclass
class CommandMonitor:
    """A monitor driven by two commands (argument lists, never a shell): ``start`` arms it, ``stop`` prints
    the energy in joules since start on its standard output (e.g. a RocketLogger or Joulescope script)."""

    start_command: tuple[str, ...]
    stop_command: tuple[str, ...]
    timeout_s: float = 30.0
    kind: str = "command"
    sample_rate_hz: float = 0.0

    def start(self) -> None:
        run_command(self.start_command, self.timeout_s)

    def stop(self) -> float:
        out = run_command(self.stop_command, self.timeout_s)
        try:
            return float(out.split()[0])
        except (IndexError, ValueError):
            raise MonitorError(f"energy monitor printed {out[:80]!r}, expected joules") from None


def _argv(raw: dict, key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if not (isinstance(value, list) and value):
        raise ValueError(f"energy monitor kind {raw.get('kind')!r} needs {key} as an argument list")
    return tuple(map(str, value))


def monitor_from_config(raw: dict | None) -> EnergyMonitor | None:
    """The monitor a real board's ``energy_monitor`` table describes (a virtual board's: vboard/instruments)."""
    if not raw:
        return None
    kind = raw.get("kind", "command")
    timeout = float(raw.get("timeout_s", 30.0))
    if kind == "command":
        if not (isinstance(raw.get("start"), list) and isinstance(raw.get("stop"), list)
                and raw["start"] and raw["stop"]):
            raise ValueError("a command energy monitor needs start and stop argument lists")
        return CommandMonitor(_argv(raw, "start"), _argv(raw, "stop"), timeout)
    if kind in ("rocketlogger", "joulescope"):
        from pathlib import Path

        control = CommandControl(_argv(raw, "start"), _argv(raw, "stop"), timeout)
        if not raw.get("file"):
            raise ValueError(f"a {kind} energy monitor needs file: where the stop command leaves the recording")
        if kind == "rocketlogger":
            from measure_agent.monitors.rocketlogger import RocketLoggerMonitor

            return RocketLoggerMonitor(control, Path(raw["file"]), digital=str(raw.get("digital") or "DI1"))
        from measure_agent.monitors.joulescope import JoulescopeMonitor

        return JoulescopeMonitor(control, Path(raw["file"]), digital=str(raw.get("digital") or "gpi[0]"))
    if kind == "ppk2":
        from measure_agent.monitors.ppk2 import Ppk2Monitor

        if not raw.get("port"):
            raise ValueError("a ppk2 energy monitor needs port: its serial port")
        return Ppk2Monitor(str(raw["port"]), voltage_mv=int(raw.get("voltage_mv") or 3300),
                           digital=int(str(raw.get("digital") or "D0").lstrip("D")))
    if kind == "otii":
        from measure_agent.monitors.otii import OtiiMonitor

        host, _, port = str(raw.get("address") or "127.0.0.1:1905").rpartition(":")
        return OtiiMonitor(host.strip("[]"), int(port), device=str(raw.get("device") or ""),
                           digital=str(raw.get("digital") or "i1"))
    raise ValueError(f"energy monitor kind {kind!r} is not supported "
                     f"(use command, rocketlogger, ppk2, joulescope or otii)")


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
