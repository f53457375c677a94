"""The one cache root of every build product of the project, and the atomic install of a finished build.

``$MCU_NAS_CACHE`` or ``~/.cache/mcu-nas``, with one folder per kind::

    firmware/      <board>-<variant>-<float abi>-<opt>-<build id>/   firmware.elf, image.json, firmware.map, ...
    host-shell/    <runtime>-<build id>/shell_host                   the shell built for the host
    host-runtime/  <build id>/libnn_<variant>.so                     measure_agent/plan/host.py
    test-models/   converted synthetic test models
    test-programs/ small programs assembled or compiled for the virtual board's tests and benchmarks
    sweep-models/  converted benchmark networks of ``costmodel sweep`` (costmodel/sweeps.py), by content hash

Entries are named by a content hash of everything that goes into them, so a folder is never
updated: a build is staged in a temporary folder beside its final place and renamed into it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "MCU_NAS_CACHE"
KINDS = ("firmware", "host-shell", "host-runtime", "test-models", "test-programs", "sweep-models")


def cache_root() -> Path:
    """``$MCU_NAS_CACHE``, or ``~/.cache/mcu-nas`` (read at each call)."""
    env = os.environ.get(ENV)
    return Path(env) if env else Path.home() / ".cache" / "mcu-nas"


def cache_dir(kind: str, override: str | os.PathLike | None = None) -> Path:
    """The folder of one kind of build product (``override``, when given, replaces it)."""
    if kind not in KINDS:
        raise ValueError(f"cache kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return Path(override) if override is not None else cache_root() / kind


def install(tmp: Path, final: Path) -> Path:
    """Rename the finished build ``tmp`` to ``final``; if another process got there first, keep theirs."""
    try:
        os.replace(tmp, final)
    except OSError:  # final exists (same content hash, built concurrently or forced again)
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``final``; installed as ``final`` when the block succeeds and
    removed when it raises."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    install(tmp, final)
