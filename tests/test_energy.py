"""Energy: the power model, and an energy monitor driven by commands."""

from __future__ import annotations

import sys

import pytest

from costmodel.boards import get_board
from measure_agent.energy import CommandMonitor, MonitorError, modelled_energy, monitor_from_config, split_energy


def test_power_model_is_power_times_latency():
    board = get_board("NUCLEO-F767ZI")
    # 216e6 cycles = 1 s at 216 MHz, at the paper's 432 mW
    assert modelled_energy(board, 216_000_000) == pytest.approx(0.432)


def test_split_by_cycles():
    assert split_energy(1.0, [1, 3, 0]) == [0.25, 0.75, 0.0]
    assert split_energy(1.0, [0, 0]) == [0.0, 0.0]


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
        monitor_from_config({"kind": "rocketlogger"})
