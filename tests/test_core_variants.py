"""Where the cores differ: each core and runtime variant builds with its own flags, the Cortex-M7 runs the SIMD
hot kernels from its ITCM, the M0+ and M3 refuse the SIMD variant, and the Cortex-M7 (NUCLEO-F767ZI) and M33
(NUCLEO-L552ZE-Q) run a model bit-exact with its constants in SRAM in both variants (tests/test_vboard_every_board.py
runs the four MLPerf Tiny models there with their constants in flash).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from costmodel.boards import catalogue, get_board
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.elf import parse_elf
from measure_agent.firmware_build import firmware as fw
from measure_agent.firmware_build.flags import cpu_flags
from measure_agent.firmware_build.linker import CODE_TCM_KERNELS, CODE_TCM_RESERVED, code_tcm
from measure_agent.plan.reference import Reference
from measure_agent.settings import FirmwareSettings, SettingsError
from tests.conftest import shared_model
from tests.testmodels import random_inputs

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

#: -mfpu of each board's hard-float build: the FPU the core has on that MCU
FPU = {"NUCLEO-F767ZI": "fpv5-d16", "NUCLEO-L552ZE-Q": "fpv5-sp-d16", "NUCLEO-L4R5ZI": "fpv4-sp-d16",
       "NUCLEO-L496ZG": "fpv4-sp-d16", "DISCO-F469NI": "fpv4-sp-d16", "NUCLEO-G071RB": None, "NUCLEO-F103RB": None}
CORE_MACRO = {"cortex-m0plus": "M0PLUS", "cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7", "cortex-m33": "M33"}
M7, M33 = "NUCLEO-F767ZI", "NUCLEO-L552ZE-Q"


def test_every_board_is_in_the_fpu_table():
    assert set(FPU) == set(catalogue())


@needs_gcc
@pytest.mark.parametrize("name", sorted(catalogue()))
def test_each_core_and_variant_builds_with_its_flags(name):
    board = get_board(name)
    for variant in board.runtime_variants():
        settings = FirmwareSettings.for_board(board, variant)
        cflags = fw.firmware_recipe(board, settings).cflags
        assert f"-mcpu={board.core}" in cflags and f"-DNN_CORE_{CORE_MACRO[board.core]}=1" in cflags
        if FPU[name]:
            assert settings.float_abi == "hard" and f"-mfpu={FPU[name]}" in cflags and "-mfloat-abi=hard" in cflags
        else:
            assert "-mfloat-abi=soft" in cflags and not any(f.startswith("-mfpu") for f in cflags)
        assert ("-DNN_SIMD=1" in cflags) == (variant == "simd")


@pytest.mark.parametrize("name", ["NUCLEO-G071RB", "NUCLEO-F103RB"])
def test_m0plus_and_m3_refuse_the_simd_variant(name):
    board = get_board(name)
    assert board.runtime_variants() == ("reference",)
    assert FirmwareSettings.for_board(board).variant == "reference"  # the default is the portable kernels
    with pytest.raises(SettingsError, match=r"needs the DSP extension .* choose from reference"):
        FirmwareSettings.for_board(board, "simd")


def test_an_m7_with_a_single_precision_fpu_gets_fpv5_sp():
    assert cpu_flags("cortex-m7", "hard", "sp")[2] == "-mfpu=fpv5-sp-d16"
    assert cpu_flags("cortex-m7", "hard", "dp")[2] == "-mfpu=fpv5-d16"


def _disassembly(path) -> str:
    return subprocess.run(["arm-none-eabi-objdump", "-d", str(path)], capture_output=True, text=True,
                          check=True).stdout


@needs_gcc
@pytest.mark.parametrize("name", [M7, M33])
@pytest.mark.parametrize("variant", ["simd", "reference"])
def test_hot_kernels_in_the_m7_itcm_and_dsp_on_both(name, variant):
    board = get_board(name)
    image = fw.build_firmware(board, FirmwareSettings.for_board(board, variant))
    elf = parse_elf(image.path)
    tcm = code_tcm(board)
    in_tcm = {s for s, a in elf.symbols.items() if tcm is not None and tcm.contains(a) and s.endswith("_s8_simd")}
    if name == M7 and variant == "simd":
        assert image.code_tcm == CODE_TCM_KERNELS["simd"]
        assert {"conv2d_s8_simd", "depthwise_conv2d_s8_simd"} <= in_tcm
        assert min(elf.symbols[k] for k in in_tcm) >= tcm.base + CODE_TCM_RESERVED  # no function at NULL
    else:
        assert image.code_tcm == () and not in_tcm
    if variant == "simd":  # the DSP extension: Armv7E-M on the M7, Armv8-M Mainline with DSP on the M33
        dis = _disassembly(image.path)
        assert "smlad" in dis and "sxtb16" in dis


@needs_gcc
def test_kernels_that_outgrow_the_itcm_run_from_flash(monkeypatch, tmp_path):
    board = get_board(M7)
    kernels = (*CODE_TCM_KERNELS["simd"], "fully_connected_s8_simd", "conv2d_s8_ref", "depthwise_conv2d_s8_ref")
    monkeypatch.setitem(CODE_TCM_KERNELS, "simd", kernels)
    image = fw.build_firmware(board, FirmwareSettings.for_board(board, "simd"), cache_dir=tmp_path)
    assert 0 < len(image.code_tcm) < len(kernels) and image.code_tcm == kernels[:len(image.code_tcm)]


_boards: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_boards():
    yield
    for backend in _boards.values():
        backend.close()
    _boards.clear()


@needs_gcc
@pytest.mark.parametrize("name", [M7, M33])
@pytest.mark.parametrize("variant", ["simd", "reference"])
def test_kws_bit_exact_with_its_constants_in_sram(name, variant):
    """KWS (conv, depthwise, average pool, fully connected) with its plan in SRAM: on the M7 the SIMD kernels run
    from the ITCM and the weights are read without the D-cache; on the M33 without the flash interface."""
    from measure_agent.plan import compile_plan
    from costmodel.tflite import read_model

    path = shared_model("kws_ref_model.tflite")
    if (name, variant) not in _boards:
        _boards[name, variant] = VirtualBackend(BoardSpec(id=f"cores-{name}-{variant}", kind="virtual", target=name))
    backend = _boards[name, variant]
    image = backend.firmware(FirmwareSettings.for_board(backend.board, variant))
    plan = compile_plan(read_model(path), variant)
    ref = Reference(path)
    xs = random_inputs(ref.inputs, np.random.default_rng(3))
    (want,) = ref.run(xs)
    run = backend.run_plan(image, plan.blob, [x.tobytes() for x in xs], placement="sram", measure_energy=False)
    assert run.placement == "sram"
    assert np.array_equal(np.frombuffer(run.outputs[0], np.int8), want.reshape(-1))
