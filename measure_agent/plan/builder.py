"""The plan builder: accumulates one plan's tensor table, constants, ids, parameters and ops.

Lowerings (:mod:`measure_agent.plan.lower`) call :meth:`Builder.tensor`, :meth:`Builder.add_const` and
:meth:`Builder.emit`; :func:`measure_agent.plan.compiler.compile_plan` drives them and writes the binary
(FORMAT.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from costmodel.errors import ModelError
from costmodel.graph import Graph, Op
from costmodel.memory import plan_arena
from measure_agent.plan.format import (CONST_ALIGN, DTYPE_SIZE, DTYPES, LOC_ARENA, LOC_CONST, MAX_OP_INPUTS, NONE,
                                       OP_KINDS, PARAM_LAYOUTS, TENSOR_BYTES, VARIANTS)
from measure_agent.plan.kernels import KernelChoice


class UnsupportedOpError(ValueError):
    """The graph contains an op (or an op/dtype combination) the runtime has no kernel for."""

    def __init__(self, op_type: str, layer: int, name: str, reason: str = ""):
        self.op_type = op_type
        self.layer = layer
        self.layer_name = name
        detail = f": {reason}" if reason else ""
        super().__init__(f"unsupported op {op_type} at layer {layer} (output '{name}'){detail}")

    @property
    def malformed(self) -> bool:
        """The op's tensors or options cannot be right (the model is malformed; no runtime could run it):
        a lowering found it (``costmodel.errors.ModelError``) or could not even index the op's tensors or
        options."""
        return isinstance(self.__cause__, (ModelError, IndexError, KeyError, TypeError))

    def describe(self) -> str:
        """One line for a user: "malformed model at layer ..." or "unsupported op ..."."""
        if self.malformed:
            cause = self.__cause__
            why = str(cause) if isinstance(cause, ModelError) else (
                f"its tensors or options do not fit the op ({type(cause).__name__}: {cause})")
            return f"malformed model at layer {self.layer} ({self.op_type}): {why}"
        return str(self)


class LoweringError(RuntimeError):
    """A lowering broke the one-plan-op-per-graph-op rule (a compiler bug, not a property of the model)."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None
    bytes: int


@dataclass
class Layer:
    """Plan layer ``index`` runs graph op ``index`` (the ops' order is kept, one plan op each)."""

    index: int                 # the graph op's index
    name: str                  # the graph op's name (its first output tensor)
    op_type: str               # TFLite op type
    kind: str                  # plan op kind (format.OP_KINDS)
    kernels: dict[str, str] = field(default_factory=dict)  # runtime variant -> kernel the firmware runs


@dataclass
class Plan:
    blob: bytes
    arena_bytes: int
    layers: list[Layer]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    scratch_bytes: int = 0
    const_bytes: int = 0
    state_bytes: int = 0       # the executor's per-layer state (part of arena_bytes)
    variant: str = "reference"  # the runtime variant it was compiled for (format.VARIANTS)
    paired_filters: int = 0    # CONV_S8 layers with int16 pair filters (SIMD plans; format.FILTER_LAYOUTS)


def fnv1a(data: bytes) -> int:
    """FNV-1a 32 (the plan checksum; the executor computes the same over bytes [64, total))."""
    h = 2166136261
    for b in memoryview(data):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class Builder:
    """Accumulates the tensor table, constants, ids, params and ops of one plan."""

    def __init__(self, graph: Graph, variant: str = "reference", pair_filters: bool | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"runtime variant {variant!r} (one of {', '.join(VARIANTS)})")
        self.g = graph
        self.variant = variant
        #: lay int8 conv filters out as the SIMD kernel reads them (the default for SIMD plans)
        self.pair_filters = variant == "simd" if pair_filters is None else bool(pair_filters)
        self.paired_filters = 0
        self.arena = plan_arena(graph)
        self.tensor_ids: dict[int, int] = {}
        self.entries: list[bytes] = []
        self.const = bytearray()
        self.ids: list[int] = []
        self.params: list[int] = []
        self.ops: list[tuple[int, int, int, int, int, int]] = []
        self.layers: list[Layer] = []
        self.scratch = 0

    # ---- tensors ----
    def _entry(self, dtype: str, loc: int, shape: tuple[int, ...], offset: int, nbytes: int, zp: int,
               scale: float) -> int:
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype}")
        if len(shape) > 4:
            raise ValueError(f"rank {len(shape)} > 4")
        dims = [int(d) for d in shape]
        if any(d < 1 or d > 0xFFFF for d in dims):
            raise ValueError(f"dimension out of range in {shape}")
        dims4 = dims + [0] * (4 - len(dims))
        e = struct.pack("<BBBBIIif4HI", DTYPES[dtype], loc, len(dims), 0, offset, nbytes, int(zp), float(scale),
                        *dims4, 0)
        assert len(e) == TENSOR_BYTES
        self.entries.append(e)
        if len(self.entries) >= NONE:
            raise ValueError("too many tensors")
        return len(self.entries) - 1

    def add_const(self, data: np.ndarray, dtype: str, shape: tuple[int, ...] | None = None, zp: int = 0,
                  scale: float = 0.0) -> int:
        """A new constant tensor holding ``data``; returns its plan tensor id."""
        arr = np.ascontiguousarray(np.asarray(data).astype(dtype, copy=False))
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        while len(self.const) % CONST_ALIGN:
            self.const.append(0)
        off = len(self.const)
        self.const += raw
        shape = tuple(arr.shape) if shape is None else shape
        if len(shape) == 0:
            shape = (1,)
        return self._entry(dtype, LOC_CONST, shape, off, len(raw), zp, scale)

    def tensor(self, t_index: int) -> int:
        """The plan tensor id of graph tensor ``t_index`` (NONE for an absent optional input)."""
        if t_index < 0:
            return NONE
        if t_index in self.tensor_ids:
            return self.tensor_ids[t_index]
        t = self.g.tensors[t_index]
        zp, scale = 0, 0.0
        if t.quant is not None and t.quant.scale.size >= 1 and not t.quant.per_channel:
            zp, scale = int(t.quant.zero_point.reshape(-1)[0]), float(t.quant.scale.reshape(-1)[0])
        shape = tuple(t.shape) if t.shape else (1,)
        if t.is_constant:
            tid = self.add_const(np.asarray(t.data).reshape(shape), t.dtype, shape, zp, scale)
        else:
            if t_index not in self.arena.offsets:
                raise ValueError(f"tensor {t.name} has no arena offset")
            nbytes = int(np.prod(shape)) * DTYPE_SIZE[t.dtype]
            tid = self._entry(t.dtype, LOC_ARENA, shape, self.arena.offsets[t_index], nbytes, zp, scale)
        self.tensor_ids[t_index] = tid
        return tid

    # ---- ops ----
    def emit(self, op: Op, kind: str, inputs: list[int], output: int, *, kernel: KernelChoice,
             **params: int) -> None:
        """Append the plan op of graph op ``op``: ``params`` by name, ordered by ``PARAM_LAYOUTS[kind]``."""
        layout = PARAM_LAYOUTS[kind]
        missing = [p for p in layout if p not in params]
        unknown = sorted(set(params) - set(layout))
        if missing or unknown:
            raise LoweringError(f"{kind} params: missing {missing}, unknown {unknown}")
        words = []
        for name in layout:
            value = params[name]
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise LoweringError(f"{kind} param {name} must be an int (floats as bits), not {value!r}")
            words.append(int(value))
        if len(inputs) > MAX_OP_INPUTS:
            raise UnsupportedOpError(op.type, op.index, self.g.op_name(op),
                                     f"more than {MAX_OP_INPUTS} inputs")
        self.ops.append((OP_KINDS[kind], len(inputs), len(self.ids), len(self.params), len(words),
                         kernel.scratch_bytes))
        self.ids.extend(inputs + [output])
        self.params.extend(words)
        self.scratch = max(self.scratch, kernel.scratch_bytes)
        self.layers.append(Layer(op.index, self.g.op_name(op), op.type, kind, dict(kernel.kernels)))
