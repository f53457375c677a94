"""The MLPerf Tiny models (KWS, AD, VWW, IC) on every board of the catalogue where they fit in flash, as
deployed: the firmware of each board (its core, its FPU, its runtime variants) programs the plan into a flash
slot through the board's FLASH controller model and runs it; int8 outputs are identical to the TFLite
reference interpreter's, float32 and dynamic-range twins within the host build's tolerances.

tests/test_vboard_exactness.py runs the whole suite on one board (NUCLEO-L4R5ZI); this runs the real models on
the others: the M0+ (no unaligned accesses, no divide), the M3 (no DSP, no FPU), the M33, the M7 (D-cache on
the flash) and the other M4 families. A model that does not fit a board (the fit verdict of measure_agent.fit,
the one the agent and ``costmodel analyze --target`` use) is skipped with the verdict's reason; the boards
where each model must fit are asserted, so that the suite cannot silently skip everything.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from costmodel.boards import catalogue, get_board
from costmodel.tflite import read_model
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.fit import fit
from measure_agent.plan import compile_plan
from measure_agent.plan.reference import Reference
from measure_agent.settings import FirmwareSettings
from tests.conftest import shared_model
from tests.test_plan_exactness import FLOAT_ATOL, FLOAT_RTOL, HYBRID_ATOL, HYBRID_RTOL, SHIPPED_INT8
from tests.testmodels import random_inputs, twin_model

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

#: covered in full by tests/test_vboard_exactness.py
SUITE_TARGET = "NUCLEO-L4R5ZI"
BOARD_VARIANTS = [(name, variant) for name, board in catalogue().items()
                  for variant in board.runtime_variants()]
#: the boards each int8 model must fit with its plan in flash (on the others it may not)
MUST_FIT = {
    "kws_ref_model.tflite": {"NUCLEO-G071RB", "NUCLEO-L552ZE-Q", "NUCLEO-L496ZG", "DISCO-F469NI",
                             "NUCLEO-F767ZI"},
    "ad01_int8.tflite": {"NUCLEO-L552ZE-Q", "NUCLEO-L496ZG", "DISCO-F469NI", "NUCLEO-F767ZI"},
    "vww_96_int8.tflite": {"NUCLEO-L552ZE-Q", "NUCLEO-L496ZG", "DISCO-F469NI", "NUCLEO-F767ZI"},
    "pretrainedResnet_quant.tflite": {"NUCLEO-L552ZE-Q", "NUCLEO-L496ZG", "DISCO-F469NI", "NUCLEO-F767ZI"},
}
_boards: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_boards():
    yield
    for backend, _ in _boards.values():
        backend.close()
    _boards.clear()


def board(target: str, variant: str):
    """(backend, firmware image) of one virtual board and runtime variant (default float ABI, -O2)."""
    if (target, variant) not in _boards:
        backend = VirtualBackend(BoardSpec(id=f"every-{target}-{variant}", kind="virtual", target=target))
        image = backend.firmware(FirmwareSettings.for_board(backend.board, variant))
        _boards[target, variant] = (backend, image)
    return _boards[target, variant]


def check(path, target: str, variant: str, rtol: float | None = None, atol: float = 0.0,
          must_fit: bool = False):
    graph = read_model(path)
    plan = compile_plan(graph, variant)  # the variant's own plan (SIMD: int16 pair conv filters) ...
    backend, image = board(target, variant)
    verdict = fit(plan, image, "flash")
    if not verdict.fits and plan.paired_filters:  # ... or TFLite's layout where those do not fit, as measured
        plan = compile_plan(graph, variant, pair_filters=False)
        verdict = fit(plan, image, "flash")
    if not verdict.fits:
        assert not must_fit, verdict.reason
        pytest.skip(verdict.reason)
    ref = Reference(path)
    xs = random_inputs(ref.inputs, np.random.default_rng(2))
    want = ref.run(xs)
    inputs = [np.ascontiguousarray(x).tobytes() for x in xs]
    run = backend.run_plan(image, plan.blob, inputs, placement="flash", measure_energy=False)
    assert run.placement == "flash"
    for data, spec, w in zip(run.outputs, plan.outputs, want):
        g = np.frombuffer(data, dtype=spec.dtype).reshape(spec.shape)
        if rtol is None:
            diff = np.abs(g.astype(int) - w.astype(int)).max()
            assert np.array_equal(g, w.reshape(g.shape)), f"max |diff| = {diff}"
        else:
            np.testing.assert_allclose(g, w.reshape(g.shape), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", SHIPPED_INT8)
@pytest.mark.parametrize("target,variant", [bv for bv in BOARD_VARIANTS if bv[0] != SUITE_TARGET],
                         ids=lambda v: v)
def test_shipped_int8_models_on_every_board(target, variant, name):
    check(shared_model(name), target, variant, must_fit=target in MUST_FIT[name])


@pytest.mark.parametrize("quant", ["float", "hybrid"])
@pytest.mark.parametrize("name", SHIPPED_INT8)
@pytest.mark.parametrize("target", [t for t in catalogue() if t != SUITE_TARGET])
def test_shipped_model_twins_on_every_board(target, name, quant):
    """The float32 and dynamic-range twins, default runtime variant and float ABI of the board."""
    variant = get_board(target).runtime_variants()[-1]
    rtol, atol = (FLOAT_RTOL, FLOAT_ATOL) if quant == "float" else (HYBRID_RTOL, HYBRID_ATOL)
    check(twin_model(shared_model(name), quant), target, variant, rtol, atol)


@pytest.mark.parametrize("target", list(catalogue()))
def test_the_firmware_programs_a_plan_on_every_flash_controller(target):
    """Every controller style through the firmware's own routines (firmware/board/flash_prog.c) and the
    virtual board's FLASH model: F1 page address + half words (NUCLEO-F103RB, where no MLPerf Tiny model
    fits), G0 / L4 / L4+ / L5 page number + double words, F4 / F7 sectors + words. A small CNN (its plan spans
    several 1-2 KB pages) is erased and programmed without a fault, runs bit-exact from flash, and is found
    in its slot the second time (no erase, no programming)."""
    from tests.testmodels import model_path

    path = model_path("cnn", "int8", shape=(16, 16, 3))
    plan = compile_plan(read_model(path))
    ref = Reference(path)
    xs = random_inputs(ref.inputs, np.random.default_rng(1))
    (want,) = ref.run(xs)
    inputs = [x.tobytes() for x in xs]
    width = get_board(target).family.flash_ctl.program_bytes
    blob = np.frombuffer(plan.blob + b"\xff" * (-len(plan.blob) % width), np.uint8).reshape(-1, width)
    backend = VirtualBackend(BoardSpec(id=f"program-{target}", kind="virtual", target=target))  # erased flash
    try:
        image = backend.firmware(FirmwareSettings.for_board(backend.board))
        assert fit(plan, image, "flash").fits
        first = backend.run_plan(image, plan.blob, inputs, placement="flash", measure_energy=False)
        fc = backend._vb.peripherals.flash_ctl
        programs, erases = fc.programs, fc.erases
        assert first.programmed and first.placement == "flash"
        # one programming operation per unit of the controller's width: at least every unit of the plan that
        # is not the erased value (the slot header and the commit words come on top)
        assert programs >= int(np.count_nonzero((blob != 0xFF).any(axis=1)))
        assert erases >= 1 and fc.faults == 0
        assert np.array_equal(np.frombuffer(first.outputs[0], np.int8), want.reshape(-1))
        second = backend.run_plan(image, plan.blob, inputs, placement="flash", measure_energy=False)
        assert not second.programmed and (fc.programs, fc.erases) == (programs, erases)
        assert second.outputs == first.outputs  # (cycles: the M7 / L5 caches are warm the second time)
    finally:
        backend.close()
