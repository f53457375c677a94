"""Firmware size per runtime variant: the image of every op, and the image of each MLPerf Tiny model's ops (as
a deployment links only the ops its model registers), against the images of the commit the runtime-speed work
started from.

    .venv/bin/python benchmarks/firmware_size.py [--target NUCLEO-L4R5ZI] [--variants reference,simd]
        [--models kws,ad,vww,ic] [--json out.json]

Flash: code, read-only data and .data initialisers; RAM: .data, .bss and the stack (static RAM of the shell
and runtime; the model's plan and arena come on top). BASELINE holds the figures of 67806fd (the runtime then:
int8 / float / hybrid kernels, no flash slots, no int16 or the real models' extra ops), built with the same
compiler and flags on the same target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from costmodel.boards import get_board  # noqa: E402
from measure_agent.firmware_build import build_firmware  # noqa: E402
from measure_agent.measurement import compile_model, image_ops  # noqa: E402
from measure_agent.settings import FirmwareSettings  # noqa: E402

MODELS_DIR = Path(os.environ.get("MCU_NAS_SHARED_MODELS", REPO.parent / "shared" / "models"))
MODELS = {"kws": "kws_ref_model.tflite", "ad": "ad01_int8.tflite", "vww": "vww_96_int8.tflite",
          "ic": "pretrainedResnet_quant.tflite"}
# 67806fd on NUCLEO-L4R5ZI, -O2, hard float: (flash bytes, RAM bytes)
BASELINE = {"reference": (25924, 14380), "simd": (30324, 14380)}
LIMIT = 1.20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="NUCLEO-L4R5ZI")
    ap.add_argument("--variants", default="reference,simd")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    board = get_board(args.target)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model {', '.join(unknown)} (known: {', '.join(MODELS)})")
    plans = {m: compile_model((MODELS_DIR / MODELS[m]).read_bytes()).plan for m in models}
    rows = []
    for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
        base = BASELINE.get(variant) if board.name == "NUCLEO-L4R5ZI" else None
        for name, ops in [("all ops", ()), *((m, image_ops("model", plans[m])) for m in models)]:
            image = build_firmware(board, FirmwareSettings.for_board(board, variant, ops=ops))
            row = {"variant": variant, "image": name, "ops": list(ops), "flash_bytes": image.flash_bytes,
                   "ram_bytes": image.ram_bytes, "build_id": image.build_id}
            if base:
                row["flash_ratio"] = image.flash_bytes / base[0]
                row["ram_ratio"] = image.ram_bytes / base[1]
            rows.append(row)
    print(f"firmware size on {board.name} (-O2, hard float); baseline 67806fd: "
          + ", ".join(f"{v} {f} B flash / {r} B RAM" for v, (f, r) in BASELINE.items()))
    print(f"{'variant':10s} {'image':8s} {'flash B':>8s} {'x base':>7s} {'RAM B':>7s} {'x base':>7s}  ops")
    for r in rows:
        fr = f"{r['flash_ratio']:.2f}" if "flash_ratio" in r else "-"
        rr = f"{r['ram_ratio']:.2f}" if "ram_ratio" in r else "-"
        over = " (over +20 %)" if r.get("flash_ratio", 0) > LIMIT or r.get("ram_ratio", 0) > LIMIT else ""
        print(f"{r['variant']:10s} {r['image']:8s} {r['flash_bytes']:8d} {fr:>7s} {r['ram_bytes']:7d} {rr:>7s}  "
              f"{','.join(r['ops']) or 'every op'}{over}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"target": board.name, "baseline": BASELINE, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
