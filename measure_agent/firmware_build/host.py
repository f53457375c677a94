"""The firmware shell built for the host: the same protocol code with the UART on stdin/stdout, for fast
end-to-end protocol tests (``--timeout-ms``, ``--model-ram``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import cache, flags
from .firmware import BUILD_FORMAT
from .sources import SHELL_DIR, hash_files, headers, resolve_runtime, runtime_sources
from .toolchain import compiler_version, run


def build_host_shell(runtime: str = "auto", *, cache_dir: str | os.PathLike | None = None,
                     cc: str = flags.HOST_CC, force: bool = False) -> Path:
    """Build (or fetch from ``cache_dir("host-shell")``) the host executable of the shell; its path."""
    runtime = resolve_runtime(runtime)
    compiler = compiler_version(cc)
    rt_sources, rt_includes = runtime_sources(runtime)
    sources = sorted(SHELL_DIR.glob("*.c")) + [SHELL_DIR / "host" / "hal_host.c"] + rt_sources
    cflags = flags.host_shell_cflags(runtime)
    h = hashlib.sha256()
    h.update(json.dumps({"format": BUILD_FORMAT, "compiler": compiler, "flags": cflags,
                         "libs": flags.LINK_LIBS}).encode())
    hash_files(h, sources + headers([SHELL_DIR, *rt_includes]))
    key = h.hexdigest()[:16]
    final = cache.cache_dir("host-shell", cache_dir) / f"{runtime}-{key}"
    exe = final / "shell_host"
    if exe.exists() and not force:
        return exe
    with cache.staged(final) as tmp:
        run([cc, *cflags, f'-DFW_BUILD_ID="{key}"', f"-I{SHELL_DIR}", *(f"-I{d}" for d in rt_includes),
             *map(str, sources), *flags.LINK_LIBS, "-o", str(tmp / "shell_host")], "host shell build failed")
    return exe
