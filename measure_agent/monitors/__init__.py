"""Energy monitors that trace: an instrument's samples of current, voltage and the board's energy pin, cut into
per-layer energy at the pin's edges (``windows.py``). One adapter per instrument, each through the instrument's
own Python package: ``rocketlogger`` (the paper's, ``.rld`` files), ``ppk2`` (Nordic PPK2, ``ppk2-api`` over its
serial port), ``joulescope`` (``.jls`` v2 recordings, ``pyjls``), ``otii`` (Qoitech Otii, ``otii-tcp-client``).
``measure_agent.energy.monitor_from_config`` builds them from a board's ``energy_monitor`` table."""

from .base import MonitorError, Trace, TracingMonitor
from .windows import LayerEnergy, TracedEnergy, layer_energy

KINDS = ("rocketlogger", "ppk2", "joulescope", "otii")

__all__ = ["KINDS", "LayerEnergy", "MonitorError", "Trace", "TracedEnergy", "TracingMonitor", "layer_energy"]
