"""The runtime's exactness on the virtual board: the cross-compiled firmware, driven over the serial protocol
through a pseudo-terminal, gives the same outputs as the TFLite reference interpreter (int8: identical;
float32 and hybrid: within the host build's stated tolerances), for both runtime variants and both float ABIs."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.backends import VirtualBackend
from measure_agent.config import BoardConfig
from measure_agent.plan import compile_plan
from measure_agent.plan.reference import Reference
from measure_agent.plan.testmodels import model_path, random_inputs
from tests.conftest import shared_model
from tests.test_plan_exactness import (FLOAT_ATOL, FLOAT_CASES, FLOAT_RTOL, HYBRID_ATOL, HYBRID_CASES, HYBRID_RTOL,
                                       INT8_CASES, _id)

TARGET = "NUCLEO-L4R5ZI"
_links: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_boards():
    yield
    for backend, _ in _links.values():
        backend.close()
    _links.clear()


def board_link(variant: str, abi: str):
    if (variant, abi) not in _links:
        backend = VirtualBackend(BoardConfig(id=f"exact-{variant}-{abi}", kind="virtual", target=TARGET))
        image = backend.firmware(variant, abi, "-O2")
        _links[variant, abi] = (backend, backend.link(image))
    return _links[variant, abi][1]


def run_on_board(path, variant: str, abi: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    plan = compile_plan(read_model(path))
    link = board_link(variant, abi)
    link.upload_plan(plan.blob)
    for i, x in enumerate(xs):
        link.set_input(i, np.ascontiguousarray(x).tobytes())
    link.run(1)
    return [np.frombuffer(link.read_output(i), dtype=spec.dtype).reshape(spec.shape)
            for i, spec in enumerate(plan.outputs)]


def check(path, variant: str, abi: str, rtol: float | None = None, atol: float = 0.0, seed: int = 0):
    ref = Reference(path)
    xs = random_inputs(ref.inputs, np.random.default_rng(seed))
    want = ref.run(xs)
    got = run_on_board(path, variant, abi, xs)
    for g, w in zip(got, want):
        if rtol is None:
            assert np.array_equal(g, w.reshape(g.shape)), f"max |diff| = {np.abs(g.astype(int) - w.astype(int)).max()}"
        else:
            np.testing.assert_allclose(g, w.reshape(g.shape), rtol=rtol, atol=atol)


@pytest.mark.parametrize("variant", ["reference", "simd"])
@pytest.mark.parametrize("case", INT8_CASES, ids=_id)
def test_int8_identical_on_board(case, variant):
    kind, p = case
    check(model_path(kind, "int8", **p), variant, "hard")


@pytest.mark.parametrize("abi", ["hard", "soft"])
@pytest.mark.parametrize("case", FLOAT_CASES, ids=_id)
def test_float32_on_board(case, abi):
    kind, p = case
    check(model_path(kind, "float", **p), "simd", abi, FLOAT_RTOL, FLOAT_ATOL)


@pytest.mark.parametrize("case", HYBRID_CASES, ids=_id)
def test_hybrid_on_board(case):
    kind, p = case
    check(model_path(kind, "hybrid", **p), "simd", "hard", HYBRID_RTOL, HYBRID_ATOL)


@pytest.mark.parametrize("variant", ["reference", "simd"])
def test_shipped_ad_model_on_board(variant):
    check(shared_model("ad01_int8.tflite"), variant, "hard", seed=2)


@pytest.mark.parametrize("abi", ["hard", "soft"])
def test_shipped_float_kws_on_board(abi):
    check(shared_model("kws_ref_model_float32.tflite"), "simd", abi, FLOAT_RTOL, FLOAT_ATOL)
