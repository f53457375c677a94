"""Nordic Power Profiler Kit II through the ``ppk2-api`` package, on its serial port.

The kit powers the board (source meter) at ``voltage_mv`` and streams 100 kHz samples while it records; a
thread drains the port during the recording (the stream is 400 kB/s) and the package decodes the words into
currents and the logic port, whose bit ``digital`` is wired to the board's energy pin.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .base import MonitorError, Trace

RATE_HZ = 100_000
#: the port is drained until it has been quiet this long after the recording stopped
QUIET_S = 1.0
#: at most this long after the stop for a stream that has not begun (seconds)
FIRST_DATA_S = 5.0


@dataclass
class Ppk2Monitor:
    port: str
    voltage_mv: int = 3300
    digital: int = 0
    kind: str = "ppk2"
    sample_rate_hz: float = RATE_HZ
    _api: object = field(default=None, repr=False)
    _chunks: list = field(default_factory=list, repr=False)
    _reader: threading.Thread | None = field(default=None, repr=False)
    _recording: threading.Event = field(default_factory=threading.Event, repr=False)

    def _open(self):
        if self._api is not None:
            return self._api
        try:
            from ppk2_api.ppk2_api import PPK2_API
        except ImportError as exc:
            raise MonitorError(f"the ppk2-api package is not installed ({exc})") from None
        try:
            api = PPK2_API(self.port, timeout=1, write_timeout=1)
        except Exception as exc:  # serial.SerialException and OSError
            raise MonitorError(f"ppk2: cannot open {self.port}: {exc}") from None
        if not api.get_modifiers():
            api.ser.close()
            raise MonitorError(f"ppk2: no calibration metadata from {self.port} (is it a PPK2?)")
        api.use_source_meter()
        api.set_source_voltage(self.voltage_mv)
        api.toggle_DUT_power("ON")
        self._api = api
        return api

    def _drain(self) -> None:
        """Read the stream until it has been quiet for QUIET_S after the stop; a stream that has not begun by
        then (an instrument that sends its samples only when stopped) is waited for up to FIRST_DATA_S."""
        api = self._api
        quiet_since = None
        stopped_at = None
        while True:
            data = api.get_data()
            if data:
                self._chunks.append(data)
                quiet_since = None
            elif not self._recording.is_set():
                now = time.monotonic()
                stopped_at = stopped_at or now
                quiet_since = quiet_since or now
                waited = now - quiet_since
                if (self._chunks and waited >= QUIET_S) or now - stopped_at >= FIRST_DATA_S:
                    return
            time.sleep(0.005)

    def start(self) -> None:
        api = self._open()
        while api.get_data():  # what came before
            pass
        self._chunks = []
        self._recording.set()
        api.start_measuring()
        self._reader = threading.Thread(target=self._drain, name="ppk2-reader", daemon=True)
        self._reader.start()

    def stop(self) -> Trace:
        if self._reader is None:
            raise MonitorError("ppk2: stopped before it started")
        self._api.stop_measuring()
        self._recording.clear()
        self._reader.join(timeout=30)
        self._reader = None
        raw = b"".join(self._chunks)
        if len(raw) < 8:
            raise MonitorError(f"ppk2: {self.port} sent no samples")
        self._api.remainder = {"sequence": b"", "len": 0}
        micro_amps, bits = self._api.get_samples(raw)
        current = np.asarray(micro_amps, dtype=np.float64) * 1e-6
        pin = (np.asarray(bits, dtype=np.uint32) >> self.digital & 1).astype(bool)
        n = min(len(current), len(pin))
        return Trace(self.kind, self.sample_rate_hz, current[:n], np.full(n, self.voltage_mv / 1000), pin[:n])

    def close(self) -> None:
        if self._api is not None:
            try:
                self._api.ser.close()
            except Exception:
                pass
            self._api = None
