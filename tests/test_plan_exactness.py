"""Exactness of the host build of the runtime against the TFLite reference interpreter (BUILTIN_REF).

int8: outputs must be IDENTICAL, for both the reference and the SIMD variant.
float32 (and dynamic-range hybrid): |got - ref| <= FLOAT_ATOL + FLOAT_RTOL * |ref|.
Models are generated once and cached in the test-models folder of the cache root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.plan import compile_plan
from measure_agent.plan.host import run_on_host
from measure_agent.plan.reference import Reference
from tests.conftest import SHARED_MODELS
from tests.testmodels import model_path, random_inputs, twin_model, with_biases, with_filter_scales

FLOAT_RTOL = 1e-5
FLOAT_ATOL = 1e-5
HYBRID_RTOL = 1e-4
HYBRID_ATOL = 1e-4
TRIALS = 3
VARIANTS = ("reference", "simd")

CONV = [
    dict(shape=(8, 8, 1), filters=4, k=3, s=1, pad="same", act="relu"),
    dict(shape=(9, 7, 3), filters=5, k=3, s=2, pad="same", act="none"),
    dict(shape=(8, 8, 4), filters=8, k=3, s=1, pad="valid", act="relu6"),
    dict(shape=(10, 9, 5), filters=7, k=5, s=2, pad="valid", act="relu"),
    dict(shape=(6, 6, 8), filters=3, k=1, s=1, pad="same", act="none"),
    dict(shape=(7, 7, 16), filters=16, k=3, s=2, pad="same", act="relu"),
    dict(shape=(5, 6, 6), filters=9, k=5, s=1, pad="same", act="none"),
    dict(shape=(6, 6, 2), filters=2, k=1, s=2, pad="valid", act="relu", bias=False),
    dict(shape=(12, 4, 12), filters=10, k=3, s=1, pad="same", act="relu", dil=2),
    dict(shape=(6, 6, 3), filters=6, k=3, s=1, pad="same", act="relu", bias=False),
]
DWCONV = [
    dict(shape=(8, 8, 3), k=3, s=1, pad="same", dm=1, act="relu"),
    dict(shape=(9, 9, 4), k=3, s=2, pad="valid", dm=1, act="none"),
    dict(shape=(7, 8, 8), k=5, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(6, 6, 6), k=3, s=2, pad="same", dm=2, act="relu"),
    dict(shape=(5, 5, 5), k=1, s=1, pad="valid", dm=3, act="none"),
    dict(shape=(10, 10, 12), k=3, s=1, pad="same", dm=1, act="relu"),
]
DENSE = [
    dict(n=1, units=3, act="none"), dict(n=7, units=5, act="relu"), dict(n=10, units=8, act="none"),
    dict(n=12, units=16, act="relu6"), dict(n=16, units=4, act="relu"), dict(n=33, units=7, act="none"),
    dict(n=64, units=10, act="relu"), dict(n=100, units=1, act="none"), dict(n=250, units=32, act="relu"),
]
POOL = [
    dict(shape=(8, 8, 3), type="avg", pool=2, s=2, pad="valid"),
    dict(shape=(9, 7, 4), type="avg", pool=3, s=2, pad="same"),
    dict(shape=(7, 7, 5), type="avg", pool=3, s=1, pad="same"),
    dict(shape=(8, 8, 3), type="max", pool=2, s=2, pad="valid"),
    dict(shape=(9, 7, 4), type="max", pool=3, s=2, pad="same"),
]
MISC = [
    ("add", dict(shape=(6, 6, 4), filters=5, act="none")),
    ("add", dict(shape=(5, 5, 3), filters=4, act="relu")),
    ("mul", dict(shape=(6, 5, 3), filters=4)),
    ("se", dict(shape=(6, 6, 8))),
    ("bcast_add", dict(shape=(5, 5, 6))),
    ("softmax", dict(n=8, units=2)), ("softmax", dict(n=12, units=10)), ("softmax", dict(n=5, units=17)),
    ("logistic", dict(n=8, units=9)),
    ("relu", dict(shape=(4, 4, 3))), ("relu", dict(shape=(4, 4, 3), max=6.0)),
    ("mean", dict(shape=(6, 6, 3), filters=5)), ("mean", dict(shape=(5, 7, 3), filters=4, keepdims=True)),
    ("pad", dict(shape=(5, 5, 3), pads=((1, 2), (0, 1)))),
    ("concat", dict(shape=(5, 5, 3), f1=3, f2=5)),
    ("flatten", dict(shape=(8, 8, 2), filters=4, units=6)),
    ("cnn", dict(shape=(16, 16, 3))),
]

# alignment sweeps as in the paper: conv input channels around multiples of 4, dense input lengths
# around multiples of 4 and 16 (these hit every tail path of the SIMD kernels)
SWEEP = ([("conv", dict(shape=(6, 5, c), filters=3 + c % 3, k=3, s=1, pad="same", act="relu")) for c in (2, 6, 7, 12)]
         + [("dense", dict(n=n, units=3 + n % 4, act="none")) for n in (15, 17, 31, 32, 47, 48)])

INT8_CASES = SWEEP + ([("conv", p) for p in CONV] + [("dwconv", p) for p in DWCONV] + [("dense", p) for p in DENSE]
              + [("pool", p) for p in POOL] + MISC)
# depthwise SIMD paths: channel groups of 4 with a pair / single tail, full-window and border pixels,
# the unrolled 3x3 and the generic kernel loops, strides, tiny inputs where every pixel is on the border
DWCONV_SIMD = [
    dict(shape=(6, 5, 2), k=3, s=1, pad="same", dm=1, act="relu"),
    dict(shape=(6, 5, 6), k=3, s=2, pad="same", dm=1, act="none"),
    dict(shape=(5, 7, 8), k=5, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(7, 6, 12), k=3, s=2, pad="valid", dm=1, act="none"),
    dict(shape=(6, 6, 20), k=3, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(5, 5, 7), k=1, s=1, pad="valid", dm=1, act="none"),
    dict(shape=(9, 9, 5), k=3, s=2, pad="valid", dm=1, act="relu"),
    dict(shape=(1, 1, 8), k=1, s=1, pad="same", dm=1, act="none"),
    dict(shape=(1, 6, 4), k=3, s=1, pad="same", dm=1, act="none"),
    dict(shape=(6, 1, 4), k=3, s=1, pad="same", dm=1, act="relu"),
    dict(shape=(2, 2, 10), k=3, s=1, pad="same", dm=1, act="none"),
    dict(shape=(4, 4, 13), k=5, s=1, pad="same", dm=1, act="none"),
    dict(shape=(8, 7, 9), k=3, s=1, pad="valid", dm=1, act="relu"),
]
INT8_CASES += [("dwconv", p) for p in DWCONV_SIMD]
# depth multipliers > 1 on every SIMD path: channel groups and tails of the multiplied channels, 3x3 / 5x5 /
# 1x1, strides, padding
DWCONV_MULT = [
    dict(shape=(7, 6, 4), k=3, s=1, pad="same", dm=2, act="relu"),
    dict(shape=(8, 7, 3), k=3, s=2, pad="same", dm=4, act="none"),
    dict(shape=(6, 6, 5), k=5, s=1, pad="same", dm=3, act="relu6"),
    dict(shape=(9, 9, 2), k=3, s=2, pad="valid", dm=8, act="none"),
    dict(shape=(5, 5, 1), k=3, s=1, pad="same", dm=6, act="relu"),
]
INT8_CASES += [("dwconv", p) for p in DWCONV_MULT]
# the two-pixel 3x3 depthwise path (stride 1 and 2, channels a multiple of 4): odd output widths (a lone last
# pixel spilling into the next row, and the last row's taking the one-pixel kernel), width 1, a single
# channel group, depth multipliers, padding and activation bounds
DWCONV_PAIRS = [
    dict(shape=(5, 7, 8), k=3, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(6, 9, 4), k=3, s=2, pad="same", dm=1, act="none"),
    dict(shape=(7, 11, 8), k=3, s=2, pad="valid", dm=1, act="relu"),
    dict(shape=(5, 5, 2), k=3, s=2, pad="same", dm=2, act="relu6"),
    dict(shape=(4, 1, 12), k=3, s=1, pad="same", dm=1, act="none"),
    dict(shape=(3, 3, 16), k=3, s=2, pad="valid", dm=1, act="relu"),
    # rows with fewer pixels than channel groups (loaded pixel by pixel): groups not a multiple of 4, padding
    # rows and columns, stride 1 and 2, odd and even widths
    dict(shape=(3, 5, 40), k=3, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(6, 6, 36), k=3, s=2, pad="same", dm=1, act="none"),
    # the int16 SMLAD path's blocks: widths 1, 2, 3 (partial four-pixel block), 5 (a one-pixel tail), 6 (a
    # two-pixel tail), 8 (whole blocks), stride 2 with odd widths (two-pixel tails), valid padding, channel
    # pairs across several groups, activation bounds
    dict(shape=(3, 1, 8), k=3, s=1, pad="same", dm=1, act="relu"),
    dict(shape=(4, 2, 4), k=3, s=1, pad="same", dm=1, act="none"),
    dict(shape=(5, 5, 12), k=3, s=1, pad="valid", dm=1, act="relu6"),
    dict(shape=(4, 5, 16), k=3, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(5, 6, 8), k=3, s=1, pad="same", dm=1, act="none"),
    dict(shape=(6, 8, 20), k=3, s=1, pad="same", dm=1, act="relu"),
    dict(shape=(7, 9, 8), k=3, s=2, pad="same", dm=1, act="relu6"),
    dict(shape=(6, 10, 12), k=3, s=2, pad="valid", dm=1, act="none"),
]
INT8_CASES += [("dwconv", p) for p in DWCONV_PAIRS]
# the SIMD ADD's table path (512 elements and more): an odd count (the pair loop's last element), ReLU (the
# loop's minimum), ReLU6 (a maximum below 127: the C loop), SUB
ADD_SIMD = [("add", dict(shape=(12, 12, 4), filters=5, act="none")), ("add", dict(shape=(9, 9, 7), filters=7, act="relu")),
            ("add", dict(shape=(8, 8, 4), filters=9, act="relu6")), ("sub", dict(shape=(9, 9, 7), filters=7, act="relu"))]
INT8_CASES += ADD_SIMD
# the SIMD FULLY_CONNECTED's quad loop with the requantization in it (inputs a multiple of 4): quads and a
# remainder of rows, activation bounds
DENSE_QUADS = [dict(n=48, units=13, act="relu6"), dict(n=32, units=8, act="relu"), dict(n=20, units=12, act="none")]
INT8_CASES += [("dense", p) for p in DENSE_QUADS]
# the SIMD AVERAGE_POOL_2D: a KWS-like whole-input window (125 elements, groups of 4 channels), clipped border
# windows with a channel tail, and a window past its int16 limit (256 elements: the reference)
AVGPOOL_SIMD = [dict(shape=(25, 5, 12), type="avg", pool=(25, 5), s=1, pad="valid"),
                dict(shape=(6, 6, 9), type="avg", pool=3, s=1, pad="same"),
                dict(shape=(17, 16, 8), type="avg", pool=16, s=1, pad="valid")]
INT8_CASES += [("pool", p) for p in AVGPOOL_SIMD]
# ops real models use beyond the core set: SUB (also broadcast, and a constant-free first operand that is
# not the activation), TANH (the reference's lookup table), PADV2, MEAN over other axes, SOFTMAX deeper than
# 256
EXTRA = [
    ("sub", dict(shape=(6, 6, 4), filters=5, act="none")), ("sub", dict(shape=(6, 6, 4), filters=5, act="relu")),
    ("bcast_sub", dict(shape=(5, 5, 6))), ("bcast_sub", dict(shape=(5, 5, 6), swap=True)),
    ("tanh", dict(n=8, units=9)), ("tanh", dict(n=16, units=40)),
    ("padv2", dict(shape=(5, 5, 3), pads=((1, 2), (0, 1)), value=0.7)),
    ("reduce_mean", dict(shape=(6, 5, 4), filters=6, axes=[3], keepdims=True)),
    ("reduce_mean", dict(shape=(6, 5, 4), filters=6, axes=[1], keepdims=False)),
    ("reduce_mean", dict(shape=(6, 5, 4), filters=6, axes=[1, 2, 3], keepdims=False)),
    ("softmax", dict(n=16, units=300)), ("softmax", dict(n=16, units=1000)),
]
INT8_CASES += EXTRA
FLOAT_CASES = ([("conv", CONV[1]), ("conv", CONV[3]), ("dwconv", DWCONV[3]), ("dense", DENSE[5]),
                ("pool", POOL[1]), ("pool", POOL[4])] + MISC + EXTRA[:1] + EXTRA[2:3] + EXTRA[4:5] + EXTRA[6:8]
               + [("reduce_mean", dict(shape=(6, 5, 4), filters=6, axes=[2, 3], keepdims=True))])
# weights of < 1024 elements stay float under dynamic-range quantization, so the hybrid cases are larger
HYBRID_CASES = [("dense", dict(n=64, units=32, act="relu")), ("dense", dict(n=33, units=40, act="none")),
                ("dense", DENSE[8]), ("conv", dict(shape=(8, 8, 12), filters=12, k=3, s=1, pad="valid", act="relu6")),
                ("conv", CONV[5]), ("dwconv", dict(shape=(8, 8, 128), k=3, s=1, pad="same", dm=1, act="relu")),
                ("dwconv", dict(shape=(8, 8, 64), k=3, s=2, pad="same", dm=2, act="none"))]
# 16x8 quantization (int16 activations, int8 weights, int64 biases)
INT16_CASES = [
    ("conv", dict(shape=(8, 8, 4), filters=8, k=3, s=1, pad="same", act="relu")),
    ("conv", dict(shape=(9, 7, 3), filters=5, k=3, s=2, pad="same", act="none")),
    ("dwconv", dict(shape=(8, 8, 3), k=3, s=1, pad="same", dm=1, act="relu")),
    ("dwconv", dict(shape=(6, 6, 6), k=3, s=2, pad="same", dm=2, act="relu")),
    ("dense", dict(n=33, units=7, act="none")), ("dense", dict(n=250, units=32, act="relu")),
    ("add", dict(shape=(6, 6, 4), filters=5, act="none")), ("add", dict(shape=(5, 5, 3), filters=4, act="relu")),
    ("sub", dict(shape=(6, 6, 4), filters=5, act="none")),
    ("softmax", dict(n=12, units=10)), ("softmax", dict(n=5, units=17)),
    ("pool", dict(shape=(9, 7, 4), type="avg", pool=3, s=2, pad="same")),
    ("pool", dict(shape=(9, 7, 4), type="max", pool=3, s=2, pad="same")),
    ("cnn", dict(shape=(16, 16, 3))),
]
# biases no converter writes: int32 at and near the limits (accumulators wrap as the reference's) and int64
# ones far beyond a trained model's (the 16x8 requantizations' overflow behaviour)
BIAS_CASES = [("dense", "int8", DENSE[6]), ("conv", "int8", CONV[2]), ("conv", "int8", CONV[5]),
              ("dwconv", "int8", DWCONV[5]), ("dwconv", "int8", DWCONV_MULT[0]), ("dense", "int16", DENSE[8]),
              ("conv", "int16", INT16_CASES[0][1]), ("dwconv", "int16", INT16_CASES[3][1])]
# requantization multipliers trained models seldom have (testmodels.with_filter_scales): 1/4 and above,
# above 1, below 2^-22 and at the SIMD kernels' fused-rounding limits, channel by channel
SCALE_FACTORS = [1.0, 2.0**7, 2.0**10, 2.0**-16, 1.0, 2.0**5, 2.0**-14, 2.0**12, 2.0**-15]
SCALE_CASES = [("dwconv", DWCONV[0]), ("dwconv", DWCONV[2]), ("dwconv", DWCONV[5]), ("dwconv", DWCONV_MULT[0]),
               ("dwconv", DWCONV_SIMD[3]), ("conv", CONV[2]), ("conv", CONV[4]), ("conv", CONV[5]),
               ("dense", DENSE[6]), ("dense", DENSE[8])]
SHIPPED_INT8 = ["kws_ref_model.tflite", "ad01_int8.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite"]


def _id(case) -> str:
    kind, p = case
    return kind + "-" + "-".join(f"{k}{v}" for k, v in p.items()).replace(" ", "").replace("(", "").replace(")", "")


def _check(path: Path, exact: bool, rtol: float = 0.0, atol: float = 0.0, seed: int = 0):
    graph = read_model(path)
    plan = compile_plan(graph)
    # the SIMD firmware runs its own plans (int16 pair conv filters) and, where those do not fit, the plain ones
    runs = [("reference", plan), ("simd", compile_plan(graph, "simd")), ("simd", plan)]
    ref = Reference(path)
    rng = np.random.default_rng(seed)
    for _ in range(TRIALS):
        xs = random_inputs(ref.inputs, rng)
        want = ref.run(xs)
        for variant, plan_v in runs:
            got = run_on_host(plan_v, xs, variant)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and g.shape == w.shape
                if exact:
                    diff = np.abs(g.astype(np.int64) - w.astype(np.int64)).max() if g.size else 0
                    assert np.array_equal(g, w), f"{variant}: max |diff| = {diff}"
                else:
                    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=variant)
    return plan


@pytest.mark.parametrize("case", INT8_CASES, ids=_id)
def test_int8_identical(case):
    kind, p = case
    _check(model_path(kind, "int8", **p), exact=True)


@pytest.mark.parametrize("case", [("dense", DENSE[3]), ("cnn", dict(shape=(16, 16, 3)))], ids=_id)
def test_int8_float_io_identical(case):
    """float in/out int8 models: QUANTIZE at the input, DEQUANTIZE at the output."""
    kind, p = case
    plan = _check(model_path(kind, "int8_floatio", **p), exact=True)
    kinds = [layer.op_type for layer in plan.layers]
    assert kinds[0] == "QUANTIZE" and kinds[-1] == "DEQUANTIZE"


@pytest.mark.parametrize("case", FLOAT_CASES, ids=_id)
def test_float32_close(case):
    kind, p = case
    _check(model_path(kind, "float", **p), exact=False, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)


@pytest.mark.parametrize("case", HYBRID_CASES, ids=_id)
def test_hybrid_close(case):
    kind, p = case
    path = model_path(kind, "hybrid", **p)
    plan = _check(path, exact=False, rtol=HYBRID_RTOL, atol=HYBRID_ATOL)
    assert any(layer.kind.endswith("_HYBRID") for layer in plan.layers)


@pytest.mark.parametrize("quant", ["int8", "float"])
def test_two_inputs_two_outputs(quant):
    path = model_path("two_io", quant, shape=(4, 4, 3))
    plan = _check(path, exact=quant == "int8", rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    assert len(plan.inputs) == 2 and len(plan.outputs) == 2


def test_float16_weights_folded():
    """float16-weight models: read_model folds the weights' DEQUANTIZE ops (costmodel.fold)."""
    path = model_path("cnn", "float16", shape=(16, 16, 3))
    plan = _check(path, exact=False, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    assert "DEQUANTIZE" not in [layer.op_type for layer in plan.layers]


@pytest.mark.parametrize("case", INT16_CASES, ids=_id)
def test_int16_identical(case):
    kind, p = case
    _check(model_path(kind, "int16", **p), exact=True)


@pytest.mark.parametrize("case", [INT16_CASES[0], INT16_CASES[4], INT16_CASES[9]], ids=_id)
def test_int16_float_io_identical(case):
    """16x8 models with float inputs and outputs: QUANTIZE float32 -> int16 and DEQUANTIZE int16 -> float32."""
    kind, p = case
    plan = _check(model_path(kind, "int16_floatio", **p), exact=True)
    assert {"QUANTIZE_F32_S16", "DEQUANTIZE_S16_F32"} <= {layer.kind for layer in plan.layers}


@pytest.mark.parametrize("kind,quant,p", BIAS_CASES, ids=lambda v: v if isinstance(v, str) else _id(("", v)))
def test_extreme_biases_identical(kind, quant, p):
    path = with_biases(model_path(kind, quant, **p), "extreme")
    _check(path, exact=True, seed=3)


@pytest.mark.parametrize("case", SCALE_CASES, ids=_id)
def test_unusual_multipliers_identical(case):
    kind, p = case
    _check(with_filter_scales(model_path(kind, "int8", **p), SCALE_FACTORS), exact=True, seed=5)


def _shipped(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (shared MLPerf Tiny models not mounted)")
    return path


@pytest.mark.parametrize("name", SHIPPED_INT8)
def test_shipped_int8_models_identical(name):
    _check(_shipped(name), exact=True, seed=1)


def test_vww_has_biases_beyond_2_30():
    """The trained VWW model the runtime once refused: dead channels (all-zero weights) carry biases near 2^30."""
    graph = read_model(_shipped("vww_96_int8.tflite"))
    biggest = max(int(np.abs(np.asarray(graph.tensors[op.inputs[2]].data, np.int64)).max())
                  for op in graph.ops if op.type == "CONV_2D")
    assert biggest > 1 << 30


@pytest.mark.parametrize("name", SHIPPED_INT8)
def test_shipped_int8_models_with_wrapping_biases(name):
    _check(with_biases(_shipped(name), "extreme"), exact=True, seed=4)


@pytest.mark.parametrize("quant", ["float", "hybrid"])
@pytest.mark.parametrize("name", SHIPPED_INT8)
def test_shipped_model_twins_close(name, quant):
    """Float32 and dynamic-range twins of the MLPerf Tiny models (testmodels.twin_model)."""
    path = twin_model(_shipped(name), quant)
    plan = _check(path, exact=False, rtol=FLOAT_RTOL if quant == "float" else HYBRID_RTOL,
                  atol=FLOAT_ATOL if quant == "float" else HYBRID_ATOL)
    kinds = {layer.kind for layer in plan.layers}
    assert any(k.endswith("_HYBRID") for k in kinds) == (quant == "hybrid")


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"])
def test_shipped_model_int16_twins_identical(name):
    """16x8 twins of the MLPerf Tiny models (the same networks quantized with int16 activations)."""
    plan = _check(twin_model(_shipped(name), "int16"), exact=True)
    assert any(layer.kind.endswith("_S16") for layer in plan.layers)


def test_shipped_float_model_close():
    path = SHARED_MODELS / "kws_ref_model_float32.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent (shared MLPerf Tiny models not mounted)")
    _check(path, exact=False, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
