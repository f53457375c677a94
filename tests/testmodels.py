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
    elif kind == "dense":  # "batch": rows of n inputs (a FULLY_CONNECTED over a (batch, n) input)
        x = inp = keras.Input((p["batch"], p["n"]) if "batch" in p else (p["n"],), batch_size=1)
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
    elif kind == "sub":
        x = inp = keras.Input(p["shape"], batch_size=1)
        a = layers.Conv2D(p["filters"], 1)(x)
        b = layers.Conv2D(p["filters"], 3, padding="same")(x)
        x = layers.Subtract()([a, b])
        if act:
            x = layers.Activation(act)(x)
    elif kind == "bcast_sub":
        x = inp = keras.Input(p["shape"], batch_size=1)
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Dense(p["shape"][-1])(s)
        x = layers.Subtract()([s, x] if p.get("swap") else [x, s])
    elif kind == "tanh":
        x = inp = keras.Input((p["n"],), batch_size=1)
        x = layers.Dense(p["units"])(x)
        x = layers.Activation("tanh")(x)
    elif kind == "padv2":  # PAD with a constant other than zero (PADV2)
        import tensorflow as tf

        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.Conv2D(p.get("filters", 4), 1)(x)
        pads = [[0, 0]] + [list(v) for v in p["pads"]] + [[0, 0]]
        x = layers.Lambda(lambda t: tf.pad(t, pads, constant_values=p["value"]))(x)
        x = layers.Conv2D(p.get("filters", 4), 3)(x)
    elif kind == "reduce_mean":  # MEAN over any axes
        import tensorflow as tf

        x = inp = keras.Input(p["shape"], batch_size=1)
        x = layers.Conv2D(p["filters"], 1)(x) if len(p["shape"]) == 3 else layers.Dense(p["filters"])(x)
        x = layers.Lambda(lambda t: tf.reduce_mean(t, axis=p["axes"], keepdims=p.get("keepdims", False)))(x)
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
    shapes = [[int(d) for d in t.shape] for t in model.inputs]
    rng = np.random.default_rng(seed + 1)

    def representative():
        for _ in range(24):
            yield [rng.normal(0.0, 1.0, shape).astype(np.float32) for shape in shapes]

    if quant in ("int8", "int8_floatio"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if quant == "int8":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    elif quant in ("int16", "int16_floatio"):  # 16x8: int16 activations, int8 weights; int16 (or float: "int16_floatio") IO
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if quant == "int16":
            conv.inference_input_type = tf.int16
            conv.inference_output_type = tf.int16
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
        elif d["dtype"] == np.int16:
            xs.append(rng.integers(-32768, 32768, size=d["shape"], dtype=np.int16))
        else:
            xs.append(rng.normal(0.0, 1.0, size=d["shape"]).astype(np.float32))
    return xs


# ---- float and dynamic-range twins of the shipped int8 models -------------------------------------------
#
# The MLPerf Tiny int8 models come without their Keras originals. A twin is the same network rebuilt in
# Keras from the int8 graph (same ops, shapes, strides, paddings, fused activations) with the dequantized
# int8 weights and biases (weight * scale, bias * input scale * weight scale), then converted to float32 or
# with dynamic-range quantization like any other test model. Outputs are not the int8 model's; what the
# twins test is that the runtime runs float and hybrid networks of these architectures within tolerance.

TWIN_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "RESHAPE",
            "SOFTMAX", "QUANTIZE", "DEQUANTIZE")


def _dequantized(t) -> np.ndarray:
    q = np.asarray(t.data).reshape(t.shape).astype(np.float64)
    scale = np.asarray(t.quant.scale, np.float64).reshape(-1)
    zp = np.asarray(t.quant.zero_point, np.float64).reshape(-1)
    if scale.size == 1:
        return ((q - zp[0]) * scale[0]).astype(np.float32)
    shape = [1] * q.ndim
    shape[t.quant.axis] = scale.size
    return ((q - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def _twin_keras(path: Path):
    import keras
    from keras import layers

    from costmodel.tflite import read_model

    g = read_model(path)
    acts = {"NONE": None, "RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": None}
    (inp_i,) = g.inputs
    inp = keras.Input(tuple(g.tensors[inp_i].shape[1:]), batch_size=1)
    env = {inp_i: inp}
    weights = []  # (layer, [arrays]) set after the model is built

    def scale_of(i):
        return float(g.tensors[i].quant.scale.reshape(-1)[0])

    for op in g.ops:
        if op.type not in TWIN_OPS:
            raise ValueError(f"no twin for op {op.type}")
        x = env[op.inputs[0]]
        o = op.options
        act = o.get("fused_activation_function", "NONE")
        if act not in acts or act == "RELU_N1_TO_1":
            raise ValueError(f"no twin for activation {act}")
        out_i = op.outputs[0]
        if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = g.tensors[op.inputs[1]]
            wf = _dequantized(w)
            s_w = np.asarray(w.quant.scale, np.float64).reshape(-1)
            bias = None
            if op.input(2) >= 0:
                bq = np.asarray(g.tensors[op.inputs[2]].data, np.float64)
                bias = (bq * scale_of(op.inputs[0]) * (s_w if s_w.size > 1 else s_w[0])).astype(np.float32)
            kw = dict(strides=(o["stride_h"], o["stride_w"]), padding=o["padding"].lower(),
                      dilation_rate=(o["dilation_h_factor"], o["dilation_w_factor"]), activation=acts[act],
                      use_bias=bias is not None)
            if op.type == "CONV_2D":
                layer = layers.Conv2D(w.shape[0], (w.shape[1], w.shape[2]), **kw)
                kernel = wf.transpose(1, 2, 3, 0)
            else:
                ic = g.tensors[op.inputs[0]].shape[3]
                dm = w.shape[3] // ic
                layer = layers.DepthwiseConv2D((w.shape[1], w.shape[2]), depth_multiplier=dm, **kw)
                kernel = wf.reshape(w.shape[1], w.shape[2], ic, dm)
            env[out_i] = layer(x)
            weights.append((layer, [kernel] + ([bias] if bias is not None else [])))
        elif op.type == "FULLY_CONNECTED":
            w = g.tensors[op.inputs[1]]
            wf = _dequantized(w)
            s_w = np.asarray(w.quant.scale, np.float64).reshape(-1)
            if len(x.shape) != 2:
                x = layers.Reshape((int(np.prod(x.shape[1:])),))(x)
            bias = None
            if op.input(2) >= 0:
                bq = np.asarray(g.tensors[op.inputs[2]].data, np.float64)
                bias = (bq * scale_of(op.inputs[0]) * (s_w if s_w.size > 1 else s_w[0])).astype(np.float32)
            layer = layers.Dense(w.shape[0], activation=acts[act], use_bias=bias is not None)
            y = layer(x)
            weights.append((layer, [wf.T] + ([bias] if bias is not None else [])))
            if len(g.tensors[out_i].shape) != 2:
                y = layers.Reshape(tuple(g.tensors[out_i].shape[1:]))(y)
            env[out_i] = y
        elif op.type in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            cls = layers.AveragePooling2D if op.type == "AVERAGE_POOL_2D" else layers.MaxPooling2D
            y = cls((o["filter_height"], o["filter_width"]), strides=(o["stride_h"], o["stride_w"]),
                    padding=o["padding"].lower())(x)
            env[out_i] = layers.Activation(acts[act])(y) if acts[act] else y
        elif op.type == "ADD":
            y = layers.Add()([x, env[op.inputs[1]]])
            env[out_i] = layers.Activation(acts[act])(y) if acts[act] else y
        elif op.type == "RESHAPE":
            env[out_i] = layers.Reshape(tuple(g.tensors[out_i].shape[1:]))(x)
        elif op.type == "SOFTMAX":
            env[out_i] = layers.Softmax()(x)
        else:  # QUANTIZE / DEQUANTIZE at the float boundary: the twin is float throughout
            env[out_i] = x
    (out_i,) = g.outputs
    model = keras.Model(inp, env[out_i])
    for layer, arrays in weights:
        layer.set_weights(arrays)
    return model


def twin_model(path: Path | str, quant: str) -> Path:
    """The float32 (``quant="float"``) or dynamic-range (``"hybrid"``) twin of the int8 model at ``path``,
    converted once and cached."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    key = _key("twin", quant, {"source": digest})
    out = CACHE / f"twin_{path.stem}_{quant}_{key}.tflite"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf  # noqa: F401  (imported quietly)

        tf.get_logger().setLevel("ERROR")
        data = _convert(_twin_keras(path), quant, 0)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


# ---- models with biases no converter writes -----------------------------------------------------------

def with_biases(path: Path | str, biases: dict[int, list[int]] | str) -> Path:
    """A copy of the model at ``path`` whose conv / depthwise / FC biases are replaced (written into the
    flatbuffer's bias buffers in place). ``biases`` maps a layer index to its new values, or is ``"extreme"``:
    every bias channel cycles through INT_MAX, INT_MIN, near-limit and > 2^30 values of its type, so int32
    accumulators wrap (int8) and int64 ones go far beyond any trained model's (16x8)."""
    from costmodel.tflite import read_model

    path = Path(path)
    data = bytearray(path.read_bytes())
    key = _key("biases", path.stem, {"source": hashlib.sha256(data).hexdigest()[:16], "biases": biases})
    out = CACHE / f"biases_{path.stem}_{key}.tflite"
    if out.exists():
        return out
    g = read_model(path)
    for op in g.ops:
        if op.type not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or op.input(2) < 0:
            continue
        t = g.tensors[op.inputs[2]]
        dtype = np.dtype("<i8") if t.dtype == "int64" else np.dtype("<i4")
        old = np.asarray(t.data).astype(dtype)
        if biases == "extreme":
            info = np.iinfo(dtype)
            lim = (1 << 40) if t.dtype == "int64" else (1 << 30)
            cycle = [info.max, info.min, info.max - 50, info.min + 50, lim + 12345, -lim - 999, 0, 7]
            new = np.array([cycle[i % len(cycle)] for i in range(old.size)], dtype)
        elif op.index in biases:
            new = np.asarray(biases[op.index], dtype)
        else:
            continue
        raw = old.tobytes()
        at = data.find(raw)
        if at < 0 or data.find(raw, at + 1) >= 0:
            raise ValueError(f"layer {op.index}: its bias bytes are not unique in the file")
        data[at:at + len(raw)] = new.tobytes()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, out)
    return out


def with_filter_scales(path: Path | str, factors: list[float]) -> Path:
    """A copy of the int8 model at ``path`` whose conv / depthwise / FC per-channel weight scales are multiplied
    by ``factors`` (cycled over the channels; written into the flatbuffer in place), so the requantization
    multipliers reach the ranges trained models seldom have: 1/4 and above, above 1 (a left shift), below
    2^-22."""
    from costmodel.tflite import read_model

    path = Path(path)
    data = bytearray(path.read_bytes())
    key = _key("scales", path.stem, {"source": hashlib.sha256(data).hexdigest()[:16], "factors": list(factors)})
    out = CACHE / f"scales_{path.stem}_{key}.tflite"
    if out.exists():
        return out
    g = read_model(path)
    done = set()
    for op in g.ops:
        if op.type not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or op.inputs[1] in done:
            continue
        done.add(op.inputs[1])
        q = g.tensors[op.inputs[1]].quant
        old = np.asarray(q.scale if q is not None else [], "<f4")
        if old.size < 2:
            continue
        new = (old * np.array([factors[i % len(factors)] for i in range(old.size)], "<f4")).astype("<f4")
        raw = old.tobytes()
        at = data.find(raw)
        if at < 0 or data.find(raw, at + 1) >= 0:
            raise ValueError(f"layer {op.index}: its weight scale bytes are not unique in the file")
        data[at:at + len(raw)] = new.tobytes()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, out)
    return out
