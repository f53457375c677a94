"""Feature rows: the library's features agree with what the agent reports, layer specifications with the analysis
of the converted network, and results convert to store rows without losing a field."""

from __future__ import annotations

import pytest

from costmodel import analyze
from costmodel.features import (CONTEXT_COLUMNS, LAYER_COLUMNS, LayerSpec, features_dict, key_text, layer_rows,
                                table_key, window_taps, work_terms)
from costmodel.sweeps import NetSpec, conv, dense, dwconv, random_cnn, sweep, tflite_bytes
from measure_agent.firmware_build import cache_dir

CACHE = cache_dir("test-models")

NETS = [
    NetSpec("t-conv", (10, 10, 3), (conv(7, 3), conv(6, 5, 2))),
    NetSpec("t-dw", (9, 9, 3), (conv(5, 1), dwconv(3, 2, 2))),
    NetSpec("t-pool-dense", (8, 8, 2), (conv(4, 3), {"type": "maxpool", "pool": 2, "stride": 2}, {"type": "flatten"},
                                         dense(9))),
]


@pytest.fixture(scope="module")
def analyses():
    return [analyze(tflite_bytes(net, CACHE)) for net in NETS]


def test_features_match_the_agent(analyses):
    from measure_agent.measurement import layer_features

    for analysis in analyses:
        for layer in analysis.layers:
            pb = layer_features(layer)
            mine = features_dict(layer)
            assert mine == {k: getattr(pb, k) for k in mine}, layer.op


def test_layer_specs_describe_the_converted_layers(analyses):
    for analysis in analyses:
        for row in layer_rows(analysis):
            if row["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D"):
                continue
            spec_row = LayerSpec.from_row(row).row()
            for key in ("macs", "params", "output_shape", "in_channels", "out_channels", "input_length"):
                assert spec_row[key] == row[key], (row["op"], key)


def test_keys_and_terms():
    row = LayerSpec("CONV_2D", in_channels=15, out_channels=9, in_h=12, in_w=12, kernel_h=3, kernel_w=3).row()
    row["kernel"] = "conv2d_s8_simd"
    assert table_key(row) == ("CONV_2D", "conv2d_s8_simd", 3, 3, 1, 1, 3, "odd")
    assert key_text(table_key(row)) == "CONV_2D/conv2d_s8_simd k3x3 s1 in%4=3 out=odd"
    t = work_terms(row)
    # SIMD: 15 channels are "row mode", a kernel row of 3 x 15 bytes rounded up to 48; 2 of the 12 output
    # columns have windows cut by the left/right edge (34 valid kernel rows over the 12 output rows)
    assert t == {"const": 1.0, "macs": 144 * 9 * 3 * 48, "outputs": 144 * 9, "columns": 144 * 3 * 48,
                 "border": 34 * 2 * 3 * 15, "border_taps": 0.0, "pixels": 144, "channels": 9,
                 "weights": 9 * 3 * 48}
    # (channels: the per-channel constants; weights: row mode repacks them per call)
    # the reference kernel skips the padding: 34 x 34 valid taps, channel pairs (an odd last one twice)
    assert work_terms({**row, "kernel": "conv2d_s8_ref"}) == {
        "const": 1.0, "macs": 34 * 34 * 15 * 10, "outputs": 144 * 9, "runs": 34 * 12 * 5, "pixels": 144}
    # a kernel the model does not know: the analysis' MACs
    assert work_terms({**row, "kernel": ""}) == {"const": 1.0, "macs": 144 * 9 * 9 * 15, "outputs": 144 * 9,
                                                 "columns": 144 * 9 * 15, "pixels": 144}
    d = LayerSpec("FULLY_CONNECTED", input_length=37, out_channels=10).row()
    assert table_key(d)[6:] == (37 % 16, "even")


def test_sweeps_are_deterministic_and_vary_one_thing():
    a, b = sweep("conv", "full"), sweep("conv", "full")
    assert [s.content_hash for s in a] == [s.content_hash for s in b]
    small = sweep("conv", "small")
    assert [s.params["in_channels"] for s in small] == list(range(1, 17))
    assert len({s.layers[1]["filters"] for s in small}) == 1
    assert random_cnn(3, "ds").content_hash == random_cnn(3, "ds").content_hash
    assert random_cnn(3, "ds").content_hash != random_cnn(4, "ds").content_hash
    assert NetSpec.from_dict(a[5].to_dict()) == a[5]
    assert a[5].with_quantization("float32").content_hash != a[5].content_hash


def test_result_rows_keep_every_field():
    from measure_agent.results import result_rows
    from protos import agent_pb2 as pb

    result = pb.MeasureResult(request_id="r1", board_id="vb-0", target="NUCLEO-L496ZG", runtime_variant="simd",
                              float_abi="hard", opt_level="-O2", clock_hz=80_000_000, total_cycles=1010,
                              latency_s=1010 / 80e6, energy_j=1e-6, energy_source="power-model",
                              firmware_build_id="fw", repetitions=3, board_kind="virtual", placement="flash",
                              board_model_version="9", runtime="nn")
    result.layers.add(index=0, name="c", op="CONV_2D", macs=100, cycles=1000, latency_s=1000 / 80e6, energy_j=1e-6,
                      kernel="conv2d_s8_simd", dtype="int8", input_shapes=[pb.Shape(dims=[1, 4, 4, 3])],
                      output_shape=pb.Shape(dims=[1, 4, 4, 2]), params=56, weight_bytes=62,
                      features=pb.LayerFeatures(alignment="odd", in_channels=3, out_channels=2, kernel_h=3, kernel_w=3,
                                                stride_h=1, stride_w=1, padding="SAME"))
    model, layers = result_rows(result, model_name="m", sweep="conv")
    assert set(CONTEXT_COLUMNS) <= layers[0].keys() and set(LAYER_COLUMNS) <= layers[0].keys()
    assert layers[0]["placement"] == "flash" and layers[0]["board_model_version"] == "9"
    assert layers[0]["input_shapes"] == [[1, 4, 4, 3]] and layers[0]["kernel"] == "conv2d_s8_simd"
    assert model["total_cycles"] - model["layer_cycles"] == 10 and model["n_layers"] == 1


def test_window_taps_count_the_padding():
    """A 7x7 kernel on a 4x4 input (SAME): every window holds the whole input, 16 of its 49 taps."""
    row = LayerSpec("CONV_2D", in_channels=8, out_channels=4, in_h=4, in_w=4, kernel_h=7, kernel_w=7).row()
    geo = window_taps(row)
    assert geo == {"taps": 16 * 49, "valid_taps": 16 * 16, "valid_rows": 16 * 4, "interior": 0, "interior_w": 0}
    ref = work_terms({**row, "kernel": "depthwise_conv2d_s8_ref", "op": "DEPTHWISE_CONV_2D"})
    assert ref["macs"] == row["macs"] * 16 / 49
    simd = work_terms({**row, "kernel": "conv2d_s8_simd"})
    assert simd["macs"] == row["macs"] and simd["border_taps"] == 16 * 49 and simd["border"] == simd["weights"] == 0
    valid = LayerSpec("CONV_2D", in_channels=8, out_channels=4, in_h=9, in_w=9, kernel_h=3, kernel_w=3,
                      stride_h=2, stride_w=2, padding="VALID").row()
    assert window_taps(valid)["valid_taps"] == window_taps(valid)["taps"] == 16 * 9


def test_simd_add_below_the_table_threshold_runs_the_reference_loop():
    small = {"op": "ADD", "kernel": "add_s8_simd", "input_shapes": [[1, 4, 4, 2]] * 2, "output_shape": [1, 4, 4, 2]}
    big = {**small, "input_shapes": [[1, 8, 8, 9]] * 2, "output_shape": [1, 8, 8, 9]}
    assert work_terms(small) == {"const": 1, "tables": 0, "outputs": 0, "fallback": 32, "fallback_pixels": 16}
    assert work_terms(big) == {"const": 1, "tables": 1, "outputs": 576, "fallback": 0, "fallback_pixels": 0}
    assert work_terms({**small, "kernel": "add_s8_ref"}) == {"const": 1, "outputs": 32, "pixels": 16}


def test_add_threshold_matches_the_firmware():
    import re
    from pathlib import Path

    from costmodel.features import ADD_TABLES_MIN_ELEMENTS

    source = (Path(__file__).resolve().parents[1] / "firmware" / "kernels" / "add_s8_simd.c").read_text()
    assert int(re.search(r"#define ADD_TABLES_MIN_ELEMENTS (\d+)", source).group(1)) == ADD_TABLES_MIN_ELEMENTS
