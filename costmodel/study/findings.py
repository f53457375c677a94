"""The paper's findings, each stated with the paper's number and this study's, and a verdict computed from the
numbers (never written in advance).

Verdicts:

``reproduced``       the study's numbers fall in the paper's range (widened by :data:`TOLERANCE` for ranges of
                     ratios), or the qualitative statement holds on every board it was tested on
``same direction``   the effect is there, with a size outside the paper's range
``not reproduced``   the effect is absent or reversed
``not tested``       the study has no numbers that can test it (the reason says which are missing, or why
                     numbers that exist prove nothing, e.g. energy modelled as power x time)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from costmodel.study.configs import OPTIMISED, UNOPTIMISED

#: relative widening of the paper's range before a ratio counts as outside it
TOLERANCE = 0.25
REPRODUCED, DIRECTION, NOT_REPRODUCED, NOT_TESTED = "reproduced", "same direction", "not reproduced", "not tested"


@dataclass
class Finding:
    key: str
    section: str
    claim: str
    paper: str
    here: str
    verdict: str
    detail: str = ""
    #: for the side-by-side figure: the paper's range and this study's (ratios, or percentages), and the unit
    numbers: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _range(values) -> tuple[float, float] | None:
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return (min(vals), max(vals)) if vals else None


def _fmt_range(r: tuple[float, float] | None, unit: str = "x", digits: int = 1) -> str:
    if r is None:
        return "n/a"
    lo, hi = r
    if f"{lo:.{digits}f}" == f"{hi:.{digits}f}":
        return f"{lo:.{digits}f}{unit}"
    return f"{lo:.{digits}f}–{hi:.{digits}f}{unit}"


def _nums(lo: float, hi: float, here: tuple[float, float] | None, unit: str = "x") -> dict | None:
    return None if here is None else {"paper": [lo, hi], "here": [here[0], here[1]], "unit": unit}


def ratio_verdict(ours: tuple[float, float] | None, lo: float, hi: float, *, above: float = 1.0) -> str:
    """``ours`` (a range of ratios) against the paper's ``lo``–``hi``: in the widened range, the same side of
    ``above`` (the effect exists), or not."""
    if ours is None:
        return NOT_TESTED
    a, b = ours
    if a >= lo * (1 - TOLERANCE) and b <= hi * (1 + TOLERANCE):
        return REPRODUCED
    if a > above:
        return DIRECTION
    return NOT_REPRODUCED


def _models(data: dict) -> dict[str, dict]:
    return {m["name"]: m for m in data["models"]}


def _builtin(data: dict, name: str) -> bool:
    m = _models(data).get(name)
    return bool(m) and m.get("origin") == "built-in"


def _title(data: dict, name: str) -> str:
    return _models(data).get(name, {}).get("title", name)


def _boards_short(names) -> str:
    return ", ".join(names) if names else "none"


# --- section 4.1 -------------------------------------------------------------------------------------------------


def f_simd_vs_soft(data: dict) -> list[Finding]:
    out = []
    for name, lo, hi in (("lenet5", 13, 16), ("resnet20", 29, 35)):
        if not _builtin(data, name):
            continue
        values, where = [], []
        for row in data["speedups"]:
            if row["model"] != name:
                continue
            u = [r["latency_s"] for r in data["runs"] if r["model"] == name and r["board"] == row["board"]
                 and r["config"] == UNOPTIMISED and r.get("latency_s")]
            o = [r["latency_s"] for r in data["runs"] if r["model"] == name and r["board"] == row["board"]
                 and r["config"] == OPTIMISED and r.get("latency_s")]
            if u and o:
                values.append(max(u) / min(o))
                where.append(f"{row['board']} {max(u) / min(o):.1f}x")
        missing = [r["board"] for r in data["fit"] if r["model"] == name and r["quantization"] == "float32"
                   and r["verdict"] == "oversized"]
        r = _range(values)
        detail = "; ".join(where + ([f"float model oversized on {_boards_short(missing)}"] if missing else []))
        out.append(Finding(f"simd-vs-soft-{name}", "4.1, table 2",
                           f"{_title(data, name)}: int8 + SIMD kernels vs float32 without FPU (slower -O build of the "
                           "float model, faster of the int8)", f"{lo}–{hi}x", _fmt_range(r),
                           ratio_verdict(r, lo, hi), detail, _nums(lo, hi, r)))
    return out


def f_fpu(data: dict) -> list[Finding]:
    out = []
    if not _builtin(data, "lenet5"):
        return out
    vals = [v for row in data["speedups"] if row["model"] == "lenet5" for v in row["fpu_speedup"].values()]
    r = _range(vals)
    out.append(Finding("fpu", "4.1, figure 2", "LeNet-5 float32: the FPU (hard float) vs soft float",
                       "4x", _fmt_range(r), ratio_verdict(r, 4, 4),
                       "per board and -O level: " + "; ".join(f"{row['board']} " + ", ".join(
                           f"{o} {v:.1f}x" for o, v in row["fpu_speedup"].items())
                           for row in data["speedups"] if row["model"] == "lenet5"), _nums(4, 4, r)))
    vals = [v for row in data["speedups"] if row["model"] == "lenet5" for v in row["simd_speedup"].values()]
    r = _range(vals)
    out.append(Finding("simd", "4.1, figure 2", "LeNet-5 int8: SIMD kernels (CMSIS-NN in the paper) vs reference "
                       "kernels", "4x", _fmt_range(r), ratio_verdict(r, 4, 4),
                       "per board and -O level: " + "; ".join(f"{row['board']} " + ", ".join(
                           f"{o} {v:.1f}x" for o, v in row["simd_speedup"].items())
                           for row in data["speedups"] if row["model"] == "lenet5"), _nums(4, 4, r)))
    vals = [v for row in data["speedups"] if row["model"] == "lenet5" for v in row["int8ref_vs_fpu"].values()]
    r = _range(vals)
    if r is None:
        verdict = NOT_TESTED
    else:
        verdict = REPRODUCED if r[0] >= 0.9 else NOT_REPRODUCED
    out.append(Finding("q-vs-fpu", "4.1, figure 2", "LeNet-5: int8 with reference kernels (Q) is not faster than "
                       "float32 with the FPU (U + FPU); latency Q / (U + FPU)", "≥ 1 (not faster)",
                       _fmt_range(r, "", 2), verdict,
                       "a ratio below 1 means the int8 model with reference kernels is faster here", _nums(1, 1, r)))
    return out


def f_extremes(data: dict) -> list[Finding]:
    rows = [r for r in data["speedups"] if _builtin(data, r["model"])]
    if not rows:
        return []
    complete = [r for r in rows if r["configs"] == max(x["configs"] for x in rows if x["model"] == r["model"])]
    slow = {r["slowest"].split(" ")[0] for r in complete}
    fast = {r["fastest"].split(" ")[0] for r in complete}
    same = len(slow) == 1 and len(fast) == 1
    verdict = REPRODUCED if same and slow == {UNOPTIMISED} and fast == {OPTIMISED} else \
        DIRECTION if same else NOT_REPRODUCED
    here = f"slowest {', '.join(sorted(slow))}; fastest {', '.join(sorted(fast))}"
    skipped = [f"{r['model']} on {r['board']}" for r in rows if r not in complete]
    detail = "; ".join(f"{r['model']} {r['board']}: {r['slowest']} -> {r['fastest']}" for r in rows)
    if skipped:
        detail += f". Not every configuration fits ({', '.join(skipped)}): compared where all do."
    out = [Finding("extremes", "4.1, table 2", "The slowest and the fastest configuration are the same for every "
                   "model and board (U: float without FPU; O: int8 + CMSIS-NN)", "U and O everywhere", here,
                   verdict, detail)]
    spreads = []
    for name in sorted({r["model"] for r in complete}):
        s = [r["speedup"] for r in complete if r["model"] == name]
        if len(s) >= 2:
            spreads.append((name, 100.0 * (max(s) / min(s) - 1)))
    if spreads:
        top = max(v for _, v in spreads)
        verdict = REPRODUCED if 22 * (1 - TOLERANCE) * 0.5 <= top <= 22 * (1 + TOLERANCE) else \
            DIRECTION if top > 2 else NOT_REPRODUCED
        out.append(Finding("mcu-variation", "4.1, table 2", "The slowest-to-fastest speed-up differs between the MCUs",
                           "up to 22 %", f"up to {top:.0f} %", verdict,
                           "; ".join(f"{_title(data, n)} {v:.0f} %" for n, v in spreads), _nums(22, 22, (top, top), "%")))
    return out


def f_memory(data: dict) -> list[Finding]:
    out = []
    for row in data["memory"]:
        if row["model"] != "lenet5" or row["quantization"] != "int8" or not _builtin(data, "lenet5"):
            continue
        pct = row["of_float_pct"]
        verdict = NOT_TESTED if pct is None else REPRODUCED if 26.6 * (1 - TOLERANCE) <= pct <= 26.6 * (1 + TOLERANCE) \
            else DIRECTION if pct < 100 else NOT_REPRODUCED
        others = "; ".join(f"{r['model']} {r['quantization']} {r['of_float_pct']:.1f} %" for r in data["memory"]
                           if r["of_float_pct"] is not None and r["quantization"] != "float32")
        out.append(Finding("memory", "4.1, table 1", "LeNet-5: the int8 model's size relative to the float32 model "
                           "(.tflite)", "26.6 % (−73 %)", f"{pct:.1f} % (−{100 - pct:.0f} %)" if pct else "n/a",
                           verdict, others, _nums(26.6, 26.6, (pct, pct) if pct else None, "%")))
    return out


def f_accuracy(data: dict) -> list[Finding]:
    out = []
    acc = data.get("accuracy", {})
    a = acc.get("lenet5", {})
    host = a.get("host", {})
    if _builtin(data, "lenet5") and host.get("float32") is not None and host.get("int8") is not None:
        d = 100.0 * (host["int8"] - host["float32"])
        n = a.get("samples") or 0
        one = 100.0 / n if n else 0
        verdict = REPRODUCED if abs(d) <= max(1.0, 2 * one) else DIRECTION if d < 0 else NOT_REPRODUCED
        out.append(Finding("quant-accuracy", "4.1, table 1", "LeNet-5: accuracy lost by int8 quantization (host "
                           "interpreter, stage C)", "−0.05 pp", f"{d:+.2f} pp", verdict,
                           f"float32 {100 * host['float32']:.2f} %, int8 {100 * host['int8']:.2f} % on {n} test "
                           f"samples (one sample = {one:.2f} pp); trained {a.get('trained', '')}"))
    boards = [(m, v) for m, v in acc.items() for v in v.get("board", [])]
    if boards:
        differs = [f"{m} {v['config_id']} on {v['board']}" for m, v in boards if v.get("agreement", 1) < 1]
        identical = all(v.get("identical_outputs") == 1 for _, v in boards)
        here = "; ".join(f"{m} {v['config_id']} on {v['board']}: board {100 * v['board_accuracy']:.2f} % vs host "
                         f"{100 * v['host_accuracy']:.2f} % ({v['samples']} samples)" for m, v in boards)
        verdict = NOT_REPRODUCED if identical else REPRODUCED
        detail = ("every output bit-identical to the host interpreter: this runtime's SIMD kernels are bit-exact with "
                  "the TFLite reference kernels by design, so they cannot change a classification (CMSIS-NN's did)"
                  if identical else f"classes differ from the host on {', '.join(differs) or 'no model'}")
        out.append(Finding("board-accuracy", "4.1, table 1 (stage F)", "On-board accuracy with the optimised kernels "
                           "differs slightly from the host's (CMSIS-NN: +0.02 pp)", "+0.02 pp",
                           here, verdict, detail))
    return out


def f_ratios(data: dict) -> list[Finding]:
    rows = data["ratios"]
    pair = data.get("pair")
    if not rows or not pair or not all(_builtin(data, n) for n in pair):
        return []
    macs = rows[0]["mac_ratio"]
    params = rows[0]["param_ratio"]
    out = [Finding("params-proxy", "4.1", "Parameters are an ill-suited proxy for computation: ResNet-20 has far "
                   "more MACs relative to LeNet-5 than parameters", "141x operations, 3.4x parameters",
                   f"{macs:.0f}x MACs, {params:.1f}x parameters",
                   REPRODUCED if macs and params and macs / params > 10 else NOT_REPRODUCED,
                   "the paper's LeNet variant and operation count differ from the architectures built here "
                   "(LeNet-5 with valid convolutions, MACs as counted by costmodel.analysis)")]
    u = _range([r.get("ratio_U") for r in rows])
    o = _range([r.get("ratio_O") for r in rows])
    if u is None or o is None:
        verdict = NOT_TESTED
    else:
        verdict = REPRODUCED if o[1] < 0.85 * u[0] else DIRECTION if o[1] < u[0] else NOT_REPRODUCED
    missing = "; ".join(f"{r['board']}: {r.get('missing_U') or r.get('missing_O')}" for r in rows
                        if r.get("missing_U") or r.get("missing_O"))
    out.append(Finding("latency-ratio", "4.1, table 3", "Latency ratio ResNet-20 / LeNet-5: the optimised builds (O) "
                       "scale differently from the unoptimised (U), so MACs do not predict latency uniformly",
                       "U 123–126x, O 55–61x (141x operations)",
                       f"U {_fmt_range(u, 'x', 0)}, O {_fmt_range(o, 'x', 0)} ({macs:.0f}x MACs)", verdict,
                       ("per board: " + "; ".join(
                           f"{r['board']} U {r['ratio_U']:.0f}x" if r.get("ratio_U") else f"{r['board']} U n/a"
                           for r in rows) + "; " + "; ".join(
                           f"{r['board']} O {r['ratio_O']:.0f}x" if r.get("ratio_O") else f"{r['board']} O n/a"
                           for r in rows)) + (f". Missing: {missing}" if missing else ""),
                       {"paper": [123, 126], "here": list(u) if u else None, "unit": "x", "label": "U",
                        "paper_O": [55, 61], "here_O": list(o) if o else None}))
    return out


def f_compiler(data: dict) -> list[Finding]:
    runs = [r for r in data["runs"] if r.get("latency_s")]
    pairs = []
    for r in runs:
        if r["opt"] != "-Os":
            continue
        t = next((x for x in runs if x["opt"] == "-O3" and (x["model"], x["board"], x["config"]) ==
                  (r["model"], r["board"], r["config"])), None)
        if t:
            pairs.append((r, t))
    if not pairs:
        return []
    speed = [s["latency_s"] / t["latency_s"] for s, t in pairs]
    flash = [t["firmware_flash_bytes"] / s["firmware_flash_bytes"] for s, t in pairs
             if s.get("firmware_flash_bytes") and t.get("firmware_flash_bytes")]
    faster = sum(v > 1 for v in speed)
    r, f = _range(speed), _range(flash)
    verdict = REPRODUCED if faster >= 0.8 * len(speed) and f and f[0] > 1 else \
        DIRECTION if faster > len(speed) / 2 else NOT_REPRODUCED
    return [Finding("compiler", "appendix B.1", "Compiler optimisation trades memory for latency: -O3 is faster "
                    "than -Os, with a larger firmware image", "-O3 faster and larger",
                    f"-O3 speed-up {_fmt_range(r, 'x', 2)}, firmware {_fmt_range(f, 'x', 2)} the size",
                    verdict, f"-O3 faster in {faster} of {len(speed)} model x board x configuration pairs")]


# --- section 4.2 ------------------------------------------------------------------------------------------------


def f_energy(data: dict) -> list[Finding]:
    e = data["energy"]
    if not e["n_all"]:
        return []
    per_model = _range([b["r_models"] for b in e["per_board"]])
    per_layer = _range([b["r_layers"] for b in e["per_board"]])
    here = f"r per board {_fmt_range(per_model, '', 4)} (models), {_fmt_range(per_layer, '', 4)} (layers)"
    if e["modelled"]:
        verdict = NOT_TESTED
        detail = ("energy is modelled as the catalogue's power x latency (energy_source = power-model): r = 1 per "
                  "board by construction and proves nothing; a bench with an energy monitor measures it. Across "
                  f"boards pooled r = {e['r_all']:.4f} (the boards' powers differ)." if e["r_all"] is not None else
                  "energy is modelled as power x latency: r = 1 by construction")
    else:
        lo = min(x for x in (per_model[0] if per_model else 1, per_layer[0] if per_layer else 1))
        verdict = REPRODUCED if lo >= 0.99 else DIRECTION if lo >= 0.9 else NOT_REPRODUCED
        detail = f"energy sources: {', '.join(e['sources'])}"
    return [Finding("energy-latency", "4.2", "Energy is almost linear in latency on each MCU",
                    "r = 0.9946 (models), 0.9995 (layers)", here, verdict, detail)]


def f_pareto(data: dict) -> list[Finding]:
    rows = data["pareto"]
    if not rows or len(data["boards"]) < 2:
        return []
    modelled = data["energy"]["modelled"]
    tradeoff = [r for r in rows if sum(r["efficient"].values()) >= 2]
    dominated = [(r["model"], r["not_efficient"]) for r in rows if r["not_efficient"]]
    here = "; ".join(f"{_title(data, r['model'])}: efficient {_boards_short([b for b, e in r['efficient'].items() if e])}"
                     f", not {_boards_short(r['not_efficient'])}" for r in rows)
    if len(tradeoff) == len(rows) and dominated:
        verdict = REPRODUCED
    elif dominated or tradeoff:
        verdict = DIRECTION
    else:
        verdict = NOT_REPRODUCED
    f4 = all("DISCO-F469NI" in nd for _, nd in dominated) and dominated
    detail = ("the board the paper found not Pareto-efficient (F4, DISCO-F469NI) is not here either" if f4 else
              "the paper found the F4 (DISCO-F469NI) not Pareto-efficient")
    if modelled:
        detail += "; energy is modelled (catalogue power x latency), so the front is of modelled energy"
    return [Finding("pareto", "4.2, figure 3", "Across MCUs the choice is a latency/energy trade-off, and some MCU "
                    "is not Pareto-efficient", "trade-off; F4 not Pareto-efficient", here, verdict, detail)]


# --- section 4.3 (sweeps) ---------------------------------------------------------------------------------------


def _alignment(data: dict, op: str) -> list[dict]:
    return [r for r in data["sweeps"].get("alignment", []) if r.get("op") == op and r.get("runtime_variant") == "simd"]


def f_conv(data: dict) -> list[Finding]:
    gains = [g for g in data["conv_add_filter"] if g["variant"] == "simd"]
    if not gains:
        return []
    out = []
    boards = sorted({g["target"] for g in gains})
    best = {b: max((g for g in gains if g["target"] == b), key=lambda g: g["gain_pct"]) for b in boards}
    top = max(g["gain_pct"] for g in best.values())
    all_boards = all(g["gain_pct"] > 0 for g in best.values())
    verdict = REPRODUCED if all_boards and 7.7 * 0.5 <= top <= 7.7 * 2 else DIRECTION if top > 0 else NOT_REPRODUCED
    out.append(Finding("conv-add-filter", "4.3, figure 5", "A convolution gets faster, despite more MACs, when the "
                       "previous layer gets one filter more (its input channels become even or divisible by 4)",
                       "up to 7.7 %", f"up to {top:.1f} %", verdict,
                       "best per board (SIMD kernels): " + "; ".join(
                           f"{b} {g['from']} -> {g['to']} channels {g['gain_pct']:.1f} % ({g['group']})"
                           for b, g in best.items()), _nums(7.7, 7.7, (top, top), "%")))
    rows = _alignment(data, "CONV_2D")
    ok = [r for r in rows if all(r.get(k) for k in ("%4", "odd"))]
    if ok:
        ratios = [r["odd"] / r["%4"] for r in ok]
        even = [r["even"] / r["%4"] for r in ok if r.get("even")]
        verdict = REPRODUCED if min(ratios) > 1.02 else DIRECTION if np.median(ratios) > 1 else NOT_REPRODUCED
        out.append(Finding("conv-alignment", "4.3, table 4", "Convolution δ (latency per MAC, SIMD) is lower when "
                           "the input channels are divisible by 4", "δ %4 < even < odd",
                           f"δ odd / δ %4 {_fmt_range(_range(ratios), 'x', 2)}, even / %4 "
                           f"{_fmt_range(_range(even), 'x', 2)}", verdict,
                           "; ".join(f"{r['target']}: odd {r['odd']:.1f}, even {r.get('even') or 0:.1f}, %4 "
                                     f"{r['%4']:.1f} ns/MAC" for r in ok)))
    return out


def f_dense(data: dict) -> list[Finding]:
    rows = _alignment(data, "FULLY_CONNECTED")
    out = []
    ok = [r for r in rows if all(r.get(k) for k in ("%4", "odd"))]
    if ok:
        ratios = [r["odd"] / r["%4"] for r in ok]
        ordered = [r for r in ok if r.get("even") and r["%4"] <= r["even"] <= r["odd"]]
        verdict = REPRODUCED if min(ratios) > 1.02 and len(ordered) == len(ok) else \
            DIRECTION if np.median(ratios) > 1 else NOT_REPRODUCED
        out.append(Finding("dense-alignment", "4.3, figure 4", "Dense layers: odd / even / divisible-by-4 input "
                           "lengths differ in latency per MAC (SIMD)", "δ %4 < even < odd",
                           f"δ odd / δ %4 {_fmt_range(_range(ratios), 'x', 2)}; ordered %4 ≤ even ≤ odd on "
                           f"{len(ordered)} of {len(ok)} boards", verdict,
                           "; ".join(f"{r['target']}: odd {r['odd']:.1f}, even {r.get('even') or 0:.1f}, %4 "
                                     f"{r['%4']:.1f} ns/MAC" for r in ok)))
    dense = [r for r in data["sweeps"].get("rows", {}).get("dense", []) if r["runtime_variant"] == "simd"]
    lengths = sorted({int(r["parameter"]) for r in dense})
    if dense:
        if len(lengths) < 32:
            out.append(Finding("dense-period", "4.3, figure 4", "Dense layers: a period of 16 in the input length "
                               "(clusters of 9 and 7 lengths, the first faster)", "period 16",
                               f"lengths {lengths[0]}–{lengths[-1]} swept", NOT_TESTED,
                               "needs at least 32 consecutive input lengths: run with --sweep-size full"))
        else:
            out.append(_period16(dense))
    return out


def _period16(dense: list[dict]) -> Finding:
    """Residues of the input length mod 16: is there a circular block of 9 residues faster than the other 7,
    beyond the mod-4 effect? (δ normalised by the median of its alignment class and board.)"""
    import pandas as pd

    df = pd.DataFrame(dense)
    df["norm"] = df["delta_ns"] / df.groupby(["target", "group", "alignment"])["delta_ns"].transform("median")
    df["res"] = df["parameter"].astype(int) % 16
    by = df.groupby("res")["norm"].mean().reindex(range(16))
    best = None
    for start in range(16):
        a = [(start + i) % 16 for i in range(9)]
        b = [r for r in range(16) if r not in a]
        gap = float(by[b].mean() - by[a].mean())
        if best is None or gap > best[0]:
            best = (gap, start)
    gap, start = best
    verdict = REPRODUCED if gap > 0.03 else DIRECTION if gap > 0.01 else NOT_REPRODUCED
    return Finding("dense-period", "4.3, figure 4", "Dense layers: a period of 16 in the input length (clusters of "
                   "9 and 7 lengths, the first faster)", "period 16, clusters 9 / 7",
                   f"best 9-residue cluster (from {start} mod 16) {100 * gap:.1f} % faster than the other 7", verdict,
                   "δ normalised per board, layer group and alignment class, so the mod-4 effect is taken out")


def f_depthwise(data: dict) -> list[Finding]:
    dw = [r for r in _alignment(data, "DEPTHWISE_CONV_2D") if r.get("%4") and r.get("odd")]
    conv = [r for r in _alignment(data, "CONV_2D") if r.get("%4") and r.get("odd")]
    out = []
    if dw:
        dws = [abs(r["odd"] / r["%4"] - 1) for r in dw]
        convs = [abs(r["odd"] / r["%4"] - 1) for r in conv]
        smaller = not convs or max(dws) < min(convs)
        verdict = REPRODUCED if max(dws) < 0.1 and smaller else DIRECTION if np.median(dws) < np.median(convs or [1]) \
            else NOT_REPRODUCED
        out.append(Finding("dwconv-alignment", "4.3, table 4", "Depthwise convolution gains little from alignment",
                           "small G differences for DW", f"|δ odd / δ %4 − 1| {_fmt_range(_range(dws), '', 3)} (conv "
                           f"{_fmt_range(_range(convs), '', 3)})", verdict, "SIMD kernels, per board"))
    gains = data["sweeps"].get("gains", [])
    if gains:
        by = {(g["target"], g["layer"]): g for g in gains}
        types = sorted({g["layer"] for g in gains} & {"conv", "dense", "dwconv"})
        faster = [g for g in gains if g["layer"] in types and g["G"] > 1]
        total = [g for g in gains if g["layer"] in types]
        verdict = REPRODUCED if len(faster) == len(total) else DIRECTION if faster else NOT_REPRODUCED
        detail = "; ".join(f"{g['target']} {g['layer']} G {g['G']:.2f}" for g in total)
        out.append(Finding("simd-gain", "4.3, table 4", "The optimised (SIMD) kernels lower δ for every layer type",
                           "G > 1 for all layer types", f"G > 1 for {len(faster)} of {len(total)} board x layer "
                           "types", verdict, detail))
        dw_less = [t for t, _ in by if (t, "dwconv") in by and (t, "conv") in by
                   and by[(t, "dwconv")]["G"] < by[(t, "conv")]["G"]]
        boards = {t for t, kind in by if kind == "dwconv" and (t, "conv") in by}
        if boards:
            verdict = REPRODUCED if len(set(dw_less)) == len(boards) else DIRECTION if dw_less else NOT_REPRODUCED
            out.append(Finding("dwconv-gain", "4.3, table 4", "Depthwise convolution exploits the hardware less: its "
                               "gain G is below the convolution's", "G_DW < G_conv",
                               f"on {len(set(dw_less))} of {len(boards)} boards", verdict,
                               "; ".join(f"{t}: conv {by[(t, 'conv')]['G']:.2f}, DW {by[(t, 'dwconv')]['G']:.2f}"
                                         for t in sorted(boards))))
    return out


ALL = (f_simd_vs_soft, f_fpu, f_extremes, f_memory, f_accuracy, f_ratios, f_compiler, f_energy, f_pareto, f_conv,
       f_dense, f_depthwise)


def findings(data: dict) -> list[dict]:
    out = []
    for fn in ALL:
        try:
            out += [f.to_dict() for f in fn(data)]
        except (KeyError, ValueError, ZeroDivisionError, TypeError) as exc:  # a finding the numbers cannot support
            out.append(Finding(fn.__name__[2:], "", fn.__doc__ or fn.__name__, "", "", NOT_TESTED,
                               f"could not be computed: {type(exc).__name__}: {exc}").to_dict())
    return out
