"""The kernel each layer runs: the host library's nn_layer_kernel(i) equals the plan's Layer.kernels[variant]
for every test model and both runtime variants (the C wrappers and measure_agent/plan/kernels.py agree)."""

from __future__ import annotations

import pytest

from costmodel.tflite import read_model
from measure_agent.plan import compile_plan
from measure_agent.plan.format import VARIANTS
from measure_agent.plan.host import FIRMWARE, HostRuntime, load_library
from tests.conftest import SHARED_MODELS
from tests.test_plan_exactness import FLOAT_CASES, HYBRID_CASES, INT8_CASES, _id
from tests.testmodels import model_path

CASES = ([("int8", c) for c in INT8_CASES] + [("float", c) for c in FLOAT_CASES]
         + [("hybrid", c) for c in HYBRID_CASES]
         + [("int8_floatio", ("cnn", dict(shape=(16, 16, 3)))), ("float16", ("cnn", dict(shape=(16, 16, 3)))),
            ("int8", ("two_io", dict(shape=(4, 4, 3)))), ("float", ("two_io", dict(shape=(4, 4, 3))))])
C_KERNELS = {p.stem for p in (FIRMWARE / "kernels").glob("*.c")}


def _check(path) -> None:
    plan = compile_plan(read_model(path))
    for variant in VARIANTS:
        rt = HostRuntime(plan.blob, variant)
        got = rt.layer_kernels()
        assert got == [layer.kernels[variant] for layer in plan.layers], variant
        assert set(got) <= C_KERNELS
        assert rt.lib.nn_layer_kernel(len(plan.layers)) is None


@pytest.mark.parametrize("quant,case", CASES, ids=lambda v: v if isinstance(v, str) else _id(v))
def test_layer_kernels_match_the_plan(quant, case):
    kind, p = case
    _check(model_path(kind, quant, **p))


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "ad01_int8.tflite", "kws_ref_model_float32.tflite"])
def test_shipped_models_layer_kernels(name):
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (shared MLPerf Tiny models not mounted)")
    _check(path)


def test_simd_variant_runs_simd_kernels():
    plan = compile_plan(read_model(model_path("cnn", "int8", shape=(16, 16, 3))))
    kernels = {v: HostRuntime(plan.blob, v).layer_kernels() for v in VARIANTS}
    assert kernels["reference"][0] == "conv2d_s8_ref" and kernels["simd"][0] == "conv2d_s8_simd"
    assert "depthwise_conv2d_s8_simd" in kernels["simd"] and "fully_connected_s8_simd" in kernels["simd"]
    assert not any(k.endswith("_simd") for k in kernels["reference"])


def test_no_kernel_without_a_loaded_plan():
    lib = load_library("reference")
    assert HostRuntime(b"\0" * 64).status != 0
    assert lib.nn_layer_kernel(0) is None
