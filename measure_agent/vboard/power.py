"""The virtual board's power model, switched by its energy pin: what a simulated energy monitor measures.

The paper measured energy almost linear in latency per layer (r = 0.9995, sec. 4.2), so a board draws about
its catalogue power (boards.toml ``power_mw``, measured during inference) whatever it runs. The part that
varies is the dynamic power, which follows switching activity; the model takes the instructions the core
retires per cycle (IPC, which the cycle model counts) as that activity:

    P(window) = P_board * (STATIC_SHARE + (1 - STATIC_SHARE) * IPC_window / IPC_inference)

with IPC_inference the IPC between the first and the last edge of the energy pin, so the inference as a whole
draws the catalogue power, and a layer that stalls on flash wait states draws less than one that retires an
instruction every cycle. STATIC_SHARE is a modelling assumption (clock tree, flash and leakage draw
regardless of what the core does), not a measurement; the windows are the stretches between the pin's edges
(firmware/runtime/executor.c toggles it at every layer boundary), so per-layer energy differs from the
catalogue power x latency by up to about +-10 % on LeNet: spreading a measured total by cycles is visibly
wrong, as it would be on a board whose layers differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.boards import Board

#: share of the catalogue power that does not depend on the core's activity (an assumption, see above)
STATIC_SHARE = 0.5


@dataclass(frozen=True)
class PowerTrace:
    """The board's power between ``points[0]`` and ``points[-1]``: piecewise constant, ``watts[i]`` from
    ``cycles[i]`` to ``cycles[i + 1]``; ``edges`` are the energy pin's edges (model cycles) in between, and
    ``level0`` the pin's level before the first."""

    clock_hz: float
    cycles: np.ndarray           # int64, len n + 1: the recording's start, every edge, its end
    watts: np.ndarray            # len n
    edges: np.ndarray            # the edges' cycles (cycles[1:-1])
    level0: int

    @property
    def duration_s(self) -> float:
        return float(self.cycles[-1] - self.cycles[0]) / self.clock_hz

    def seconds(self, cycle) -> np.ndarray:
        """Time since the recording's start of a model cycle (at the board's default clock, as latencies)."""
        return (np.asarray(cycle, dtype=np.float64) - float(self.cycles[0])) / self.clock_hz

    def energy_between(self, c0: float, c1: float) -> float:
        """Joules between two model cycles."""
        return float(np.diff(self.cumulative_j(np.array([c0, c1], dtype=np.float64)))[0])

    def cumulative_j(self, cycle: np.ndarray) -> np.ndarray:
        """Joules from the recording's start to each of ``cycle`` (clipped to the recording)."""
        bounds = self.cycles.astype(np.float64)
        at = np.concatenate([[0.0], np.cumsum(self.watts * np.diff(bounds) / self.clock_hz)])
        return np.interp(cycle, bounds, at)

    def window_energies(self) -> list[float]:
        """Joules between consecutive edges (window k = edge k to edge k + 1)."""
        return [self.energy_between(a, b) for a, b in zip(self.edges[:-1], self.edges[1:])]


def power_trace(board: Board, start: tuple[int, int], edges: list[tuple[int, int, int]], end: tuple[int, int],
                level0: int = 0, clock_hz: float | None = None) -> PowerTrace:
    """The power model over a recording: ``start`` and ``end`` are (cycle, instructions) of the board when the
    monitor started and stopped, ``edges`` the energy pin's ``(cycle, instructions, level)`` in between; the core
    ran at ``clock_hz`` (default: the catalogue clock; the power scales with it, the energy per cycle stays)."""
    clock = float(clock_hz or board.default_clock_hz)
    points = [start, *[(c, n) for c, n, _ in edges], end]
    cycles = np.array([c for c, _ in points], dtype=np.int64)
    insns = np.array([n for _, n in points], dtype=np.float64)
    spans = np.diff(cycles).astype(np.float64)
    ipc = np.divide(np.diff(insns), spans, out=np.zeros_like(spans), where=spans > 0)
    if len(edges) >= 2:
        ref = (edges[-1][1] - edges[0][1]) / max(1, edges[-1][0] - edges[0][0])
    else:
        ref = (end[1] - start[1]) / max(1, end[0] - start[0])
    ref = ref or 1.0
    scale = clock / board.default_clock_hz
    watts = board.power_mw * 1e-3 * scale * (STATIC_SHARE + (1.0 - STATIC_SHARE) * ipc / ref)
    return PowerTrace(clock, cycles, watts, cycles[1:-1].copy(), level0)


def sample(trace: PowerTrace, rate_hz: float, voltage_v: float, *, pre_s: float = 0.0,
           post_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """What an instrument sampling at ``rate_hz`` records: per sample the mean current over its period (A, at
    ``voltage_v``) and the energy pin's level at its start. ``pre_s`` / ``post_s`` of idle board (the first /
    last window's power) pad the recording, as a monitor armed before the run records."""
    n = int(np.ceil((trace.duration_s + pre_s + post_s) * rate_hz))
    t = np.arange(n + 1) / rate_hz - pre_s                       # sample boundaries, s since the start
    c = float(trace.cycles[0]) + t * trace.clock_hz              # as model cycles
    first, last = float(trace.cycles[0]), float(trace.cycles[-1])
    inside = trace.cumulative_j(np.clip(c, first, last))
    # outside the recording: the first / last window's power continues
    before = np.minimum(c - first, 0.0) / trace.clock_hz * trace.watts[0]
    after = np.maximum(c - last, 0.0) / trace.clock_hz * trace.watts[-1]
    energy = inside + before + after
    current = np.diff(energy) * rate_hz / voltage_v
    flips = np.searchsorted(trace.edges, c[:-1], side="right")  # edges at or before each sample's start
    level = ((flips + trace.level0) % 2).astype(bool)
    return current, level
