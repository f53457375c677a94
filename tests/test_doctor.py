"""`measure-agent doctor`: per board a table of checks with a verdict and what to do, on real pseudo-terminal
virtual boards and a serial port that does not exist; exit 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from measure_agent.doctor import CHECKS, FAIL, OK, SKIP, WARN, check_board, clock_check

TWO_VIRTUAL = """
[[boards]]
kind = "virtual"
target = "NUCLEO-L4R5ZI"

[[boards]]
kind = "virtual"
id = "f767"
target = "NUCLEO-F767ZI"
"""

MISSING_PORT = """
[[boards]]
kind = "serial"
id = "l496-a"
target = "NUCLEO-L496ZG"
port = "/dev/ttyNOPE0"
energy_monitor = { kind = "command", start = ["true"], stop = ["echo", "0.000123"] }

[[boards]]
kind = "virtual"
id = "l4r5"
target = "NUCLEO-L4R5ZI"
"""


def doctor(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "bench.toml"
    config.write_text(text)
    return subprocess.run([sys.executable, "-m", "measure_agent.cli", "doctor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=600)


def test_two_virtual_boards_are_healthy(tmp_path):
    result = doctor(tmp_path, TWO_VIRTUAL, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and data["verdict"] == WARN
    assert [b["board_id"] for b in data["boards"]] == ["vb-nucleo-l4r5zi-0", "f767"]
    for board in data["boards"]:
        checks = {c["name"]: c for c in board["checks"]}
        assert list(checks) == list(CHECKS)
        assert all(c["verdict"] in (OK, WARN) for c in checks.values()), board
        assert "cycle counter dwt" in checks["hello"]["detail"]
        assert "simulated" in checks["clock"]["detail"] and "does not apply" in checks["clock"]["detail"]
        assert checks["model"]["verdict"] == OK and "bit-exact" in checks["model"]["detail"]
        assert checks["energy"]["verdict"] == WARN and "not configured" in checks["energy"]["detail"]
        assert checks["energy"]["advice"]  # every non-ok row says what to do
    # the table for people: one per board, only boards asked for with --board
    table = doctor(tmp_path, TWO_VIRTUAL, "--board", "f767")
    assert table.returncode == 0, table.stderr
    assert "f767 (virtual NUCLEO-F767ZI): warn" in table.stdout and "vb-nucleo-l4r5zi-0" not in table.stdout
    assert "what to do" in table.stdout and "bit-exact" in table.stdout and "1 board checked" in table.stdout


def test_missing_serial_port_fails_that_board_only(tmp_path):
    result = doctor(tmp_path, MISSING_PORT)
    assert result.returncode == 1, result.stderr
    assert "l496-a (serial NUCLEO-L496ZG): FAIL" in result.stdout and "1 failing (l496-a)" in result.stdout
    data = json.loads(doctor(tmp_path, MISSING_PORT, "--json").stdout)
    serial, virtual = data["boards"]
    checks = {c["name"]: c for c in serial["checks"]}
    assert checks["port"]["verdict"] == FAIL and "/dev/ttyNOPE0 does not exist" in checks["port"]["detail"]
    assert "bench.toml" in checks["port"]["advice"]
    assert [checks[n]["verdict"] for n in ("hello", "firmware", "clock", "model")] == [SKIP] * 4
    assert checks["energy"]["verdict"] == OK and "0.000123 J" in checks["energy"]["detail"]  # it answered
    assert virtual["board_id"] == "l4r5" and virtual["verdict"] == WARN  # the other board still checked
    assert {c["name"]: c["verdict"] for c in virtual["checks"]}["model"] == OK


def test_bad_config_is_one_line_exit_2(tmp_path):
    result = doctor(tmp_path, '[[boards]]\nkind = "virtual"\ntarget = "NUCLEO-L4R5ZI"\ncount = true\n')
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "boards[0].count" in result.stderr
    unknown = doctor(tmp_path, TWO_VIRTUAL, "--board", "nope")
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "--board nope" in unknown.stderr and "f767" in unknown.stderr


def test_serial_board_on_a_simulator_pty_runs_every_check(tmp_path):
    """A serial board whose port is a real pseudo-terminal with the virtual board behind it: the serial path
    end to end (port, HELLO, build id, timed runs against wall time, the model, a monitor that fails)."""
    from costmodel.boards import get_board
    from measure_agent.backends import BoardSpec
    from measure_agent.firmware_build import build_firmware
    from measure_agent.vboard import PtyBridge, VirtualBoard

    board = get_board("NUCLEO-L4R5ZI")
    image = build_firmware(board)
    with PtyBridge(VirtualBoard(board, Path(image.elf)), run_timeout_s=120) as bridge:
        spec = BoardSpec(id="sim", kind="serial", target=board.name, port=bridge.path,
                         energy_monitor={"kind": "command", "start": ["true"], "stop": ["echo", "no joules"]})
        report = check_board(spec)
    checks = {c.name: c for c in report.checks}
    assert [checks[n].verdict for n in ("port", "hello", "firmware", "model")] == [OK] * 4, report
    assert image.build_id in checks["firmware"].detail
    # timed runs against the host's wall time (the simulator's pace is no clock: only the check's form is tested)
    clock = checks["clock"]
    assert "runs of the tiny model" in clock.detail and "host time" in clock.detail and "MHz" in clock.detail
    assert clock.verdict in (OK, FAIL) and (clock.verdict == OK) != bool(clock.advice)
    assert checks["energy"].verdict == FAIL and "expected joules" in checks["energy"].detail
    assert report.verdict == FAIL


def test_clock_verdicts():
    ok = clock_check(120e6 * 0.5, 0.5, 120_000_000, 4_000_000)
    assert ok.verdict == OK and "120 MHz" in ok.detail and not ok.advice
    at_reset = clock_check(4.1e6 * 0.3, 0.3, 120_000_000, 4_000_000)
    assert at_reset.verdict == FAIL and "reset clock (4 MHz)" in at_reset.detail and "30x longer" in at_reset.advice
    off = clock_check(100e6 * 0.3, 0.3, 120_000_000, 4_000_000)
    assert off.verdict == FAIL and "-17%" in off.detail and "oscillator" in off.advice
    assert clock_check(0, 0.0, 120_000_000, 4_000_000).verdict == FAIL


def test_silent_board_fails_hello_with_advice():
    """A port that opens but where nothing answers (a pseudo-terminal with no firmware behind it)."""
    import os
    import tty

    from measure_agent.backends import BoardSpec

    master, slave = os.openpty()
    try:
        tty.setraw(master)
        report = check_board(BoardSpec(id="mute", kind="serial", target="NUCLEO-L496ZG", port=os.ttyname(slave)))
    finally:
        os.close(master)
        os.close(slave)
    checks = {c.name: c for c in report.checks}
    assert checks["port"].verdict == OK
    assert checks["hello"].verdict == FAIL and "no answer to HELLO" in checks["hello"].detail
    assert "flash" in checks["hello"].advice and "firmware.elf" in checks["hello"].advice
    assert [checks[n].verdict for n in ("firmware", "clock", "model")] == [SKIP] * 3
    assert "the hello check failed" in checks["model"].detail
    assert checks["energy"].verdict == WARN


def test_board_running_other_firmware_with_pyocd_flashing_is_a_warning(tmp_path):
    """The firmware row of a serial board set to flash through pyOCD: the agent will flash it (warn), the doctor
    does not (the board still runs the other build)."""
    from costmodel.boards import get_board
    from measure_agent.backends import BoardSpec
    from measure_agent.firmware_build import build_firmware
    from measure_agent.vboard import PtyBridge, VirtualBoard

    board = get_board("NUCLEO-L4R5ZI")
    other = build_firmware(board, runtime="stub")
    with PtyBridge(VirtualBoard(board, Path(other.elf)), run_timeout_s=120) as bridge:
        spec = BoardSpec(id="sim", kind="serial", target=board.name, port=bridge.path,
                         flash={"tool": "pyocd", "probe": None, "target": "stm32l4r5zitx", "frequency": 4_000_000})
        report = check_board(spec)
    firmware = {c.name: c for c in report.checks}["firmware"]
    assert firmware.verdict == WARN and f"the board runs build {other.build_id}" in firmware.detail
    assert firmware.advice.startswith("nothing to do: the agent flashes ") and "with pyOCD (target stm32l4r5zitx)" \
        in firmware.advice
