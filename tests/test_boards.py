"""The board catalogue."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from costmodel.boards import CatalogueError, catalogue, get_board, parse_catalogue

SOURCED_FIELDS = ("max_clock_hz", "reset_clock_hz", "flash", "sram", "flash_wait_states", "flash_accelerator",
                  "uart", "power_mw")


def test_required_boards_and_cores():
    boards = catalogue()
    for name in ("NUCLEO-L496ZG", "DISCO-F469NI", "NUCLEO-F767ZI", "NUCLEO-L4R5ZI"):
        assert name in boards
    cores = {b.core for b in boards.values()}
    assert {"cortex-m0plus", "cortex-m33", "cortex-m4", "cortex-m7"} <= cores


@pytest.mark.parametrize("name", list(catalogue()))
def test_every_number_has_a_source(name):
    board = get_board(name)
    missing = [f for f in SOURCED_FIELDS if not board.sources.get(f)]
    assert not missing, f"{name}: no source for {missing}"
    assert board.default_clock_hz <= board.max_clock_hz
    assert board.flash.size > 0 and board.sram.size > 0


def test_paper_powers():
    # the paper's measured average power in inference at 3.3 V
    assert get_board("NUCLEO-L496ZG").power_mw == 45.0
    assert get_board("DISCO-F469NI").power_mw == 214.0
    assert get_board("NUCLEO-F767ZI").power_mw == 432.0
    assert all(get_board(n).power_kind == "measured" for n in ("NUCLEO-L496ZG", "DISCO-F469NI", "NUCLEO-F767ZI"))


def test_energy_model():
    board = get_board("NUCLEO-L496ZG")
    # 80e6 cycles = 1 s at 80 MHz, at 45 mW -> 45 mJ
    assert board.energy_joules(80_000_000) == pytest.approx(0.045)
    assert get_board("nucleo-l496zg") is board


def test_variants_follow_the_core():
    assert get_board("NUCLEO-G071RB").runtime_variants() == ("reference",)
    assert get_board("NUCLEO-G071RB").float_abis() == ("soft",)
    assert get_board("NUCLEO-L4R5ZI").runtime_variants() == ("reference", "simd")


def test_bad_catalogues():
    with pytest.raises(CatalogueError, match="not valid TOML"):
        parse_catalogue("boards = [")
    with pytest.raises(CatalogueError, match="missing field"):
        parse_catalogue('[boards.X]\nmcu = "a"\ncore = "cortex-m4"\nfpu = "sp"\nflash_accelerator = "art"\n'
                        'power_kind = "measured"\n')
    with pytest.raises(CatalogueError, match="core must be one of"):
        parse_catalogue('[boards.X]\nmcu = "a"\ncore = "cortex-a53"\n')
    with pytest.raises(CatalogueError, match="unknown target"):
        get_board("NUCLEO-NOPE")


def test_targets_cli():
    result = subprocess.run([sys.executable, "-m", "measure_agent.cli", "targets", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert {b["name"] for b in data["boards"]} == set(catalogue())
    assert all(b["sources"]["power_mw"] for b in data["boards"])
