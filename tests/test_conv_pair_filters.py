"""SIMD plans lay int8 conv filters out as int16 pairs in the order conv2d_s8_simd's dot products read them
(measure_agent/plan/lower/conv.py pair_filter, enum nn_filter_layout): the layout itself, which layers get it,
bit-exactness on the host and the virtual board (padding, strides, dilation, odd and non-multiple-of-4 output
channels, pixel counts not a multiple of 4, the first convolution with 1 and 3 input channels, which the
kernel repacks per call), the reference firmware's refusal, and the measurement's fallback to TFLite's layout
when the larger filters do not fit."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent import measurement
from measure_agent.plan import compile_plan
from measure_agent.plan.format import FILTER_LAYOUTS, PARAM_LAYOUTS
from measure_agent.plan.host import HostRuntimeError, run_on_host
from measure_agent.plan.lower.conv import pair_filter
from measure_agent.plan.reference import Reference
from tests.conftest import shared_model
from tests.testmodels import model_path, random_inputs, with_biases, with_filter_scales

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

# every tail of the four pixel path: output channels 1, 2, 3, 5, 6 (odd: a zero pad channel), word steps not a
# multiple of 8 (IC 4, 12, 20 with 1x1 and 3x3), pixel counts not a multiple of 4, padding, strides, dilation,
# activation bounds; the first convolution (1 and 3 input channels: row mode, repacked per call, the input rows
# padded into buffers), and a dilated one with 3 input channels (the pixel pair path)
PAIR_CASES = [
    dict(shape=(5, 5, 4), filters=1, k=3, s=1, pad="same", act="none"),
    dict(shape=(5, 7, 4), filters=3, k=3, s=2, pad="same", act="relu"),
    dict(shape=(6, 5, 12), filters=5, k=1, s=1, pad="valid", act="none"),
    dict(shape=(7, 7, 8), filters=6, k=3, s=1, pad="valid", act="relu6"),
    dict(shape=(9, 6, 20), filters=2, k=3, s=2, pad="valid", act="relu", bias=False),
    dict(shape=(8, 8, 4), filters=7, k=3, s=1, pad="same", act="relu", dil=2),
    dict(shape=(3, 3, 16), filters=9, k=1, s=1, pad="same", act="none"),
    dict(shape=(10, 9, 1), filters=5, k=3, s=2, pad="same", act="relu"),
    dict(shape=(11, 8, 3), filters=7, k=3, s=1, pad="same", act="none"),
    dict(shape=(12, 9, 3), filters=4, k=5, s=2, pad="valid", act="relu6"),
    dict(shape=(9, 9, 3), filters=5, k=3, s=1, pad="same", act="relu", dil=2),
    # row mode: outputs 1 or 2 wide (four pixels span several output rows of the ring), vertical dilation only
    # (the ring's rows dil_h apart), a KWS-like 10x4 stride 2 first convolution (the window's rows wrap the ring)
    dict(shape=(7, 4, 3), filters=3, k=3, s=2, pad="valid", act="none"),
    dict(shape=(6, 3, 1), filters=4, k=3, s=2, pad="same", act="relu"),
    dict(shape=(11, 8, 3), filters=4, k=3, s=1, pad="same", act="relu", dil=[2, 1]),
    dict(shape=(15, 8, 1), filters=6, k=[10, 4], s=2, pad="same", act="relu"),
    # padded convolutions with input channels a multiple of 4 read the padded row ring too: vertical dilation,
    # width 1 and 2 outputs
    dict(shape=(9, 6, 8), filters=3, k=3, s=1, pad="same", act="relu6", dil=[2, 1]),
    dict(shape=(5, 1, 4), filters=5, k=3, s=1, pad="same", act="none"),
    dict(shape=(6, 4, 12), filters=2, k=3, s=2, pad="same", act="relu"),
    # pointwise (1x1 stride 1: the columns straight from the contiguous inputs), the requantization of
    # nn_rq_mm_apply with and without its sign term (zero point -128 with relu, another without activation),
    # word steps 4 (IC 8), 10 (IC 20) and 14 (IC 28: 8 + 4 + 2), last passes of 1, 2 and 3 pixels; a 1x1 of
    # stride 2 (the general fill)
    dict(shape=(5, 3, 8), filters=6, k=1, s=1, pad="valid", act="relu"),
    dict(shape=(7, 2, 8), filters=3, k=1, s=1, pad="same", act="none"),
    dict(shape=(3, 3, 28), filters=4, k=1, s=1, pad="valid", act="none"),
    dict(shape=(5, 2, 20), filters=11, k=1, s=1, pad="valid", act="relu6"),
    dict(shape=(4, 5, 20), filters=7, k=1, s=2, pad="valid", act="relu"),
    # packed rows (the kh x kw x ic taps back to back): 3x3x3 of stride 2 with the bottom and right padding of
    # "same" (the in-register gather), and a 7x7x7 window too long to pack (rows padded to 4 bytes again)
    dict(shape=(9, 7, 3), filters=5, k=3, s=2, pad="same", act="relu"),
    dict(shape=(9, 9, 7), filters=3, k=7, s=1, pad="same", act="none"),
]
SCALES = [1.0, 2.0**7, 2.0**-16, 1.0, 2.0**-14, 2.0**12, 2.0**-23]


def _id(p: dict) -> str:
    return "-".join(f"{k}{v}" for k, v in p.items()).replace(" ", "").replace("(", "").replace(")", "")


def _layouts(plan) -> list[int]:
    """The filter_layout word of every CONV_S8 layer, from the blob."""
    import struct

    from measure_agent.plan.format import OP_BYTES, OP_KINDS

    hdr = struct.unpack_from("<IHHIIIHHHHIIIIIIIII", plan.blob, 0)
    num_ops, ops_off, params_off = hdr[7], hdr[11], hdr[14]
    out = []
    for i in range(num_ops):
        kind, _, _, _, pstart, n_params, _ = struct.unpack_from("<HBBIIII", plan.blob, ops_off + i * OP_BYTES)
        if kind == OP_KINDS["CONV_S8"]:
            words = struct.unpack_from(f"<{n_params}i", plan.blob, params_off + 4 * pstart)
            out.append(words[PARAM_LAYOUTS["CONV_S8"].index("filter_layout")])
    return out


def test_pair_filter_order():
    w = np.arange(3 * 1 * 1 * 8, dtype=np.int64).reshape(3, 1, 1, 8) - 12  # 3 channels (one zero pad), 8 taps
    got = pair_filter(w.astype(np.int8))
    assert got.dtype == np.int16 and got.shape == (2, 1, 1, 16)
    t = w.reshape(3, 8)
    # pair 0: group 0 -> (t0, t2) ch0, (t0, t2) ch1, (t1, t3) ch0, (t1, t3) ch1; then group 1 (taps 4..7)
    want0 = [t[0, 0], t[0, 2], t[1, 0], t[1, 2], t[0, 1], t[0, 3], t[1, 1], t[1, 3],
             t[0, 4], t[0, 6], t[1, 4], t[1, 6], t[0, 5], t[0, 7], t[1, 5], t[1, 7]]
    want1 = [t[2, 0], t[2, 2], 0, 0, t[2, 1], t[2, 3], 0, 0, t[2, 4], t[2, 6], 0, 0, t[2, 5], t[2, 7], 0, 0]
    assert got.reshape(2, 16).tolist() == [want0, want1]


def test_simd_plans_pair_the_filters_with_input_channels_a_multiple_of_4():
    graph = read_model(shared_model("kws_ref_model.tflite"))
    ref, simd = compile_plan(graph), compile_plan(graph, "simd")
    plain = compile_plan(graph, "simd", pair_filters=False)
    assert ref.variant == "reference" and ref.paired_filters == 0 and set(_layouts(ref)) == {FILTER_LAYOUTS["ohwi"]}
    # TFLite's conv filters (the FC weights are the SIMD kernel's quads either way: the same bytes, reordered)
    assert plain.paired_filters == 0 and set(_layouts(plain)) == {FILTER_LAYOUTS["ohwi"]}
    assert len(plain.blob) == len(ref.blob)
    # the first convolution (1 input channel) keeps TFLite's layout, the four pointwise ones are paired
    assert simd.paired_filters == 4
    assert _layouts(simd) == [FILTER_LAYOUTS["ohwi"]] + [FILTER_LAYOUTS["s16_pairs"]] * 4
    assert len(simd.blob) > len(ref.blob)
    with pytest.raises(ValueError):
        compile_plan(graph, "fast")


def _check_host(path, seed: int = 0):
    graph = read_model(path)
    ref = Reference(path)
    rng = np.random.default_rng(seed)
    plans = [("reference", compile_plan(graph)), ("simd", compile_plan(graph, "simd")),
             ("simd", compile_plan(graph, "simd", pair_filters=False))]
    for _ in range(3):
        xs = random_inputs(ref.inputs, rng)
        want = ref.run(xs)
        for variant, plan in plans:
            for g, w in zip(run_on_host(plan, xs, variant), want):
                assert np.array_equal(g, w), f"{variant} (paired {plan.paired_filters}): " \
                                             f"max |diff| {np.abs(g.astype(int) - w.astype(int)).max()}"


@pytest.mark.parametrize("p", PAIR_CASES, ids=_id)
def test_pair_filters_identical_on_host(p):
    _check_host(model_path("conv", "int8", **p))


@pytest.mark.parametrize("p", [PAIR_CASES[i] for i in (0, 2, 3, 6, 18, 19)], ids=_id)
def test_pair_filters_unusual_multipliers_and_biases_on_host(p):
    path = model_path("conv", "int8", **p)
    _check_host(with_filter_scales(path, SCALES), seed=4)
    _check_host(with_biases(path, "extreme"), seed=5)


def test_reference_runtime_refuses_pair_filters():
    path = model_path("conv", "int8", **PAIR_CASES[2])
    plan = compile_plan(read_model(path), "simd")
    assert plan.paired_filters == 1
    xs = random_inputs(Reference(path).inputs, np.random.default_rng(0))
    with pytest.raises(HostRuntimeError, match="NN_ERR_FILTER_LAYOUT") as info:
        run_on_host(plan, xs, "reference")
    assert info.value.status == 8


@needs_gcc
@pytest.mark.parametrize("p", PAIR_CASES, ids=_id)
def test_pair_filters_identical_on_board(p):
    from tests.test_vboard_exactness import check

    check(model_path("conv", "int8", **p), "simd", "hard", seed=1)


@needs_gcc
def test_reference_firmware_refuses_pair_filters():
    from measure_agent.errors import MeasureError
    from tests.test_vboard_exactness import board

    path = model_path("conv", "int8", **PAIR_CASES[2])
    plan = compile_plan(read_model(path), "simd")
    backend, image = board("reference", "hard")
    xs = random_inputs(Reference(path).inputs, np.random.default_rng(0))
    with pytest.raises(MeasureError, match="NN_ERR_FILTER_LAYOUT"):
        backend.run_plan(image, plan.blob, [x.tobytes() for x in xs], placement="sram", measure_energy=False)


@needs_gcc
def test_measurement_falls_back_to_tflite_layout_when_pairs_do_not_fit(monkeypatch):
    from measure_agent.backends import BoardSpec, VirtualBackend
    from protos import agent_pb2 as pb

    from measure_agent import fit as fit_module

    model = shared_model("kws_ref_model.tflite").read_bytes()
    real_fit = fit_module.fit
    seen = []

    def fit(plan, image, placement, board=None):
        verdict = real_fit(plan, image, placement, board)
        seen.append(plan.paired_filters)
        if plan.paired_filters:  # as if the paired filters overflowed the flash slots
            verdict = dataclasses.replace(verdict, fits=False, reason="does not fit (test)")
        return verdict

    monkeypatch.setattr(fit_module, "fit", fit)  # the verdict fit_plan asks for
    ref = Reference(model)
    x = np.random.default_rng(0).integers(-128, 128, size=ref.inputs[0]["shape"], dtype=np.int8)
    (want,) = ref.run([x])
    backend = VirtualBackend(BoardSpec(id="pairs-fallback", kind="virtual", target="NUCLEO-L4R5ZI"))
    try:
        request = pb.MeasureRequest(request_id="fallback", model=model, runtime_variant="simd", repetitions=1,
                                    inputs=[pb.Tensor(shape=list(x.shape), dtype="int8", data=x.tobytes())])
        result = measurement.measure(backend, request)
    finally:
        backend.close()
    assert seen == [4, 0]
    plain = compile_plan(read_model(model), "simd", pair_filters=False)
    assert result.plan_bytes == len(plain.blob)
    assert np.array_equal(np.frombuffer(result.outputs[0].data, np.int8).reshape(want.shape), want)


def _mm_edge_biases(p: dict, over: bool):
    """The pointwise model of ``p`` with biases at the edge of nn_rq_mm_apply's bound (|bias| + K x 255 x 128 <
    2^30): every channel just inside it, or (over) one channel just outside (the layer takes the fused form)."""
    from tests.testmodels import with_biases

    path = model_path("conv", "int8", **p)
    room = (1 << 30) - p["shape"][2] * 255 * 128
    (conv,) = [op.index for op in read_model(path).ops if op.type == "CONV_2D"]
    values = [room - 1, -(room - 1), 12345, -54321, 0, room - 2, 7, -(room - 3), 1, -1, 99][: p["filters"]]
    if over:
        values[-1] = room
    return with_biases(path, {conv: values})


@pytest.mark.parametrize("over", [False, True])
@pytest.mark.parametrize("p", [PAIR_CASES[i] for i in (18, 19)], ids=_id)
def test_pair_filters_requantization_bound_on_host(p, over):
    _check_host(_mm_edge_biases(p, over), seed=6)


@needs_gcc
@pytest.mark.parametrize("over", [False, True])
@pytest.mark.parametrize("p", [PAIR_CASES[i] for i in (18, 19)], ids=_id)
def test_pair_filters_requantization_bound_on_board(p, over):
    from tests.test_vboard_exactness import check

    check(_mm_edge_biases(p, over), "simd", "hard", seed=2)


@needs_gcc
@pytest.mark.parametrize("p", [PAIR_CASES[i] for i in (2, 9, 18, 19, 20, 23)], ids=_id)
def test_pair_filters_unusual_multipliers_and_biases_on_board(p):
    from tests.test_vboard_exactness import check

    path = model_path("conv", "int8", **p)
    check(with_filter_scales(path, SCALES), "simd", "hard", seed=4)
    check(with_biases(path, "extreme"), "simd", "hard", seed=5)
