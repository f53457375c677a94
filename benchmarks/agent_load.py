"""Load benchmark of the measurement agent: N concurrent clients send M requests each to an agent with
K virtual boards over a real loopback socket. Prints per board count the throughput, p50/p99 latency per
request, and checks that every request got exactly one result (journal rows, no duplicates, all done,
each measured once).

The agent runs as ``measure-agent serve`` in its own process (each board's measurements in a worker
process of their own), the clients in this one, as on a bench.

    python benchmarks/agent_load.py --boards 1,2,4 --clients 8 --requests 8 [--repetitions 3] [--rounds 3]
                                    [--model examples/lenet_int8.tflite] [--workers process|thread] [--json F]

Also printed: the CPU time per request of the board workers, the agent process and the clients: on C cores,
K boards cannot go faster than C / (their sum), whatever the agent does (the "ceiling of this CPU split";
`core_ceiling.py` gives the machine's own ceiling for plain compute).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from fuzz_models import start_agent  # noqa: E402
from measure_agent.client import AgentClient  # noqa: E402

TOKEN = "load-benchmark-token-0123456789"


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _cpu_split(agent_pid: int) -> tuple[float, float]:
    """CPU seconds so far of the agent process itself and of its board workers (its child processes)."""
    return _cpu_s(agent_pid), sum(_cpu_s(k) for k in _children(agent_pid))


def one_run(boards: int, args) -> dict:
    model = args.model.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(f'[agent]\nlisten = "127.0.0.1:0"\njournal = "journal.sqlite"\nworkers = "{args.workers}"\n'
                          f'[clients]\nload = "{TOKEN}"\n[[boards]]\nkind = "virtual"\ntarget = "{args.target}"\n'
                          f'count = {boards}\n')
        proc, port = start_agent(config)
        address = f"127.0.0.1:{port}"
        try:
            # Warm-up: every board builds/loads its firmware and the plan once, so the figures are about serving.
            with AgentClient(address, TOKEN) as client:
                for b in range(boards):
                    client.measure(model, args.target, repetitions=1, request_id=f"warm-up-{b}",
                                   board_id=f"vb-{args.target.lower()}-{b}")
            latencies: list[float] = []
            failures: list[str] = []
            sent_ids: list[str] = []
            lock = threading.Lock()

            def worker(n: int) -> None:
                with AgentClient(address, TOKEN) as client:
                    for _ in range(args.requests):
                        rid = f"load-{n}-{uuid.uuid4().hex[:8]}"
                        start = time.perf_counter()
                        try:
                            result = client.measure(model, args.target, repetitions=args.repetitions,
                                                    request_id=rid)
                            ok = result.request_id == rid
                        except Exception as exc:  # report, do not stop the benchmark
                            ok = False
                            with lock:
                                failures.append(f"{rid}: {exc}")
                        with lock:
                            sent_ids.append(rid)
                            if ok:
                                latencies.append(time.perf_counter() - start)

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.clients)]
            agent_cpu0, workers_cpu0 = _cpu_split(proc.pid)
            own_cpu0 = time.process_time()
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            agent_cpu, workers_cpu = (a - b for a, b in zip(_cpu_split(proc.pid), (agent_cpu0, workers_cpu0)))
            clients_cpu = time.process_time() - own_cpu0
        finally:
            proc.terminate()
            proc.wait(60)
        db = sqlite3.connect(Path(tmp) / "journal.sqlite")
        rows = db.execute("SELECT request_id, state, attempts FROM requests WHERE request_id LIKE 'load-%'").fetchall()
        db.close()
    total = args.clients * args.requests
    lat = np.array(latencies) * 1e3
    exactly_once = (len(rows) == total and all(state == "done" and attempts == 1 for _, state, attempts in rows)
                    and len(set(sent_ids)) == total and len(latencies) == total)
    return {"boards": boards, "requests": total, "answered": len(latencies), "failed": len(failures),
            "wall_s": wall, "rps": len(latencies) / wall, "p50_ms": float(np.percentile(lat, 50)) if len(lat) else 0.0,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else 0.0, "exactly_once": exactly_once,
            "failures": failures[:5],
            "cpu_ms_per_request": {"workers": 1e3 * workers_cpu / total, "agent": 1e3 * agent_cpu / total,
                                   "clients": 1e3 * clients_cpu / total}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--boards", default="1,2,4", help="board counts to run, e.g. 1,2,4")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the board counts this many times in turn and report each count's median round "
                             "(other load on the machine then hits every count alike)")
    parser.add_argument("--target", default="NUCLEO-L4R5ZI")
    parser.add_argument("--model", type=Path, default=REPO / "examples" / "lenet_int8.tflite")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per request (the agent's default: 3)")
    parser.add_argument("--workers", choices=("process", "thread"), default="process",
                        help="board workers in processes of their own (default) or threads of the agent")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    counts = [int(b) for b in args.boards.split(",")]
    print(f"agent load: {args.clients} clients x {args.requests} requests, model {args.model.name}, "
          f"{args.repetitions} repetitions, virtual {args.target} boards, workers: {args.workers}, "
          f"{args.rounds} round(s), {os.cpu_count()} cores")
    header = (f"  {'boards':>6} {'req/s':>7} {'speed-up':>8} {'p50 ms':>8} {'p99 ms':>8}  "
              f"{'CPU ms per request: workers agent clients':>42}  exactly once")
    rounds: dict[int, list[dict]] = {n: [] for n in counts}
    for r in range(args.rounds):
        if args.rounds > 1:
            print(f"round {r + 1}")
        print(header)
        for boards in counts:
            run = one_run(boards, args)
            rounds[boards].append(run)
            _print_run(run, rounds[counts[0]][-1]["rps"])
    if args.rounds > 1:
        print(f"median of {args.rounds} rounds")
        print(header)
    medians = {n: sorted(runs, key=lambda run: run["rps"])[len(runs) // 2] for n, runs in rounds.items()}
    if args.rounds > 1:
        for boards in counts:
            _print_run(medians[boards], medians[counts[0]]["rps"])
    # What the CPU split allows: with every core busy, C cores serve C / (CPU per request) requests a second
    # (the clients run on this machine too; on a bench they would not)
    base = medians[counts[0]]["rps"]
    ceilings = {}
    for boards in counts[1:]:
        per_round = [run["rps"] / first["rps"] for run, first in zip(rounds[boards], rounds[counts[0]])]
        cpu_ms = sum(medians[boards]["cpu_ms_per_request"].values())
        cores = min(boards, os.cpu_count() or 1)
        ceilings[boards] = cores * 1e3 / cpu_ms / base if base else 0.0
        print(f"  {boards} boards: speed-up per round " + " ".join(f"{u:.2f}x" for u in per_round)
              + f" (median {statistics.median(per_round):.2f}x); the ceiling of this CPU split {ceilings[boards]:.2f}x "
              f"({cores} cores / {cpu_ms:.1f} ms per request)")
    if args.json:
        args.json.write_text(json.dumps({"rounds": {str(n): runs for n, runs in rounds.items()},
                                         "median": {str(n): run for n, run in medians.items()},
                                         "ceiling": {str(n): c for n, c in ceilings.items()}}, indent=1))
    every = [run for runs in rounds.values() for run in runs]
    sys.exit(0 if all(run["exactly_once"] and not run["failed"] for run in every) else 1)


def _print_run(run: dict, first_rps: float) -> None:
    speedup = run["rps"] / first_rps if first_rps else 0.0
    cpu = run["cpu_ms_per_request"]
    print(f"  {run['boards']:>6} {run['rps']:>7.2f} {speedup:>7.2f}x {run['p50_ms']:>8.1f} {run['p99_ms']:>8.1f}  "
          f"{cpu['workers']:>28.1f} {cpu['agent']:>5.1f} {cpu['clients']:>7.1f}  {run['exactly_once']} "
          f"({run['answered']}/{run['requests']} answered, {run['failed']} failed)", flush=True)
    for failure in run["failures"]:
        print(f"      failure: {failure}")


if __name__ == "__main__":
    main()
