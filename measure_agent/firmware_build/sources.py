"""What goes into a build: the firmware source tree, the executor choice, and hashing the files."""

from __future__ import annotations

from pathlib import Path

from .toolchain import FirmwareBuildError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
SHELL_DIR = FIRMWARE_DIR / "shell"
BOARD_DIR = FIRMWARE_DIR / "board"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
KERNELS_DIR = FIRMWARE_DIR / "kernels"
RUNTIMES_DIR = FIRMWARE_DIR / "runtimes"
# The executors a build can link behind the shell. Every one implements firmware/runtime/executor.h (the
# seam, firmware/runtime/README.md "Another runtime"): nn is the model runtime, stub a toy for shell tests,
# fc_only a second, minimal runtime (FULLY_CONNECTED only) that proves the seam end to end. Another engine
# (TFLite Micro, a vendor library) is added here as one more entry: its sources and include directories.
RUNTIMES = ("nn", "stub", "fc_only")


def resolve_runtime(runtime: str = "auto") -> str:
    """``nn`` (firmware/runtime + kernels), ``stub`` (firmware/shell/stub) or ``fc_only``
    (firmware/runtimes/fc_only); ``auto``: nn when it exists."""
    if runtime == "auto":
        return "nn" if (RUNTIME_DIR / "executor.c").exists() else "stub"
    if runtime not in RUNTIMES:
        raise FirmwareBuildError(f"runtime must be auto or one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime == "nn" and not (RUNTIME_DIR / "executor.c").exists():
        raise FirmwareBuildError("runtime 'nn' requested but firmware/runtime/executor.c does not exist")
    return runtime


def runtime_sources(runtime: str) -> tuple[list[Path], list[Path]]:
    """(sources, include directories) of the executor."""
    if runtime == "nn":
        return sorted(RUNTIME_DIR.rglob("*.c")) + sorted(KERNELS_DIR.rglob("*.c")), [RUNTIME_DIR, KERNELS_DIR]
    if runtime == "fc_only":  # reads the plan format: plan_format.h beside executor.h
        return sorted((RUNTIMES_DIR / "fc_only").glob("*.c")), [RUNTIME_DIR]
    # the stub implements the runtime's own interface header, firmware/runtime/executor.h
    return [SHELL_DIR / "stub" / "stub_executor.c"], [RUNTIME_DIR]


def headers(dirs: list[Path]) -> list[Path]:
    """Every header under ``dirs`` (all of them go into the build id, used or not)."""
    return [p for d in dirs if d.exists() for p in d.rglob("*.h")]


def hash_files(h, paths: list[Path]) -> None:
    """Feed the files' names (relative to firmware/) and contents to the hash ``h``, in a fixed order."""
    for p in sorted(set(paths)):
        h.update(str(p.relative_to(FIRMWARE_DIR)).encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
