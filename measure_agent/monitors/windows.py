"""Per-layer energy from a trace, cut at the energy pin's edges and aligned with the DWT cycle counts.

The firmware toggles the pin before every layer and once after the last (``num_layers + 1`` edges per run,
firmware/runtime/executor.c). A monitor samples the pin with its analog channels, so:

* an edge is known to one sample; its time inside the sample that straddles it comes from that sample's mean
  current, a mix of the current before and after the edge (the neighbouring samples): exact for a current that
  is constant on each side, and the layer's energy is then the integral between the two edge times;
* two edges closer than a sample may cancel (a layer shorter than a sample is invisible), so the seen edges
  are matched to the boundaries the cycle counts predict, each within ``tolerance_samples``; a seen edge at
  no predicted boundary is an error (the trace and the cycle counts disagree);
* a layer spanning fewer than ``min_samples`` samples, or one whose boundaries were not both seen, is not
  resolvable, and the result says so per layer: a short layer gets the run's mean energy per cycle x its
  cycles, a stretch of layers between two seen edges (the edges inside it cancelled) its measured energy
  spread over them by their cycles.

Times are in model cycles at the board's default clock (``clock_hz``), as the layer latencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import MonitorError, Trace

#: a layer shorter than this many samples is reported as not resolvable
MIN_SAMPLES = 4
#: a seen edge must lie this close (in samples) to the boundary the cycle counts predict
TOLERANCE_SAMPLES = 1.5


@dataclass(frozen=True)
class LayerEnergy:
    joules: float                 # mean over the runs
    resolved: bool                # measured between its own edges (else spread over its stretch by cycles)


@dataclass(frozen=True)
class TracedEnergy:
    monitor: str
    sample_rate_hz: float
    layers: list[LayerEnergy]
    run_j: float                  # one run, first edge to last, mean over the runs
    edges_seen: int
    edges_expected: int
    boundary_error_cycles: float  # the largest distance of a seen edge from its predicted boundary


def edge_times(trace: Trace) -> np.ndarray:
    """Times (s since the trace's start) of the pin's edges, refined inside the straddling sample."""
    pin = trace.pin.astype(np.int8)
    first = np.flatnonzero(np.diff(pin)) + 1             # first sample showing the new level
    p = trace.power_w
    times = []
    for i in first:
        s = i - 1                                        # the sample whose period holds the edge
        frac = 0.5
        if 1 <= s and s + 1 < len(p):
            before, mixed, after = p[s - 1], p[s], p[s + 1]
            if abs(before - after) > 1e-6 * max(abs(before), abs(after), 1e-12):
                frac = float(np.clip((mixed - after) / (before - after), 0.0, 1.0))
        times.append((s + frac) / trace.sample_rate_hz)
    return np.array(times)


def _cumulative(trace: Trace, t: float) -> float:
    """Joules from the trace's start to time ``t``; inside a straddling sample the part before an edge at ``t``
    is at the preceding sample's power (the mix the edge estimate assumed)."""
    p, rate = trace.power_w, trace.sample_rate_hz
    s = min(max(int(np.floor(t * rate)), 0), len(p) - 1)
    frac = t * rate - s
    whole = float(np.sum(p[:s])) / rate
    prev = p[s - 1] if s >= 1 else p[s]
    return whole + frac * float(prev) / rate


def layer_energy(trace: Trace, layer_cycles: list[int], run_cycles: int, runs: int, clock_hz: float, *,
                 min_samples: float = MIN_SAMPLES, tolerance_samples: float = TOLERANCE_SAMPLES) -> TracedEnergy:
    """Per-layer energy of ``runs`` runs of layers that took ``layer_cycles`` (a run ``run_cycles``)."""
    n = len(layer_cycles)
    if n == 0:
        raise MonitorError(f"{trace.monitor}: no layers to cut")
    seen = edge_times(trace) * clock_hz                  # in cycles
    expected = (n + 1) * runs
    if len(seen) == 0:
        raise MonitorError(f"{trace.monitor}: the trace shows no edge of the energy pin (expected {expected}): "
                           f"is the pin wired to the monitor's digital input?")
    per_sample = clock_hz / trace.sample_rate_hz
    tol = tolerance_samples * per_sample
    gap = max(0.0, (run_cycles - sum(layer_cycles)) / (n + 1))  # the executor's own cycles between two layers
    step = [c + gap for c in layer_cycles]
    # match the boundaries (run r, boundary k) in order to the seen edges, re-anchoring on every match
    flat: list[tuple[int, int, float | None]] = [(0, 0, float(seen[0]))]
    j, anchor, slack, worst = 1, float(seen[0]), 0.0, 0.0
    for r in range(runs):
        if r > 0:  # the shell's own work between two runs: the start edge is seen apart from the previous end,
            # or (shorter than a sample) both cancelled, and the next match may be up to a sample later
            if j < len(seen) and seen[j] - anchor < step[0] / 2:
                anchor, j, slack = float(seen[j]), j + 1, 0.0
                flat.append((r, 0, anchor))
            else:
                flat.append((r, 0, None))
                slack = per_sample
        for k in range(1, n + 1):
            anchor += step[k - 1]
            if j < len(seen) and abs(seen[j] - anchor) <= tol + slack:
                worst = max(worst, abs(seen[j] - anchor))
                anchor, j, slack = float(seen[j]), j + 1, 0.0
                flat.append((r, k, anchor))
            else:
                flat.append((r, k, None))
    if j < len(seen):
        raise MonitorError(f"{trace.monitor}: an edge of the energy pin at {seen[j] / clock_hz * 1e3:.3f} ms is at "
                           f"no layer boundary the cycle counts predict ({len(seen)} edges seen, {expected} "
                           f"expected): trace and cycles disagree")
    if flat[-1][2] is None:
        raise MonitorError(f"{trace.monitor}: the last edge of the last run is missing from the trace (was the "
                           f"monitor stopped after the run?)")
    known = [i for i, (_, _, t) in enumerate(flat) if t is not None]
    stretches = []                                       # (layers covered, joules, samples spanned)
    for a, b in zip(known[:-1], known[1:]):
        covered = [flat[i][1] for i in range(a, b) if flat[i][1] < n]  # layer k starts at boundary k
        if covered:  # (none: from one run's end to the next run's start, the shell's own work)
            joules = _cumulative(trace, flat[b][2] / clock_hz) - _cumulative(trace, flat[a][2] / clock_hz)
            stretches.append((covered, joules, (flat[b][2] - flat[a][2]) / per_sample))
    measured = [(c[0], j) for c, j, span in stretches if len(c) == 1 and span >= min_samples]
    per_cycle = (sum(j for _, j in measured) / sum(step[k] for k, _ in measured)) if measured else 0.0
    energy = np.zeros(n)
    resolved = np.ones(n, dtype=bool)
    for covered, joules, span in stretches:
        if len(covered) == 1 and span >= min_samples:
            energy[covered[0]] += joules
        elif len(covered) == 1:  # alone between its edges but too short: the run's energy per cycle x its cycles
            energy[covered[0]] += per_cycle * step[covered[0]] if measured else joules
            resolved[covered[0]] = False
        else:                    # edges cancelled inside: the stretch's energy spread by cycles
            weights = np.array([step[k] for k in covered], dtype=np.float64)
            for k, w in zip(covered, weights):
                energy[k] += joules * w / weights.sum()
                resolved[k] = False
    run_j = float(energy.sum()) / runs
    layers = [LayerEnergy(float(e / runs), bool(ok)) for e, ok in zip(energy, resolved)]
    return TracedEnergy(trace.monitor, trace.sample_rate_hz, layers, run_j, len(seen), expected, worst)
