"""Two ``nas search`` workers on one study on a real PostgreSQL server that the test starts (Debian's postgresql
package: initdb into a temporary folder, a free port), with the measurement store on the same server."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from nas.search import counted

REPO = Path(__file__).resolve().parents[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server (run as an unprivileged user when the tests run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    base = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        for user in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                continue
            for path in (base, sock):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chmod(base, 0o755)
            prefix = ["runuser", "-u", user, "--"]
            break
        else:
            pytest.skip("running as root and there is no unprivileged user to run PostgreSQL as")

    def run(argv: list[str]) -> None:
        done = subprocess.run(prefix + argv, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            pytest.fail(f"{Path(argv[0]).name}: {done.stderr.strip() or done.stdout.strip()}")

    run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    port = _free_port()
    run([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-t", "120", "-o",
         f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


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
    assert sum(s["trials_this_worker"] for s in summaries) in (6, 7)  # both check the count before they ask
    assert all(s["trials_this_worker"] >= 1 for s in summaries), "the second worker did not join"

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from nas.storage import open_storage

    study = optuna.load_study(study_name="shared", storage=open_storage(postgres, heartbeat=False))
    trials = study.get_trials(deepcopy=False)
    assert sum(counted(t) for t in trials) >= 6
    assert len({t.user_attrs["worker"] for t in trials if counted(t)}) == 2
    assert study.user_attrs["nas"]["space"] == "cnn"
    # both workers' measurements are in the one store on the same server
    from costmodel.store import MeasurementStore

    store = MeasurementStore(postgres)
    ids = {t.user_attrs["measurement"]["request_id"] for t in trials if t.user_attrs.get("measurement")}
    assert ids and store.measured_ids(ids) == ids
    store.close()
    # a third worker finds the study done and leaves it as it is
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and json.loads(done.stdout)["trials_this_worker"] == 0
