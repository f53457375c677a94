"""Host-build run time of the KWS plan per runtime variant (a sanity figure, not a board figure).

    .venv/bin/python benchmarks/kernels_host.py [model.tflite] [--repeat N]

Prints per-variant mean wall time of one inference through the ctypes-loaded host library, and the
per-layer share measured with the executor's cycle-counter hook fed by a host clock.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costmodel.tflite import read_model  # noqa: E402
from measure_agent.plan import compile_plan  # noqa: E402
from measure_agent.plan.host import HostRuntime  # noqa: E402

DEFAULT_MODEL = Path("/work/shared/models/kws_ref_model.tflite")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(DEFAULT_MODEL))
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args(argv)
    if not Path(args.model).exists():
        print(f"model {args.model} not found", file=sys.stderr)
        return 1
    plan = compile_plan(read_model(args.model))
    print(f"model {Path(args.model).name}: {len(plan.layers)} layers, plan {len(plan.blob)} B, "
          f"arena {plan.arena_bytes} B (scratch {plan.scratch_bytes} B)")
    rng = np.random.default_rng(0)
    inp = plan.inputs[0]
    x = (rng.integers(-128, 128, inp.shape).astype(np.int8) if inp.dtype == "int8"
         else rng.normal(size=inp.shape).astype(np.float32))
    clock = ctypes.CFUNCTYPE(ctypes.c_uint32)(lambda: time.perf_counter_ns() // 1000 & 0xFFFFFFFF)
    for variant in ("reference", "simd"):
        rt = HostRuntime(compile_plan(read_model(args.model), variant).blob, variant)  # the variant's own plan
        rt.check()
        rt.run([x], [inp.dtype], [o.dtype for o in plan.outputs], [o.shape for o in plan.outputs])
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            rt.lib.nn_run(None, None)
        dt = (time.perf_counter() - t0) / args.repeat
        cycles = (ctypes.c_uint32 * len(plan.layers))()
        rt.lib.nn_run(ctypes.cast(clock, ctypes.c_void_p), cycles)
        total = max(1, sum(cycles))
        print(f"\n{variant:9s}: {dt * 1e3:8.3f} ms per inference (host, mean of {args.repeat})")
        for layer, us in zip(plan.layers, cycles):
            print(f"    {layer.op_type:18s} {layer.kind:14s} {us:7d} us {100.0 * us / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
