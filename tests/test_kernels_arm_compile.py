"""The runtime and kernels compile warning-free with arm-none-eabi-gcc for the supported cores."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from measure_agent.firmware_build.flags import RUNTIME_SEMANTICS, cpu_flags
from measure_agent.plan.host import sources

GCC = shutil.which("arm-none-eabi-gcc")
FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", *RUNTIME_SEMANTICS, "-c"]
TARGETS = [  # core, float ABI, NN_SIMD values
    ("cortex-m4", "hard", (0, 1)),
    ("cortex-m4", "soft", (0, 1)),
    ("cortex-m7", "hard", (0, 1)),
    ("cortex-m33", "hard", (0, 1)),
    ("cortex-m3", "soft", (0,)),
    ("cortex-m0plus", "soft", (0,)),
]


@pytest.mark.skipif(GCC is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("cpu,abi,simd", [(c, a, s) for c, a, ss in TARGETS for s in ss],
                         ids=lambda v: v if isinstance(v, str) else str(v))
def test_compiles_for_cortex_m(cpu, abi, simd, tmp_path: Path):
    cmd = [GCC, *cpu_flags(cpu, abi), *FLAGS, f"-DNN_SIMD={simd}", *map(str, sources())]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    if simd and cpu != "cortex-m3":
        # the SIMD conv must really use the DSP instructions on Armv7E-M / Armv8-M Mainline with DSP
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "conv2d_s8_simd.o")],
                             capture_output=True, text=True).stdout
        assert "smlad" in dis and "sxtb16" in dis
