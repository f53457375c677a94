"""Layers do not reach up: the cost model library knows nothing of the agent (its command-line tools,
``costmodel/cli.py`` and ``costmodel/commands/``, may drive agents), the board layer nothing of the agent's
configuration, journal or gRPC, the measurement nothing of the service. Checked on every import statement of
the source files (also imports inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

AGENT_SERVICE = ("measure_agent.service", "measure_agent.config", "measure_agent.scheduler", "measure_agent.journal",
                 "measure_agent.journal_writer", "measure_agent.client", "measure_agent.cli", "measure_agent.auth")
BOARD_LAYER = ("backends", "serial_link", "protocol", "energy", "errors", "settings", "elf", "firmware_build", "vboard",
               "plan", "flashing", "monitors")

RULES = [
    # (files, forbidden module prefixes)
    ("costmodel", ("measure_agent", "nas", "protos", "grpc")),
    *[(f"measure_agent/{part}", (*AGENT_SERVICE, "measure_agent.measurement", "measure_agent.validation", "protos",
                                 "grpc")) for part in BOARD_LAYER],
    ("measure_agent/measurement.py", (*AGENT_SERVICE, "grpc")),
    ("measure_agent/validation.py", (*AGENT_SERVICE, "grpc")),
    ("measure_agent/doctor.py", (*AGENT_SERVICE, "grpc")),
]


COMMAND_LINE = ("costmodel/cli.py", "costmodel/commands")


def _files(place: str) -> list[Path]:
    path = REPO / place
    if path.suffix == ".py":
        return [path]
    if not path.exists():
        path = path.with_suffix(".py")
        return [path] if path.exists() else []
    return sorted(p for p in path.rglob("*.py")
                  if not any(str(p.relative_to(REPO)).startswith(c) for c in COMMAND_LINE))


def _imports(path: Path) -> list[tuple[int, str]]:
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


@pytest.mark.parametrize("place,forbidden", RULES, ids=[r[0] for r in RULES])
def test_no_import_reaches_up(place, forbidden):
    files = _files(place)
    assert files, f"{place}: no source files (rule out of date?)"
    bad = [f"{f.relative_to(REPO)}:{line} imports {module}" for f in files for line, module in _imports(f)
           if any(module == p or module.startswith(p + ".") for p in forbidden)]
    assert not bad, "\n".join(bad)
