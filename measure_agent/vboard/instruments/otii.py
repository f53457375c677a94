"""A simulated Qoitech Otii (an Arc behind the Otii server) on a local TCP socket, speaking its JSON protocol.

Messages are JSON objects, one per line ending in CRLF. On connect the server sends ``{"type": "information",
"info": "connected", ...}``; every request ``{"type": "request", "cmd": ..., "trans_id": ..., "data": ...}``
gets ``{"type": "response", "cmd": ..., "trans_id": ..., "data": ...}`` or ``{"type": "error", "errorcode": ...,
"trans_id": ...}``. One Arc with main current (``mc``), main voltage (``mv``) and the digital input ``i1``
(wired to the energy pin) is served; analog channels are sample arrays with their first timestamp and
interval, a digital channel is its level changes ``{"timestamp", "value"}``.

A recording is sampled when ``project_stop_recording`` arrives, from the board's power between start and stop
(the board's virtual time is not the host's).
"""

from __future__ import annotations

import json
import socket
import threading

import numpy as np

from ..power import sample

RATE_HZ = 50_000
DEVICE = {"device_id": "ArcVirtual0001", "name": "Arc (virtual)", "type": "Arc"}


class SimulatedOtii:
    def __init__(self, recorder, voltage_v: float = 3.3, rate_hz: int = RATE_HZ):
        self.recorder, self.voltage_v, self.rate_hz = recorder, voltage_v, rate_hz
        self.channels: set[str] = set()
        self.recording: dict[str, np.ndarray] | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="otii-sim", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        send = lambda msg: conn.sendall((json.dumps(msg) + "\r\n").encode())  # noqa: E731
        send({"type": "information", "info": "connected",
              "data": {"otii_version": "virtual", "protocol_version": "1.0", "server": "otii-server"}})
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                request = json.loads(line)
                try:
                    data = self._answer(request["cmd"], request.get("data") or {})
                    send({"type": "response", "cmd": request["cmd"], "trans_id": request.get("trans_id"),
                          "data": data})
                except KeyError as exc:
                    send({"type": "error", "cmd": request.get("cmd"), "trans_id": request.get("trans_id"),
                          "errorcode": "Invalid argument", "data": {"message": f"{exc}"}})

    def _answer(self, cmd: str, data: dict) -> dict:
        if cmd == "otii_is_logged_in":
            return {"logged_in": True}
        if cmd == "otii_get_devices":
            return {"devices": [DEVICE]}
        if cmd in ("arc_set_main", "arc_set_main_voltage", "arc_set_max_current", "arc_add_to_project"):
            return {}
        if cmd == "arc_enable_channel":
            (self.channels.add if data["enable"] else self.channels.discard)(data["channel"])
            return {}
        if cmd == "arc_get_channel_samplerate":
            return {"value": self.rate_hz}
        if cmd in ("otii_get_active_project", "otii_create_project"):
            return {"project_id": 1}
        if cmd == "project_start_recording":
            self.recorder.start()
            return {}
        if cmd == "project_stop_recording":
            current, pin = sample(self.recorder.stop(), self.rate_hz, self.voltage_v, pre_s=1e-3, post_s=1e-3)
            self.recording = {"mc": current, "mv": np.full(len(current), self.voltage_v), "i1": pin}
            return {}
        if cmd == "project_get_last_recording":
            if self.recording is None:
                return {"recording_id": -1}
            return {"recording_id": 1, "name": "Recording 1", "start-time": None}
        channel = self._channel(data)
        if cmd == "recording_get_channel_info":
            return {"offset": 0.0, "from": 0.0, "to": len(channel) / self.rate_hz, "sample_rate": self.rate_hz}
        if cmd == "recording_get_channel_data_count":
            return {"count": len(channel) if data["channel"] != "i1" else len(self._changes(channel))}
        if cmd == "recording_get_channel_data":
            index, count = int(data["index"]), int(data["count"])
            if data["channel"] == "i1":
                return {"data_type": "digital", "values": self._changes(channel)[index:index + count]}
            return {"data_type": "analog", "timestamp": index / self.rate_hz, "interval": 1 / self.rate_hz,
                    "values": [float(v) for v in channel[index:index + count]]}
        raise KeyError(f"unknown command {cmd}")

    def _channel(self, data: dict) -> np.ndarray:
        if self.recording is None or data["channel"] not in self.channels:
            raise KeyError(f"no recording of channel {data.get('channel')}")
        return self.recording[data["channel"]]

    def _changes(self, pin: np.ndarray) -> list[dict]:
        at = [0, *(np.flatnonzero(np.diff(pin.astype(np.int8))) + 1)]
        return [{"timestamp": i / self.rate_hz, "value": bool(pin[i])} for i in at]

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
