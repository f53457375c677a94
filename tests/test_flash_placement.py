"""Weights where a deployment keeps them: the firmware programs the plan into a flash slot (on the virtual
board through the modelled FLASH controller), the executor reads the constants from there, the arena stays in
SRAM; a plan larger than SRAM runs; a plan already in a slot is not programmed again; a worn board refuses
with the numbers; ListBoards shows the erase counts; the fit verdict of `costmodel analyze --target` is the
agent's; FLASH_ACR.LATENCY programmed by the firmware is what the virtual board times."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from costmodel.boards import get_board
from costmodel.tflite import read_model
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.errors import DoesNotFit, MeasureError
from measure_agent.fit import fit
from measure_agent.measurement import measure
from measure_agent.plan import compile_plan
from measure_agent.plan.reference import Reference
from measure_agent.settings import FirmwareSettings
from protos import agent_pb2 as pb
from tests.conftest import REPO, shared_model
from tests.testmodels import random_inputs

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")


def backend_for(target: str, name: str = "flash", cls=VirtualBackend):
    return cls(BoardSpec(id=f"{name}-{target}", kind="virtual", target=target))


def request(model: bytes, placement: str = "", rid: str = "r", reps: int = 1) -> pb.MeasureRequest:
    return pb.MeasureRequest(request_id=rid, model=model, repetitions=reps, placement=placement)


def test_a_plan_larger_than_sram_runs_from_flash():
    """The MLPerf Tiny AD01 autoencoder (280 KB plan) on the NUCLEO-L552ZE-Q (256 KB SRAM): it cannot be
    uploaded into SRAM, it runs from flash, bit-exact with the TFLite interpreter."""
    path = shared_model("ad01_int8.tflite")
    board = get_board("NUCLEO-L552ZE-Q")
    settings = FirmwareSettings.for_board(board)
    plan = compile_plan(read_model(path), settings.variant)  # the plan measure() uploads (SIMD: FC quads)
    assert len(plan.blob) > board.sram.size
    backend = backend_for(board.name)
    try:
        image = backend.firmware(settings)
        assert not fit(plan, image, "sram").fits and fit(plan, image, "flash").fits
        ref = Reference(path)
        xs = random_inputs(ref.inputs, np.random.default_rng(4))
        run = backend.run_plan(image, plan.blob, [x.tobytes() for x in xs], measure_energy=False)
        assert run.placement == "flash" and run.programmed
        (want,) = ref.run(xs)
        assert np.array_equal(np.frombuffer(run.outputs[0], np.int8), want.reshape(-1))
        with pytest.raises(DoesNotFit, match="plan in SRAM"):
            measure(backend, request(path.read_bytes(), "sram"))
        result = measure(backend, request(path.read_bytes(), "flash", "ad-flash"))
        assert result.placement == "flash" and not result.plan_programmed  # the slot holds it already
        assert result.flash_endurance == 10000 and any(s.state == "plan" for s in result.flash_slots)
        assert result.board_kind == "virtual" and result.board_model_version and result.runtime == "nn"
    finally:
        backend.close()


def test_a_plan_in_a_slot_is_not_programmed_again():
    """The second run of the same plan, and the first one after the firmware restarted, find it in flash
    (counted by the virtual FLASH controller: no erase, no programming)."""
    path = shared_model("kws_ref_model.tflite")
    plan = compile_plan(read_model(path))
    backend = backend_for("NUCLEO-L4R5ZI")
    try:
        image = backend.firmware(FirmwareSettings.for_board(backend.board))
        x = [bytes(plan.inputs[0].bytes)]
        first = backend.run_plan(image, plan.blob, x, measure_energy=False)
        fc = backend._vb.peripherals.flash_ctl
        programs, erases = fc.programs, fc.erases
        assert first.programmed and programs >= len(plan.blob) // 8 * 0.9 and erases >= 1
        second = backend.run_plan(image, plan.blob, x, measure_energy=False)
        assert not second.programmed and (fc.programs, fc.erases) == (programs, erases)
        backend.close()  # the board restarts (a new simulator on the same flash chip)
        third = backend.run_plan(image, plan.blob, x, measure_energy=False)
        fc = backend._vb.peripherals.flash_ctl
        assert not third.programmed and (fc.programs, fc.erases) == (0, 0)
        # the first inference after a start runs with cold ART caches (first and third: the same cycles); the
        # second may find code lines of the previous inference still cached, never more cycles
        assert third.cycles.layer_cycles == first.cycles.layer_cycles
        assert all(s <= f for s, f in zip(second.cycles.layer_cycles, first.cycles.layer_cycles))
        sram = backend.run_plan(image, plan.blob, x, placement="sram", measure_energy=False)
        assert sram.placement == "sram" and sram.outputs == third.outputs
    finally:
        backend.close()


class ShortLivedBackend(VirtualBackend):
    """A virtual board whose firmware believes its flash endures 2 erase cycles."""

    def firmware(self, settings):
        from measure_agent.firmware_build import build_firmware

        return build_firmware(self.board, settings, extra_cflags=("-DSHELL_FLASH_ENDURANCE=2u",))


def test_a_worn_board_refuses_and_list_boards_shows_the_counts(tmp_path):
    """Endurance 2: every slot may be erased once. AD01 takes 18 of the L552's 28 slots; VWW needs 16 more,
    which no run without a worn slot has: refused before anything is erased, with the numbers."""
    from measure_agent.config import AgentConfig
    from measure_agent.service import Agent

    backend = backend_for("NUCLEO-L552ZE-Q", "worn", ShortLivedBackend)
    agent = Agent(AgentConfig(journal=tmp_path / "journal.sqlite", clients={"local": "t"}), backends=[backend])
    try:
        first = agent.submit(request(shared_model("ad01_int8.tflite").read_bytes(), rid="ad"), "local")
        result = first.future.result(timeout=600)
        assert result.plan_programmed and result.flash_endurance == 2
        used = [s for s in result.flash_slots if s.state in ("plan", "plan-continued")]
        assert len(used) == 18 and all(s.erase_count == 1 for s in used)
        (info,) = agent.boards()
        assert info.flash_endurance == 2 and [s.erase_count for s in info.flash_slots] == \
            [s.erase_count for s in result.flash_slots]
        second = agent.submit(request(shared_model("vww_96_int8.tflite").read_bytes(), rid="vww"), "local")
        with pytest.raises(MeasureError) as exc:
            second.future.result(timeout=600)
        msg = str(exc.value)
        assert "flash worn" in msg and "erased 1 times" in msg and "endurance 2 cycles" in msg
    finally:
        agent.close()
        backend.close()


@pytest.mark.parametrize("placement", ["flash", "sram"])
@pytest.mark.parametrize("model,target", [("ad01_int8.tflite", "NUCLEO-L552ZE-Q"),
                                          ("kws_ref_model.tflite", "NUCLEO-F103RB"),
                                          ("kws_ref_model.tflite", "NUCLEO-G071RB"),
                                          ("lenet_int8.tflite", "NUCLEO-L4R5ZI")])
def test_analyze_and_the_agent_give_the_same_verdict(model, target, placement):
    """The issue's examples: `costmodel analyze --target` says fits exactly when the agent measures, and
    reports the arena the firmware gets."""
    from typer.testing import CliRunner

    from costmodel.cli import app

    path = REPO / "examples" / model if model.startswith("lenet") else shared_model(model)
    out = CliRunner().invoke(app, ["analyze", str(path), "--target", target, "--placement", placement, "--json"])
    assert out.exit_code == 0, out.output
    analysis = json.loads(out.stdout)
    verdict = analysis["fits"]
    backend = backend_for(target, "verdict")
    try:
        try:
            result = measure(backend, request(path.read_bytes(), placement, f"{model}-{placement}"))
        except DoesNotFit as exc:
            assert verdict["fits"] is False, verdict
            assert str(exc) == verdict["reason"]
        else:
            assert verdict["fits"] is True, verdict
            assert result.arena_bytes == analysis["peak_ram_bytes"] == verdict["arena_bytes"]
            assert result.placement == placement
    finally:
        backend.close()


def test_the_firmware_programs_the_wait_states_the_board_times():
    """A firmware built for 1 wait state runs on the virtual NUCLEO-L496ZG (catalogue: 4 at 80 MHz): the model's
    wait states are the firmware's ACR.LATENCY, and the same KWS layer costs fewer cycles. 1 wait state means a
    clock of at most 32 MHz (RM0351 Table 9, range 1): the firmware sets its clock tree up to 32 MHz."""
    from measure_agent.firmware_build import build_firmware
    from measure_agent.serial_link import BoardLink, open_serial
    from measure_agent.vboard import PtyBridge, VirtualBoard

    board = get_board("NUCLEO-L496ZG")
    plan = compile_plan(read_model(shared_model("kws_ref_model.tflite")))
    totals = {}
    for ws, hz in ((board.flash_wait_states, board.default_clock_hz), (1, 32_000_000)):
        image = build_firmware(dataclasses.replace(board, flash_wait_states=ws, default_clock_hz=hz))
        vb = VirtualBoard(board, str(image.path))
        bridge = PtyBridge(vb)
        port = open_serial(bridge.path)
        try:
            link = BoardLink(port, timeout=10.0)
            assert link.hello().core_clock_hz == hz
            assert vb.peripherals.flash_ctl.wait_states == ws
            link.upload_plan(plan.blob, placement="sram")
            link.set_input(0, bytes(plan.inputs[0].bytes))
            totals[ws] = link.run(1).total
        finally:
            port.close()
            bridge.close()
    assert totals[1] < totals[board.flash_wait_states]


def test_measure_cli_placement_option(tmp_path):
    """`measure-agent measure --placement sram` measures with the plan in SRAM, and says so."""
    import subprocess
    import sys

    from tests.test_agent_e2e import small_model

    model = tmp_path / "small.tflite"
    model.write_bytes(small_model())
    runs = {}
    for placement in ("sram", "flash"):
        done = subprocess.run([sys.executable, "-m", "measure_agent.cli", "measure", str(model), "--target",
                               "NUCLEO-L496ZG", "--repetitions", "1", "--placement", placement, "--json"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        runs[placement] = json.loads(done.stdout)
        assert runs[placement]["placement"] == placement
    assert runs["flash"]["plan_programmed"] and not runs["sram"].get("flash_slots")
    assert [lay["op"] for lay in runs["flash"]["layers"]] == [lay["op"] for lay in runs["sram"]["layers"]]
    bad = subprocess.run([sys.executable, "-m", "measure_agent.cli", "measure", str(model), "--placement", "rom"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "rom" in bad.stderr
