"""Lowerings: one function per graph op type turns a graph op into one plan op (see registry.py).

Adding an op: one ``@lowering("OP_TYPE")`` function in the family's module (and its prepare/eval in
``firmware/runtime/ops/``).
"""

from measure_agent.plan.lower import (activation, conv, elementwise, fully_connected,  # noqa: F401 (register)
                                      layout, mean, pool, quantize, softmax)
from measure_agent.plan.lower.registry import CONSTANT_FIRST_INPUT, LOWERINGS, Unsupported, lowering

__all__ = ["CONSTANT_FIRST_INPUT", "LOWERINGS", "Unsupported", "lowering"]
