"""Objectives and budgets of a search, from the command line.

Objectives: ``accuracy`` (maximised: int8 accuracy on the test split, host interpreter), ``latency``
(seconds on the board), ``energy`` (joules per inference), ``ram`` (the model's peak RAM: the runtime's
arena) and ``flash`` (the model's plan: weights, biases, quantization and layer tables), all minimised.
Budgets are constraints (Optuna's ``Trial.set_constraint``): a trial over a budget is infeasible, and the
constraint value is the excess relative to the budget, so constraints of different units compare.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

OBJECTIVES = {
    # name: (direction, unit for people, scale from SI to that unit)
    "accuracy": ("maximize", "%", 100.0),
    "latency": ("minimize", "ms", 1e3),
    "energy": ("minimize", "mJ", 1e3),
    "ram": ("minimize", "KiB", 1 / 1024),
    "flash": ("minimize", "KiB", 1 / 1024),
}
BUDGETS = ("latency", "energy", "flash", "ram")


class ObjectiveError(ValueError):
    """An unknown objective or a budget that cannot be read."""


@dataclass(frozen=True)
class Objective:
    name: str

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.name][0]

    @property
    def unit(self) -> str:
        return OBJECTIVES[self.name][1]

    def show(self, value: float | None) -> str:
        if value is None:
            return "-"
        scaled = value * OBJECTIVES[self.name][2]
        return f"{scaled:.1f} %" if self.name == "accuracy" else f"{scaled:.3g} {self.unit}"


def parse_objectives(text: str) -> list[Objective]:
    """``accuracy,latency,energy`` -> objectives; ObjectiveError naming an unknown one."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ObjectiveError("give at least one objective (e.g. --objectives accuracy,latency)")
    for n in names:
        if n not in OBJECTIVES:
            raise ObjectiveError(f"unknown objective {n!r} (known: {', '.join(OBJECTIVES)})")
    if len(set(names)) != len(names):
        raise ObjectiveError(f"objective given twice in {text!r}")
    return [Objective(n) for n in names]


_UNITS = {
    "latency": {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6},
    "energy": {"": 1.0, "j": 1.0, "mj": 1e-3, "uj": 1e-6, "µj": 1e-6},
    "flash": {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2},
}
_UNITS["ram"] = _UNITS["flash"]


def parse_quantity(kind: str, text: str | None) -> float | None:
    """A budget such as ``5ms``, ``0.2mJ``, ``64KiB`` in SI units (seconds, joules, bytes); None for none."""
    if text is None or str(text).strip() == "":
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-zµ]*)\s*", str(text).lower())
    units = _UNITS[kind]
    if not match or match.group(2) not in units:
        raise ObjectiveError(f"--max-{kind} {text!r}: expected a number with a unit ({', '.join(u for u in units if u)})")
    value = float(match.group(1)) * units[match.group(2)]
    if value <= 0:
        raise ObjectiveError(f"--max-{kind} must be positive")
    return value


@dataclass(frozen=True)
class Budgets:
    """Upper bounds (SI units; None: no budget)."""

    latency: float | None = None
    energy: float | None = None
    flash: float | None = None
    ram: float | None = None

    @classmethod
    def parse(cls, latency: str | None = None, energy: str | None = None, flash: str | None = None,
              ram: str | None = None) -> Budgets:
        return cls(parse_quantity("latency", latency), parse_quantity("energy", energy),
                   parse_quantity("flash", flash), parse_quantity("ram", ram))

    def to_dict(self) -> dict:
        return asdict(self)

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.to_dict().items() if v is not None}

    def excess(self, name: str, value: float | None) -> float | None:
        """Optuna's constraint value: (value - budget) / budget (<= 0: within), None without a budget."""
        budget = getattr(self, name)
        if budget is None or value is None:
            return None
        return (value - budget) / budget

    def over(self, values: dict[str, float | None]) -> list[str]:
        """The budgets ``values`` exceed."""
        return [k for k in BUDGETS if (e := self.excess(k, values.get(k))) is not None and e > 0]
