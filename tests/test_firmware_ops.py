"""Firmware images of selected ops (``MeasureRequest.ops``, ``FirmwareSettings.ops``): as a deployment registers
only its model's ops, the image of a model's ops keeps only those entries of the op table and the linker drops the
rest's code. Measured through a real agent (gRPC, the serial protocol to the firmware on a virtual board): the
outputs stay the interpreter's, the result names the image's ops and build; an op set that leaves out one of the
model's ops is refused before the board is asked, and the firmware itself refuses a plan with an op its image lacks."""

from __future__ import annotations

import dataclasses

import grpc
import numpy as np
import pytest

from costmodel.boards import get_board
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.client import AgentError
from measure_agent.elf import parse_elf
from measure_agent.errors import MeasureError
from measure_agent.firmware_build import build_firmware
from measure_agent.measurement import compile_model
from measure_agent.plan.reference import Reference
from measure_agent.service import local_config
from measure_agent.settings import FirmwareSettings, SettingsError
from protos import agent_pb2 as pb
from tests.conftest import serving, shared_model
from tests.testmodels import model_path

TARGET = "NUCLEO-L4R5ZI"


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with serving(local_config(TARGET, tmp_path_factory.mktemp("ops") / "journal.sqlite", count=1)) as client:
        yield client


def _tensor(x: np.ndarray) -> pb.Tensor:
    return pb.Tensor(shape=list(x.shape), dtype=str(x.dtype), data=x.tobytes())


def test_settings_take_op_kinds_checked_and_sorted():
    board = get_board(TARGET)
    s = FirmwareSettings.for_board(board, "simd", ops=["fc_s8", " CONV_S8", "FC_S8"])
    assert s.ops == ("CONV_S8", "FC_S8") and s.label().endswith(", ops CONV_S8,FC_S8")
    assert FirmwareSettings.for_board(board).ops == ()
    with pytest.raises(SettingsError, match="unknown op kind CONV_S9"):
        FirmwareSettings.for_board(board, ops=["CONV_S9"])


def test_an_image_of_the_models_ops_runs_it_bit_exact(agent):
    model = shared_model("ad01_int8.tflite").read_bytes()
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 640), dtype=np.int8)
    (want,) = Reference(model).run([x])
    small = agent.measure(model, TARGET, repetitions=1, inputs=[_tensor(x)], ops="model")
    full = agent.measure(model, TARGET, repetitions=1, inputs=[_tensor(x)])
    for result in (small, full):
        assert np.array_equal(np.frombuffer(result.outputs[0].data, np.int8).reshape(want.shape), want)
    assert list(small.firmware_ops) == ["FC_S8"] and list(full.firmware_ops) == []
    assert small.firmware_build_id != full.firmware_build_id
    board = get_board(TARGET)
    image = build_firmware(board, FirmwareSettings.for_board(board, ops=["FC_S8"]))
    assert small.firmware_build_id == image.build_id and small.flash_bytes == image.flash_bytes
    assert small.flash_bytes < full.flash_bytes * 0.5       # AD01 needs one op of the runtime's 43
    # the code of the ops left out is not in the image: only the op table's entries reach it
    every = parse_elf(build_firmware(board, FirmwareSettings.for_board(board)).path).symbols
    only_fc = parse_elf(image.path).symbols
    for symbol in ("nn_conv_s8_eval", "conv2d_s8_simd", "nn_softmax_f32_eval", "depthwise_conv2d_s8_simd"):
        assert symbol in every and symbol not in only_fc, symbol
    assert "nn_fc_s8_eval" in only_fc and "fully_connected_s8_simd" in only_fc


def test_an_op_set_without_one_of_the_models_ops_is_refused(agent):
    model = model_path("conv", "int8", shape=(6, 6, 8), filters=3, k=1, s=1, pad="same", act="none").read_bytes()
    with pytest.raises(AgentError) as err:
        agent.measure(model, TARGET, repetitions=1, ops="FC_S8,SOFTMAX_S8")
    assert err.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "the firmware image of ops FC_S8,SOFTMAX_S8 does not run CONV_S8 (layer 0, CONV_2D)" in err.value.message
    with pytest.raises(AgentError) as err:
        agent.measure(model, TARGET, repetitions=1, ops="CONV_S8,NOPE")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "unknown op kind NOPE" in err.value.message


def test_the_firmware_refuses_a_plan_with_an_op_its_image_lacks():
    model = model_path("conv", "int8", shape=(6, 6, 8), filters=3, k=1, s=1, pad="same", act="none").read_bytes()
    plan = compile_model(model).plan
    board = get_board(TARGET)
    image = build_firmware(board, FirmwareSettings.for_board(board, ops=["FC_S8"]))
    backend = VirtualBackend(BoardSpec(id="vb-ops", kind="virtual", target=TARGET))
    try:
        with pytest.raises(MeasureError, match="NN_ERR_UNSUPPORTED_OP"):
            backend.run_plan(image, plan.blob, [bytes(6 * 6 * 8)], placement="sram")
        # the same board runs it once its image has the op
        wide = build_firmware(board, dataclasses.replace(image.settings, ops=("CONV_S8",)))
        assert len(backend.run_plan(wide, plan.blob, [bytes(6 * 6 * 8)], placement="sram").outputs) == 1
    finally:
        backend.close()
