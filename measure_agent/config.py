"""The agent's configuration file (``bench.toml``): where it listens, who may call it, which boards it has.

Example::

    [agent]
    listen = "127.0.0.1:50051"
    journal = "journal.sqlite"          # relative to this file
    max_model_bytes = 4194304
    # tls = { cert = "server.crt", key = "server.key" }

    [clients]                            # a bearer token per client
    search-1 = "8c1f...e2"

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
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from costmodel.boards import CatalogueError, get_board
from measure_agent.backends import BoardSpec

DEFAULT_MAX_MODEL_BYTES = 4 * 1024 * 1024


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


def _boards(raw: list) -> tuple[BoardSpec, ...]:
    boards: list[BoardSpec] = []
    for n, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"boards[{n}] must be a table")
        kind, target = entry.get("kind"), entry.get("target")
        try:
            board = get_board(str(target))
        except CatalogueError as exc:
            raise ConfigError(f"boards[{n}]: {exc}") from None
        if kind == "virtual":
            count = entry.get("count", 1)
            if not isinstance(count, int) or count < 1:
                raise ConfigError(f"boards[{n}]: count must be a positive integer")
            base = entry.get("id", f"vb-{board.name.lower()}")
            boards += [BoardSpec(id=f"{base}-{i}" if count > 1 or "id" not in entry else base,
                                   kind="virtual", target=board.name) for i in range(count)]
        elif kind == "serial":
            if not entry.get("port"):
                raise ConfigError(f"boards[{n}]: a serial board needs a port")
            command = entry.get("flash_command", [])
            if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
                raise ConfigError(f"boards[{n}]: flash_command must be a list of strings (it is never run by a shell)")
            boards.append(BoardSpec(id=str(entry.get("id", entry["port"])), kind="serial", target=board.name,
                                      port=str(entry["port"]), baud=int(entry.get("baud", 115200)),
                                      flash_command=tuple(command), energy_monitor=entry.get("energy_monitor")))
        else:
            raise ConfigError(f"boards[{n}]: kind must be 'virtual' or 'serial', not {kind!r}")
    ids = [b.id for b in boards]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"board ids must be unique: {ids}")
    return tuple(boards)


def parse_config(text: str, base_dir: Path = Path(".")) -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    agent = data.get("agent", {})
    tls = agent.get("tls") or {}
    if bool(tls.get("cert")) != bool(tls.get("key")):
        raise ConfigError("agent.tls needs both cert and key")
    clients = data.get("clients", {})
    if not all(isinstance(v, str) and len(v) >= 16 for v in clients.values()):
        raise ConfigError("every client token must be a string of at least 16 characters")
    boards = _boards(data.get("boards", []))
    if not boards:
        raise ConfigError("no boards configured")

    def path(value):
        return None if value is None else (base_dir / Path(value).expanduser()).resolve()

    return AgentConfig(
        listen=str(agent.get("listen", "127.0.0.1:50051")),
        journal=path(agent.get("journal", "journal.sqlite")),
        max_model_bytes=int(agent.get("max_model_bytes", DEFAULT_MAX_MODEL_BYTES)),
        tls_cert=path(tls.get("cert")), tls_key=path(tls.get("key")),
        clients=dict(clients), boards=boards)


def load_config(path: str | Path) -> AgentConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        return parse_config(text, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
