"""Kill benchmark: the agent (``measure-agent serve``, its own process) is SIGKILLed at random points while
clients keep sending requests, then started again, ``--kills`` times. Clients use their retries (the same
request id after a lost connection, as a search does). At the end every request must have exactly one
outcome (one result or one error), none lost, none duplicated:

* every request a client sent is in the journal once, in a final state;
* a client's answer is the journal's (the result it got is the one stored; an error it got is the one
  journaled), and GetResult gives the same again;
* requests that were running when the agent died were run again (counted), never answered twice.

    python benchmarks/agent_kill_loop.py --kills 20 [--clients 4] [--boards 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOKEN = "kill-loop-token-0123456789"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(kills: int = 20, clients: int = 4, boards: int = 2, seed: int = 1, model: Path | None = None,
        target: str = "NUCLEO-L4R5ZI", min_gap_s: float = 1.0, max_gap_s: float = 5.0,
        log=print) -> dict:
    """Run the kill loop; returns the counts (see the module docstring)."""
    from measure_agent.client import AgentClient, AgentError
    from measure_agent.journal import FINAL, Journal
    from protos import agent_pb2 as pb

    sys.path.insert(0, str(REPO / "benchmarks"))
    from fuzz_models import start_agent

    rng = random.Random(seed)
    model_bytes = (model or REPO / "examples" / "lenet_int8.tflite").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        config = Path(tmp) / "bench.toml"
        config.write_text(f'[agent]\nlisten = "127.0.0.1:{port}"\njournal = "journal.sqlite"\n'
                          f'[clients]\nkill = "{TOKEN}"\n[[boards]]\nkind = "virtual"\ntarget = "{target}"\n'
                          f'count = {boards}\n')
        proc, _ = start_agent(config)
        stop = threading.Event()
        lock = threading.Lock()
        answers: dict[str, tuple[str, object]] = {}   # request id -> ("result", MeasureResult) | ("error", AgentError)
        sent: list[str] = []
        double: list[str] = []
        retries = [0]

        def client_loop(n: int) -> None:
            def retrying(message: str) -> None:
                with lock:
                    retries[0] += 1

            with AgentClient(f"127.0.0.1:{port}", TOKEN, retry_for_s=120, on_retry=retrying) as client:
                i = 0
                while not stop.is_set():
                    rid = f"kill-{n}-{i}"
                    i += 1
                    with lock:
                        sent.append(rid)
                    # every third request fails by design (a repetitions count the agent refuses): errors count too
                    reps = 1000 if i % 3 == 1 else 1
                    try:
                        outcome = ("result", client.measure(model_bytes, target, repetitions=reps, request_id=rid,
                                                            input_seed=i))
                    except AgentError as exc:
                        outcome = ("error", exc)
                    with lock:
                        if rid in answers:
                            double.append(rid)
                        answers[rid] = outcome

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        started = time.monotonic()
        for k in range(kills):
            time.sleep(rng.uniform(min_gap_s, max_gap_s))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with lock:
                in_flight = len(sent) - len(answers)
            log(f"  kill {k + 1}/{kills} at {time.monotonic() - started:.1f} s ({in_flight} requests in flight)")
            proc, _ = start_agent(config)
        time.sleep(rng.uniform(min_gap_s, max_gap_s))
        stop.set()
        for t in threads:
            t.join(300)
        hung = [t for t in threads if t.is_alive()]

        # the answers against the journal, and GetResult
        journal = Journal(Path(tmp) / "journal.sqlite")
        counts = {"kills": kills, "requests sent": len(sent), "answered": len(answers), "results": 0, "errors": 0,
                  "lost": 0, "duplicated": len(double), "answer differs from the journal": 0,
                  "GetResult differs": 0, "journal rows": 0, "journal not final": 0,
                  "run again after a kill": 0, "client retries": retries[0], "clients hung": len(hung)}
        counts["journal rows"] = journal._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        with AgentClient(f"127.0.0.1:{port}", TOKEN, retry_for_s=60) as client:
            for rid in sent:
                entry = journal.get("kill", rid)
                answer = answers.get(rid)
                if entry is None or answer is None:
                    counts["lost"] += 1
                    continue
                if entry.state not in FINAL:
                    counts["journal not final"] += 1
                counts["run again after a kill"] += entry.attempts > 1
                kind, value = answer
                if kind == "result":
                    counts["results"] += 1
                    same = entry.result is not None and pb.MeasureResult.FromString(entry.result) == value
                else:
                    counts["errors"] += 1
                    why = "given up" if "given up" in value.message else value.kind or value.code.name
                    counts.setdefault("errors by kind", {}).setdefault(why, 0)
                    counts["errors by kind"][why] += 1
                    same = entry.error_message == value.message and entry.error_code == value.code.name
                counts["answer differs from the journal"] += not same
                try:
                    again = ("result", client.result(rid))
                except AgentError as exc:
                    again = ("error", exc)
                if again[0] != kind or (kind == "result" and again[1] != value) or \
                        (kind == "error" and (again[1].code != value.code or again[1].message != value.message)):
                    counts["GetResult differs"] += 1
        counts["journal problems"] = journal.check()
        journal.close()
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:  # noqa: BLE001
            proc.kill()
    counts["exactly once"] = (counts["lost"] == counts["duplicated"] == counts["answer differs from the journal"]
                              == counts["GetResult differs"] == counts["journal not final"] == counts["clients hung"] == 0
                              and counts["journal rows"] == counts["requests sent"] == counts["answered"]
                              and not counts["journal problems"])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    print(f"kill loop: {args.kills} SIGKILLs of the agent under load ({args.clients} clients, {args.boards} virtual "
          "boards, every third request refused by the agent)")
    counts = run(args.kills, args.clients, args.boards, args.seed, args.model)
    for key, value in counts.items():
        print(f"  {key}: {value}")
    sys.exit(0 if counts["exactly once"] else 1)


if __name__ == "__main__":
    main()
