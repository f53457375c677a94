"""How long ``costmodel study`` takes: a first run (a fresh store and, with ``--fresh-cache``, a fresh cache root:
every firmware built, the built-in models trained and converted, the sweeps' networks converted) and a second
run on the same store (everything reused). Prints wall and CPU seconds of each run and the study's own seconds
per stage, so the time can be read on a machine shared with other work (CPU seconds / cores is the wall time of
an idle machine, roughly).

    python benchmarks/study_time.py [--fresh-cache] [--keep DIR] [-- extra study options]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(folder: Path, extra: list[str], env: dict) -> dict:
    cmd = [sys.executable, "-m", "costmodel.cli", "study", "--store", str(folder / "store.sqlite"),
           "--out", str(folder / "out"), "--json", *extra]
    cpu0, t0 = _children_cpu(), time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    if done.returncode != 0:
        sys.exit(f"study failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "counts": summary["counts"],
            "stages_s": summary["seconds"], "verdicts": {f["key"]: f["verdict"] for f in summary["findings"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh-cache", action="store_true", help="a new, empty cache root for the first run")
    ap.add_argument("--keep", type=Path, help="folder for the store, the report and the cache (default: temporary)")
    ap.add_argument("extra", nargs="*", help="options passed to costmodel study (after --)")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="study-time-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.fresh_cache:
        env["MCU_NAS_CACHE"] = str(folder / "cache")
    load = os.getloadavg()[0]
    first = run(folder, args.extra, env)
    second = run(folder, args.extra, env)
    print(json.dumps({"folder": str(folder), "cores": os.cpu_count(), "load_average_at_start": round(load, 1),
                      "first": first, "second": second}, indent=1))


if __name__ == "__main__":
    main()
