"""``costmodel study`` end to end on a small scale: the user's own models on two virtual boards through a local
agent, into the store, with the fit verdict ("oversized"), a configuration the board cannot run, stage C and
stage F, the report; then a second run that measures nothing (everything comes from the store)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.testmodels import model_path

TARGETS = "NUCLEO-L496ZG,NUCLEO-G071RB"   # a Cortex-M4F and a Cortex-M0+ (no DSP, no FPU, 128 KB flash)


def _study(tmp_path, out: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "costmodel.cli", "study", *extra, "--no-builtin", "--targets", TARGETS,
           "--configs", "int8-ref,int8-simd", "--opt=-O2", "--sweeps", "none", "--validate-samples", "4",
           "--data", str(tmp_path / "data.npz"), "--store", str(tmp_path / "store.sqlite"),
           "--out", str(tmp_path / out), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=REPO)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    np.savez(tmp / "data.npz", x_train=rng.uniform(-1, 1, (16, 24)).astype(np.float32),
             y_train=rng.integers(0, 10, 16), x_test=rng.uniform(-1, 1, (8, 24)).astype(np.float32),
             y_test=rng.integers(0, 10, 8))
    small = model_path("dense", "int8", n=24, units=10)
    big = model_path("dense", "int8", n=400, units=400)   # 160 KB of weights: more than the G071RB's flash
    first = _study(tmp, "out", str(small), str(big))
    second = _study(tmp, "out2", str(small), str(big))   # the same store, its own outputs
    return tmp, first, second, small.stem, big.stem


def _runs(tmp, out: str = "out") -> list[dict]:
    with open(tmp / out / "runs.csv") as f:
        return list(csv.DictReader(f))


def test_first_run_measures_and_reports(study):
    tmp, first, _, small, big = study
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout)
    assert summary["counts"]["measured"] == 5 and summary["counts"]["oversized"] == 1, summary
    runs = {(r["model"], r["board"], r["config"]): r for r in _runs(tmp)}
    assert len(runs) == 8
    assert runs[(small, "NUCLEO-L496ZG", "int8-simd")]["status"] == "measured"
    # int8 needs no FPU: the Cortex-M0+ runs the reference kernels, built soft-float
    g0 = runs[(small, "NUCLEO-G071RB", "int8-ref")]
    assert float(g0["latency_s"]) > 0 and g0["float_abi"] == "soft"
    # the Cortex-M0+ cannot run the SIMD kernels: not applicable, with the reason
    simd = runs[(small, "NUCLEO-G071RB", "int8-simd")]
    assert simd["status"] == "n/a" and "DSP" in simd["reason"]
    # too big for the G071RB's flash: oversized by the agent's fit verdict, not a failure
    over = runs[(big, "NUCLEO-G071RB", "int8-ref")]
    assert over["status"] == "oversized" and "does not fit NUCLEO-G071RB" in over["reason"]
    measured = [r for r in runs.values() if r["status"] == "measured"]
    assert all(r["provenance"].startswith("virtual ") and "timing model" in r["provenance"] for r in measured)
    assert all(r["energy_provenance"].startswith("modelled") for r in measured)
    data = json.loads((tmp / "out" / "study.json").read_text())
    acc = data["accuracy"]
    assert set(acc[small]["host"]) == {"int8"} and acc[small]["samples"] == 8             # stage C
    assert [v["config_id"] for v in acc[small]["board"]] == ["int8-simd -O2", "int8-ref -O2"]  # stage F
    assert all(v["identical_outputs"] == 1.0 and v["samples"] == 4 for v in acc[small]["board"])
    assert acc[big]["problems"] and "do not fit the model input" in acc[big]["problems"][0]
    assert {f["key"] for f in data["findings"]} >= {"board-accuracy", "energy-latency", "compiler"} - {"compiler"}
    html = (tmp / "out" / "study.html").read_text()
    assert "oversized" in html and 'id="plot-latency"' in html


def test_second_run_reuses_the_store(study):
    tmp, first, second, small, big = study
    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads(second.stdout)
    assert summary["counts"]["measured"] == 0 and summary["counts"]["reused"] == 5, summary
    assert summary["counts"]["oversized"] == 1  # the verdict is remembered, not asked again
    runs = {(r["model"], r["board"], r["config"]): r["status"] for r in _runs(tmp, "out2")}
    assert runs[(small, "NUCLEO-L496ZG", "int8-simd")] == "reused"
    assert summary["seconds"]["measuring (stages D, E)"] < 5


def test_bad_input_is_one_line(tmp_path):
    cmd = [sys.executable, "-m", "costmodel.cli", "study", "--configs", "int9", "--store", str(tmp_path / "s.db")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "unknown configuration int9" in done.stderr
    done = subprocess.run(cmd[:4] + ["--targets", "NUCLEO-NOPE"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 2 and "NUCLEO-NOPE" in done.stderr


def test_request_ids_name_the_code():
    """On local virtual boards a request id includes the firmware build and the timing model: rows measured with
    other code are not reused."""
    from costmodel.commands.study import _request_id

    plain = _request_id(b"model", "NUCLEO-L496ZG", "simd", "hard", "-O3", "flash", 3, "")
    a = _request_id(b"model", "NUCLEO-L496ZG", "simd", "hard", "-O3", "flash", 3, "build-a/2026.1")
    b = _request_id(b"model", "NUCLEO-L496ZG", "simd", "hard", "-O3", "flash", 3, "build-b/2026.1")
    assert plain.startswith("m-") and a.startswith("s-") and len({plain, a, b}) == 3
