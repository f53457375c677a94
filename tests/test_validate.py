"""On-target validation (stage F): a dataset through the virtual board and the host interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.test_agent_e2e import small_model


def run_validate(*args):
    return subprocess.run([sys.executable, "-m", "measure_agent.cli", "validate", *args],
                          capture_output=True, text=True, timeout=600)


def test_board_agrees_with_interpreter(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(12, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 5, size=12)
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=y)
    result = run_validate(str(model), "--data", str(data), "--target", "NUCLEO-L4R5ZI", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["samples"] == 12
    # int8 kernels are bit-exact with the reference interpreter: identical predictions and outputs
    assert report["agreement"] == 1.0 and report["identical_outputs"] == 1.0
    assert report["board_accuracy"] == report["host_accuracy"]
    assert report["max_abs_difference"] == 0.0


def test_bad_dataset_is_a_clear_error(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, inputs=np.zeros((2, 8, 8, 3)))
    not_npz = tmp_path / "data.npz"
    not_npz.write_bytes(b"garbage")
    for path, needle in [(wrong, "needs arrays 'x' and 'y'"), (not_npz, "not a readable .npz")]:
        result = run_validate(str(model), "--data", str(path))
        assert result.returncode == 2
        assert needle in result.stderr and "Traceback" not in result.stderr
