"""How far the cost model's predictions have been off in this search, for pruning "with confidence".

A budget rule prunes a candidate when even an optimistic reading of its prediction is over the budget. Until
the search has seen ``min_residuals`` of its predictions measured, the optimistic reading is the prediction
less ``confidence`` of the model's own standard deviations, taken as at least ``floor`` of the prediction (a
young model's stated uncertainty is not checked yet: in the pruning benchmark a cold model of ten
measurements predicted 0.64 ms ± 3 % for candidates measured at 0.57 ms, and pruned them against a 0.6 ms
budget). From then on the model's standard deviation is
recalibrated by what happened (normalised split-conformal): each measured candidate gives a score
(measured - predicted) / sd, and the optimistic reading is prediction + s_k x sd with s_k the k-th lowest
score of the last ``window`` (k from the one-sided level of ``confidence``: the lowest one for a few dozen
scores). A candidate's own uncertainty still scales its bound; the search's experience sets how far to trust
it, whether the stated uncertainty is too wide (common early: the regressor's held-out error) or too narrow.

The model learns during the search, and the errors of a model of ten measurements say little of the model of
forty: once ``min_residuals`` scores come from models of at least half the measurements of the one that made
the prediction, only those count.
"""

from __future__ import annotations

import math
import threading
from collections import deque


class Calibration:
    def __init__(self, window: int = 30, min_residuals: int = 8, floor: float = 0.10):
        self.window, self.min_residuals, self.floor = window, min_residuals, floor
        self._scores: deque[tuple[float, int]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, predicted: float | None, sd: float | None, measured: float | None, model_measurements: int = 0
            ) -> None:
        """A prediction (with its standard deviation, by a model of ``model_measurements``) and what was measured."""
        if predicted and sd and measured and sd > 0 and math.isfinite((measured - predicted) / sd):
            with self._lock:
                self._scores.append(((measured - predicted) / sd, model_measurements))

    @property
    def residuals(self) -> int:
        return len(self._scores)

    def lower(self, predicted: float, sd: float, confidence: float, model_measurements: int = 0
              ) -> tuple[float, str]:
        """An optimistic (low) reading of a prediction by a model of ``model_measurements`` (0: not known), and how
        it was found (for the trial's reason)."""
        with self._lock:
            window = list(self._scores)
        scores = sorted(score for score, _ in window)
        of = ""
        if model_measurements:
            recent = sorted(score for score, n in window if 2 * n >= model_measurements)
            if len(recent) >= self.min_residuals and len(recent) < len(scores):
                scores, of = recent, f" by models of >= {(model_measurements + 1) // 2} measurements"
        if len(scores) < self.min_residuals:
            if sd < self.floor * abs(predicted):
                return predicted * (1 - confidence * self.floor), \
                    f"less {confidence:g} x {self.floor:.0%} (not calibrated yet)"
            return predicted - confidence * sd, f"less {confidence:g} sd"
        alpha = 0.5 * math.erfc(confidence / math.sqrt(2.0))       # one-sided level of `confidence` sd
        k = max(0, int(math.floor(alpha * (len(scores) + 1))) - 1)
        low = min(scores[k], 0.0)
        return predicted + low * sd, f"{low:+.2f} sd, the lowest of the last {len(scores)} measured{of}"
