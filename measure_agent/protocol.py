"""Host side of the firmware serial protocol: framing, encoding and decoding, no I/O.

The wire format is documented in ``firmware/PROTOCOL.md``; the device side is
``firmware/shell/shell.c`` with constants in ``firmware/shell/proto.h``.

Frame (all integers little endian)::

    A5 5A | ver | cmd | seq | flags | len(u16) | hcrc8 | payload[len] | crc32(u32)

``hcrc8`` is CRC-8 (poly 0x07, init 0) over ver..len; ``crc32`` is the IEEE CRC-32 (``zlib.crc32``)
over ver..payload end. A response has ``cmd | 0x80`` and the request's ``seq``; errors come back as
``MSG_ERROR`` frames with the request's seq (0 when the board could not read the header).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
SYNC = b"\xa5\x5a"
HEADER_BYTES = 9
TRAILER_BYTES = 4
OVERHEAD = HEADER_BYTES + TRAILER_BYTES
MAX_PAYLOAD = 1024  # the board's limit is reported by HELLO; this is the default and the host's cap
RESPONSE_BIT = 0x80

# requests
CMD_HELLO = 0x01
CMD_UPLOAD = 0x02
CMD_LOAD = 0x03
CMD_SET_INPUT = 0x04
CMD_RUN = 0x05
CMD_CYCLES = 0x06
CMD_READ_OUTPUT = 0x07
CMD_RESET = 0x08
CMD_ECHO = 0x09
CMD_FLASH_INFO = 0x0A
CMD_FLASH_BEGIN = 0x0B
CMD_FLASH_WRITE = 0x0C
# board -> host, not responses
MSG_BOOT = 0x7D
MSG_FAULT = 0x7E
MSG_ERROR = 0x7F

COMMAND_NAMES = {
    CMD_HELLO: "HELLO", CMD_UPLOAD: "UPLOAD", CMD_LOAD: "LOAD", CMD_SET_INPUT: "SET_INPUT",
    CMD_RUN: "RUN", CMD_CYCLES: "CYCLES", CMD_READ_OUTPUT: "READ_OUTPUT", CMD_RESET: "RESET",
    CMD_ECHO: "ECHO", CMD_FLASH_INFO: "FLASH_INFO", CMD_FLASH_BEGIN: "FLASH_BEGIN", CMD_FLASH_WRITE: "FLASH_WRITE",
    MSG_BOOT: "BOOT", MSG_FAULT: "FAULT", MSG_ERROR: "ERROR",
}

# error codes (first payload byte of an ERROR frame)
ERR_BAD_CRC = 0x01
ERR_BAD_HEADER = 0x02
ERR_BAD_VERSION = 0x03
ERR_TOO_LONG = 0x04
ERR_TIMEOUT = 0x05
ERR_UNKNOWN_CMD = 0x06
ERR_BAD_LENGTH = 0x07
ERR_BAD_OFFSET = 0x08
ERR_TOO_LARGE = 0x09
ERR_NOT_LOADED = 0x0A
ERR_BAD_INDEX = 0x0B
ERR_PLAN_INCOMPLETE = 0x0C
ERR_PLAN_CRC = 0x0D
ERR_TOO_MANY_LAYERS = 0x0E
ERR_BAD_ARG = 0x0F
ERR_FLASH_WORN = 0x10
ERR_FLASH = 0x11
ERR_NO_FLASH = 0x12
ERR_NN_BASE = 0x20

NN_STATUS_NAMES = {
    0: "NN_OK", 1: "NN_ERR_BAD_PLAN", 2: "NN_ERR_VERSION", 3: "NN_ERR_ARENA_TOO_SMALL",
    4: "NN_ERR_UNSUPPORTED_OP", 5: "NN_ERR_BAD_INDEX", 6: "NN_ERR_BAD_SIZE", 7: "NN_ERR_NOT_LOADED",
    8: "NN_ERR_FILTER_LAYOUT",
}

ERROR_NAMES = {
    ERR_BAD_CRC: "BAD_CRC", ERR_BAD_HEADER: "BAD_HEADER", ERR_BAD_VERSION: "BAD_VERSION",
    ERR_TOO_LONG: "TOO_LONG", ERR_TIMEOUT: "TIMEOUT", ERR_UNKNOWN_CMD: "UNKNOWN_CMD",
    ERR_BAD_LENGTH: "BAD_LENGTH", ERR_BAD_OFFSET: "BAD_OFFSET", ERR_TOO_LARGE: "TOO_LARGE",
    ERR_NOT_LOADED: "NOT_LOADED", ERR_BAD_INDEX: "BAD_INDEX", ERR_PLAN_INCOMPLETE: "PLAN_INCOMPLETE",
    ERR_PLAN_CRC: "PLAN_CRC", ERR_TOO_MANY_LAYERS: "TOO_MANY_LAYERS", ERR_BAD_ARG: "BAD_ARG",
    ERR_FLASH_WORN: "FLASH_WORN", ERR_FLASH: "FLASH", ERR_NO_FLASH: "NO_FLASH",
}
ERROR_NAMES.update({ERR_NN_BASE + k: v for k, v in NN_STATUS_NAMES.items() if k})

#: errors caused by the line, not by the request: retrying the same request may succeed
TRANSPORT_ERRORS = frozenset({ERR_BAD_CRC, ERR_BAD_HEADER, ERR_TIMEOUT})

HELLO_FLAG_HARD_FLOAT = 0x01
HELLO_FLAG_SIMD = 0x02
HELLO_FLAG_DWT = 0x04
HELLO_FLAG_LOADED = 0x08
HELLO_FLAG_HOST = 0x10
HELLO_FLAG_STUB = 0x20
HELLO_FLAG_INPUT_SNAPSHOT = 0x40
HELLO_FLAG_FLASH = 0x80

#: LOAD's placement byte, and the names a measurement uses
PLACEMENT_SRAM = 0
PLACEMENT_FLASH = 1
PLACEMENTS = {"sram": PLACEMENT_SRAM, "flash": PLACEMENT_FLASH}
SLOT_HEADER_BYTES = 256
SLOT_HASH_BYTES = 16
SLOT_STATES = {0: "free", 1: "plan", 2: "plan-continued", 3: "incomplete"}

RESET_SOFT = 0
RESET_HARD = 1

FAULT_STACK_OVERFLOW = 0x100
FAULT_FIELDS = ("exception", "pc", "lr", "xpsr", "cfsr", "hfsr", "mmfar", "bfar", "sp")


class ProtocolError(ValueError):
    """A payload does not decode (wrong length, bad field)."""


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"ERR_0x{code:02X}")


def crc8(data: bytes) -> int:
    """CRC-8, poly 0x07, init 0x00, no reflection (CRC-8/SMBUS)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc32(data: bytes) -> int:
    """IEEE CRC-32 (same as zlib.crc32)."""
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION
    flags: int = 0

    @property
    def name(self) -> str:
        base = self.cmd & ~RESPONSE_BIT if self.cmd & RESPONSE_BIT else self.cmd
        return COMMAND_NAMES.get(base, f"0x{self.cmd:02X}") + ("+R" if self.cmd & RESPONSE_BIT else "")


@dataclass(frozen=True)
class BadFrame:
    """Something that started like a frame but failed a check (mirrors the board's error codes)."""

    code: int
    seq: int = 0
    cmd: int = 0
    detail: str = ""


def encode_frame(cmd: int, seq: int, payload: bytes = b"", *, version: int = PROTOCOL_VERSION,
                 flags: int = 0, max_payload: int = 0xFFFF) -> bytes:
    """One frame on the wire."""
    payload = bytes(payload)
    if len(payload) > max_payload:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the limit of {max_payload}")
    header = struct.pack("<BBBBH", version, cmd & 0xFF, seq & 0xFF, flags & 0xFF, len(payload))
    body = header + bytes([crc8(header)]) + payload
    return SYNC + body + struct.pack("<I", crc32(body))


class Deframer:
    """Incremental frame parser with the board's resync rules.

    ``feed(data)`` returns the frames and bad frames completed by ``data``. On any failed check one
    byte is dropped and scanning resumes, so a valid frame behind garbage is still found.
    ``flush()`` reports a pending partial frame (call it on a receive timeout) and drops it.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.discarded = 0  # bytes dropped as garbage (statistics)

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        self.buffer += data
        return self._scan()

    def _drop(self, n: int) -> None:
        del self.buffer[:n]
        self.discarded += n

    def _scan(self) -> list[Frame | BadFrame]:
        out: list[Frame | BadFrame] = []
        buf = self.buffer
        while True:
            start = buf.find(SYNC[:1])
            if start < 0:
                self._drop(len(buf))
                return out
            if start:
                self._drop(start)
            if len(buf) < 2:
                return out
            if buf[1] != SYNC[1]:
                self._drop(1)
                continue
            if len(buf) < HEADER_BYTES:
                return out
            if crc8(bytes(buf[2:8])) != buf[8]:
                out.append(BadFrame(ERR_BAD_HEADER, 0, 0, "header crc mismatch"))
                self._drop(1)
                continue
            version, cmd, seq, flags, length = struct.unpack_from("<BBBBH", buf, 2)
            if version != PROTOCOL_VERSION:
                out.append(BadFrame(ERR_BAD_VERSION, seq, cmd, f"version {version}"))
                self._drop(1)
                continue
            if length > self.max_payload:
                out.append(BadFrame(ERR_TOO_LONG, seq, cmd, f"length {length}"))
                self._drop(1)
                continue
            total = OVERHEAD + length
            if len(buf) < total:
                return out
            (crc,) = struct.unpack_from("<I", buf, HEADER_BYTES + length)
            if crc32(bytes(buf[2:HEADER_BYTES + length])) != crc:
                out.append(BadFrame(ERR_BAD_CRC, seq, cmd, "frame crc mismatch"))
                self._drop(1)
                continue
            out.append(Frame(cmd, seq, bytes(buf[HEADER_BYTES:HEADER_BYTES + length]), version, flags))
            del buf[:total]

    def flush(self) -> list[Frame | BadFrame]:
        """Receive timeout: report and drop a pending partial frame, then rescan the rest."""
        out: list[Frame | BadFrame] = []
        while self.buffer:
            seq = cmd = 0
            if len(self.buffer) >= HEADER_BYTES and crc8(bytes(self.buffer[2:8])) == self.buffer[8]:
                cmd, seq = self.buffer[3], self.buffer[4]
            out.append(BadFrame(ERR_TIMEOUT, seq, cmd, f"{len(self.buffer)} bytes pending"))
            self._drop(1)
            out += self._scan()
        return out


def decode_frames(data: bytes, max_payload: int = MAX_PAYLOAD) -> list[Frame | BadFrame]:
    """All frames in ``data`` (a convenience for tests and logs)."""
    return Deframer(max_payload).feed(data)


# ---------------------------------------------------------------- payloads: requests

def upload_payload(total: int, offset: int, chunk: bytes) -> bytes:
    return struct.pack("<II", total, offset) + bytes(chunk)


def load_payload(plan: bytes, placement: str = "sram") -> bytes:
    """LOAD: the plan's CRC-32, and for a plan in flash the placement byte (SRAM: the 4-byte form)."""
    if placement not in PLACEMENTS:
        raise ProtocolError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    crc = struct.pack("<I", crc32(plan))
    return crc if placement == "sram" else crc + bytes([PLACEMENTS[placement]])


def plan_hash(plan: bytes) -> bytes:
    """The content hash a slot header keeps for a plan: the first 16 bytes of its SHA-256."""
    import hashlib

    return hashlib.sha256(bytes(plan)).digest()[:SLOT_HASH_BYTES]


def flash_begin_payload(plan: bytes) -> bytes:
    return struct.pack("<II", len(plan), crc32(plan)) + plan_hash(plan)


def flash_write_payload(offset: int, chunk: bytes) -> bytes:
    return struct.pack("<I", offset) + bytes(chunk)


def set_input_payload(index: int, offset: int, chunk: bytes) -> bytes:
    return struct.pack("<HHI", index, 0, offset) + bytes(chunk)


def run_payload(runs: int) -> bytes:
    if not 1 <= runs <= 0xFFFFFFFF:
        raise ProtocolError("runs must be >= 1")
    return struct.pack("<I", runs)


def cycles_payload(first_layer: int) -> bytes:
    return struct.pack("<I", first_layer)


def read_output_payload(index: int, offset: int, max_len: int = 0) -> bytes:
    return struct.pack("<HHI", index, max_len, offset)


def reset_payload(hard: bool = False) -> bytes:
    return bytes([RESET_HARD if hard else RESET_SOFT])


# ---------------------------------------------------------------- payloads: responses

def _need(payload: bytes, n: int, what: str) -> None:
    if len(payload) < n:
        raise ProtocolError(f"{what}: payload of {len(payload)} bytes, need {n}")


@dataclass(frozen=True)
class Hello:
    protocol_version: int
    flags: int
    max_payload: int
    default_clock_hz: int
    core_clock_hz: int  # the clock the core runs at: the default clock, or the reset clock if the set-up failed
    model_ram_bytes: int
    model_ram_address: int
    interbyte_timeout_ms: int
    max_layers: int
    target: str
    mcu: str
    core: str
    runtime_variant: str
    float_abi: str
    opt_level: str
    build_id: str
    runtime: str
    compiler: str

    @property
    def loaded(self) -> bool:
        return bool(self.flags & HELLO_FLAG_LOADED)

    @property
    def cycle_counter(self) -> str:
        return "host-ns" if self.flags & HELLO_FLAG_HOST else ("dwt" if self.flags & HELLO_FLAG_DWT else "systick")


def decode_hello(payload: bytes) -> Hello:
    _need(payload, 28, "HELLO")
    (ver, flags, max_payload, clk, reset_clk, ram, ram_addr, tmo, max_layers) = struct.unpack_from(
        "<BBHIIIIII", payload, 0)
    strings = []
    pos = 28
    for _ in range(9):
        _need(payload, pos + 1, "HELLO strings")
        n = payload[pos]
        _need(payload, pos + 1 + n, "HELLO strings")
        strings.append(payload[pos + 1:pos + 1 + n].decode("utf-8", "replace"))
        pos += 1 + n
    return Hello(ver, flags, max_payload, clk, reset_clk, ram, ram_addr, tmo, max_layers, *strings)


@dataclass(frozen=True)
class UploadAck:
    total: int
    received: int


def decode_upload(payload: bytes) -> UploadAck:
    _need(payload, 8, "UPLOAD")
    return UploadAck(*struct.unpack_from("<II", payload))


@dataclass(frozen=True)
class LoadInfo:
    arena_bytes: int          # arena the plan needs
    arena_available: int      # model RAM left after the plan
    plan_bytes: int
    num_layers: int
    input_bytes: tuple[int, ...]
    output_bytes: tuple[int, ...]


def decode_load(payload: bytes) -> LoadInfo:
    _need(payload, 20, "LOAD")
    needed, avail, plan, layers, ni, no = struct.unpack_from("<IIIIHH", payload)
    sizes = [struct.unpack_from("<I", payload, 20 + 4 * i)[0] for i in range((len(payload) - 20) // 4)]
    return LoadInfo(needed, avail, plan, layers, tuple(sizes[:ni]), tuple(sizes[ni:ni + no]))


@dataclass(frozen=True)
class CyclesChunk:
    first: int
    cycles: tuple[int, ...]


def decode_cycles(payload: bytes, at: int = 0) -> CyclesChunk:
    _need(payload, at + 8, "CYCLES")
    first, count = struct.unpack_from("<II", payload, at)
    _need(payload, at + 8 + 4 * count, "CYCLES")
    return CyclesChunk(first, struct.unpack_from(f"<{count}I", payload, at + 8))


@dataclass(frozen=True)
class RunHeader:
    runs: int
    num_layers: int
    first_total: int
    min_total: int
    max_total: int
    chunk: CyclesChunk


def decode_run(payload: bytes) -> RunHeader:
    _need(payload, 20, "RUN")
    runs, layers, first, tmin, tmax = struct.unpack_from("<IIIII", payload)
    return RunHeader(runs, layers, first, tmin, tmax, decode_cycles(payload, 20))


@dataclass
class RunResult:
    """Cycles of RUN n: per layer the minimum over the n runs; totals are whole nn_run() calls."""

    runs: int
    layer_cycles: list[int]
    total: int                # minimum over the runs of the cycles of one nn_run() call
    first_total: int          # the first run (cold caches)
    max_total: int
    extra: dict = field(default_factory=dict)

    @property
    def layer_sum(self) -> int:
        return sum(self.layer_cycles)


@dataclass(frozen=True)
class OutputChunk:
    total: int
    offset: int
    data: bytes


def decode_read_output(payload: bytes) -> OutputChunk:
    _need(payload, 8, "READ_OUTPUT")
    total, offset = struct.unpack_from("<II", payload)
    return OutputChunk(total, offset, bytes(payload[8:]))


@dataclass(frozen=True)
class FlashBegin:
    """FLASH_BEGIN's answer: the plan is in flash already (``present``), or a run of slots was erased for it."""

    present: bool
    first_slot: int
    slots: int
    address: int              # flash address of the plan (after the slot header)
    programmed: int           # bytes of it programmed so far
    max_erases: int           # highest erase count in the run


def decode_flash_begin(payload: bytes) -> FlashBegin:
    _need(payload, 20, "FLASH_BEGIN")
    present, _r, first, count, _r2, addr, programmed, erases = struct.unpack_from("<BBHHHIII", payload)
    return FlashBegin(bool(present), first, count, addr, programmed, erases)


def decode_flash_write(payload: bytes) -> int:
    _need(payload, 4, "FLASH_WRITE")
    return struct.unpack_from("<I", payload)[0]


@dataclass(frozen=True)
class FlashSlot:
    index: int                # in the board's slot grid
    address: int
    bytes: int
    erase_count: int          # erases of this slot the board has recorded
    state: str                # free | plan | plan-continued | incomplete
    head: int | None          # first slot of the plan this slot belongs to


@dataclass(frozen=True)
class FlashInfo:
    available: bool
    endurance: int            # erase cycles per unit the datasheet guarantees
    program_bytes: int
    header_bytes: int
    erases_since_boot: int    # erase units erased since the firmware started
    programs_since_boot: int  # program units written since the firmware started
    first_slot: int           # first slot above the firmware image
    slots: tuple[FlashSlot, ...]

    @property
    def area_bytes(self) -> int:
        return sum(s.bytes for s in self.slots)


def decode_flash_info(payload: bytes) -> FlashInfo:
    _need(payload, 28, "FLASH_INFO")
    _ver, flags, n, endurance, pb, header, erases, programs, first = struct.unpack_from("<BBHIIIIII", payload)
    _need(payload, 28 + 16 * n, "FLASH_INFO slots")
    slots = []
    for i in range(n):
        addr, size, count, state, _r, head = struct.unpack_from("<IIIBBH", payload, 28 + 16 * i)
        slots.append(FlashSlot(first + i, addr, size, count, SLOT_STATES.get(state, f"state-{state}"),
                               None if head == 0xFFFF else head))
    return FlashInfo(bool(flags & 1), endurance, pb, header, erases, programs, first, tuple(slots))


@dataclass(frozen=True)
class ErrorInfo:
    code: int
    cmd: int
    detail: int
    message: str

    @property
    def name(self) -> str:
        return error_name(self.code)

    @property
    def nn_status(self) -> int | None:
        return self.code - ERR_NN_BASE if self.code >= ERR_NN_BASE else None


def decode_error(payload: bytes) -> ErrorInfo:
    _need(payload, 8, "ERROR")
    code, cmd, _r0, _r1, detail = struct.unpack_from("<BBBBi", payload)
    return ErrorInfo(code, cmd, detail, payload[8:].decode("ascii", "replace"))


def encode_error(code: int, cmd: int = 0, detail: int = 0, message: str = "") -> bytes:
    return struct.pack("<BBBBi", code, cmd, 0, 0, detail) + message.encode("ascii")


def decode_fault(payload: bytes) -> dict[str, int]:
    words = struct.unpack_from(f"<{len(payload) // 4}I", payload)
    return {name: value for name, value in zip(FAULT_FIELDS, words)}


def decode_boot(payload: bytes) -> int:
    """BOOT carries the model RAM size."""
    return struct.unpack_from("<I", payload)[0] if len(payload) >= 4 else 0
