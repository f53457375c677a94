"""Load benchmark of the measurement agent: N concurrent clients send M requests each to an agent with
K virtual boards over a real loopback socket. Prints per board count the throughput, p50/p99 latency per
request, and checks that every request got exactly one result (journal rows, no duplicates, all done,
each measured once).

The agent runs as ``measure-agent serve`` in its own process (each board's measurements in a worker
process of their own), the clients in this one, as on a bench.

    python benchmarks/agent_load.py --boards 1,2,4 --clients 8 --requests 8 [--repetitions 3]
                                    [--model examples/lenet_int8.tflite] [--workers process|thread]
"""

from __future__ import annotations

import argparse
import sqlite3
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
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
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
            "failures": failures[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--boards", default="1,2,4", help="board counts to run, e.g. 1,2,4")
    parser.add_argument("--target", default="NUCLEO-L4R5ZI")
    parser.add_argument("--model", type=Path, default=REPO / "examples" / "lenet_int8.tflite")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per request (the agent's default: 3)")
    parser.add_argument("--workers", choices=("process", "thread"), default="process",
                        help="board workers in processes of their own (default) or threads of the agent")
    args = parser.parse_args()

    print(f"agent load: {args.clients} clients x {args.requests} requests, model {args.model.name}, "
          f"{args.repetitions} repetitions, virtual {args.target} boards, workers: {args.workers}")
    print(f"  {'boards':>6} {'req/s':>7} {'speed-up':>8} {'p50 ms':>8} {'p99 ms':>8}  exactly once")
    runs = []
    for boards in [int(b) for b in args.boards.split(",")]:
        run = one_run(boards, args)
        runs.append(run)
        speedup = run["rps"] / runs[0]["rps"] if runs[0]["rps"] else 0.0
        print(f"  {boards:>6} {run['rps']:>7.2f} {speedup:>7.2f}x {run['p50_ms']:>8.1f} {run['p99_ms']:>8.1f}  "
              f"{run['exactly_once']} ({run['answered']}/{run['requests']} answered, {run['failed']} failed)",
              flush=True)
        for failure in run["failures"]:
            print(f"      failure: {failure}")
    sys.exit(0 if all(r["exactly_once"] and not r["failed"] for r in runs) else 1)


if __name__ == "__main__":
    main()
