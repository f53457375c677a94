"""Energy: the power model, and an energy monitor driven by commands."""

from __future__ import annotations

import sys

import pytest

from costmodel.boards import get_board
from measure_agent.energy import CommandMonitor, MonitorError, modelled_energy, monitor_from_config


def test_power_model_is_power_times_latency():
    board = get_board("NUCLEO-F767ZI")
    # 216e6 cycles = 1 s at 216 MHz, at the paper's 432 mW
    assert modelled_energy(board, 216_000_000) == pytest.approx(0.432)


def test_layer_energy_is_its_cycles_times_power():
    """Item 15: a layer's energy is its own cycles x the catalogue power; the run's cycles outside the layers
    are the overhead, not spread over the layers (KWS: 43.6 mW per layer, not 43.74)."""
    from measure_agent.energy import run_energy

    board = get_board("NUCLEO-L4R5ZI")  # 43.6 mW at 120 MHz
    energy = run_energy(board, total_cycles=1_300_000, layer_cycles=[600_000, 400_000, 0])
    for cycles, joules in zip([600_000, 400_000, 0], energy.layers):
        assert joules == pytest.approx(board.power_mw * 1e-3 * cycles / board.default_clock_hz)
    assert energy.overhead_j == pytest.approx(board.energy_joules(300_000))
    assert energy.total_j == pytest.approx(sum(energy.layers) + energy.overhead_j)


def test_layer_energy_with_a_monitor_is_its_cycles_times_the_measured_power():
    from measure_agent.energy import run_energy

    board = get_board("NUCLEO-L4R5ZI")
    energy = run_energy(board, total_cycles=1_000, layer_cycles=[500, 300], measured_j=2.0)
    assert energy.layers == [pytest.approx(1.0), pytest.approx(0.6)]
    assert energy.overhead_j == pytest.approx(0.4) and energy.total_j == 2.0
    assert run_energy(board, 0, [0, 0], measured_j=0.0).layers == [0.0, 0.0]


def test_command_monitor(tmp_path):
    marker = tmp_path / "armed"
    monitor = monitor_from_config({
        "kind": "command",
        "start": [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('1')"],
        "stop": [sys.executable, "-c", "print('0.00125 J')"],
    })
    monitor.start()
    assert marker.exists()
    assert monitor.stop() == pytest.approx(0.00125)


def test_command_monitor_errors():
    bad_output = CommandMonitor(("true",), (sys.executable, "-c", "print('n/a')"))
    with pytest.raises(MonitorError, match="expected joules"):
        bad_output.stop()
    failing = CommandMonitor((sys.executable, "-c", "import sys; sys.exit(3)"), ("true",))
    with pytest.raises(MonitorError, match="exited 3"):
        failing.start()
    with pytest.raises(MonitorError, match="failed"):
        CommandMonitor(("/no/such/monitor",), ("true",)).start()
    with pytest.raises(ValueError, match="not supported"):
        monitor_from_config({"kind": "oscilloscope"})
    with pytest.raises(ValueError, match="needs start"):
        monitor_from_config({"kind": "rocketlogger"})
