"""Measured per-layer energy: the firmware's energy pin, the virtual board's power model, and the four tracing
monitor adapters against their simulated instruments (each read through the instrument's own Python package)."""

from __future__ import annotations

import importlib.util
import os
import socket
import tty

import numpy as np
import pytest

from costmodel.boards import catalogue, get_board
from measure_agent.backends import BoardSpec, VirtualBackend
from measure_agent.measurement import compile_model, measure
from measure_agent.monitors import MonitorError, Trace, layer_energy
from measure_agent.settings import FirmwareSettings
from protos import agent_pb2 as pb
from tests.conftest import REPO

LENET = (REPO / "examples" / "lenet_int8.tflite").read_bytes()
TARGET = "NUCLEO-L496ZG"  # the paper's board: 45 mW measured, 80 MHz, energy pin PF13
RUNS = 2
PACKAGES = {"rocketlogger": "rocketlogger", "joulescope": "pyjls", "ppk2": "ppk2_api", "otii": "otii_tcp_client"}


def _needs(kind: str):
    module = PACKAGES[kind]
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"the {kind} adapter's package ({module}) is not installed: pip install .[monitors]")


def _measure(kind: str, repetitions: int = RUNS, **extra):
    backend = VirtualBackend(BoardSpec(id=f"vb-{kind}", kind="virtual", target=TARGET,
                                       energy_monitor={"kind": kind, **extra}))
    try:
        result = measure(backend, pb.MeasureRequest(request_id=f"e-{kind}", model=LENET, repetitions=repetitions))
        power = backend.monitor.instrument.recorder.last
    finally:
        backend.release()
    return result, power


# ------------------------------------------------------------------ the firmware's energy pin
def test_the_executor_toggles_the_energy_pin_at_every_layer_boundary_outside_the_timed_windows():
    """LeNet (9 layers), 2 runs: (9 + 1) edges per run; the stretch between two edges is the layer's DWT window
    plus the executor's few instructions between two layers (the counter reads, the toggle), never less."""
    backend = VirtualBackend(BoardSpec(id="vb-pin", kind="virtual", target=TARGET))
    try:
        image = backend.firmware(FirmwareSettings.for_board(backend.board))
        link = backend.link(image)
        plan = compile_model(LENET).plan
        link.prepare(plan.blob, [bytes(784)], "sram")
        pin = backend._vb.energy_pin
        assert pin.address == 0x48001418 and pin.level == 0  # GPIOF_BSRR (RM0351 memory map + 0x18), low
        pin.edges()
        cycles = link.run(RUNS)
        edges = pin.edges()
    finally:
        backend.release()
    n = len(plan.layers)
    assert len(edges) == (n + 1) * RUNS and pin.dropped == 0
    assert [level for _, _, level in edges] == [1, 0] * ((n + 1) * RUNS // 2)  # 10 toggles a run: back to low
    last_run = [c for c, _, _ in edges[(n + 1) * (RUNS - 1):]]
    overhead = [b - a - layer for a, b, layer in zip(last_run, last_run[1:], cycles.layer_cycles)]
    assert all(0 < o < 100 for o in overhead), overhead


@_needs("joulescope")
@pytest.mark.parametrize("target", sorted(catalogue()))
def test_every_board_marks_its_layers_on_its_energy_pin(target):
    """Each family's GPIO layout (the F1's CRH, the others' MODER; BSRR at 0x10 / 0x18): the firmware makes the
    catalogue pin an output and the virtual board sees (layers + 1) edges a run at the pin's BSRR."""
    from measure_agent.errors import DoesNotFit

    board = get_board(target)
    backend = VirtualBackend(BoardSpec(id=f"vb-{target}", kind="virtual", target=target,
                                       energy_monitor={"kind": "joulescope"}))
    try:
        result = measure(backend, pb.MeasureRequest(request_id=f"pin-{target}", model=LENET, repetitions=1))
        power = backend.monitor.instrument.recorder.last
        pin = backend._vb.energy_pin
    except DoesNotFit as exc:
        pytest.skip(f"LeNet does not fit {target}: {exc}")
    finally:
        backend.release()
    gpio = board.family.gpio
    assert pin.address == gpio.port_base(board.energy_gpio.port) + gpio.bsrr_offset
    assert len(power.edges) == len(result.layers) + 1 and result.energy_source == "monitor"


# ------------------------------------------------------------------ the power model
def test_power_model_makes_layers_differ_and_keeps_the_inference_at_the_catalogue_power():
    result, power = _measure("joulescope", repetitions=1)
    board = get_board(TARGET)
    windows = power.window_energies()
    span = (power.edges[-1] - power.edges[0]) / board.default_clock_hz
    assert sum(windows) == pytest.approx(board.power_mw * 1e-3 * span, rel=1e-9)
    per_cycle = [w / (b - a) for w, a, b in zip(windows, power.edges, power.edges[1:])]
    assert max(per_cycle) / min(per_cycle) > 1.05  # spreading a total by cycles would be visibly wrong


# ------------------------------------------------------------------ the adapters against their instruments
@pytest.mark.parametrize("kind", [pytest.param(k, marks=_needs(k)) for k in ("rocketlogger", "ppk2", "joulescope",
                                                                             "otii")])
def test_monitor_measures_each_layer_within_one_percent_of_the_power_model(kind):
    result, power = _measure(kind)
    n = len(result.layers)
    rate = {"rocketlogger": 64000 * (100e6 / 49) / 2.048e6, "ppk2": 100_000, "joulescope": 1_000_000,
            "otii": 50_000}[kind]
    assert result.energy_source == "monitor" and result.energy_monitor == kind
    assert result.energy_sample_rate_hz == pytest.approx(rate)
    assert result.energy_edges_expected == (n + 1) * RUNS and 0 < result.energy_edges_seen <= (n + 1) * RUNS
    # the edges sit at the layer boundaries the DWT cycle counts predict, within one sample period
    clock = get_board(TARGET).default_clock_hz
    assert result.energy_boundary_error_cycles <= clock / rate
    # the power model's energy between the same edges, per layer, averaged over the runs
    model = np.array(power.window_energies() + [0.0]).reshape(RUNS, n + 1)[:, :n].mean(axis=0)
    measured = [(layer.energy_source, layer.energy_j) for layer in result.layers]
    resolved = [k for k, (source, _) in enumerate(measured) if source == "monitor"]
    # the two convolutions and the first pooling at least: at 50 kHz (1,600 cycles a sample) the dense layers'
    # edges lie within two samples of the RESHAPE's or of the last dense layer's (about 3,200 cycles)
    assert {0, 1, 2} <= set(resolved)
    for k in resolved:
        assert measured[k][1] == pytest.approx(model[k], rel=0.01), (k, result.layers[k].op)
    # the RESHAPE (47 cycles) is shorter than any of these instruments' sample periods: not resolvable
    assert result.layers[4].op == "RESHAPE" and measured[4][0] == "monitor-spread"
    # spreading the measured total by cycles (what a command monitor does) misses some layer by more than 1 %
    total = sum(e for _, e in measured)
    cycles = [layer.cycles for layer in result.layers]
    spread = [total * c / sum(cycles) for c in cycles]
    assert max(abs(s / model[k] - 1) for k, s in enumerate(spread) if k in resolved) > 0.01


@_needs("joulescope")
@_needs("rocketlogger")
def test_layers_shorter_than_a_few_samples_are_spread_and_said_so():
    """The same run at 1 MHz and at the RocketLogger's slowest rate, 1 kHz (about 80 300 cycles a sample, 20 samples
    a run): at 1 kHz a layer is measured only when it spans 4 samples and no other boundary lies within two
    samples of its edges; LeNet has no such layer (the first pooling, 1.9 samples, sits between the two
    convolutions), so every layer is spread and says so, and the run's total is still the measured one."""
    fast, _ = _measure("joulescope", repetitions=1)
    slow, _ = _measure("rocketlogger", repetitions=1, sample_rate_hz=1000.0)
    fast_sources = [layer.energy_source for layer in fast.layers]
    # at 1 MHz (80 cycles a sample) only the RESHAPE (47 cycles) and its neighbours, whose edges lie within two
    # samples of the RESHAPE's, are spread
    assert [k for k, source in enumerate(fast_sources) if source != "monitor"] == [3, 4, 5]
    assert {layer.energy_source for layer in slow.layers} == {"monitor-spread"}
    assert slow.energy_j == pytest.approx(fast.energy_j, rel=0.05)


# ------------------------------------------------------------------ the cutting, hand-derived
def test_layer_energy_cuts_at_edges_inside_the_straddling_sample():
    """1 kHz, 1 V, 4 cycles a sample: idle at 1 mA, layer 0 at 2 mA for 3.25 samples (13 cycles), layer 1 at 4 mA
    for 5.5 samples (22 cycles); edges at 2.5, 5.75 and 11.25 ms, the pin's level sampled at each sample's start.
    The sample straddling an edge is the mix of its neighbours: the edge time comes back exactly."""
    rate, clock = 1000.0, 4000.0
    edges = [2.5, 5.75, 11.25]

    def current_at(x):
        return 1e-3 if x < 2.5 or x >= 11.25 else 2e-3 if x < 5.75 else 4e-3

    current = np.array([np.mean([current_at(i + (k + 0.5) / 1000) for k in range(1000)]) for i in range(15)])
    pin = np.array([sum(e <= i for e in edges) % 2 == 1 for i in range(15)])
    trace = Trace("test", rate, current, np.ones(15), pin)
    energy = layer_energy(trace, layer_cycles=[13, 22], run_cycles=35, runs=1, clock_hz=clock)
    assert energy.edges_seen == 3 and energy.edges_expected == 3
    assert energy.boundary_error_cycles == pytest.approx(0.0, abs=1e-9)
    assert [layer.resolved for layer in energy.layers] == [False, True]  # 3.25 samples < 4
    assert energy.layers[1].joules == pytest.approx(4e-3 * 5.5e-3, rel=1e-9)
    # layer 0 is too short to measure: the measured layers' energy per cycle (1 uJ) x its 13 cycles
    assert energy.layers[0].joules == pytest.approx(4e-3 * 5.5e-3 / 22 * 13, rel=1e-9)


def test_a_trace_without_edges_is_a_clear_error():
    trace = Trace("ppk2", 100_000.0, np.full(1000, 0.01), np.full(1000, 3.3), np.zeros(1000, dtype=bool))
    with pytest.raises(MonitorError, match="no edge of the energy pin .* wired to the monitor's digital input"):
        layer_energy(trace, [1000, 2000], 3100, 1, 80e6)


def test_an_edge_that_is_no_layer_boundary_is_a_clear_error():
    pin = np.zeros(1000, dtype=bool)
    pin[100:200] = True   # two edges, 100 samples apart: not the 10-sample layer the cycles say
    pin[300:] = True
    trace = Trace("joulescope", 1e6, np.full(1000, 0.01), np.full(1000, 3.3), pin)
    with pytest.raises(MonitorError, match="at no layer boundary the cycle counts predict"):
        layer_energy(trace, [800], 820, 1, 80e6)


# ------------------------------------------------------------------ instruments that do not answer
@_needs("ppk2")
def test_a_ppk2_that_does_not_answer():
    from measure_agent.monitors.ppk2 import Ppk2Monitor

    master, slave = os.openpty()  # a serial port with nothing behind it
    tty.setraw(slave)
    try:
        with pytest.raises(MonitorError, match="no calibration metadata"):
            Ppk2Monitor(os.ttyname(slave)).start()
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(MonitorError, match="cannot open /no/such/port"):
        Ppk2Monitor("/no/such/port").start()


@_needs("otii")
def test_an_otii_server_that_does_not_answer():
    from measure_agent.monitors.otii import OtiiMonitor

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MonitorError, match=f"127.0.0.1:{port} does not answer"):
        OtiiMonitor("127.0.0.1", port).start()


@_needs("rocketlogger")
def test_a_rocketlogger_recording_that_is_not_there(tmp_path):
    from measure_agent.monitors.base import CommandControl
    from measure_agent.monitors.rocketlogger import RocketLoggerMonitor

    monitor = RocketLoggerMonitor(CommandControl(("true",), ("true",)), tmp_path / "none.rld")
    monitor.start()
    with pytest.raises(MonitorError, match="no data file"):
        monitor.stop()
    (tmp_path / "none.rld").write_bytes(b"not a RocketLogger file")
    with pytest.raises(MonitorError, match="cannot read"):
        monitor.read(tmp_path / "none.rld")


# ------------------------------------------------------------------ the doctor
@_needs("ppk2")
def test_doctor_energy_row_sees_the_edges():
    from measure_agent.doctor import OK, check_board

    report = check_board(BoardSpec(id="vb", kind="virtual", target=TARGET, energy_monitor={"kind": "ppk2"}))
    energy = report.check("energy")
    assert energy.verdict == OK, energy
    assert "ppk2 at 100 kHz answered and saw" in energy.detail and "of 10 edges of PF13" in energy.detail
