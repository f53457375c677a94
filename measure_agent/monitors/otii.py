"""Qoitech Otii through the ``otii-tcp-client`` package: the Otii server's TCP JSON interface.

The Arc powers the board at its main output; the adapter enables main current (``mc``), main voltage (``mv``)
and the digital input wired to the board's energy pin (``i1`` = GPI1 by default), records with the active
project and reads the last recording back: analog channels as samples at the channel's rate, the digital one
as its level changes, turned into the level at each sample's start."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import MonitorError, Trace


@dataclass
class OtiiMonitor:
    host: str = "127.0.0.1"
    port: int = 1905
    device: str = ""              # the Arc's name ("" = the first device)
    digital: str = "i1"
    kind: str = "otii"
    sample_rate_hz: float = 0.0
    _otii: object = field(default=None, repr=False)
    _arc: object = field(default=None, repr=False)
    _project: object = field(default=None, repr=False)

    def _open(self) -> None:
        if self._otii is not None:
            return
        try:
            from otii_tcp_client import otii_client
        except ImportError as exc:
            raise MonitorError(f"the otii-tcp-client package is not installed ({exc})") from None
        try:
            otii = otii_client.OtiiClient().connect(host=self.host, port=self.port, try_for_seconds=2,
                                                    licensing=otii_client.LicensingMode.MANUAL)
            devices = otii.get_devices(timeout=2)
            arcs = [d for d in devices if not self.device or d.name == self.device]
            if not arcs:
                raise MonitorError(f"otii: no device {self.device or ''} on {self.host}:{self.port} "
                                   f"(it has {', '.join(d.name for d in devices) or 'none'})")
            arc = arcs[0]
            for channel in ("mc", "mv", self.digital):
                arc.enable_channel(channel, True)
            arc.set_main(True)
            self.sample_rate_hz = float(arc.get_channel_samplerate("mc"))
            try:
                project = otii.get_active_project()
            except Exception:
                project = otii.create_project()
        except MonitorError:
            raise
        except Exception as exc:  # socket errors, the server's error responses
            raise MonitorError(f"otii: {self.host}:{self.port} does not answer: {exc}") from None
        self._otii, self._arc, self._project = otii, arc, project

    def start(self) -> None:
        self._open()
        try:
            self._project.start_recording()
        except Exception as exc:
            raise MonitorError(f"otii: cannot start recording: {exc}") from None

    def stop(self) -> Trace:
        try:
            self._project.stop_recording()
            rec = self._project.get_last_recording()
            if rec is None:
                raise MonitorError("otii: the project has no recording")
            dev = self._arc.id
            rate = float(rec.get_channel_info(dev, "mc")["sample_rate"])
            n = rec.get_channel_data_count(dev, "mc")
            current = np.asarray(rec.get_channel_data(dev, "mc", 0, n)["values"], dtype=np.float64)
            voltage = np.asarray(rec.get_channel_data(dev, "mv", 0, n)["values"], dtype=np.float64)
            changes = rec.get_channel_data(dev, self.digital, 0, rec.get_channel_data_count(dev, self.digital))
        except MonitorError:
            raise
        except Exception as exc:
            raise MonitorError(f"otii: cannot read the recording: {exc}") from None
        t = np.arange(len(current)) / rate
        stamps = np.array([v["timestamp"] for v in changes["values"]])
        levels = np.array([bool(v["value"]) for v in changes["values"]])
        if len(stamps) == 0:
            raise MonitorError(f"otii: the digital channel {self.digital} is empty")
        pin = levels[np.clip(np.searchsorted(stamps, t + 0.5 / rate, side="right") - 1, 0, len(levels) - 1)]
        self.sample_rate_hz = rate
        m = min(len(current), len(voltage))
        return Trace(self.kind, rate, current[:m], voltage[:m], pin[:m])

    def close(self) -> None:
        if self._otii is not None:
            try:
                self._otii.disconnect()
            except Exception:
                pass
            self._otii = None
