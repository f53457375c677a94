"""The one fit verdict (measure_agent/fit.py): numbers from the firmware image and the plan, per placement;
which layers the runtime can run; what `costmodel analyze --target` prints of it."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from costmodel.boards import get_board
from costmodel.tflite import read_model
from measure_agent.fit import PlacementError, check_placement, fit, runtime_support, slot_area_bytes, target_verdict
from measure_agent.firmware_build.linker import SLOT_HEADER_BYTES, usable_slots
from measure_agent.plan import compile_plan
from tests.conftest import REPO, shared_model

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
LENET = REPO / "examples" / "lenet_int8.tflite"


def test_placements():
    assert check_placement("") == check_placement(None) == "flash" and check_placement("SRAM") == "sram"
    with pytest.raises(PlacementError, match="flash or sram"):
        check_placement("eeprom")


@needs_gcc
def test_verdict_numbers_follow_the_placement():
    from measure_agent.firmware_build import build_firmware

    board = get_board("NUCLEO-L4R5ZI")
    image = build_firmware(board)
    plan = compile_plan(read_model(LENET))
    flash, sram = fit(plan, image, "flash"), fit(plan, image, "sram")
    assert flash.fits and sram.fits and flash.placement == "flash"
    # weights count against flash with placement flash, against RAM with placement sram
    assert flash.ram_needed == image.ram_bytes + plan.arena_bytes
    assert sram.ram_needed == image.ram_bytes + ((len(plan.blob) + 15) & ~15) + plan.arena_bytes
    assert sram.flash_needed == image.flash_bytes
    first_slot = usable_slots(board, board.flash.base + image.flash_bytes)[0].base
    assert flash.flash_needed == first_slot - board.flash.base + SLOT_HEADER_BYTES + len(plan.blob)
    assert flash.ram_available == sram.ram_available == image.ram_bytes + image.model_ram_bytes
    assert flash.slot_area_bytes == slot_area_bytes(image, board) == board.flash.end - first_slot
    assert "fits NUCLEO-L4R5ZI with the plan in flash" in flash.reason
    # a firmware with 1 KB of model RAM: the arena no longer fits, and the reason says so with the numbers
    tiny = dataclasses.replace(image, model_ram_bytes=1024)
    verdict = fit(plan, tiny, "flash")
    assert not verdict.fits and not verdict.ram and f"arena {plan.arena_bytes:,} bytes > 1,024 bytes model RAM" in verdict.reason
    d = verdict.to_dict()
    assert d["fits"] is False and d["flash"] is True and d["ram"] is False


def test_runtime_support_names_the_layers_it_cannot_run(monkeypatch):
    from measure_agent.plan.lower import LOWERINGS

    graph = read_model(shared_model("kws_ref_model.tflite"))
    assert all(why is None for _, _, why in runtime_support(graph))
    monkeypatch.delitem(LOWERINGS, "SOFTMAX")
    cannot = [(i, op, why) for i, op, why in runtime_support(graph) if why]
    assert cannot == [(12, "SOFTMAX", "the runtime has no kernel for SOFTMAX")]
    verdict = target_verdict(graph, get_board("NUCLEO-L4R5ZI"))
    assert verdict["fits"] is None and "cannot run" in verdict["problem"]
    assert verdict["unsupported"] == [{"index": 12, "op": "SOFTMAX", "reason": "the runtime has no kernel for SOFTMAX"}]


@needs_gcc
def test_analyze_prints_the_runtime_arena_and_unsupported_layers(monkeypatch):
    from typer.testing import CliRunner

    from costmodel.cli import app
    from measure_agent.plan.lower import LOWERINGS

    runner = CliRunner()
    out = runner.invoke(app, ["analyze", str(LENET), "--json"])
    data = json.loads(out.stdout)
    plan = compile_plan(read_model(LENET))
    assert data["peak_ram_bytes"] == plan.arena_bytes == data["runtime"]["arena"]["total"]
    assert data["tensor_arena_bytes"] < data["peak_ram_bytes"] and data["runtime"]["supported"]
    a = data["runtime"]["arena"]
    assert a["tensors"] + a["scratch"] + a["layer_state"] == a["total"]
    monkeypatch.delitem(LOWERINGS, "SOFTMAX")
    out = runner.invoke(app, ["analyze", str(LENET), "--target", "NUCLEO-L496ZG"], env={"COLUMNS": "80"})
    assert out.exit_code == 0, out.output
    assert "cannot run layer" in out.stdout and "SOFTMAX" in out.stdout and "unknown" in out.stdout
    bad = runner.invoke(app, ["analyze", str(LENET), "--target", "NUCLEO-L496ZG", "--placement", "rom"])
    assert bad.exit_code == 2
