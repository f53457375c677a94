"""Searches end to end on a tiny space: measured over a real gRPC agent on loopback (virtual NUCLEO-L496ZG),
pruned and repaired by the cost model, a candidate the runtime cannot run recorded as failed, an agent killed
mid-search, training and int8 accuracy of the survivors, the HTML report in a headless browser."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.adapter import Lab
from nas.datasets import digits
from nas.objectives import Budgets, parse_objectives
from nas.search import Search, SearchConfig, SearchError, counted
from nas.spaces import SearchSpace, get_space
from nas.storage import open_storage

TARGET = "NUCLEO-L496ZG"
TOKEN = "nas-test-token-0123456789"
HERE = str(Path(__file__).resolve())


class TinySpace(SearchSpace):
    """Two convolutions and a classifier. ``groups`` is always 1 for the samplers; only an enqueued trial asks for 2
    (Optuna lets a fixed parameter leave its range): a grouped convolution, which the runtime cannot run."""

    name = "test-tiny"

    def build(self, trial, input_shape, classes):
        keras = self.keras
        inputs = self.input(input_shape)
        f0 = trial.suggest_int("filters_0", 2, 12)
        k0 = trial.suggest_categorical("kernel_0", [1, 3])
        x = self.tunable(keras.layers.Conv2D(f0, k0, padding="same", activation="relu", name="c0"),
                         filters="filters_0", kernel="kernel_0")(inputs)
        x = keras.layers.MaxPooling2D(2)(x)
        f1 = trial.suggest_int("filters_1", 2, 12)
        x = self.tunable(keras.layers.Conv2D(f1, 3, padding="same", activation="relu", name="c1"),
                         filters="filters_1")(x)
        if trial.suggest_int("groups", 1, 1) > 1:
            x = keras.layers.Conv2D(4, 1, name="g_in")(x)
            x = keras.layers.Conv2D(4, 3, groups=2, padding="same", name="grouped")(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax", name="classes")(x))


def _config(study: str, storage: str, trials: int, objectives: str, **kw) -> SearchConfig:
    return SearchConfig(study=study, storage=storage, trials=trials, target=TARGET, space=get_space("test-tiny"),
                        space_module=HERE, dataset=digits(), dataset_spec=None,
                        objectives=parse_objectives(objectives), jobs=1, **kw)


@pytest.fixture(scope="module")
def workers():
    """One TensorFlow worker for the module's searches (it keeps TensorFlow loaded between them)."""
    from nas.workers import TFWorkers

    cache = tempfile.mkdtemp(prefix="nas-test-candidates-")
    pool = TFWorkers(1, {"space": "test-tiny", "space_module": HERE, "input_shape": [8, 8, 1], "classes": 10,
                         "dataset": None, "seed": 0, "cache": cache})
    yield pool
    pool.close()
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="module")
def agent():
    """A real agent (gRPC on loopback) with one virtual board, in this process."""
    from measure_agent.backends import BoardSpec
    from measure_agent.config import AgentConfig
    from measure_agent.service import serve

    tmp = tempfile.mkdtemp(prefix="nas-test-agent-")
    cfg = AgentConfig(listen="127.0.0.1:0", journal=Path(tmp) / "journal.sqlite", clients={"test": TOKEN},
                      boards=(BoardSpec(id="vb-0", kind="virtual", target=TARGET),), workers="thread")
    server, agent, port = serve(cfg)
    yield f"127.0.0.1:{port}"
    server.stop(grace=1).wait()
    agent.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def searched(workers, agent, tmp_path_factory):
    """A short search over the loopback agent: latency and energy, a latency budget, one grouped candidate."""
    base = tmp_path_factory.mktemp("search")
    storage = f"sqlite:///{base}/studies.db"
    lab = Lab(TARGET, str(base / "store.sqlite"), agents=[agent], token=TOKEN)
    config = _config("loopback", storage, 14, "latency,energy", budgets=Budgets.parse(latency="1.3ms"),
                     sampler="random")
    search = Search(config, lab, workers=workers)
    study = search.open_study(open_storage(storage))
    study.enqueue_trial({"filters_0": 4, "kernel_0": 3, "filters_1": 4, "groups": 2})
    # a model over the budget and its twin: measured first, so the cost model knows them when they come back
    for _ in range(2):
        study.enqueue_trial({"filters_0": 12, "kernel_0": 3, "filters_1": 12, "groups": 1})
    summary = search.run()
    yield {"study": optuna.load_study(study_name="loopback", storage=storage), "summary": summary, "lab": lab,
           "base": base, "search": search}
    lab.close()


def test_search_over_a_grpc_agent_on_loopback(searched):
    study, summary = searched["study"], searched["summary"]
    trials = study.get_trials(deepcopy=False)
    assert sum(counted(t) for t in trials) == 14
    measured = [t for t in trials if t.user_attrs.get("outcome") == "measured"]
    assert measured, [t.user_attrs for t in trials]
    for t in measured:
        m = t.user_attrs["measurement"]
        assert m["board_kind"] == "virtual" and m["board_model_version"] and "virtual board vb-0" in m["provenance"]
        assert t.values[0] == pytest.approx(m["latency_s"]) and m["energy_source"] == "power-model"
        assert t.user_attrs["layers"] and all(layer["cycles"] > 0 for layer in t.user_attrs["layers"])
        assert all(v <= 0 for v in t.constraints.values())
    # every measurement is in the store under the agent's request id, and the cost model learned from them
    store = searched["lab"].store
    made = [t for t in trials if (t.user_attrs.get("measurement") or {}).get("from_store") is False]
    assert store.measured_ids([t.user_attrs["measurement"]["request_id"] for t in made]) == \
        {t.user_attrs["measurement"]["request_id"] for t in made}
    predicted = [t for t in measured if t.user_attrs.get("prediction")]
    assert predicted, "the cost model never predicted a candidate"
    # the twin of the first over-budget model: found in the store, not measured again
    assert summary.from_store + sum(1 for t in trials if t.user_attrs.get("rule") in ("budget:latency", "inferior")) >= 1
    assert summary.measured == len(made)
    # the cost model learned as the search went: each prediction came from a model of at least as many measurements
    # as the one before, later ones from more; every measurement learned once (refits read the whole store)
    cost_model = searched["search"].cost_model
    cost_model.wait()
    versions = [int(t.user_attrs["prediction"]["model_version"].split()[0])
                for t in sorted(trials, key=lambda t: t.number) if t.user_attrs.get("prediction")]
    assert versions == sorted(versions) and versions[-1] > versions[0], versions
    assert cost_model.fits >= 1 and cost_model.measurements == len(store.models(target=TARGET)) == len(made)


def test_budget_rule_and_measured_budgets(searched):
    trials = searched["study"].get_trials(deepcopy=False)
    over = [t for t in trials if t.state == TrialState.PRUNED]
    assert over, "nothing was over the 1.3 ms budget"
    for t in over:
        rule = t.user_attrs["rule"]
        assert rule in ("budget:latency", "measured:latency", "inferior", "known", "fit:ram", "fit:flash",
                        "dominated"), rule
        assert t.user_attrs["reason"]
        if rule == "dominated":  # a measured trial within the budget at least as fast and frugal as its best case
            by = searched["study"].trials[t.user_attrs["dominated_by"]]
            assert by.state == TrialState.COMPLETE and "measurement" not in t.user_attrs and not t.constraints
            assert by.values[0] <= t.user_attrs["prediction"]["latency_s"]
            assert by.values[1] <= t.user_attrs["prediction"]["energy_j"]
        if rule == "known":  # the twin: its twin's measurement reused, over the budget all the same
            assert re.fullmatch(r"the same architecture was measured by trial \d+ \(m-[0-9a-f]+\): measured latency "
                                r"[0-9.]+ ms over the budget 1\.3 ms", t.user_attrs["reason"]), t.user_attrs["reason"]
            assert t.user_attrs["measurement"]["from_store"] and t.constraints["latency"] > 0
        if rule.endswith("latency"):
            assert t.constraints["latency"] > 0  # infeasible for the sampler, pruned or not
        if rule == "measured:latency":  # in the units people read, e.g. "measured latency 1.82 ms over the budget 1.3 ms"
            assert re.fullmatch(r"measured latency [0-9.]+ ms over the budget 1\.3 ms", t.user_attrs["reason"]), \
                t.user_attrs["reason"]
    assert any(t.user_attrs["rule"] == "known" for t in over), "the over-budget twin was not found known"
    assert all(t.user_attrs.get("stage_s") for t in trials)


def test_a_candidate_the_runtime_cannot_run_fails_with_the_reason(searched):
    failed = [t for t in searched["study"].get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    assert failed and failed[0].params["groups"] == 2
    assert "grouped convolution" in failed[0].user_attrs["error"]
    assert failed[0].user_attrs["outcome"] == "failed"


def test_report_renders_in_headless_chromium(searched, tmp_path):
    from nas.report import write_report

    out = tmp_path / "report.html"
    data = write_report(searched["study"], out)
    assert data["trials"] == 14 and out.stat().st_size > 1_000_000  # plotly.js inlined: self-contained
    assert "cdn.plot.ly" not in out.read_text()[:2000]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    profile = tempfile.mkdtemp(prefix="nas-chromium-")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1400,2600", "--virtual-time-budget=5000"]
    try:
        dom = subprocess.run(flags + ["--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
        shot = tmp_path / "report.png"
        subprocess.run(flags + [f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    # Plotly drew every figure: an SVG per plot div, with the traces' points in the front and error plots
    html = dom.stdout
    for key in ("front", "errors", "rules", "layers", "stages"):
        start = html.index(f'id="plot-{key}"')
        assert "main-svg" in html[start:start + 20000], f"plot {key} did not render"
    assert html.count('class="point"') >= 5
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200, "the screenshot is (nearly) blank"
    green = sum(n for n, (r, g, b) in colours if abs(r - 0x2c) < 12 and abs(g - 0xa0) < 12 and abs(b - 0x2c) < 12)
    assert green > 50, "no Pareto-front markers in the screenshot"


def test_training_and_int8_accuracy_of_survivors(workers, tmp_path):
    storage = f"sqlite:///{tmp_path}/studies.db"
    lab = Lab(TARGET, str(tmp_path / "store.sqlite"))  # a local agent with a virtual board
    try:
        config = _config("trained", storage, 3, "accuracy,latency", epochs=1, sampler="random")
        search = Search(config, lab, workers=workers)
        study = search.open_study(open_storage(storage))
        study.enqueue_trial({"filters_0": 8, "kernel_0": 3, "filters_1": 8, "groups": 1})
        summary = search.run()
        done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        assert done and summary.trained >= 1
        best = max(done, key=lambda t: t.values[0])
        assert best.values[0] > 0.3  # int8 on the host interpreter, one epoch of digits
        assert best.user_attrs["accuracy"]["epochs"] == 1 and 0 <= best.user_attrs["accuracy"]["float"] <= 1
        assert summary.front and all(set(f["values"]) == {"accuracy", "latency"} for f in summary.front)
        assert set(search.trained_models) >= {t.number for t in done if "accuracy_from_trial" not in t.user_attrs}
        # on-board validation of the front: the trained int8 model on a virtual board, bit-exact with the host
        from nas.validate import validate_front

        checked = validate_front(search, summary.front[:1], 5)
        v = checked[0]["validation"]
        assert v["samples"] == 5 and v["identical_outputs"] == 1.0 and v["board_accuracy"] == v["host_accuracy"]
        assert study.user_attrs[f"validation:{checked[0]['trial']}"] == v
    finally:
        lab.close()


def test_dominated_candidates_are_trained_then_pruned_unmeasured(workers, tmp_path):
    """Accuracy alone, within a latency budget: once the cost model predicts, a candidate predicted within the budget
    is trained first, and one less accurate than a measured trial is pruned without a measurement (it cannot beat
    the best). With ten candidates after the first predictions one of them is almost surely not the best so far."""
    storage = f"sqlite:///{tmp_path}/studies.db"
    lab = Lab(TARGET, str(tmp_path / "store.sqlite"))
    try:
        config = _config("dominated", storage, 16, "accuracy", budgets=Budgets.parse(latency="50ms"), epochs=1,
                         sampler="random")
        search = Search(config, lab, workers=workers)
        study = search.open_study(open_storage(storage))
        summary = search.run()
        trials = study.get_trials(deepcopy=False)
        dominated = [t for t in trials if t.user_attrs.get("rule") == "dominated"]
        assert dominated, [(t.number, t.user_attrs.get("outcome"), t.user_attrs.get("rule")) for t in trials]
        for t in dominated:
            by = study.trials[t.user_attrs["dominated_by"]]
            assert t.state == TrialState.PRUNED and "measurement" not in t.user_attrs
            assert by.state == TrialState.COMPLETE and by.values[0] >= t.user_attrs["accuracy"]["int8"]
            assert f"trial {by.number} (accuracy " in t.user_attrs["reason"]
        assert study.best_value >= max(t.user_attrs["accuracy"]["int8"] for t in dominated)
        measured = sum(1 for t in trials if (t.user_attrs.get("measurement") or {}).get("from_store") is False)
        assert summary.measured == measured <= len(trials) - len(dominated)
        assert summary.trained == sum(1 for t in trials if "accuracy" in t.user_attrs
                                      and "accuracy_from_trial" not in t.user_attrs)
    finally:
        lab.close()


# --- an agent that disappears mid-search ------------------------------------------------------------------------


def _start_agent(folder: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.toml").write_text(f'[agent]\nlisten = "127.0.0.1:{port}"\njournal = "journal.sqlite"\n\n'
                                       f'[clients]\nsearch = "{TOKEN}"\n\n[[boards]]\nkind = "virtual"\n'
                                       f'target = "{TARGET}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "measure_agent.cli", "serve", "--config", str(folder / "bench.toml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    from measure_agent.client import AgentClient, AgentError

    deadline = time.monotonic() + 90
    while True:
        try:
            with AgentClient(f"127.0.0.1:{port}", TOKEN) as c:
                if c.boards():
                    return proc, f"127.0.0.1:{port}"
        except AgentError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.3)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_agent_killed_mid_search(workers, tmp_path):
    a, address_a = _start_agent(tmp_path / "a")
    b, address_b = _start_agent(tmp_path / "b")
    storage = f"sqlite:///{tmp_path}/studies.db"
    lab = Lab(TARGET, str(tmp_path / "store.sqlite"), agents=[address_a, address_b], token=TOKEN)
    try:
        lab.pool.down_for_s = 600  # a killed agent stays avoided
        seen = []

        def on_trial(info):
            seen.append(info)
            if len(seen) == 2:
                _kill(a)

        config = _config("failover", storage, 6, "latency", sampler="random", cost_model_rules=False)
        search = Search(config, lab, workers=workers, on_trial=on_trial)
        search.open_study(open_storage(storage))
        summary = search.run()
        trials = optuna.load_study(study_name="failover", storage=storage).get_trials(deepcopy=False)
        assert sum(counted(t) for t in trials) == 6
        agent_errors = [t for t in trials if t.user_attrs.get("error_stage") == "agent"]
        assert not agent_errors, [t.user_attrs.get("error") for t in agent_errors]
        after = [t.user_attrs["measurement"]["agent"] for t in trials[3:] if t.user_attrs.get("measurement")
                 and not t.user_attrs["measurement"]["from_store"]]
        assert after and set(after) == {address_b}
        assert summary.measured >= 1

        # the last agent goes too: the search stops with one clear reason, the study is kept for a resume
        _kill(b)
        config = _config("failover", storage, 8, "latency", sampler="random", cost_model_rules=False)
        search = Search(config, lab, workers=workers)
        search.open_study(open_storage(storage))
        search.study.enqueue_trial({"filters_0": 11, "kernel_0": 1, "filters_1": 3, "groups": 1})
        with pytest.raises(SearchError, match="no agent can measure"):
            search.run()
        trials = optuna.load_study(study_name="failover", storage=storage).get_trials(deepcopy=False)
        assert sum(counted(t) for t in trials) == 6
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        interrupted = [t for t in trials if t.user_attrs.get("outcome") == "interrupted"]
        assert interrupted and interrupted[0].params["filters_0"] == 11
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        assert [t.user_attrs.get("retry_of") for t in waiting] == [interrupted[0].number]  # a resume measures it
    finally:
        lab.close()
        _kill(a)
        _kill(b)


def test_of_two_workers_asking_for_the_last_trial_one_keeps_it(workers, tmp_path):
    """Another worker's ask lands between this worker's count and its own: the trial of the higher number is the
    surplus, failed as interrupted (not counted), so the study has exactly ``--trials``."""
    storage = f"sqlite:///{tmp_path}/studies.db"
    lab = Lab(TARGET, str(tmp_path / "store.sqlite"))
    search = Search(_config("race", storage, 1, "latency,energy", sampler="random"), lab, workers=workers)
    try:
        study = search.open_study(open_storage(storage))
        other = optuna.load_study(study_name="race", storage=storage)
        ask = study.ask

        def ask_after_the_other_worker():
            other.ask()
            return ask()

        study.ask = ask_after_the_other_worker
        assert search._next() is None
        first, second = study.get_trials(deepcopy=False)
        assert first.state == TrialState.RUNNING and counted(second) is False
        assert second.state == TrialState.FAIL and second.user_attrs["outcome"] == "interrupted"
    finally:
        search.close()
        lab.close()
