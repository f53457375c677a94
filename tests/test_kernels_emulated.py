"""The Cortex-M build (real Thumb-2 + DSP instructions, executed by Unicorn with a Cortex-M4 model) gives
outputs identical to the TFLite reference for int8, in both variants, so the SIMD kernels' intrinsics
behave exactly like the portable emulation used by the host build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.plan import compile_plan
from measure_agent.plan.emu import available, run_on_emulator
from measure_agent.plan.testmodels import Reference, model_path, random_inputs

pytestmark = pytest.mark.skipif(not available(), reason="needs arm-none-eabi-gcc and unicorn")

CASES = [
    ("conv", dict(shape=(9, 7, 3), filters=5, k=3, s=2, pad="same", act="none")),
    ("conv", dict(shape=(7, 7, 16), filters=16, k=3, s=2, pad="same", act="relu")),
    ("dwconv", dict(shape=(10, 10, 12), k=3, s=1, pad="same", dm=1, act="relu")),
    ("dwconv", dict(shape=(6, 6, 6), k=3, s=2, pad="same", dm=2, act="relu")),
    ("dense", dict(n=33, units=7, act="none")),
    ("dense", dict(n=64, units=10, act="relu")),
    ("cnn", dict(shape=(16, 16, 3))),
]
SHARED = Path("/work/shared/models")


def _compare(path, variant, exact=True):
    plan = compile_plan(read_model(path))
    ref = Reference(path)
    rng = np.random.default_rng(3)
    for _ in range(2):
        xs = random_inputs(ref.inputs, rng)
        want = ref.run(xs)[0]
        got = run_on_emulator(plan, xs, variant)[0]
        if exact:
            assert np.array_equal(got, want), np.abs(got.astype(np.int64) - want.astype(np.int64)).max()
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["simd", "reference"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] + "-" + "-".join(str(v) for v in c[1].values()))
def test_int8_on_cortex_m4_instruction_set(case, variant):
    kind, p = case
    _compare(model_path(kind, "int8", **p), variant)


@pytest.mark.parametrize("variant", ["simd", "reference"])
def test_kws_on_cortex_m4_instruction_set(variant):
    path = SHARED / "kws_ref_model.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    _compare(path, variant)


def test_float_soft_float_on_cortex_m4():
    _compare(model_path("cnn", "float", shape=(16, 16, 3)), "reference", exact=False)
