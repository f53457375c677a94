"""compile_plan's return-path contract: one plan layer per graph op, in order, with its kernels per variant;
the builder takes parameters by name; the analysed graph is the compiled graph (constant DEQUANTIZE folded
when the model is read); the per-layer state is part of the arena the plan asks for."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from costmodel.analysis import analyze
from costmodel.graph import Graph, Op, Tensor
from costmodel.tflite import parse_tflite, read_model
from measure_agent.plan import compile_plan
from measure_agent.plan import kernels as K
from measure_agent.plan.builder import Builder, LoweringError, fnv1a
from measure_agent.plan.format import ARENA_ALIGN, HEADER_BYTES, LAYER_STATE_BYTES, OP_KINDS, VARIANTS
from measure_agent.plan.host import load_status
from measure_agent.plan.lower import LOWERINGS
from tests.testmodels import model_path

NN_OK, BAD_PLAN, BAD_SIZE = 0, 1, 6


@pytest.fixture(scope="module")
def cnn():
    graph = read_model(model_path("cnn", "int8", shape=(16, 16, 3)))
    return graph, compile_plan(graph)


def test_one_layer_per_graph_op_in_order(cnn):
    graph, plan = cnn
    assert len(plan.layers) == len(graph.ops)
    for i, (layer, op) in enumerate(zip(plan.layers, graph.ops)):
        assert layer.index == op.index == i
        assert layer.name == graph.op_name(op) and layer.op_type == op.type
        assert layer.kind in OP_KINDS
        assert set(layer.kernels) == set(VARIANTS) and all(layer.kernels.values())
    conv = plan.layers[0]
    assert (conv.op_type, conv.kind) == ("CONV_2D", "CONV_S8")
    assert conv.kernels == {"reference": "conv2d_s8_ref", "simd": "conv2d_s8_simd"}


def _tiny_relu() -> Graph:
    tensors = [Tensor(0, "x", (1, 4), "float32"), Tensor(1, "y", (1, 4), "float32")]
    return Graph(tensors, [Op(0, "RELU", [0], [1])], [0], [1])


@pytest.mark.parametrize("emits", [0, 2])
def test_a_lowering_that_breaks_the_one_op_rule_raises(monkeypatch, emits):
    real = LOWERINGS["RELU"]

    def bad(b, g, op):
        for _ in range(emits):
            real(b, g, op)

    monkeypatch.setitem(LOWERINGS, "RELU", bad)
    with pytest.raises(LoweringError, match="RELU"):
        compile_plan(_tiny_relu())


def test_emit_takes_parameters_by_name():
    g = _tiny_relu()
    b = Builder(g)
    x, y = b.tensor(0), b.tensor(1)
    kernel = K.reference_only("clamp_f32_ref")
    with pytest.raises(LoweringError, match="missing"):
        b.emit(g.ops[0], "CLAMP_F32", [x], y, kernel=kernel, lo=0)
    with pytest.raises(LoweringError, match="unknown"):
        b.emit(g.ops[0], "CLAMP_F32", [x], y, kernel=kernel, lo=0, hi=1, beta=2)
    with pytest.raises(LoweringError, match="int"):
        b.emit(g.ops[0], "CLAMP_F32", [x], y, kernel=kernel, lo=0.0, hi=1)
    b.emit(g.ops[0], "CLAMP_F32", [x], y, kernel=kernel, hi=7, lo=3)  # order comes from the layout
    assert b.params == [3, 7] and len(b.layers) == 1


def test_arena_holds_the_layer_state(cnn):
    _, plan = cnn
    blob = bytearray(plan.blob)
    arena, scratch_off, num_ops = struct.unpack_from("<II", blob, 12) + struct.unpack_from("<H", blob, 22)
    assert arena == plan.arena_bytes and plan.state_bytes == num_ops * LAYER_STATE_BYTES
    assert arena == scratch_off + -(-plan.scratch_bytes // ARENA_ALIGN) * ARENA_ALIGN + plan.state_bytes
    # an arena size that leaves no room for the per-layer state is a malformed plan
    struct.pack_into("<I", blob, 12, arena - plan.state_bytes)
    struct.pack_into("<I", blob, 60, fnv1a(bytes(blob[HEADER_BYTES:])))
    assert load_status(bytes(blob)) in (BAD_PLAN, BAD_SIZE)  # no room for the state (or the scratch before it)
    assert load_status(plan.blob) == NN_OK


def test_analysed_graph_is_the_compiled_graph():
    """float16 weights: read_model folds their DEQUANTIZE ops, so analysis and plan have the same layers."""
    path = model_path("cnn", "float16", shape=(16, 16, 3))
    raw = parse_tflite(path.read_bytes())
    assert "DEQUANTIZE" in [op.type for op in raw.ops]
    graph = read_model(path)
    assert "DEQUANTIZE" not in [op.type for op in graph.ops]
    assert [op.index for op in graph.ops] == list(range(len(graph.ops)))
    plan = compile_plan(graph)
    analysis = analyze(graph)
    assert [(l.name, l.op_type) for l in plan.layers] == [(l.name, l.op) for l in analysis.layers]
    # the folded weights are float32 constants; the float16 originals are no longer part of the model
    assert all(t.dtype != "float16" for t in graph.tensors if t.is_constant)
    conv = graph.ops[0]
    assert graph.tensors[conv.inputs[1]].dtype == "float32" and graph.tensors[conv.inputs[1]].is_constant
    assert np.isfinite(np.asarray(graph.tensors[conv.inputs[1]].data)).all()


def test_constant_dequantize_is_not_folded_inside_compile_plan():
    """compile_plan compiles exactly the graph it is given: an unfolded constant DEQUANTIZE is refused."""
    from measure_agent.plan import UnsupportedOpError

    raw = parse_tflite(model_path("cnn", "float16", shape=(16, 16, 3)).read_bytes())
    with pytest.raises(UnsupportedOpError, match="DEQUANTIZE"):
        compile_plan(raw)
