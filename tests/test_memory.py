"""Arena planning, cross-checked against an independent brute-force computation."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel.graph import Graph, Op, Tensor
from costmodel.memory import ALIGNMENT, plan_arena
from costmodel.tflite import read_model
from tests.test_analysis import branch_model, conv_model, convert


def brute_force_live_sets(graph: Graph) -> list[set[int]]:
    """For every step, the set of activation tensors whose bytes must be kept, computed from scratch.

    A tensor must be kept from the step that produces it (or before the first op, for inputs) through
    the last step that reads it (or to the end, for outputs). Reshapes alias: a reshape's output is
    kept as its input (this function resolves the alias chain independently of the planner).
    """
    alias = {op.outputs[0]: op.inputs[0] for op in graph.ops
             if op.type in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS") and graph.tensors[op.inputs[0]].data is None}

    def base(t):
        while t in alias:
            t = alias[t]
        return t

    steps = len(graph.ops) + 2
    live = [set() for _ in range(steps)]
    spans = {}
    for t in range(len(graph.tensors)):
        if graph.tensors[t].data is not None:
            continue
        uses = [s + 1 for s, op in enumerate(graph.ops) if t in op.inputs or t in op.outputs]
        if t in graph.inputs:
            uses.append(0)
        if t in graph.outputs:
            uses.append(steps - 1)
        if uses:
            b = base(t)
            lo, hi = spans.get(b, (min(uses), max(uses)))
            spans[b] = (min(lo, *uses), max(hi, *uses))
    for b, (lo, hi) in spans.items():
        for s in range(lo, hi + 1):
            live[s].add(b)
    return live


def check_plan(graph: Graph) -> int:
    plan = plan_arena(graph)
    live_sets = brute_force_live_sets(graph)
    sizes = {t: graph.tensors[t].nbytes for s in live_sets for t in s}
    for live in live_sets:
        placed = sorted((plan.offsets[t], plan.offsets[t] + sizes[t]) for t in live)
        for (a_lo, a_hi), (b_lo, _) in zip(placed, placed[1:]):
            assert a_hi <= b_lo, "two live tensors overlap in the arena"
        assert all(hi <= plan.size for _, hi in placed)
    assert all(offset % ALIGNMENT == 0 for offset in plan.offsets.values())
    lower_bound = max(sum(sizes[t] for t in live) for live in live_sets)
    assert plan.size >= lower_bound
    return plan.size - lower_bound


def test_chain_of_real_models_is_tight(kws_model, ad_model):
    for path in (kws_model, ad_model):
        assert check_plan(read_model(path)) == 0


def test_branching_model_is_valid():
    check_plan(read_model(convert("branch", branch_model)))
    check_plan(read_model(convert("conv", conv_model)))


def test_reshape_shares_its_input_buffer():
    graph = read_model(convert("conv", conv_model))
    plan = plan_arena(graph)
    (reshape,) = [op for op in graph.ops if op.type == "RESHAPE"]
    assert plan.offsets[reshape.outputs[0]] == plan.offsets[reshape.inputs[0]]


def _tensor(i, n):
    return Tensor(i, f"t{i}", (1, n), "int8")


def test_random_graphs_never_overlap():
    rng = np.random.default_rng(7)
    for trial in range(200):
        n_ops = int(rng.integers(1, 12))
        tensors = [_tensor(0, int(rng.integers(1, 300)))]
        ops = []
        for i in range(n_ops):
            k = int(rng.integers(1, min(3, len(tensors)) + 1))
            ins = sorted(set(int(x) for x in rng.integers(0, len(tensors), size=k)))
            out = _tensor(len(tensors), int(rng.integers(1, 300)))
            tensors.append(out)
            ops.append(Op(i, "ADD", ins, [out.index]))
        graph = Graph(tensors, ops, [0], [len(tensors) - 1])
        check_plan(graph)


@pytest.mark.parametrize("n", [1, 15, 16, 17])
def test_alignment_rounds_up(n):
    graph = Graph([_tensor(0, n), _tensor(1, n)], [Op(0, "RELU", [0], [1])], [0], [1])
    assert plan_arena(graph).size == 2 * ((n + 15) // 16 * 16)
