"""The runtime seam: a second runtime behind firmware/runtime/executor.h (firmware/runtimes/fc_only, FULLY_CONNECTED
only), built by the same firmware build, configured per board in bench.toml (runtime = "fc_only") and measured
through the agent end to end (gRPC, the serial protocol to the firmware on the virtual board): its outputs are the
interpreter's, and the result names its runtime and firmware build."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from costmodel.boards import get_board
from measure_agent.backends import BoardSpec
from measure_agent.client import AgentError
from measure_agent.config import ConfigError, load_config
from measure_agent.firmware_build import build_firmware
from measure_agent.plan.reference import Reference
from measure_agent.service import local_config
from measure_agent.settings import FirmwareSettings
from protos import agent_pb2 as pb
from tests.conftest import serving, shared_model
from tests.testmodels import model_path

TARGET = "NUCLEO-L4R5ZI"


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    journal = tmp_path_factory.mktemp("seam") / "journal.sqlite"
    cfg = local_config(TARGET, journal, count=1)
    boards = (BoardSpec(id="vb-fc-only", kind="virtual", target=TARGET, runtime="fc_only"),
              BoardSpec(id="vb-nn", kind="virtual", target=TARGET))
    with serving(dataclasses.replace(cfg, boards=boards)) as client:
        yield client


def _measure(client, model: bytes, board_id: str, x: np.ndarray) -> pb.MeasureResult:
    return client.measure(model, TARGET, board_id=board_id, repetitions=1, runtime_variant="reference",
                          inputs=[pb.Tensor(shape=list(x.shape), dtype=str(x.dtype), data=x.tobytes())])


def test_second_runtime_measures_a_real_model_end_to_end(agent):
    """AD01 (MLPerf Tiny anomaly detection: ten FULLY_CONNECTED layers) on the fc_only runtime."""
    model = shared_model("ad01_int8.tflite").read_bytes()
    x = np.random.default_rng(5).integers(-128, 128, size=(1, 640), dtype=np.int8)
    (want,) = Reference(model).run([x])
    result = _measure(agent, model, "vb-fc-only", x)
    got = np.frombuffer(result.outputs[0].data, np.int8).reshape(want.shape)
    assert np.array_equal(got, want)
    assert result.runtime == "fc_only"
    image = build_firmware(get_board(TARGET), FirmwareSettings.for_board(get_board(TARGET), "reference"),
                           runtime="fc_only")
    assert result.firmware_build_id == image.build_id
    assert len(result.layers) == 10 and all(layer.kernel == "fc_only" for layer in result.layers)
    assert all(layer.cycles > 0 for layer in result.layers)
    # the model runtime on the other board: another build, the same outputs
    other = _measure(agent, model, "vb-nn", x)
    assert other.runtime == "nn" and other.firmware_build_id != result.firmware_build_id
    assert np.array_equal(np.frombuffer(other.outputs[0].data, np.int8).reshape(want.shape), want)


def test_second_runtime_refuses_what_it_cannot_run(agent):
    model = model_path("conv", "int8", shape=(6, 6, 8), filters=3, k=1, s=1, pad="same", act="none").read_bytes()
    x = np.zeros((1, 6, 6, 8), np.int8)
    with pytest.raises(AgentError) as err:
        _measure(agent, model, "vb-fc-only", x)
    assert "unsupported" in str(err.value).lower()


def test_bench_file_names_the_runtime(tmp_path):
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[agent]\njournal = "j.sqlite"\n[[boards]]\nkind = "virtual"\ntarget = "{TARGET}"\n'
                     'runtime = "fc_only"\n')
    (spec,) = load_config(bench).boards
    assert spec.runtime == "fc_only"
    bench.write_text(f'[agent]\njournal = "j.sqlite"\n[[boards]]\nkind = "virtual"\ntarget = "{TARGET}"\n'
                     'runtime = "tflm"\n')
    with pytest.raises(ConfigError):
        load_config(bench)
