"""KWS (MLPerf Tiny DS-CNN, int8) on the virtual NUCLEO-L4R5ZI at 120 MHz: cycles per layer and in total
for each runtime variant, through the same path a real board uses (firmware ELF, serial protocol over a
pseudo-terminal). Also checks the board's output against the TFLite interpreter.

    python benchmarks/kws_cycles.py [--model ../shared/models/kws_ref_model.tflite] [--target NUCLEO-L4R5ZI]

For reference on real hardware at 120 MHz (MLPerf Tiny v0.5): TFLite Micro reference kernels 181.9 ms,
the fastest published engine 73.5 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from measure_agent.backends import BoardSpec, VirtualBackend  # noqa: E402
from measure_agent.measurement import measure  # noqa: E402
from measure_agent.plan.reference import Reference  # noqa: E402
from protos import agent_pb2 as pb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO.parent / "shared" / "models" / "kws_ref_model.tflite")
    parser.add_argument("--target", default="NUCLEO-L4R5ZI")
    parser.add_argument("--opt", default="-O2")
    parser.add_argument("--variants", default="reference,simd")
    args = parser.parse_args()
    model = args.model.read_bytes()
    x = np.random.default_rng(0).integers(-128, 127, size=(1, 49, 10, 1), dtype=np.int8)

    (expected,) = Reference(model).run([x])

    results = {}
    for variant in args.variants.split(","):
        backend = VirtualBackend(BoardSpec(id=f"bench-{variant}", kind="virtual", target=args.target))
        request = pb.MeasureRequest(request_id=f"kws-{variant}", model=model, runtime_variant=variant,
                                    opt_level=args.opt, repetitions=1,
                                    inputs=[pb.Tensor(shape=[1, 49, 10, 1], dtype="int8", data=x.tobytes())])
        start = time.perf_counter()
        try:
            result = measure(backend, request)
        finally:
            backend.close()
        wall = time.perf_counter() - start
        out = np.frombuffer(result.outputs[0].data, dtype=np.int8).reshape(expected.shape)
        results[variant] = (result, wall, bool(np.array_equal(out, expected)))

    variants = list(results)
    first = results[variants[0]][0]
    print(f"KWS int8 on virtual {first.target} at {first.clock_hz / 1e6:g} MHz, firmware {args.opt}")
    header = f"{'#':>3} {'op':<20} {'MACs':>10}" + "".join(f" {v + ' cycles':>16} {'ns/MAC':>7}" for v in variants)
    print(header)
    for i, layer in enumerate(first.layers):
        row = f"{i:>3} {layer.op:<20} {layer.macs:>10,}"
        for v in variants:
            lay = results[v][0].layers[i]
            delta = lay.latency_s / lay.macs * 1e9 if lay.macs else float("nan")
            row += f" {lay.cycles:>16,} {delta:>7.2f}"
        print(row)
    for v in variants:
        result, wall, exact = results[v]
        print(f"{v:>10}: {result.total_cycles:,} cycles = {result.latency_s * 1e3:.1f} ms at "
              f"{result.clock_hz / 1e6:g} MHz, {result.energy_j * 1e3:.3f} mJ ({result.energy_source}); "
              f"output identical to the interpreter: {exact}; simulated in {wall:.1f} s wall "
              f"(including firmware build on first use)")
    print("reference points (real NUCLEO-L4R5ZI, 120 MHz): TFLM reference kernels 181.9 ms, fastest published 73.5 ms")


if __name__ == "__main__":
    main()
