"""The rules that decide, before a measurement, what becomes of a candidate: reject, prune, repair or measure.

Each rule is a small object with one method, ``decide(candidate) -> Decision | None`` (None: no objection),
tried in order; the first decision wins. Like Optuna's pruners they are swappable, but they act before a
trial is measured (Optuna's pruners do not work in multi-objective studies, and a measurement is the cost
to save). Rules and what they say (the ``rule`` attribute of a pruned or repaired trial):

``fit:flash`` ``fit:ram`` ``fit:layers``  :class:`FitRule`: the agent's fit verdict says it does not fit the
    target, with the weights where the runtime puts them (exact, not a prediction).
``budget:flash`` ``budget:ram``  :class:`FitRule`: the plan or arena is over the user's budget (exact).
``known``  :class:`KnownRule`: the same architecture (``nas.architecture``: ops, shapes, quantization layout,
    whatever the weight values) was measured already, by this search or in the store: its measurement is
    reused (the trial is complete, with the measured values; no board is asked).
``budget:latency`` ``budget:energy``  :class:`BudgetRule`: the cost model predicts it over budget with
    confidence (an optimistic reading of the prediction, recalibrated by the search's measurements, still over).
``inferior``  :class:`InferiorRule`: a faster parametrization at the same or higher capacity exists in the
    space and was evaluated already (or the policy is to prune).
``repair``  :class:`InferiorRule`: the faster parametrization was not evaluated yet: the candidate is
    replaced by it (both recorded on the trial).
``dominated``  :class:`DominatedRule`: a measured trial within every budget is at least as good in every
    objective as the candidate at its best (accuracy once trained, latency / energy at the budget rule's
    optimistic reading, RAM / flash exact): measuring it cannot move the Pareto front.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from nas.adapter import CostModel, Prediction, Verdict
from nas.calibration import Calibration
from nas.objectives import Budgets, Objective
from nas.pareto import covers


@dataclass
class Candidate:
    """What the rules see of a candidate."""

    params: dict
    distributions: dict[str, BaseDistribution]
    tunables: dict[str, dict[str, str]]
    analysis: Any                     # costmodel.ModelAnalysis
    verdict: Verdict
    prediction: Prediction | None = None
    tflite: bytes = b""
    architecture: str = ""            # Lab.architecture_id of the model (nas.architecture)
    accuracy: float | None = None     # int8 accuracy once trained (before the measurement, see DominatedRule)


@dataclass(frozen=True)
class Decision:
    action: str                       # "reject" (does not fit), "prune", "repair" or "reuse" (a measurement)
    rule: str
    reason: str
    constraints: dict[str, float] = field(default_factory=dict)
    params: dict | None = None        # the repaired parameters
    repair: dict | None = None        # {"parameter", "from", "to", "layer", "gain", "description"}
    measurement_id: str = ""          # the measurement to reuse
    dominated_by: int | None = None   # the trial that dominates the candidate


class Rule(Protocol):
    name: str
    uses_cost_model: bool

    def decide(self, candidate: Candidate) -> Decision | None: ...


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


class FitRule:
    """Reject what does not fit the target, or is over the flash / RAM budget (exact numbers)."""

    name = "fit"
    uses_cost_model = False

    def __init__(self, budgets: Budgets):
        self.budgets = budgets

    def decide(self, c: Candidate) -> Decision | None:
        v = c.verdict
        if v.fits is False:
            return Decision("reject", f"fit:{v.rule}", v.reason, {"fit": v.excess()})
        values = {"flash": v.plan_bytes or None, "ram": v.arena_bytes or None}
        for name in ("flash", "ram"):
            excess = self.budgets.excess(name, values[name])
            if excess is not None and excess > 0:
                what = "plan" if name == "flash" else "arena"
                return Decision("reject", f"budget:{name}",
                                f"{what} {_kib(values[name])} > budget {_kib(getattr(self.budgets, name))}",
                                {name: excess})
        return None


class KnownRule:
    """Reuse the measurement of an architecture measured already (exact: latency and energy do not depend on the
    values of an untrained candidate's weights)."""

    name = "known"
    uses_cost_model = False

    def __init__(self, known: Callable[[str], tuple[str, int | None] | None]):
        self.known = known            # architecture id -> (measurement id, trial that measured it or None)

    def decide(self, c: Candidate) -> Decision | None:
        found = self.known(c.architecture) if c.architecture and c.verdict.fits is not False else None
        if found is None:
            return None
        rid, trial = found
        where = f"trial {trial}" if trial is not None else "the measurement store"
        return Decision("reuse", "known", f"the same architecture was measured by {where} ({rid})",
                        measurement_id=rid)


class BudgetRule:
    """Prune when the predicted latency / energy is over budget with confidence: its optimistic reading
    (:class:`nas.calibration.Calibration`: less ``confidence`` standard deviations, recalibrated by the search's
    measured predictions) is still over."""

    name = "budget"
    uses_cost_model = True

    def __init__(self, budgets: Budgets, confidence: float = 2.0,
                 calibration: dict[str, Calibration] | None = None):
        self.budgets, self.confidence = budgets, confidence
        self.calibration = calibration or {"latency": Calibration(), "energy": Calibration()}

    def decide(self, c: Candidate) -> Decision | None:
        p = c.prediction
        if p is None:
            return None
        checks = (("latency", p.latency_s, p.latency_sd_s, 1e3, "ms"), ("energy", p.energy_j, p.energy_sd_j, 1e3, "mJ"))
        for name, value, sd, scale, unit in checks:
            budget = getattr(self.budgets, name)
            if budget is None or value is None or sd is None:
                continue
            low, how = self.calibration[name].lower(value, sd, self.confidence, p.model_measurements)
            if low > budget:
                return Decision("prune", f"budget:{name}",
                                f"predicted {value * scale:.3g} ± {sd * scale:.2g} {unit}, at least {low * scale:.3g} "
                                f"({how}) > budget {budget * scale:.3g} {unit}; cost model of {p.model_version}",
                                {name: self.budgets.excess(name, value)})
        return None


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, IntDistribution):
        return dist.low <= value <= dist.high and (value - dist.low) % dist.step == 0
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(dist, FloatDistribution):
        return dist.low <= value <= dist.high
    return False


def keras_layer(tflite_name: str, keras_names) -> str | None:
    """The Keras layer a TFLite op belongs to: a segment of its name that is the layer's name (the converter
    appends ``_<n>`` to scopes)."""
    segments = re.split(r"[/;:]", tflite_name)
    for name in keras_names:
        pattern = re.compile(re.escape(name) + r"(_\d+)*")
        if any(pattern.fullmatch(s) for s in segments):
            return name
    return None


def params_key(params: dict) -> str:
    return repr(sorted(params.items()))


class InferiorRule:
    """Known-inferior: the cost model finds a faster parametrization of one layer with at least the capacity
    (MACs or parameters) that the space can express. Repair to it (policy ``repair``), or prune when it was
    evaluated already or the policy is ``prune``."""

    name = "inferior"
    uses_cost_model = True

    def __init__(self, cost_model: CostModel, evaluated: Callable[[dict], int | None], *, policy: str = "repair",
                 keep: str = "macs", confidence: float = 2.0, threshold: float = 0.02):
        if policy not in ("repair", "prune"):
            raise ValueError("policy must be repair or prune")
        self.cost_model, self.evaluated = cost_model, evaluated
        self.policy, self.keep, self.confidence, self.threshold = policy, keep, confidence, threshold

    def decide(self, c: Candidate) -> Decision | None:
        if c.prediction is None:
            return None
        for alt in self.cost_model.repairs(c.analysis, keep=self.keep, confidence=self.confidence,
                                           threshold=self.threshold):
            layer = keras_layer(alt.layer, c.tunables)
            param = c.tunables.get(layer, {}).get(alt.parameter) if layer else None
            dist = c.distributions.get(param) if param else None
            if dist is None or c.params.get(param) != alt.old or not _contains(dist, alt.new):
                continue
            params = {**c.params, param: alt.new}
            repair = {"parameter": param, "from": alt.old, "to": alt.new, "layer": layer, "gain": alt.gain,
                      "gain_sd": alt.gain_sd, "description": alt.description}
            done = self.evaluated(params)
            if done is not None:
                return Decision("prune", "inferior", f"{param} {alt.old} -> {alt.new} is predicted "
                                f"{alt.gain * 100:.1f} % faster at >= {self.keep}; trial {done} evaluated it",
                                repair=repair)
            if self.policy == "prune":
                return Decision("prune", "inferior", f"{param} {alt.old} -> {alt.new} is predicted "
                                f"{alt.gain * 100:.1f} % faster at >= {self.keep}", repair=repair)
            return Decision("repair", "repair", f"{param} {alt.old} -> {alt.new}: predicted {alt.gain * 100:.1f} % "
                            f"(± {alt.gain_sd * 100:.1f} %) faster at >= {self.keep}", params=params, repair=repair)
        return None


class DominatedRule:
    """Prune a candidate that a measured trial within every budget dominates even at its best: that trial is
    at least as good in every objective as the candidate's optimistic values (accuracy exact once trained;
    latency and energy the budget rule's optimistic reading of the prediction; RAM and flash exact). Such a
    candidate cannot add a point to the Pareto front, so its measurement is saved. With accuracy among the
    objectives the rule needs the candidate trained first (``Candidate.accuracy``); until then it has no
    objection.

    Its default ``confidence`` is stricter than the budget rule's: the budget rule prunes candidates over the
    budget, which a wrong prune rarely takes off the front; this rule prunes candidates next to the measured
    front, where every wrong prune may lose a front point. A search prunes some 60 candidates so: at 2 sd
    (one-sided 2.3 %) it expects 1.4 wrong ones (the pruning benchmark saw 2 of 59, in one search of four);
    at 3 sd (0.13 %) 0.08."""

    name = "dominated"
    uses_cost_model = True

    def __init__(self, objectives: list[Objective], measured: Callable[[], list[tuple[int, dict[str, float]]]],
                 confidence: float = 2.0, calibration: dict[str, Calibration] | None = None):
        self.objectives, self.measured, self.confidence = objectives, measured, confidence
        self.calibration = calibration or {"latency": Calibration(), "energy": Calibration()}

    def best_case(self, c: Candidate) -> dict[str, float] | None:
        """The candidate's optimistic value of every objective, or None when one is not known yet."""
        p, best = c.prediction, {}
        for o in self.objectives:
            if o.name == "accuracy":
                value = c.accuracy
            elif o.name in ("latency", "energy"):
                if p is None:
                    return None
                predicted, sd = (p.latency_s, p.latency_sd_s) if o.name == "latency" else (p.energy_j, p.energy_sd_j)
                if predicted is None or sd is None:
                    return None
                value = max(0.0, self.calibration[o.name].lower(predicted, sd, self.confidence,
                                                                 p.model_measurements)[0])
            else:
                value = float((c.verdict.arena_bytes if o.name == "ram" else c.verdict.plan_bytes) or 0) or None
            if value is None:
                return None
            best[o.name] = value
        return best

    def decide(self, c: Candidate) -> Decision | None:
        best = self.best_case(c)
        if best is None:
            return None
        names, directions = [o.name for o in self.objectives], [o.direction for o in self.objectives]
        for number, values in self.measured():
            if covers([values[n] for n in names], [best[n] for n in names], directions):
                theirs = ", ".join(f"{o.name} {o.show(values[o.name])}" for o in self.objectives)
                ours = ", ".join(f"{o.name} {o.show(best[o.name])}" for o in self.objectives)
                return Decision("prune", "dominated", f"trial {number} ({theirs}) dominates it at its best ({ours})",
                                dominated_by=number)
        return None
