"""Simulated energy monitors for the virtual board: each produces what its instrument produces, at its real
sampling rate, from the virtual board's power model (``vboard/power.py``) switched by its energy pin, so the
real adapters in ``measure_agent/monitors/`` read it through the instrument's own Python package:

* ``rocketlogger.py``: a RocketLogger data file (``.rld``, file version 4) with a current, a voltage and the
  digital channel DI1;
* ``joulescope.py``: a Joulescope recording (``.jls`` v2: current, voltage, ``gpi[0]``), written with ``pyjls``;
* ``ppk2.py``: a Nordic PPK2 on a pseudo-terminal, speaking its serial protocol (metadata, regulator, sample
  stream with the logic port in the sample words);
* ``otii.py``: a Qoitech Otii server on a local TCP socket, speaking its JSON protocol.

``recorder.py`` is what they share: the board's power between the monitor's start and stop."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

#: the simulated instruments' sample rates: the paper's RocketLogger setting, the JS220's and the PPK2's
RATES_HZ = {"rocketlogger": 64000, "joulescope": 1_000_000, "ppk2": 100_000}


def simulated_monitor(raw: dict, board: Callable[[], object]):
    """The adapter of ``raw["kind"]`` (measure_agent/monitors) connected to its simulated instrument, which
    draws the power of the virtual board ``board()`` returns; the instrument is the adapter's ``instrument``
    (its ``recorder.last`` is the power it sampled last)."""
    from .recorder import PowerRecorder

    kind = raw.get("kind")
    recorder = PowerRecorder(board)
    voltage = float(raw.get("voltage_v", 3.3))
    if kind in ("rocketlogger", "joulescope"):
        workdir = Path(tempfile.mkdtemp(prefix=f"vboard-{kind}-"))
        if kind == "rocketlogger":
            from measure_agent.monitors.rocketlogger import RocketLoggerMonitor

            from .rocketlogger import SimulatedRocketLogger

            path = workdir / "trace.rld"
            rate = int(raw.get("sample_rate_hz", RATES_HZ[kind]))
            monitor = RocketLoggerMonitor(SimulatedRocketLogger(recorder, path, rate, voltage), path)
            monitor.instrument = monitor.control
            return monitor
        from measure_agent.monitors.joulescope import JoulescopeMonitor

        from .joulescope import SimulatedJoulescope

        path = workdir / "trace.jls"
        rate = int(raw.get("sample_rate_hz", RATES_HZ[kind]))
        monitor = JoulescopeMonitor(SimulatedJoulescope(recorder, path, rate, voltage), path)
        monitor.instrument = monitor.control
        return monitor
    if kind == "ppk2":
        from measure_agent.monitors.ppk2 import Ppk2Monitor

        from .ppk2 import SimulatedPpk2

        device = SimulatedPpk2(recorder)
        monitor = Ppk2Monitor(device.path, voltage_mv=round(voltage * 1000))
        monitor.instrument = device
        return monitor
    if kind == "otii":
        from measure_agent.monitors.otii import OtiiMonitor

        from .otii import SimulatedOtii

        server = SimulatedOtii(recorder, voltage_v=voltage, rate_hz=int(raw.get("sample_rate_hz") or 50_000))
        monitor = OtiiMonitor("127.0.0.1", server.port)
        monitor.instrument = server
        return monitor
    raise ValueError(f"a virtual board's energy monitor is simulated: kind must be rocketlogger, ppk2, "
                     f"joulescope or otii, not {kind!r}")
