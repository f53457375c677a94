"""Compile a model graph (costmodel IR) into the firmware's binary plan (see FORMAT.md).

The plan carries everything the executor needs and nothing it must compute with floats at run time for
int8 models: per-channel requantization multipliers and shifts, activation ranges, paddings, and arena
offsets from :func:`costmodel.memory.plan_arena`, plus one shared scratch region (the largest im2col /
input-expansion buffer any layer needs) and the executor's per-layer state, both folded into the arena size.

Each graph op becomes exactly one plan op through its lowering (:mod:`measure_agent.plan.lower`).
"""

from __future__ import annotations

import struct

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import (Builder, LoweringError, Plan, TensorInfo, UnsupportedOpError, align,
                                        fnv1a)
from measure_agent.plan.format import (ARENA_ALIGN, CONST_ALIGN, HEADER_BYTES, LAYER_STATE_BYTES, MAGIC, NONE,
                                       OP_BYTES, TENSOR_BYTES, VERSION)
from measure_agent.plan.lower import CONSTANT_FIRST_INPUT, LOWERINGS

SUPPORTED_OPS = tuple(LOWERINGS)


def _lower(b: Builder, op: Op) -> None:
    """Lower graph op ``op`` into exactly one plan op."""
    g = b.g
    if op.type not in LOWERINGS:
        raise UnsupportedOpError(op.type, op.index, g.op_name(op))
    if len(op.outputs) != 1:
        raise UnsupportedOpError(op.type, op.index, g.op_name(op), "ops must have exactly one output")
    if g.tensors[op.inputs[0]].is_constant and op.type not in CONSTANT_FIRST_INPUT:
        raise UnsupportedOpError(op.type, op.index, g.op_name(op), "constant first input")
    before = len(b.layers)
    LOWERINGS[op.type](b, g, op)
    if len(b.layers) != before + 1:
        emitted = len(b.layers) - before
        raise LoweringError(f"the {op.type} lowering emitted {emitted} plan ops for layer {op.index}, "
                            "expected 1")


def compile_plan(graph: Graph, variant: str = "reference", pair_filters: bool | None = None) -> Plan:
    """Compile ``graph`` as given, one plan layer per graph op in order (read it with
    ``costmodel.tflite.read_model``, which folds static shapes and constant DEQUANTIZE ops), for the firmware
    of runtime ``variant``: a "reference" plan runs on both variants; a "simd" one lays int8 conv filters out as
    int16 pairs for the SIMD kernel (``pair_filters=False``: TFLite's layout, when the larger filters do not
    fit), which the reference firmware refuses (NN_ERR_FILTER_LAYOUT).
    Raises :class:`UnsupportedOpError` for ops the runtime cannot run."""
    g = graph
    b = Builder(g, variant, pair_filters)
    for op in g.ops:
        try:
            _lower(b, op)
        except (UnsupportedOpError, LoweringError):
            raise
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise UnsupportedOpError(op.type, op.index, g.op_name(op), str(e)) from e

    for t in list(g.inputs) + list(g.outputs):
        b.tensor(t)
    io_ids = [b.tensor(t) for t in g.inputs] + [b.tensor(t) for t in g.outputs]
    ids = io_ids + b.ids
    # op id ranges were recorded relative to b.ids; shift by the io prefix
    ops = [struct.pack("<HBBIIII", kind, n_in, 1, start + len(io_ids), pstart, n_params, scratch)
           for kind, n_in, start, pstart, n_params, scratch in b.ops]

    scratch_off = align(b.arena.size, ARENA_ALIGN)
    state_bytes = LAYER_STATE_BYTES * len(ops)
    arena_bytes = scratch_off + align(b.scratch, ARENA_ALIGN) + state_bytes

    tensors_off = HEADER_BYTES
    ops_off = tensors_off + TENSOR_BYTES * len(b.entries)
    params_off = ops_off + OP_BYTES * len(ops)
    ids_off = params_off + 4 * len(b.params)
    const_off = align(ids_off + 2 * len(ids), CONST_ALIGN)
    total = const_off + len(b.const)
    body = bytearray()
    body += b"".join(b.entries)
    body += b"".join(ops)
    body += struct.pack(f"<{len(b.params)}i", *b.params)
    body += struct.pack(f"<{len(ids)}H", *ids)
    body += b"\0" * (const_off - HEADER_BYTES - len(body))
    body += bytes(b.const)
    assert HEADER_BYTES + len(body) == total
    if len(b.entries) >= NONE or len(g.ops) > 0xFFFF:
        raise ValueError("plan too large")
    checksum = fnv1a(bytes(body))
    header = struct.pack("<IHHIIIHHHHIIIIIIIII", MAGIC, VERSION, HEADER_BYTES, total, arena_bytes, scratch_off,
                         len(b.entries), len(ops), len(g.inputs), len(g.outputs), tensors_off, ops_off, ids_off,
                         len(ids), params_off, len(b.params), const_off, len(b.const), checksum)
    assert len(header) == HEADER_BYTES
    blob = header + bytes(body)

    def info(t_index: int) -> TensorInfo:
        t = g.tensors[t_index]
        scale, zp = (None, None)
        if t.quant is not None and t.quant.scale.size == 1:
            scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
        return TensorInfo(t.name, tuple(t.shape), t.dtype, scale, zp, t.nbytes)

    return Plan(blob=blob, arena_bytes=arena_bytes, layers=b.layers, inputs=[info(t) for t in g.inputs],
                outputs=[info(t) for t in g.outputs], scratch_bytes=b.scratch, const_bytes=len(b.const),
                state_bytes=state_bytes, variant=variant, paired_filters=b.paired_filters)
