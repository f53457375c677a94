"""One search worker: Optuna trials evaluated by measurement on boards, pruned and repaired by the cost model.

A trial, stage by stage (seconds of each kept on the trial as ``stage_s``)::

    build     the space builds the candidate in a TensorFlow worker; the trial's suggestions are Optuna's
    convert   untrained, to full int8 (random calibration; latency does not depend on the weights)
    analyse   read and analyse the .tflite; the agent's fit verdict (flash, RAM, layers, runtime support)
    predict   the learned cost model's latency / energy, then the rules (nas.rules): prune or repair
    train     first, when accuracy is an objective and the ``dominated`` rule is on: a candidate the other rules
              let through and predicted within the budgets is trained so that the rule can compare it with the
              measured trials before a board is asked (one predicted over a budget, without the confidence to
              prune, is measured first: it is likely over, and then needs no training)
    measure   on an agent, or reused: the same model (its request id) or the same architecture (nas.architecture,
              the ``known`` rule) measured before by the search or in the store
    learn     handing the measurement to the cost model's learner thread (it updates a copy of the model and
              swaps it in; refitted on the whole store now and then)
    train     survivors within every budget (not trained yet): trained, converted with calibration data, int8
              accuracy on the host interpreter

Outcomes: COMPLETE (measured, trained when accuracy is an objective), PRUNED (rejected or pruned, with the
``rule`` that fired and the constraint values that make it infeasible where it is over a budget), FAIL
(``error``: a candidate the converter or the runtime cannot handle; the search goes on). ``--trials`` is
the study's total, so a resumed or joined study stops at the same count.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from nas import storage as storage_mod
from nas.adapter import CostModel, FitCheck, Lab, Measurement
from nas.calibration import Calibration
from nas.datasets import Dataset
from nas.objectives import Budgets, Objective
from nas.architecture import architecture_digest
from nas.rules import BudgetRule, Candidate, Decision, DominatedRule, FitRule, InferiorRule, KnownRule, params_key
from nas.samplers import make_sampler
from nas.spaces import SearchSpace
from nas.workers import Built, TFWorkers, WorkerError, candidate_cache

STAGES = ("build", "convert", "analyse", "predict", "measure", "learn", "train")


def quiet_optuna() -> None:
    """Optuna's notices that do not concern a user of this search: ask-and-tell with a heartbeat (our own
    thread keeps it) and experimental flags of the APIs used."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used", category=UserWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class SearchError(RuntimeError):
    """The search cannot go on (no agent left, the TensorFlow worker cannot start); one line for the user."""


@dataclass
class SearchConfig:
    study: str
    storage: str
    trials: int
    target: str
    space: SearchSpace
    space_module: str | None
    dataset: Dataset
    dataset_spec: str | None
    objectives: list[Objective]
    budgets: Budgets = field(default_factory=Budgets)
    sampler: str = "tpe"
    seed: int = 0
    cost_model_rules: bool = True
    reuse: bool = True                # the known rule: reuse the measurement of an architecture measured before
    inferior: str = "repair"          # "repair", "prune" or "off"
    confidence: float = 2.0
    capacity: str = "macs"
    dominated: bool = True            # the dominated rule (with cost_model_rules)
    dominated_confidence: float = 3.0  # its standard deviations (see nas.rules.DominatedRule)
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 3e-3
    jobs: int = 2
    population: int | None = None
    candidate_cache: str | None = ""   # folder of converted untrained candidates; "" the default, None none

    @property
    def trains(self) -> bool:
        return any(o.name == "accuracy" for o in self.objectives)

    def identity(self) -> dict:
        """What every worker of one study must agree on (stored on the study)."""
        return {"space": self.space.name, "dataset": self.dataset.name,
                "dataset_fingerprint": self.dataset.fingerprint, "objectives": [o.name for o in self.objectives],
                "budgets": self.budgets.to_dict(), "target": self.target}


@dataclass
class Summary:
    study: str
    trials: int = 0
    outcomes: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    measured: int = 0
    from_store: int = 0
    trained: int = 0
    seconds: float = 0.0
    startup_s: float = 0.0
    stage_s: dict = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    front: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def to_dict(self) -> dict:
        minutes = (self.seconds - self.startup_s) / 60 if self.seconds > self.startup_s else 0
        return {"study": self.study, "trials_this_worker": self.trials, "outcomes": dict(self.outcomes),
                "rules": dict(self.rules), "measurements": self.measured, "measurements_from_store": self.from_store,
                "trained": self.trained, "seconds": round(self.seconds, 1), "startup_seconds": round(self.startup_s, 1),
                "candidates_per_minute": round(self.trials / minutes, 1) if minutes else None,
                "stage_seconds": {k: round(v, 2) for k, v in self.stage_s.items()},
                "pareto_front": self.front, "errors": self.errors[:20]}


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that counts towards ``--trials``: finished by a worker (not interrupted, not a stale trial)."""
    return trial.state in COUNTED and trial.user_attrs.get("outcome") not in (None, "interrupted")


def effective_params(trial: optuna.trial.FrozenTrial) -> dict:
    """The parameters of the model a trial evaluated (the repaired ones for a repaired trial)."""
    return dict(trial.user_attrs.get("repaired_params") or trial.params)


class Search:
    """One worker of a study (see the module docstring)."""

    def __init__(self, config: SearchConfig, lab: Lab, *, workers: TFWorkers | None = None,
                 on_trial: Callable[[optuna.trial.FrozenTrial | dict], None] | None = None):
        quiet_optuna()
        self.config = config
        self.lab = lab
        self.on_trial = on_trial or (lambda info: None)
        self._own_workers = workers is None
        self.workers = workers or TFWorkers(config.jobs, self.worker_init(config))
        self.fit = FitCheck(lab.target, lab.placement or None)
        self.cost_model = CostModel(lab.store, lab.target)
        self.calibration = {"latency": Calibration(), "energy": Calibration()}
        self.rules = [FitRule(config.budgets)]
        self.dominated: DominatedRule | None = None   # also in rules; asked again once a candidate is trained
        if config.reuse:
            self.rules.append(KnownRule(self._known_architecture))
        if config.cost_model_rules:
            self.rules.append(BudgetRule(config.budgets, config.confidence, self.calibration))
            if config.inferior != "off":
                self.rules.append(InferiorRule(self.cost_model, self._evaluated_trial, policy=config.inferior,
                                               keep=config.capacity, confidence=config.confidence))
            if config.dominated:
                self.dominated = DominatedRule(config.objectives, self._measured_points, config.dominated_confidence,
                                               self.calibration)
                self.rules.append(self.dominated)
        self.summary = Summary(config.study)
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[int, optuna.Trial] = {}
        self._evaluated: dict[str, int] = {}
        self._known: dict[str, tuple[str, int | None]] = {}   # architecture id -> (measurement id, trial)
        self._accuracy: dict[str, dict] = {}
        self._points: dict[int, dict[str, float]] = {}        # measured trials within every budget: their values
        self.trained_models: dict[int, bytes] = {}
        self.study: optuna.Study | None = None
        self.fatal: str | None = None

    @staticmethod
    def worker_init(config: SearchConfig) -> dict:
        return {"space": config.space.name, "space_module": config.space_module,
                "input_shape": list(config.dataset.input_shape), "classes": config.dataset.classes,
                "dataset": config.dataset_spec, "seed": config.seed,
                "cache": str(candidate_cache()) if config.candidate_cache == "" else config.candidate_cache}

    # --- the study ------------------------------------------------------------------------------------------

    def open_study(self, storage: optuna.storages.BaseStorage) -> optuna.Study:
        """Create the study, or join it when it exists and is the same search (checked before writing)."""
        c = self.config
        wanted = c.identity()
        stored = storage_mod.study_meta(storage, c.study)
        if stored:
            storage_mod.check_join(c.study, stored, wanted)
        elif stored is not None and storage_mod.trial_count(storage, c.study):
            raise storage_mod.StorageError(f"study {c.study!r} exists and is not a nas search; choose another --study")
        sampler = make_sampler(c.sampler, c.seed + (os.getpid() if stored is not None else 0),
                               objectives=len(c.objectives), population=c.population)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(study_name=c.study, storage=storage, sampler=sampler, load_if_exists=True,
                                        directions=[o.direction for o in c.objectives])
        if not stored:  # new, or created by another worker a moment ago that has not described it yet
            study.set_user_attr(storage_mod.META_KEY, {**wanted, "input_shape": list(c.dataset.input_shape),
                                                       "classes": c.dataset.classes, "created_by": self.worker_name,
                                                       "created_at": time.time()})
        self.study = study
        return study

    def _refresh(self) -> tuple[int, int]:
        """Counted and running trials of the study; what was evaluated and trained (all workers)."""
        trials = self.study.get_trials(deepcopy=False)
        done = running = 0
        for t in trials:
            if counted(t):
                done += 1
            elif t.state == TrialState.RUNNING:
                running += 1
            measured = t.user_attrs.get("measurement")
            if measured and t.user_attrs.get("architecture") and not measured.get("from_store"):
                self._known.setdefault(t.user_attrs["architecture"], (measured["request_id"], t.number))
            if t.state == TrialState.COMPLETE or measured:
                key = params_key(effective_params(t))
                self._evaluated.setdefault(key, t.number)
                if "accuracy" in t.user_attrs:
                    self._accuracy.setdefault(key, {**t.user_attrs["accuracy"], "trial": t.number})
            if t.state == TrialState.COMPLETE and t.values and all(v <= 0 for v in t.constraints.values()):
                self._points.setdefault(t.number, dict(zip([o.name for o in self.config.objectives], t.values)))
        return done, running

    def _measured_points(self) -> list[tuple[int, dict[str, float]]]:
        with self._lock:
            return list(self._points.items())

    def _within_budgets(self, c: Candidate) -> bool:
        """Predicted (the point estimate) within the latency and energy budgets."""
        p = c.prediction
        return p is not None and not self.config.budgets.over({"latency": p.latency_s, "energy": p.energy_j})

    def _evaluated_trial(self, params: dict) -> int | None:
        return self._evaluated.get(params_key(params))

    def _known_architecture(self, architecture: str) -> tuple[str, int | None] | None:
        with self._lock:
            return self._known.get(architecture)

    # --- running ----------------------------------------------------------------------------------------------

    def run(self) -> Summary:
        """Run trials until the study has ``trials`` counted ones (or stop() / an interrupt)."""
        assert self.study is not None, "open_study() first"
        start = time.monotonic()
        self._stop.clear()
        self.fatal = None
        done, running = self._refresh()
        if done + running >= self.config.trials:
            self.summary.front = self.front()
            return self.summary
        heartbeat = threading.Thread(target=self._heartbeat, daemon=True, name="nas-heartbeat")
        heartbeat.start()
        threads = [threading.Thread(target=self._loop, daemon=True, name=f"nas-trial-{i}")
                   for i in range(max(1, self.config.jobs))]
        warm = threading.Thread(target=self.fit.warm, daemon=True, name="nas-firmware")
        warm.start()  # size the firmware while TensorFlow starts in the workers
        try:
            self.workers.wait_ready()
            warm.join()
        except WorkerError as exc:
            raise SearchError(str(exc)) from None
        if self.config.reuse:
            for arch, rid in self.lab.known_architectures().items():
                self._known.setdefault(arch, (rid, None))
        self.summary.startup_s = time.monotonic() - start
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.2)
        except KeyboardInterrupt:
            self._stop.set()
            self._interrupt()
            raise
        finally:
            self._stop.set()
            self.summary.seconds = time.monotonic() - start
        if self.fatal:
            raise SearchError(self.fatal)
        self.summary.front = self.front()
        return self.summary

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.cost_model.close()
        if self._own_workers:
            self.workers.close()

    def _heartbeat(self) -> None:
        storage = self.study._storage
        while not self._stop.wait(storage_mod.HEARTBEAT_S / 2):
            with self._lock:
                ids = [t._trial_id for t in self._in_flight.values()]
            for trial_id in ids:
                try:
                    storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 (a missed heartbeat is retried; the grace period covers it)
                    pass

    def _interrupt(self) -> None:
        """Fail the trials in flight as interrupted and queue their parameters again (a resume redoes them)."""
        with self._lock:
            flying = list(self._in_flight.values())
            self._in_flight.clear()
        for trial in flying:
            try:
                self._requeue(trial)
            except Exception:  # noqa: BLE001 (the storage may be gone with the interrupt)
                pass

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                trial = self._next()
                if trial is None:
                    return
                info = self._run_trial(trial)
                if info is not None:
                    self.on_trial({"number": trial.number, **info})
        except Exception as exc:  # noqa: BLE001 (the storage went away: stop this worker with the reason)
            if not self._stop.is_set():
                self.fatal = f"the search stopped: {type(exc).__name__}: {exc}"
                self._stop.set()

    def _next(self) -> optuna.Trial | None:
        """The next trial to run, or None when the study has its trials."""
        with self._lock:
            optuna.storages.fail_stale_trials(self.study)
            done, running = self._refresh()
            if done + running >= self.config.trials or self._stop.is_set():
                return None
            trial = self.study.ask()
            self.study._storage.record_heartbeat(trial._trial_id)  # at once: a worker dying now is noticed
            trial.set_user_attr("worker", self.worker_name)
            if self._surplus(trial):
                return None
            self._in_flight[trial.number] = trial
            return trial

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Another worker asked between our count and our ask, and ``trial`` would be one too many: the trials of
        the lowest numbers stay, so of two workers racing for the last trial exactly one keeps it. A surplus
        trial is failed as interrupted (not counted); the queued parameters it took, if any, are queued again."""
        trials = self.study.get_trials(deepcopy=False)
        taken = sorted(t.number for t in trials if counted(t) or t.state == TrialState.RUNNING)
        if trial.number not in taken or taken.index(trial.number) < self.config.trials:
            return False
        fixed = self.study._storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")
        trial.set_user_attr("outcome", "interrupted")
        self.study.tell(trial, state=TrialState.FAIL)
        if fixed:
            self.study.enqueue_trial(fixed)
        return True

    def _run_trial(self, trial: optuna.Trial) -> dict | None:
        try:
            return self.evaluate(trial)
        except SearchError as exc:
            self.fatal = str(exc)
            self._stop.set()
            self._requeue(trial)
            return {"outcome": "interrupted"}
        except Exception as exc:  # noqa: BLE001 (a bug here fails one trial, clearly, not the search)
            if self._stop.is_set():
                return None  # interrupted: the trial was told already
            return self._fail(trial, {s: 0.0 for s in STAGES}, {}, f"internal error: {type(exc).__name__}: {exc}",
                              "internal")
        finally:
            with self._lock:
                self._in_flight.pop(trial.number, None)

    def _requeue(self, trial: optuna.Trial) -> None:
        """Fail ``trial`` as interrupted (not counted) and queue its parameters again."""
        trial.set_user_attr("outcome", "interrupted")
        self.study.tell(trial, state=TrialState.FAIL)
        if trial.params:
            self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})

    # --- one trial --------------------------------------------------------------------------------------------

    def evaluate(self, trial: optuna.Trial) -> dict:
        """Evaluate one trial and tell the study; returns what happened (also on the trial's user attributes)."""
        stage: dict[str, float] = {s: 0.0 for s in STAGES}
        attrs: dict[str, Any] = {}
        try:
            with self.workers.worker() as w:
                built = w.build(trial)
            stage["build"] += built.seconds.get("build", 0.0)
            stage["convert"] += built.seconds.get("convert", 0.0)
            attrs["convert_cached"] = built.cached
            candidate, error = self._examine(trial.params, built, trial.distributions, stage)
            if error:
                return self._fail(trial, stage, attrs, error, "runtime")
            attrs.update(self._analysis_attrs(candidate))
            decision = self._decide(candidate, stage)
            if decision is not None and decision.action == "reuse":
                return self._measure_and_train(trial, candidate, stage, attrs, decision)
            if decision is not None and decision.action == "repair":
                repaired = self._repair(candidate, decision, stage)
                if isinstance(repaired, Candidate):
                    attrs["repaired_params"] = repaired.params
                    attrs["repair"] = {**decision.repair, "reason": decision.reason}
                    attrs["original"] = {"prediction": _prediction_attrs(candidate), **self._analysis_attrs(candidate)}
                    attrs["rule"] = "repair"
                    candidate = repaired
                    attrs.update(self._analysis_attrs(candidate))
                    decision = self._decide(candidate, stage, repairs=False)
                else:
                    attrs["repair_rejected"] = repaired
                    decision = None
            if candidate.prediction is not None:
                attrs["prediction"] = _prediction_attrs(candidate)
            if (decision is None and self.dominated is not None and self.config.trains
                    and self._within_budgets(candidate)):
                candidate.accuracy = self._train(trial, candidate, stage, attrs)
                decision = self.dominated.decide(candidate)
            if decision is not None and decision.action == "reuse":
                return self._measure_and_train(trial, candidate, stage, attrs, decision)
            if decision is not None:
                return self._prune(trial, stage, attrs, decision)
            return self._measure_and_train(trial, candidate, stage, attrs)
        except WorkerError as exc:
            return self._fail(trial, stage, attrs, str(exc), exc.stage)

    def _examine(self, params: dict, built: Built, distributions, stage: dict) -> tuple[Candidate | None, str]:
        from costmodel import analyze
        from costmodel.errors import ModelError
        from costmodel.tflite import read_model

        t0 = time.perf_counter()
        try:
            graph = read_model(built.tflite)
            verdict = self.fit.check(graph)
            if verdict.unsupported:
                return None, f"the runtime cannot run {verdict.unsupported}"
            analysis = analyze(graph)
            architecture = self.lab.architecture_id(architecture_digest(graph))
        except ModelError as exc:
            return None, f"the cost model cannot analyse it: {exc}"
        finally:
            stage["analyse"] += time.perf_counter() - t0
        t1 = time.perf_counter()
        prediction = self.cost_model.predict(analysis) if verdict.fits is not False else None
        stage["predict"] += time.perf_counter() - t1
        return Candidate(dict(params), dict(distributions), built.tunables, analysis, verdict, prediction,
                         built.tflite, architecture), ""

    def _decide(self, candidate: Candidate, stage: dict, repairs: bool = True) -> Decision | None:
        t0 = time.perf_counter()
        try:
            for rule in self.rules:
                if not repairs and isinstance(rule, InferiorRule):
                    continue
                decision = rule.decide(candidate)
                if decision is not None:
                    return decision
            return None
        finally:
            stage["predict"] += time.perf_counter() - t0

    def _repair(self, candidate: Candidate, decision: Decision, stage: dict) -> Candidate | str:
        with self.workers.worker() as w:
            built = w.replay(decision.params)
        stage["build"] += built.seconds.get("build", 0.0)
        stage["convert"] += built.seconds.get("convert", 0.0)
        repaired, error = self._examine(built.params, built, candidate.distributions, stage)
        if error:
            return error
        if repaired.verdict.fits is False:
            return repaired.verdict.reason
        if repaired.prediction is not None and candidate.prediction is not None and \
                repaired.prediction.latency_s >= candidate.prediction.latency_s:
            return (f"the repaired model is predicted {repaired.prediction.latency_s * 1e3:.3g} ms, not faster than "
                    f"{candidate.prediction.latency_s * 1e3:.3g} ms")
        return repaired

    def _analysis_attrs(self, c: Candidate) -> dict:
        v = c.verdict
        return {"analysis": {"macs": c.analysis.total_macs, "params": c.analysis.total_params,
                             "layers": len(c.analysis.layers), "plan_bytes": v.plan_bytes,
                             "arena_bytes": v.arena_bytes, "flash_needed": v.flash_needed, "ram_needed": v.ram_needed,
                             "placement": v.placement, "fit": v.reason}, "architecture": c.architecture}

    # --- outcomes ---------------------------------------------------------------------------------------------

    def _finish(self, trial: optuna.Trial, stage: dict, attrs: dict, outcome: str) -> None:
        attrs["outcome"] = outcome
        attrs["stage_s"] = {k: round(v, 4) for k, v in stage.items()}
        for key, value in attrs.items():
            trial.set_user_attr(key, _jsonable(value))
        with self._lock:
            self.summary.trials += 1
            self.summary.outcomes[outcome] += 1
            for k, v in stage.items():
                self.summary.stage_s[k] += v
            if attrs.get("rule"):
                self.summary.rules[attrs["rule"]] += 1

    def _fail(self, trial, stage, attrs, message: str, where: str) -> dict:
        attrs.update({"error": message, "error_stage": where})
        self._finish(trial, stage, attrs, "failed")
        with self._lock:
            self.summary.errors.append(f"trial {trial.number}: {message}")
        self.study.tell(trial, state=TrialState.FAIL)
        return {"outcome": "failed", "error": message}

    def _prune(self, trial, stage, attrs, decision: Decision) -> dict:
        for key, value in decision.constraints.items():
            if value is not None:
                trial.set_constraint(key, value)
        if decision.repair and decision.action == "prune":
            attrs["alternative"] = decision.repair
        if decision.dominated_by is not None:
            attrs["dominated_by"] = decision.dominated_by
        attrs.update({"rule": decision.rule, "reason": decision.reason})
        self._finish(trial, stage, attrs, "pruned")
        self.study.tell(trial, state=TrialState.PRUNED)
        return {"outcome": "pruned", "rule": decision.rule, "reason": decision.reason,
                "repaired": "repair" in attrs}

    def _measure_and_train(self, trial, c: Candidate, stage: dict, attrs: dict, reuse: Decision | None = None
                           ) -> dict:
        t0 = time.perf_counter()
        model = c.tflite
        m = self.lab.stored(model)
        if m is None and reuse is not None:
            m = self.lab.recall(reuse.measurement_id)
        if m is not None and not attrs.get("rule"):
            attrs.update({"rule": "known", "reason": reuse.reason if reuse is not None else
                          f"this model was measured before ({m.request_id})"})
        if m is None:
            m, failure, rows = self.lab.measure(model, name=f"{self.config.study}#{trial.number}",
                                                spec={"study": self.config.study, "trial": trial.number,
                                                      "space": self.config.space.name, "params": c.params,
                                                      "architecture": c.architecture})
            if m is None:
                stage["measure"] += time.perf_counter() - t0
                if not failure.model_error and self.lab.live_agents() == 0:
                    raise SearchError(f"no agent can measure on {self.lab.target} any more ({failure.message}); "
                                      "the study is saved: run the same command again to resume")
                return self._fail(trial, stage, attrs, failure.message, "measure" if failure.model_error else "agent")
            stage["measure"] += time.perf_counter() - t0
            t1 = time.perf_counter()
            self.cost_model.add(*rows)
            stage["learn"] += time.perf_counter() - t1
            with self._lock:
                self.summary.measured += 1
                self._known.setdefault(c.architecture, (m.request_id, trial.number))
        else:
            stage["measure"] += time.perf_counter() - t0
            with self._lock:
                self.summary.from_store += 1
        p = c.prediction
        if p is not None and not m.cached:
            self.calibration["latency"].add(p.latency_s, p.latency_sd_s, m.latency_s, p.model_measurements)
            self.calibration["energy"].add(p.energy_j, p.energy_sd_j, m.energy_j, p.model_measurements)
        attrs["measurement"] = _measurement_attrs(m)
        attrs["layers"] = _layer_attrs(m, c.prediction)
        values = {"latency": m.latency_s, "energy": m.energy_j, "ram": float(m.arena_bytes or c.verdict.arena_bytes),
                  "flash": float(m.plan_bytes or c.verdict.plan_bytes)}
        budgets = self.config.budgets
        for key in budgets.given():
            trial.set_constraint(key, budgets.excess(key, values[key]))
        over = budgets.over(values)
        if over:
            name = over[0]
            show = Objective(name).show
            over_budget = f"measured {name} {show(values[name])} over the budget {show(getattr(budgets, name))}"
            if attrs.get("rule") == "known":  # no board was asked: the saving stays the known rule's
                attrs["reason"] = f"{attrs['reason']}: {over_budget}"
            else:
                attrs.update({"rule": f"measured:{name}", "reason": over_budget})
            self._finish(trial, stage, attrs, "pruned")
            self.study.tell(trial, state=TrialState.PRUNED)
            return {"outcome": "pruned", "rule": attrs["rule"], "reason": attrs["reason"], "latency_s": m.latency_s}
        if self.config.trains:
            values["accuracy"] = self._train(trial, c, stage, attrs)
        with self._lock:
            self._evaluated.setdefault(params_key(c.params), trial.number)
            self._points.setdefault(trial.number, {o.name: values[o.name] for o in self.config.objectives})
        self._finish(trial, stage, attrs, "measured")
        self.study.tell(trial, [values[o.name] for o in self.config.objectives])
        return {"outcome": "measured", "latency_s": m.latency_s, "energy_j": m.energy_j,
                "accuracy": values.get("accuracy"), "cached": m.cached, "repaired": "repair" in attrs,
                "predicted_s": c.prediction.latency_s if c.prediction else None}

    def _train(self, trial, c: Candidate, stage: dict, attrs: dict) -> float:
        """The candidate's int8 accuracy: trained now, or known from a trial of the same parameters."""
        key = params_key(c.params)
        with self._lock:
            known = self._accuracy.get(key)
        if known is None:
            with self.workers.worker() as w:
                trained = w.train(c.params, self.config.epochs, self.config.batch_size, self.config.learning_rate)
            for k in ("build", "convert"):
                stage["train"] += trained.seconds.get(k, 0.0)
            stage["train"] += trained.seconds.get("train", 0.0) + trained.seconds.get("evaluate", 0.0)
            known = {"int8": trained.accuracy, "float": trained.float_accuracy, "epochs": self.config.epochs,
                     "trial": trial.number}
            with self._lock:
                self.trained_models[trial.number] = trained.tflite
                self._accuracy[key] = known
                self.summary.trained += 1
        elif known.get("trial") != trial.number:
            attrs["accuracy_from_trial"] = known.get("trial")
        attrs["accuracy"] = {k: v for k, v in known.items() if k != "trial"}
        return known["int8"]

    # --- results ----------------------------------------------------------------------------------------------

    def front(self) -> list[dict]:
        """The study's Pareto front (feasible trials), as plain dicts."""
        out = []
        if len(self.config.objectives) > 1:
            best = self.study.best_trials
        else:
            done = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if all(v <= 0 for v in t.constraints.values())]
            best = [self.study.best_trial] if done else []
        for t in best:
            out.append({"trial": t.number, "values": dict(zip([o.name for o in self.config.objectives], t.values)),
                        "params": effective_params(t), "repaired": "repair" in t.user_attrs})
        return out


def _prediction_attrs(c: Candidate) -> dict | None:
    p = c.prediction
    if p is None:
        return None
    return {"latency_s": p.latency_s, "latency_sd_s": p.latency_sd_s, "energy_j": p.energy_j,
            "energy_sd_j": p.energy_sd_j, "energy_source": p.energy_source, "sources": p.sources,
            "model_version": p.model_version}


def _measurement_attrs(m: Measurement) -> dict:
    return {"latency_s": m.latency_s, "energy_j": m.energy_j, "energy_source": m.energy_source,
            "provenance": m.provenance, "board_id": m.board_id, "board_kind": m.board_kind,
            "board_model_version": m.board_model_version, "firmware_build_id": m.firmware_build_id,
            "request_id": m.request_id, "from_store": m.cached, "agent": m.agent, "total_cycles": m.total_cycles,
            "arena_bytes": m.arena_bytes, "plan_bytes": m.plan_bytes}


def _layer_attrs(m: Measurement, p) -> list[dict]:
    predicted = {layer["index"]: layer for layer in (p.layers if p else [])}
    out = []
    for layer in m.layers:
        pl = predicted.get(layer["index"], {})
        out.append({"index": layer["index"], "name": layer["name"], "op": layer["op"], "kernel": layer["kernel"],
                    "macs": layer["macs"], "cycles": layer["cycles"], "latency_s": layer["latency_s"],
                    "energy_j": layer["energy_j"], "predicted_s": pl.get("latency_s"), "source": pl.get("source")})
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
