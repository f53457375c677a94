"""SIMD plans lay int8 FULLY_CONNECTED weights out in the "quads" stream fully_connected_s8_simd reads
(measure_agent/plan/lower/fully_connected.py quad_weights, enum nn_fc_weights_layout): the layout itself, which
layers get it, bit-exactness on the host and the virtual board (input lengths a multiple of 4 from 4 to beyond one
256-input chunk, output counts not a multiple of 4, a batch of rows, per-tensor and per-channel weights, extreme
biases, unusual multipliers), the kernel against the reference at the extremes of the chunk bound, and the
reference firmware's refusal."""

from __future__ import annotations

import ctypes
import shutil
import struct

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.plan import compile_plan
from measure_agent.plan.format import FC_WEIGHTS_LAYOUTS, OP_BYTES, OP_KINDS, PARAM_LAYOUTS
from measure_agent.plan.host import HostRuntimeError, load_library, run_on_host
from measure_agent.plan.lower.fully_connected import quad_weights, quads_requant_ok
from measure_agent.plan.reference import Reference
from tests.conftest import shared_model
from tests.testmodels import model_path, random_inputs, with_biases, with_filter_scales

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

# input lengths: one group (4), the single-group loop only (8), 4-group steps and single groups (20, 36), one
# 256-input chunk exactly, a second chunk of one group (260), three chunks (520); tails of 1..3 inputs (tail only:
# 1, 3; with groups: 7, 13, 99; after a full chunk: 258); output counts: one quad, quads and 1..3 rows left; a
# batch of three rows; every activation
QUAD_CASES = [
    dict(n=1, units=4, act="relu"),
    dict(n=3, units=5, act="none"),
    dict(n=7, units=5, act="relu"),
    dict(n=13, units=8, act="relu6"),
    dict(n=99, units=11, act="relu"),
    dict(n=258, units=4, act="none"),
    dict(n=15, units=6, act="relu", batch=2),
    dict(n=4, units=4, act="none"),
    dict(n=8, units=13, act="relu"),
    dict(n=20, units=6, act="relu6"),
    dict(n=36, units=7, act="none"),
    dict(n=64, units=12, act="relu"),
    dict(n=256, units=5, act="relu"),
    dict(n=260, units=8, act="none"),
    dict(n=520, units=9, act="relu"),
    dict(n=20, units=6, act="relu", batch=3),
]


def _id(p: dict) -> str:
    return "-".join(f"{k}{v}" for k, v in p.items())


def _fc_layouts(plan) -> list[int]:
    """The weights_layout word of every FC_S8 layer, from the blob."""
    hdr = struct.unpack_from("<IHHIIIHHHHIIIIIIIII", plan.blob, 0)
    num_ops, ops_off, params_off = hdr[7], hdr[11], hdr[14]
    out = []
    for i in range(num_ops):
        kind, _, _, _, pstart, n_params, _ = struct.unpack_from("<HBBIIII", plan.blob, ops_off + i * OP_BYTES)
        if kind == OP_KINDS["FC_S8"]:
            words = struct.unpack_from(f"<{n_params}i", plan.blob, params_off + 4 * pstart)
            out.append(words[PARAM_LAYOUTS["FC_S8"].index("weights_layout")])
    return out


def test_quad_weights_order():
    w = (np.arange(6 * 8, dtype=np.int64).reshape(6, 8) * 37 % 255 - 127).astype(np.int8)
    got = quad_weights(w)
    assert got.dtype == np.int8 and got.shape == (6, 8)
    lanes = got.reshape(-1)[:32].view("<i2").reshape(2, 4, 2)  # group, word, lane
    t = w.astype(np.int32)
    for g in range(2):
        k = 4 * g
        for word, (pair, inputs) in enumerate([(0, (k, k + 2)), (0, (k + 1, k + 3)), (1, (k, k + 2)),
                                               (1, (k + 1, k + 3))]):
            p, q = 2 * pair, 2 * pair + 1
            assert lanes[g, word].tolist() == [256 * t[q, i] + t[p, i] for i in inputs]
    assert np.array_equal(got[4:], w[4:])  # the rows left stay as they are
    # a tail of 3 inputs: first one word per tail input (rows (r0, r1), (r2, r3)), then the groups
    w7 = (np.arange(4 * 7, dtype=np.int64).reshape(4, 7) * 53 % 255 - 127).astype(np.int8)
    t7 = w7.astype(np.int32)
    lanes7 = quad_weights(w7).reshape(-1).view("<i2")
    assert lanes7[:6].tolist() == [256 * t7[q, i] + t7[p, i] for i in (4, 5, 6) for p, q in ((0, 1), (2, 3))]
    assert lanes7[6:8].tolist() == [256 * t7[1, 0] + t7[0, 0], 256 * t7[1, 2] + t7[0, 2]]
    # SXTB16 of a word gives the p weights: the low byte of each lane
    assert np.array_equal(got.reshape(-1)[:32:2].reshape(2, 4, 2)[:, [0, 1]].reshape(-1),
                          w[0, [0, 2, 1, 3, 4, 6, 5, 7]])


def test_quad_weights_refuse_a_lane_outside_int16():
    w = np.ones((4, 4), np.int8)
    w[1, 2], w[0, 2] = -128, -1  # 256 x -128 - 1 < -32768
    assert quad_weights(w) is None
    w[0, 2] = 0
    assert quad_weights(w) is not None


def test_quads_requant_range():
    assert quads_requant_ok(np.array([-2, -9, -31]), 0)
    assert not quads_requant_ok(np.array([-2, -1]), 0)
    assert not quads_requant_ok(np.array([3]), 0)
    assert quads_requant_ok(np.array([-20]), 127)       # 255 x 2^18 < 2^30
    assert not quads_requant_ok(np.array([-25]), 127)   # 255 x 2^23 > 2^30


def test_simd_plans_lay_ad01_out_in_quads():
    graph = read_model(shared_model("ad01_int8.tflite"))
    ref, simd = compile_plan(graph), compile_plan(graph, "simd")
    assert set(_fc_layouts(ref)) == {FC_WEIGHTS_LAYOUTS["oi"]}
    assert _fc_layouts(simd) == [FC_WEIGHTS_LAYOUTS["quads"]] * 10
    assert len(simd.blob) == len(ref.blob)  # a permutation of the same bytes: no fit fallback needed
    assert compile_plan(graph, "simd", pair_filters=False).blob == simd.blob


def test_layers_the_quads_cannot_take_keep_tflite_layout():
    for p in (dict(n=100, units=1, act="none"), dict(n=64, units=3, act="relu")):  # no quad of rows
        plan = compile_plan(read_model(model_path("dense", "int8", **p)), "simd")
        assert _fc_layouts(plan) == [FC_WEIGHTS_LAYOUTS["oi"]], p


def _check_host(path, seed: int = 0, quads: bool = True):
    graph = read_model(path)
    ref = Reference(path)
    rng = np.random.default_rng(seed)
    plans = [("reference", compile_plan(graph)), ("simd", compile_plan(graph, "simd")), ("simd", compile_plan(graph))]
    if quads:
        assert FC_WEIGHTS_LAYOUTS["quads"] in _fc_layouts(plans[1][1])
    for _ in range(3):
        xs = random_inputs(ref.inputs, rng)
        want = ref.run(xs)
        for variant, plan in plans:
            for g, w in zip(run_on_host(plan, xs, variant), want):
                assert np.array_equal(g, w.reshape(g.shape)), \
                    f"{variant} {_fc_layouts(plan)}: max |diff| {np.abs(g.astype(int) - w.astype(int)).max()}"


@pytest.mark.parametrize("p", QUAD_CASES, ids=_id)
def test_quads_identical_on_host(p):
    _check_host(model_path("dense", "int8", **p))


@pytest.mark.parametrize("p", [QUAD_CASES[i] for i in (1, 4, 7)], ids=_id)
def test_quads_unusual_multipliers_and_biases_on_host(p):
    path = model_path("dense", "int8", **p)
    _check_host(with_filter_scales(path, [1.0, 2.0**-9, 2.0**-12]), seed=4)
    # shifts above -2, and below the range of the zero point's constant: TFLite's layout
    _check_host(with_filter_scales(path, [1.0, 2.0**7, 2.0**12]), seed=4, quads=False)
    _check_host(with_filter_scales(path, [1.0, 2.0**-23]), seed=4, quads=False)
    _check_host(with_biases(path, "extreme"), seed=5)


@pytest.mark.parametrize("name", ["ad01_int8.tflite", "kws_ref_model.tflite", "vww_96_int8.tflite",
                                  "pretrainedResnet_quant.tflite"])
def test_shipped_models_identical_on_host(name):
    _check_host(shared_model(name), quads=name != "vww_96_int8.tflite")  # VWW: 2 outputs, no quad


class FcParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("act_min", ctypes.c_int32),
                ("act_max", ctypes.c_int32), ("act_min_f", ctypes.c_float), ("act_max_f", ctypes.c_float),
                ("asymmetric_inputs", ctypes.c_int32), ("weights_quads", ctypes.c_int32)]


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


@pytest.mark.parametrize("k", [256, 260, 1024])
def test_kernel_at_the_chunk_bound(k):
    """The mixed sums at their largest: |x + offset| = 255 against weights of 127 / -128 over whole 256-input
    chunks, per-channel multipliers and shifts from -2 to -31, against fully_connected_s8_ref."""
    lib = load_library("simd")
    rng = np.random.default_rng(k)
    out_len = 9
    shifts = {0: [-2, -3, -9, -13, -20, -31, -5, -2, -31], -128: [-2, -22, -9, -13, -20, -21, -5, -2, -22]}
    for (x_val, offset, pattern), zp in zip([(-128, -127, "max"), (127, 128, "max"), (-128, -127, "min"),
                                             (127, 128, "alt"), (None, 17, "rand"), (None, -5, "rand")],
                                            [0, -128, 0, -128, 0, -128]):
        x = np.full(k, x_val, np.int8) if x_val is not None else rng.integers(-128, 128, k, dtype=np.int8)
        if pattern == "max":
            w = np.full((out_len, k), 127, np.int8)
        elif pattern == "min":
            w = np.full((out_len, k), -128, np.int8)
            w[1::2] = -127  # a q of -128 needs p >= 0: the q rows of -127
        elif pattern == "alt":
            w = np.where(np.arange(k) % 2 == 0, 127, -127).astype(np.int8)[None].repeat(out_len, 0)
        else:
            w = rng.integers(-127, 128, (out_len, k), dtype=np.int8)
        quads = quad_weights(w)
        assert quads is not None
        bias = rng.integers(-2**31, 2**31, out_len, dtype=np.int64).astype(np.int32)
        mult = rng.integers(2**30, 2**31, out_len, dtype=np.int64).astype(np.int32)
        shift = np.array(shifts[zp], np.int32)
        lo = zp if zp != 0 else -128  # a RELU's bound at the zero point
        assert quads_requant_ok(shift, zp)
        got, want = np.zeros(out_len, np.int8), np.zeros(out_len, np.int8)
        scratch = np.zeros(k + 4, np.int16)
        p = FcParams(offset, zp, lo, 127, 0.0, 0.0, 0, 1)
        assert lib.fully_connected_s8_simd_quads_ok(ctypes.byref(p), _ptr(shift), out_len) == 1
        lib.fully_connected_s8_simd(ctypes.byref(p), 1, k, _ptr(x), out_len, _ptr(quads), _ptr(bias), _ptr(mult),
                                    _ptr(shift), _ptr(got), _ptr(scratch))
        lib.fully_connected_s8_ref(ctypes.byref(FcParams(offset, zp, lo, 127, 0.0, 0.0, 0, 0)), 1, k, _ptr(x),
                                   out_len, _ptr(w), _ptr(bias), _ptr(mult), _ptr(shift), _ptr(want))
        assert np.array_equal(got, want), (x_val, offset, pattern)


def test_reference_runtime_refuses_quads():
    path = model_path("dense", "int8", **QUAD_CASES[4])
    plan = compile_plan(read_model(path), "simd")
    xs = random_inputs(Reference(path).inputs, np.random.default_rng(0))
    with pytest.raises(HostRuntimeError, match="NN_ERR_FILTER_LAYOUT") as info:
        run_on_host(plan, xs, "reference")
    assert info.value.status == 8


@needs_gcc
@pytest.mark.parametrize("p", QUAD_CASES, ids=_id)
def test_quads_identical_on_board(p):
    from tests.test_vboard_exactness import check

    check(model_path("dense", "int8", **p), "simd", "hard", seed=1)


@needs_gcc
@pytest.mark.parametrize("p", [QUAD_CASES[i] for i in (1, 7)], ids=_id)
def test_quads_unusual_multipliers_and_biases_on_board(p):
    from tests.test_vboard_exactness import check

    path = model_path("dense", "int8", **p)
    check(with_filter_scales(path, [1.0, 2.0**-9, 2.0**-12]), "simd", "hard", seed=4)
    check(with_biases(path, "extreme"), "simd", "hard", seed=5)


@needs_gcc
def test_reference_firmware_refuses_quads():
    from measure_agent.errors import MeasureError
    from tests.test_vboard_exactness import board

    path = model_path("dense", "int8", **QUAD_CASES[4])
    plan = compile_plan(read_model(path), "simd")
    backend, image = board("reference", "hard")
    xs = random_inputs(Reference(path).inputs, np.random.default_rng(0))
    with pytest.raises(MeasureError, match="NN_ERR_FILTER_LAYOUT"):
        backend.run_plan(image, plan.blob, [x.tobytes() for x in xs], placement="sram", measure_energy=False)
