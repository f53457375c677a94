"""The runtime and kernels compile warning-free with arm-none-eabi-gcc for the supported cores."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from measure_agent.plan.host import sources

GCC = shutil.which("arm-none-eabi-gcc")
FLAGS = ["-mthumb", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-c"]
TARGETS = [
    ("cortex-m4", ["-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], (0, 1)),
    ("cortex-m4", ["-mfloat-abi=soft"], (0, 1)),
    ("cortex-m7", ["-mfloat-abi=hard", "-mfpu=fpv5-d16"], (0, 1)),
    ("cortex-m33", ["-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"], (0, 1)),
    ("cortex-m3", [], (0,)),
    ("cortex-m0plus", [], (0,)),
]


@pytest.mark.skipif(GCC is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("cpu,abi,simd", [(c, a, s) for c, a, ss in TARGETS for s in ss],
                         ids=lambda v: v if isinstance(v, str) else str(v))
def test_compiles_for_cortex_m(cpu, abi, simd, tmp_path: Path):
    cmd = [GCC, f"-mcpu={cpu}", *abi, *FLAGS, f"-DNN_SIMD={simd}", *map(str, sources())]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    if simd and cpu != "cortex-m3":
        # the SIMD conv must really use the DSP instructions on Armv7E-M / Armv8-M Mainline with DSP
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "conv2d_s8_simd.o")],
                             capture_output=True, text=True).stdout
        assert "smlad" in dis and "sxtb16" in dis
