"""Fuzz the executor under AddressSanitizer + UndefinedBehaviorSanitizer (host build of the same sources)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from costmodel.tflite import read_model
from measure_agent.firmware_build.flags import RUNTIME_SEMANTICS
from measure_agent.plan import compile_plan
from measure_agent.plan.host import FIRMWARE, sources
from tests.testmodels import model_path

GCC = shutil.which("gcc")


@pytest.mark.skipif(GCC is None, reason="no host gcc")
@pytest.mark.parametrize("variant", [0, 1], ids=["reference", "simd"])
def test_fuzz_under_sanitizers(variant, tmp_path: Path):
    plans = {
        "cnn": compile_plan(read_model(model_path("cnn", "int8", shape=(16, 16, 3)))).blob,
        "se": compile_plan(read_model(model_path("se", "int8", shape=(6, 6, 8)))).blob,
        "float": compile_plan(read_model(model_path("cnn", "float", shape=(16, 16, 3)))).blob,
        "pad": compile_plan(read_model(model_path("pad", "int8", shape=(5, 5, 3), pads=((1, 2), (0, 1))))).blob,
        "logistic": compile_plan(read_model(model_path("logistic", "int8", n=8, units=9))).blob,
        "concat": compile_plan(read_model(model_path("concat", "int8", shape=(5, 5, 3), f1=3, f2=5))).blob,
        "hybrid": compile_plan(read_model(model_path("dense", "hybrid", n=64, units=32, act="relu"))).blob,
    }
    exe = tmp_path / "plan_fuzz"
    # the runtime's arithmetic semantics (RUNTIME_SEMANTICS): int32 sums wrap as the reference's (-fwrapv), so
    # any int32 bias is valid and the sanitizer checks everything else
    cmd = [GCC, "-O1", "-g", "-std=c11", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           *RUNTIME_SEMANTICS, f"-DNN_SIMD={variant}", "-o", str(exe), str(FIRMWARE / "host" / "plan_fuzz.c"),
           *map(str, sources()), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "sanitize" in proc.stderr:
        pytest.skip(f"sanitizer runtime unavailable: {proc.stderr[:200]}")
    assert proc.returncode == 0, proc.stderr
    for name, blob in plans.items():
        path = tmp_path / f"{name}.plan"
        path.write_bytes(blob)
        run = subprocess.run([str(exe), str(path), "2000", "7"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{name}: {run.stdout}\n{run.stderr[-3000:]}"
        assert "loaded" in run.stdout
