"""Host build of the firmware runtime (executor + kernels, reference and SIMD variants) loaded by ctypes.

The same C sources as the firmware, compiled with the host gcc into a shared library per variant and cached
in the ``host-runtime`` folder of the cache root (``measure_agent.firmware_build.cache``). The SIMD variant uses portable C definitions of the DSP
intrinsics, so its code path (im2col, reordering, SMLAD blocking) is checked bit for bit on the host.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from measure_agent.firmware_build.cache import cache_dir
from measure_agent.firmware_build.flags import HOST_RUNTIME_FLAGS
from measure_agent.plan.builder import Plan
from measure_agent.plan.format import STATUS, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
CACHE = cache_dir("host-runtime")
CFLAGS = list(HOST_RUNTIME_FLAGS)
NP_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "float32": np.float32}

_lock = threading.RLock()
_libs: dict[str, ctypes.CDLL] = {}


class HostRuntimeError(RuntimeError):
    def __init__(self, what: str, status: int):
        self.status = status
        super().__init__(f"{what} failed: {STATUS.get(status, status)}")


def sources() -> list[Path]:
    """Every C file of the runtime (executor, ops) and the kernels, as the firmware build takes them."""
    return sorted((FIRMWARE / "runtime").rglob("*.c")) + sorted((FIRMWARE / "kernels").rglob("*.c"))


def _headers() -> list[Path]:
    return sorted((FIRMWARE / "runtime").rglob("*.h")) + sorted((FIRMWARE / "kernels").rglob("*.h"))


def library_path(variant: str = "reference") -> Path:
    """Build (if needed) and return the shared library of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}")
    h = hashlib.sha256()
    for p in sources() + _headers():
        h.update(str(p.relative_to(FIRMWARE)).encode())
        h.update(p.read_bytes())
    h.update(" ".join(CFLAGS).encode())
    h.update(variant.encode())
    out = CACHE / h.hexdigest()[:16] / f"libnn_{variant}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = ["gcc", *CFLAGS, f"-DNN_SIMD={VARIANTS[variant]}", "-o", tmp, *map(str, sources()), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise RuntimeError(f"host build failed:\n{proc.stderr}")
    os.replace(tmp, out)
    return out


def load_library(variant: str = "reference") -> ctypes.CDLL:
    with _lock:
        if variant not in _libs:
            lib = ctypes.CDLL(str(library_path(variant)))
            u8p = ctypes.POINTER(ctypes.c_uint8)
            lib.nn_arena_bytes_needed.argtypes = [u8p, ctypes.c_uint32]
            lib.nn_arena_bytes_needed.restype = ctypes.c_uint32
            lib.nn_load.argtypes = [u8p, ctypes.c_uint32, u8p, ctypes.c_uint32]
            lib.nn_load.restype = ctypes.c_int
            for f in ("nn_num_inputs", "nn_num_outputs", "nn_num_layers"):
                getattr(lib, f).restype = ctypes.c_uint32
                getattr(lib, f).argtypes = []
            lib.nn_input.argtypes = [ctypes.c_uint32, ctypes.POINTER(u8p), ctypes.POINTER(ctypes.c_uint32)]
            lib.nn_input.restype = ctypes.c_int
            lib.nn_output.argtypes = [ctypes.c_uint32, ctypes.POINTER(u8p), ctypes.POINTER(ctypes.c_uint32)]
            lib.nn_output.restype = ctypes.c_int
            lib.nn_run.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
            lib.nn_run.restype = ctypes.c_int
            lib.nn_layer_kernel.argtypes = [ctypes.c_uint32]
            lib.nn_layer_kernel.restype = ctypes.c_char_p
            _libs[variant] = lib
        return _libs[variant]


class HostRuntime:
    """One loaded plan in one variant's library (the executor has one global instance per library)."""

    def __init__(self, blob: bytes, variant: str = "reference", arena_bytes: int | None = None):
        self.lib = load_library(variant)
        n = len(blob)
        self._plan = (ctypes.c_uint32 * ((n + 3) // 4 + 1))()
        ctypes.memmove(self._plan, blob, n)
        self._plan_p = ctypes.cast(self._plan, ctypes.POINTER(ctypes.c_uint8))
        need = self.lib.nn_arena_bytes_needed(self._plan_p, n)
        size = need if arena_bytes is None else arena_bytes
        size = min(size, 256 << 20)  # a corrupted header must not make the host allocate gigabytes
        self._arena = (ctypes.c_uint64 * ((max(size, 16) + 7) // 8 + 2))()
        self._arena_p = ctypes.cast(self._arena, ctypes.POINTER(ctypes.c_uint8))
        self.status = self.lib.nn_load(self._plan_p, n, self._arena_p, size)

    def check(self) -> None:
        if self.status != 0:
            raise HostRuntimeError("nn_load", self.status)

    def layer_kernels(self) -> list[str]:
        """The kernel each layer runs (nn_layer_kernel), as chosen by nn_load."""
        self.check()
        return [self.lib.nn_layer_kernel(i).decode() for i in range(self.lib.nn_num_layers())]

    def run(self, inputs: list[np.ndarray], in_dtypes: list[str], out_dtypes: list[str],
            out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        self.check()
        lib = self.lib
        if len(inputs) != lib.nn_num_inputs():
            raise ValueError(f"plan has {lib.nn_num_inputs()} inputs, got {len(inputs)}")
        for i, (x, dt) in enumerate(zip(inputs, in_dtypes)):
            ptr = ctypes.POINTER(ctypes.c_uint8)()
            nbytes = ctypes.c_uint32()
            rc = lib.nn_input(i, ctypes.byref(ptr), ctypes.byref(nbytes))
            if rc:
                raise HostRuntimeError("nn_input", rc)
            data = np.ascontiguousarray(np.asarray(x).astype(NP_DTYPES[dt], copy=False)).tobytes()
            if len(data) != nbytes.value:
                raise ValueError(f"input {i}: {len(data)} bytes given, {nbytes.value} expected")
            ctypes.memmove(ptr, data, len(data))
        rc = lib.nn_run(None, None)
        if rc:
            raise HostRuntimeError("nn_run", rc)
        outs = []
        for i, (dt, shape) in enumerate(zip(out_dtypes, out_shapes)):
            ptr = ctypes.POINTER(ctypes.c_uint8)()
            nbytes = ctypes.c_uint32()
            rc = lib.nn_output(i, ctypes.byref(ptr), ctypes.byref(nbytes))
            if rc:
                raise HostRuntimeError("nn_output", rc)
            raw = ctypes.string_at(ptr, nbytes.value)
            outs.append(np.frombuffer(raw, dtype=NP_DTYPES[dt]).reshape(shape).copy())
        return outs


def load_status(blob: bytes, variant: str = "reference", arena_bytes: int | None = None) -> int:
    """nn_load's status for ``blob`` (used by the malformed-plan tests)."""
    with _lock:
        return HostRuntime(blob, variant, arena_bytes).status


def run_on_host(plan: Plan, inputs: list[np.ndarray], variant: str = "reference") -> list[np.ndarray]:
    """Run ``plan`` on ``inputs`` with the host build of ``variant`` ('reference' or 'simd')."""
    with _lock:
        rt = HostRuntime(plan.blob, variant)
        return rt.run(inputs, [t.dtype for t in plan.inputs], [t.dtype for t in plan.outputs],
                      [tuple(t.shape) for t in plan.outputs])
