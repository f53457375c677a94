"""`measure-agent measure` for people: a local agent by default, table or JSON, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_agent_e2e import small_model


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "measure_agent.cli", "measure", *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_measure_with_local_agent(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    out = tmp_path / "out"
    out.mkdir()
    result = run(str(model), "--target", "NUCLEO-L496ZG", "--repetitions", "1", "--save", str(out / "r.json"),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CONV_2D" in result.stdout and "delta ns/MAC" in result.stdout and "power-model" in result.stdout
    saved = json.loads((out / "r.json").read_text())
    assert saved["target"] == "NUCLEO-L496ZG" and saved["clock_hz"] == 80_000_000
    assert len(saved["layers"]) == 5 and saved["total_cycles"] > 0
    conv = saved["layers"][0]
    assert conv["index"] == 0 and conv["macs"] == 6 * 6 * 8 * 27
    # the return path: the kernel that ran and the features a cost model learns from
    assert conv["kernel"] == "conv2d_s8_simd" and conv["dtype"] == "int8"
    assert conv["input_shapes"] == [{"dims": [1, 8, 8, 3]}] and conv["output_shape"] == {"dims": [1, 6, 6, 8]}
    f = conv["features"]
    assert (f["in_channels"], f["out_channels"], f["kernel_h"], f["kernel_w"], f["alignment"]) == (3, 8, 3, 3, "odd")
    assert [layer["index"] for layer in saved["layers"]] == list(range(5))
    from measure_agent.vboard import MODEL_VERSION

    assert (saved["placement"], saved["runtime"], saved["board_kind"]) == ("flash", "nn", "virtual")  # as deployed
    assert saved["board_model_version"] == MODEL_VERSION != ""


def test_measure_saves_only_when_asked(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    result = run(str(model), "--target", "NUCLEO-L4R5ZI", "--repetitions", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layers"][0]["kernel"] == "conv2d_s8_simd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.tflite"]


def test_measure_errors(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    cases = [
        ((str(tmp_path / "missing.tflite"),), "No such file"),
        ((str(model), "--target", "NUCLEO-NOPE"), "unknown target"),
        ((str(model), "--agent", "127.0.0.1:1"), "--token"),
        ((str(bad), "--save", str(tmp_path / "x.json")), "not a TFLite flatbuffer"),
        ((str(model), "--target", "NUCLEO-G071RB", "--variant", "simd"), "simd"),
        ((str(model), "--ops", "CONV_S8,NOPE"), "unknown op kind NOPE"),
        ((str(model), "--ops", "SOFTMAX_S8"), "the firmware image of ops SOFTMAX_S8 does not run"),
    ]
    for args, needle in cases:
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def _sparse_model(path, size):
    """A file of ``size`` bytes with a TFLite header and nothing else written (sparse: no disk, no memory)."""
    with open(path, "wb") as f:
        f.write(b"\x1c\0\0\0TFL3")
        f.truncate(size)
    return path


def test_measure_refuses_before_measuring(tmp_path):
    """Items 5, 8, 11: what can be checked is checked before anything is measured, in one line, exit 2:
    --save to a missing folder or a directory, out-of-range --repetitions, a model over the size limit
    (without reading it), --inputs with --seed, an agent that is not there (at once)."""
    import time

    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    huge = _sparse_model(tmp_path / "huge.tflite", 1 << 30)
    cases = [
        ((str(model), "--save", str(tmp_path / "missing" / "r.json")), "does not exist"),
        ((str(model), "--save", str(tmp_path)), "is a directory"),
        ((str(model), "--repetitions", "-3"), "--repetitions"),
        ((str(model), "--repetitions", "0"), "--repetitions"),
        ((str(model), "--repetitions", "100000"), "less than or equal to 100"),
        ((str(huge),), "more than the limit of 4194304 bytes"),
        ((str(model), "--inputs", str(tmp_path / "x.npy"), "--seed", "1"), "exclude each other"),
        ((str(model), "--agent", "127.0.0.1:1", "--token", "t" * 20), "cannot reach the agent at 127.0.0.1:1"),
    ]
    for args, needle in cases:
        started = time.monotonic()
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
        assert time.monotonic() - started < 20, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.tflite", "small.tflite"]


def test_measure_json_carries_schema_version_delta_and_seed(tmp_path):
    """Items 14, 17: the JSON has a schema version and delta per layer; --seed sets the random inputs (the same
    seed gives the same cycles); --inputs runs on given inputs."""
    import numpy as np

    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    runs = []
    for seed in ("5", "5"):
        result = run(str(model), "--repetitions", "1", "--seed", seed, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        runs.append(json.loads(result.stdout))
    data = runs[0]
    assert data["schema_version"] == 1 and data["input_seed"] == 5 and data["inputs_source"] == "random"
    assert [layer["cycles"] for layer in runs[0]["layers"]] == [layer["cycles"] for layer in runs[1]["layers"]]
    conv = data["layers"][0]
    assert conv["delta_ns_per_mac"] == pytest.approx(conv["latency_s"] / conv["macs"] * 1e9)
    assert data["overhead_cycles"] == data["total_cycles"] - sum(layer["cycles"] for layer in data["layers"])
    np.save(tmp_path / "x.npy", np.random.default_rng(1).uniform(-1, 1, size=(8, 8, 3)).astype(np.float32))
    result = run(str(model), "--repetitions", "1", "--inputs", str(tmp_path / "x.npy"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["inputs_source"] == "given"
    np.save(tmp_path / "bad.npy", np.zeros((3, 3)))
    result = run(str(model), "--inputs", str(tmp_path / "bad.npy"), cwd=tmp_path)
    assert result.returncode == 2 and "input 0" in result.stderr and "Traceback" not in result.stderr


def test_measure_table_fits_the_terminal(tmp_path):
    """Item 17: the table fits the terminal's width (here $COLUMNS=80 of a pipe)."""
    import os

    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    result = subprocess.run([sys.executable, "-m", "measure_agent.cli", "measure", str(model), "--repetitions", "1"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("CONV_2D" in line for line in lines) and all(len(line) <= 80 for line in lines), result.stdout
    assert any("between layers" in line for line in lines)


def test_measure_a_keras_model(tmp_path):
    """Item 13: measure accepts what analyze accepts: a .keras model is converted first."""
    from tests.test_costmodel_cli import keras_file

    path = keras_file(tmp_path, "tiny")
    result = run(str(path), "--repetitions", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layers"][0]["op"] == "CONV_2D"
    assert "converting tiny.keras" in result.stderr


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "measure_agent.cli", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def test_recovery_commands_against_a_served_agent(tmp_path):
    """Item 14: `measure --request-id`, `result REQUEST_ID`, `boards` and `health` against an agent; the result
    of a request is recovered by its id (and is another client's to nobody else)."""
    import os

    from tests.test_agent_e2e import _serve_subprocess

    token, other = "t" * 32, "u" * 32
    port = 40000 + os.getpid() % 10000
    config = tmp_path / "bench.toml"
    config.write_text(f'[agent]\nlisten = "127.0.0.1:{port}"\njournal = "journal.sqlite"\n'
                      f'[clients]\nci = "{token}"\nother = "{other}"\n'
                      f'[[boards]]\nkind = "virtual"\ntarget = "NUCLEO-L4R5ZI"\n')
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    proc = _serve_subprocess(config)
    agent = ("--agent", f"127.0.0.1:{port}", "--token", token)
    try:
        first = _cli("measure", str(model), *agent, "--repetitions", "1", "--request-id", "cli-1", "--json", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "measure-agent result cli-1" in first.stderr
        measured = json.loads(first.stdout)
        again = _cli("result", "cli-1", *agent, "--json", "--save", str(tmp_path / "r.json"), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        recovered = json.loads(again.stdout)
        assert recovered["total_cycles"] == measured["total_cycles"] and recovered["schema_version"] == 1
        assert json.loads((tmp_path / "r.json").read_text())["request_id"] == "cli-1"
        table = _cli("result", "cli-1", *agent, cwd=tmp_path)
        assert table.returncode == 0 and "CONV_2D" in table.stdout
        stranger = _cli("result", "cli-1", "--agent", f"127.0.0.1:{port}", "--token", other, cwd=tmp_path)
        assert stranger.returncode == 2 and "NOT_FOUND" in stranger.stderr and "Traceback" not in stranger.stderr
        boards = _cli("boards", *agent, "--json", cwd=tmp_path)
        assert boards.returncode == 0, boards.stderr
        (board,) = json.loads(boards.stdout)["boards"]
        assert board["target"] == "NUCLEO-L4R5ZI" and board["state"] == "idle"
        health = _cli("health", *agent, cwd=tmp_path)
        assert health.returncode == 0 and "boards online" in health.stdout
        health = json.loads(_cli("health", *agent, "--json", cwd=tmp_path).stdout)
        assert health["requests_done"] >= 1 and health["max_model_bytes"] == 4 * 1024 * 1024
        missing = _cli("result", "never-sent", *agent, cwd=tmp_path)
        assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr
        second = _cli("serve", "--config", str(config), cwd=tmp_path)  # item 3: the address is taken
        assert second.returncode == 2 and "address in use" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    finally:
        proc.kill()
        proc.wait()


def test_measure_retries_through_a_restart_of_its_agent_and_says_so(tmp_path, kws_model):
    """Item 11: once the agent has answered, a lost connection is the agent restarting: `measure` says it retries
    (the same request id), and gets the one result when the agent is back; the request is measured once more
    only because the agent died while running it (journaled: attempts 2), never answered twice."""
    import os
    import signal
    import time

    from measure_agent.journal import Journal
    from tests.test_agent_e2e import _serve_subprocess

    token = "r" * 32
    port = 30000 + os.getpid() % 10000
    config = tmp_path / "bench.toml"
    config.write_text(f'[agent]\nlisten = "127.0.0.1:{port}"\njournal = "journal.sqlite"\n[clients]\nci = "{token}"\n'
                      f'[[boards]]\nkind = "virtual"\ntarget = "NUCLEO-L4R5ZI"\n')
    agent = _serve_subprocess(config)
    cli = subprocess.Popen([sys.executable, "-m", "measure_agent.cli", "measure", str(kws_model), "--agent",
                            f"127.0.0.1:{port}", "--token", token, "--repetitions", "40", "--request-id", "retry-1",
                            "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        state = None
        while state != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            if (tmp_path / "journal.sqlite").exists():
                journal = Journal(tmp_path / "journal.sqlite")
                entry = journal.get("ci", "retry-1")
                journal.close()
                state = entry.state if entry else None
        assert state == "running"
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        time.sleep(1.0)  # the client sees the connection go and starts retrying
        agent = _serve_subprocess(config)
        out, err = cli.communicate(timeout=600)
        assert cli.returncode == 0, err
        assert "retrying request retry-1" in err and "Traceback" not in err, err
        result = json.loads(out)
        assert result["request_id"] == "retry-1" and result["total_cycles"] > 0
        journal = Journal(tmp_path / "journal.sqlite")
        entry = journal.get("ci", "retry-1")
        journal.close()
        assert entry.state == "done" and entry.attempts == 2
    finally:
        for proc in (cli, agent):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
