"""Client for the firmware shell's serial protocol (``firmware/PROTOCOL.md``).

``BoardLink`` takes any pyserial-like object: ``read(n)`` returning up to n bytes (possibly fewer,
or none, after the object's own short timeout) and ``write(data)``. Works with a real board
(``open_serial``), the virtual board's PTY, or the host build of the shell (``PipeSerial``).

Every request of the protocol is idempotent, so on a line error (CRC/header/inter-byte timeout
error frame for our seq) or a receive timeout the client resends the same frame, up to ``retries``
times. RUN is never resent on a timeout (the board may still be busy running; bytes sent to a
busy polled UART would overrun).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import time
from dataclasses import dataclass, field

from measure_agent import protocol as P

log = logging.getLogger(__name__)


class BoardLinkError(RuntimeError):
    """Base class of the link's errors."""


class BoardTimeout(BoardLinkError, TimeoutError):
    """No (valid) answer from the board within the timeout."""


class BoardError(BoardLinkError):
    """The board answered with an ERROR frame."""

    def __init__(self, code: int, message: str, *, cmd: int = 0, detail: int = 0):
        self.code = code
        self.message = message
        self.cmd = cmd
        self.detail = detail
        self.name = P.error_name(code)
        what = P.COMMAND_NAMES.get(cmd, f"0x{cmd:02X}")
        super().__init__(f"board error {self.name} (0x{code:02X}) on {what}: {message} [detail={detail}]")

    @property
    def nn_status(self) -> int | None:
        return self.code - P.ERR_NN_BASE if self.code >= P.ERR_NN_BASE else None


class BoardFault(BoardLinkError):
    """The firmware reported a fault (HardFault, ...) and halted; it needs a reset / power cycle."""

    def __init__(self, registers: dict[str, int]):
        self.registers = registers
        exc = registers.get("exception", 0)
        what = "stack overflow" if exc == P.FAULT_STACK_OVERFLOW else f"exception {exc}"
        regs = " ".join(f"{k}=0x{v:08X}" for k, v in registers.items() if k != "exception")
        super().__init__(f"board fault: {what} {regs}")


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    bad_frames: int = 0
    unsolicited: list = field(default_factory=list)


class BoardLink:
    """Request/response client of the firmware shell."""

    def __init__(self, port, *, timeout: float = 2.0, run_timeout: float = 120.0, retries: int = 2,
                 flash_timeout: float = 120.0):
        self.port = port
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.flash_timeout = flash_timeout  # FLASH_BEGIN may erase a megabyte of sectors (seconds on an F4)
        self.retries = retries
        self.stats = LinkStats()
        self._seq = 0
        self._deframer = P.Deframer(max_payload=0xFFFF)
        self._hello: P.Hello | None = None
        self._load: P.LoadInfo | None = None
        self._backlog: list = []
        self._loaded_crc: int | None = None
        self._loaded_placement: str | None = None
        #: FLASH_BEGIN's answer for the last plan placed in flash (``present``: it was not programmed again)
        self.last_flash: P.FlashBegin | None = None

    # ------------------------------------------------------------ low level
    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 means "unknown" in error frames
        return self._seq

    def _read_some(self) -> bytes:
        waiting = getattr(self.port, "in_waiting", 0) or 0
        return self.port.read(max(1, min(int(waiting), 4096)))

    def drain(self, quiet: float = 0.05) -> bytes:
        """Discard input until the line has been quiet for ``quiet`` seconds."""
        got = bytearray()
        end = time.monotonic() + max(quiet, 0.0) + 2.0
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet:
            chunk = self._read_some()
            if chunk:
                got += chunk
                last = time.monotonic()
        self._deframer = P.Deframer(max_payload=0xFFFF)
        self._backlog = []
        return bytes(got)

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests: garbage, truncated frames)."""
        self.port.write(bytes(data))
        flush = getattr(self.port, "flush", None)
        if flush:
            flush()

    def read_frame(self, timeout: float | None = None) -> P.Frame | P.BadFrame:
        """The next frame or bad frame from the board; ``BoardTimeout`` if none arrives."""
        timeout = self.timeout if timeout is None else timeout
        for item in self._frames(time.monotonic() + timeout):
            return item
        raise BoardTimeout(f"no frame from the board within {timeout:.1f} s")

    def _frames(self, deadline: float):
        """Yield frames/bad frames until the deadline (raises nothing)."""
        while True:
            if self._backlog:
                yield self._backlog.pop(0)
                continue
            if time.monotonic() >= deadline:
                return
            chunk = self._read_some()
            if chunk:
                self._backlog += self._deframer.feed(chunk)

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int | None = None, retry_on_timeout: bool = True) -> bytes:
        """Send one request and return the payload of its response."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        max_payload = self._hello.max_payload if self._hello else 0xFFFF
        seq = self._next_seq()
        frame = P.encode_frame(cmd, seq, payload, max_payload=max_payload)
        self.stats.requests += 1
        attempt = 0
        while True:
            self.write_raw(frame)
            outcome = self._await(cmd, seq, time.monotonic() + timeout)
            if isinstance(outcome, bytes):
                return outcome
            # a retryable failure: outcome is a reason string
            if attempt >= retries or (outcome == "timeout" and not retry_on_timeout):
                if outcome == "timeout":
                    raise BoardTimeout(
                        f"no answer to {P.COMMAND_NAMES.get(cmd, cmd)} (seq {seq}) within {timeout:.1f} s"
                        + (f" after {attempt} retries" if attempt else ""))
                raise BoardError(outcome[1], f"line error persisted after {attempt} retries", cmd=cmd)
            attempt += 1
            self.stats.retries += 1
            log.debug("retrying %s seq %d (%s)", P.COMMAND_NAMES.get(cmd, cmd), seq, outcome)

    def _await(self, cmd: int, seq: int, deadline: float):
        for item in self._frames(deadline):
            if isinstance(item, P.BadFrame):
                self.stats.bad_frames += 1
                continue
            if item.cmd == (cmd | P.RESPONSE_BIT) and item.seq == seq:
                return item.payload
            if item.cmd == P.MSG_ERROR:
                err = P.decode_error(item.payload)
                if item.seq == seq:
                    if err.code in P.TRANSPORT_ERRORS:
                        return ("line", err.code)
                    raise BoardError(err.code, err.message, cmd=err.cmd or cmd, detail=err.detail)
                self.stats.unsolicited.append(item)  # error for garbage / an older request
                continue
            if item.cmd == P.MSG_FAULT:
                raise BoardFault(P.decode_fault(item.payload))
            self.stats.unsolicited.append(item)  # BOOT, stale responses
        return "timeout"

    # ------------------------------------------------------------ commands
    def hello(self) -> P.Hello:
        self._hello = P.decode_hello(self.request(P.CMD_HELLO))
        return self._hello

    @property
    def info(self) -> P.Hello:
        return self._hello or self.hello()

    def echo(self, data: bytes) -> bytes:
        return self.request(P.CMD_ECHO, data)

    def upload_plan(self, blob: bytes, *, load: bool = True, placement: str = "sram") -> P.LoadInfo | None:
        """Upload a plan, then LOAD it (nn_load on the board). ``placement="sram"``: in chunks (offset + total)
        into model RAM; ``"flash"``: programmed into a flash slot (:meth:`flash_plan`), the arena in RAM."""
        blob = bytes(blob)
        if not blob:
            raise ValueError("empty plan")
        if placement == "flash":
            self.flash_plan(blob)
            return self.load(blob, placement="flash") if load else None
        if placement != "sram":
            raise ValueError(f"placement must be 'flash' or 'sram', not {placement!r}")
        chunk = self.info.max_payload - 8
        offset = 0
        while offset < len(blob):
            part = blob[offset:offset + chunk]
            ack = P.decode_upload(self.request(P.CMD_UPLOAD, P.upload_payload(len(blob), offset, part)))
            if ack.received != offset + len(part):
                raise BoardLinkError(f"upload: board has {ack.received} bytes, expected {offset + len(part)}")
            offset += len(part)
        return self.load(blob) if load else None

    def load(self, blob: bytes, *, placement: str = "sram") -> P.LoadInfo:
        self._load = None
        self._loaded_crc = None
        self._loaded_placement = None
        self._load = P.decode_load(self.request(P.CMD_LOAD, P.load_payload(blob, placement),
                                                timeout=max(self.timeout, 10.0)))
        self._loaded_crc = P.crc32(blob)
        self._loaded_placement = placement
        return self._load

    def flash_info(self) -> P.FlashInfo:
        """The board's flash slots: erase counts and what each holds."""
        return P.decode_flash_info(self.request(P.CMD_FLASH_INFO))

    def flash_plan(self, blob: bytes) -> P.FlashBegin:
        """Make a flash slot hold ``blob``: nothing is programmed when a slot holds it already (same content
        hash, length and CRC, verified by the board), else a run of slots is erased and the plan programmed
        in chunks; the board verifies the CRC and commits the slot after the last one."""
        blob = bytes(blob)
        begin = P.decode_flash_begin(self.request(P.CMD_FLASH_BEGIN, P.flash_begin_payload(blob),
                                                  timeout=max(self.timeout, self.flash_timeout),
                                                  retry_on_timeout=False))
        self.last_flash = begin
        if begin.present:
            return begin
        chunk = self.info.max_payload - 4
        chunk -= chunk % 8  # whole programming units (8 bytes covers every family)
        offset = begin.programmed
        while offset < len(blob):
            part = blob[offset:offset + chunk]
            done = P.decode_flash_write(self.request(P.CMD_FLASH_WRITE, P.flash_write_payload(offset, part),
                                                     timeout=max(self.timeout, 10.0)))
            if done != offset + len(part):
                raise BoardLinkError(f"flash write: board has {done} bytes, expected {offset + len(part)}")
            offset += len(part)
        return begin

    def set_input(self, index: int, data: bytes) -> None:
        data = bytes(data)
        chunk = self.info.max_payload - 8
        offset = 0
        while True:
            part = data[offset:offset + chunk]
            self.request(P.CMD_SET_INPUT, P.set_input_payload(index, offset, part))
            offset += len(part)
            if offset >= len(data):
                return

    def run(self, n: int = 1, *, timeout: float | None = None) -> P.RunResult:
        """Run the model n times; per-layer minimum cycles over the runs and the run totals."""
        head = P.decode_run(self.request(P.CMD_RUN, P.run_payload(n), timeout=timeout or self.run_timeout,
                                         retry_on_timeout=False))
        cycles = list(head.chunk.cycles)
        while len(cycles) < head.num_layers:
            more = P.decode_cycles(self.request(P.CMD_CYCLES, P.cycles_payload(len(cycles))))
            if more.first != len(cycles) or not more.cycles:
                raise BoardLinkError("CYCLES: unexpected answer")
            cycles += more.cycles
        return P.RunResult(head.runs, cycles, head.min_total, head.first_total, head.max_total)

    def read_output(self, index: int) -> bytes:
        out = bytearray()
        total = None
        while total is None or len(out) < total:
            part = P.decode_read_output(self.request(P.CMD_READ_OUTPUT, P.read_output_payload(index, len(out))))
            total = part.total
            if part.offset != len(out) or (not part.data and len(out) < total):
                raise BoardLinkError("READ_OUTPUT: unexpected answer")
            out += part.data
        return bytes(out)

    def prepare(self, plan: bytes, inputs: list[bytes], placement: str = "sram") -> None:
        """Make the board hold ``plan`` at ``placement`` (uploaded and loaded unless this link already loaded
        the same plan there) with ``inputs`` set; a board reset behind the link's back is noticed and the plan
        uploaded again."""
        crc = P.crc32(plan)
        if self._load is None or self._loaded_crc != crc or self._loaded_placement != placement:
            self.upload_plan(plan, placement=placement)
        try:
            for i, data in enumerate(inputs):
                self.set_input(i, data)
        except BoardError as exc:
            if exc.code != P.ERR_NOT_LOADED or self._loaded_crc is None:
                raise
            self._load = None
            self._loaded_crc = None
            self.prepare(plan, inputs, placement)

    def read_outputs(self) -> list[bytes]:
        """Every output tensor of the loaded plan (after a run)."""
        if self._load is None:
            raise BoardLinkError("no plan loaded on this link")
        return [self.read_output(i) for i in range(len(self._load.output_bytes))]

    def reset(self, hard: bool = False, *, settle: float = 0.1) -> None:
        """Soft reset (forget the plan and model) or hard reset (AIRCR SYSRESETREQ, the board reboots
        and sends BOOT); after a hard reset the link waits for the board to answer HELLO again."""
        self.request(P.CMD_RESET, P.reset_payload(hard))
        self._load = None
        if hard:
            time.sleep(settle)
            self.drain()
            self.hello()


# ---------------------------------------------------------------- transports

class PipeSerial:
    """pyserial-like wrapper of a subprocess's stdin/stdout (the host build of the shell)."""

    def __init__(self, argv: list[str], *, timeout: float = 0.05):
        self.timeout = timeout
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._out = self.proc.stdout.fileno()

    def read(self, n: int = 1) -> bytes:
        ready, _, _ = select.select([self._out], [], [], self.timeout)
        if not ready:
            return b""
        data = os.read(self._out, n)
        if not data:  # process ended
            time.sleep(self.timeout)
        return data

    def write(self, data: bytes) -> int:
        self.proc.stdin.write(data)
        return len(data)

    def flush(self) -> None:
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HostShellPty:
    """The host build of the shell behind a pseudo-terminal: ``.path`` opens with pyserial like a
    real board's port (``open_serial(pty.path)``)."""

    def __init__(self, exe: str | os.PathLike, *args: str):
        import tty

        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        m = str(self._master)
        self.proc = subprocess.Popen([str(exe), "--in-fd", m, "--out-fd", m, *args], pass_fds=(self._master,),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_serial(path: str, baudrate: int = 115200, *, timeout: float = 0.05):
    """A pyserial port for a real board or a PTY (8N1, no flow control)."""
    import serial  # pyserial

    return serial.Serial(path, baudrate=baudrate, timeout=timeout)
