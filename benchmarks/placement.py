"""Weights in SRAM vs in flash, fast vs strict simulation: the MLPerf Tiny models (KWS, AD, VWW, IC) on the
paper's boards and the MLPerf Tiny reference board, virtual, through the real firmware path (the firmware
programs the plan into a flash slot through the modelled FLASH controller, or the plan is uploaded into SRAM).

    python benchmarks/placement.py [--boards NUCLEO-L496ZG,...] [--models kws,ad,vww,ic] [--modes fast,strict]
                                   [--json out.json]

Per board, model and placement: the inference latency (cycles at the board's default clock) in fast and
strict mode, their difference (the goal: <= 1 %: fast mode must time what strict mode times), and the
simulation speed of each mode (million simulated instructions per wall-clock second, one run). "n/a" when
the placement does not fit the board (the fit verdict's reason is printed below the table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from costmodel.tflite import read_model  # noqa: E402
from measure_agent.backends import BoardSpec, VirtualBackend  # noqa: E402
from measure_agent.fit import fit  # noqa: E402
from measure_agent.plan import compile_plan  # noqa: E402
from measure_agent.settings import FirmwareSettings  # noqa: E402

MODELS = {
    "kws": "kws_ref_model.tflite",
    "ad": "ad01_int8.tflite",
    "vww": "vww_96_int8.tflite",
    "ic": "pretrainedResnet_quant.tflite",
}
BOARDS = ("NUCLEO-L496ZG", "NUCLEO-L4R5ZI", "DISCO-F469NI", "NUCLEO-F767ZI")


def run_once(backend: VirtualBackend, image, plan, placement: str) -> dict:
    """One inference: cycles, instructions and wall time of the RUN (upload and programming excluded)."""
    link = backend.link(image)
    link.prepare(plan.blob, [bytes(t.bytes) for t in plan.inputs], placement)
    vb = backend._vb
    i0 = vb.instructions
    t0 = time.perf_counter()
    r = link.run(1)
    wall = time.perf_counter() - t0
    insns = vb.instructions - i0
    return {"cycles": r.total, "instructions": insns, "wall_s": wall, "mips": insns / wall / 1e6 if wall else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--boards", default=",".join(BOARDS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--modes", default="fast,strict")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    modes = args.modes.split(",")
    rows, notes = [], []
    for target in args.boards.split(","):
        backends = {}
        for mode in modes:
            b = VirtualBackend(BoardSpec(id=f"placement-{target}-{mode}", kind="virtual", target=target))
            b.strict = mode == "strict"
            backends[mode] = b
        try:
            board = backends[modes[0]].board
            settings = FirmwareSettings.for_board(board)
            image = backends[modes[0]].firmware(settings)
            for key in args.models.split(","):
                graph = read_model(args.shared / MODELS[key])
                for placement in ("sram", "flash"):
                    plan = compile_plan(graph, settings.variant)  # the plan a measurement uploads
                    verdict = fit(plan, image, placement, board)
                    if not verdict.fits and plan.paired_filters:  # its fallback: TFLite's filter layout
                        plan = compile_plan(graph, settings.variant, pair_filters=False)
                        verdict = fit(plan, image, placement, board)
                    row = {"board": target, "model": key, "placement": placement, "fits": verdict.fits}
                    if not verdict.fits:
                        notes.append(f"{target} {key} {placement}: {verdict.reason}")
                    else:
                        for mode in modes:
                            res = run_once(backends[mode], image, plan, placement)
                            row[mode] = res
                            row[f"{mode}_ms"] = res["cycles"] / board.default_clock_hz * 1e3
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            for b in backends.values():
                b.close()

    head = f"| board | model | weights | " + " | ".join(f"{m} ms" for m in modes)
    if "fast" in modes and "strict" in modes:
        head += " | fast vs strict"
    head += " | " + " | ".join(f"{m} MIPS" for m in modes) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        cells = [row["board"], row["model"], row["placement"]]
        if not row["fits"]:
            cells += ["n/a"] * (len(modes) * 2 + (1 if len(modes) == 2 else 0))
        else:
            cells += [f"{row[f'{m}_ms']:.2f}" for m in modes]
            if "fast" in modes and "strict" in modes:
                cells.append(f"{(row['fast_ms'] - row['strict_ms']) / row['strict_ms'] * 100:+.2f} %")
            cells += [f"{row[m]['mips']:.1f}" for m in modes]
        print("| " + " | ".join(cells) + " |")
    by = {(r["board"], r["model"], r["placement"]): r for r in rows}
    print()
    for (target, key, placement), r in by.items():
        other = by.get((target, key, "sram"))
        if placement == "flash" and r["fits"] and other and other["fits"]:
            for m in modes:
                print(f"{target} {key} {m}: flash vs sram {(r[f'{m}_ms'] / other[f'{m}_ms'] - 1) * 100:+.2f} %")
    for note in notes:
        print("n/a:", note)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
