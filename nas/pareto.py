"""Pareto fronts and their hypervolume (the quality figure of a multi-objective search)."""

from __future__ import annotations

from typing import Sequence


def _as_min(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[tuple[float, ...]]:
    return [tuple(-v if d == "maximize" else v for v, d in zip(p, directions)) for p in points]


def covers(q: Sequence[float], p: Sequence[float], directions: Sequence[str]) -> bool:
    """``q`` is at least as good as ``p`` in every objective (weak dominance: equal points cover each other)."""
    return all(a >= b if d == "maximize" else a <= b for a, b, d in zip(q, p, directions))


def front_indices(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points."""
    minimize = ["minimize"] * len(directions)
    pts = _as_min(points, directions)
    out = []
    for i, p in enumerate(pts):
        dominated = any(covers(q, p, minimize) and q != p for j, q in enumerate(pts) if j != i)
        if not dominated:
            out.append(i)
    return out


def _hv(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    """Hypervolume dominated by ``points`` (minimisation) up to ``ref``, by slicing the first objective."""
    points = [p for p in points if all(a < r for a, r in zip(p, ref))]
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    points.sort()
    volume = 0.0
    for i, p in enumerate(points):
        upper = points[i + 1][0] if i + 1 < len(points) else ref[0]
        if upper > p[0]:
            volume += (upper - p[0]) * _hv([q[1:] for q in points[: i + 1]], ref[1:])
    return volume


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float], directions: Sequence[str]) -> float:
    """The hypervolume of ``points`` against ``reference`` (both in the objectives' own directions)."""
    pts = _as_min(points, directions)
    ref = _as_min([reference], directions)[0]
    front = [pts[i] for i in front_indices(pts, ["minimize"] * len(ref))]
    return _hv(front, tuple(ref))
