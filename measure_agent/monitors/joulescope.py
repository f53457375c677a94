"""Joulescope: a ``.jls`` v2 recording (the format the ``joulescope`` package and its UI record to) read with
``pyjls``. ``control`` arms and stops the recording (on a bench: e.g. the ``joulescope`` package's recorder
writing to ``path``); signals ``current`` (A), ``voltage`` (V) and the general-purpose input wired to the
board's energy pin (``gpi[0]`` by default)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Control, FileRecording, MonitorError, Trace


@dataclass
class JoulescopeMonitor(FileRecording):
    control: Control
    path: Path
    digital: str = "gpi[0]"
    kind: str = "joulescope"
    sample_rate_hz: float = 0.0

    def read(self, path: Path) -> Trace:
        try:
            import pyjls
        except ImportError as exc:
            raise MonitorError(f"the pyjls package is not installed ({exc})") from None
        if not path.exists():
            raise MonitorError(f"joulescope: no recording {path} (did the recording run?)")
        try:
            with pyjls.Reader(str(path)) as r:
                by_name = {s.name: s for s in r.signals.values()}
                missing = [n for n in ("current", "voltage", self.digital) if n not in by_name]
                if missing:
                    raise MonitorError(f"joulescope: {path} has no signal {', '.join(missing)} "
                                       f"(it has {', '.join(sorted(by_name))})")
                cur, volt, gpi = (by_name[n] for n in ("current", "voltage", self.digital))
                n = min(cur.length, volt.length, gpi.length)
                current = np.asarray(r.fsr(cur.signal_id, 0, n), dtype=np.float64)
                voltage = np.asarray(r.fsr(volt.signal_id, 0, n), dtype=np.float64)
                bits = np.unpackbits(np.asarray(r.fsr(gpi.signal_id, 0, n), dtype=np.uint8), count=n,
                                     bitorder="little")
                rate = float(cur.sample_rate)
        except MonitorError:
            raise
        except Exception as exc:
            raise MonitorError(f"joulescope: cannot read {path}: {exc}") from None
        self.sample_rate_hz = rate
        return Trace(self.kind, rate, current, voltage, bits.astype(bool))
