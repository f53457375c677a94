"""A simulated RocketLogger: its data file (``.rld``, file version 4), written from the board's power model.

The layout (little endian) is the one the ``rocketlogger`` package's reader reads: a lead-in (magic
0x444C5225, version, header length, block size and count, sample count, nominal sample rate, MAC address, start
time, comment length, binary and analog channel counts), the comment, one 28-byte header per channel (unit,
scale exponent, bytes, validity link, name), then data blocks: four timestamps (realtime and monotonic, seconds
and nanoseconds, 8 bytes each) and per sample the binary channels as one 32-bit word and each analog channel as
a signed integer in units of 10^scale. The ADC runs from 100 MHz / 49 instead of its nominal 2.048 MHz, so the
true sample rate is the nominal one x (100e6 / 49) / 2.048e6, as the reader's ``get_time()`` says.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..power import PowerTrace, sample

MAGIC, VERSION = 0x444C5225, 4
ADC_RATE_SCALE = (100e6 / 49) / 2.048e6
NOMINAL_RATES = (1000, 2000, 4000, 8000, 16000, 32000, 64000)
UNIT_VOLTAGE, UNIT_CURRENT, UNIT_BINARY = 1, 2, 3
UNLINKED = 0xFFFF
VOLTAGE_SCALE, CURRENT_SCALE = -8, -9  # 10 nV, 1 nA


def _channel(unit: int, scale: int, size: int, name: str) -> bytes:
    return struct.pack("<IiHH16s", unit, scale, size, UNLINKED, name.encode())


def write_rld(path: Path, trace: PowerTrace, *, rate: int = 64000, voltage_v: float = 3.3,
              pad_s: float = 1e-3, comment: str = "mcu-nas virtual board") -> Path:
    """Write the recording of ``trace`` as RocketLogger would at nominal ``rate`` (the paper's 64 kHz)."""
    if rate not in NOMINAL_RATES:
        raise ValueError(f"a RocketLogger samples at {NOMINAL_RATES} Hz, not {rate}")
    true_rate = rate * ADC_RATE_SCALE
    current, pin = sample(trace, true_rate, voltage_v, pre_s=pad_s, post_s=pad_s)
    block = max(1, rate // 10)
    count = -(-len(current) // block)
    pad = count * block - len(current)
    current = np.concatenate([current, np.full(pad, current[-1])])
    pin = np.concatenate([pin, np.full(pad, pin[-1])])
    raw_comment = comment.encode()
    raw_comment += b"\0" * (-len(raw_comment) % 4)
    channels = (_channel(UNIT_BINARY, 0, 0, "DI1") + _channel(UNIT_VOLTAGE, VOLTAGE_SCALE, 4, "V1")
                + _channel(UNIT_CURRENT, CURRENT_SCALE, 4, "I1"))
    lead_in_bytes = 4 + 2 + 2 + 4 + 4 + 8 + 2 + 6 + 16 + 4 + 2 + 2
    header_bytes = lead_in_bytes + len(raw_comment) + len(channels)
    lead_in = struct.pack("<IHHIIQH6sqqIHH", MAGIC, VERSION, header_bytes, block, count, count * block, rate,
                          b"\x02\x00\x00\x00\x00\x01", 0, 0, len(raw_comment), 1, 2)
    samples = np.zeros(count * block, dtype=np.dtype([("bin", "<u4"), ("V1", "<i4"), ("I1", "<i4")]))
    samples["bin"] = pin.astype(np.uint32)
    samples["V1"] = round(voltage_v / 10.0 ** VOLTAGE_SCALE)
    samples["I1"] = np.round(current / 10.0 ** CURRENT_SCALE).astype(np.int64)
    with open(path, "wb") as f:
        f.write(lead_in + raw_comment + channels)
        for b in range(count):
            t = b * block / true_rate
            sec, ns = int(t), int(round((t - int(t)) * 1e9))
            f.write(struct.pack("<qqqq", sec, ns, sec, ns))
            f.write(samples[b * block:(b + 1) * block].tobytes())
    return Path(path)


class SimulatedRocketLogger:
    """The instrument behind a RocketLogger adapter on a virtual board: start() arms the recorder, stop()
    writes the file the adapter then reads."""

    def __init__(self, recorder, path: Path, rate: int = 64000, voltage_v: float = 3.3):
        self.recorder, self.path, self.rate, self.voltage_v = recorder, Path(path), rate, voltage_v

    def start(self) -> None:
        self.recorder.start()

    def stop(self) -> None:
        write_rld(self.path, self.recorder.stop(), rate=self.rate, voltage_v=self.voltage_v)
