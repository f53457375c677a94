"""The learned half of the cost model: a per-layer δ table with a regressor behind it.

Interface (stable; the search calls it thousands of times)::

    model = LatencyModel(min_rows=6).fit(rows)             # rows: DataFrame / list of dicts / MeasurementStore
    model.partial_fit(more_rows)                            # cheap: adds to the table's sufficient statistics
    p = model.predict_model(analysis_or_graph, target="NUCLEO-L496ZG", runtime_variant="simd")
    p.latency_s, p.energy_j, p.uncertainty, [(l.source, l.uncertainty) for l in p.layers]
    model.predict(rows) -> np.ndarray                       # latency_s per layer row
    model.alternatives(analysis_or_layer_spec, target=...)  # faster parametrizations with >= the MACs
    model.is_inferior(analysis_or_layer_spec, target=..., threshold=0.02) -> bool
    model.save("model.json"); load_model("model.json")

**Contexts.** Rows are grouped by their context (target, clock, runtime variant, float ABI, optimisation
level, weight placement, board kind, the virtual board's ``board_model_version``, ``runtime`` and
``firmware_build_id``: :data:`costmodel.features.CONTEXT_COLUMNS`); every context has its own table,
regressor and model-level overhead, so rows of an older firmware or timing model never mix with new
ones. A prediction names its target and settings; among the contexts that match, the board's default
settings are preferred and then the most recently measured context.

**The δ table.** Per key (:func:`costmodel.features.table_key`: op and kernel, kernel size, stride, the
residue of the decisive input dimension, the alignment class of the output channels) the layer's cycles
are fitted as ``overhead + δ x MACs + Σ c_t x term_t`` over the loop counts of
:func:`costmodel.features.work_terms` (output elements, im2col columns, output positions, inputs, and
per kernel the loops it really runs: the reference kernels skip the taps in the padding, so their MACs
count the taps inside the input only; the SIMD convolution's columns, border fill and weight repacking;
the SIMD add's table set-up and its reference path below 512 elements), non-negative, by weighted least
squares on relative error. δ is the marginal cost of a MAC the kernel executes; the other terms keep it
from absorbing per-output or per-pixel work (a 1x1 convolution on 4 channels spends most of its time
requantising). The table keeps sufficient statistics (Gram matrix, right-hand side), so a
refit with more rows only adds. Each entry has its row count, spread (relative residual standard
deviation) and effective δ (Σ latency / Σ MACs of its rows, the paper's δ).

**The regressor.** Keys with fewer than ``min_rows`` rows, or fewer than ``min_dof`` rows beyond the
coefficients they fit (such a key interpolates its few rows and extrapolates badly), are filled in by gradient-boosted trees
(scikit-learn) over layer features, predicting the log ratio of the cycles to a pooled per-(op, kernel)
fit; its uncertainty is its error on held-out keys (whole keys left out of a trial fit). The trees are stored as plain arrays and evaluated
with numpy, so loading needs no pickle and prediction no scikit-learn.

**Whole models.** latency = Σ per-layer predictions + the model-level overhead (executor work between
layers) fitted from whole-model measurements as ``a + b x layers``. Energy: where the rows carry energy
from a monitor, per-key power (Σ energy / Σ latency) times the predicted latency (``energy_source =
"monitor"``); otherwise latency x the board's catalogue power (``"power-model"``).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from costmodel import features as F
from costmodel.analysis import ModelAnalysis, analyze
from costmodel.graph import Graph

FILE_FORMAT = "mcu-nas-latency-model"
FILE_VERSION = 3  # 3: the SIMD kernels' loop counts (conv passes of 4 pixels, ring rows; depthwise paths; FC quads);
#                  2 (the pixel pair conv terms) and 1 are refused: refit
DEFAULT_VARIANT_ORDER = ("simd", "reference")


class CostModelError(ValueError):
    """A prediction or fit the model cannot make; the message is one line for the user."""


class UnknownKeyError(CostModelError):
    """No measurements for this target / settings / op."""


class ModelFileError(CostModelError):
    """A model file that is missing, corrupt or of an incompatible version."""


# --- small numerics -------------------------------------------------------------------------------------------


#: Weight of the prior (the coarser key's coefficients) in a key's fit, in units of the normalised Gram matrix:
#: directions the key's rows determine follow the rows, directions they leave open (e.g. a key measured at
#: one filter count cannot tell per-output from per-pixel cost) follow the coarser key.
PRIOR_WEIGHT = 1e-6
COVARIANCE_RIDGE = 1e-4
#: Rows a term must be non-zero in before its coefficient is fitted, unless it is non-zero in every row. A term
#: seen in one or two of many rows is "determined" by nothing more than those rows' residuals: a convolution's
#: border-tap term seen in two of 40 rows, of 9 taps, took 436 cycles per tap, and a 5x5 layer of 100 border taps
#: was predicted at 3.6x its cycles with 16 % uncertainty. Below this, the term keeps the coarser key's
#: coefficient (0 without one).
MIN_TERM_ROWS = 3


#: Up to this many terms every active set is tried; more (the SIMD convolution's) use an active-set solver.
EXHAUSTIVE_TERMS = 5


def _nnls_active_set(a: np.ndarray, bp: np.ndarray) -> tuple | None:
    """min β'Aβ - 2β'bp subject to β >= 0 (A symmetric positive definite), as ``(objective, active, β, A_active)``
    (the form of the exhaustive search's best), or None."""
    from scipy.optimize import nnls

    try:
        r = np.linalg.cholesky(a).T            # A = R'R: the objective is |Rβ - R^-T bp|² - const
    except np.linalg.LinAlgError:
        return None
    beta, _ = nnls(r, np.linalg.solve(r.T, bp), maxiter=50 * len(bp))
    idx = [i for i in range(len(bp)) if beta[i] > 0]
    if not idx:
        return None
    sub = a[np.ix_(idx, idx)]
    try:
        beta_s = np.linalg.solve(sub, bp[idx])   # the unconstrained optimum on the active set (polished)
    except np.linalg.LinAlgError:
        return None
    if np.any(beta_s < 0):
        beta_s = beta[idx]
    return float(beta_s @ sub @ beta_s - 2 * beta_s @ bp[idx]), idx, beta_s, sub


def _nnls_gram(gram: np.ndarray, rhs: np.ndarray, yy: float, n: int, prior: np.ndarray | None = None,
               weight: float = PRIOR_WEIGHT) -> dict:
    """Non-negative least squares from the normal equations (up to :data:`EXHAUSTIVE_TERMS` terms all active
    sets are tried, beyond an active-set solver finds the same optimum), shrunk towards ``prior`` coefficients
    where the rows leave a direction undetermined."""
    p = len(rhs)
    d = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    g = gram / np.outer(d, d)
    b = rhs / d
    lam = weight if prior is not None else 1e-10
    bp = b + lam * (np.asarray(prior) * d if prior is not None else 0.0)
    best = None
    if p > EXHAUSTIVE_TERMS:  # Lawson-Hanson on the Cholesky factor: the same optimum, without 2^p solves
        best = _nnls_active_set(g + lam * np.eye(p), bp)
    for size in range(1, p + 1 if best is None else 0):
        for subset in itertools.combinations(range(p), size):
            idx = list(subset)
            gs = g[np.ix_(idx, idx)] + lam * np.eye(size)
            try:
                beta = np.linalg.solve(gs, bp[idx])
            except np.linalg.LinAlgError:
                continue
            if np.any(beta < 0):
                continue
            obj = float(beta @ gs @ beta - 2 * beta @ bp[idx])
            if best is None or obj < best[0] - 1e-15:
                best = (obj, idx, beta, gs)
    coef = np.zeros(p)
    if best is None:
        return {"coef": coef.tolist(), "active": [], "spread": None, "cov": []}
    _, idx, beta, gs = best
    coef[idx] = beta / d[idx]
    gi = g[np.ix_(idx, idx)]
    sse = max(yy - 2 * float(beta @ b[idx]) + float(beta @ gi @ beta), 0.0)  # weighted (relative) residuals
    # effective parameters of the shrunk fit: directions the prior fixes do not use up rows
    used = float(np.trace(gi @ np.linalg.inv(gs))) if idx else 0.0
    dof = n - used
    spread = math.sqrt(sse / dof) if dof > 0.5 else None
    # the leverage of a prediction: directions the rows leave open are bounded by the prior (COVARIANCE_RIDGE)
    inv = np.linalg.inv(gi + max(lam, COVARIANCE_RIDGE) * np.eye(len(idx))) / np.outer(d[idx], d[idx])
    return {"coef": coef.tolist(), "active": idx, "spread": spread, "cov": inv.tolist()}


def _fitted_directions(entry: TableEntry) -> int:
    """The coefficients a key's rows determine: the rank of its active terms in its rows (a term absent from
    them, or one a multiple of another in every row of the key, e.g. the SIMD dense kernel's per-quad tail and
    its quads within one input residue, fits nothing more)."""
    idx = [i for i in entry.active if entry.stats.support[i] > 0]
    if not idx:
        return 0
    g = entry.stats.gram[np.ix_(idx, idx)]
    d = np.sqrt(np.maximum(np.diag(g), 1e-300))
    return int(np.linalg.matrix_rank(g / np.outer(d, d), tol=1e-9))


class _Stats:
    """Sufficient statistics of a weighted linear fit (weights 1/y^2: relative error)."""

    def __init__(self, p: int):
        self.gram = np.zeros((p, p))
        self.rhs = np.zeros(p)
        self.yy = 0.0
        self.n = 0
        self.support = np.zeros(p)      # rows in which each term is non-zero
        self.sum_cycles = 0.0
        self.sum_macs = 0.0
        self.macs_min = math.inf
        self.macs_max = 0.0

    def merge(self, other: _Stats) -> None:
        self.gram += other.gram
        self.rhs += other.rhs
        self.yy += other.yy
        self.n += other.n
        self.support += other.support
        self.sum_cycles += other.sum_cycles
        self.sum_macs += other.sum_macs
        self.macs_min = min(self.macs_min, other.macs_min)
        self.macs_max = max(self.macs_max, other.macs_max)

    def add(self, x: np.ndarray, y: float, macs: float) -> None:
        w = 1.0 / max(y, 1.0) ** 2
        self.gram += w * np.outer(x, x)
        self.rhs += w * y * x
        self.yy += w * y * y
        self.n += 1
        self.support += x != 0
        self.sum_cycles += y
        self.sum_macs += macs
        self.macs_min = min(self.macs_min, macs)
        self.macs_max = max(self.macs_max, macs)

    def to_dict(self) -> dict:
        return {"gram": self.gram.tolist(), "rhs": self.rhs.tolist(), "yy": self.yy, "n": self.n,
                "support": self.support.tolist(),
                "sum_cycles": self.sum_cycles, "sum_macs": self.sum_macs,
                "macs_min": None if math.isinf(self.macs_min) else self.macs_min, "macs_max": self.macs_max}

    @classmethod
    def from_dict(cls, d: dict) -> _Stats:
        s = cls(len(d["rhs"]))
        s.gram = np.asarray(d["gram"], dtype=float).reshape(len(d["rhs"]), len(d["rhs"]))
        s.rhs = np.asarray(d["rhs"], dtype=float)
        s.yy, s.n = float(d["yy"]), int(d["n"])
        s.support = np.asarray(d.get("support", [s.n] * len(d["rhs"])), dtype=float)
        s.sum_cycles, s.sum_macs = float(d["sum_cycles"]), float(d["sum_macs"])
        s.macs_min = math.inf if d.get("macs_min") is None else float(d["macs_min"])
        s.macs_max = float(d["macs_max"])
        return s


@dataclass
class TableEntry:
    """One δ-table key of one context: statistics and the fitted coefficients (cycles per term)."""

    key: tuple
    terms: tuple[str, ...]
    stats: _Stats
    coef: np.ndarray = None
    active: list = field(default_factory=list)
    spread: float | None = None
    cov: np.ndarray | None = None

    def refit(self, prior: TableEntry | None = None) -> None:
        """Solve the coefficients from the statistics, shrunk towards ``prior``'s where the rows leave them open."""
        coarse = prior.coef if prior is not None and prior.coef is not None and prior.terms == self.terms else None
        st = self.stats
        # the weak terms' coefficients fixed (the prior's, or 0): the rest fitted to y - Σ fixed x
        weak = (st.support > 0) & (st.support < MIN_TERM_ROWS) & (st.support < st.n)  # in a few rows, not all
        free = np.flatnonzero(~weak)
        fixed = np.where(weak, coarse if coarse is not None else 0.0, 0.0)
        g_f = st.gram @ fixed
        yy = max(st.yy - 2 * float(fixed @ st.rhs) + float(fixed @ g_f), 0.0)
        fit = _nnls_gram(st.gram[np.ix_(free, free)], st.rhs[free] - g_f[free], yy, st.n,
                         None if coarse is None else np.asarray(coarse)[free])
        self.coef = fixed.copy()
        self.coef[free] = fit["coef"]
        self.active = [int(free[i]) for i in fit["active"]]
        self.spread = fit["spread"]
        self.cov = np.asarray(fit["cov"]) if fit["active"] else None

    @property
    def n(self) -> int:
        return self.stats.n

    def predict(self, x: np.ndarray) -> float:
        return float(self.coef @ x)

    def relative_uncertainty(self, x: np.ndarray, floor: float) -> float:
        y = self.predict(x)
        if self.spread is None or y <= 0:
            return math.inf
        xs = x[self.active]
        # a term the key's rows never carried (its coefficient the prior's) has an unbounded leverage: inf,
        # so the key makes no confident prediction of a layer that carries it
        with np.errstate(over="ignore", invalid="ignore"):
            leverage = float(xs @ self.cov @ xs) / (y * y) if self.cov is not None else 0.0
        if not math.isfinite(leverage):
            return math.inf
        return max(floor, self.spread * math.sqrt(1.0 + max(leverage, 0.0)))

    def coefficient(self, term: str) -> float:
        return float(self.coef[self.terms.index(term)]) if term in self.terms else 0.0

    def to_dict(self) -> dict:
        return {"key": dict(zip(F.KEY_FIELDS, self.key)), "key_text": F.key_text(self.key), "n": self.n,
                "terms": list(self.terms), "coef": dict(zip(self.terms, map(float, self.coef))),
                "spread": self.spread, "stats": self.stats.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TableEntry:
        key = tuple(d["key"][f] for f in F.KEY_FIELDS)
        return cls(key, tuple(d["terms"]), _Stats.from_dict(d["stats"]))


# --- the regressor: trees as arrays ---------------------------------------------------------------------------

REGRESSOR_FEATURES = ("op", "simd", "dtype", "kernel_h", "kernel_w", "stride_h", "stride_w", "in_mod4", "in_mod16",
                      "in_channels", "out_channels", "out_mod2", "out_mod4", "depth_multiplier", "padding_same",
                      "input_length", "log_macs", "log_outputs", "log_inputs", "log_pixels", "log_columns",
                      "log_executed_macs", "valid_tap_fraction", "border_fraction")
OP_CODES = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
            "SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "MEAN", "RESHAPE", "PAD", "PADV2", "CONCATENATION",
            "QUANTIZE", "DEQUANTIZE", "SQUEEZE", "EXPAND_DIMS")
DTYPE_CODES = ("int8", "float32", "int16", "uint8", "int32")


def _regressor_x(row: Mapping, terms: Mapping | None = None) -> list[float]:
    op = row.get("op", "")
    terms = F.work_terms(row) if terms is None else terms
    full = {"const": 1.0, "macs": float(row.get("macs") or 0)}
    ins = F.input_shapes(row)
    out = F.output_shape(row)
    full["outputs"] = float(F._prod(out)) if out else 0.0
    full["inputs"] = float(sum(F._prod(s) for s in ins))
    full["pixels"] = terms.get("pixels", float(out[-3] * out[-2]) if len(out) >= 4 else 1.0)
    full["columns"] = terms.get("columns", 0.0)
    in_c = F._int(row, "in_channels")
    out_c = F._int(row, "out_channels")
    in_len = F._int(row, "input_length")
    kernel = str(row.get("kernel") or "")
    return [OP_CODES.index(op) if op in OP_CODES else len(OP_CODES), 1.0 if kernel.endswith("simd") else 0.0,
            DTYPE_CODES.index(row.get("dtype")) if row.get("dtype") in DTYPE_CODES else len(DTYPE_CODES),
            F._int(row, "kernel_h"), F._int(row, "kernel_w"), F._int(row, "stride_h"), F._int(row, "stride_w"),
            (in_c or in_len) % 4, in_len % 16, in_c, out_c, out_c % 2, out_c % 4, F._int(row, "depth_multiplier"),
            1.0 if str(row.get("padding", "")).upper() == "SAME" else 0.0, in_len,
            math.log1p(full["macs"]), math.log1p(full["outputs"]), math.log1p(full["inputs"]),
            math.log1p(full["pixels"]), math.log1p(full["columns"]), math.log1p(_executed_macs(terms)),
            *_window_fractions(row, op, len(out))]


def _executed_macs(terms: Mapping) -> float:
    """The MACs a kernel executes, over its paths (the SIMD kernels count them in several terms: ``tail_macs``,
    ``macs33``, ``pair_macs33``, ``quad_macs``, ``row_macs``)."""
    return float(sum(v for k, v in terms.items() if k == "macs" or k.endswith("_macs") or k.endswith("macs33")))


def _window_fractions(row: Mapping, op: str, rank: int) -> tuple[float, float]:
    """The share of a window's taps inside the input and of the output positions whose window reaches into
    the padding (1, 0 for layers without windows)."""
    if (op not in F.CONV_OPS and op not in F.POOL_OPS) or rank < 3:
        return 1.0, 0.0
    geo = F.window_taps(row)
    pixels = geo["taps"] / max(F._int(row, "kernel_h"), 1) / max(F._int(row, "kernel_w"), 1)
    return (geo["valid_taps"] / geo["taps"] if geo["taps"] else 1.0,
            1.0 - geo["interior"] / pixels if pixels else 0.0)


class TreeEnsemble:
    """Gradient-boosted regression trees as flat arrays, evaluated with numpy (same decisions as scikit-learn:
    features compared as float32, ``x <= threshold`` goes left)."""

    def __init__(self, init: float, rate: float, feature, threshold, left, right, value, depth: int):
        self.init, self.rate, self.depth = float(init), float(rate), int(depth)
        self.feature = np.asarray(feature, dtype=np.int64)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.value = np.asarray(value, dtype=np.float64)

    @classmethod
    def from_sklearn(cls, gbr) -> TreeEnsemble:
        trees = [est[0].tree_ for est in gbr.estimators_]
        nodes = max(t.node_count for t in trees)
        shape = (len(trees), nodes)
        feature = np.zeros(shape, np.int64)
        threshold = np.full(shape, np.inf)
        left = np.tile(np.arange(nodes), (len(trees), 1))
        right = left.copy()
        value = np.zeros(shape)
        for i, t in enumerate(trees):
            n = t.node_count
            is_split = t.children_left[:n] >= 0
            feature[i, :n] = np.where(is_split, t.feature[:n], 0)
            threshold[i, :n] = np.where(is_split, t.threshold[:n], np.inf)
            left[i, :n] = np.where(is_split, t.children_left[:n], np.arange(n))
            right[i, :n] = np.where(is_split, t.children_right[:n], np.arange(n))
            value[i, :n] = t.value[:n, 0, 0]
        init = float(np.ravel(gbr.init_.constant_)[0]) if hasattr(gbr.init_, "constant_") else 0.0
        return cls(init, gbr.learning_rate, feature, threshold, left, right, value, gbr.max_depth)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        n_trees = self.feature.shape[0]
        rows = np.arange(x.shape[0])[None, :]
        trees = np.arange(n_trees)[:, None]
        node = np.zeros((n_trees, x.shape[0]), dtype=np.int64)
        for _ in range(self.depth):
            f = self.feature[trees, node]
            go_left = x[rows, f] <= self.threshold[trees, node]
            node = np.where(go_left, self.left[trees, node], self.right[trees, node])
        return self.init + self.rate * self.value[trees, node].sum(axis=0)

    def to_dict(self) -> dict:
        return {"init": self.init, "rate": self.rate, "depth": self.depth, "feature": self.feature.tolist(),
                "threshold": [[None if math.isinf(v) else v for v in r] for r in self.threshold.tolist()],
                "left": self.left.tolist(), "right": self.right.tolist(), "value": self.value.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> TreeEnsemble:
        thr = [[math.inf if v is None else v for v in r] for r in d["threshold"]]
        return cls(d["init"], d["rate"], d["feature"], thr, d["left"], d["right"], d["value"], d["depth"])


# --- predictions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerPrediction:
    """One layer's prediction. ``source`` is ``"table"`` (``key`` with ``n_rows`` rows) or ``"regressor"``;
    ``uncertainty`` is relative (one standard deviation, e.g. 0.01 = ±1 %)."""

    index: int
    name: str
    op: str
    kernel: str
    macs: int
    cycles: float
    latency_s: float
    energy_j: float | None
    source: str
    key: str
    n_rows: int
    uncertainty: float
    row: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def uncertainty_s(self) -> float:
        return self.latency_s * self.uncertainty


@dataclass(frozen=True)
class ModelPrediction:
    """A whole model's prediction: Σ layers + model-level overhead; ``uncertainty`` relative."""

    name: str
    context: dict
    layers: list[LayerPrediction]
    cycles: float
    latency_s: float
    energy_j: float | None
    energy_source: str
    overhead_s: float
    uncertainty_s: float

    @property
    def uncertainty(self) -> float:
        return self.uncertainty_s / self.latency_s if self.latency_s else 0.0

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def to_dict(self) -> dict:
        """The schema of ``measure-agent measure --json`` (same keys), plus source and uncertainty."""
        c = self.context
        layers = []
        for p in self.layers:
            r = p.row
            layers.append({
                "index": p.index, "name": p.name, "op": p.op, "macs": p.macs, "cycles": int(round(p.cycles)),
                "latency_s": p.latency_s, "energy_j": p.energy_j if p.energy_j is not None else 0.0,
                "kernel": p.kernel, "dtype": r.get("dtype", ""),
                "input_shapes": [{"dims": list(s)} for s in F.input_shapes(r)],
                "output_shape": {"dims": F.output_shape(r)},
                "features": {k: r.get(k, 0 if k not in ("alignment", "padding") else "") for k in
                             ("alignment", "in_channels", "out_channels", "kernel_h", "kernel_w", "stride_h",
                              "stride_w", "padding", "depth_multiplier", "input_length")},
                "params": int(r.get("params", 0)), "weight_bytes": int(r.get("weight_bytes", 0)),
                "source": p.source, "key": p.key, "n_rows": p.n_rows, "uncertainty": p.uncertainty,
                "uncertainty_s": p.uncertainty_s})
        return {"request_id": "", "board_id": "", "target": c.get("target", ""),
                "runtime_variant": c.get("runtime_variant", ""), "float_abi": c.get("float_abi", ""),
                "opt_level": c.get("opt_level", ""), "clock_hz": int(c.get("clock_hz", 0)), "layers": layers,
                "total_cycles": int(round(self.cycles)), "latency_s": self.latency_s,
                "energy_j": self.energy_j if self.energy_j is not None else 0.0,
                "energy_source": self.energy_source, "firmware_build_id": c.get("firmware_build_id", ""),
                "board_kind": c.get("board_kind", ""), "placement": c.get("placement", ""),
                "board_model_version": c.get("board_model_version", ""), "runtime": c.get("runtime", ""),
                "overhead_cycles": int(round(self.overhead_s * int(c.get("clock_hz", 0) or 0))),
                "overhead_latency_s": self.overhead_s,
                "overhead_energy_j": (self.energy_j - sum(p.energy_j for p in self.layers)
                                      if self.energy_j is not None else 0.0),
                "model": self.name, "source": "prediction", "overhead_s": self.overhead_s,
                "uncertainty_s": self.uncertainty_s, "uncertainty": self.uncertainty}


# --- one context ------------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, values: tuple):
        self.values = values
        self.fields = dict(zip(F.CONTEXT_COLUMNS, values))
        self.table: dict[tuple, TableEntry] = {}
        # coarser levels, sums of the table's statistics: the key without the output class (the prior of a
        # key's fit), and (op, kernel) over all alignments (the prior of those, and the regressor's base)
        self.coarse: dict[tuple, TableEntry] = {}
        self.pooled: dict[tuple, TableEntry] = {}
        self.kernels: dict[str, dict[str, int]] = defaultdict(dict)  # "op|dtype" -> kernel -> count
        self.energy = {"monitor_j": 0.0, "monitor_s": 0.0, "by_key": {}}
        self.overhead = _Stats(2)
        self.overhead_fit: dict = {"coef": [0.0, 0.0], "spread": None, "n": 0}
        self.regressor: TreeEnsemble | None = None
        self.regressor_sigma: dict[str, float] = {}
        self.regressor_base_ops: list[str] = []   # ops whose unseen keys the pooled fit predicts better alone
        self.regressor_rows = 0
        self.n_rows = 0
        self.last_measured_at = 0.0
        self.ops: set[str] = set()

    @property
    def clock_hz(self) -> int:
        return int(self.fields["clock_hz"]) or 1

    def label(self) -> str:
        f = self.fields
        extra = f"{f['board_kind']}" + (f" model {f['board_model_version']}" if f["board_model_version"] else "")
        return (f"{f['target']} {f['runtime_variant']} {f['float_abi']}-float {f['opt_level']} "
                f"{f['clock_hz'] / 1e6:g} MHz, placement {f['placement'] or '-'}, {extra}, runtime "
                f"{f['runtime'] or '-'}, firmware {f['firmware_build_id'][:12] or '-'}")

    def kernel_for(self, op: str, dtype: str) -> str:
        seen = self.kernels.get(f"{op}|{dtype}")
        return max(seen, key=seen.get) if seen else ""


def _rows(measurements) -> tuple[list[dict], list[dict] | None]:
    """Layer rows (and model rows, if the input has them) from a store, a DataFrame or an iterable of dicts."""
    from costmodel.store import MeasurementStore

    if isinstance(measurements, MeasurementStore):
        return measurements.layers().to_dict("records"), measurements.models().to_dict("records")
    if hasattr(measurements, "to_dict") and hasattr(measurements, "columns"):
        return measurements.to_dict("records"), None
    if isinstance(measurements, Mapping):
        return [dict(measurements)], None
    return [dict(r) for r in measurements], None


def _cycles(row: Mapping) -> float | None:
    c = row.get("cycles")
    if c is not None and not (isinstance(c, float) and math.isnan(c)) and c != "" and float(c) > 0:
        return float(c)
    lat, clock = row.get("latency_s"), row.get("clock_hz")
    if lat and clock and not (isinstance(lat, float) and math.isnan(lat)):
        return float(lat) * float(clock)
    return None


class LatencyModel(RegressorMixin, BaseEstimator):
    """Per-layer δ table + regressor (see the module docstring).

    Parameters
    ----------
    min_rows : rows a table key needs before the table predicts it (else the regressor does).
    min_dof : rows a table key needs beyond the coefficients it fits (its residual degrees of freedom).
    n_estimators, max_depth, learning_rate : the regressor's gradient-boosted trees.
    min_regressor_rows : rows a context needs for a regressor.
    uncertainty_floor : the smallest relative uncertainty a prediction states.
    inferior_threshold : default relative gain above which a candidate is known-inferior.
    random_state : seed of the regressor's subsampling.
    """

    def __init__(self, min_rows: int = 6, min_dof: int = 3, n_estimators: int = 200, max_depth: int = 4, learning_rate: float = 0.08,
                 min_regressor_rows: int = 20, uncertainty_floor: float = 0.005, inferior_threshold: float = 0.02,
                 random_state: int = 0):
        self.min_rows = min_rows
        self.min_dof = min_dof
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_regressor_rows = min_regressor_rows
        self.uncertainty_floor = uncertainty_floor
        self.inferior_threshold = inferior_threshold
        self.random_state = random_state

    # --- fitting ---------------------------------------------------------------------------------------------

    def fit(self, X, y=None, *, models=None) -> LatencyModel:
        """Fit from measured layer rows ``X`` (a DataFrame, dicts, or a :class:`~costmodel.store.MeasurementStore`,
        which also gives the model rows); ``y`` (latency_s per row) overrides the rows' latency. ``models``: model
        rows (``total_cycles``, ``layer_cycles``, ``n_layers`` and context) for the model-level overhead."""
        self.contexts_ = {}
        self.n_rows_ = 0
        self._cache = {}
        self._resolved = {}
        self._add(X, y, models, refit_regressor=True)
        if not self.contexts_:
            raise CostModelError("no measured rows to fit (each row needs op, macs, and cycles or latency_s with "
                                 "clock_hz)")
        self.fitted_at_ = time.time()
        return self

    def partial_fit(self, X, y=None, *, models=None) -> LatencyModel:
        """Add rows to a fitted model, cheaply: the table's sufficient statistics and the overhead are updated and
        the touched keys re-solved; a context's regressor is fitted here only when it has none (a full
        :meth:`fit` on all rows refits them)."""
        if not hasattr(self, "contexts_"):
            return self.fit(X, y, models=models)
        self._cache = {}
        self._resolved = {}
        self._add(X, y, models, refit_regressor=False)
        return self

    def _add(self, X, y, models, refit_regressor: bool) -> None:
        rows, store_models = _rows(X)
        models = models if models is not None else store_models
        if y is not None:
            y = np.asarray(y, dtype=float)
            if len(y) != len(rows):
                raise CostModelError(f"y has {len(y)} values for {len(rows)} rows")
            for row, value in zip(rows, y):
                row["latency_s"], row["cycles"] = float(value), None
        touched: dict[tuple, list[dict]] = defaultdict(list)
        for row in rows:
            cycles = _cycles(row)
            if cycles is None or not row.get("op"):
                continue
            row["cycles"] = cycles
            ctx_values = F.context_of(row)
            ctx = self.contexts_.get(ctx_values)
            if ctx is None:
                ctx = self.contexts_[ctx_values] = _Context(ctx_values)
            touched[ctx_values].append(row)
            self._add_row(ctx, row, cycles)
        for ctx_values, ctx_rows in touched.items():
            ctx = self.contexts_[ctx_values]
            self._rebuild(ctx)
            if refit_regressor or ctx.regressor is None:
                self._fit_regressor(ctx, ctx_rows)
        if models is not None:
            rows_m = models.to_dict("records") if hasattr(models, "to_dict") else list(models)
            for m in rows_m:
                ctx = self.contexts_.get(F.context_of(m))
                if ctx is None or not m.get("total_cycles") or not m.get("layer_cycles"):
                    continue
                over = float(m["total_cycles"]) - float(m["layer_cycles"])
                x = np.array([1.0, float(m.get("n_layers") or 0)])
                # unweighted: the overhead is small and can be ~0
                ctx.overhead.gram += np.outer(x, x)
                ctx.overhead.rhs += over * x
                ctx.overhead.yy += over * over
                ctx.overhead.n += 1
            for ctx in self.contexts_.values():
                if ctx.overhead.n:
                    fit = _nnls_gram(ctx.overhead.gram, ctx.overhead.rhs, ctx.overhead.yy, ctx.overhead.n)
                    ctx.overhead_fit = {"coef": fit["coef"], "spread": fit["spread"], "n": ctx.overhead.n}
        self.n_rows_ = sum(c.n_rows for c in self.contexts_.values())

    def _add_row(self, ctx: _Context, row: dict, cycles: float) -> None:
        op = str(row["op"])
        key = F.table_key(row)
        terms = F.work_terms(row)
        names = tuple(terms)
        x = np.fromiter(terms.values(), float, len(terms))
        macs = float(row.get("macs") or 0)
        entry = ctx.table.get(key)
        if entry is None:
            entry = ctx.table[key] = TableEntry(key, names, _Stats(len(names)))
        entry.stats.add(x, cycles, macs)
        kern = ctx.kernels[f"{op}|{row.get('dtype', '')}"]
        kern[key[1]] = kern.get(key[1], 0) + 1
        energy, latency = row.get("energy_j"), row.get("latency_s") or cycles / ctx.clock_hz
        if row.get("energy_source") == "monitor" and energy:
            ctx.energy["monitor_j"] += float(energy)
            ctx.energy["monitor_s"] += float(latency)
            e = ctx.energy["by_key"].setdefault(F.key_text(key), [0.0, 0.0])
            e[0] += float(energy)
            e[1] += float(latency)
        ctx.n_rows += 1
        ctx.ops.add(op)
        measured_at = row.get("measured_at") or 0
        if measured_at and not (isinstance(measured_at, float) and math.isnan(measured_at)):
            ctx.last_measured_at = max(ctx.last_measured_at, float(measured_at))

    @staticmethod
    def _rebuild(ctx: _Context) -> None:
        """Sum the coarser levels from the table and solve all three, coarse to fine."""
        ctx.coarse, ctx.pooled = {}, {}
        for key, entry in ctx.table.items():
            for level, k in ((ctx.coarse, key[:-1]), (ctx.pooled, key[:2])):
                agg = level.get(k)
                if agg is None:
                    agg = level[k] = TableEntry(k, entry.terms, _Stats(len(entry.terms)))
                agg.stats.merge(entry.stats)
        for entry in ctx.pooled.values():
            entry.refit()
        for k, entry in ctx.coarse.items():
            entry.refit(ctx.pooled.get(k[:2]))
        for k, entry in ctx.table.items():
            entry.refit(ctx.coarse.get(k[:-1]))

    def _usable(self, entry: TableEntry) -> bool:
        """A key the table predicts: at least ``min_rows`` rows, and at least ``min_dof`` rows more than the
        coefficients it fits (a key with about as many rows as terms interpolates its rows, its spread says
        nothing, and it extrapolates badly to other shapes: the regressor, which learns across keys, does)."""
        return entry.n >= self.min_rows and entry.spread is not None and \
            entry.n - _fitted_directions(entry) >= self.min_dof

    def _fit_regressor(self, ctx: _Context, rows: list[dict]) -> None:
        if len(rows) < self.min_regressor_rows:
            return
        from sklearn.ensemble import GradientBoostingRegressor

        x = np.array([_regressor_x(r) for r in rows])
        base = np.array([self._base(ctx, r) for r in rows])
        y = np.array([r["cycles"] for r in rows])
        ok = base > 0
        x, target = x[ok], np.log(y[ok] / base[ok])
        ops = [r["op"] for r, good in zip(rows, ok) if good]
        keys = [F.table_key(r) for r, good in zip(rows, ok) if good]
        if len(target) < self.min_regressor_rows:
            return

        def make():
            return GradientBoostingRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                             learning_rate=self.learning_rate, subsample=0.8,
                                             random_state=self.random_state)

        # The regressor answers the keys the table cannot, so it is judged on keys it has not seen (whole keys
        # held out), not on other rows of keys it was fitted on, which understates its error (a 5x5 conv of 2
        # filters: +31 % against a stated 3 %). Per op, where the trees do no better on those keys than the
        # pooled fit alone, the pooled fit answers (trees extrapolate a ratio learnt on other shapes).
        rng = np.random.default_rng(self.random_state)
        distinct = sorted(set(keys))
        held_keys = {k for k, u in zip(distinct, rng.random(len(distinct))) if u < 0.2}
        held = np.array([k in held_keys for k in keys])
        sigma: dict[str, float] = {}
        base_ops: list[str] = []
        if held.sum() >= 5 and (~held).sum() >= self.min_regressor_rows:
            trial = TreeEnsemble.from_sklearn(make().fit(x[~held], target[~held]))
            err = np.abs(np.expm1(trial.predict(x[held]) - target[held]))
            err_base = np.abs(np.expm1(-target[held]))
            held_ops = np.array([op for op, h in zip(ops, held) if h])
            for op in sorted(set(held_ops)):
                e, eb = err[held_ops == op], err_base[held_ops == op]
                rms, rms_base = float(np.sqrt(np.mean(e ** 2))), float(np.sqrt(np.mean(eb ** 2)))
                if rms_base <= rms:
                    base_ops.append(op)
                sigma[op] = min(rms, rms_base)
            sigma["*"] = float(np.sqrt(np.mean(err ** 2)))
        ctx.regressor = TreeEnsemble.from_sklearn(make().fit(x, target))
        ctx.regressor_sigma = sigma or {"*": 0.25}
        ctx.regressor_base_ops = base_ops
        ctx.regressor_rows = len(target)

    def _base(self, ctx: _Context, row: Mapping, terms: Mapping | None = None) -> float:
        entry = ctx.pooled.get((str(row["op"]), str(row.get("kernel") or "")))
        if entry is None:
            return 0.0
        x = np.fromiter((terms or F.work_terms(row)).values(), float)
        return entry.predict(x) if len(x) == len(entry.coef) else 0.0

    # --- contexts ----------------------------------------------------------------------------------------------

    def _check(self) -> None:
        if "contexts_" in self.__dict__ and "_cache" in self.__dict__:
            return  # the hot path: predictions of a fitted model
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "contexts_")
        self._cache, self._resolved = {}, {}

    def contexts(self) -> list[dict]:
        """The fitted contexts: their fields, row counts and when they were last measured."""
        self._check()
        return [{**c.fields, "n_rows": c.n_rows, "keys": len(c.table), "last_measured_at": c.last_measured_at,
                 "regressor": c.regressor is not None} for c in self.contexts_.values()]

    def resolve_context(self, target: str | None = None, **settings) -> dict:
        """The context a prediction for ``target`` and ``settings`` (any context column) uses."""
        return dict(self._context(target, settings).fields)

    def _context(self, target: str | None, settings: Mapping) -> _Context:
        self._check()
        want = {k: v for k, v in settings.items() if v not in (None, "")}
        if target:
            want["target"] = target
        cache_key = tuple(sorted(want.items()))
        hit = self._resolved.get(cache_key)
        if hit is not None:
            return hit
        unknown = set(want) - set(F.CONTEXT_COLUMNS)
        if unknown:
            raise CostModelError(f"unknown setting {', '.join(sorted(unknown))}")

        def matches(ctx: _Context, fields: Mapping) -> bool:
            return all(str(ctx.fields[k]).lower() == str(v).lower() if k != "clock_hz" else int(ctx.fields[k]) == int(v)
                       for k, v in fields.items())

        found = [c for c in self.contexts_.values() if matches(c, want)]
        if not found:
            targets = sorted({c.fields["target"] for c in self.contexts_.values()})
            asked = ", ".join(f"{k}={v}" for k, v in sorted(want.items()))
            raise UnknownKeyError(f"no measurements for {asked or 'any target'} in this model "
                                  f"(it has: {', '.join(targets)}); measure some with `costmodel sweep` and refit")
        defaults = self._defaults(want.get("target") or found[0].fields["target"])
        preferred = [c for c in found if matches(c, {k: v for k, v in defaults.items() if k not in want})]
        pool = preferred or found
        best = max(pool, key=lambda c: (c.last_measured_at, c.n_rows))
        self._resolved[cache_key] = best
        return best

    @staticmethod
    def _defaults(target: str) -> dict:
        """The settings a measurement uses when none are given (the agent's defaults for the board)."""
        from costmodel.boards import CatalogueError, get_board

        try:
            board = get_board(target)
        except CatalogueError:
            return {"opt_level": "-O2"}
        return {"runtime_variant": board.runtime_variants()[-1], "float_abi": board.float_abis()[0],
                "opt_level": "-O2"}

    # --- prediction --------------------------------------------------------------------------------------------

    def _power_w(self, ctx: _Context, key_text: str) -> tuple[float | None, str]:
        by_key = ctx.energy["by_key"].get(key_text)
        if by_key and by_key[1] > 0:
            return by_key[0] / by_key[1], "monitor"
        if ctx.energy["monitor_s"] > 0:
            return ctx.energy["monitor_j"] / ctx.energy["monitor_s"], "monitor"
        from costmodel.boards import CatalogueError, get_board

        try:
            return get_board(ctx.fields["target"]).power_mw * 1e-3, "power-model"
        except CatalogueError:
            return None, ""

    def _predict_row(self, ctx: _Context, row: dict) -> LayerPrediction:
        return self._predict_rows(ctx, [row])[0]

    def _predict_rows(self, ctx: _Context, rows: Sequence[dict]) -> list[LayerPrediction]:
        """Predictions of layer rows of one context; the rows the table cannot answer go to the regressor
        together (one evaluation of the trees)."""
        pending = []   # (position, row, key, base, n_rows, work terms)
        out: list = [None] * len(rows)
        for i, row in enumerate(rows):
            op = str(row.get("op", ""))
            if not row.get("kernel"):
                row = {**row, "kernel": ctx.kernel_for(op, str(row.get("dtype", "")))}
            key = F.table_key(row)
            terms = F.work_terms(row)
            x = np.fromiter(terms.values(), float, len(terms))
            entry = ctx.table.get(key)
            if entry is not None and self._usable(entry):
                out[i] = (row, key, entry.predict(x), entry.relative_uncertainty(x, self.uncertainty_floor), "table",
                          entry.n)
                continue
            if op not in ctx.ops:
                raise UnknownKeyError(f"layer {row.get('layer_index', '?')} ({op}, {row.get('dtype', '')}): no "
                                      f"measurements of this op for {ctx.fields['target']} "
                                      f"{ctx.fields['runtime_variant']}; add a sweep of it and refit")
            base = self._base(ctx, row, terms)
            n_rows = entry.n if entry is not None else 0
            if ctx.regressor is not None and base > 0:
                pending.append((i, row, key, base, n_rows, terms))
            elif entry is not None and entry.spread is not None:  # a thin key beats nothing
                out[i] = (row, key, entry.predict(x), max(0.25, entry.relative_uncertainty(x, 0.0)), "table", n_rows)
            elif base > 0:
                out[i] = (row, key, base, 0.5, "regressor", n_rows)
            else:
                raise UnknownKeyError(f"layer {row.get('layer_index', '?')} ({F.key_text(key)}): too few rows for "
                                      f"{ctx.fields['target']} to predict it")
        if pending:
            ratios = np.exp(ctx.regressor.predict(np.array([_regressor_x(r, t) for _, r, _, _, _, t in pending])))
            sigma = ctx.regressor_sigma
            for (i, row, key, base, n_rows, _), ratio in zip(pending, ratios):
                unc = max(self.uncertainty_floor, sigma.get(str(row["op"]), sigma.get("*", 0.25)))
                if str(row["op"]) in ctx.regressor_base_ops:
                    ratio = 1.0
                out[i] = (row, key, base * float(ratio), unc, "regressor", n_rows)
        preds = []
        for row, key, cycles, unc, source, n_rows in out:
            ktext = F.key_text(key)
            cycles = max(float(cycles), 0.0)
            latency = cycles / ctx.clock_hz
            power, _ = self._power_w(ctx, ktext)
            preds.append(LayerPrediction(
                index=int(row.get("layer_index", 0) or 0), name=str(row.get("layer_name", "")), op=str(row["op"]),
                kernel=key[1], macs=int(row.get("macs") or 0), cycles=cycles, latency_s=latency,
                energy_j=latency * power if power is not None else None, source=source, key=ktext, n_rows=n_rows,
                uncertainty=float(unc), row=row))
        return preds

    def predict_layers(self, X, *, target: str | None = None, **settings) -> list[LayerPrediction]:
        """Per-layer predictions of layer rows (their own context columns, else ``target``/``settings``)."""
        self._check()
        rows, _ = _rows(X)
        groups: dict[int, tuple[_Context, list]] = {}
        for i, row in enumerate(rows):
            given = {k: row.get(k) for k in F.CONTEXT_COLUMNS if row.get(k) not in (None, "", 0) and
                     not (isinstance(row.get(k), float) and math.isnan(row.get(k)))}
            ctx = self._context(given.pop("target", target), {**settings, **given})
            groups.setdefault(id(ctx), (ctx, []))[1].append(i)
        out: list = [None] * len(rows)
        for ctx, idx in groups.values():
            for i, p in zip(idx, self._predict_rows(ctx, [rows[i] for i in idx])):
                out[i] = p
        return out

    def predict(self, X, *, target: str | None = None, **settings) -> np.ndarray:
        """Predicted latency in seconds of each layer row."""
        return np.array([p.latency_s for p in self.predict_layers(X, target=target, **settings)])

    def _as_analysis(self, model) -> ModelAnalysis:
        if isinstance(model, ModelAnalysis):
            return model
        if isinstance(model, Graph):
            return analyze(model)
        if isinstance(model, (str, Path, bytes, bytearray)):
            from costmodel.tflite import read_model

            return analyze(read_model(model))
        raise CostModelError(f"cannot predict a {type(model).__name__}: give a ModelAnalysis, a Graph or a .tflite")

    def predict_model(self, model, *, target: str | None = None, **settings) -> ModelPrediction:
        """Predict a whole model (a :class:`~costmodel.analysis.ModelAnalysis`, a :class:`~costmodel.graph.Graph`,
        or a .tflite path / bytes) on ``target`` with ``settings`` (``runtime_variant``, ``float_abi``,
        ``opt_level``, ``placement``, ... : any context column; defaults as the agent's)."""
        analysis = self._as_analysis(model)
        ctx = self._context(target or analysis.target, settings)
        cache = self._cache.setdefault(ctx.values, {})
        layers, missing = [], []
        for layer in analysis.layers:
            sig = (layer.op, layer.dtype, layer.macs, repr(layer.input_shapes), repr(layer.output_shapes),
                   repr(layer.features), layer.index, layer.name)
            p = cache.get(sig)
            if p is None:
                missing.append((len(layers), sig, F.layer_row(layer)))
            layers.append(p)
        if missing:
            for (i, sig, _), p in zip(missing, self._predict_rows(ctx, [row for _, _, row in missing])):
                layers[i] = cache[sig] = p
        return self._combine(analysis.name, ctx, layers)

    def predict_rows_model(self, rows: Sequence[Mapping], *, name: str = "model", target: str | None = None,
                           **settings) -> ModelPrediction:
        """Predict a whole model given as layer rows (e.g. from the store)."""
        self._check()
        rows = [dict(r) for r in rows]
        given = {k: rows[0].get(k) for k in F.CONTEXT_COLUMNS if rows and rows[0].get(k) not in (None, "", 0)}
        ctx = self._context(given.pop("target", target), {**settings, **given})
        return self._combine(name, ctx, [self._predict_row(ctx, r) for r in rows])

    def _combine(self, name: str, ctx: _Context, layers: list[LayerPrediction]) -> ModelPrediction:
        coef = ctx.overhead_fit["coef"]
        overhead = coef[0] + coef[1] * len(layers)
        cycles = sum(p.cycles for p in layers) + overhead
        # errors of one key are correlated (the same coefficients), different keys independent
        by_key: dict[str, float] = defaultdict(float)
        for p in layers:
            by_key[p.key] += p.cycles * p.uncertainty
        over_sd = ctx.overhead_fit.get("spread") or 0.0
        sd = math.sqrt(sum(v * v for v in by_key.values()) + over_sd * over_sd)
        energies = [p.energy_j for p in layers]
        power, source = self._power_w(ctx, "")
        energy = None
        if all(e is not None for e in energies):
            energy = sum(energies) + (overhead / ctx.clock_hz) * (power or 0.0)
        return ModelPrediction(name=name, context=dict(ctx.fields), layers=layers, cycles=cycles,
                               latency_s=cycles / ctx.clock_hz, energy_j=energy, energy_source=source,
                               overhead_s=overhead / ctx.clock_hz, uncertainty_s=sd / ctx.clock_hz)

    # --- scoring -----------------------------------------------------------------------------------------------

    def score(self, X, y=None, sample_weight=None) -> float:
        """R² of the predicted against the measured layer latency (``y``, or the rows' ``latency_s``)."""
        from sklearn.metrics import r2_score

        rows, _ = _rows(X)
        if y is None:
            y = [r.get("latency_s") or (_cycles(r) or 0) / float(r.get("clock_hz") or 1) for r in rows]
        return float(r2_score(np.asarray(y, dtype=float), self.predict(rows), sample_weight=sample_weight))

    def errors(self, X, models=None) -> dict:
        """Absolute percentage errors of layers (and of whole models, given model rows with their layers in
        ``X``): median, p95, p99, and per source."""
        rows, store_models = _rows(X)
        models = models if models is not None else store_models
        preds = self.predict_layers(rows)
        measured = np.array([_cycles(r) for r in rows], dtype=float)
        predicted = np.array([p.cycles for p in preds])
        ape = np.abs(predicted - measured) / measured * 100
        out = {"layers": _summary(ape), "by_source": {s: _summary(ape[[p.source == s for p in preds]])
                                                      for s in sorted({p.source for p in preds})}}
        if models is not None:
            model_rows = models.to_dict("records") if hasattr(models, "to_dict") else list(models)
            by_id: dict[str, list] = defaultdict(list)
            for r, p in zip(rows, preds):
                by_id[r.get("measurement_id")].append(p)
            m_ape = []
            for m in model_rows:
                layer_preds = by_id.get(m["measurement_id"])
                if not layer_preds or len(layer_preds) != int(m.get("n_layers") or len(layer_preds)):
                    continue
                ctx = self._context(m.get("target"), {k: m.get(k) for k in F.CONTEXT_COLUMNS if k != "target"})
                pred = self._combine(m.get("model_name", ""), ctx, sorted(layer_preds, key=lambda p: p.index))
                m_ape.append(abs(pred.cycles - float(m["total_cycles"])) / float(m["total_cycles"]) * 100)
            out["models"] = _summary(np.array(m_ape))
        return out

    # --- the table ---------------------------------------------------------------------------------------------

    def table(self, target: str | None = None, op: str | None = None, **settings):
        """The δ table as a DataFrame: per context and key its rows, overhead, δ and the other coefficients,
        spread and effective δ (Σ latency / Σ MACs)."""
        import pandas as pd

        self._check()
        contexts = [self._context(target, settings)] if (target or settings) else list(self.contexts_.values())
        records = []
        for ctx in contexts:
            for key, e in sorted(ctx.table.items(), key=lambda kv: tuple(map(str, kv[0]))):
                if op and key[0] != op:
                    continue
                rec = {**ctx.fields, **dict(zip(F.KEY_FIELDS, key)), "key": F.key_text(key), "n": e.n,
                       "overhead_cycles": e.coefficient("const"), "delta_cycles_per_mac": e.coefficient("macs"),
                       "delta_ns_per_mac": e.coefficient("macs") / ctx.clock_hz * 1e9,
                       "effective_delta_ns_per_mac": (e.stats.sum_cycles / e.stats.sum_macs / ctx.clock_hz * 1e9
                                                      if e.stats.sum_macs else None),
                       "spread": e.spread, "macs_min": e.stats.macs_min, "macs_max": e.stats.macs_max,
                       "usable": self._usable(e)}
                for term in ("outputs", "columns", "pixels", "inputs", "runs", "border", "border_taps", "tail",
                             "channels", "weights", "tables", "fallback", "fallback_pixels"):
                    rec[f"cycles_per_{term[:-1] if term.endswith('s') else term}"] = e.coefficient(term)
                records.append(rec)
        return pd.DataFrame(records)

    def table_json(self, **selection) -> list[dict]:
        frame = self.table(**selection)
        return json.loads(frame.to_json(orient="records"))

    # --- known-inferior parametrizations -----------------------------------------------------------------------

    def alternatives(self, model_or_layer, *, target: str | None = None, max_step: int = 4, keep: str = "macs",
                     threshold: float | None = None, **settings) -> list:
        """Nearby parametrizations the table predicts faster while keeping at least the same MACs (``keep="macs"``)
        or parameters (``keep="params"``), best first: a list of :class:`costmodel.alternatives.Alternative`.

        ``model_or_layer``: a model (analysis, graph, .tflite) — a layer's filters / units change by ±1..``max_step``
        (which changes its consumer's input channels or length), its kernel size or its stride; or a
        :class:`~costmodel.features.LayerSpec` (or a layer row) — its input channels / length, output channels,
        kernel size and stride change. ``threshold`` keeps only alternatives with a larger relative gain."""
        from costmodel.alternatives import find_alternatives

        return find_alternatives(self, model_or_layer, target=target, max_step=max_step, keep=keep,
                                 threshold=threshold, settings=settings)

    def is_inferior(self, model_or_layer, *, target: str | None = None, threshold: float | None = None,
                    confidence: float = 1.0, **kw) -> bool:
        """Known-inferior: an alternative exists whose gain, less ``confidence`` x its uncertainty, is at least
        ``threshold`` (default ``inferior_threshold``)."""
        threshold = self.inferior_threshold if threshold is None else threshold
        for alt in self.alternatives(model_or_layer, target=target, **kw):
            if alt.gain - confidence * alt.gain_uncertainty >= threshold:
                return True
        return False

    # --- files ---------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        self._check()
        contexts = []
        for ctx in self.contexts_.values():
            contexts.append({
                "context": ctx.fields, "n_rows": ctx.n_rows, "last_measured_at": ctx.last_measured_at,
                "ops": sorted(ctx.ops), "kernels": {k: dict(v) for k, v in ctx.kernels.items()},
                "energy": ctx.energy, "overhead": {"stats": ctx.overhead.to_dict(), "fit": ctx.overhead_fit},
                "table": [e.to_dict() for e in ctx.table.values()],
                "regressor": None if ctx.regressor is None else {
                    "features": list(REGRESSOR_FEATURES), "op_codes": list(OP_CODES), "dtype_codes": list(DTYPE_CODES),
                    "rows": ctx.regressor_rows, "sigma": ctx.regressor_sigma, "base_ops": ctx.regressor_base_ops,
                    "trees": ctx.regressor.to_dict()}})
        return {"format": FILE_FORMAT, "version": FILE_VERSION, "params": self.get_params(),
                "fitted_at": getattr(self, "fitted_at_", 0.0), "contexts": contexts}

    def save(self, path: str | Path) -> Path:
        """Write the model as versioned JSON (no pickle); written to a temporary file and renamed."""
        path = Path(path)
        data = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(data + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "model") -> LatencyModel:
        if not isinstance(data, Mapping) or data.get("format") != FILE_FORMAT:
            raise ModelFileError(f"{where}: not a latency model file (no \"format\": \"{FILE_FORMAT}\")")
        if data.get("version") != FILE_VERSION:
            raise ModelFileError(f"{where}: latency model file version {data.get('version')!r}, this version reads "
                                 f"{FILE_VERSION}; refit with `costmodel fit`")
        try:
            model = cls(**data["params"])
            model.contexts_ = {}
            for c in data["contexts"]:
                ctx = _Context(F.context_of(c["context"]))
                ctx.n_rows, ctx.last_measured_at = int(c["n_rows"]), float(c["last_measured_at"])
                ctx.ops = set(c["ops"])
                ctx.kernels = defaultdict(dict, {k: dict(v) for k, v in c["kernels"].items()})
                ctx.energy = c["energy"]
                ctx.overhead = _Stats.from_dict(c["overhead"]["stats"])
                ctx.overhead_fit = c["overhead"]["fit"]
                for e in c["table"]:
                    entry = TableEntry.from_dict(e)
                    ctx.table[entry.key] = entry
                model._rebuild(ctx)
                reg = c.get("regressor")
                if reg:
                    if list(reg["features"]) != list(REGRESSOR_FEATURES) or list(reg["op_codes"]) != list(OP_CODES):
                        raise ModelFileError(f"{where}: regressor features differ from this version's; refit")
                    ctx.regressor = TreeEnsemble.from_dict(reg["trees"])
                    ctx.regressor_sigma, ctx.regressor_rows = dict(reg["sigma"]), int(reg["rows"])
                    ctx.regressor_base_ops = list(reg.get("base_ops", []))
                model.contexts_[ctx.values] = ctx
            model.n_rows_ = sum(c.n_rows for c in model.contexts_.values())
            model.fitted_at_ = float(data.get("fitted_at", 0.0))
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"{where}: corrupt latency model file ({type(exc).__name__}: {exc})") from None
        model._cache, model._resolved = {}, {}
        return model

    @classmethod
    def load(cls, path: str | Path) -> LatencyModel:
        """Read a model written by :meth:`save`; :class:`ModelFileError` for a missing, corrupt or incompatible file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: corrupt latency model file ({str(exc).splitlines()[0]})") from None
        return cls.from_dict(data, str(path))


def _summary(ape: np.ndarray) -> dict:
    if ape.size == 0:
        return {"n": 0}
    return {"n": int(ape.size), "median": float(np.median(ape)), "p95": float(np.percentile(ape, 95)),
            "p99": float(np.percentile(ape, 99)), "max": float(np.max(ape)),
            "within_5pct": float(np.mean(ape <= 5.0))}


def load_model(path: str | Path) -> LatencyModel:
    """Load a fitted :class:`LatencyModel` from a file written by :meth:`LatencyModel.save`."""
    return LatencyModel.load(path)
