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


def test_bad_datasets_are_one_line_errors(tmp_path):
    """Item 9: malformed datasets are refused in one line, exit 2, before the board runs: wrong sample shape,
    string labels, a scalar x, a .npy, an empty file, labels out of range or not integers, rows that are not
    one-hot, a negative --limit."""
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    x = np.zeros((4, 8, 8, 3), np.float32)
    cases = {
        "shape.npz": (dict(x=np.zeros((4, 5, 5), np.float32), y=np.zeros(4, int)), "samples of shape [5, 5]"),
        "strings.npz": (dict(x=x, y=np.array(["cat", "dog", "cat", "dog"])), "y holds strings"),
        "scalar.npz": (dict(x=np.float32(1.0), y=np.zeros(1, int)), "x is a single number"),
        "range.npz": (dict(x=x, y=np.array([0, 1, 7, 2])), "labels from 0 to 7; the model has 5 classes"),
        "negative.npz": (dict(x=x, y=np.array([0, -1, 2, 2])), "labels from -1 to 2"),
        "float.npz": (dict(x=x, y=np.array([0.0, 1.5, 2.0, 1.0])), "y holds float values"),
        "hot.npz": (dict(x=x, y=np.array([[1, 1, 0, 0, 0]] * 4)), "not one-hot"),
        "count.npz": (dict(x=x, y=np.zeros(3, int)), "x has 4 samples and y 3"),
    }
    for name, (arrays, needle) in cases.items():
        np.savez(tmp_path / name, **arrays)
    np.save(tmp_path / "array.npy", x)
    (tmp_path / "empty.npz").write_bytes(b"")
    cases["array.npy"] = (None, "a single .npy array")
    cases["empty.npz"] = (None, "the file is empty")
    for name, (_, needle) in cases.items():
        result = run_validate(str(model), "--data", str(tmp_path / name))
        assert result.returncode == 2, (name, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr and "Aborted" not in result.stderr, \
            (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    np.savez(tmp_path / "ok.npz", x=x, y=np.zeros(4, int))
    result = run_validate(str(model), "--data", str(tmp_path / "ok.npz"), "--limit", "-3")
    assert result.returncode == 2 and "--limit" in result.stderr and "Traceback" not in result.stderr


def test_one_hot_labels_are_read_as_classes(tmp_path):
    """Item 9: one-hot rows are the class of their 1 (they used to be read as column 0)."""
    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(6, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    np.savez(tmp_path / "ints.npz", x=x, y=labels)
    np.savez(tmp_path / "hot.npz", x=x, y=np.eye(5, dtype=np.float32)[labels])
    reports = []
    for name in ("ints.npz", "hot.npz"):
        result = run_validate(str(model), "--data", str(tmp_path / name), "--json")
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    assert reports[0]["board_accuracy"] == reports[1]["board_accuracy"]
    assert reports[0]["host_accuracy"] == reports[1]["host_accuracy"] and reports[1]["schema_version"] == 1
