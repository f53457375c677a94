"""The lowering registry and the helpers lowerings share.

A lowering turns one graph op into exactly one plan op: it validates what the runtime can run, computes
the op's parameters (quantization math lives in :mod:`measure_agent.plan.quantize`) and calls
``Builder.emit`` once, naming the kernel each runtime variant runs (:mod:`measure_agent.plan.kernels`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from costmodel.errors import ModelError
from costmodel.graph import Graph, Op, Tensor
from measure_agent.plan.builder import Builder


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


class Malformed(ModelError):
    """The op's tensors or options cannot be right (a malformed model, not a missing kernel)."""


class InvalidQuantization(Malformed):
    """A tensor's quantization parameters cannot be right (a malformed model, not a missing kernel)."""


#: the zero points a quantized tensor of each type can have
ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}
#: the scales a quantized activation can have (beyond, the requantization multipliers overflow)
SCALE_RANGE = (1e-30, 1e30)


def quant(t: Tensor) -> tuple[float, int]:
    """Per-tensor (scale, zero point) of ``t``; InvalidQuantization for a zero point outside its type's range."""
    if t.quant is None or t.quant.scale.size == 0:
        raise Unsupported(f"tensor {t.name} is not quantized")
    zero_point = int(t.quant.zero_point.reshape(-1)[0])
    low, high = ZERO_POINT_RANGE.get(t.dtype, (zero_point, zero_point))
    if not low <= zero_point <= high:
        raise InvalidQuantization(f"tensor {t.name!r} has zero point {zero_point}, outside the {t.dtype} range "
                                  f"[{low}, {high}]")
    scale = float(t.quant.scale.reshape(-1)[0])
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:  # (NaN fails too)
        raise InvalidQuantization(f"tensor {t.name!r} has scale {scale}; a scale is a positive number from "
                                  f"{SCALE_RANGE[0]:g} to {SCALE_RANGE[1]:g}")
    return scale, zero_point


def pad_before(in_size: int, filter_size: int, stride: int, dilation: int, padding: str,
               out_size: int) -> int:
    """Leading padding of one spatial axis under TFLite's SAME/VALID rule (checked against ``out_size``)."""
    if stride < 1 or dilation < 1 or filter_size < 1:
        raise Malformed(f"stride {stride}, dilation {dilation}, filter {filter_size}: each must be at least 1")
    eff = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        expected = (in_size + stride - 1) // stride
    else:
        expected = (in_size - eff + stride) // stride
    if expected != out_size:
        raise Malformed(f"output size {out_size} does not match {padding} padding (expected {expected})")
    total = max(0, (out_size - 1) * stride + eff - in_size)
    return total // 2


def shape4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``shape`` right-aligned into 4-D, as the executor sees it."""
    s = tuple(int(v) for v in shape)
    return (1,) * (4 - len(s)) + s


def requant_arrays(b: Builder, mults: np.ndarray, shifts: np.ndarray) -> tuple[int, int]:
    """Plan constants of per-channel requantization multipliers and shifts."""
    return b.add_const(mults.astype(np.int32), "int32"), b.add_const(shifts.astype(np.int32), "int32")


def check_symmetric_weights(w: Tensor) -> None:
    if w.quant is None:
        raise Unsupported(f"weights {w.name!r} are not quantized")
    if np.any(w.quant.zero_point != 0):
        raise Unsupported("asymmetric weights")
    if not np.all(np.isfinite(w.quant.scale) & (w.quant.scale >= 0) & (w.quant.scale <= SCALE_RANGE[1])):
        raise InvalidQuantization(f"weights {w.name!r} have a scale that is negative, too large or not a number")
