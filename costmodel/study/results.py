"""The study's numbers from what was measured: the paper's tables 1-4 and the data of its figures 2-5.

Input (:class:`StudyInputs`, filled by the study command): the models and their files, the boards, one *run* per
model x board x configuration (measured, reused from the store, oversized, not applicable, failed), the store's
model and layer rows of the measured runs and of the sweeps, and the accuracies (host, stage C; board, stage F).
Output (:func:`compute`): plain data (lists of dicts), written as JSON and CSV and drawn by the report. Every
number carries where it comes from (:func:`provenance`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from costmodel.study.configs import BY_KEY, CONFIGS, OPT_LEVELS, OPTIMISED, UNOPTIMISED, config_id

MEASURED = ("measured", "reused")


@dataclass
class StudyInputs:
    models: list[dict]                 # name, title, origin, note, trained, input_shape, files: {q: {...}}
    boards: list[dict]                 # name, core, clock_hz, power_w, power_source, flash_bytes, sram_bytes
    runs: list[dict]                   # model, board, config, opt, status, reason, measurement_id, repetitions
    model_rows: Any = None             # DataFrame: the store's model rows of the runs
    layer_rows: Any = None             # DataFrame: the store's layer rows of the runs
    sweep_layers: Any = None           # DataFrame: the store's layer rows of the sweeps
    accuracy: dict = field(default_factory=dict)   # model -> {"host": {q: acc}, "samples", "board": [...]}
    predictions: dict = field(default_factory=dict)  # (model, board, config id) -> {"latency_s", "uncertainty"}
    meta: dict = field(default_factory=dict)


def _finite(x) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def pearson(x, y) -> float | None:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def provenance(row: dict) -> str:
    """Where a measured number comes from, in words."""
    kind = row.get("board_kind", "")
    if kind == "virtual":
        where = f"virtual {row.get('board', '')} (timing model {row.get('board_model_version') or '?'})"
    elif kind:
        where = f"real board {row.get('board_id') or row.get('board', '')}"
    else:
        where = "not measured"
    build = row.get("firmware_build_id", "")
    return f"{where}, firmware {build[:12]}" if build else where


def energy_provenance(row: dict, boards: dict) -> str:
    if row.get("energy_source") == "monitor":
        return "measured by the bench's energy monitor"
    if row.get("energy_source"):
        b = boards.get(row.get("board"), {})
        return f"modelled: {b.get('power_w', 0) * 1e3:.0f} mW ({b.get('power_source', 'catalogue')}) x latency"
    return ""


# --- the runs as one table ------------------------------------------------------------------------------------


def run_table(inputs: StudyInputs) -> list[dict]:
    """Every run with its measured numbers (latency, energy, cycles, sizes) and provenance."""
    by_id: dict[str, dict] = {}
    if inputs.model_rows is not None and len(inputs.model_rows):
        by_id = {r["measurement_id"]: r for r in inputs.model_rows.to_dict("records")}
    boards = {b["name"]: b for b in inputs.boards}
    models = {m["name"]: m for m in inputs.models}
    out = []
    for run in inputs.runs:
        cfg = BY_KEY[run["config"]]
        q = cfg.quantization
        info = models[run["model"]]["files"].get(q, {})
        row = {"model": run["model"], "board": run["board"], "config": run["config"], "opt": run["opt"],
               "config_id": config_id(run["config"], run["opt"]), "label": cfg.label, "paper": cfg.paper,
               "quantization": q, "variant": cfg.variant, "float_abi": run.get("float_abi", cfg.float_abi), "status": run["status"],
               "reason": run.get("reason", ""), "measurement_id": run.get("measurement_id", ""),
               "macs": info.get("macs", 0), "params": info.get("params", 0), "tflite_bytes": info.get("tflite_bytes", 0),
               "plan_bytes": info.get("plan_bytes", 0), "arena_bytes": info.get("arena_bytes", 0),
               "repetitions": run.get("repetitions", 0)}
        m = by_id.get(run.get("measurement_id", ""))
        if m is not None and run["status"] in MEASURED:
            spec = json.loads(m.get("spec") or "{}")
            row.update({"latency_s": float(m["latency_s"]), "energy_j": float(m["energy_j"]),
                        "cycles": int(m["total_cycles"]), "clock_hz": int(m["clock_hz"]),
                        "energy_source": m["energy_source"], "board_kind": m["board_kind"],
                        "board_model_version": m["board_model_version"], "firmware_build_id": m["firmware_build_id"],
                        "board_id": m["board_id"], "plan_bytes": int(m["plan_bytes"]),
                        "arena_bytes": int(m["arena_bytes"]), "repetitions": int(m["repetitions"]),
                        "firmware_flash_bytes": int(spec.get("firmware_flash_bytes", 0)),
                        "firmware_ram_bytes": int(spec.get("firmware_ram_bytes", 0)),
                        "measured_at": float(m["measured_at"])})
            row["provenance"] = provenance(row)
            row["energy_provenance"] = energy_provenance(row, boards)
            row["delta_ns_per_mac"] = row["latency_s"] / row["macs"] * 1e9 if row["macs"] else None
        else:
            row["provenance"] = {"oversized": "fit verdict (measure_agent.fit)", "n/a": "not applicable"}.get(
                run["status"], run["status"])
        p = inputs.predictions.get((run["model"], run["board"], row["config_id"]))
        if p:
            row["predicted_latency_s"] = p["latency_s"]
            row["predicted_uncertainty"] = p.get("uncertainty")
            row["predicted_provenance"] = p.get("provenance", "predicted by the learned cost model")
        out.append(row)
    return out


def _measured(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r["status"] in MEASURED and _finite(r.get("latency_s"))]


def _get(runs, model, board, key, opt):
    for r in runs:
        if (r["model"], r["board"], r["config"], r["opt"]) == (model, board, key, opt) and r["status"] in MEASURED:
            return r
    return None


# --- table 1: memory, accuracy, oversized --------------------------------------------------------------------


def memory_table(inputs: StudyInputs, runs: list[dict]) -> list[dict]:
    out = []
    for m in inputs.models:
        base = m["files"].get("float32", {}).get("tflite_bytes")
        acc = inputs.accuracy.get(m["name"], {})
        for q in ("float32", "dynamic", "int8"):
            f = m["files"].get(q)
            if not f:
                continue
            oversized = sorted({r["board"] for r in runs if r["model"] == m["name"] and r["quantization"] == q
                                and r["status"] == "oversized"})
            out.append({"model": m["name"], "quantization": q, "tflite_bytes": f["tflite_bytes"],
                        "plan_bytes": f["plan_bytes"], "arena_bytes": f["arena_bytes"], "params": f["params"],
                        "weight_bytes": f["weight_bytes"], "macs": f["macs"],
                        "of_float_pct": 100.0 * f["tflite_bytes"] / base if base else None,
                        "reduction_pct": 100.0 * (1 - f["tflite_bytes"] / base) if base else None,
                        "host_accuracy": acc.get("host", {}).get(q), "accuracy_samples": acc.get("samples"),
                        "oversized_on": oversized})
    return out


def fit_matrix(runs: list[dict]) -> list[dict]:
    """Per model x quantization x board: fits / oversized (the fit verdict's reason)."""
    cells: dict[tuple, dict] = {}
    for r in runs:
        key = (r["model"], r["quantization"], r["board"])
        cell = cells.setdefault(key, {"model": r["model"], "quantization": r["quantization"], "board": r["board"],
                                      "verdict": "n/a", "reason": ""})
        if r["status"] == "oversized":
            cell["verdict"], cell["reason"] = "oversized", r["reason"]
        elif r["status"] in MEASURED and cell["verdict"] != "oversized":
            cell["verdict"] = "fits"
        elif r["status"] == "failed" and cell["verdict"] == "n/a":
            cell["verdict"], cell["reason"] = "failed", r["reason"]
    return list(cells.values())


# --- figure 2, tables 2 and 3 ------------------------------------------------------------------------------------


def speedup_table(inputs: StudyInputs, runs: list[dict]) -> list[dict]:
    """Table 2: per model and board the slowest and fastest configuration and the speed-up between them, and the
    paper's pair (float without FPU vs int8 + SIMD at the same optimisation level)."""
    out = []
    for m in inputs.models:
        for b in inputs.boards:
            mine = [r for r in _measured(runs) if r["model"] == m["name"] and r["board"] == b["name"]]
            if not mine:
                continue
            slow = max(mine, key=lambda r: r["latency_s"])
            fast = min(mine, key=lambda r: r["latency_s"])
            row = {"model": m["name"], "board": b["name"], "slowest": slow["config_id"], "fastest": fast["config_id"],
                   "slowest_ms": slow["latency_s"] * 1e3, "fastest_ms": fast["latency_s"] * 1e3,
                   "speedup": slow["latency_s"] / fast["latency_s"], "configs": len(mine)}
            pairs = {}
            for opt in OPT_LEVELS:
                u, o = _get(runs, m["name"], b["name"], UNOPTIMISED, opt), _get(runs, m["name"], b["name"], OPTIMISED, opt)
                if u and o:
                    pairs[opt] = u["latency_s"] / o["latency_s"]
            row["simd_vs_soft"] = pairs
            fpu = [(_get(runs, m["name"], b["name"], "float-soft", o), _get(runs, m["name"], b["name"], "float-fpu", o))
                   for o in OPT_LEVELS]
            row["fpu_speedup"] = {o: s["latency_s"] / h["latency_s"] for o, (s, h) in zip(OPT_LEVELS, fpu) if s and h}
            simd = [(_get(runs, m["name"], b["name"], "int8-ref", o), _get(runs, m["name"], b["name"], "int8-simd", o))
                    for o in OPT_LEVELS]
            row["simd_speedup"] = {o: r_["latency_s"] / s["latency_s"] for o, (r_, s) in zip(OPT_LEVELS, simd) if r_ and s}
            q_vs_fpu = [(_get(runs, m["name"], b["name"], "int8-ref", o), _get(runs, m["name"], b["name"], "float-fpu", o))
                        for o in OPT_LEVELS]
            row["int8ref_vs_fpu"] = {o: q["latency_s"] / h["latency_s"] for o, (q, h) in zip(OPT_LEVELS, q_vs_fpu)
                                     if q and h}
            o3 = [(_get(runs, m["name"], b["name"], c.key, "-Os"), _get(runs, m["name"], b["name"], c.key, "-O3"))
                  for c in CONFIGS]
            row["o3_speedup"] = {c.key: s["latency_s"] / t["latency_s"] for c, (s, t) in zip(CONFIGS, o3) if s and t}
            out.append(row)
    return out


def ratio_table(inputs: StudyInputs, runs: list[dict], pair: tuple[str, str] | None) -> list[dict]:
    """Table 3: per board the latency ratio of the larger to the smaller model for the unoptimised (float without
    FPU, its slower build) and the optimised (int8 + SIMD, its faster build) configuration, next to their MAC
    and parameter ratios."""
    if pair is None:
        return []
    small, large = pair
    models = {m["name"]: m for m in inputs.models}
    macs = [models[n]["files"].get("int8", models[n]["files"].get("float32", {})).get("macs", 0) for n in pair]
    params = [models[n]["files"].get("int8", models[n]["files"].get("float32", {})).get("params", 0) for n in pair]
    out = []
    for b in inputs.boards:
        row = {"board": b["name"], "small": small, "large": large,
               "mac_ratio": macs[1] / macs[0] if macs[0] else None,
               "param_ratio": params[1] / params[0] if params[0] else None}
        for label, key, pick in (("U", UNOPTIMISED, max), ("O", OPTIMISED, min)):
            lat = []
            for n in pair:
                found = [r["latency_s"] for r in _measured(runs) if r["model"] == n and r["board"] == b["name"]
                         and r["config"] == key]
                lat.append(pick(found) if found else None)
            row[f"ratio_{label}"] = lat[1] / lat[0] if all(lat) else None
            why = [n for n, v in zip(pair, lat) if v is None]
            if why:
                over = [r["reason"] for r in runs if r["model"] in why and r["board"] == b["name"]
                        and r["config"] == key and r["status"] == "oversized"]
                row[f"missing_{label}"] = f"{', '.join(why)} {key}: " + (f"oversized ({over[0]})" if over else
                                                                          "not measured")
        out.append(row)
    return out


# --- energy (section 4.2) and the Pareto front (figure 3) -------------------------------------------------------


def energy_table(inputs: StudyInputs, runs: list[dict]) -> dict:
    measured = _measured(runs)
    sources = sorted({r.get("energy_source", "") for r in measured})
    per_board = []
    for b in inputs.boards:
        mine = [r for r in measured if r["board"] == b["name"]]
        layers = _layer_records(inputs, b["name"])
        per_board.append({"board": b["name"], "n_models": len(mine),
                          "r_models": pearson([r["latency_s"] for r in mine], [r["energy_j"] for r in mine]),
                          "n_layers": len(layers),
                          "r_layers": pearson([r["latency_s"] for r in layers], [r["energy_j"] for r in layers]),
                          "energy_sources": sorted({r.get("energy_source", "") for r in mine}),
                          "power_w": b.get("power_w")})
    modelled = bool(measured) and all(s == "power-model" for s in sources)
    return {"sources": sources, "modelled": modelled, "per_board": per_board,
            "r_all": pearson([r["latency_s"] for r in measured], [r["energy_j"] for r in measured]),
            "n_all": len(measured)}


def _layer_records(inputs: StudyInputs, board: str | None = None) -> list[dict]:
    df = inputs.layer_rows
    if df is None or not len(df):
        return []
    part = df if board is None else df[df["target"] == board]
    part = part[(part["latency_s"] > 0)]
    return part[["latency_s", "energy_j"]].to_dict("records")


def pareto_indices(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (both coordinates minimised)."""
    front = []
    for i, (a, b) in enumerate(points):
        if not any((c <= a and d <= b) and (c < a or d < b) for j, (c, d) in enumerate(points) if j != i):
            front.append(i)
    return front


def pareto_table(inputs: StudyInputs, runs: list[dict]) -> list[dict]:
    """Per model: the latency/energy points of every board and configuration, the front, and per board whether it
    has a point on the front (Pareto-efficient), overall and for each configuration on its own."""
    out = []
    for m in inputs.models:
        mine = [r for r in _measured(runs) if r["model"] == m["name"]]
        if not mine:
            continue
        pts = [(r["latency_s"], r["energy_j"]) for r in mine]
        front = set(pareto_indices(pts))
        boards = sorted({r["board"] for r in mine}, key=[b["name"] for b in inputs.boards].index)
        efficient = {b: any(i in front for i, r in enumerate(mine) if r["board"] == b) for b in boards}
        per_config = {}
        for cid in sorted({r["config_id"] for r in mine}):
            same = [r for r in mine if r["config_id"] == cid]
            if len(same) < 2:
                continue
            f = set(pareto_indices([(r["latency_s"], r["energy_j"]) for r in same]))
            per_config[cid] = {r["board"]: i in f for i, r in enumerate(same)}
        dominated_everywhere = [b for b in boards if per_config and
                                all(not v.get(b, True) for v in per_config.values() if b in v)]
        out.append({"model": m["name"], "points": [{"board": r["board"], "config_id": r["config_id"],
                                                     "latency_s": r["latency_s"], "energy_j": r["energy_j"],
                                                     "front": i in front} for i, r in enumerate(mine)],
                    "efficient": efficient, "per_config": per_config,
                    "not_efficient": [b for b, e in efficient.items() if not e],
                    "dominated_in_every_config": dominated_everywhere})
    return out


# --- per layer ----------------------------------------------------------------------------------------------------


def layer_table(inputs: StudyInputs, runs: list[dict]) -> list[dict]:
    """Every layer of every measured run: op, kernel, MACs, cycles, latency, δ (ns per MAC), energy."""
    df = inputs.layer_rows
    if df is None or not len(df):
        return []
    by_id = {r["measurement_id"]: r for r in runs if r["status"] in MEASURED}
    out = []
    for rec in df.to_dict("records"):
        run = by_id.get(rec["measurement_id"])
        if run is None:
            continue
        macs = int(rec["macs"])
        out.append({"model": run["model"], "board": run["board"], "config_id": run["config_id"],
                    "config": run["config"], "opt": run["opt"], "index": int(rec["layer_index"]),
                    "name": rec["layer_name"], "op": rec["op"], "kernel": rec["kernel"], "macs": macs,
                    "cycles": int(rec["cycles"]), "latency_s": float(rec["latency_s"]),
                    "energy_j": float(rec["energy_j"]), "alignment": rec.get("alignment", ""),
                    "delta_ns_per_mac": float(rec["latency_s"]) / macs * 1e9 if macs else None,
                    "provenance": run["provenance"]})
    out.sort(key=lambda r: (r["model"], r["board"], r["config_id"], r["index"]))
    return out


# --- sweeps: figures 4 and 5, table 4 ---------------------------------------------------------------------------


def sweep_tables(inputs: StudyInputs) -> dict:
    from costmodel.plots import alignment_deltas, gains_table, sweep_rows

    df = inputs.sweep_layers
    out: dict = {"rows": {}, "gains": [], "alignment": []}
    if df is None or not len(df):
        return out
    for name in ("dense", "conv", "dwconv"):
        rows = sweep_rows(df, name)
        if len(rows):
            keep = ["target", "runtime_variant", "model_name", "layer_index", "op", "kernel", "macs", "cycles",
                    "latency_s", "parameter", "delta_ns", "alignment", "group", "board_model_version",
                    "firmware_build_id", "board_kind", "opt_level"]
            out["rows"][name] = rows[[c for c in keep if c in rows.columns]].to_dict("records")
    gains = gains_table(df)
    out["gains"] = [] if gains.empty else gains.to_dict("records")
    sweep_only = df[df["sweep"].isin(["conv", "dense", "dwconv"])]
    sweep_only = _swept_layers(sweep_only)
    al = alignment_deltas(sweep_only)
    out["alignment"] = [] if al.empty else al.to_dict("records")
    return out


def _swept_layers(df):
    """The layer each sweep is about (the static convolution of the conv sweep, the dense layer, the depthwise
    convolution), not the layer in front of it that sets its input."""
    import pandas as pd

    parts = []
    for name, op in (("conv", "CONV_2D"), ("dense", "FULLY_CONNECTED"), ("dwconv", "DEPTHWISE_CONV_2D")):
        p = df[(df["sweep"] == name) & (df["op"] == op)]
        if name == "conv" and len(p):
            p = p[p["layer_index"] == p.groupby("measurement_id")["layer_index"].transform("max")]
            p = p[p["layer_index"] > 0]
        parts.append(p)
    return pd.concat(parts) if parts else df.iloc[:0]


def conv_add_filter_gains(sweep: dict) -> list[dict]:
    """Figure 5's point: for the static convolution, how much faster it gets when the preceding layer has one
    filter more (input channels c -> c + 1, more MACs), per board, kernel variant and group."""
    rows = sweep.get("rows", {}).get("conv", [])
    out = []
    groups: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["runtime_variant"], r["group"]), {})[int(r["parameter"])] = r
    for (target, variant, group), by_c in groups.items():
        for c, r in by_c.items():
            nxt = by_c.get(c + 1)
            if nxt and nxt["macs"] > r["macs"] and r["latency_s"] > 0:
                out.append({"target": target, "variant": variant, "group": group, "from": c, "to": c + 1,
                            "gain_pct": 100.0 * (1 - nxt["latency_s"] / r["latency_s"]),
                            "macs_added_pct": 100.0 * (nxt["macs"] / r["macs"] - 1)})
    return out


# --- everything ---------------------------------------------------------------------------------------------------


def model_pair(inputs: StudyInputs) -> tuple[str, str] | None:
    """The two models of table 3: the built-in LeNet-5 and ResNet-20, else the first two by MACs."""
    names = [m["name"] for m in inputs.models]
    if "lenet5" in names and "resnet20" in names:
        return "lenet5", "resnet20"
    if len(names) < 2:
        return None

    def macs(n):
        m = next(x for x in inputs.models if x["name"] == n)
        return next(iter(m["files"].values())).get("macs", 0)

    a, b = names[:2]
    return (a, b) if macs(a) <= macs(b) else (b, a)


def compute(inputs: StudyInputs) -> dict:
    runs = run_table(inputs)
    sweep = sweep_tables(inputs)
    data = {"meta": inputs.meta, "boards": inputs.boards,
            "models": [{k: v for k, v in m.items()} for m in inputs.models],
            "runs": runs, "memory": memory_table(inputs, runs), "fit": fit_matrix(runs),
            "speedups": speedup_table(inputs, runs), "ratios": ratio_table(inputs, runs, model_pair(inputs)),
            "energy": energy_table(inputs, runs), "pareto": pareto_table(inputs, runs),
            "layers": layer_table(inputs, runs), "sweeps": sweep, "conv_add_filter": conv_add_filter_gains(sweep),
            "accuracy": inputs.accuracy, "pair": model_pair(inputs)}
    from costmodel.study.findings import findings

    data["findings"] = findings(data)
    return data
