"""How far the cost model's predictions have been off in this search, for pruning "with confidence".

A budget rule prunes a candidate when even an optimistic reading of its prediction is over the budget. Until
the search has seen ``min_residuals`` of its predictions measured, the optimistic reading is the prediction
less ``confidence`` of the model's own standard deviations, taken as at least ``floor`` of the prediction (a
young model's stated uncertainty is not checked yet: in the pruning benchmark a cold model of ten
measurements predicted 0.64 ms ± 3 % for candidates measured at 0.57 ms, and pruned them against a 0.6 ms
budget). From then on the model's standard deviation is
recalibrated by what happened (normalised split-conformal): each measured candidate gives a score
(measured - predicted) / sd, and the optimistic reading is prediction + s x sd with s a lower bound of the
next score at the one-sided level of ``confidence`` (2.3 % at 2 sd). With enough scores (n + 1 >= 1 / level:
43 at 2 sd) s is their k-th lowest (split-conformal); with fewer, the lowest of n covers only n / (n + 1) of
the next scores (89 % for 8), so s is the normal prediction bound mean - t(n-1) x stdev x sqrt(1 + 1/n), or
the lowest score if that is lower. A candidate's own uncertainty still scales its bound; the search's
experience sets how far to trust it, whether the stated uncertainty is too wide (common early: the
regressor's held-out error) or too narrow.

A candidate's stated sd can be far narrower than its error (a layer the model has rarely seen: 0.5 % stated,
6 % measured), which the sd-normalised scores cannot show for that candidate; so the same bound is also taken
of the relative errors (measured - predicted) / predicted, and the optimistic reading is the lower of the two.

The model learns during the search, and the errors of a model of ten measurements say little of the model of
forty: once ``min_residuals`` scores come from models of at least half the measurements of the one that made
the prediction, only those count.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from typing import NamedTuple

from scipy.stats import t as student_t


class _Score(NamedTuple):
    sd: float                  # (measured - predicted) / sd
    relative: float            # (measured - predicted) / predicted
    model_measurements: int    # of the model that predicted


class Calibration:
    def __init__(self, window: int = 30, min_residuals: int = 8, floor: float = 0.10):
        self.window, self.min_residuals, self.floor = window, min_residuals, floor
        self._scores: deque[_Score] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, predicted: float | None, sd: float | None, measured: float | None, model_measurements: int = 0
            ) -> None:
        """A prediction (with its standard deviation, by a model of ``model_measurements``) and what was measured."""
        if predicted and sd and measured and sd > 0 and math.isfinite((measured - predicted) / sd):
            with self._lock:
                self._scores.append(_Score((measured - predicted) / sd, (measured - predicted) / predicted,
                                           model_measurements))

    @property
    def residuals(self) -> int:
        return len(self._scores)

    def lower(self, predicted: float, sd: float, confidence: float, model_measurements: int = 0
              ) -> tuple[float, str]:
        """An optimistic (low) reading of a prediction by a model of ``model_measurements`` (0: not known), and how
        it was found (for the trial's reason)."""
        with self._lock:
            window = list(self._scores)
        of = ""
        if model_measurements:
            recent = [w for w in window if 2 * w.model_measurements >= model_measurements]
            if len(recent) >= self.min_residuals and len(recent) < len(window):
                window, of = recent, f" by models of >= {(model_measurements + 1) // 2} measurements"
        if len(window) < self.min_residuals:
            if sd < self.floor * abs(predicted):
                return predicted * (1 - confidence * self.floor), \
                    f"less {confidence:g} x {self.floor:.0%} (not calibrated yet)"
            return predicted - confidence * sd, f"less {confidence:g} sd"
        alpha = 0.5 * math.erfc(confidence / math.sqrt(2.0))       # one-sided level of `confidence` sd
        low_sd, method = lower_bound([w.sd for w in window], alpha)
        low_rel, _ = lower_bound([w.relative for w in window], alpha)
        by_sd, by_rel = predicted + low_sd * sd, predicted * (1 + low_rel)
        if by_rel < by_sd:
            return by_rel, f"{low_rel:+.1%}, {method} of the last {len(window)} relative errors{of}"
        return by_sd, f"{low_sd:+.2f} sd, {method} of the last {len(window)} measured{of}"


def lower_bound(scores: list[float], alpha: float) -> tuple[float, str]:
    """A lower bound, at one-sided level ``alpha``, of the next of a series of scores (never above 0), and
    the method: the k-th lowest score when there are enough for one at that level, else the normal
    prediction bound (or the lowest score, if lower)."""
    ordered = sorted(scores)
    n = len(ordered)
    k = int(math.floor(alpha * (n + 1)))
    if n < 2:                  # no spread to estimate (Calibration(min_residuals=1))
        return min(ordered[0], 0.0), "the lowest"
    if k >= 1:
        nth = {1: "", 2: "2nd ", 3: "3rd "}.get(k, f"{k}th ")
        return min(ordered[k - 1], 0.0), f"the {nth}lowest"
    mean, stdev = statistics.fmean(ordered), statistics.stdev(ordered)
    bound = mean - float(student_t.ppf(1.0 - alpha, n - 1)) * stdev * math.sqrt(1.0 + 1.0 / n)
    return min(bound, ordered[0], 0.0), "the normal prediction bound"
