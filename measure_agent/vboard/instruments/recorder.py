"""The virtual board's power between a monitor's start and stop: what every simulated instrument samples."""

from __future__ import annotations

from typing import Callable

from ..power import PowerTrace, power_trace


class NoEnergyPin(RuntimeError):
    pass


class PowerRecorder:
    """Records the energy pin's edges and the board's counters; ``board()`` gives the current VirtualBoard
    (a backend replaces it when it loads other firmware)."""

    def __init__(self, board: Callable[[], object]):
        self._board = board
        self._start: tuple[int, int] | None = None
        self._level0 = 0
        #: the power of the last recording (what the instrument sampled: tests compare against it)
        self.last: PowerTrace | None = None

    def _pin(self):
        vb = self._board()
        if vb is None:
            raise NoEnergyPin("the virtual board is not running")
        if vb.energy_pin is None:
            raise NoEnergyPin(f"{vb.board.name} has no energy_gpio in the catalogue")
        return vb, vb.energy_pin

    def start(self) -> None:
        vb, pin = self._pin()
        pin.edges()  # what came before the recording
        self._level0 = pin.level
        self._start = (vb.cycles, vb.instructions)

    def stop(self) -> PowerTrace:
        if self._start is None:
            raise RuntimeError("recording stopped before it started")
        vb, pin = self._pin()
        edges = pin.edges()
        end = (vb.cycles, vb.instructions)
        start, self._start = self._start, None
        clock = vb.peripherals.clock.hclk if vb.peripherals.clock is not None else None
        self.last = power_trace(vb.board, start, edges, end, self._level0, clock)
        return self.last
