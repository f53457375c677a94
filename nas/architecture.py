"""The architecture of a converted model without its values: what its latency and energy depend on.

Two untrained candidates with the same ops in the same order, the same options, tensor shapes and types and
the same quantization layout (per tensor or per channel, on which axis) run the same kernels over the same
loops, whatever their weights, biases, scales and zero points: the search measures one and reuses the
measurement for the other (the ``known`` rule). TPE re-suggests a configuration it likes often, and
different parameters can build the same model (a block's stride or pooling is dropped on a 1x1 feature map);
a store shared by a lab holds the same architectures measured with other seeds' weights.
"""

from __future__ import annotations

import hashlib
import json


def _tensor(graph, index: int) -> list | None:
    if index < 0:
        return None
    t = graph.tensors[index]
    q = t.quant
    layout = None if q is None else ["channel", int(q.axis), int(q.scale.size)] if q.per_channel else ["tensor"]
    return [list(t.shape), t.dtype, t.is_constant, layout]


def _plain(value):
    """Op options as JSON (numpy scalars and arrays included)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def architecture_digest(graph) -> str:
    """A digest of ``graph`` (a ``costmodel.graph.Graph``) that ignores every weight, bias and quantization value
    (see the module docstring); equal digests, equal latency on one board and runtime."""
    order: dict[int, int] = {}  # tensor index -> its rank of first use: the wiring, not the file's numbering

    def wired(index: int) -> list | None:
        described = _tensor(graph, index)
        return None if described is None else [order.setdefault(index, len(order)), *described]

    inputs = [wired(i) for i in graph.inputs]
    ops = [[op.type, op.version, _plain(op.options), [wired(i) for i in op.inputs], [wired(i) for i in op.outputs]]
           for op in graph.ops]
    text = json.dumps([inputs, ops, [wired(i) for i in graph.outputs]], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
