"""The default (fast) mode of the virtual board against strict mode on the project firmware.

Strict mode sees every memory access through a native memory hook; fast mode derives the data side at block
entry (native/blocks.c, the data program). On the real firmware running MLPerf Tiny models with the weights
in flash (as deployed) the two must give the same per-layer cycles, and fast mode's register cache must
agree with Unicorn's registers at every use (Model.check_registers). benchmarks/vboard_modes.py prints
the same comparison for more boards and models, with the simulation speed of each mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from costmodel.tflite import read_model
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.fit import fit
from measure_agent.plan import compile_plan
from measure_agent.settings import FirmwareSettings
from tests.conftest import shared_model


def _inputs(plan) -> list[bytes]:
    rng = np.random.default_rng(5)
    return [rng.integers(-128, 128, size=spec.shape, dtype=np.int8).tobytes() for spec in plan.inputs]


def _layer_cycles(target: str, name: str, strict: bool, check: bool = False):
    plan = compile_plan(read_model(shared_model(name)))
    backend = VirtualBackend(BoardSpec(id=f"fvs-{target}-{strict}", kind="virtual", target=target))
    backend.strict = strict
    try:
        image = backend.firmware(FirmwareSettings.for_board(backend.board))
        verdict = fit(plan, image, "flash")
        if not verdict.fits:
            pytest.skip(f"{name} on {target}: {verdict.reason}")
        backend.run_plan(image, plan.blob, _inputs(plan), placement="flash", measure_energy=False)
        model = backend._vb.model
        model.check_registers = check
        run = backend.run_plan(image, plan.blob, _inputs(plan), placement="flash", measure_energy=False)
        return run.cycles.layer_cycles, run.outputs, model.stats()
    finally:
        backend.close()


@pytest.mark.parametrize("target", ["NUCLEO-L4R5ZI", "NUCLEO-F767ZI"])
@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "ad01_int8.tflite"])
def test_fast_mode_matches_strict_per_layer(target, name):
    fast, fast_out, stats = _layer_cycles(target, name, strict=False, check=True)
    strict, strict_out, _ = _layer_cycles(target, name, strict=True)
    assert fast_out == strict_out
    assert stats["reg_mismatches"] == 0, stats
    assert fast == strict, [(i, f, s) for i, (f, s) in enumerate(zip(fast, strict)) if f != s]
