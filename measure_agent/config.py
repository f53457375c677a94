"""The agent's configuration file (``bench.toml``): where it listens, who may call it, which boards it has.

Example::

    [agent]
    listen = "127.0.0.1:50051"
    journal = "journal.sqlite"          # relative to this file
    max_model_bytes = 4194304
    # tls = { cert = "server.crt", key = "server.key" }
    # workers = "process"                # each board's measurements in its own process ("thread": in the agent's)
    # retention = { max_age_days = 30, max_bytes = 500_000_000 }   # never drops a result not yet fetched

    [clients]                            # a bearer token per client; a client sees only its own results
    search-1 = "8c1f...e2"
    # ops = { token = "...", admin = true }   # an admin client may read every client's results

    [[boards]]
    kind = "virtual"
    target = "NUCLEO-L4R5ZI"
    count = 2

    [[boards]]
    kind = "serial"
    id = "l496-a"
    target = "NUCLEO-L496ZG"
    port = "/dev/ttyACM0"
    baud = 115200
    flash_command = ["st-flash", "--reset", "write", "{bin}", "0x08000000"]   # {elf} or {bin}; no shell
    # or through pyOCD (not both): the probe's serial; target and SWD clock default to the catalogue's and 4 MHz
    # flash = { tool = "pyocd", probe = "066DFF...", target = "stm32l496zgtx", frequency = 4000000 }
    # energy_monitor = { kind = "command", start = ["rl-start"], stop = ["rl-stop-joules"] }
    # energy_monitor = { kind = "ppk2", port = "/dev/ttyACM1", voltage_mv = 3300, digital = "D0" }
    # energy_monitor = { kind = "rocketlogger", start = [...], stop = [...], file = "trace.rld", digital = "DI1" }
    # energy_monitor = { kind = "joulescope", start = [...], stop = [...], file = "trace.jls" }
    # energy_monitor = { kind = "otii", address = "127.0.0.1:1905", device = "Arc", digital = "i1" }
    # (a virtual board takes a simulated one: energy_monitor = { kind = "ppk2" }; see README "Energy")

The file is checked against a schema (:class:`BenchFile`): types are strict (``count = true`` or
``baud = "fast"`` are errors, not coerced), unknown keys are refused by name, and every error is one
line naming the key.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from costmodel.boards import CatalogueError, get_board
from measure_agent.backends import BoardSpec
from measure_agent.flashing import DEFAULT_SWD_HZ

DEFAULT_MAX_MODEL_BYTES = 4 * 1024 * 1024
#: gRPC messages are limited to 2 GiB; a model for a microcontroller is far below this bound
MAX_MODEL_BYTES_LIMIT = 1024 * 1024 * 1024
MIN_TOKEN_CHARS = 16
WORKERS = ("process", "thread")


class ConfigError(ValueError):
    """The configuration file is malformed."""


@dataclass(frozen=True)
class AgentConfig:
    listen: str = "127.0.0.1:50051"
    journal: Path = Path("journal.sqlite")
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    tls_cert: Path | None = None
    tls_key: Path | None = None
    clients: dict[str, str] = field(default_factory=dict)
    boards: tuple[BoardSpec, ...] = ()
    admins: frozenset[str] = frozenset()   # clients that may read every client's results
    workers: str = "process"               # "process": one worker process per board; "thread": in the agent
    retention_max_age_s: float | None = None
    retention_max_bytes: int | None = None
    retention_interval_s: float = 600.0


# ------------------------------------------------------------ the schema of bench.toml
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_listen(value: str) -> str:
    """``HOST:PORT`` with a port 0-65535 and a valid IPv4/IPv6 literal or host name."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:50051), not {value!r}")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"port {port!r} of {value!r} must be a number from 0 to 65535")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{value!r}: an IPv6 host is written [ADDRESS]:PORT")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host[1:-1]!r} is not an IPv6 address") from None
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv4 address") from None
    elif not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host):
        raise ValueError(f"{host!r} is not a host name or address")
    return value


class Tls(_Section):
    cert: str
    key: str

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        if isinstance(data, dict) and not ("cert" in data and "key" in data):
            raise ValueError("needs both cert and key")
        return data


class Retention(_Section):
    max_age_days: Annotated[float, Field(gt=0)] | None = None
    max_bytes: Annotated[int, Field(gt=0)] | None = None
    interval_s: Annotated[float, Field(gt=0)] = 600.0


class AgentSection(_Section):
    listen: str = "127.0.0.1:50051"
    journal: str = "journal.sqlite"
    max_model_bytes: Annotated[int, Field(ge=1, le=MAX_MODEL_BYTES_LIMIT)] = DEFAULT_MAX_MODEL_BYTES
    tls: Tls | None = None
    workers: Literal["process", "thread"] = "process"
    retention: Retention = Retention()

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_listen(value)

    @field_validator("journal")
    @classmethod
    def _journal(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a file")
        return value


class Client(_Section):
    token: str
    admin: bool = False

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        if len(value) < MIN_TOKEN_CHARS:
            raise ValueError(f"every client token must be a string of at least {MIN_TOKEN_CHARS} characters")
        return value


def _target(value: str) -> str:
    try:
        return get_board(value).name
    except CatalogueError as exc:
        raise ValueError(str(exc)) from None


#: the keys each energy monitor kind takes (besides kind): measure_agent/energy.py monitor_from_config builds them
MONITOR_KEYS = {
    "command": ({"start", "stop"}, {"timeout_s"}),
    "rocketlogger": ({"start", "stop", "file"}, {"digital", "timeout_s"}),
    "joulescope": ({"start", "stop", "file"}, {"digital", "timeout_s"}),
    "ppk2": ({"port"}, {"voltage_mv", "digital"}),
    "otii": ({"address"}, {"device", "digital"}),
}
#: a virtual board's monitor is simulated: its kind, and optionally its sampling rate and the board's voltage
SIMULATED_KEYS = {"sample_rate_hz", "voltage_v"}
#: the RocketLogger's sample rates (its manual), the simulated one's too
ROCKETLOGGER_RATES = (1000, 2000, 4000, 8000, 16000, 32000, 64000)


class EnergyMonitorSection(_Section):
    """``energy_monitor = { kind = ..., ... }``: which keys a kind needs and takes is :data:`MONITOR_KEYS`."""

    kind: Literal["command", "rocketlogger", "ppk2", "joulescope", "otii"] = "command"
    start: Annotated[list[str], Field(min_length=1)] | None = None
    stop: Annotated[list[str], Field(min_length=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    file: Annotated[str, Field(min_length=1)] | None = None      # where the stop command leaves the recording
    port: Annotated[str, Field(min_length=1)] | None = None      # the PPK2's serial port
    address: str | None = None                                   # the Otii server, HOST:PORT
    device: str | None = None                                    # the Otii device's name
    digital: Annotated[str, Field(min_length=1)] | None = None   # the digital input wired to the energy pin
    voltage_mv: Annotated[int, Field(ge=800, le=5000)] | None = None
    sample_rate_hz: Annotated[float, Field(gt=0, le=10_000_000)] | None = None
    voltage_v: Annotated[float, Field(gt=0, le=5.5)] | None = None

    _address = field_validator("address")(classmethod(lambda cls, v: v if v is None else check_listen(v)))

    def given(self) -> set[str]:
        return {k for k in self.model_fields_set if k != "kind"}

    def check_for(self, simulated: bool) -> None:
        """The keys given fit the kind (a real instrument's), or a virtual board's simulated instrument."""
        if simulated:
            if self.kind == "command":
                raise ValueError("energy_monitor: a virtual board's is a simulated instrument, kind rocketlogger, "
                                 "ppk2, joulescope or otii")
            extra = self.given() - SIMULATED_KEYS
            if extra:
                raise ValueError(f"energy_monitor: {sorted(extra)[0]} is not a setting of a simulated {self.kind} "
                                 f"(it takes {', '.join(sorted(SIMULATED_KEYS))})")
            rate = self.sample_rate_hz
            if rate is not None and self.kind == "ppk2":
                raise ValueError("energy_monitor: a PPK2 samples at 100 kHz only (no sample_rate_hz)")
            if rate is not None and self.kind == "rocketlogger" and rate not in ROCKETLOGGER_RATES:
                raise ValueError(f"energy_monitor: a RocketLogger samples at {ROCKETLOGGER_RATES} Hz, not {rate:g}")
            return
        needs, takes = MONITOR_KEYS[self.kind]
        missing = needs - self.given()
        if missing:
            raise ValueError(f"energy_monitor: a {self.kind} monitor needs {', '.join(sorted(missing))}")
        extra = self.given() - needs - takes
        if extra:
            raise ValueError(f"energy_monitor: {sorted(extra)[0]} is not a setting of a {self.kind} monitor "
                             f"(it takes {', '.join(sorted(needs | takes))})")
        if self.kind == "ppk2" and self.digital is not None and not re.fullmatch(r"D[0-7]", self.digital):
            raise ValueError(f"energy_monitor: a ppk2's digital input is D0 to D7, not {self.digital!r}")

    def as_dict(self) -> dict:
        return {"kind": self.kind, **{k: getattr(self, k) for k in self.given()}}


def _runtime(v: str) -> str:
    from measure_agent.firmware_build.sources import RUNTIMES

    if v != "auto" and v not in RUNTIMES:
        raise ValueError(f"runtime must be auto or one of {', '.join(RUNTIMES)}")
    return v


class VirtualBoard(_Section):
    kind: Literal["virtual"]
    target: str
    id: Annotated[str, Field(min_length=1)] | None = None
    count: Annotated[int, Field(ge=1, le=64)] = 1
    runtime: str = "auto"
    energy_monitor: EnergyMonitorSection | None = None   # a simulated instrument on the board's power model

    _target = field_validator("target")(classmethod(lambda cls, v: _target(v)))
    _runtime = field_validator("runtime")(classmethod(lambda cls, v: _runtime(v)))

    @model_validator(mode="after")
    def _monitor(self) -> VirtualBoard:
        if self.energy_monitor is not None:
            self.energy_monitor.check_for(simulated=True)
        return self


class FlashSection(_Section):
    """``flash = { tool = "pyocd", ... }``: flashing through pyOCD (target: the catalogue's pyocd_target)."""

    tool: Literal["pyocd"]
    probe: Annotated[str, Field(min_length=1)] | None = None
    target: Annotated[str, Field(min_length=1)] | None = None
    frequency: Annotated[int, Field(ge=10_000, le=50_000_000)] = DEFAULT_SWD_HZ


class SerialBoard(_Section):
    kind: Literal["serial"]
    target: str
    port: Annotated[str, Field(min_length=1)]
    id: Annotated[str, Field(min_length=1)] | None = None
    baud: Annotated[int, Field(gt=0, le=20_000_000)] = 115200
    flash_command: list[str] = []
    flash: FlashSection | None = None
    energy_monitor: EnergyMonitorSection | None = None
    runtime: str = "auto"

    _target = field_validator("target")(classmethod(lambda cls, v: _target(v)))
    _runtime = field_validator("runtime")(classmethod(lambda cls, v: _runtime(v)))

    @model_validator(mode="after")
    def _one_flasher(self) -> SerialBoard:
        if self.flash is not None and self.flash_command:
            raise ValueError("flash and flash_command are two ways to flash the board: set one of them")
        if self.flash is not None and self.flash.target is None and not get_board(self.target).pyocd_target:
            raise ValueError(f"flash.target: the catalogue has no pyOCD target for {self.target}: set flash.target")
        return self

    @model_validator(mode="after")
    def _monitor(self) -> SerialBoard:
        if self.energy_monitor is not None:
            self.energy_monitor.check_for(simulated=False)
        return self


class BenchFile(_Section):
    agent: AgentSection = AgentSection()
    clients: dict[str, Client] = {}
    boards: list[Annotated[Union[VirtualBoard, SerialBoard], Field(discriminator="kind")]] = []

    @field_validator("clients", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        if isinstance(value, dict):  # name = "token" is short for name = { token = "token" }
            return {name: {"token": v} if isinstance(v, str) else v for name, v in value.items()}
        return value

    @model_validator(mode="after")
    def _whole(self) -> BenchFile:
        if not self.boards:
            raise ValueError("no boards configured")
        tokens = [c.token for c in self.clients.values()]
        if len(set(tokens)) != len(tokens):
            raise ValueError("two clients share a token: every client needs its own")
        ports = [b.port for b in self.boards if isinstance(b, SerialBoard)]
        if len(set(ports)) != len(ports):
            raise ValueError(f"two serial boards share a port: {sorted(p for p in ports if ports.count(p) > 1)[0]}")
        return self


#: the keys each section knows, for naming the known keys when a key is unknown
_SECTIONS: dict[str, type[BaseModel]] = {"agent": AgentSection, "tls": Tls, "retention": Retention,
                                         "virtual": VirtualBoard, "serial": SerialBoard,
                                         "energy_monitor": EnergyMonitorSection, "flash": FlashSection}
_EXPECTED = {"string_type": "a string", "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
             "list_type": "a list", "dict_type": "a table", "model_type": "a table", "literal_error": None}
_HINTS = {"flash_command": "a list of strings (it is never run by a shell)", "start": "a list of strings",
          "stop": "a list of strings"}


def _where(loc: tuple) -> str:
    parts: list[str] = []
    skip_tag = False
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
            skip_tag = True
            continue
        if skip_tag and item in ("virtual", "serial"):
            skip_tag = False
            continue
        skip_tag = False
        if parts and parts[0] == "clients" and item == "token" and len(parts) == 2:
            continue
        parts.append(str(item))
    return ".".join(parts)


def _describe(error: dict) -> str:
    loc, kind, given = tuple(error["loc"]), error["type"], error.get("input")
    where = _where(loc)
    key = next((str(x) for x in reversed(loc) if isinstance(x, str) and x not in ("virtual", "serial")), "")
    if kind == "extra_forbidden":
        parent = next((str(x) for x in reversed(loc[:-1]) if isinstance(x, str)), "")
        model = _SECTIONS.get(parent, BenchFile)
        section = (f"[{_where(loc[:-1])}]" if len(loc) == 2 else _where(loc[:-1])) if loc[:-1] else "the file"
        return f"unknown key {loc[-1]!r} in {section} (known keys: {', '.join(model.model_fields)})"
    if kind == "missing":
        return f"{_where(loc[:-1]) or 'the file'}: needs a {key}"
    if kind == "union_tag_invalid":
        return f"{where}: kind must be 'virtual' or 'serial', not {error['ctx']['tag']!r}"
    if kind == "union_tag_not_found":
        return f"{where}: needs a kind ('virtual' or 'serial')"
    if kind == "literal_error":
        return f"{where} must be {error['ctx']['expected']}, not {given!r}"
    if kind in _EXPECTED:
        expected = _HINTS.get(key) if kind == "list_type" and not isinstance(loc[-1], int) else None
        expected = expected or _EXPECTED[kind]
        return f"{where} must be {expected}, not {given!r}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind == "value_error":
        return f"{where}: {message}" if where else message
    return f"{where} {message.replace('Input should be', 'must be')}, not {given!r}"


def _check_tls(cert: Path, key: Path) -> None:
    """The certificate and key load as a TLS server's (gRPC would only fail to listen, without saying why)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")  # (an encrypted key fails, never prompts)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(f"agent.tls: {key} is not the private key of the certificate {cert}") from None
        detail = f" ({exc.reason})" if exc.reason else ""
        raise ConfigError(f"agent.tls: {cert} and {key} are not a PEM certificate and its unencrypted private "
                          f"key{detail}") from None
    except OSError as exc:
        raise ConfigError(f"agent.tls: {exc.strerror or exc}") from None


def _resolve(base_dir: Path, value: str) -> Path:
    return (base_dir / Path(value).expanduser()).resolve()


def parse_config(text: str, base_dir: Path = Path(".")) -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    try:
        bench = BenchFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors(include_url=False))) from None

    agent = bench.agent
    journal = _resolve(base_dir, agent.journal)
    if journal.is_dir():
        raise ConfigError(f"agent.journal: {journal} is a directory, not a journal file")
    tls_cert = tls_key = None
    if agent.tls is not None:
        tls_cert, tls_key = _resolve(base_dir, agent.tls.cert), _resolve(base_dir, agent.tls.key)
        for name, path in (("cert", tls_cert), ("key", tls_key)):
            if not path.is_file():
                raise ConfigError(f"agent.tls.{name}: {path} is not a readable file")
        _check_tls(tls_cert, tls_key)

    boards: list[BoardSpec] = []
    for entry in bench.boards:
        if isinstance(entry, VirtualBoard):
            base = entry.id or f"vb-{entry.target.lower()}"
            monitor = entry.energy_monitor.as_dict() if entry.energy_monitor else None
            boards += [BoardSpec(id=f"{base}-{i}" if entry.count > 1 or entry.id is None else base,
                                 kind="virtual", target=entry.target, runtime=entry.runtime, energy_monitor=monitor)
                       for i in range(entry.count)]
        else:
            monitor = entry.energy_monitor.as_dict() if entry.energy_monitor else None
            flash = None
            if entry.flash is not None:
                target = entry.flash.target or get_board(entry.target).pyocd_target
                flash = {**entry.flash.model_dump(), "target": target}
            boards.append(BoardSpec(id=entry.id or entry.port, kind="serial", target=entry.target, port=entry.port,
                                    baud=entry.baud, flash_command=tuple(entry.flash_command), flash=flash,
                                    energy_monitor=monitor, runtime=entry.runtime))
    ids = [b.id for b in boards]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"board ids must be unique: {ids}")

    retention = agent.retention
    return AgentConfig(
        listen=agent.listen, journal=journal, max_model_bytes=agent.max_model_bytes,
        tls_cert=tls_cert, tls_key=tls_key, clients={name: c.token for name, c in bench.clients.items()},
        boards=tuple(boards), admins=frozenset(name for name, c in bench.clients.items() if c.admin),
        workers=agent.workers,
        retention_max_age_s=retention.max_age_days * 86400 if retention.max_age_days is not None else None,
        retention_max_bytes=retention.max_bytes, retention_interval_s=retention.interval_s)


def load_config(path: str | Path) -> AgentConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    try:
        return parse_config(text, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
