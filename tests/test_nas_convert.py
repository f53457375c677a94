"""The search's fast conversion: candidates of both spaces traced with their known layers lowered to TensorFlow
ops give the same TFLite ops, the same float outputs and op names that still name the Keras layers."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from nas.rules import keras_layer
from nas.spaces import get_space

CANDIDATES = {
    "cnn": [{"blocks": 2, "filters_0": 5, "kernel_0": 3, "stride_0": 1, "pool_0": "max", "filters_1": 7,
             "kernel_1": 5, "stride_1": 2, "pool_1": "avg", "head": "flatten", "units": 13},
            {"blocks": 1, "filters_0": 4, "kernel_0": 1, "stride_0": 2, "pool_0": "none", "head": "gap", "units": 0}],
    "dscnn": [{"width": 6, "stem_stride": 1, "blocks": 2, "expansion_0": 2, "depth_multiplier_0": 2, "kernel_0": 3,
               "stride_0": 2, "filters_0": 9, "expansion_1": 1, "depth_multiplier_1": 1, "kernel_1": 5,
               "stride_1": 1, "filters_1": 12}],
}


@pytest.mark.parametrize("space,params", [(s, p) for s, ps in CANDIDATES.items() for p in ps])
def test_lowered_conversion_is_the_same_model(space, params):
    from costmodel.convert import quiet
    from costmodel.tflite import read_model
    from measure_agent.plan.reference import Reference
    from nas.convert import keras_module, to_tflite

    keras = keras_module()
    keras.utils.set_random_seed(0)
    model, tunables = get_space(space).candidate(optuna.trial.FixedTrial(params), (8, 8, 1), 10)
    with quiet():
        through_keras, lowered = to_tflite(model, "float32"), to_tflite(model, "float32", lowered=True)
        int8_keras, int8_lowered = to_tflite(model, "int8"), to_tflite(model, "int8", lowered=True)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(Reference(lowered).run([x])[0], Reference(through_keras).run([x])[0], atol=1e-6)
    a, b = read_model(int8_keras), read_model(int8_lowered)
    assert [op.type for op in a.ops] == [op.type for op in b.ops]
    assert [tuple(b.tensors[op.outputs[0]].shape) for op in b.ops] == [tuple(a.tensors[op.outputs[0]].shape)
                                                                        for op in a.ops]
    named = {keras_layer(b.op_name(op), tunables) for op in b.ops} - {None}
    assert named == set(tunables)  # the repair rule finds every tunable layer in the converted model


def test_the_users_space_example_builds_converts_and_is_repairable():
    """``examples/nas_space.py`` (the README's example of a space of one's own): registered by subclassing, built
    from a trial, converted to int8 for the board, with its tunable layers found in the converted model."""
    from pathlib import Path

    from costmodel.convert import quiet
    from costmodel.tflite import read_model
    from nas.convert import keras_module, to_tflite
    from nas.spaces import SearchSpace

    example = Path(__file__).resolve().parents[1] / "examples" / "nas_space.py"
    space = get_space("tiny-mlp", str(example))
    assert isinstance(space, SearchSpace) and type(space).__name__ == "TinyMLP"
    keras_module().utils.set_random_seed(0)
    model, tunables = space.candidate(optuna.trial.FixedTrial({"layers": 2, "units_0": 24, "units_1": 9}), (8, 8, 1),
                                      10)
    assert tunables == {"dense0": {"units": "units_0"}, "dense1": {"units": "units_1"}}
    assert model.input_shape == (1, 8, 8, 1) and model.output_shape == (1, 10)
    with quiet():
        graph = read_model(to_tflite(model, "int8", lowered=True))
    assert [op.type for op in graph.ops].count("FULLY_CONNECTED") == 3
    assert {keras_layer(graph.op_name(op), tunables) for op in graph.ops} - {None} == set(tunables)
