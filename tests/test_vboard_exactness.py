"""The runtime's exactness on the virtual board: the cross-compiled firmware, driven over the serial protocol
through a pseudo-terminal, gives the same outputs as the TFLite reference interpreter (int8: identical;
float32 and hybrid: within the host build's stated tolerances), for both runtime variants and both float ABIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.fit import fit
from measure_agent.plan import compile_plan
from measure_agent.plan.reference import Reference
from measure_agent.settings import FirmwareSettings
from tests.conftest import shared_model
from tests.test_plan_exactness import (BIAS_CASES, CONV, DWCONV_SIMD, FLOAT_ATOL, FLOAT_CASES, FLOAT_RTOL, HYBRID_ATOL, HYBRID_CASES,
                                       HYBRID_RTOL, INT8_CASES, INT16_CASES, SCALE_CASES, SCALE_FACTORS, SHIPPED_INT8,
                                       _id)
from tests.testmodels import model_path, random_inputs, twin_model, with_biases, with_filter_scales

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


def run_on_board(path, variant: str, abi: str, xs: list[np.ndarray], placement: str = "flash") -> list[np.ndarray]:
    plan = compile_plan(read_model(path), variant)  # the variant's own plan (SIMD: int16 pair conv filters)
    backend, image = board(variant, abi)
    verdict = fit(plan, image, placement)
    if not verdict.fits:
        pytest.skip(f"{Path(path).name}: {verdict.reason}")
    inputs = [np.ascontiguousarray(x).tobytes() for x in xs]
    run = backend.run_plan(image, plan.blob, inputs, placement=placement, measure_energy=False)
    return [np.frombuffer(data, dtype=spec.dtype).reshape(spec.shape)
            for data, spec in zip(run.outputs, plan.outputs)]


def check(path, variant: str, abi: str, rtol: float | None = None, atol: float = 0.0, seed: int = 0,
          placement: str = "flash"):
    ref = Reference(path)
    xs = random_inputs(ref.inputs, np.random.default_rng(seed))
    want = ref.run(xs)
    got = run_on_board(path, variant, abi, xs, placement)
    for g, w in zip(got, want):
        if rtol is None:
            assert np.array_equal(g, w.reshape(g.shape)), f"max |diff| = {np.abs(g.astype(int) - w.astype(int)).max()}"
        else:
            np.testing.assert_allclose(g, w.reshape(g.shape), rtol=rtol, atol=atol)


@pytest.mark.parametrize("variant", ["reference", "simd"])
@pytest.mark.parametrize("case", INT8_CASES, ids=_id)
def test_int8_identical_on_board(case, variant):
    """Weights in flash (the default placement: the firmware programs the plan into a flash slot)."""
    kind, p = case
    check(model_path(kind, "int8", **p), variant, "hard")


@pytest.mark.parametrize("case", INT8_CASES, ids=_id)
def test_int8_identical_on_board_weights_in_sram(case):
    """The same plans uploaded into SRAM: the executor does not care where the plan is."""
    kind, p = case
    check(model_path(kind, "int8", **p), "simd", "hard", placement="sram")


@pytest.mark.parametrize("abi", ["hard", "soft"])
@pytest.mark.parametrize("case", FLOAT_CASES, ids=_id)
def test_float32_on_board(case, abi):
    kind, p = case
    check(model_path(kind, "float", **p), "simd", abi, FLOAT_RTOL, FLOAT_ATOL)


@pytest.mark.parametrize("case", HYBRID_CASES, ids=_id)
def test_hybrid_on_board(case):
    kind, p = case
    check(model_path(kind, "hybrid", **p), "simd", "hard", HYBRID_RTOL, HYBRID_ATOL)


@pytest.mark.parametrize("case", INT16_CASES, ids=_id)
def test_int16_identical_on_board(case):
    kind, p = case
    check(model_path(kind, "int16", **p), "simd", "hard")


@pytest.mark.parametrize("kind,quant,p", BIAS_CASES, ids=lambda v: v if isinstance(v, str) else _id(("", v)))
def test_extreme_biases_on_board(kind, quant, p):
    check(with_biases(model_path(kind, quant, **p), "extreme"), "simd", "hard", seed=3)


@pytest.mark.parametrize("variant", ["reference", "simd"])
@pytest.mark.parametrize("case", SCALE_CASES, ids=_id)
def test_unusual_multipliers_on_board(case, variant):
    kind, p = case
    check(with_filter_scales(model_path(kind, "int8", **p), SCALE_FACTORS), variant, "hard", seed=5)


# real scales from trained-model size down to below 2^-32 (a zero multiplier), none at 1/4 or above, so every
# channel of the layer takes the SIMD kernels' fused requantization: right shifts past 22 up to 31 (the
# pointwise layers of the shipped VWW model have them) and the zero multiplier
TINY_SCALE_FACTORS = [1.0, 2.0**-14, 2.0**-18, 2.0**-21, 2.0**-23, 2.0**-40]
TINY_SCALE_CASES = [("conv", CONV[2]), ("conv", CONV[4]), ("conv", CONV[5]),
                    ("conv", dict(shape=(5, 5, 16), filters=12, k=1, s=1, pad="valid", act="none")),
                    ("dwconv", DWCONV_SIMD[4])]


@pytest.mark.parametrize("case", TINY_SCALE_CASES, ids=_id)
def test_tiny_multipliers_on_board(case):
    kind, p = case
    check(with_filter_scales(model_path(kind, "int8", **p), TINY_SCALE_FACTORS), "simd", "hard", seed=6)


@pytest.mark.parametrize("placement", ["flash", "sram"])
@pytest.mark.parametrize("variant", ["reference", "simd"])
@pytest.mark.parametrize("name", SHIPPED_INT8)
def test_shipped_int8_models_on_board(name, variant, placement):
    check(shared_model(name), variant, "hard", seed=2, placement=placement)


@pytest.mark.parametrize("quant", ["float", "hybrid"])
@pytest.mark.parametrize("name", SHIPPED_INT8)
def test_shipped_model_twins_on_board(name, quant):
    rtol, atol = (FLOAT_RTOL, FLOAT_ATOL) if quant == "float" else (HYBRID_RTOL, HYBRID_ATOL)
    check(twin_model(shared_model(name), quant), "simd", "hard", rtol, atol)


def test_shipped_int16_twin_on_board():
    check(twin_model(shared_model("kws_ref_model.tflite"), "int16"), "simd", "hard")


@pytest.mark.parametrize("abi", ["hard", "soft"])
def test_shipped_float_kws_on_board(abi):
    check(shared_model("kws_ref_model_float32.tflite"), "simd", abi, FLOAT_RTOL, FLOAT_ATOL)
