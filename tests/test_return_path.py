"""The return path: the graph that is compiled is the graph that is analysed, joined layer by layer by
index; a mismatch fails loudly; every layer result carries its kernel, shapes and features."""

from __future__ import annotations

import dataclasses

import pytest

from measure_agent import measurement
from measure_agent.errors import MeasureError
from tests.conftest import cached_tflite
from tests.test_agent_e2e import small_model


def float16_model() -> bytes:
    """A float model whose weights are stored as float16 behind DEQUANTIZE ops (the converter's default for
    ``target_spec.supported_types = [tf.float16]``)."""
    def build():
        from costmodel.convert import quiet

        with quiet():
            import keras
            import tensorflow as tf
        x = inp = keras.Input((8, 8, 2), batch_size=1)
        x = keras.layers.Conv2D(4, 3, activation="relu")(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(3)(x)
        with quiet():
            converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, x))
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
            return converter.convert()

    return cached_tflite("return-path-float16-v1", build)


def test_layers_join_by_index():
    compiled = measurement.compile_model(small_model())
    assert [a.index for a in compiled.analysis.layers] == [p.index for p in compiled.plan.layers] == list(range(5))
    assert [a.op for a in compiled.analysis.layers] == [p.op_type for p in compiled.plan.layers]
    assert compiled.plan.layers[0].kernels == {"reference": "conv2d_s8_ref", "simd": "conv2d_s8_simd"}


def test_float16_weights_are_folded_before_analysis():
    from costmodel.tflite import parse_tflite

    raw_ops = [op.type for op in parse_tflite(float16_model()).ops]
    assert "DEQUANTIZE" in raw_ops  # the file stores float16 weights behind DEQUANTIZE ops
    compiled = measurement.compile_model(float16_model())
    ops = [layer.op for layer in compiled.analysis.layers]
    assert "DEQUANTIZE" not in ops and ops == [layer.op_type for layer in compiled.plan.layers]
    conv = compiled.analysis.layers[0]
    assert conv.op == "CONV_2D" and conv.macs == 6 * 6 * 4 * 3 * 3 * 2 and conv.params == 4 * 3 * 3 * 2 + 4


def test_a_plan_that_disagrees_with_the_analysis_is_an_error(monkeypatch):
    import measure_agent.plan as plan_package

    real = plan_package.compile_plan

    def drop_last_layer(graph, *args):  # compile_plan(graph, variant, pair_filters)
        plan = real(graph, *args)
        return dataclasses.replace(plan, layers=plan.layers[:-1])

    monkeypatch.setattr(plan_package, "compile_plan", drop_last_layer)
    with pytest.raises(MeasureError, match="internal: the plan has 4 layers, the analysis 5"):
        measurement.compile_model(small_model())

    def swap_ops(graph, *args):
        plan = real(graph, *args)
        layers = list(plan.layers)
        layers[1] = dataclasses.replace(layers[1], op_type="MAX_POOL_2D")
        return dataclasses.replace(plan, layers=layers)

    monkeypatch.setattr(plan_package, "compile_plan", swap_ops)
    with pytest.raises(MeasureError, match="plan layer 1 .MAX_POOL_2D. does not match analysis layer 1"):
        measurement.compile_model(small_model())
