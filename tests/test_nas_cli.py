"""The ``nas`` command line: bad input is one line and exit code 2 with the study untouched; an interrupted
search resumes where it stopped; ``nas convert`` / ``nas evaluate`` (the paper's stages C and B)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.search import counted

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}


def nas(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=kw.get("cwd"))


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A storage with one study of one finished trial, which no bad command may change."""
    base = tmp_path_factory.mktemp("studies")
    url = f"sqlite:///{base}/studies.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="kept", storage=url)
    study.add_trial(optuna.trial.create_trial(params={"x": 1.0}, distributions={
        "x": optuna.distributions.FloatDistribution(0, 2)}, value=1.0))
    return base, url


def _snapshot(url: str) -> list:
    storage = optuna.storages.RDBStorage(url)
    return [(s.study_name, len(storage.get_all_trials(s._study_id))) for s in storage.get_all_studies()]


@pytest.mark.parametrize("args,message", [
    (["--space", "resnet"], "unknown search space 'resnet'"),
    (["--sampler", "annealing"], "unknown sampler 'annealing'"),
    (["--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    (["--max-latency", "fast"], "--max-latency 'fast'"),
    (["--data", "{base}/keys.npz"], "missing x_train, y_train, x_test, y_test"),
    (["--data", "{base}/shapes.npz"], "x_train has 5 samples, y_train 4"),
    (["--target", "NUCLEO-NOPE"], "NUCLEO-NOPE"),
    (["--agent", "127.0.0.1:1", "--token", "0123456789abcdef0123"], "127.0.0.1:1"),
    (["--storage", "postgresql://nobody@127.0.0.1:1/nas"], "cannot open the storage"),
    (["--storage", "sqlite:///{base}/no/such/folder/x.db"], "cannot open the storage"),
    (["--store", "{base}/no/such/folder/store.sqlite"], "measurement store"),
])
def test_bad_input_is_one_line_exit_2_and_the_study_untouched(existing, args, message):
    base, url = existing
    np.savez(base / "keys.npz", x=np.zeros((4, 8, 8, 1)), y=np.zeros(4))
    np.savez(base / "shapes.npz", x_train=np.zeros((5, 8, 8, 1)), y_train=np.zeros(4, int),
             x_test=np.zeros((2, 8, 8, 1)), y_test=np.zeros(2, int))
    before = _snapshot(url)
    args = [a.replace("{base}", str(base)) for a in args]
    # a new study: nothing may be created; the last of a repeated option wins
    done = nas("search", "--study", "fresh", "--storage", url, "--trials", "2", "--store", str(base / "store.sqlite"),
               *args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert _snapshot(url) == before
    assert not (base / "store.sqlite").exists()  # nor a measurement store


def test_an_unreachable_agent_leaves_no_files(tmp_path):
    done = nas("search", "--study", "s", "--storage", f"sqlite:///{tmp_path}/studies.db", "--store",
               str(tmp_path / "store.sqlite"), "--agent", "127.0.0.1:1", "--token", "0123456789abcdef0123")
    assert done.returncode == 2 and "127.0.0.1:1" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_joining_a_study_of_another_search_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="other", storage=url)
    study.set_user_attr("nas", {"space": "dscnn", "dataset": "digits", "objectives": ["accuracy", "latency"]})
    done = nas("search", "--study", "other", "--storage", url, "--store", str(tmp_path / "m.sqlite"))
    assert done.returncode == 2 and "study 'other' is a search with space 'dscnn', not 'cnn'" in done.stderr


def test_an_interrupted_search_resumes_where_it_stopped(tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    args = ["search", "--study", "resumed", "--storage", url, "--store", str(tmp_path / "store.sqlite"),
            "--trials", "5", "--objectives", "latency", "--jobs", "1", "--sampler", "random"]
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=ENV)
    lines = []
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if sum(line.startswith("trial ") for line in lines) == 2:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + err
    assert "interrupted: the study is saved" in err
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    trials = optuna.load_study(study_name="resumed", storage=url).get_trials(deepcopy=False)
    first = sum(counted(t) for t in trials)
    assert 2 <= first < 5
    done = nas(*args, "--json", timeout=400)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="resumed", storage=url).get_trials(deepcopy=False)
    assert sum(counted(t) for t in trials) == 5
    assert not [t for t in trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
    import json

    assert json.loads(done.stdout)["trials_this_worker"] == 5 - first
    # the trial in flight when it was interrupted (if it had its parameters yet) was run again
    for t in trials:
        if t.user_attrs.get("outcome") == "interrupted" and t.params:
            assert any(r.user_attrs.get("retry_of") == t.number and counted(r) for r in trials)
    # its report, from the command line
    out = tmp_path / "report" / "resumed.html"
    done = nas("report", "resumed", "--storage", url, "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["trials"] == 5 and figures["out"] == str(out) and sum(figures["outcomes"].values()) == 5
    assert out.stat().st_size > 1_000_000 and 'id="plot-front"' in out.read_text()


def test_report_bad_input_is_one_line_exit_2(existing, tmp_path):
    base, url = existing
    before = _snapshot(url)
    for args, message in ((["nosuch", "--storage", url], "no study 'nosuch'"),
                          (["kept", "--storage", f"sqlite:///{tmp_path}/none.db"], "no such file"),
                          (["kept", "--storage", "postgresql://nobody@127.0.0.1:1/nas"],
                           "cannot open the storage")):
        done = nas("report", *args, "--out", str(tmp_path / "r.html"))
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "r.html").exists()
    assert _snapshot(url) == before


def test_spaces_of_a_users_module():
    import json

    done = nas("spaces", "--space-module", str(REPO / "examples" / "nas_space.py"), "--json")
    assert done.returncode == 0, done.stderr
    assert {"cnn", "dscnn", "tiny-mlp"} <= {s["name"] for s in json.loads(done.stdout)["spaces"]}
    done = nas("spaces", "--space-module", "no_such_module_of_spaces")
    assert done.returncode == 2 and "cannot load the space module no_such_module_of_spaces" in done.stderr


KERAS_MODEL = textwrap.dedent("""
    import sys
    from nas.convert import keras_module
    keras = keras_module()
    inputs = keras.Input((8, 8, 1))          # a user's model: dynamic batch, converted the usual way
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.save(sys.argv[1])
""")


def test_convert_and_evaluate_a_users_model(tmp_path):
    model = tmp_path / "user.keras"
    made = subprocess.run([sys.executable, "-c", KERAS_MODEL, str(model)], capture_output=True, text=True,
                          timeout=300, env=ENV)
    assert made.returncode == 0, made.stderr
    import json

    done = nas("convert", str(model), "--out", str(tmp_path / "converted"), "--json")
    assert done.returncode == 0, done.stderr
    formats = {f["quantization"]: f["bytes"] for f in json.loads(done.stdout)["formats"]}
    assert set(formats) == {"float32", "dynamic", "int8"}
    assert formats["int8"] < formats["float32"] and formats["dynamic"] < formats["float32"]
    assert (tmp_path / "converted" / "user-int8.tflite").exists()
    done = nas("evaluate", str(model), "--data", "digits", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["samples"] == 359 and len(report["formats"]) == 3
    assert all(0.0 <= f["accuracy"] <= 1.0 for f in report["formats"])  # untrained: about chance
    done = nas("evaluate", str(tmp_path / "converted" / "user-int8.tflite"), "--data", "digits")
    assert done.returncode == 0 and "as given" in done.stdout
    done = nas("evaluate", str(tmp_path / "missing.keras"), "--data", "digits")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "missing.keras" in done.stderr
