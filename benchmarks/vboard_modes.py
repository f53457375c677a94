"""Fast vs strict mode of the virtual board on the MLPerf Tiny models: total cycles, difference, MIPS.

The strict mode (a native memory hook on all memory: every access seen, timed and checked) is the
reference; the default fast mode derives the data side at block entry (native/blocks.c, "data program").
This prints, per board and model, the cycles of one inference (nn_run total, minimum of the runs) in
both modes, their difference, and the simulation speed of each mode (instructions of the timed run /
wall time of that run, through the real protocol over the pseudo-terminal).

    .venv/bin/python benchmarks/vboard_modes.py [--boards NUCLEO-L496ZG,...] [--models kws_ref_model.tflite,...]
                                                [--placement flash|sram] [--runs 1]

Placement ``flash`` (the default, as deployed): the firmware programs the plan into flash and the kernels
read weights and biases from there, the arena in SRAM; ``sram``: the whole plan in SRAM. A model that does
not fit a board (``measure_agent.fit``) is reported with the reason.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from costmodel.boards import get_board  # noqa: E402
from costmodel.tflite import read_model  # noqa: E402
from measure_agent.backends import BoardSpec, VirtualBackend  # noqa: E402
from measure_agent.fit import fit  # noqa: E402
from measure_agent.plan import compile_plan  # noqa: E402
from measure_agent.settings import FirmwareSettings  # noqa: E402

BOARDS = ["NUCLEO-L496ZG", "NUCLEO-L4R5ZI", "DISCO-F469NI", "NUCLEO-F767ZI"]
MODELS = ["kws_ref_model.tflite", "ad01_int8.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite"]
MODEL_DIR = ROOT.parent / "shared" / "models"


def inputs_for(plan) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for spec in plan.inputs:
        if np.dtype(spec.dtype).kind == "f":
            out.append(rng.standard_normal(spec.shape).astype(spec.dtype).tobytes())
        else:
            info = np.iinfo(spec.dtype)
            out.append(rng.integers(info.min, info.max, size=spec.shape, dtype=spec.dtype).tobytes())
    return out


def measure(backend: VirtualBackend, image, plan, placement: str, runs: int) -> tuple[int, int, float, dict]:
    """(cycles of one inference, instructions of the timed run, its wall time, model stats)"""
    inputs = inputs_for(plan)
    backend.run_plan(image, plan.blob, inputs, 1, placement=placement, measure_energy=False)  # upload, warm up
    vb = backend._vb
    i0 = vb.instructions
    t0 = time.perf_counter()
    run = backend.run_plan(image, plan.blob, inputs, runs, placement=placement, measure_energy=False)
    wall = time.perf_counter() - t0
    return run.cycles.total, vb.instructions - i0, wall, vb.model.stats()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--placement", default="flash", choices=["flash", "sram"])
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    from measure_agent.vboard import MODEL_VERSION

    print(f"virtual board timing model {MODEL_VERSION}, placement {args.placement}, {args.runs} run(s) timed")
    print(f"{'board':<14} {'model':<31} {'fast cycles':>13} {'strict cycles':>14} {'diff':>8} "
          f"{'fast MIPS':>9} {'strict MIPS':>11} {'unresolved':>10}")
    diffs = []
    for name in args.boards.split(","):
        board = get_board(name)
        backends = {}
        for strict in (False, True):
            b = VirtualBackend(BoardSpec(id=f"modes-{name}-{'strict' if strict else 'fast'}", kind="virtual", target=name))
            b.strict = strict
            backends[strict] = b
        settings = FirmwareSettings.for_board(board)
        image = backends[False].firmware(settings)
        try:
            for model in args.models.split(","):
                graph = read_model(MODEL_DIR / model)
                plan = compile_plan(graph, settings.variant)  # the plan a measurement uploads
                verdict = fit(plan, image, args.placement)
                if not verdict.fits and plan.paired_filters:  # its fallback: TFLite's filter layout
                    plan = compile_plan(graph, settings.variant, pair_filters=False)
                    verdict = fit(plan, image, args.placement)
                if not verdict.fits:
                    print(f"{name:<14} {model:<31} does not fit: {verdict.reason}")
                    continue
                res = {s: measure(backends[s], image, plan, args.placement, args.runs) for s in (False, True)}
                (cf, nf, wf, st), (cs, ns, ws, _) = res[False], res[True]
                d = (cf - cs) / cs * 100
                diffs.append(abs(d))
                print(f"{name:<14} {model:<31} {cf:>13,} {cs:>14,} {d:>+7.3f}% {nf / wf / 1e6:>9.1f} "
                      f"{ns / ws / 1e6:>11.1f} {st['unresolved']:>10,}", flush=True)
        finally:
            for b in backends.values():
                b.close()
    if diffs:
        print(f"|fast - strict| / strict: median {np.median(diffs):.3f} %, max {max(diffs):.3f} % over {len(diffs)} runs")


if __name__ == "__main__":
    main()
