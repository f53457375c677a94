"""Keras candidates to ``.tflite``: full int8 (calibrated), float32 or dynamic-range, fast enough for a search.

TensorFlow's usual path (``TFLiteConverter.from_keras_model``) exports a SavedModel first, about two thirds of
the time of converting a small model. A candidate is converted from the concrete function of its forward
pass instead (``from_concrete_functions`` without lowering to a SavedModel): the same TFLite graph, three
times faster. Of what is left, tracing the model through Keras' layer machinery is the larger part; with
``lowered=True`` the layers this module knows (convolutions, depthwise convolutions, dense, pooling, flatten,
reshape, activations) are traced as the TensorFlow ops they stand for, in the layer's name scope (so the
TFLite op names still name the Keras layer), and any other layer through Keras: the same TFLite ops.

An untrained candidate (:func:`untrained_tflite`) is calibrated on a few random inputs: its latency and energy
do not depend on the weight values. Its biases are drawn at random first: Keras starts them at zero, and then
one ReLU layer that is dead on the calibration inputs (a single unit, two filters) makes every later tensor
exactly zero; the converter gives such a tensor the range of its zero-range fallback (scale 7.8e-9), and the
softmax of logits of that scale has an input multiplier below one, which neither TFLite nor our runtime can
run. With positive biases a dead unit outputs zero and the next layer its biases, so every tensor after a
biased layer has a real range. A trained model is calibrated on samples of its training data (and converted
through Keras).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from costmodel.convert import QUANTIZATIONS, configure_quantization, quiet

#: random calibration inputs of an untrained candidate (its ranges do not matter for latency)
UNTRAINED_SAMPLES = 2
#: an untrained candidate's biases are uniform in [0, UNTRAINED_BIAS): the calibration inputs' scale (they are
#: uniform in [-1, 1]), so a layer's biases count as much as its inputs
UNTRAINED_BIAS = 1.0


def keras_module():
    """``keras``, imported quietly (TensorFlow's start-up notices stay out of the output)."""
    with quiet():
        import keras

    return keras


def random_representative(shapes: list[tuple[int, ...]], samples: int = UNTRAINED_SAMPLES,
                          seed: int = 0) -> Callable[[], Iterator[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    batches = [[rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in shapes] for _ in range(samples)]
    return lambda: iter(batches)


def data_representative(x: np.ndarray, samples: int = 64, seed: int = 0) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Calibration on ``samples`` rows of ``x`` (one at a time, batch 1)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(samples, len(x)), replace=False)
    rows = [[x[i:i + 1].astype(np.float32)] for i in pick]
    return lambda: iter(rows)


_ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax")


def _activation(tf, name: str):
    return {"linear": lambda x: x, "relu": tf.nn.relu, "relu6": tf.nn.relu6, "sigmoid": tf.sigmoid,
            "tanh": tf.tanh, "softmax": tf.nn.softmax}[name]


def _lowering(tf, keras, layer):
    """The TensorFlow ops of ``layer`` as a function (weights as constants), or None for a layer traced through
    Keras. Only exact types with the options the ops take directly (channels last, known activations)."""
    L = keras.layers
    kind = type(layer)
    c = layer.get_config()
    if c.get("data_format", "channels_last") != "channels_last":
        return None
    if kind in (L.Conv2D, L.DepthwiseConv2D, L.Dense):
        if c.get("activation") not in _ACTIVATIONS or (kind is L.Conv2D and c.get("groups", 1) != 1):
            return None
        kernel = tf.constant(layer.kernel.numpy())
        bias = tf.constant(layer.bias.numpy()) if layer.use_bias else None
        act = _activation(tf, c["activation"])
        if kind is L.Conv2D:
            def op(x):
                return tf.nn.conv2d(x, kernel, strides=[1, *c["strides"], 1], padding=c["padding"].upper(),
                                    dilations=[1, *c["dilation_rate"], 1])
        elif kind is L.DepthwiseConv2D:
            def op(x):
                return tf.nn.depthwise_conv2d(x, kernel, strides=[1, *c["strides"], 1], padding=c["padding"].upper(),
                                              dilations=list(c["dilation_rate"]))
        else:
            def op(x):
                return tf.matmul(x, kernel) if len(x.shape) == 2 else tf.tensordot(x, kernel, axes=1)

        def run(x):
            y = op(x)
            return act(tf.nn.bias_add(y, bias) if bias is not None else y)
        return run
    if kind in (L.MaxPooling2D, L.AveragePooling2D):
        pool = tf.nn.max_pool2d if kind is L.MaxPooling2D else tf.nn.avg_pool2d
        return lambda x: pool(x, list(c["pool_size"]), list(c["strides"] or c["pool_size"]), c["padding"].upper())
    if kind is L.GlobalAveragePooling2D:
        return lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=bool(c.get("keepdims")))
    if kind is L.Flatten:
        return lambda x: tf.reshape(x, [x.shape[0], -1])
    if kind is L.Reshape:
        return lambda x: tf.reshape(x, [x.shape[0], *c["target_shape"]])
    if kind is L.Activation and c.get("activation") in _ACTIVATIONS:
        return _activation(tf, c["activation"])
    if kind is L.ReLU and not c.get("negative_slope") and not c.get("threshold"):
        cap = c.get("max_value")
        return tf.nn.relu6 if cap == 6 else tf.nn.relu if cap is None else None
    if kind is L.Dropout:
        return lambda x: x
    return None


def _forward(tf, keras, model, lowered: bool):
    """The model's forward pass for tracing: through Keras, or with the known layers lowered to TensorFlow ops."""
    run_graph = getattr(model, "_run_through_graph", None)
    if not lowered or run_graph is None:
        return lambda *xs: model(xs[0] if len(xs) == 1 else list(xs), training=False)
    ops = {}
    for layer in model.layers:
        fn = _lowering(tf, keras, layer)
        if fn is not None:
            ops[id(layer)] = (layer.name, fn)

    def operation(layer):
        found = ops.get(id(layer))
        if found is None:
            return layer  # through Keras (outside fit, layers run in inference mode)
        name, fn = found

        def scoped(x):
            with tf.name_scope(name):
                return fn(x)
        return scoped

    return lambda *xs: run_graph(xs[0] if len(xs) == 1 else list(xs), operation_fn=operation)


def to_tflite(model, quantization: str = "int8",
              representative: Callable[[], Iterator[list[np.ndarray]]] | None = None, *, lowered: bool = False) -> bytes:
    """``.tflite`` bytes of an in-memory Keras model with a fixed input shape (batch 1).

    ``int8``: int8 weights, activations, input and output (random calibration unless ``representative``);
    ``dynamic``: int8 weights, float activations; ``float32``: as it is. ``lowered``: trace the known layers as
    TensorFlow ops (see the module docstring).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}")
    with quiet():
        import keras
        import tensorflow as tf

        shapes = [tuple(1 if d is None else int(d) for d in inp.shape) for inp in model.inputs]
        specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
        forward = tf.function(_forward(tf, keras, model, lowered), autograph=False)

        concrete = forward.get_concrete_function(*specs)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
        converter.experimental_lower_to_saved_model = False
        configure_quantization(converter, quantization, representative or random_representative(shapes))
        return converter.convert()


def randomise_biases(model, seed: int = 0, high: float = UNTRAINED_BIAS) -> int:
    """Set every bias of an untrained ``model`` to uniform random values in [0, ``high``) (see the module
    docstring); returns how many bias vectors were set."""
    rng = np.random.default_rng(seed)
    count = 0
    layers = list(model.layers)
    while layers:
        layer = layers.pop(0)
        layers.extend(getattr(layer, "layers", []))  # a nested model's own layers
        bias = getattr(layer, "bias", None)
        if bias is not None and getattr(layer, "use_bias", True):
            bias.assign(rng.uniform(0.0, high, size=tuple(bias.shape)).astype(np.float32))
            count += 1
    return count


def untrained_tflite(model, seed: int = 0) -> bytes:
    """The full-int8 ``.tflite`` of an untrained candidate, as the search measures it: random biases, random
    calibration inputs, the known layers lowered."""
    randomise_biases(model, seed)
    return to_tflite(model, "int8", lowered=True)


def clear() -> None:
    """Free the graphs of converted models (a long search converts thousands)."""
    keras_module().backend.clear_session(free_memory=True)
