"""`measure-agent measure` for people: a local agent by default, table or JSON, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_agent_e2e import small_model


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "measure_agent.cli", "measure", *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_measure_with_local_agent(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    result = run(str(model), "--target", "NUCLEO-L496ZG", "--repetitions", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CONV_2D" in result.stdout and "delta ns/MAC" in result.stdout and "power-model" in result.stdout
    saved = json.loads((tmp_path / "small-NUCLEO-L496ZG.measure.json").read_text())
    assert saved["target"] == "NUCLEO-L496ZG" and saved["clock_hz"] == 80_000_000
    assert len(saved["layers"]) == 5 and saved["total_cycles"] > 0
    assert saved["layers"][0]["macs"] == 6 * 6 * 8 * 27


def test_measure_errors(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    cases = [
        ((str(tmp_path / "missing.tflite"),), "No such file"),
        ((str(model), "--target", "NUCLEO-NOPE"), "unknown target"),
        ((str(model), "--agent", "127.0.0.1:1"), "--token"),
        ((str(bad), "--save", str(tmp_path / "x.json")), "INVALID_ARGUMENT"),
        ((str(model), "--target", "NUCLEO-G071RB", "--variant", "simd"), "simd"),
    ]
    for args, needle in cases:
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
