"""The lowering registry and the helpers lowerings share.

A lowering turns one graph op into exactly one plan op: it validates what the runtime can run, computes
the op's parameters (quantization math lives in :mod:`measure_agent.plan.quantize`) and calls
``Builder.emit`` once, naming the kernel each runtime variant runs (:mod:`measure_agent.plan.kernels`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from costmodel.graph import Graph, Op, Tensor
from measure_agent.plan.builder import Builder
from measure_agent.plan.format import MAX_BIAS


Lowering = Callable[[Builder, Graph, Op], None]

LOWERINGS: dict[str, Lowering] = {}
# op types whose first input may be a constant (everything else needs an activation there)
CONSTANT_FIRST_INPUT: set[str] = set()


class Unsupported(ValueError):
    """The runtime cannot run this op as given; compile_plan reports it with the op's type and layer."""


def lowering(*op_types: str, constant_first_input: bool = False) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the lowering of ``op_types`` (TFLite op names)."""

    def register(fn: Lowering) -> Lowering:
        for t in op_types:
            if t in LOWERINGS:
                raise ValueError(f"two lowerings for {t}")
            LOWERINGS[t] = fn
            if constant_first_input:
                CONSTANT_FIRST_INPUT.add(t)
        return fn

    return register


def io(g: Graph, op: Op) -> tuple[Tensor, Tensor]:
    """The op's first input and its output."""
    return g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]


def fused_activation(op: Op) -> str:
    return op.options.get("fused_activation_function", "NONE")


def dtypes(x: Tensor, out: Tensor) -> str:
    return f"{x.dtype} -> {out.dtype}"


def quant(t: Tensor) -> tuple[float, int]:
    """Per-tensor (scale, zero point) of ``t``."""
    if t.quant is None or t.quant.scale.size == 0:
        raise Unsupported(f"tensor {t.name} is not quantized")
    return float(t.quant.scale.reshape(-1)[0]), int(t.quant.zero_point.reshape(-1)[0])


def pad_before(in_size: int, filter_size: int, stride: int, dilation: int, padding: str,
               out_size: int) -> int:
    """Leading padding of one spatial axis under TFLite's SAME/VALID rule (checked against ``out_size``)."""
    eff = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        expected = (in_size + stride - 1) // stride
    else:
        expected = (in_size - eff + stride) // stride
    if expected != out_size:
        raise Unsupported(f"output size {out_size} does not match {padding} padding (expected {expected})")
    total = max(0, (out_size - 1) * stride + eff - in_size)
    return total // 2


def shape4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``shape`` right-aligned into 4-D, as the executor sees it."""
    s = tuple(int(v) for v in shape)
    return (1,) * (4 - len(s)) + s


def check_bias(g: Graph, bias_i: int) -> None:
    if bias_i >= 0 and g.tensors[bias_i].is_constant and g.tensors[bias_i].dtype == "int32":
        if np.any(np.abs(np.asarray(g.tensors[bias_i].data, np.int64)) > MAX_BIAS):
            raise Unsupported("int32 bias beyond +-2^30 (the runtime's accumulator bound)")


def requant_arrays(b: Builder, mults: np.ndarray, shifts: np.ndarray) -> tuple[int, int]:
    """Plan constants of per-channel requantization multipliers and shifts."""
    return b.add_const(mults.astype(np.int32), "int32"), b.add_const(shifts.astype(np.int32), "int32")


def check_symmetric_weights(w: Tensor) -> None:
    if np.any(w.quant.zero_point != 0):
        raise Unsupported("asymmetric weights")
