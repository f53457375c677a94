"""The search's small parts without TensorFlow: objectives and budgets, samplers by name, Pareto fronts and
hypervolume, the pruning / repair rules, datasets, spaces, storage URLs."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from nas import spaces
from nas.adapter import Prediction, Repair, Verdict
from nas.datasets import DatasetError, digits, load_npz
from nas.objectives import Budgets, ObjectiveError, parse_objectives, parse_quantity
from nas.pareto import covers, front_indices, hypervolume
from nas.rules import BudgetRule, Candidate, DominatedRule, FitRule, InferiorRule, keras_layer
from nas.samplers import SamplerError, check_sampler, make_sampler
from nas.storage import StorageError, check_join, normalise, open_storage


# --- objectives and budgets ---------------------------------------------------------------------------------------


def test_objectives_parse_with_directions():
    objs = parse_objectives("accuracy, latency,energy")
    assert [o.name for o in objs] == ["accuracy", "latency", "energy"]
    assert [o.direction for o in objs] == ["maximize", "minimize", "minimize"]
    assert objs[1].show(0.00123) == "1.23 ms"


@pytest.mark.parametrize("text,message", [("accuracy,speed", "unknown objective 'speed'"), ("", "at least one"),
                                          ("latency,latency", "twice")])
def test_objective_errors(text, message):
    with pytest.raises(ObjectiveError, match=message):
        parse_objectives(text)


def test_budget_quantities_and_constraints():
    assert parse_quantity("latency", "5ms") == pytest.approx(5e-3)
    assert parse_quantity("latency", "250us") == pytest.approx(2.5e-4)
    assert parse_quantity("energy", "0.2mJ") == pytest.approx(2e-4)
    assert parse_quantity("flash", "64KiB") == 65536
    assert parse_quantity("ram", "2k") == 2048
    assert parse_quantity("latency", None) is None
    with pytest.raises(ObjectiveError, match="--max-latency '5 parsecs'"):
        parse_quantity("latency", "5 parsecs")
    b = Budgets.parse(latency="2ms", ram="1KiB")
    assert b.excess("latency", 3e-3) == pytest.approx(0.5)
    assert b.excess("latency", 1e-3) == pytest.approx(-0.5)
    assert b.excess("energy", 1.0) is None
    assert b.over({"latency": 3e-3, "ram": 100}) == ["latency"]


def test_samplers_by_name():
    assert isinstance(make_sampler("tpe", 1, objectives=2), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("nsga2", 1, objectives=2), optuna.samplers.NSGAIISampler)
    assert isinstance(make_sampler("random", 1), optuna.samplers.RandomSampler)
    with pytest.raises(SamplerError, match="unknown sampler 'annealing'"):
        check_sampler("annealing", 2)
    with pytest.raises(SamplerError, match="nsga3 is for two or more"):
        check_sampler("nsga3", 1)


# --- Pareto fronts ------------------------------------------------------------------------------------------------


def test_front_and_hypervolume():
    pts = [(0.9, 2.0), (0.8, 1.0), (0.7, 1.5), (0.95, 3.0)]
    dirs = ["maximize", "minimize"]
    assert front_indices(pts, dirs) == [0, 1, 3]
    assert front_indices([(0.9, 2.0), (0.9, 2.0)], dirs) == [0, 1]           # equal points dominate neither
    assert covers((0.9, 2.0), (0.9, 2.0), dirs) and covers((0.9, 1.0), (0.8, 2.0), dirs)
    assert not covers((0.9, 2.0), (0.8, 1.0), dirs) and not covers((0.8, 1.0), (0.9, 1.0), dirs)
    # rectangles to the reference (accuracy 0, latency 4): exact union area
    hv = hypervolume(pts, (0.0, 4.0), dirs)
    assert hv == pytest.approx(0.8 * 3.0 + 0.1 * 2.0 + 0.05 * 1.0)
    assert hypervolume(pts[:2], (0.0, 4.0), dirs) < hv
    assert hypervolume([(1, 1, 1)], (2, 2, 2), ["minimize"] * 3) == pytest.approx(1.0)


# --- rules --------------------------------------------------------------------------------------------------------


def _verdict(**kw):
    base = dict(fits=True, reason="fits", plan_bytes=4000, arena_bytes=2000, flash_needed=40000, ram_needed=20000,
                flash_available=1 << 20, ram_available=320 << 10)
    return Verdict(**{**base, **kw})


def _prediction(latency, sd, energy=None):
    return Prediction(latency, sd, energy, energy and energy * sd / latency, "power-model", {"table": 3}, [], "8 m")


def _candidate(prediction=None, verdict=None, params=None):
    return Candidate(params or {"filters_0": 5, "kernel_0": 3},
                     {"filters_0": IntDistribution(2, 32), "kernel_0": CategoricalDistribution([1, 3, 5])},
                     {"b0_conv": {"filters": "filters_0", "kernel": "kernel_0"}}, analysis=None,
                     verdict=verdict or _verdict(), prediction=prediction)


def test_fit_rule_rejects_what_does_not_fit_and_exact_budgets():
    rule = FitRule(Budgets.parse(flash="2KiB"))
    d = rule.decide(_candidate(verdict=_verdict(fits=False, rule="ram", reason="does not fit", ram_needed=400 << 10)))
    assert (d.action, d.rule) == ("reject", "fit:ram") and d.constraints["fit"] > 0
    d = rule.decide(_candidate())
    assert d.rule == "budget:flash" and d.constraints["flash"] == pytest.approx(4000 / 2048 - 1)
    assert FitRule(Budgets()).decide(_candidate()) is None


def test_budget_rule_prunes_only_with_confidence():
    rule = BudgetRule(Budgets.parse(latency="2ms"), confidence=2.0)
    assert rule.decide(_candidate(_prediction(3e-3, 0.2e-3))).rule == "budget:latency"
    assert rule.decide(_candidate(_prediction(3e-3, 0.6e-3))) is None      # 3 - 2 x 0.6 < 2: not sure
    assert rule.decide(_candidate(_prediction(1e-3, 0.1e-3))) is None
    assert rule.decide(_candidate(None)) is None                            # no prediction: measure it
    energy = BudgetRule(Budgets.parse(energy="0.1mJ"))
    assert energy.decide(_candidate(_prediction(3e-3, 0.1e-3, energy=2e-4))).rule == "budget:energy"


def test_dominated_rule_prunes_only_what_a_measured_trial_beats_at_the_candidates_best():
    measured = [(4, {"accuracy": 0.90, "latency": 1.0e-3})]
    rule = DominatedRule(parse_objectives("accuracy,latency"), lambda: measured, confidence=2.0)
    c = _candidate(_prediction(1.5e-3, 0.1e-3))
    assert rule.decide(c) is None                         # not trained yet: accuracy unknown, no objection
    c.accuracy = 0.85
    d = rule.decide(c)                                    # at best 1.5 - 2 x 0.1 = 1.3 ms >= 1.0 and less accurate
    assert (d.action, d.rule, d.dominated_by) == ("prune", "dominated", 4) and "trial 4" in d.reason
    c.accuracy = 0.95
    assert rule.decide(c) is None                         # more accurate: it may extend the front
    c.accuracy = 0.85
    c.prediction = _prediction(1.5e-3, 0.3e-3)            # at best 0.9 ms: it could be faster than trial 4
    assert rule.decide(c) is None
    c.prediction = None
    assert rule.decide(c) is None                         # no prediction: measure it
    # exact objectives: RAM from the verdict; the untrained search's latency and energy
    ram = DominatedRule(parse_objectives("latency,ram"), lambda: [(1, {"latency": 1e-3, "ram": 2000.0})])
    assert ram.decide(_candidate(_prediction(2e-3, 0.1e-3))).dominated_by == 1              # arena 2000 B too
    assert ram.decide(_candidate(_prediction(2e-3, 0.1e-3), _verdict(arena_bytes=1999))) is None
    energy = DominatedRule(parse_objectives("latency,energy"), lambda: [(2, {"latency": 1e-3, "energy": 1e-4})])
    assert energy.decide(_candidate(_prediction(2e-3, 0.1e-3, energy=2e-4))).dominated_by == 2
    assert energy.decide(_candidate(_prediction(2e-3, 0.1e-3, energy=0.5e-4))) is None
    assert energy.decide(_candidate(_prediction(2e-3, 0.1e-3))) is None                     # energy not predicted


def test_keras_layer_of_tflite_op_names():
    names = ["b0_conv", "b1_conv", "hidden"]
    assert keras_layer("functional_4_1/b1_conv_1/Relu;functional_4_1/b1_conv_1/convolution", names) == "b1_conv"
    assert keras_layer("cnn_1/hidden_1/MatMul", names) == "hidden"
    assert keras_layer("cnn_1/b0_conv2_1/Relu", names) is None


class _FakeCostModel:
    def __init__(self, repairs):
        self._repairs = repairs

    def repairs(self, analysis, **kw):
        return self._repairs


def _repair(old=5, new=8, parameter="filters"):
    return Repair("cnn_1/b0_conv_1/Relu;cnn_1/b0_conv_1/convolution", parameter, old, new, 0.05, 0.005, "faster")


def test_inferior_rule_repairs_within_the_space_and_prunes_what_was_evaluated():
    evaluated = {}
    rule = InferiorRule(_FakeCostModel([_repair()]), lambda p: evaluated.get(tuple(sorted(p.items()))))
    d = rule.decide(_candidate(_prediction(1e-3, 1e-5)))
    assert (d.action, d.rule) == ("repair", "repair") and d.params == {"filters_0": 8, "kernel_0": 3}
    evaluated[tuple(sorted(d.params.items()))] = 7
    d = rule.decide(_candidate(_prediction(1e-3, 1e-5)))
    assert (d.action, d.rule) == ("prune", "inferior") and "trial 7" in d.reason
    # not expressible in the space: no decision (the candidate is measured)
    assert InferiorRule(_FakeCostModel([_repair(new=40)]), lambda p: None).decide(
        _candidate(_prediction(1e-3, 1e-5))) is None
    assert InferiorRule(_FakeCostModel([_repair(parameter="kernel", old=3, new=4)]), lambda p: None).decide(
        _candidate(_prediction(1e-3, 1e-5))) is None
    pruning = InferiorRule(_FakeCostModel([_repair()]), lambda p: None, policy="prune")
    assert pruning.decide(_candidate(_prediction(1e-3, 1e-5))).action == "prune"


# --- datasets, spaces, storage ------------------------------------------------------------------------------------


def test_digits_is_offline_and_scaled():
    d = digits()
    assert d.input_shape == (8, 8, 1) and d.classes == 10
    assert len(d.x_train) + len(d.x_test) == 1797
    assert d.x_train.min() >= -1.0 and d.x_train.max() <= 1.0


def test_npz_datasets_are_checked(tmp_path):
    good = tmp_path / "good.npz"
    x = np.zeros((6, 4, 4, 1), np.float32)
    np.savez(good, x_train=x, y_train=np.arange(6) % 2, x_test=x[:2], y_test=np.array([0, 1]))
    assert load_npz(good).input_shape == (4, 4, 1)
    np.savez(tmp_path / "keys.npz", x=x, y=np.zeros(6))
    with pytest.raises(DatasetError, match="missing x_train, y_train, x_test, y_test"):
        load_npz(tmp_path / "keys.npz")
    np.savez(tmp_path / "shapes.npz", x_train=x, y_train=np.zeros(5, int), x_test=x, y_test=np.zeros(6, int))
    with pytest.raises(DatasetError, match="x_train has 6 samples, y_train 5"):
        load_npz(tmp_path / "shapes.npz")
    np.savez(tmp_path / "mixed.npz", x_train=x, y_train=np.zeros(6, int), x_test=x[:, :2], y_test=np.zeros(6, int))
    with pytest.raises(DatasetError, match="x_test samples"):
        load_npz(tmp_path / "mixed.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_npz(tmp_path / "junk.npz")


def test_spaces_register_by_subclassing(tmp_path):
    assert {"cnn", "dscnn"} <= set(spaces.names())
    with pytest.raises(spaces.SpaceError, match="unknown search space 'resnet'"):
        spaces.get_space("resnet")
    module = tmp_path / "my_spaces.py"
    module.write_text("from nas.spaces import SearchSpace\n\nclass Tiny(SearchSpace):\n    name = 'tiny-test'\n")
    assert type(spaces.get_space("tiny-test", str(module))).__name__ == "Tiny"
    with pytest.raises(spaces.SpaceError, match="broken.py: no such file"):
        spaces.load_module(str(tmp_path / "broken.py"))
    (tmp_path / "bad.py").write_text("import no_such_module_here\n")
    with pytest.raises(spaces.SpaceError, match="cannot load the space module .*No module named"):
        spaces.load_module(str(tmp_path / "bad.py"))


def test_storage_urls(tmp_path):
    assert normalise("studies.db").startswith("sqlite:///")
    assert normalise("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(StorageError, match="no folder"):
        open_storage(f"sqlite:///{tmp_path}/missing/x.db")
    with pytest.raises(StorageError, match="cannot open the storage"):
        open_storage("nosuchdialect://x/y")
    with pytest.raises(StorageError, match="space 'cnn', not 'dscnn'"):
        check_join("s", {"space": "cnn"}, {"space": "dscnn"})


def test_calibration_recalibrates_the_models_uncertainty():
    from nas.calibration import Calibration

    cal = Calibration(window=30, min_residuals=8)
    assert cal.lower(2.0, 0.5, 2.0)[0] == pytest.approx(1.0)          # no experience yet: less 2 sd
    # ... of at least 10 % of the prediction: a young model's narrow sd is not trusted until it is checked
    low, how = cal.lower(0.637, 0.01, 2.0)
    assert low == pytest.approx(0.637 * 0.8) and "not calibrated yet" in how
    assert BudgetRule(Budgets.parse(latency="0.6ms")).decide(_candidate(_prediction(0.637e-3, 0.01e-3))) is None
    for _ in range(10):                                                # the model's sd is 5x too wide
        cal.add(1.0, 0.5, 1.0 + 0.1 * 0.5 * 2)                         # score +0.2
        cal.add(1.0, 0.5, 1.0 - 0.1 * 0.5 * 2)                         # score -0.2
    # 20 scores +-0.2 (stdev 0.205): the normal prediction bound at 2 sd (2.3 %), t(19) = 2.14, is -0.45 sd
    low, how = cal.lower(2.0, 1.0, 2.0)
    assert low == pytest.approx(2.0 - 2.1405 * 0.20520 * (1 + 1 / 20) ** 0.5, abs=2e-4)
    assert "-0.45 sd, the normal prediction bound of the last 20 measured" in how
    cal.add(1.0, 0.1, 0.5)                                             # one 5-sd over-prediction
    assert cal.lower(2.0, 0.5, 2.0)[0] == pytest.approx(-0.5)          # now it trusts the model less
    rule = BudgetRule(Budgets.parse(latency="1.5ms"), 2.0, {"latency": Calibration(), "energy": Calibration()})
    for _ in range(8):
        rule.calibration["latency"].add(1e-3, 1e-4, 1.01e-3)
    assert rule.decide(_candidate(_prediction(1.6e-3, 1e-4))).rule == "budget:latency"  # 1.6 - 0 x sd > 1.5


def test_calibration_trusts_the_errors_of_models_like_the_one_predicting():
    """A model of 5 measurements over-predicted by 4 sd; eight predictions of models of 20 were within 0.5 sd: a
    model of 30 is judged by the models of >= 15 only, a model of 50 (none of >= 25 yet) by all nine."""
    from nas.calibration import Calibration

    cal = Calibration(window=30, min_residuals=8)
    cal.add(1.0, 0.1, 0.6, model_measurements=5)                       # score -4
    for _ in range(8):
        cal.add(1.0, 0.1, 0.95, model_measurements=20)                 # score -0.5
    low, how = cal.lower(2.0, 0.5, 2.0, model_measurements=30)
    assert low == pytest.approx(1.75) and "of the last 8 measured by models of >= 15 measurements" in how
    assert cal.lower(2.0, 0.5, 2.0, model_measurements=50)[0] == pytest.approx(0.0)
    assert cal.lower(2.0, 0.5, 2.0)[0] == pytest.approx(0.0)
    assert _prediction(1e-3, 1e-4).model_measurements == 8 and \
        _prediction(1e-3, 1e-4).__class__(1, 1, None, None, "", {}, [], "none").model_measurements == 0


# --- the cost model learning during the search --------------------------------------------------------------------


class _FakeStore:
    """The measurement store's two reads the cost model uses, over rows added so far."""

    def __init__(self):
        self.model_rows, self.layer_rows = [], []

    def add(self, mid: str):
        model, layers = {"measurement_id": mid}, [{"measurement_id": mid, "layer_index": i} for i in range(3)]
        self.model_rows.append(model)
        self.layer_rows.extend(layers)
        return model, layers

    def layers(self, target):
        import pandas as pd

        return pd.DataFrame(self.layer_rows)

    def models(self, target):
        import pandas as pd

        return pd.DataFrame(self.model_rows, columns=["measurement_id"])


class _FakeLatencyModel:
    fitted: list = []

    def fit(self, layers, models):
        type(self).fitted.append(("fit", sorted(models["measurement_id"])))
        return self

    def partial_fit(self, rows, models):
        type(self).fitted.append(("partial", sorted(m["measurement_id"] for m in models)))
        return self


def test_cost_model_learns_every_measurement_once_and_refits_from_the_store(monkeypatch):
    import costmodel.latency_model as lm
    from nas.adapter import CostModel

    monkeypatch.setattr(lm, "LatencyModel", _FakeLatencyModel)
    _FakeLatencyModel.fitted = []
    store = _FakeStore()
    cm = CostModel(store, "NUCLEO-L496ZG", refit_every=3, min_measurements=2, background=False)
    assert cm._model is None and not cm.ready  # an empty store: nothing to fit
    a = store.add("a")
    b = store.add("b")   # measured by another trial thread meanwhile: in the store, not handed over yet
    cm.add(*a)           # the first measurement: a fit on the whole store (a and b)
    assert _FakeLatencyModel.fitted == [("fit", ["a", "b"])] and cm.measurements == 2 and cm.rows == 6
    cm.add(*b)           # b is in the model already: not learned twice
    assert cm.measurements == 2 and len(_FakeLatencyModel.fitted) == 1
    for mid in ("c", "d"):
        cm.add(*store.add(mid))  # learned one by one, cheaply
    assert _FakeLatencyModel.fitted[1:] == [("partial", ["c"]), ("partial", ["d"])] and cm.measurements == 4
    cm.add(*store.add("e"))      # the third since the fit: refitted on the whole store
    assert _FakeLatencyModel.fitted[-1] == ("fit", ["a", "b", "c", "d", "e"]) and cm.fits == 2
    assert cm.measurements == 5 and cm.rows == 15 and cm.version == "5 measurements, 15 layer rows"


def test_gp_sampler_by_name_or_one_clear_reason():
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        with pytest.raises(SamplerError, match="gp .*needs PyTorch"):
            check_sampler("gp", 2)
    else:
        assert isinstance(make_sampler("gp", 1, objectives=2), optuna.samplers.GPSampler)
    assert isinstance(make_sampler("QMC", 1), optuna.samplers.QMCSampler)
    assert isinstance(make_sampler("nsga3", 1, objectives=2), optuna.samplers.NSGAIIISampler)


def test_agent_tokens_from_a_file_or_the_environment(tmp_path, monkeypatch):
    from costmodel.console import CliError
    from nas.cli import TOKEN_ENV, _token

    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    assert _token(None, None) == "from-the-environment"
    assert _token("given", None) == "given"
    (tmp_path / "token").write_text("from-a-file\n")
    assert _token("given", tmp_path / "token") == "from-a-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CliError, match="is empty"):
        _token(None, tmp_path / "empty")
    with pytest.raises(CliError, match="--token-file .*missing"):
        _token(None, tmp_path / "missing")


def test_a_report_of_a_missing_sqlite_file_creates_nothing(tmp_path):
    from nas.storage import load_study

    missing = tmp_path / "none.db"
    with pytest.raises(StorageError, match="no study 'x' in .*none.db: no such file"):
        load_study(f"sqlite:///{missing}", "x")
    assert not missing.exists()


# --- calibration of the budget rule's optimistic reading -----------------------------------------------------------


def _calibrated(errors_sd: list[float], predicted: float = 1.0, sd: float = 0.1, window: int = 30):
    from nas.calibration import Calibration

    cal = Calibration(window=window)
    for z in errors_sd:
        cal.add(predicted, sd, predicted + z * sd)
    return cal


def test_calibration_bound_covers_the_next_error_at_the_stated_level():
    """With 8 scores (fewer than an empirical bound at 2 sd needs), the optimistic reading is under the next
    measured value in at least ~97.7 % of draws: the lowest of 8 would cover only 8/9 (89 %)."""
    rng = np.random.default_rng(0)
    draws, covered = 3000, 0
    for _ in range(draws):
        z = rng.standard_normal(9)
        low, how = _calibrated(list(z[:8])).lower(1.0, 0.1, 2.0)
        covered += 1.0 + 0.1 * z[8] >= low
    assert "normal prediction bound" in how
    assert covered / draws >= 0.965, covered / draws


def test_calibration_uses_the_kth_lowest_score_once_there_are_enough():
    scores = [float(v) for v in np.linspace(-3.0, 3.0, 99)]
    low, how = _calibrated(scores, window=200).lower(1.0, 0.1, 2.0)
    assert "the 2nd lowest" in how                          # floor(0.0228 x 100) = 2
    assert low == pytest.approx(1.0 + 0.1 * scores[1])


def test_calibration_takes_the_relative_errors_when_a_stated_sd_is_too_narrow():
    """Scores of candidates stated at 10 % sd, off by up to 10 %: a new candidate stated at 0.5 % sd is read as
    at least ~15 % lower (the relative errors), not 1 % (its own sd)."""
    rng = np.random.default_rng(1)
    cal = _calibrated(list(rng.standard_normal(20)))
    low, how = cal.lower(1.0, 0.005, 2.0)
    assert low < 0.9 and "relative errors" in how
    wide, how_wide = cal.lower(1.0, 0.1, 2.0)               # a candidate as uncertain as the others
    assert wide == pytest.approx(low) and "sd" in how_wide
