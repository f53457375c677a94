"""Reading .tflite files: real models, and every kind of bad file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from costmodel.errors import ModelError
from costmodel.tflite import parse_tflite, read_model


def test_kws_structure(kws_model):
    graph = read_model(kws_model)
    assert [op.type for op in graph.ops][:3] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    conv = graph.ops[0]
    assert conv.options["stride_w"] == 2 and conv.options["padding"] == "SAME"
    assert conv.options["fused_activation_function"] == "RELU"
    weights = graph.tensors[conv.inputs[1]]
    assert weights.shape == (64, 10, 4, 1) and weights.dtype == "int8"
    assert weights.quant.per_channel and weights.quant.scale.size == 64 and weights.quant.axis == 0
    assert graph.tensors[graph.inputs[0]].shape == (1, 49, 10, 1)


def test_constant_data_matches_interpreter(ad_model):
    from ai_edge_litert.interpreter import Interpreter

    graph = read_model(ad_model)
    interp = Interpreter(model_path=str(ad_model))
    fc = graph.ops[0]
    weights = graph.tensors[fc.inputs[1]]
    details = {d["index"]: d for d in interp.get_tensor_details()}
    assert details[weights.index]["name"] == weights.name
    interp.allocate_tensors()
    np.testing.assert_array_equal(interp.get_tensor(weights.index), weights.data)


def test_not_a_flatbuffer():
    with pytest.raises(ModelError, match="TFL3"):
        parse_tflite(b"\x00" * 64)
    with pytest.raises(ModelError, match="too short"):
        parse_tflite(b"TFL")


@pytest.mark.parametrize("cut", [8, 100, 1000, 20000, 50000])
def test_truncated_files(kws_model, cut):
    data = kws_model.read_bytes()[:cut]
    with pytest.raises(ModelError):
        read_model(data)


def test_random_corruption_never_crashes(kws_model):
    data = bytearray(kws_model.read_bytes())
    rng = np.random.default_rng(1)
    outcomes = set()
    for _ in range(300):
        corrupt = bytearray(data)
        for pos in rng.integers(0, 4096, size=8):  # the tables live in the first KiB's offsets
            corrupt[int(pos)] = int(rng.integers(0, 256))
        try:
            read_model(bytes(corrupt))
            outcomes.add("read")
        except ModelError:
            outcomes.add("error")
    assert "error" in outcomes


def test_random_bytes_with_identifier():
    rng = np.random.default_rng(2)
    for _ in range(200):
        blob = bytearray(rng.integers(0, 256, size=int(rng.integers(8, 400)), dtype=np.uint8).tobytes())
        blob[4:8] = b"TFL3"
        try:
            read_model(bytes(blob))
        except ModelError:
            pass


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "costmodel.cli", *args], capture_output=True, text=True)


def test_cli_errors_are_one_line_exit_2(tmp_path, kws_model):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"hello, not a model")
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(kws_model.read_bytes()[:3000])
    for path, needle in [(bad, "TFL3"), (truncated, "truncated"), (tmp_path / "missing.tflite", "No such file")]:
        result = run_cli("analyze", str(path))
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0]
        assert "Traceback" not in result.stderr
    result = run_cli("analyze", str(kws_model), "--target", "NO-SUCH-BOARD")
    assert result.returncode == 2 and "unknown target" in result.stderr


def test_cli_json(kws_model):
    import json

    result = run_cli("analyze", str(kws_model), "--target", "NUCLEO-L4R5ZI", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total_macs"] == 2_664_780 and data["fits"]["fits"] is True
    assert len(data["layers"]) == 13 and data["layers"][0]["features"]["alignment"] == "odd"


def test_cli_table(kws_model):
    result = run_cli("analyze", str(kws_model))
    assert result.returncode == 0
    assert "2,664,780" in result.stdout and "DEPTHWISE_CONV_2D" in result.stdout
