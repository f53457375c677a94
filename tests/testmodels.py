"""Small random test models for the plan / kernel exactness tests.

Models are built with Keras (batch size 1), converted to int8 (random calibration data), float32 or
dynamic-range (hybrid) .tflite, and cached in the ``test-models`` folder of the project's cache root (``measure_agent.firmware_build.cache``) keyed by a hash of the generating
parameters, so TensorFlow is imported only when a model is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from costmodel.convert import quiet
from measure_agent.firmware_build import cache_dir

CACHE = cache_dir("test-models")
GENERATOR_VERSION = 3


def _key(kind: str, quant: str, params: dict) -> str:
    text = json.dumps({"v": GENERATOR_VERSION, "kind": kind, "quant": quant, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _build(kind: str, p: dict, seed: int):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    act = p.get("act")
    act = None if act in (None, "none") else act
    if kind == "conv":
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.Conv2D(p["filters"], p["k"], strides=p.get("s", 1), padding=p.get("pad", "same"),
                          dilation_rate=p.get("dil", 1), activation=act, use_bias=p.get("bias", True))(x)
    elif kind == "dwconv":
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.DepthwiseConv2D(p["k"], strides=p.get("s", 1), padding=p.get("pad", "same"),
                                   depth_multiplier=p.get("dm", 1), activation=act)(x)
    elif kind == "dense":
        x = inp = keras.Input((p["n"],), batch_size=1)
        x = layers.Dense(p["units"], activation=act)(x)
    elif kind == "pool":
        x = inp = keras.Input(p["shape"], batch_size=1)
        cls = layers.AveragePooling2D if p["type"] == "avg" else layers.MaxPooling2D
        x = cls(p["pool"], strides=p.get("s"), padding=p.get("pad", "valid"))(x)
    elif kind == "add":
        x = inp = keras.Input(p["shape"], batch_size=1)
        a = layers.Conv2D(p["filters"], 1)(x)
        b = layers.Conv2D(p["filters"], 3, padding="same")(x)
        x = layers.Add()([a, b])
        if act:
            x = layers.Activation(act)(x)
    elif kind == "mul":
        x = inp = keras.Input(p["shape"], batch_size=1)
        a = layers.Conv2D(p["filters"], 1)(x)
        b = layers.Conv2D(p["filters"], 3, padding="same")(x)
        x = layers.Multiply()([a, b])
    elif kind == "se":  # squeeze-excite: MEAN, FC, LOGISTIC, broadcast MUL
        x = inp = keras.Input(p["shape"], batch_size=1)
        c = p["shape"][-1]
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Dense(max(1, c // 2), activation="relu")(s)
        s = layers.Dense(c, activation="sigmoid")(s)
        x = layers.Multiply()([x, s])
    elif kind == "bcast_add":
        x = inp = keras.Input(p["shape"], batch_size=1)
        c = p["shape"][-1]
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Dense(c)(s)
        x = layers.Add()([x, s])
    elif kind == "softmax":
        x = inp = keras.Input((p["n"],), batch_size=1)
        x = layers.Dense(p["units"])(x)
        x = layers.Softmax()(x)
    elif kind == "logistic":
        x = inp = keras.Input((p["n"],), batch_size=1)
        x = layers.Dense(p["units"])(x)
        x = layers.Activation("sigmoid")(x)
    elif kind == "relu":
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.ReLU(max_value=p.get("max"))(x)
    elif kind == "mean":
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.Conv2D(p["filters"], 1)(x)
        x = layers.GlobalAveragePooling2D(keepdims=p.get("keepdims", False))(x)
    elif kind == "pad":
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.ZeroPadding2D(p["pads"])(x)
        x = layers.Conv2D(p.get("filters", 4), 3)(x)
    elif kind == "concat":
        x = inp = keras.Input(p["shape"], batch_size=1)
        a = layers.Conv2D(p["f1"], 1)(x)
        b = layers.Conv2D(p["f2"], 3, padding="same")(x)
        x = layers.Concatenate(axis=p.get("axis", -1))([a, b])
    elif kind == "flatten":
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.Conv2D(p["filters"], 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(p["units"])(x)
    elif kind == "two_io":  # two inputs, two outputs
        a = keras.Input(p["shape"], batch_size=1)
        b = keras.Input(p["shape"], batch_size=1)
        y1 = layers.Conv2D(4, 3, padding="same")(layers.Add()([a, b]))
        y2 = layers.MaxPooling2D(2)(b)
        model = keras.Model([a, b], [y1, y2])
        return _randomize(model, seed)
    elif kind == "cnn":  # a small mixed network
        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        y = layers.Conv2D(8, 1, activation="relu")(x)
        x = layers.Add()([x, y])
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(12, 3, padding="valid", activation="relu6")(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(10)(x)
        x = layers.Softmax()(x)
    else:
        raise ValueError(f"unknown test model kind {kind}")
    return _randomize(keras.Model(inp, x), seed)


def _randomize(model, seed: int):
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        if w.ndim == 1:  # biases and the like
            weights.append(rng.normal(0.0, 0.2, w.shape).astype(np.float32))
        else:
            fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 1
            weights.append(rng.uniform(-1.0, 1.0, w.shape).astype(np.float32) * np.float32(1.5 / np.sqrt(fan_in)))
    model.set_weights(weights)
    return model


def _convert(model, quant: str, seed: int) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant in ("int8", "int8_floatio"):
        shapes = [[int(d) for d in t.shape] for t in model.inputs]
        rng = np.random.default_rng(seed + 1)

        def rep():
            for _ in range(24):
                yield [rng.normal(0.0, 1.0, shape).astype(np.float32) for shape in shapes]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if quant == "int8":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    elif quant == "hybrid":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quant != "float":
        raise ValueError(quant)
    return conv.convert()


def model_path(kind: str, quant: str = "int8", seed: int = 0, **params) -> Path:
    """Path of the cached .tflite for (kind, quant, params), building it on first use."""
    key = _key(kind, quant, dict(params, seed=seed))
    path = CACHE / f"{kind}_{quant}_{key}.tflite"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf  # noqa: F401  (imported quietly)

        tf.get_logger().setLevel("ERROR")
        model = _build(kind, params, seed)
        data = _convert(model, quant, seed)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def random_inputs(details: list[dict], rng: np.random.Generator) -> list[np.ndarray]:
    xs = []
    for d in details:
        if d["dtype"] == np.int8:
            xs.append(rng.integers(-128, 128, size=d["shape"], dtype=np.int8))
        else:
            xs.append(rng.normal(0.0, 1.0, size=d["shape"]).astype(np.float32))
    return xs
