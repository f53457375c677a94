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

    assert (saved["placement"], saved["runtime"], saved["board_kind"]) == ("sram", "nn", "virtual")
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
        ((str(bad), "--save", str(tmp_path / "x.json")), "INVALID_ARGUMENT"),
        ((str(model), "--target", "NUCLEO-G071RB", "--variant", "simd"), "simd"),
    ]
    for args, needle in cases:
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
