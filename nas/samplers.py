"""Optuna samplers by name: ``tpe`` (default), ``nsga2``, ``nsga3``, ``gp``, ``random``, ``qmc``.

Constraints reach every sampler through ``Trial.set_constraint`` (Optuna 5's replacement of
``constraints_func``): infeasible trials, those the cost model pruned over a budget included, are ranked
below feasible ones.
"""

from __future__ import annotations

import importlib.util
import warnings

import optuna

SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random", "qmc")


class SamplerError(ValueError):
    """An unknown sampler, or one this machine cannot run."""


def check_sampler(name: str, objectives: int) -> str:
    name = name.lower()
    if name not in SAMPLERS:
        raise SamplerError(f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})")
    if name == "gp" and importlib.util.find_spec("torch") is None:
        raise SamplerError("sampler gp (Optuna's GPSampler) needs PyTorch, which is not installed; use tpe or nsga2")
    if name == "nsga3" and objectives < 2:
        raise SamplerError("sampler nsga3 is for two or more objectives")
    return name


def make_sampler(name: str, seed: int | None = None, *, objectives: int = 1,
                 population: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler ``name``, seeded; ``population`` for the genetic samplers (default: Optuna's)."""
    name = check_sampler(name, objectives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # multivariate + group: the spaces are define-by-run with conditional blocks; constant_liar:
            # parallel trials (threads and workers) do not all sample the same point
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                              n_startup_trials=8)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **({"population_size": population} if population else {}))
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(seed=seed,
                                                  **({"population_size": population} if population else {}))
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.RandomSampler(seed=seed)
