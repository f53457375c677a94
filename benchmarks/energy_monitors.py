"""Measured per-layer energy on a virtual board through each simulated energy monitor, against the board's power
model between the same edges, and what spreading the run's total by cycles (a command monitor) would give.

    python benchmarks/energy_monitors.py [--target NUCLEO-L496ZG] [--runs 3] [--kinds rocketlogger,ppk2,joulescope,otii]

Per kind: the sampling rate, the energy pin's edges seen / expected, the largest distance of an edge from the
boundary the DWT cycle counts predict, and per layer the measured energy, its source, its error against the
power model and the error of the spread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from measure_agent.backends import BoardSpec, VirtualBackend  # noqa: E402
from measure_agent.measurement import measure  # noqa: E402
from protos import agent_pb2 as pb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="NUCLEO-L496ZG")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default="rocketlogger,ppk2,joulescope,otii")
    parser.add_argument("--model", type=Path, default=REPO / "examples" / "lenet_int8.tflite")
    args = parser.parse_args()
    for kind in args.kinds.split(","):
        backend = VirtualBackend(BoardSpec(id=kind, kind="virtual", target=args.target,
                                           energy_monitor={"kind": kind}))
        try:
            result = measure(backend, pb.MeasureRequest(request_id=kind, model=args.model.read_bytes(),
                                                        repetitions=args.runs))
            power = backend.monitor.instrument.recorder.last
        finally:
            backend.release()
        n = len(result.layers)
        model = np.array(power.window_energies() + [0.0]).reshape(args.runs, n + 1)[:, :n].mean(axis=0)
        cycles = np.array([layer.cycles for layer in result.layers], dtype=float)
        spread = result.energy_j * cycles / cycles.sum()
        per_sample = backend.board.default_clock_hz / result.energy_sample_rate_hz
        print(f"{kind}: {result.energy_sample_rate_hz:,.1f} Hz, edges {result.energy_edges_seen}/"
              f"{result.energy_edges_expected}, boundary error {result.energy_boundary_error_cycles:.0f} cycles "
              f"({result.energy_boundary_error_cycles / per_sample:.2f} samples), run {result.energy_j * 1e6:.2f} uJ "
              f"(model {model.sum() * 1e6:.2f} uJ)")
        print(f"  {'#':>2} {'op':<16} {'cycles':>9} {'measured uJ':>12} {'source':<15} {'vs model':>9} {'spread':>8}")
        for k, layer in enumerate(result.layers):
            print(f"  {k:>2} {layer.op:<16} {layer.cycles:>9,} {layer.energy_j * 1e6:>12.4f} {layer.energy_source:<15} "
                  f"{(layer.energy_j / model[k] - 1) * 100:>+8.3f}% {(spread[k] / model[k] - 1) * 100:>+7.2f}%")


if __name__ == "__main__":
    main()
