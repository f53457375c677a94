"""The runtime's exactness on the virtual board: the cross-compiled firmware, driven over the serial protocol
through a pseudo-terminal, gives the same outputs as the TFLite reference interpreter (int8: identical;
float32 and hybrid: within the host build's stated tolerances), for both runtime variants and both float ABIs."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.plan import compile_plan
from measure_agent.plan.reference import Reference
from measure_agent.settings import FirmwareSettings
from tests.conftest import shared_model
from tests.test_plan_exactness import (FLOAT_ATOL, FLOAT_CASES, FLOAT_RTOL, HYBRID_ATOL, HYBRID_CASES, HYBRID_RTOL,
                                       INT8_CASES, _id)
from tests.testmodels import model_path, random_inputs

TARGET = "NUCLEO-L4R5ZI"
_boards: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_boards():
    yield
    for backend, _ in _boards.values():
        backend.close()
    _boards.clear()


def board(variant: str, abi: str):
    """(backend, firmware image) of the virtual board for one variant and float ABI."""
    if (variant, abi) not in _boards:
        backend = VirtualBackend(BoardSpec(id=f"exact-{variant}-{abi}", kind="virtual", target=TARGET))
        _boards[variant, abi] = (backend, backend.firmware(FirmwareSettings(variant, abi, "-O2")))
    return _boards[variant, abi]


def run_on_board(path, variant: str, abi: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    plan = compile_plan(read_model(path))
    backend, image = board(variant, abi)
    inputs = [np.ascontiguousarray(x).tobytes() for x in xs]
    run = backend.run_plan(image, plan.blob, inputs, measure_energy=False)
    return [np.frombuffer(data, dtype=spec.dtype).reshape(spec.shape)
            for data, spec in zip(run.outputs, plan.outputs)]


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
