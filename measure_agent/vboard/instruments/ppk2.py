"""A simulated Nordic Power Profiler Kit II on a pseudo-terminal, speaking the PPK2's serial protocol.

Commands are single opcode bytes with their arguments: GET_META_DATA (0x19) answers the calibration as text
lines ``key: value`` ending in ``END``; REGULATOR_SET (0x0D, two bytes) sets the source voltage (800 mV + the
16-bit argument - 32); SET_POWER_MODE (0x11, one byte), DEVICE_RUNNING_SET (0x0C, one byte); AVERAGE_START
(0x06) arms the recording, AVERAGE_STOP (0x07) ends it. Samples are 32-bit little-endian words at 100 kHz:
bits 0-13 the ADC code, 14-16 the measurement range, 24-31 the logic port (the energy pin on ``digital``).
The current is code x 4 x 1.8 V / 163840 / R[range] with the calibration sent in the metadata (a linear
one: no gain correction). Where the real kit switches ranges per sample, this one keeps the most sensitive
range that holds the recording's largest current (its ``ppk2-api`` reader then applies no spike filter).

The recording is sampled when AVERAGE_STOP arrives, from the board's power between start and stop, and
streamed then: the board's virtual time is not the host's, so the samples cannot arrive as they happen.
"""

from __future__ import annotations

import os
import threading
import tty

import numpy as np

from ..power import sample

RATE_HZ = 100_000
RESISTORS = (1031.64, 101.65, 10.15, 0.94, 0.043)   # ohms per range, the kit's nominal shunts
ADC_VOLTS = 1.8 / 163840                              # one ADC step (the reader multiplies the code by 4)
GET_META_DATA, REGULATOR_SET, SET_POWER_MODE, DEVICE_RUNNING_SET = 0x19, 0x0D, 0x11, 0x0C
AVERAGE_START, AVERAGE_STOP = 0x06, 0x07
_ARGS = {REGULATOR_SET: 2, SET_POWER_MODE: 1, DEVICE_RUNNING_SET: 1, 0x08: 1, 0x01: 3, 0x03: 4}


def metadata() -> bytes:
    rows = ["Calibrated: 0"]
    for i, r in enumerate(RESISTORS):
        rows += [f"R{i}: {r}", f"GS{i}: 0", f"GI{i}: 1", f"O{i}: 0", f"S{i}: 0", f"I{i}: 0", f"UG{i}: 1"]
    rows += ["HW: 0", "IA: 0", "mode: 2", "END", ""]
    return "\n".join(rows).encode()


def sample_words(current_a: np.ndarray, pin: np.ndarray, digital: int) -> bytes:
    """The PPK2's sample words for these currents (one range for all, the most sensitive that holds them)."""
    peak = float(np.max(current_a)) if len(current_a) else 0.0
    rng = next((i for i, r in enumerate(RESISTORS) if peak * r / (4 * ADC_VOLTS) <= 0x3FFF), len(RESISTORS) - 1)
    code = np.clip(np.round(current_a * RESISTORS[rng] / (4 * ADC_VOLTS)), 0, 0x3FFF).astype(np.uint32)
    words = code | np.uint32(rng << 14) | (pin.astype(np.uint32) << np.uint32(24 + digital))
    return words.astype("<u4").tobytes()


class SimulatedPpk2:
    """The kit behind a pseudo-terminal (``path``), drawing the board's power from ``recorder``."""

    def __init__(self, recorder, digital: int = 0):
        self.recorder = recorder
        self.digital = digital
        self.voltage_mv = 3300
        self.running = False
        self._master, slave = os.openpty()
        tty.setraw(slave)  # binary both ways: no echo, no line discipline
        tty.setraw(self._master)
        self.path = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ppk2-sim", daemon=True)
        self._thread.start()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            n = os.write(self._master, view[:4096])
            view = view[n:]

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                chunk = os.read(self._master, 256)
            except OSError:
                return
            pending += chunk
            while pending:
                op, need = pending[0], _ARGS.get(pending[0], 0)
                if len(pending) < 1 + need:
                    break
                args, pending = pending[1:1 + need], pending[1 + need:]
                self._command(op, args)

    def _command(self, op: int, args: bytes) -> None:
        if op == GET_META_DATA:
            self._write(metadata())
        elif op == REGULATOR_SET:
            self.voltage_mv = 800 + (args[0] << 8 | args[1]) - 32 - (3 << 8)
        elif op == AVERAGE_START and not self.running:
            self.running = True
            self.recorder.start()
        elif op == AVERAGE_STOP and self.running:
            self.running = False
            current, pin = sample(self.recorder.stop(), RATE_HZ, self.voltage_mv / 1000, pre_s=1e-3, post_s=1e-3)
            self._write(sample_words(current, pin, self.digital))

    def close(self) -> None:
        self._stop.set()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
