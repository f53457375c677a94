"""Load benchmark of the measurement agent: N concurrent clients send M requests each to an agent with
K virtual boards over a real loopback socket. Prints throughput, p50/p99 latency per request, and
checks that every request got exactly one result (journal rows, no duplicates, all done).

    python benchmarks/agent_load.py --clients 8 --requests 4 --boards 2 [--model examples/lenet_int8.tflite]
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

from measure_agent.client import AgentClient  # noqa: E402
from measure_agent.service import local_config, serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--target", default="NUCLEO-L4R5ZI")
    parser.add_argument("--model", type=Path, default=REPO / "examples" / "lenet_int8.tflite")
    parser.add_argument("--repetitions", type=int, default=1)
    args = parser.parse_args()

    model = args.model.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal.sqlite"
        cfg = local_config(args.target, journal, count=args.boards)
        server, agent, port = serve(cfg)
        address, token = f"127.0.0.1:{port}", cfg.clients["local"]
        try:
            # Warm-up: build the firmware once so the figures are about serving, not compiling.
            with AgentClient(address, token) as client:
                client.measure(model, args.target, repetitions=1, request_id="warm-up")
            latencies: list[float] = []
            failures: list[str] = []
            sent_ids: list[str] = []
            lock = threading.Lock()

            def worker(n: int) -> None:
                with AgentClient(address, token) as client:
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
            server.stop(grace=2).wait()
            agent.close()
        db = sqlite3.connect(journal)
        rows = dict(db.execute("SELECT request_id, state FROM requests WHERE request_id LIKE 'load-%'").fetchall())
        db.close()

    total = args.clients * args.requests
    lat = np.array(latencies) * 1e3
    print(f"agent load: {args.clients} clients x {args.requests} requests, {args.boards} virtual "
          f"{args.target} boards, model {args.model.name}")
    print(f"  requests      {total}  answered {len(latencies)}  failed {len(failures)}")
    print(f"  wall          {wall:.2f} s   throughput {len(latencies) / wall:.2f} requests/s")
    if len(lat):
        print(f"  latency ms    p50 {np.percentile(lat, 50):.1f}   p99 {np.percentile(lat, 99):.1f}   "
              f"max {lat.max():.1f}")
    exactly_once = len(rows) == total and all(state == "done" for state in rows.values()) \
        and len(set(sent_ids)) == total
    print(f"  exactly one result per request (journal rows {len(rows)}, all done): {exactly_once}")
    for failure in failures[:5]:
        print(f"  failure: {failure}")
    sys.exit(0 if exactly_once and not failures else 1)


if __name__ == "__main__":
    main()
