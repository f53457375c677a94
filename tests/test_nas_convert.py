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


#: untrained candidates whose zero-bias conversion is degenerate (seed 0): a single hidden ReLU unit, and two
#: stride-2 filters behind average pooling, dead on both calibration inputs
DEAD_LAYER = [("cnn", {"blocks": 3, "filters_0": 14, "kernel_0": 1, "stride_0": 1, "pool_0": "none", "filters_1": 18,
                       "kernel_1": 5, "stride_1": 1, "pool_1": "max", "filters_2": 12, "kernel_2": 1, "stride_2": 1,
                       "pool_2": "avg", "head": "flatten", "units": 1}),
              ("cnn", {"blocks": 2, "filters_0": 30, "kernel_0": 5, "stride_0": 2, "pool_0": "max", "filters_1": 2,
                       "kernel_1": 3, "stride_1": 2, "pool_1": "avg", "head": "flatten", "units": 39})]
UNTRAINED = DEAD_LAYER + [(s, p) for s, ps in CANDIDATES.items() for p in ps] + \
    [("tiny-mlp", {"layers": 2, "units_0": 4, "units_1": 4})]


def _softmax_input_scale(graph) -> float:
    op = next(op for op in graph.ops if op.type == "SOFTMAX")
    return float(graph.tensors[op.inputs[0]].quant.scale[0])


@pytest.mark.parametrize("space,params", UNTRAINED)
def test_an_untrained_candidate_converts_and_passes_the_plan_compiler(space, params):
    """What the search measures of an untrained candidate runs on the board: its logits have a real range, so the
    softmax's input multiplier beta x scale x 2^26 (TFLite's PreprocessSoftmaxScaling with 5 integer bits) is
    above one, and the plan compiler accepts every op."""
    from pathlib import Path

    from costmodel.convert import quiet
    from costmodel.tflite import read_model
    from measure_agent.plan import compile_plan
    from nas.convert import keras_module, untrained_tflite

    example = Path(__file__).resolve().parents[1] / "examples" / "nas_space.py"
    keras_module().utils.set_random_seed(0)
    model, _ = get_space(space, str(example)).candidate(optuna.trial.FixedTrial(params), (8, 8, 1), 10)
    with quiet():
        graph = read_model(untrained_tflite(model))
    assert _softmax_input_scale(graph) * 2 ** 26 > 1.0
    plan = compile_plan(graph)
    assert len(plan.layers) == len(graph.ops)


@pytest.mark.parametrize("space,params", DEAD_LAYER)
def test_with_zero_biases_a_dead_layer_leaves_the_logits_no_range(space, params):
    """The cause of the failure fixed above: with Keras' zero biases the same candidates' logits are constant over
    the calibration inputs and the converter's fallback scale makes the softmax multiplier < 1."""
    from costmodel.convert import quiet
    from costmodel.tflite import read_model
    from nas.convert import keras_module, to_tflite

    keras_module().utils.set_random_seed(0)
    model, _ = get_space(space).candidate(optuna.trial.FixedTrial(params), (8, 8, 1), 10)
    with quiet():
        graph = read_model(to_tflite(model, "int8", lowered=True))
    assert _softmax_input_scale(graph) * 2 ** 26 < 1.0


def test_the_architecture_digest_ignores_values_and_sees_structure():
    """Untrained candidates of other weights (another seed) have other bytes and the same architecture; one more
    filter, another kernel size or a stride is another architecture; a stride the space drops on a 1x1 feature map
    is the same one."""
    from costmodel.convert import quiet
    from costmodel.tflite import read_model
    from nas.architecture import architecture_digest
    from nas.convert import keras_module, untrained_tflite

    base = {"blocks": 2, "filters_0": 6, "kernel_0": 3, "stride_0": 2, "pool_0": "max", "filters_1": 5,
            "kernel_1": 3, "stride_1": 1, "pool_1": "none", "head": "flatten", "units": 8}

    def convert(params: dict, seed: int = 0) -> bytes:
        keras_module().utils.set_random_seed(seed)
        model, _ = get_space("cnn").candidate(optuna.trial.FixedTrial(params), (8, 8, 1), 10)
        with quiet():
            return untrained_tflite(model, seed)

    def digest(data: bytes) -> str:
        return architecture_digest(read_model(data))

    a, b = convert(base), convert(base, seed=1)
    assert a != b and digest(a) == digest(b)
    assert len({digest(a), digest(convert({**base, "filters_1": 6})), digest(convert({**base, "kernel_1": 5})),
                digest(convert({**base, "stride_1": 2}))}) == 4
    # 8x8 -> stride 2 -> 4x4 -> max pool -> 2x2 -> stride 2 -> 1x1: the third block's stride and pooling are dropped
    deep = {**base, "blocks": 3, "stride_1": 2, "pool_1": "none", "filters_2": 4, "kernel_2": 1, "pool_2": "none"}
    assert digest(convert({**deep, "stride_2": 1})) == digest(convert({**deep, "stride_2": 2}, seed=3))
