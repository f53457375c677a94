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
    # SIMD: 15 channels are "row mode" (weights repacked per call), a kernel row of 3 x 15 bytes rounded up to 48,
    # 144 taps per column; 144 pixels in 36 passes of 4; the padded ring loads the 14 rows -1..12 once, each slot
    # (11 + 3) x 15 = 210 bytes rounded up to 212, plus 4; the repack reads each of the 9 filters' 3 rows of 45
    # bytes with a partial last word
    assert t == {"const": 1.0, "macs": 36 * 4 * 10 * 144, "tail_macs": 0.0, "pair_passes": 36 * 5,
                 "outputs": 36 * 4 * 9, "passes": 36, "columns": 36 * 4 * 144, "pixel_fills": 144,
                 "column_rows": 144 * 3,
                 "packed_fills": 0.0, "border_taps": 0.0, "ring": 14 * 216, "ring_short": 0.0, "ring_rows": 14,
                 "channels": 9,
                 "repack": 10 * 144, "repack_rows": 10 * 3, "repack_tails": 9 * 3}
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
    # the padded ring makes every window interior: the whole window's MACs, no tap-by-tap fill
    assert simd["macs"] == row["macs"] and simd["border_taps"] == simd["repack"] == 0
    valid = LayerSpec("CONV_2D", in_channels=8, out_channels=4, in_h=9, in_w=9, kernel_h=3, kernel_w=3,
                      stride_h=2, stride_w=2, padding="VALID").row()
    assert window_taps(valid)["valid_taps"] == window_taps(valid)["taps"] == 16 * 9


def _simd(spec: LayerSpec, kernel: str) -> dict:
    return work_terms({**spec.row(), "kernel": kernel})


def test_simd_conv_terms_count_its_loops():
    """conv2d_s8_simd (firmware/kernels/conv2d_s8_simd.c conv_four): counts derived by hand from its loops."""
    # 5x5 stride 2, 4 channels (pair filters: 100 taps per column), 21 filters (11 pairs), 4x4 -> 2x2: one pass
    # of 4 pixels; SAME pads 1 row/column before, so the ring loads rows -1..3, then 4 and 5, slots of
    # (1 x 2 + 5) x 4 bytes + 4 (short: byte loops)
    t = _simd(LayerSpec("CONV_2D", in_channels=4, out_channels=21, in_h=4, in_w=4, kernel_h=5, kernel_w=5,
                        stride_h=2, stride_w=2), "conv2d_s8_simd")
    assert t == {"const": 1.0, "macs": 4 * 22 * 100, "tail_macs": 0.0, "pair_passes": 11,
                 "outputs": 4 * 21, "passes": 1, "columns": 4 * 100, "pixel_fills": 4, "column_rows": 4 * 5,
                 "packed_fills": 0.0, "border_taps": 0.0,
                 "ring": 0.0, "ring_short": 7 * 32, "ring_rows": 7, "channels": 21, "repack": 0.0, "repack_rows": 0.0,
                 "repack_tails": 0.0}
    # a search's first convolution: 8x8x1 digits, 3x3, 8 filters: row mode (3 taps per kernel row -> 4, 12 per
    # column), 16 passes, ring rows -1..8 of (7 + 3) x 1 bytes rounded to 12, plus 4; the 8 filters' 12 taps
    # repacked per call, each of their 3 rows of 3 bytes read byte by byte
    t = _simd(LayerSpec("CONV_2D", in_channels=1, out_channels=8, in_h=8, in_w=8, kernel_h=3, kernel_w=3),
              "conv2d_s8_simd")
    assert (t["macs"], t["columns"], t["column_rows"], t["ring_short"], t["ring_rows"], t["repack"], t["repack_rows"],
            t["repack_tails"]) == (16 * 4 * 8 * 12, 16 * 4 * 12, 16 * 4 * 3, 10 * 16, 10, 8 * 12, 8 * 3, 8 * 3)
    # 3x3x3: the 27 taps back to back (28), from registers (no kernel rows), repacked as one row of 27 bytes
    t = _simd(LayerSpec("CONV_2D", in_channels=3, out_channels=8, in_h=8, in_w=8, kernel_h=3, kernel_w=3),
              "conv2d_s8_simd")
    assert (t["macs"], t["packed_fills"], t["column_rows"], t["repack_rows"], t["repack_tails"]) == \
        (16 * 4 * 8 * 28, 64, 0, 8, 8)
    # pointwise, 5 pixels (1x5x8, 3 filters: 2 pairs): a pass of 4, then a last pass of 1 pixel (dot_2x2: two
    # pixels' sums); the
    # contiguous inputs fill the columns without kernel rows, no ring (no padding)
    t = _simd(LayerSpec("CONV_2D", in_channels=8, out_channels=3, in_h=1, in_w=5, kernel_h=1, kernel_w=1),
              "conv2d_s8_simd")
    assert (t["macs"], t["tail_macs"], t["pair_passes"], t["outputs"], t["columns"], t["pixel_fills"], t["column_rows"],
            t["ring"]) == (4 * 4 * 8, 2 * 4 * 8, 2 * 2, 2 * 4 * 3, 2 * 4 * 8, 0, 0, 0)
    # 3x3 stride 2 on 4x4x8: SAME pads only after the input, so no ring; the windows of 3 of the 4 pixels reach
    # past the last row or column and are filled tap by tap
    t = _simd(LayerSpec("CONV_2D", in_channels=8, out_channels=4, in_h=4, in_w=4, kernel_h=3, kernel_w=3,
                        stride_h=2, stride_w=2), "conv2d_s8_simd")
    assert (t["border_taps"], t["ring"], t["column_rows"]) == (3 * 9, 0, 4 * 3)


def test_simd_depthwise_terms_count_its_loops():
    """depthwise_conv2d_s8_simd: the 3x3 int16 path, the other 3x3 rows with channels past the last group, the
    generic loop."""
    t = _simd(LayerSpec("DEPTHWISE_CONV_2D", in_channels=8, in_h=8, in_w=8, kernel_h=3, kernel_w=3),
              "depthwise_conv2d_s8_simd")
    # 8 channels, stride 1, depth multiplier 1: the int16 path, 2 blocks of 4 pixels per row and channel pair (4
    # pairs); the ring rows -1..8 (the 8 input rows' 8 pixels converted), cleared once: 3 slots x 8 channels x
    # (8 + 2) halfwords
    assert t == {"const": 1.0, "macs": 0.0, "macs33": 0.0, "pair_macs33": 8 * 8 * 8 * 9, "pair_rows": 8 * 4,
                 "tail": 0.0, "tail_rows": 0.0, "tail_outputs": 0.0, "groups": 0.0, "outputs": 64 * 8, "pixels": 64,
                 "ring": 0.0, "ring_groups": 8 * 8 * 8,
                 "ring_dm": 0.0, "ring_pad": 0.0, "ring_clear": 3 * 8 * 10, "ring_rows": 10, "out_rows": 8,
                 "setup": 9 * 8, "channels": 8}
    # a width of 5: the last block of 4 pixels computed whole (8 pixels per row)
    t = _simd(LayerSpec("DEPTHWISE_CONV_2D", in_channels=4, in_h=5, in_w=5, kernel_h=3, kernel_w=3),
              "depthwise_conv2d_s8_simd")
    assert (t["pair_macs33"], t["pair_rows"], t["ring_clear"]) == (5 * 8 * 4 * 9, 5 * 2, 3 * 4 * (8 + 2))
    # 6 channels, 5x5 -> 3x3 stride 2: a group of 4 and 2 channels one at a time per pixel; the ring loads rows
    # -1..1, 2..3, 4..5 (span 2 x 2 + 3 pixels x 6 channels; rows 0..4 inside, pixels 1..5 of the span)
    t = _simd(LayerSpec("DEPTHWISE_CONV_2D", in_channels=6, in_h=5, in_w=5, kernel_h=3, kernel_w=3, stride_h=2,
                        stride_w=2), "depthwise_conv2d_s8_simd")
    assert (t["macs33"], t["tail"], t["tail_rows"], t["tail_outputs"], t["groups"], t["pair_macs33"], t["ring"],
            t["ring_pad"], t["ring_rows"], t["setup"]) == \
        (9 * 4 * 9, 9 * 2 * 9, 9 * 2 * 3, 9 * 2, 9, 0, 5 * 5 * 6, 7 * 7 * 6 - 5 * 5 * 6, 7, 9 * 8)
    # depth multiplier 2: the one-pixel 3x3 path, every inside byte repeated (ring_dm)
    t = _simd(LayerSpec("DEPTHWISE_CONV_2D", in_channels=2, in_h=4, in_w=4, kernel_h=3, kernel_w=3,
                        depth_multiplier=2), "depthwise_conv2d_s8_simd")
    assert (t["ring_dm"], t["ring_groups"], t["pair_macs33"], t["macs33"]) == (4 * 4 * 4, 0, 0, 16 * 4 * 9)
    # 5x5 (any other kernel): the generic loop over the taps
    t = _simd(LayerSpec("DEPTHWISE_CONV_2D", in_channels=4, in_h=4, in_w=4, kernel_h=5, kernel_w=5),
              "depthwise_conv2d_s8_simd")
    assert (t["macs"], t["macs33"], t["tail"]) == (16 * 4 * 25, 0, 0)


def test_simd_dense_terms_count_its_loops():
    """fully_connected_s8_simd with the quads layout: 70 inputs (17 groups of 4 and 2 more), 10 units (2 quads
    and 2 rows in TFLite's order)."""
    t = _simd(LayerSpec("FULLY_CONNECTED", input_length=70, out_channels=10), "fully_connected_s8_simd")
    assert t == {"const": 1.0, "quad_macs": 2 * 16 * 17, "quad_singles": 2 * 1, "quad_chunks": 2, "quad_tail": 2 * 2,
                 "quads": 2, "row_macs": 1 * 8 * 17, "row_tail": 2, "row_pairs": 1, "row_outputs": 2, "inputs": 70}
    # fewer than 4 units: rows only (3 rows: 2 pairs, the last row twice); 300 inputs: 75 groups in 2 chunks
    t = _simd(LayerSpec("FULLY_CONNECTED", input_length=300, out_channels=3), "fully_connected_s8_simd")
    assert (t["quads"], t["row_pairs"], t["row_macs"], t["row_outputs"]) == (0, 2, 2 * 8 * 75, 3)
    t = _simd(LayerSpec("FULLY_CONNECTED", input_length=300, out_channels=4), "fully_connected_s8_simd")
    assert (t["quad_chunks"], t["quad_singles"]) == (2, 75 % 4)


def test_simd_avgpool_terms_skip_the_padding():
    t = _simd(LayerSpec("AVERAGE_POOL_2D", in_channels=6, in_h=3, in_w=3, kernel_h=2, kernel_w=2, stride_h=2,
                        stride_w=2), "avgpool_s8_simd")
    # 3x3 -> 2x2 (SAME pads after): windows of 4, 2, 2 and 1 taps inside; one group of 4 channels and 2 more
    assert t == {"const": 1.0, "macs": 9 * 4, "tail": 9 * 2, "window_rows": 6, "outputs": 4 * 6, "pixels": 4}


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
