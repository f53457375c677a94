"""RocketLogger (the paper's instrument): its ``.rld`` data file read with the ``rocketlogger`` package.

The instrument logs to its own storage; ``control`` arms and stops the recording (on a bench: the commands
that do it on the RocketLogger, then copy the file to ``path``). Channels: a current (``I1``, merged from
I1L/I1H by the package when the file has the two ranges), a voltage (``V1``) and the digital input wired to
the board's energy pin (``DI1``). The sample rate is the file's, as the package's ``get_time()`` gives it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path


from .base import Control, FileRecording, MonitorError, Trace


@dataclass
class RocketLoggerMonitor(FileRecording):
    control: Control
    path: Path
    current: str = "I1"
    voltage: str = "V1"
    digital: str = "DI1"
    kind: str = "rocketlogger"
    sample_rate_hz: float = 0.0   # known once a file was read

    def read(self, path: Path) -> Trace:
        try:
            from rocketlogger.data import RocketLoggerData
        except ImportError as exc:
            raise MonitorError(f"the rocketlogger package is not installed ({exc})") from None
        if not path.exists():
            raise MonitorError(f"rocketlogger: no data file {path} (did the recording run?)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = RocketLoggerData(str(path))
                names = data.get_channel_names()
                if self.current not in names and f"{self.current}L" in names:
                    data.merge_channels()
                    names = data.get_channel_names()
                missing = [c for c in (self.current, self.voltage, self.digital) if c not in names]
                if missing:
                    raise MonitorError(f"rocketlogger: {path} has no channel {', '.join(missing)} "
                                       f"(it has {', '.join(names)})")
                values = data.get_data([self.current, self.voltage, self.digital])
                t = data.get_time()
        except MonitorError:
            raise
        except Exception as exc:  # the package's own errors: a damaged or foreign file
            raise MonitorError(f"rocketlogger: cannot read {path}: {exc}") from None
        if len(t) < 2:
            raise MonitorError(f"rocketlogger: {path} holds {len(t)} samples")
        self.sample_rate_hz = float((len(t) - 1) / (t[-1] - t[0]))
        return Trace(self.kind, self.sample_rate_hz, values[:, 0], values[:, 1], values[:, 2] > 0.5)
