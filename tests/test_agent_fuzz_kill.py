"""Small, fast versions of the two robustness benchmarks (``benchmarks/fuzz_models.py`` and
``benchmarks/agent_kill_loop.py``): mutated real models through `costmodel analyze` and a served agent, and
the agent SIGKILLed under load."""

from __future__ import annotations

import collections
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import agent_kill_loop  # noqa: E402
import fuzz_models  # noqa: E402


def test_fuzzed_models_through_analyze_are_clear_errors():
    """Byte flips, truncations and field mutations of the real models: every case ends with exit 0 or one
    ``error:`` line and exit 2 (no crash, no traceback, no internal error)."""
    outcomes = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.tflite"
        for index, seed_path in fuzz_models.cases(240, seed=11):
            _, data = fuzz_models.case_bytes(index, seed_path, 11)
            path.write_bytes(data)
            code, err = fuzz_models._analyze_in_process(path)
            outcome = fuzz_models.analyze_outcome(code, err)
            outcomes[outcome.split(":")[0]] += 1
            assert outcome == "ok" or outcome.startswith("refused"), (index, seed_path.name, err)
    assert outcomes["ok"] and outcomes["refused"]


@pytest.mark.slow
def test_fuzzed_models_through_a_served_agent():
    """The same mutations as measurement requests: each a clear gRPC status, the agent serving at the end and
    its journal consistent."""
    outcomes, state = fuzz_models.fuzz_agent(80, seed=12, boards=1, clients=2)
    assert sum(outcomes.values()) == 80
    assert not {"agent unreachable", "UNKNOWN", "INTERNAL (internal error)"} & set(outcomes), outcomes
    assert state["agent alive at the end"] and state["agent serving at the end"]
    assert state["journal rows"] == 80 and state["journal unfinished"] == 0 and state["journal problems"] == []


@pytest.mark.slow
def test_agent_killed_under_load_loses_and_duplicates_nothing():
    counts = agent_kill_loop.run(kills=3, clients=2, boards=1, seed=5, min_gap_s=0.5, max_gap_s=2.0,
                                 log=lambda line: None)
    assert counts["exactly once"], counts
    assert counts["results"] > 0 and counts["errors"] > 0 and counts["lost"] == counts["duplicated"] == 0
