"""Held-out-key accuracy of the pooled linear fit over each kernel's work terms (costmodel/features.py
``work_terms``), on layers measured on a virtual board: per (op, kernel), every δ-table key is left out in
turn, the pooled non-negative fit is made on the other keys' rows, and the left-out key's rows are predicted.
Prints median / p95 / max relative error per (op, kernel) (--json: also as JSON).

    python benchmarks/costmodel_terms.py [--target NUCLEO-L496ZG] [--variant simd] [--nets 160]
        [--store out/costmodel_terms.sqlite] [--analyse-only] [--terms old|new] [--json FILE]

The layers: chains of convolutions, depthwise convolutions, pooling and dense layers drawn like the NAS
``cnn`` / ``dscnn`` spaces (8x8 / 4x4 / 2x2 maps, 1-32 channels, kernels 1/3/5, strides 1/2), plus the
``conv`` / ``dwconv`` / ``dense`` small sweeps. Measurements are stored (resumable). The firmware measured is
the one this checkout builds (to check the terms against kernels on other branches, run the script from a
checkout that merges them). "before" is the work terms of ``--before`` (git revision), "after" the current ones.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def search_like_net(seed: int):
    """A chain of layers like a search's candidates (several layers per network: one conversion, many rows)."""
    from costmodel.sweeps import NetSpec, conv, dense, dwconv

    rng = random.Random(f"terms-{seed}")
    hw = rng.choice((8, 8, 8, 4, 4, 2))
    c0 = rng.choice((1, 1, 2, 3, 4))
    layers: list[dict] = []
    spatial = hw
    for _ in range(rng.randint(2, 5)):
        kind = rng.random()
        stride = rng.choice((1, 2)) if spatial >= 2 else 1
        if kind < 0.7:
            layers.append(conv(rng.randint(1, 32), rng.choice((1, 3, 5)), stride, "same"))
        elif kind < 0.9:
            layers.append(dwconv(rng.choice((3, 5)), stride, rng.choice((1, 1, 2)), "same"))
        elif spatial >= 2:
            layers.append({"type": rng.choice(("maxpool", "avgpool")), "pool": 2, "stride": 2})
            stride = 2
        else:
            continue
        spatial = -(-spatial // stride)
    layers.append({"type": rng.choice(("flatten", "gap"))})
    if rng.random() < 0.6:
        layers.append(dense(rng.randint(1, 64), "relu"))
    layers.append(dense(10))
    return NetSpec(f"terms-{seed}", (hw, hw, c0), tuple(layers), "terms", {"seed": seed})


def specs(n: int, sweeps=("conv", "dwconv", "dense")):
    from costmodel.sweeps import sweep

    return [search_like_net(i) for i in range(n)] + [s for name in sweeps for s in sweep(name, "small")]


def measure(args) -> list[str]:
    from costmodel.commands.sweep import plan_jobs, run_jobs
    from costmodel.store import open_store
    from measure_agent.agents import AgentPool

    store = open_store(args.store)
    t0 = time.monotonic()
    jobs = plan_jobs(specs(args.nets), [args.target], [args.variant], workers=1,
                     on_convert=lambda d, n: d % 20 == 0 and print(f"converted {d}/{n} "
                                                                    f"({time.monotonic() - t0:.0f} s)",
                                                                    file=sys.stderr, flush=True))
    if not args.analyse_only:
        with AgentPool.local([args.target], boards_per_target=args.boards) as pool:
            report = run_jobs(jobs, store, pool)
        print(f"measurements: {report.to_dict() | {'errors': report.errors[:5]}}", file=sys.stderr)
    return [j.request_id for j in jobs]


#: The work terms before this harness's change (the commit whose features.py the "before" column uses).
BEFORE_REV = "84ff3fd"


def features_at(rev: str):
    """costmodel/features.py as of git revision ``rev``, as a module of its own."""
    import subprocess
    import types

    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:costmodel/features.py"], check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType(f"features_{rev}")
    mod.__file__ = f"features@{rev}"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


def held_out_key_errors(rows: list[dict], work_terms) -> dict:
    """Per (op, kernel): each table key left out in turn, the pooled non-negative fit (the latency model's own
    statistics and solver, weights 1/cycles²) on the other keys' rows, the relative errors (%) on its rows."""
    from collections import defaultdict

    from costmodel.features import table_key
    from costmodel.latency_model import TableEntry, _Stats

    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        t = work_terms(r)
        groups[(r["op"], r["kernel"])][table_key(r)].append((np.fromiter(t.values(), float, len(t)),
                                                           float(r["cycles"]), tuple(t)))
    out = {}
    for group, by_key in sorted(groups.items()):
        names = next(iter(by_key.values()))[0][2]
        errors, worst = [], (0.0, None)
        for key, held in by_key.items():
            st = _Stats(len(names))
            for other, part in by_key.items():
                if other != key:
                    for x, y, _ in part:
                        st.add(x, y, 0.0)
            if st.n == 0:
                continue
            entry = TableEntry(group, names, st)
            entry.refit()
            for x, y, _ in held:
                e = abs(entry.predict(x) - y) / y * 100
                errors.append(e)
                if e > worst[0]:
                    worst = (e, key)
        if errors:
            from costmodel.features import key_text

            ape = np.asarray(errors)
            out[f"{group[0]}/{group[1]}"] = {"keys": len(by_key), "rows": int(ape.size),
                                             "median": float(np.median(ape)), "p95": float(np.percentile(ape, 95)),
                                             "max": float(ape.max()),
                                             "worst_key": key_text(worst[1]) if worst[1] else ""}
    return out


def measured_rows(store_path: str, ids: list[str], target: str, variant: str) -> list[dict]:
    from costmodel.store import open_store

    layers = open_store(store_path).layers()
    layers = layers[layers["measurement_id"].isin(set(ids)) & (layers["target"] == target) &
                    (layers["runtime_variant"] == variant)]
    return [r for r in layers.to_dict("records") if r.get("cycles") and str(r.get("kernel", "")).endswith("simd")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="NUCLEO-L496ZG")
    parser.add_argument("--variant", default="simd")
    parser.add_argument("--nets", type=int, default=600, help="search-like networks (plus the small sweeps)")
    parser.add_argument("--store", default=str(REPO / "out" / "costmodel_terms.sqlite"))
    parser.add_argument("--boards", type=int, default=1)
    parser.add_argument("--analyse-only", action="store_true", help="do not measure; use the store as it is")
    parser.add_argument("--before", default=BEFORE_REV, help="git revision of the 'before' features.py")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from costmodel import features

    ids = measure(args)
    rows = measured_rows(args.store, ids, args.target, args.variant)
    before = held_out_key_errors(rows, features_at(args.before).work_terms)
    after = held_out_key_errors(rows, features.work_terms)
    builds = sorted({str(r.get("firmware_build_id", "")) for r in rows})
    print(f"{len(rows)} SIMD layers measured on {args.target} ({args.variant}; firmware {', '.join(builds)}); "
          f"pooled fit per (op, kernel), each table key held out in turn; relative error %")
    print(f"{'op/kernel':44s} {'keys':>4s} {'rows':>5s} | {'before: median':>14s} {'p95':>7s} {'max':>7s} | "
          f"{'after: median':>13s} {'p95':>7s} {'max':>7s}  worst key after")
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name, {}), after.get(name, {})
        ref = a or b

        def cols(d):
            return " ".join(f"{d[k]:7.2f}" if d else f"{'-':>7s}" for k in ("median", "p95", "max")) if d else \
                f"{'-':>7s} {'-':>7s} {'-':>7s}"
        print(f"{name:44s} {ref['keys']:4d} {ref['rows']:5d} |        {cols(b)} |       {cols(a)}  "
              f"{a.get('worst_key', '')}")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python", "benchmarks/costmodel_terms.py",
                                                              *sys.argv[1:]]),
                                         "target": args.target, "variant": args.variant, "layers": len(rows),
                                         "firmware_builds": builds, "before_rev": args.before,
                                         "before": before, "after": after}, indent=1))


if __name__ == "__main__":
    main()
