"""Running the compilers: their version (part of every build id), parallel compiles, and the error type."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path


class FirmwareBuildError(RuntimeError):
    """The firmware (or host shell) cannot be built: missing toolchain, compiler or linker error, too big."""


@lru_cache(maxsize=None)
def compiler_version(cc: str) -> str:
    """First line of ``cc --version``."""
    exe = shutil.which(cc)
    if exe is None:
        raise FirmwareBuildError(f"{cc} not found on PATH (install gcc-arm-none-eabi + libnewlib-arm-none-eabi)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0] if out else cc


def run(cmd: list[str], what: str) -> None:
    """Run a compiler or linker command; FirmwareBuildError with its messages if it fails."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise FirmwareBuildError(f"{what}:\n{r.stderr.strip()}")


def compile_all(cc: str, sources: list[Path], flags: list[str], objdir: Path, jobs: int | None) -> list[Path]:
    """Compile every source to ``objdir`` in parallel; the objects in source order."""
    objs = [objdir / f"{i:03d}_{src.stem}.o" for i, src in enumerate(sources)]
    cmds = [[cc, *flags, "-c", str(src), "-o", str(obj)] for src, obj in zip(sources, objs)]

    def one(cmd: list[str]) -> tuple[list[str], subprocess.CompletedProcess]:
        return cmd, subprocess.run(cmd, capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        for cmd, r in pool.map(one, cmds):
            if r.returncode != 0:
                raise FirmwareBuildError(f"compile failed: {' '.join(cmd)}\n{r.stderr.strip()}")
    return objs
