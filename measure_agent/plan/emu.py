"""Run a plan on the real Cortex-M instruction set under Unicorn (tests of the SIMD kernels' intrinsics).

The runtime is cross-compiled with arm-none-eabi-gcc together with ``firmware/host/emu_harness.c`` into a
flat image (cached under ``.cache/emu_runtime/<hash>/``) and executed by Unicorn with a Cortex-M4 CPU
model. This checks that the DSP instructions (SMLAD, SXTB16, SADD16, SMLABB/SMLATT) give exactly what the
portable host emulation gives. It is a functional check, not a timing model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from measure_agent.plan.compiler import Plan
from measure_agent.plan.host import FIRMWARE, NP_DTYPES, sources

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NN_EMU_CACHE", ROOT / ".cache" / "emu_runtime"))
GCC = shutil.which("arm-none-eabi-gcc")
IMAGE_BASE = 0x20000000
STACK_TOP = 0x20200000
RETURN_ADDR = 0x201F0000
DATA_BASE = 0x60000000


def available() -> bool:
    try:
        import unicorn  # noqa: F401
    except ImportError:
        return False
    return GCC is not None


def build_image(variant: str = "simd", cpu: str = "cortex-m4") -> tuple[bytes, int]:
    """(flat image, entry address) of the runtime for ``cpu`` (soft-float ABI) and ``variant``."""
    simd = {"reference": 0, "simd": 1}[variant]
    files = [FIRMWARE / "host" / "emu_harness.c", FIRMWARE / "host" / "emu.ld", *sources(),
             *sorted((FIRMWARE / "runtime").glob("*.h")), *sorted((FIRMWARE / "kernels").glob("*.h"))]
    h = hashlib.sha256(f"{cpu}:{simd}".encode())
    for f in files:
        h.update(f.read_bytes())
    out = CACHE / h.hexdigest()[:16]
    img, sym = out / "image.bin", out / "entry.txt"
    if not img.exists():
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            elf = Path(tmp) / "emu.elf"
            cmd = [GCC, f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", "-O2", "-std=c11", "-ffp-contract=off",
                   "-ffunction-sections", "-fdata-sections", f"-DNN_SIMD={simd}", "-nostartfiles",
                   "-T", str(FIRMWARE / "host" / "emu.ld"), "-Wl,--gc-sections", "--specs=nano.specs",
                   "-o", str(elf), str(FIRMWARE / "host" / "emu_harness.c"), *map(str, sources()), "-lm"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"cross build failed:\n{proc.stderr}")
            nm = subprocess.run([GCC.replace("gcc", "nm"), str(elf)], capture_output=True, text=True).stdout
            entry = next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(" emu_run"))
            subprocess.run([GCC.replace("gcc", "objcopy"), "-O", "binary", str(elf), str(Path(tmp) / "image.bin")],
                           check=True)
            (Path(tmp) / "entry.txt").write_text(str(entry))
            os.replace(Path(tmp) / "image.bin", img)
            os.replace(Path(tmp) / "entry.txt", sym)
    return img.read_bytes(), int(sym.read_text())


def _align(n: int, a: int = 0x1000) -> int:
    return (n + a - 1) // a * a


def run_on_emulator(plan: Plan, inputs: list[np.ndarray], variant: str = "simd",
                    cpu: str = "cortex-m4") -> list[np.ndarray]:
    """Run a single-input, single-output ``plan`` on the emulated core; returns [output]."""
    from unicorn import Uc, UC_ARCH_ARM, UC_MODE_THUMB
    from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M4

    if len(plan.inputs) != 1 or len(plan.outputs) != 1:
        raise ValueError("the emulator harness runs single-input single-output plans")
    image, entry = build_image(variant, cpu)
    x = np.ascontiguousarray(np.asarray(inputs[0]).astype(NP_DTYPES[plan.inputs[0].dtype])).tobytes()
    out_len = plan.outputs[0].bytes
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
    uc.mem_map(IMAGE_BASE, STACK_TOP - IMAGE_BASE)
    uc.mem_write(IMAGE_BASE, image)
    plan_addr = DATA_BASE
    arena_addr = plan_addr + _align(len(plan.blob))
    in_addr = arena_addr + _align(plan.arena_bytes + 16)
    out_addr = in_addr + _align(len(x))
    job_addr = out_addr + _align(out_len)
    uc.mem_map(DATA_BASE, job_addr + 0x1000 - DATA_BASE)
    uc.mem_write(plan_addr, plan.blob)
    uc.mem_write(in_addr, x)
    uc.mem_write(job_addr, struct.pack("<9I", plan_addr, len(plan.blob), arena_addr, plan.arena_bytes, in_addr,
                                       len(x), out_addr, out_len, 0xFFFFFFFF))
    uc.reg_write(UC_ARM_REG_SP, STACK_TOP - 64)
    uc.reg_write(UC_ARM_REG_R0, job_addr)
    uc.reg_write(UC_ARM_REG_LR, RETURN_ADDR | 1)
    uc.emu_start(entry | 1, RETURN_ADDR, timeout=120_000_000)
    status = struct.unpack("<i", uc.mem_read(job_addr + 32, 4))[0]
    if status != 0:
        raise RuntimeError(f"emulated nn_load/nn_run failed with status {status}")
    raw = bytes(uc.mem_read(out_addr, out_len))
    return [np.frombuffer(raw, NP_DTYPES[plan.outputs[0].dtype]).reshape(plan.outputs[0].shape).copy()]
