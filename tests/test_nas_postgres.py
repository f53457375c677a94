"""Two ``nas search`` workers on one study on a real PostgreSQL server that the test starts (Debian's postgresql
package: initdb into a temporary folder, a free port), with the measurement store on the same server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from nas.search import counted
from tests.postgres import postgres_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server's URL."""
    with postgres_server("nas-pg-") as url:
        yield url


def test_two_workers_share_one_study_on_postgresql(postgres, tmp_path):
    args = [sys.executable, "-m", "nas.cli", "search", "--study", "shared", "--storage", postgres, "--store", postgres,
            "--trials", "6", "--objectives", "latency,energy", "--jobs", "1", "--sampler", "random", "--quiet",
            "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen(args + ["--seed", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    summaries = [json.loads(out) for out, _ in outputs]
    # of two asking for the last trial, one keeps it (one of them may have found the study done: the workers start
    # at their own pace, and pruned candidates take milliseconds)
    assert sum(s["trials_this_worker"] for s in summaries) == 6
    # a worker started later joins the study and runs only the trials its total adds
    more = [a if a != "6" else "9" for a in args]
    joined = subprocess.run(more + ["--seed", "7"], capture_output=True, text=True, env=env, timeout=300)
    assert joined.returncode == 0, joined.stderr
    assert json.loads(joined.stdout)["trials_this_worker"] == 3

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from nas.storage import open_storage

    study = optuna.load_study(study_name="shared", storage=open_storage(postgres, heartbeat=False))
    trials = study.get_trials(deepcopy=False)
    assert sum(counted(t) for t in trials) == 9
    assert len({t.user_attrs["worker"] for t in trials if counted(t)}) >= 2
    assert study.user_attrs["nas"]["space"] == "cnn"
    # every worker's measurements are in the one store on the same server
    from costmodel.store import MeasurementStore

    store = MeasurementStore(postgres)
    ids = {t.user_attrs["measurement"]["request_id"] for t in trials if t.user_attrs.get("measurement")}
    assert ids and store.measured_ids(ids) == ids
    store.close()
    # another worker finds the study done and leaves it as it is
    done = subprocess.run(more, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and json.loads(done.stdout)["trials_this_worker"] == 0
