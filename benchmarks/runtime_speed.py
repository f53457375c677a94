"""The runtime's speed on the four MLPerf Tiny models on one virtual board (default: the NUCLEO-L4R5ZI, Cortex-M4 at
120 MHz; any board of the catalogue with --target, e.g. NUCLEO-F767ZI (Cortex-M7) or NUCLEO-L552ZE-Q (Cortex-M33)),
both runtime variants, the model's constants in flash (as deployed) and in SRAM. Per model: the total latency,
the filter layout the plan ran with and, on the NUCLEO-L4R5ZI only, its ratio to the published MLPerf Tiny
latencies on that real board; per layer type: cycles per MAC.

    .venv/bin/python benchmarks/runtime_speed.py [--target NUCLEO-L4R5ZI] [--variants reference,simd]
        [--placements flash,sram] [--models kws,ad,vww,ic] [--markdown out.md] [--layers] [--ops all|model]

Every measurement goes the way a real board's does (firmware ELF, serial protocol through a pseudo-terminal)
and its outputs are checked against the TFLite reference interpreter. A model that does not fit the board
with the placement asked for is a row "does not fit" (with the reason), not a failure; a variant the board
cannot run (simd without the DSP extension: M0+, M3) is refused up front. The published figures (real
NUCLEO-L4R5ZI at 120 MHz, closed division, weights in flash): best KWS 43.19 ms, VWW 88.93 ms, IC 165.13 ms
(X-CUBE-AI 9.0, v1.2), AD 4.052 ms (Plumerai, v1.1); TFLite Micro's reference kernels (v0.5) KWS 181.9 ms,
VWW 600.5 ms, IC 704.3 ms, AD 10.05 ms. They are for that board only: on another target the ratio columns
are left out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from costmodel.boards import get_board  # noqa: E402
from measure_agent.backends import BoardSpec, VirtualBackend  # noqa: E402
from measure_agent.errors import DoesNotFit  # noqa: E402
from measure_agent.measurement import compiled_model, measure  # noqa: E402
from measure_agent.settings import FirmwareSettings, SettingsError  # noqa: E402
from measure_agent.plan.reference import Reference  # noqa: E402
from protos import agent_pb2 as pb  # noqa: E402

MODELS = Path(os.environ.get("MCU_NAS_SHARED_MODELS", REPO.parent / "shared" / "models"))
# name -> (file, best published ms, TFLite Micro reference kernels ms), on the real PUBLISHED_TARGET
PUBLISHED_TARGET = "NUCLEO-L4R5ZI"
PUBLISHED = {
    "kws": ("kws_ref_model.tflite", 43.19, 181.9),
    "ad": ("ad01_int8.tflite", 4.052, 10.05),
    "vww": ("vww_96_int8.tflite", 88.93, 600.5),
    "ic": ("pretrainedResnet_quant.tflite", 165.13, 704.3),
}
LAYER_TYPES = ("conv 1x1", "conv first", "conv kxk", "depthwise 3x3", "depthwise other", "fully connected",
               "average pool", "add", "softmax", "other")


def layer_type(layer, first_conv: bool) -> str:
    f = layer.features
    if layer.op == "CONV_2D":
        if first_conv:
            return "conv first"
        return "conv 1x1" if (f.kernel_h, f.kernel_w) == (1, 1) else "conv kxk"
    if layer.op == "DEPTHWISE_CONV_2D":
        return "depthwise 3x3" if (f.kernel_h, f.kernel_w) == (3, 3) else "depthwise other"
    return {"FULLY_CONNECTED": "fully connected", "AVERAGE_POOL_2D": "average pool", "ADD": "add",
            "SOFTMAX": "softmax"}.get(layer.op, "other")


def run(backend, model: bytes, variant: str, placement: str, x: np.ndarray, ops: str = "all"):
    request = pb.MeasureRequest(request_id=f"speed-{variant}-{placement}", model=model, runtime_variant=variant,
                                opt_level="-O2", repetitions=1, placement=placement, ops=ops,
                                inputs=[pb.Tensor(shape=list(x.shape), dtype=str(x.dtype), data=x.tobytes())])
    return measure(backend, request)


def by_type(result) -> dict[str, tuple[int, int]]:
    """layer type -> (cycles, MACs)."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    first = True
    for layer in result.layers:
        t = layer_type(layer, first and layer.op == "CONV_2D")
        if layer.op == "CONV_2D":
            first = False
        out[t][0] += layer.cycles
        out[t][1] += layer.macs
    return {k: (v[0], v[1]) for k, v in out.items()}


def filter_layout(model: bytes, variant: str, plan_bytes: int) -> str:
    """The conv filter layout the measured plan had: "pairs" (int16 pair filters) or "tflite" (TFLite's int8
    layout: the variant has no pairs, or the paired plan did not fit and the measurement fell back to it)."""
    plan = compiled_model(model, variant).plan
    return "pairs" if plan.paired_filters and plan_bytes == len(plan.blob) else "tflite"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default=PUBLISHED_TARGET)
    ap.add_argument("--variants", default="simd,reference")
    ap.add_argument("--placements", default="flash,sram")
    ap.add_argument("--models", default="kws,ad,vww,ic")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this Markdown file")
    ap.add_argument("--layers", action="store_true", help="print every layer's cycles too")
    ap.add_argument("--ops", default="all", choices=["all", "model"],
                    help="firmware image of every op (default) or of only the model's ops, as a deployment links")
    args = ap.parse_args(argv)
    board = get_board(args.target)
    published = args.target == PUBLISHED_TARGET
    for variant in args.variants.split(","):
        try:
            FirmwareSettings.for_board(board, variant)
        except SettingsError as exc:
            print(f"{args.target}: {exc}", file=sys.stderr)
            return 2

    rows, types, layer_lines, misfits = [], [], [], []
    for variant in args.variants.split(","):
        backend = VirtualBackend(BoardSpec(id=f"speed-{variant}", kind="virtual", target=args.target))
        try:
            for name in args.models.split(","):
                file, best, tflm = PUBLISHED[name]
                model = (MODELS / file).read_bytes()
                ref = Reference(model)
                spec = ref.inputs[0]
                x = np.random.default_rng(0).integers(-128, 128, size=spec["shape"], dtype=np.int8)
                (expected,) = ref.run([x])
                for placement in args.placements.split(","):
                    t0 = time.perf_counter()
                    try:
                        result = run(backend, model, variant, placement, x, args.ops)
                    except DoesNotFit as exc:
                        misfits.append((name, variant, placement, str(exc)))
                        print(f"{name} {variant} {placement}: {exc}", file=sys.stderr)
                        continue
                    wall = time.perf_counter() - t0
                    out = np.frombuffer(result.outputs[0].data, np.int8).reshape(expected.shape)
                    ms = result.latency_s * 1e3
                    macs = sum(layer.macs for layer in result.layers)
                    rows.append((name, variant, placement, ms, result.total_cycles / max(macs, 1), ms / best, ms / tflm,
                                 bool(np.array_equal(out, expected)), wall, result.firmware_build_id,
                                 filter_layout(model, variant, result.plan_bytes), result.flash_bytes))
                    types.append((name, variant, placement, by_type(result)))
                    if args.layers:
                        for layer in result.layers:
                            cpm = layer.cycles / layer.macs if layer.macs else float("nan")
                            layer_lines.append(f"{name:4} {variant:9} {placement:5} {layer.index:3} {layer.op:18} "
                                               f"{layer.kernel:28} {layer.macs:>10,} {layer.cycles:>12,} {cpm:7.2f}")
                    print(f"{name} {variant} {placement}: {ms:.2f} ms ({wall:.1f} s wall)", file=sys.stderr)
        finally:
            backend.close()

    clock = f"{board.default_clock_hz / 1e6:g} MHz"
    lines = [f"Virtual {args.target} ({board.core}, {clock}), firmware -O2, "
             f"{'hard' if board.fpu != 'none' else 'soft'} float, ops {args.ops}.", ""]
    ratio_head = " / best published | / TFLM reference |" if published else ""
    lines += ["| model | variant | constants | filters | ms | cycles/MAC |" + ratio_head + " firmware flash | exact |",
              "|---|---|---|---|---:|---:|" + ("---:|---:|" if published else "") + "---:|---|"]
    for name, variant, placement, ms, cpm, r_best, r_tflm, exact, _, _, layout, fw_flash in rows:
        ratios = f" {r_best:.2f} | {r_tflm:.2f} |" if published else ""
        lines.append(f"| {name} | {variant} | {placement} | {layout} | {ms:.2f} | {cpm:.2f} |{ratios} "
                     f"{fw_flash:,} | {'yes' if exact else 'NO'} |")
    for name, variant, placement, reason in misfits:
        lines.append(f"| {name} | {variant} | {placement} | | does not fit | |{' | |' if published else ''} | "
                     f"{reason.split(': ', 1)[-1]} |")
    if not published:
        lines += ["", f"(The published MLPerf Tiny latencies are for a real {PUBLISHED_TARGET}: no ratio on "
                      f"{args.target}.)"]
    lines += ["", "Cycles per MAC by layer type (MACs as in costmodel.analysis):", "",
              "| model | variant | constants | " + " | ".join(LAYER_TYPES) + " |",
              "|---|---|---|" + "---:|" * len(LAYER_TYPES)]
    for name, variant, placement, t in types:
        cells = []
        for k in LAYER_TYPES:
            if k in t and t[k][1]:
                cells.append(f"{t[k][0] / t[k][1]:.2f}")
            elif k in t:
                cells.append(f"{t[k][0]:,} cyc")
            else:
                cells.append("")
        lines.append(f"| {name} | {variant} | {placement} | " + " | ".join(cells) + " |")
    if layer_lines:
        lines += ["", "```", *layer_lines, "```"]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0 if all(r[7] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
