"""The SIMD depthwise kernel's int16 3x3 path requantizes twice the accumulator with one SMMLAR
(depthwise_conv2d_s8_simd.c, dw_rq2_init): exact while every bias stays inside +-2^29 (dw_blk_ok), the
layer taking the one-pixel 3x3 path otherwise (as does a depth multiplier > 1). Biases at that limit and just past it (one channel is enough
to switch the layer), on the host and the virtual board: stride 1 and 2, padding, odd widths, a depth
multiplier, activation bounds, with ties of the rounding from power-of-two scales."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.plan import compile_plan
from measure_agent.plan.host import run_on_host
from measure_agent.plan.reference import Reference
from tests.testmodels import model_path, random_inputs, with_biases

LIM = (1 << 29) - 1
CASES = [
    dict(shape=(5, 7, 8), k=3, s=1, pad="same", dm=1, act="relu6"),
    dict(shape=(6, 9, 4), k=3, s=2, pad="same", dm=1, act="none"),
    dict(shape=(7, 11, 8), k=3, s=2, pad="valid", dm=1, act="relu"),
    dict(shape=(5, 5, 2), k=3, s=2, pad="same", dm=2, act="none"),
    dict(shape=(6, 5, 12), k=3, s=1, pad="valid", dm=1, act="none"),
]
# inside the limit (the two-pixel path) and one channel past it (the whole layer falls back)
BIASES = {"inside": [LIM, -LIM, LIM - 77, -LIM + 5, 0, 1, -1, 12345],
          "past": [LIM + 1, 0, -3, 4, -LIM, LIM, 7, -7]}


def _biased(p: dict, which: str):
    path = model_path("dwconv", "int8", **p)
    g = read_model(path)
    op = next(o for o in g.ops if o.type == "DEPTHWISE_CONV_2D")
    n = g.tensors[op.inputs[2]].shape[-1]
    cycle = BIASES[which]
    return with_biases(path, {op.index: [cycle[i % len(cycle)] for i in range(n)]})


def _id(v):
    return "x".join(map(str, v["shape"])) + f"-k{v['k']}s{v['s']}{v['pad']}-dm{v['dm']}-{v['act']}" if isinstance(v, dict) else str(v)


@pytest.mark.parametrize("which", sorted(BIASES))
@pytest.mark.parametrize("p", CASES, ids=_id)
def test_pairs_bias_limit_on_host(p, which):
    path = _biased(p, which)
    graph = read_model(path)
    ref = Reference(path)
    rng = np.random.default_rng(11)
    for _ in range(3):
        xs = random_inputs(ref.inputs, rng)
        want = ref.run(xs)
        got = run_on_host(compile_plan(graph, "simd"), xs, "simd")
        for g, w in zip(got, want):
            assert np.array_equal(g, w.reshape(g.shape))


@pytest.fixture(scope="module")
def vboard():
    from tests import test_vboard_exactness as vb
    yield vb.check
    for backend, _ in vb._boards.values():
        backend.close()
    vb._boards.clear()


@pytest.mark.parametrize("which", sorted(BIASES))
@pytest.mark.parametrize("p", CASES, ids=_id)
def test_pairs_bias_limit_on_board(vboard, p, which):
    vboard(_biased(p, which), "simd", "hard", seed=11)
