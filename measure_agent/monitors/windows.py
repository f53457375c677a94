"""Per-layer energy from a trace, cut at the energy pin's edges and aligned with the DWT cycle counts.

The firmware toggles the pin before every layer and once after the last (``num_layers + 1`` edges per run,
firmware/runtime/executor.c). A monitor samples the pin with its analog channels, so:

* an edge is known to one sample; its time inside the sample that straddles it comes from that sample's mean
  current, a mix of the current before and after the edge (the neighbouring samples): exact for a current that
  is constant on each side, and the layer's energy is then the integral between the two edge times;
* two edges closer than a sample may cancel (a layer shorter than a sample is invisible), so the seen edges
  are matched to the boundaries the cycle counts predict, each within ``tolerance_samples``; a seen edge at
  no predicted boundary is an error (the trace and the cycle counts disagree);
* a layer spanning fewer than ``min_samples`` samples, one whose boundaries were not both seen, or one whose
  edge has another boundary within two samples (its time would come from mixed samples) is not resolvable,
  and the result says so per layer: a short layer gets the run's mean energy per cycle x its
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
    # every boundary in order, (run, k): the cycles from the previous one, and whether the shell's own work between
    # two runs (not counted by the cycle counts) comes before it
    order = [(r, k) for r in range(runs) for k in range(n + 1)]
    delta = [0.0] + [step[k - 1] if k > 0 else 0.0 for _, k in order[1:]]
    after_gap = [False] + [k == 0 for _, k in order[1:]]
    times: list[float | None] = [None] * len(order)
    # each pair of edges closer than a sample cancels: between two seen edges an even number of boundaries is
    # unseen, so seen edge j + 1 is boundary cur + 1, cur + 3, ...: the candidate nearest to where the cycle
    # counts put it (the last seen edge: the run's end, if it can be)
    times[0], cur, anchor, worst = float(seen[0]), 0, float(seen[0]), 0.0
    for j in range(1, len(seen)):
        e, best = float(seen[j]), None
        predicted, gap = anchor, False
        for i in range(cur + 1, len(order)):
            predicted += delta[i]
            gap = gap or after_gap[i]
            slack = per_sample + step[0] / 2 if gap else 0.0
            if predicted - tol > e:
                break
            if (i - cur) % 2 == 1 and abs(e - predicted) <= tol + slack:
                if j == len(seen) - 1 and i == len(order) - 1:
                    best = (i, predicted, gap)
                    break
                if best is None or abs(e - predicted) < abs(e - best[1]):
                    best = (i, predicted, gap)
        if best is None:
            raise MonitorError(f"{trace.monitor}: an edge of the energy pin at {e / clock_hz * 1e3:.3f} ms is at no "
                               f"layer boundary the cycle counts predict ({len(seen)} edges seen, {expected} "
                               f"expected): trace and cycles disagree")
        cur, anchor = best[0], e
        times[cur] = e
        if not best[2]:
            worst = max(worst, abs(e - best[1]))
    flat = [(r, k, t) for (r, k), t in zip(order, times)]
    predicted_end = times[-1] is None
    if predicted_end:  # the last layers' edges all cancelled: the run's end where the cycle counts put it
        times[-1] = anchor + sum(delta[cur + 1:])
        flat[-1] = (*flat[-1][:2], times[-1])
    # where every boundary is (seen, or the cycles after the last seen one): an edge is clean when no other boundary
    # is within two samples of it, so that the samples its time comes from hold no other edge
    where, last = [], None
    for i, t in enumerate(times):
        last = t if t is not None else last + delta[i]
        where.append(last)
    clean = [all(abs(where[i] - where[m]) >= 2 * per_sample for m in (i - 1, i + 1) if 0 <= m < len(where))
             for i in range(len(where))]
    known = [i for i, (_, _, t) in enumerate(flat) if t is not None]
    stretches = []                                       # (layers covered, joules, samples spanned)
    for a, b in zip(known[:-1], known[1:]):
        covered = [flat[i][1] for i in range(a, b) if flat[i][1] < n]  # layer k starts at boundary k
        if covered:  # (none: from one run's end to the next run's start, the shell's own work)
            joules = _cumulative(trace, flat[b][2] / clock_hz) - _cumulative(trace, flat[a][2] / clock_hz)
            cut = predicted_end and b == len(flat) - 1  # (its end is not an edge: spread, never measured)
            dirty = not (clean[a] and clean[b])          # (an edge shares its samples with another: spread)
            stretches.append((covered, joules, -1.0 if cut or dirty else (flat[b][2] - flat[a][2]) / per_sample))
    measured = [(c[0], j) for c, j, span in stretches if len(c) == 1 and span >= min_samples]
    per_cycle = (sum(j for _, j in measured) / sum(step[k] for k, _ in measured)) if measured else 0.0
    measured_j: list[list[float]] = [[] for _ in range(n)]   # per layer: the runs that measured it
    spread_j: list[list[float]] = [[] for _ in range(n)]     # and the others
    for covered, joules, span in stretches:
        if len(covered) == 1 and span >= min_samples:
            measured_j[covered[0]].append(joules)
        elif len(covered) == 1 and span >= 0:  # alone between its edges but too short: energy per cycle x cycles
            spread_j[covered[0]].append(per_cycle * step[covered[0]] if measured else joules)
        else:                                  # an edge not seen, or not clean: the stretch spread by cycles
            weights = np.array([step[k] for k in covered], dtype=np.float64)
            for k, w in zip(covered, weights):
                spread_j[k].append(joules * w / weights.sum())
    # a layer measured in some runs is their mean; one measured in none, the mean of its spread shares
    layers = [LayerEnergy(float(np.mean(m)), True) if m else LayerEnergy(float(np.mean(p)) if p else 0.0, False)
              for m, p in zip(measured_j, spread_j)]
    run_j = sum(layer.joules for layer in layers)
    return TracedEnergy(trace.monitor, trace.sample_rate_hz, layers, run_j, len(seen), expected, worst)
