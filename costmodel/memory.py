"""Tensor arena planning: where each activation tensor lives in RAM while the model runs.

Lifetimes are measured in op steps: a tensor is live from the op that writes it (step -1 for model
inputs) to the last op that reads it (the end for model outputs). Ops that only reinterpret their
input (RESHAPE, SQUEEZE, EXPAND_DIMS) write nothing: their output shares the input's buffer. Buffers
are placed greedily, largest first, at the lowest aligned offset free for their whole lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.errors import ModelError
from costmodel.graph import Graph

ALIGNMENT = 16
ALIASING_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")


@dataclass(frozen=True)
class Buffer:
    """One arena allocation, shared by the tensors in ``tensors``."""

    tensors: tuple[int, ...]
    size: int
    first: int
    last: int

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class ArenaPlan:
    offsets: dict[int, int]
    size: int
    buffers: tuple[Buffer, ...]

    def offset_of(self, buffer: Buffer) -> int:
        return self.offsets[buffer.tensors[0]]


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def buffers(graph: Graph) -> list[Buffer]:
    """The arena buffers of ``graph`` with their lifetimes, aliasing ops merged."""
    root = {}  # tensor -> the tensor whose buffer it shares

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for op in graph.ops:
        if op.type not in ALIASING_OPS:
            continue
        if not op.inputs or op.inputs[0] < 0 or not op.outputs or op.outputs[0] < 0:
            raise ModelError(f"layer {op.index} ({op.type}) lacks its input or output tensor: corrupt model")
        if not graph.tensors[op.inputs[0]].is_constant:
            root[op.outputs[0]] = find(op.inputs[0])
    end = len(graph.ops)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    sizes: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def touch(t: int, step: int) -> None:
        if t < 0 or graph.tensors[t].is_constant:
            return
        r = find(t)
        members.setdefault(r, [])
        if t not in members[r]:
            members[r].append(t)
        first[r] = min(first.get(r, step), step)
        last[r] = max(last.get(r, step), step)
        sizes[r] = max(sizes.get(r, 0), graph.tensors[t].nbytes)

    for t in graph.inputs:
        touch(t, -1)
    for step, op in enumerate(graph.ops):
        for t in op.inputs:
            touch(t, step)
        for t in op.outputs:
            touch(t, step)
    for t in graph.outputs:
        touch(t, end)
    return [Buffer(tuple(members[r]), sizes[r], first[r], last[r]) for r in members]


def plan_arena(graph: Graph) -> ArenaPlan:
    """Place every activation tensor of ``graph`` in one arena."""
    todo = sorted(buffers(graph), key=lambda b: (-b.size, b.first))
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[int, int] = {}
    for buf in todo:
        offset = 0
        for other_offset, other in sorted((p for p in placed if p[1].overlaps(buf)), key=lambda p: p[0]):
            if offset + buf.size <= other_offset:
                break
            offset = max(offset, _align(other_offset + other.size))
        placed.append((offset, buf))
        for t in buf.tensors:
            offsets[t] = offset
    size = max((_align(o + b.size) for o, b in placed), default=0)
    return ArenaPlan(offsets, size, tuple(b for _, b in placed))


def peak_live_bytes(graph: Graph) -> int:
    """A lower bound on any arena: the most bytes live at any one step (no fragmentation)."""
    bufs = buffers(graph)
    steps = range(-1, len(graph.ops) + 1)
    return max((sum(b.size for b in bufs if b.first <= s <= b.last) for s in steps), default=0)
