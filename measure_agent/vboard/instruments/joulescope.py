"""A simulated Joulescope: a ``.jls`` v2 recording (signals ``current`` in A, ``voltage`` in V as float32 and
``gpi[0]`` as 1-bit samples, at the JS220's 1 MHz), written from the board's power model with ``pyjls``,
the file library the ``joulescope`` package records with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..power import PowerTrace, sample

SIGNAL_CURRENT, SIGNAL_VOLTAGE, SIGNAL_GPI0 = 1, 2, 3


def write_jls(path: Path, trace: PowerTrace, *, rate: int = 1_000_000, voltage_v: float = 3.3,
              pad_s: float = 1e-4) -> Path:
    import pyjls

    current, pin = sample(trace, rate, voltage_v, pre_s=pad_s, post_s=pad_s)
    pad = -len(current) % 8  # the 1-bit signal is written in whole bytes
    current = np.concatenate([current, np.full(pad, current[-1])]).astype(np.float32)
    pin = np.concatenate([pin, np.full(pad, pin[-1])]).astype(np.uint8)
    with pyjls.Writer(str(path)) as w:
        w.source_def(source_id=1, name="JS220-virtual", vendor="Jetperch", model="JS220", version="virtual",
                     serial_number="virtual")
        w.signal_def(SIGNAL_CURRENT, source_id=1, data_type=pyjls.DataType.F32, sample_rate=rate,
                     name="current", units="A")
        w.signal_def(SIGNAL_VOLTAGE, source_id=1, data_type=pyjls.DataType.F32, sample_rate=rate,
                     name="voltage", units="V")
        w.signal_def(SIGNAL_GPI0, source_id=1, data_type=pyjls.DataType.U1, sample_rate=rate, name="gpi[0]",
                     units="")
        w.fsr(SIGNAL_CURRENT, 0, current)
        w.fsr(SIGNAL_VOLTAGE, 0, np.full(len(current), voltage_v, dtype=np.float32))
        w.fsr(SIGNAL_GPI0, 0, np.packbits(pin, bitorder="little"))
    return Path(path)


class SimulatedJoulescope:
    def __init__(self, recorder, path: Path, rate: int = 1_000_000, voltage_v: float = 3.3):
        self.recorder, self.path, self.rate, self.voltage_v = recorder, Path(path), rate, voltage_v

    def start(self) -> None:
        self.recorder.start()

    def stop(self) -> None:
        write_jls(self.path, self.recorder.stop(), rate=self.rate, voltage_v=self.voltage_v)
