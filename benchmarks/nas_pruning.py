"""The same search budget with and without the cost model's pruning and repair.

For each sampler and seed, searches of the ``cnn`` space on digits for a virtual NUCLEO-L496ZG, each with a
fresh study, measurement store and candidate cache: ``with`` (the learned cost model, starting from an empty
store, prunes over-budget and known-inferior candidates and repairs them where the space can express the
faster parametrization; the ``known`` rule reuses the measurement of an architecture measured before),
``without`` (no rules but the exact fit check: every candidate that fits is measured, except a model whose
very bytes were measured before) and ``warm`` (``with`` on a copy of the store of one earlier search, as a
lab's shared store would be).

The quality comparison is paired by default (``--pairing replay``): the ``without`` search replays the
parameters the ``with`` search's sampler drew, in order, so both evaluate the same candidates and a lower
``with`` hypervolume can only come from what the rules pruned or repaired. (``--pairing independent``: the
``without`` search samples for itself with the same seed; with two trials in flight the samplers' draws
interleave differently, so the two see mostly different candidates and the hypervolumes differ by chance.)
Reported:

- candidates evaluated per minute (after the TensorFlow workers started), of a search of untrained
  candidates (objectives latency and energy: no training) and of the accuracy search;
- measurements made on the board and saved by each rule (a pruned candidate is neither measured nor trained;
  ``known``: the measurement of the same model or architecture was reused), and why each candidate the
  ``with`` search measured was not pruned (no prediction yet, predicted within the budget, or predicted over
  it without the confidence to prune);
- the hypervolume of the final Pareto front (accuracy up, latency down; reference: accuracy 0 and the
  latency budget), which pruning must not lower;
- the mean time per trial of each stage (build, convert, analyse, predict, measure, learn, train);
- the oracle's share (of the ``without`` search, which measured every candidate): what a rule that knew each
  candidate's measured values could have saved, pruning what was over a budget or covered by a trial complete
  when the candidate started; the ceiling for the cost model's rules on that sequence;
- the audit of the budget rule (``with`` and ``warm``): every candidate it pruned is measured after the
  search; one measured within the budget is a false prune, the only way pruning can lose a front point; and
  of the ``known`` rule: every reused measurement of another model of the same architecture is measured
  again, and the largest latency difference reported; and of the ``dominated`` rule: every candidate it pruned
  is measured after the search, and one that no measured trial within the budgets dominates after all is a
  false prune.

Usage::

    .venv/bin/python benchmarks/nas_pruning.py [--trials 60] [--seeds 0 1] [--samplers tpe random]
        [--max-latency 0.6ms] [--epochs 1] [--throughput-trials 100] [--pairing replay|independent]
        [--no-warm] [--no-audit] [--json out/nas_pruning.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.adapter import Lab  # noqa: E402
from nas.datasets import digits  # noqa: E402
from nas.objectives import Budgets, parse_objectives  # noqa: E402
from nas.pareto import covers, hypervolume  # noqa: E402
from nas.search import STAGES, Search, SearchConfig, effective_params  # noqa: E402
from nas.spaces import get_space  # noqa: E402
from nas.storage import open_storage  # noqa: E402

TARGET = "NUCLEO-L496ZG"


def remeasure(search: Search, lab: Lab, trial, name: str):
    """The measurement of a pruned trial's model (from the store if it was measured already), or None."""
    with search.workers.worker() as w:
        built = w.replay(effective_params(trial))
    m = lab.stored(built.tflite)
    if m is None:
        m, _, _ = lab.measure(built.tflite, name=f"{name}#{trial.number}")
    return m


def audit(search: Search, lab: Lab, study, budgets: Budgets) -> dict:
    """Measure every candidate the budget rule pruned (after the search): those within every budget were
    false prunes."""
    pruned = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("outcome") == "pruned"
              and str(t.user_attrs.get("rule", "")).startswith("budget:")]
    within = []
    for t in pruned:
        m = remeasure(search, lab, t, "audit")
        if m is None:
            continue
        values = {"latency": m.latency_s, "energy": m.energy_j}
        if not budgets.over(values):
            within.append({"trial": t.number, "measured_ms": m.latency_s * 1e3,
                           "predicted_ms": t.user_attrs["prediction"]["latency_s"] * 1e3})
    return {"checked": len(pruned), "within_budget": len(within), "false_prunes": within}


def audit_known(search: Search, lab: Lab, study) -> dict:
    """Measure again every candidate whose measurement was reused from another model of the same architecture:
    the reuse is exact when the latency is the same."""
    reused = [t for t in study.get_trials(deepcopy=False) if (t.user_attrs.get("measurement") or {}).get("from_store")
              and t.user_attrs.get("reason", "").startswith("the same architecture")]
    worst = 0.0
    for t in reused:
        with search.workers.worker() as w:
            built = w.replay(effective_params(t))
        m, failure, _ = lab.measure(built.tflite, name=f"audit-known#{t.number}")
        if m is not None:
            worst = max(worst, abs(m.latency_s / t.user_attrs["measurement"]["latency_s"] - 1))
    return {"checked": len(reused), "max_latency_difference_pct": worst * 100}


def audit_dominated(search: Search, lab: Lab, study) -> dict:
    """Measure every candidate the dominated rule pruned (after the search): one that no measured trial within the
    budgets dominates, with its measured values, was a false prune."""
    objectives = search.config.objectives
    trials = study.get_trials(deepcopy=False)
    points = [dict(zip([o.name for o in objectives], t.values)) for t in trials
              if t.values and all(v <= 0 for v in t.constraints.values())]
    pruned = [t for t in trials if t.user_attrs.get("outcome") == "pruned" and t.user_attrs.get("rule") == "dominated"]
    false = []
    for t in pruned:
        m = remeasure(search, lab, t, "audit-dominated")
        if m is None:
            continue
        values = {"latency": m.latency_s, "energy": m.energy_j, "ram": float(m.arena_bytes), "flash": float(m.plan_bytes),
                  "accuracy": (t.user_attrs.get("accuracy") or {}).get("int8")}
        if search.config.budgets.over(values):
            continue
        names, directions = [o.name for o in objectives], [o.direction for o in objectives]
        if not any(covers([p[n] for n in names], [values[n] for n in names], directions) for p in points):
            false.append({"trial": t.number, "dominated_by": t.user_attrs.get("dominated_by"),
                          "measured_ms": m.latency_s * 1e3,
                          "predicted_ms": t.user_attrs["prediction"]["latency_s"] * 1e3})
    return {"checked": len(pruned), "not_dominated": len(false), "false_prunes": false}


def why_measured(trials, budgets: Budgets) -> dict:
    """Why each candidate measured on the board was not pruned by the budget rule."""
    why: Counter = Counter()
    for t in trials:
        m, p = t.user_attrs.get("measurement"), t.user_attrs.get("prediction")
        if not m or m.get("from_store"):
            continue
        if not p:
            why["no prediction yet"] += 1
        elif budgets.latency is not None and p["latency_s"] > budgets.latency:
            why["predicted over budget, not confidently"] += 1
        else:
            why["predicted within budget"] += 1
    return dict(why)


def oracle(trials, objectives: list, budgets: Budgets) -> dict:
    """What a rule that knew every candidate's measured values in advance could save on a search in which every
    candidate was measured (the ``without`` search): a candidate measured over a budget, or covered by a trial
    that this rule let through and that was complete when the candidate started (candidates in flight cannot
    see each other). No sound rule of the budget/dominated kind saves more on the same sequence, so the share
    is the ceiling the cost model's rules are measured against."""
    names, directions = [o.name for o in objectives], [o.direction for o in objectives]
    measured = [t for t in trials if (t.user_attrs.get("measurement") or {}) and t.datetime_start is not None
                and not t.user_attrs["measurement"].get("from_store")]
    measured.sort(key=lambda t: t.datetime_start)
    kept: list = []                           # (complete time, values) of the candidates the oracle measured
    saved = Counter()
    for t in measured:
        m = t.user_attrs["measurement"]
        values = {"latency": m["latency_s"], "energy": m["energy_j"],
                  "ram": float(m.get("arena_bytes") or 0), "flash": float(m.get("plan_bytes") or 0)}
        if budgets.over(values):
            saved["over budget"] += 1
            continue
        values["accuracy"] = (t.user_attrs.get("accuracy") or {}).get("int8")
        point = [values[n] for n in names]
        if None not in point and any(done < t.datetime_start and covers(q, point, directions) for done, q in kept):
            saved["dominated"] += 1
            continue
        kept.append((t.datetime_complete, point))
    total = len(measured)
    return {"measured": total, "saved": dict(saved), "share": sum(saved.values()) / max(1, total)}


def run(mode: str, seed: int, trials: int, objectives: str, budgets: Budgets, epochs: int, jobs: int,
        sampler: str = "tpe", warm_store: Path | None = None, keep_store: Path | None = None,
        audit_prunes: bool = True, replay: list[dict] | None = None) -> dict:
    """One search in a fresh folder: ``mode`` "without" (no cost-model rules, no reuse by architecture), "with"
    (an empty store: the cost model starts from nothing) or "warm" (with, on a copy of ``warm_store``: what an
    earlier search measured). ``replay``: the parameters of the trials, in order (instead of the sampler's)."""
    work = Path(tempfile.mkdtemp(prefix=f"nas-bench-{mode}-"))
    try:
        storage = f"sqlite:///{work}/studies.db"
        if warm_store is not None:
            shutil.copy(warm_store, work / "store.sqlite")
        lab = Lab(TARGET, str(work / "store.sqlite"))
        config = SearchConfig(study=f"{mode}-{seed}", storage=storage, trials=trials, target=TARGET,
                              space=get_space("cnn"), space_module=None, dataset=digits(), dataset_spec=None,
                              objectives=parse_objectives(objectives), budgets=budgets, sampler=sampler, seed=seed,
                              cost_model_rules=(mode != "without"), reuse=(mode != "without"), epochs=epochs, jobs=jobs,
                              candidate_cache=str(work / "candidates"))
        search = Search(config, lab)
        try:
            study = search.open_study(open_storage(storage))
            for params in replay or []:
                study.enqueue_trial(params)
            summary = search.run()
            audit_s = time.monotonic()
            false_prunes = audit(search, lab, study, budgets) if audit_prunes and mode != "without" else None
            known = audit_known(search, lab, study) if audit_prunes and mode != "without" else None
            dominated = audit_dominated(search, lab, study) if audit_prunes and mode != "without" else None
            audit_s = time.monotonic() - audit_s
        finally:
            search.close()
            lab.close()
        if keep_store is not None:
            shutil.copy(work / "store.sqlite", keep_store)
        trials_ = study.get_trials(deepcopy=False)
        d = summary.to_dict()
        out = {"mode": mode, "sampler": sampler, "seed": seed, "objectives": objectives,
               "trials": d["trials_this_worker"],
               "seconds": d["seconds"], "startup_seconds": d["startup_seconds"],
               "candidates_per_minute": d["candidates_per_minute"], "outcomes": d["outcomes"], "rules": d["rules"],
               "measurements": d["measurements"], "measurements_from_store": d["measurements_from_store"],
               "trained": d["trained"],
               "stage_seconds_per_trial": {s: d["stage_seconds"][s] / max(1, d["trials_this_worker"])
                                           for s in STAGES}}
        trials_ = sorted(trials_, key=lambda t: t.number)
        pruned_by_rule = {}
        for t in trials_:
            rule = t.user_attrs.get("rule")
            if (t.user_attrs.get("measurement") or {}).get("from_store"):
                rule = "known"
            elif t.user_attrs.get("outcome") != "pruned" or not rule or rule.startswith("measured:"):
                continue
            pruned_by_rule[rule] = pruned_by_rule.get(rule, 0) + 1
        out["measurements_saved"] = pruned_by_rule
        if mode == "without":
            out["oracle"] = oracle(trials_, config.objectives, budgets)
        out["why_measured"] = why_measured(trials_, budgets)
        out["params_sequence"] = [t.params for t in trials_ if t.user_attrs.get("outcome") != "interrupted"]
        out["budget_rule_audit"] = false_prunes
        out["known_rule_audit"] = known
        out["dominated_rule_audit"] = dominated
        out["audit_seconds"] = round(audit_s, 1)
        errors = [abs(t.user_attrs["prediction"]["latency_s"] / t.user_attrs["measurement"]["latency_s"] - 1) * 100
                  for t in trials_ if t.user_attrs.get("prediction") and t.user_attrs.get("measurement")
                  and not t.user_attrs["measurement"]["from_store"]]
        out["cost_model_median_error_pct"] = statistics.median(errors) if errors else None
        out["cost_model_median_error_last20_pct"] = statistics.median(errors[-20:]) if errors else None
        if objectives.startswith("accuracy"):
            feasible = [t for t in trials_ if t.values and all(v <= 0 for v in t.constraints.values())]
            points = [(t.values[0], t.values[1]) for t in feasible]
            reference = (0.0, budgets.latency or max(p[1] for p in points))
            out["hypervolume"] = hypervolume(points, reference, ["maximize", "minimize"]) if points else 0.0
            out["hypervolume_reference"] = reference
            out["front"] = sorted([{"trial": f["trial"], "accuracy": f["values"]["accuracy"],
                                    "latency_ms": f["values"]["latency"] * 1e3} for f in summary.front],
                                  key=lambda f: f["latency_ms"])
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def saved_share(r: dict) -> float:
    saved = sum(r["measurements_saved"].values())
    return saved / max(1, saved + r["measurements"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--throughput-trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    ap.add_argument("--max-latency", default="0.6ms")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pairing", choices=["replay", "independent"], default="replay",
                    help="replay: the without search evaluates the with search's candidates (paired); "
                         "independent: it samples for itself.")
    ap.add_argument("--no-warm", action="store_true", help="Skip the searches on a store of an earlier search.")
    ap.add_argument("--no-audit", action="store_true",
                    help="Do not measure the budget rule's pruned candidates.")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    budgets = Budgets.parse(latency=args.max_latency)
    results = {"command": " ".join(["benchmarks/nas_pruning.py", *(argv if argv is not None else sys.argv[1:])]),
               "target": TARGET, "budget": args.max_latency, "throughput": [], "quality": [],
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_at_start": os.getloadavg()}

    def show(r: dict) -> str:
        a, k = r.get("budget_rule_audit"), r.get("known_rule_audit")
        audited = f", false prunes {a['within_budget']} of {a['checked']}" if a else ""
        dom = r.get("dominated_rule_audit")
        if dom and dom["checked"]:
            audited += f", dominated re-measured {dom['checked']}: not dominated {dom['not_dominated']}"
        if k and k["checked"]:
            audited += f", known re-measured {k['checked']}: max difference {k['max_latency_difference_pct']:.2f} %"
        if r["mode"] != "without":
            audited += f", measured because {r['why_measured']}"
        if r.get("oracle"):
            audited += f", an oracle would save {r['oracle']['saved']} ({r['oracle']['share']:.0%})"
        return (f"{r['candidates_per_minute']} candidates/min, {r['measurements']} measured, saved "
                f"{r['measurements_saved']} ({saved_share(r):.0%}){audited}, from store "
                f"{r['measurements_from_store']}, failed {r['outcomes'].get('failed', 0)}, "
                f"trained {r['trained']}, {r['seconds']:.0f} s, load {os.getloadavg()[0]:.1f}")

    for mode in ("without", "with"):
        r = run(mode, args.seeds[0], args.throughput_trials, "latency,energy", budgets, args.epochs,
                args.jobs, audit_prunes=not args.no_audit)
        results["throughput"].append(r)
        print(f"untrained {mode:7s}: {show(r)}", flush=True)
    warm = None
    if not args.no_warm:
        warm = Path(tempfile.mkdtemp(prefix="nas-bench-warm-")) / "store.sqlite"
        r = run("without", 1000, args.trials, "accuracy,latency", budgets, args.epochs, args.jobs, sampler="random",
                keep_store=warm)
        print(f"warm-up search (random, seed 1000) for the warm store: {show(r)}", flush=True)
    for sampler in args.samplers:
        for seed in args.seeds:
            modes = ["with", "without"] + (["warm"] if warm is not None else [])
            sequence = None
            for mode in modes:
                replay = sequence if mode == "without" and args.pairing == "replay" else None
                r = run(mode, seed, args.trials, "accuracy,latency", budgets, args.epochs, args.jobs, sampler=sampler,
                        warm_store=warm if mode == "warm" else None, audit_prunes=not args.no_audit, replay=replay)
                r["paired"] = replay is not None
                sequence = sequence or r["params_sequence"]
                results["quality"].append(r)
                print(f"{sampler} seed {seed} {mode:7s}{' (replay)' if replay else ''}: HV {r['hypervolume']:.6f}, "
                      f"{show(r)}", flush=True)
    summary = {}
    for sampler in args.samplers:
        for mode in ("without", "with", "warm"):
            rs = [r for r in results["quality"] if r["mode"] == mode and r["sampler"] == sampler]
            if not rs:
                continue
            saved = Counter()
            for r in rs:
                saved.update(r["measurements_saved"])
            summary[f"{sampler}/{mode}"] = {
                "mean_hypervolume": statistics.mean(r["hypervolume"] for r in rs),
                "hypervolumes": [round(r["hypervolume"], 6) for r in rs],
                "saved_by_rule": dict(saved),
                "mean_measurements": statistics.mean(r["measurements"] for r in rs),
                "mean_saved_share": statistics.mean(saved_share(r) for r in rs),
                "mean_oracle_share": (statistics.mean(r["oracle"]["share"] for r in rs)
                                      if all(r.get("oracle") for r in rs) else None),
                "mean_candidates_per_minute": statistics.mean(r["candidates_per_minute"] or 0 for r in rs),
                "false_prunes": sum((r.get("budget_rule_audit") or {}).get("within_budget", 0)
                                    for r in rs),
                "budget_prunes_audited": sum((r.get("budget_rule_audit") or {}).get("checked", 0)
                                             for r in rs),
                "dominated_false_prunes": sum((r.get("dominated_rule_audit") or {}).get("not_dominated", 0)
                                              for r in rs),
                "dominated_prunes_audited": sum((r.get("dominated_rule_audit") or {}).get("checked", 0)
                                                for r in rs),
                "mean_trained": statistics.mean(r["trained"] for r in rs),
                "stage_seconds_per_trial": {s: statistics.mean(r["stage_seconds_per_trial"][s] for r in rs)
                                            for s in STAGES}}
    results["summary"] = summary
    results["load_average_at_end"] = os.getloadavg()
    for key, v in summary.items():
        audited = (f", false prunes {v['false_prunes']} of {v['budget_prunes_audited']}"
                   if v["budget_prunes_audited"] else "")
        if v["dominated_prunes_audited"]:
            audited += f", dominated not dominated {v['dominated_false_prunes']} of {v['dominated_prunes_audited']}"
        if v["mean_oracle_share"] is not None:
            audited += f", an oracle would save {v['mean_oracle_share']:.0%}"
        audited += f", trained {v['mean_trained']:.1f}"
        print(f"{key:14s}: mean HV {v['mean_hypervolume']:.6f} {v['hypervolumes']}, measurements "
              f"{v['mean_measurements']:.1f}, saved {v['mean_saved_share']:.0%} {v['saved_by_rule']}{audited}, "
              f"{v['mean_candidates_per_minute']:.1f} "
              "candidates/min; s/trial "
              + ", ".join(f"{s} {x:.3f}" for s, x in v["stage_seconds_per_trial"].items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    if warm is not None:
        shutil.rmtree(warm.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
