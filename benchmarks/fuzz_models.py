"""Fuzz benchmark: mutated real models through `costmodel analyze` and through a served agent.

Mutations of the real models (random byte flips, truncations, and field-level mutations: tensor shapes,
types, buffer indices, quantization scales and zero points, operator inputs, outputs and opcodes, op
options, graph inputs and outputs set to boundary values) are run

* through ``costmodel analyze`` (the CLI's ``main`` in worker processes, so a crash of one case is seen as
  a crash, not as the end of the benchmark; a sample also as real subprocesses), and
* through a served agent (``measure-agent serve`` in its own process, 2 virtual boards) with the client.

Every case must end with a clear status: for analyze exit 0, or exit 2 with one ``error:`` line (exit 3
is an internal error: a bug, still one line); for the agent a gRPC status with a message. Counted: crashes
(a signal, or the agent gone), tracebacks, internal errors, and each outcome. At the end the agent must
still serve and its journal must be consistent (every request final, integrity check clean).

    python benchmarks/fuzz_models.py --cases 10000 [--agent-cases 10000] [--workers 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("MCU_NAS_SHARED_MODELS", REPO.parent / "shared" / "models"))
SEEDS = [REPO / "examples" / "lenet_int8.tflite", SHARED / "kws_ref_model.tflite", SHARED / "ad01_int8.tflite",
         SHARED / "pretrainedResnet_quant.tflite", SHARED / "kws_ref_model_float32.tflite"]
INT_VALUES = (0, 1, -1, 2, 3, 7, 8, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 1 << 20)
FLOAT_VALUES = (0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, float("inf"), float("-inf"), float("nan"), 3.4e38)
MUTATIONS = ("flip", "truncate", "field", "field", "field")


# ------------------------------------------------------------ where the fields are
def field_sites(data: bytes) -> list[tuple[int, str]]:
    """(position, kind) of the scalar fields worth mutating in a .tflite: 'i32', 'i64', 'u8', 'f32'."""
    from costmodel.tflite import _Buf

    buf = _Buf(data)
    sites: list[tuple[int, str]] = []

    def scalar(table, fid, kind):
        pos = buf.field(table, fid)
        if pos is not None:
            sites.append((pos, kind))

    def vector(table, fid, kind, size):
        vec = buf.vector(table, fid)
        if vec is not None:
            start, n = vec
            sites.append((start - 4, "i32"))  # the length itself
            sites.extend((start + size * i, kind) for i in range(min(n, 64)))

    model = buf.deref(0)
    for oc in buf.tables(model, 1):
        scalar(oc, 0, "u8")
        scalar(oc, 3, "i32")
    for sg in buf.tables(model, 2):
        vector(sg, 1, "i32", 4)
        vector(sg, 2, "i32", 4)
        for t in buf.tables(sg, 0):
            vector(t, 0, "i32", 4)            # shape
            scalar(t, 1, "u8")                # type
            scalar(t, 2, "i32")               # buffer
            q = buf.table(t, 4)
            if q is not None:
                vector(q, 2, "f32", 4)        # scales
                vector(q, 3, "i64", 8)        # zero points
                scalar(q, 6, "i32")           # axis
        for o in buf.tables(sg, 3):
            scalar(o, 0, "i32")               # opcode index
            vector(o, 1, "i32", 4)            # inputs
            vector(o, 2, "i32", 4)            # outputs
            options = buf.table(o, 4)
            if options is not None:
                for fid in range(8):
                    pos = buf.field(options, fid)
                    if pos is not None:
                        sites.append((pos, "u8" if fid in (0,) else "i32"))
    for b in buf.tables(model, 4):
        scalar(b, 1, "i64")
        scalar(b, 2, "i64")
    return sites


_SITES: dict[Path, list] = {}


def mutate(seed_path: Path, data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of ``data``: (description, mutated bytes)."""
    kind = rng.choice(MUTATIONS)
    out = bytearray(data)
    if kind == "flip":
        n = rng.choice((1, 1, 2, 4, 16))
        for _ in range(n):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return f"flip {n}", bytes(out)
    if kind == "truncate":
        cut = rng.randrange(len(out))
        return f"truncate {cut}", bytes(out[:cut])
    sites = _SITES.get(seed_path)
    if sites is None:
        sites = _SITES[seed_path] = field_sites(data)
    pos, size_kind = rng.choice(sites)
    if size_kind == "u8":
        out[pos] = rng.choice((0, 1, 2, 3, 5, 9, 17, 32, 114, 127, 128, 200, 255))
    elif size_kind == "i32":
        old = struct.unpack_from("<i", out, pos)[0]
        struct.pack_into("<i", out, pos, _clamp32(rng.choice(INT_VALUES + (old + 1, old - 1, old * 2))))
    elif size_kind == "i64":
        struct.pack_into("<q", out, pos, rng.choice(INT_VALUES + (-129, 128, 10**12, -(2**63))))
    else:
        struct.pack_into("<f", out, pos, rng.choice(FLOAT_VALUES))
    return f"field {size_kind}@{pos}", bytes(out)


def _clamp32(v: int) -> int:
    return max(-2**31, min(2**31 - 1, v))


def cases(count: int, seed: int) -> list[tuple[int, Path]]:
    seeds = [p for p in SEEDS if p.exists()]
    if not seeds:
        raise SystemExit(f"no seed models ({SEEDS[0]})")
    return [(i, seeds[i % len(seeds)]) for i in range(count)]


def case_bytes(index: int, seed_path: Path, seed: int, _cache: dict = {}) -> tuple[str, bytes]:
    data = _cache.get(seed_path)
    if data is None:
        data = _cache[seed_path] = seed_path.read_bytes()
    return mutate(seed_path, data, random.Random(seed * 1_000_003 + index))


# ------------------------------------------------------------ costmodel analyze
def analyze_outcome(code: int | None, stderr: str) -> str:
    """The category of one analyze run."""
    if code is None or code < 0:
        return "crash"
    if "Traceback" in stderr:
        return "traceback"
    lines = [line for line in stderr.strip().splitlines() if line]
    if code == 0:
        return "ok"
    if code == 2 and len(lines) == 1 and lines[0].startswith("error:"):
        return "refused: " + _reason(lines[0])
    if code == 3 and len(lines) == 1:
        return "internal"
    return f"unclear (exit {code})"


def _reason(line: str) -> str:
    """A short class of an error line (the message without the file name and numbers)."""
    import re

    text = line.split(": ", 2)[-1]
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"-?\d+", "N", text)
    return text[:60]


def _analyze_in_process(path: Path) -> tuple[int, str]:
    from costmodel.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["costmodel", "analyze", str(path)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 (what escapes main() would be a traceback)
                import traceback

                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
    return code, err.getvalue()


def analyze_worker(start: int, stop: int, seed: int, report: Path) -> None:
    """Run cases [start, stop) in this process, one JSON line per case (so a crash names its case)."""
    with tempfile.TemporaryDirectory() as tmp, open(report, "a") as log:
        path = Path(tmp) / "case.tflite"
        for index, seed_path in cases(stop, seed)[start:stop]:
            what, data = case_bytes(index, seed_path, seed)
            path.write_bytes(data)
            log.write(json.dumps({"case": index, "started": True}) + "\n")
            log.flush()
            code, err = _analyze_in_process(path)
            log.write(json.dumps({"case": index, "seed": seed_path.name, "mutation": what,
                                  "outcome": analyze_outcome(code, err), "stderr": err[-300:]}) + "\n")
            log.flush()


def fuzz_analyze(count: int, seed: int, workers: int, subprocess_sample: int) -> collections.Counter:
    outcomes: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        chunks = [(i * count // workers, (i + 1) * count // workers) for i in range(workers)]

        def run_chunk(n: int, start: int, stop: int) -> None:
            report = Path(tmp) / f"report-{n}.jsonl"
            while start < stop:
                proc = subprocess.run([sys.executable, __file__, "--analyze-worker", str(start), str(stop), str(seed),
                                       str(report)], capture_output=True, text=True)
                done = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
                finished = {d["case"] for d in done if "outcome" in d}
                if proc.returncode == 0:
                    return
                crashed = max((d["case"] for d in done if d.get("started") and d["case"] not in finished),
                              default=start)
                with open(report, "a") as log:  # the case the worker died on is a crash
                    log.write(json.dumps({"case": crashed, "outcome": "crash", "stderr": proc.stderr[-300:]}) + "\n")
                start = crashed + 1

        threads = [threading.Thread(target=run_chunk, args=(n, a, b)) for n, (a, b) in enumerate(chunks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in range(workers):
            report = Path(tmp) / f"report-{n}.jsonl"
            for line in report.read_text().splitlines() if report.exists() else []:
                record = json.loads(line)
                if "outcome" in record:
                    outcomes[record["outcome"]] += 1
                    if record["outcome"] in ("crash", "traceback", "internal") or record["outcome"].startswith("unclear"):
                        examples.setdefault(record["outcome"], f"case {record['case']}: {record.get('stderr', '')}")
        # a sample as real processes: what a user's shell sees (exit code, stderr, no Python traceback)
        path = Path(tmp) / "case.tflite"
        for index, seed_path in cases(subprocess_sample, seed + 7):
            _, data = case_bytes(index, seed_path, seed + 7)
            path.write_bytes(data)
            proc = subprocess.run([sys.executable, "-m", "costmodel.cli", "analyze", str(path)], capture_output=True,
                                  text=True, timeout=120)
            outcome = analyze_outcome(proc.returncode if proc.returncode >= 0 else None, proc.stderr)
            outcomes["subprocess " + ("ok" if outcome == "ok" else outcome.split(":")[0])] += 1
            if outcome in ("crash", "traceback", "internal"):
                examples.setdefault("subprocess " + outcome, proc.stderr[-300:])
    for what, example in examples.items():
        print(f"  example {what}: {example.strip()[:300]}")
    return outcomes


# ------------------------------------------------------------ a served agent
def fuzz_agent(count: int, seed: int, boards: int, clients: int) -> tuple[collections.Counter, dict]:
    import grpc

    from measure_agent.client import AgentClient, AgentError
    from measure_agent.journal import Journal

    outcomes: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    token = "fuzz-token-0123456789abcdef"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(f'[agent]\nlisten = "127.0.0.1:0"\njournal = "journal.sqlite"\nmax_model_bytes = 1048576\n'
                          f'[clients]\nfuzz = "{token}"\n[[boards]]\nkind = "virtual"\ntarget = "NUCLEO-L4R5ZI"\n'
                          f'count = {boards}\n')
        proc, port = start_agent(config)
        address = f"127.0.0.1:{port}"
        todo = list(cases(count, seed))
        lock = threading.Lock()

        def client_loop() -> None:
            with AgentClient(address, token, retry_for_s=0) as client:
                while True:
                    with lock:
                        if not todo:
                            return
                        index, seed_path = todo.pop()
                    what, data = case_bytes(index, seed_path, seed)
                    try:
                        client.measure(data, "NUCLEO-L4R5ZI", repetitions=1, request_id=f"fuzz-{index}", timeout=900)
                        outcome = "OK"
                    except AgentError as exc:
                        outcome = exc.code.name
                        if exc.code == grpc.StatusCode.INTERNAL and "internal error" in exc.message:
                            outcome = "INTERNAL (internal error)"
                        if not exc.message:
                            outcome += " (no message)"
                        if not exc.kind and exc.code == grpc.StatusCode.UNAVAILABLE:
                            outcome = "agent unreachable"
                        with lock:
                            examples.setdefault(outcome, f"{seed_path.name} {what}: {exc.message[:200]}")
                    with lock:
                        outcomes[outcome] += 1

        started = time.monotonic()
        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        alive = proc.poll() is None
        with AgentClient(address, token, retry_for_s=0) as client:
            try:
                health = client.health()
                serving = health.serving
            except AgentError:
                serving = False
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        journal = Journal(Path(tmp) / "journal.sqlite")
        rows = journal._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        state = {"agent alive at the end": alive, "agent serving at the end": serving, "wall s": round(wall, 1),
                 "journal rows": rows, "journal unfinished": len(journal.unfinished()),
                 "journal problems": journal.check()}
        journal.close()
    for what, example in sorted(examples.items()):
        print(f"  example {what}: {example}")
    return outcomes, state


def start_agent(config: Path, port: int = 0) -> tuple[subprocess.Popen, int]:
    """``measure-agent serve`` on ``config`` in its own process; returns it and its port (from its first line)."""
    proc = subprocess.Popen([sys.executable, "-m", "measure_agent.cli", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    line = proc.stderr.readline()
    if "serving" not in line:
        proc.kill()
        raise RuntimeError(f"the agent did not start: {line}{proc.stderr.read()}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining its stderr
    return proc, int(line.split(" on port ")[1].split()[0])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--analyze-worker":
        analyze_worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="mutated models through costmodel analyze")
    parser.add_argument("--agent-cases", type=int, default=None, help="through the agent (default: --cases)")
    parser.add_argument("--subprocess-sample", type=int, default=100, help="analyze cases also run as processes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    agent_cases = args.cases if args.agent_cases is None else args.agent_cases

    print(f"fuzz: seeds {', '.join(p.name for p in SEEDS if p.exists())}; mutations {', '.join(sorted(set(MUTATIONS)))}")
    started = time.monotonic()
    analyze = fuzz_analyze(args.cases, args.seed, args.workers, args.subprocess_sample)
    print(f"costmodel analyze: {args.cases} cases in {time.monotonic() - started:.0f} s")
    for outcome, n in sorted(analyze.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6d}  {outcome}")
    bad = sum(n for o, n in analyze.items() if o.split()[-1] in ("crash", "traceback") or "unclear" in o)
    if agent_cases:
        agent, state = fuzz_agent(agent_cases, args.seed + 1, args.boards, args.clients)
        print(f"served agent: {agent_cases} cases ({args.boards} virtual boards, {args.clients} clients)")
        for outcome, n in sorted(agent.items(), key=lambda kv: -kv[1]):
            print(f"  {n:6d}  {outcome}")
        for key, value in state.items():
            print(f"  {key}: {value}")
        # an internal error is a bug the agent caught, not a clear answer to the model
        bad += sum(n for o, n in agent.items() if o in ("agent unreachable", "UNKNOWN", "INTERNAL (internal error)")
                   or "no message" in o)
        bad += int(not state["agent alive at the end"] or not state["agent serving at the end"]
                   or state["journal unfinished"] or bool(state["journal problems"])
                   or state["journal rows"] != agent_cases)
    print(f"crashes, tracebacks, unclear outcomes, agent or journal problems: {bad}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
