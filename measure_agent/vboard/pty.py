"""Pseudo-terminal bridge: expose a VirtualBoard's UART as a tty for pyserial."""

from __future__ import annotations

import os
import select
import threading
import tty

from .board import StopReason, VirtualBoard, VirtualBoardFault


class PtyBridge:
    """Run ``vb`` in a background thread behind a pty; ``.path`` is the device for ``serial.Serial``.

    Bytes written to the tty go to the board's UART receiver; bytes the board transmits come out of it.
    While the firmware idles (polls an empty receiver) the thread blocks in select() on the master fd.
    A fault stops the bridge; it is kept in ``.error``.
    """

    def __init__(self, vb: VirtualBoard, run_timeout_s: float = 60.0):
        self.vb = vb
        self.run_timeout_s = run_timeout_s
        self.error: BaseException | None = None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._closing = False
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vboard-pty", daemon=True)
        self._thread.start()

    def _flush_tx(self) -> None:
        data = self.vb.uart_read()
        while data:
            n = os.write(self._master, data)
            data = data[n:]

    def _loop(self) -> None:
        try:
            while not self._closing:
                if self._paused.is_set():  # frozen board: nothing is read, nothing is sent
                    r, _, _ = select.select([self._wake_r], [], [])
                    os.read(self._wake_r, 64)
                    continue
                reason = self.vb.run(timeout_s=self.run_timeout_s)
                self._flush_tx()
                if reason is StopReason.STOPPED:
                    continue
                if reason is StopReason.IDLE and not self.vb.uart_rx_pending:
                    r, _, _ = select.select([self._master, self._wake_r], [], [])
                    if self._wake_r in r:
                        os.read(self._wake_r, 64)
                        continue
                    try:
                        data = os.read(self._master, 4096)
                    except OSError:
                        break
                    self.vb.uart_write(data)
                elif reason is StopReason.BKPT:
                    continue
        except VirtualBoardFault as exc:
            self.error = exc
        except BaseException as exc:  # pragma: no cover
            self.error = exc

    def pause(self) -> None:
        """Freeze the board (as a crashed MCU): the line stays open, nothing is read or answered."""
        self._paused.set()
        self.vb.stop()
        os.write(self._wake_w, b"p")

    def resume(self) -> None:
        self._paused.clear()
        os.write(self._wake_w, b"r")

    def inject_to_host(self, data: bytes) -> None:
        """Bytes that appear on the host side of the line as if the board sent them (line noise)."""
        while data:
            n = os.write(self._master, data)
            data = data[n:]

    def close(self) -> None:
        self._closing = True
        self.vb.stop()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self._thread.join(timeout=self.run_timeout_s + 5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "PtyBridge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
