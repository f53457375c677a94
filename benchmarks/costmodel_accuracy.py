"""Accuracy of the learned cost model (δ table + regressor) on virtual boards: sweeps measured through a local
agent, a fit on part of the rows, errors on held-out layers and on held-out whole models (random CNNs never
seen in fitting), against a MACs-only linear proxy fitted on the same rows; ranking quality (Kendall τ);
the alignment effects in the fitted table; the suggest check; prediction time per model.

    python benchmarks/costmodel_accuracy.py [--targets NUCLEO-L496ZG NUCLEO-F767ZI] [--variants simd reference]
        [--size full] [--store out/costmodel_accuracy.sqlite] [--boards 2] [--json out/costmodel_accuracy.json]

Measurements go to the store (resumable: a second run measures only what is missing; rows of another
firmware or timing-model version are other contexts and are measured anew). Held out: 20 % of the sweep
networks (their layers) and the random CNNs with odd seeds (whole models); everything else is fitted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ape_summary(ape) -> dict:
    ape = np.asarray(ape, dtype=float)
    if ape.size == 0:
        return {"n": 0}
    return {"n": int(ape.size), "median": float(np.median(ape)), "p95": float(np.percentile(ape, 95)),
            "p99": float(np.percentile(ape, 99)), "max": float(ape.max()), "within_5pct": float(np.mean(ape <= 5))}


def held_out(model_row) -> bool:
    """Whole models: random CNNs with odd seeds; sweep networks: a fixed 20 % by content hash."""
    if model_row["sweep"] == "random":
        return json.loads(model_row["spec"])["params"]["seed"] % 2 == 1
    return int(model_row["model_sha256"][:8], 16) % 5 == 0


def macs_proxy_fit(layers):
    """Per context: cycles = a + b x MACs, least squares on relative error (the same rows as the model)."""
    from costmodel.features import context_of

    coef = {}
    for ctx, part in layers.groupby(layers.apply(lambda r: context_of(r), axis=1)):
        x = np.column_stack([np.ones(len(part)), part["macs"].to_numpy(float)])
        y = part["cycles"].to_numpy(float)
        w = 1 / np.maximum(y, 1)
        beta, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
        coef[ctx] = beta
    return coef


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["NUCLEO-L496ZG", "NUCLEO-F767ZI"])
    parser.add_argument("--variants", nargs="+", default=["simd", "reference"])
    parser.add_argument("--size", default="full", choices=("small", "full"))
    parser.add_argument("--sweeps", nargs="+", default=["conv", "dense", "dwconv", "pool", "add", "head", "random"])
    parser.add_argument("--store", default=str(REPO / "out" / "costmodel_accuracy.sqlite"))
    parser.add_argument("--boards", type=int, default=2, help="virtual boards per target")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--convert-workers", type=int, default=2, help="processes converting networks")
    parser.add_argument("--pool-firmware", action="store_true",
                        help="fit rows of all firmware builds of a board model version as one context (when the "
                             "firmware sources changed during the sweep)")
    parser.add_argument("--analyse-only", action="store_true", help="do not measure; use the store as it is")
    args = parser.parse_args()

    from scipy.stats import kendalltau

    from costmodel.analysis import analyze
    from costmodel.commands.sweep import plan_jobs, run_jobs
    from costmodel.features import context_of
    from costmodel.latency_model import LatencyModel
    from costmodel.store import open_store
    from costmodel.sweeps import sweep
    from costmodel.tflite import read_model
    from measure_agent.agents import AgentPool

    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    store = open_store(args.store)
    specs = [s for name in args.sweeps for s in sweep(name, args.size)]
    t0 = time.monotonic()
    jobs = plan_jobs(specs, args.targets, args.variants, workers=args.convert_workers,
                     on_convert=lambda d, n: d % 100 == 0 and print(f"converted {d}/{n}", file=sys.stderr))
    print(f"\nconverted {len(specs)} networks in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    done = [0]
    start = time.monotonic()

    def progress(outcome):
        done[0] += 1
        if done[0] % 50 == 0:
            rate = done[0] / (time.monotonic() - start)
            print(f"measured {done[0]} ({rate:.1f}/s)", file=sys.stderr)

    if not args.analyse_only:
        with AgentPool.local(args.targets, boards_per_target=args.boards) as pool:
            report = run_jobs(jobs, store, pool, on_progress=progress)
        print(f"measurements: {report.to_dict() | {'errors': report.errors[:5]}}", file=sys.stderr)
    if args.measure_only:
        return

    ids = {j.request_id for j in jobs}  # the current code's measurements only
    models = store.models()
    models = models[models["measurement_id"].isin(ids)]
    layers = store.layers()
    layers = layers[layers["measurement_id"].isin(ids)]
    builds = {k: sorted(g.unique()) for k, g in layers.groupby(["target", "runtime_variant"])["firmware_build_id"]}
    if args.pool_firmware:
        # the firmware's sources changed while the sweep ran (others work on the runtime): every build is its own
        # context, each with part of the rows; for this report, pool the builds of one board model version
        layers = layers.assign(firmware_build_id="pooled")
        models = models.assign(firmware_build_id="pooled")
    test_ids = set(models.loc[models.apply(held_out, axis=1), "measurement_id"])
    train_layers = layers[~layers["measurement_id"].isin(test_ids)]
    train_models = models[~models["measurement_id"].isin(test_ids)]
    test_layers = layers[layers["measurement_id"].isin(test_ids) & (layers["sweep"] != "random")]
    test_models = models[models["measurement_id"].isin(test_ids) & (models["sweep"] == "random")]

    t = time.monotonic()
    lm = LatencyModel().fit(train_layers, models=train_models)
    fit_s = time.monotonic() - t
    proxy = macs_proxy_fit(train_layers)
    out: dict = {"command": " ".join(["python", "benchmarks/costmodel_accuracy.py", *sys.argv[1:]]),
                 "rows": {"train_layers": len(train_layers), "train_models": len(train_models),
                          "test_layers": len(test_layers), "test_models": len(test_models)},
                 "fit_seconds": round(fit_s, 1), "contexts": {},
                 "firmware_builds": {f"{t} {v}": len(b) for (t, v), b in builds.items()},
                 "pooled_firmware_builds": bool(args.pool_firmware)}

    # held-out layers
    preds = lm.predict_layers(test_layers)
    measured = test_layers["cycles"].to_numpy(float)
    ape_l = np.abs(np.array([p.cycles for p in preds]) - measured) / measured * 100
    sigma = np.array([p.uncertainty for p in preds]) * 100
    proxy_l = np.array([proxy[context_of(r)] @ [1, r["macs"]] for r in test_layers.to_dict("records")])
    ape_pl = np.abs(proxy_l - measured) / measured * 100
    out["layers"] = {"model": ape_summary(ape_l), "macs_proxy": ape_summary(ape_pl),
                     "by_source": {s: ape_summary(ape_l[[p.source == s for p in preds]])
                                   for s in sorted({p.source for p in preds})},
                     "within_2_sigma": float(np.mean(ape_l <= 2 * sigma))}

    # held-out whole models, per context
    by_id = defaultdict(list)
    for r in layers[layers["measurement_id"].isin(set(test_models["measurement_id"]))].to_dict("records"):
        by_id[r["measurement_id"]].append(r)
    per_ctx = defaultdict(lambda: {"measured": [], "model": [], "proxy": [], "sigma": []})
    for m in test_models.to_dict("records"):
        rows = sorted(by_id[m["measurement_id"]], key=lambda r: r["layer_index"])
        ctx = context_of(m)
        p = lm.predict_rows_model(rows)
        coef = lm.contexts_[ctx].overhead_fit["coef"]
        proxy_cycles = sum(proxy[ctx] @ [1, r["macs"]] for r in rows) + coef[0] + coef[1] * len(rows)
        d = per_ctx[ctx]
        d["measured"].append(float(m["total_cycles"]))
        d["model"].append(p.cycles)
        d["proxy"].append(proxy_cycles)
        d["sigma"].append(p.uncertainty)
    all_model, all_proxy = [], []
    for ctx, d in per_ctx.items():
        meas, pred, prx = (np.array(d[k]) for k in ("measured", "model", "proxy"))
        ape_m, ape_p = np.abs(pred - meas) / meas * 100, np.abs(prx - meas) / meas * 100
        all_model += list(ape_m)
        all_proxy += list(ape_p)
        fields = dict(zip(("target", "clock_hz", "runtime_variant"), ctx[:3]))
        name = f"{fields['target']} {fields['runtime_variant']}"
        out["contexts"][name] = {
            "context": dict(zip(("target", "clock_hz", "runtime_variant", "float_abi", "opt_level", "placement",
                                 "board_kind", "board_model_version", "runtime", "firmware_build_id"), ctx)),
            "models": ape_summary(ape_m), "macs_proxy": ape_summary(ape_p),
            "kendall_tau": float(kendalltau(pred, meas).statistic),
            "kendall_tau_proxy": float(kendalltau(prx, meas).statistic),
            "within_2_sigma": float(np.mean(ape_m <= 2 * np.array(d["sigma"]) * 100))}
    out["models"] = {"model": ape_summary(all_model), "macs_proxy": ape_summary(all_proxy)}

    # alignment effects: δ (coefficient per MAC, ns) by residue of the decisive input dimension, per op
    table = lm.table()
    effects = {}
    for (target, variant, op), part in table.groupby(["target", "runtime_variant", "op"]):
        if op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
            continue
        part = part[part["usable"]]
        cls = part["in_residue"] % 4
        eff = {}
        for r in range(4):
            sel = part[cls == r]
            if len(sel):
                eff[f"in%4={r}"] = {"delta_ns": float(np.median(sel["delta_ns_per_mac"])),
                                    "effective_delta_ns": float(np.median(sel["effective_delta_ns_per_mac"])),
                                    "keys": int(len(sel))}
        effects[f"{target} {variant} {op}"] = eff
    out["alignment"] = effects
    # the paper's dense period of 16: effective δ by input length mod 16 on the dense sweep
    dense = layers[(layers["sweep"] == "dense") & (layers["op"] == "FULLY_CONNECTED")].copy()
    if not dense.empty:
        dense["delta"] = dense["latency_s"] / dense["macs"] * 1e9
        dense["r16"] = dense["input_length"] % 16
        out["dense_mod16"] = {f"{t} {v}": {int(r): float(x) for r, x in g.groupby("r16")["delta"].median().items()}
                              for (t, v), g in dense[dense["input_length"] >= 16].groupby(["target", "runtime_variant"])}

    # prediction time per model after loading: held-out random CNNs from their .tflite
    from costmodel.sweeps import tflite_bytes
    from costmodel.commands.sweep import model_cache

    randoms = [s for s in specs if s.sweep == "random"][:40]
    analyses = [analyze(read_model(tflite_bytes(s, model_cache()))) for s in randoms]
    graphs = [read_model(tflite_bytes(s, model_cache())) for s in randoms]
    target = args.targets[0]
    path = Path(args.store).with_suffix(".model.json")
    lm.save(path)
    from costmodel import load_model

    loaded = load_model(path)
    from costmodel.latency_model import UnknownKeyError

    def predictable(a, variant) -> bool:  # e.g. networks whose measurements all failed have ops without rows
        try:
            lm.predict_model(a, target=target, runtime_variant=variant)
            return True
        except UnknownKeyError:
            return False

    for variant in args.variants:
        keep = [i for i, a in enumerate(analyses) if predictable(a, variant)]
        if keep:
            break
    analyses, graphs = [analyses[i] for i in keep], [graphs[i] for i in keep]
    t = time.perf_counter()
    for a in analyses:
        loaded.predict_model(a, target=target, runtime_variant=variant)
    cold = (time.perf_counter() - t) / len(analyses)
    n = 0
    t = time.perf_counter()
    while time.perf_counter() - t < 1.0:
        for a in analyses:
            loaded.predict_model(a, target=target, runtime_variant=variant)
            n += 1
    warm = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for g in graphs:
        loaded.predict_model(g, target=target, runtime_variant=variant)
    from_graph = (time.perf_counter() - t) / len(graphs)
    out["prediction_time_us"] = {"models": len(analyses), "context": f"{target} {variant}", "first_call_per_model": cold * 1e6, "repeated_per_model": warm * 1e6,
                                 "from_graph_incl_analysis": from_graph * 1e6, "model_file_bytes": path.stat().st_size}

    # suggest: a model with an unaligned layer; measure both parametrizations
    out["suggest"] = suggest_check(loaded, args.targets, pool_factory=lambda: AgentPool.local(args.targets, 1))
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    print_summary(out)


def suggest_check(model, targets, pool_factory) -> list:
    from costmodel.commands.sweep import model_cache
    from costmodel.sweeps import NetSpec, conv, dense, tflite_bytes
    from measure_agent.agents import MeasureJob

    base = NetSpec("suggest-unaligned", (16, 16, 3), (conv(15, 3), conv(12, 3), {"type": "gap"}, dense(10)))
    data = tflite_bytes(base, model_cache())
    from costmodel.analysis import analyze
    from costmodel.tflite import read_model

    analysis = analyze(read_model(data))
    results = []
    with pool_factory() as pool:
        for target in targets:
            for variant in ("simd", "reference"):
                try:
                    alts = model.alternatives(analysis, target=target, runtime_variant=variant)
                except ValueError as exc:  # an op without rows in this context
                    results.append({"target": target, "variant": variant, "error": str(exc)})
                    continue
                if not alts:
                    results.append({"target": target, "variant": variant, "suggestion": None})
                    continue
                a = alts[0]
                layers = list(base.layers)
                layers[a.layer_index] = {**layers[a.layer_index], "filters": a.new}
                better = NetSpec("suggest-better", base.input, tuple(layers))
                jobs = [MeasureJob(data, target, runtime_variant=variant),
                        MeasureJob(tflite_bytes(better, model_cache()), target, runtime_variant=variant)]
                o = pool.measure_many(jobs)
                if not (o[0].ok and o[1].ok):
                    results.append({"target": target, "variant": variant, "suggestion": a.describe(),
                                    "predicted_gain": a.gain, "uncertainty": a.gain_uncertainty,
                                    "measure_error": o[0].error or o[1].error})
                    continue
                t0, t1 = o[0].result.latency_s, o[1].result.latency_s
                gain = (t0 - t1) / t0
                results.append({"target": target, "variant": variant, "suggestion": a.describe(),
                                "predicted_gain": a.gain, "uncertainty": a.gain_uncertainty, "measured_gain": gain,
                                "within_2_sigma": abs(gain - a.gain) <= 2 * a.gain_uncertainty})
    return results


def print_summary(out: dict) -> None:
    def s(d):
        return (f"median {d['median']:.2f} %, p95 {d['p95']:.2f} %, p99 {d['p99']:.2f} %, within ±5 % "
                f"{d['within_5pct']:.1%} (n={d['n']})") if d.get("n") else "n=0"

    print("\n== summary ==", file=sys.stderr)
    print(f"held-out layers:  model {s(out['layers']['model'])}", file=sys.stderr)
    print(f"                  MACs proxy {s(out['layers']['macs_proxy'])}", file=sys.stderr)
    print(f"held-out models:  model {s(out['models']['model'])}", file=sys.stderr)
    print(f"                  MACs proxy {s(out['models']['macs_proxy'])}", file=sys.stderr)
    for name, c in out["contexts"].items():
        print(f"  {name}: model {s(c['models'])}; tau {c['kendall_tau']:.3f} (proxy {c['kendall_tau_proxy']:.3f})",
              file=sys.stderr)
    print(f"prediction time: {out['prediction_time_us']}", file=sys.stderr)
    for r in out["suggest"]:
        print(f"suggest {r}", file=sys.stderr)


if __name__ == "__main__":
    main()
