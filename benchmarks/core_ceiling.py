"""What this machine's cores allow: the speed-up of N processes of plain CPU work over one.

`agent_load.py` asks for throughput that grows with boards "up to the cores"; on a shared or virtual
machine two processes rarely get two full cores. This prints the ceiling any N-board agent can reach here:
the same fixed work (a pure Python loop, no I/O, no shared state) in 1 and in N processes at once.

    python benchmarks/core_ceiling.py [--processes 1,2] [--seconds 2] [--rounds 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path


def _spin(seconds: float, out) -> None:
    """Count loop iterations for `seconds` of wall clock."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for _ in range(10_000):
            n += 1
    out.put(n)


def work_rate(processes: int, seconds: float) -> float:
    """Iterations per second summed over `processes` processes running at once."""
    out = mp.Queue()
    procs = [mp.Process(target=_spin, args=(seconds, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2", help="process counts, e.g. 1,2,4; speed-ups are over the first")
    parser.add_argument("--seconds", type=float, default=2.0, help="wall clock per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    try:
        counts = [int(c) for c in args.processes.split(",")]
    except ValueError:
        parser.error(f"--processes: comma-separated counts, e.g. 1,2 (got {args.processes!r})")
    if min(counts) < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--processes counts and --rounds must be at least 1, --seconds above 0")
    rates: dict[int, list[float]] = {c: [] for c in counts}
    for _ in range(args.rounds):
        for c in counts:
            rates[c].append(work_rate(c, args.seconds))
    base = statistics.median(rates[counts[0]])
    print(f"core ceiling: {os.cpu_count()} cores, {args.rounds} round(s) of {args.seconds:g} s")
    print("  processes  speed-up (median)  rounds")
    rows = []
    for c in counts:
        ups = [r / base for r in rates[c]]
        rows.append({"processes": c, "speedup": statistics.median(ups), "rounds": ups})
        print(f"  {c:>9}  {statistics.median(ups):>16.2f}x  " + " ".join(f"{u:.2f}" for u in ups))
    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
