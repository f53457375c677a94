"""The study's models: the two it builds in the paper's architectures, and the user's own.

Built in (the paper's appendix C architectures, as described in the papers they come from):

``lenet5``    LeNet-5 (LeCun et al. 1998) on 32x32x1: 5x5 convolution, 6 filters (valid) -> 2x2 max pooling ->
              5x5 convolution, 16 filters (valid) -> 2x2 max pooling -> dense 120 -> dense 84 -> dense 10, ReLU
              activations, softmax output.
``resnet20``  ResNet-20 (He et al. 2016, the CIFAR-10 network) on 32x32x3: a 3x3 convolution of 16 filters, three
              stages of three basic blocks (two 3x3 convolutions with batch normalisation; 16, 32, 64 filters,
              stride 2 and a 1x1 projection shortcut where a stage starts), global average pooling, dense 10.

They are trained briefly (latency and energy do not depend on the weights; accuracy does) on a dataset resized to
their input: by default scikit-learn's 8x8 digits (no download), upsampled to 32x32 and repeated over the
channels. Each becomes three ``.tflite`` files (float32, dynamic-range, full int8 calibrated on training
samples), cached by content (architecture, dataset fingerprint, epochs, seed, TensorFlow version) so a second
study needs no TensorFlow at all.

A user's ``.tflite`` is measured as it is (its quantization decides the configurations that apply); a user's
Keras model (``.keras``/``.h5``) is converted the three ways, calibrated on the dataset when one is given.

:func:`prepare` is meant to run in a child process (TensorFlow stays out of the process that drives the agents);
it writes the files and a ``meta.json`` per model into the cache folder and returns their paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from costmodel.datasets import Dataset

#: bumped when an architecture or the training recipe changes (a new cache key)
BUILD_VERSION = 1
BUILTIN = ("lenet5", "resnet20")
INPUTS = {"lenet5": (32, 32, 1), "resnet20": (32, 32, 3)}
TITLES = {"lenet5": "LeNet-5", "resnet20": "ResNet-20"}
QUANTIZATIONS = ("float32", "dynamic", "int8")
DEFAULT_EPOCHS = {"lenet5": 4, "resnet20": 3}


@dataclass
class PreparedModel:
    """One model of the study: its ``.tflite`` per quantization (paths), where it came from and its training."""

    name: str
    title: str
    origin: str                                  # "built-in", "tflite" or "keras"
    files: dict[str, str] = field(default_factory=dict)   # quantization -> .tflite path
    input_shape: tuple[int, ...] = ()
    trained: dict = field(default_factory=dict)  # {"dataset", "epochs", "samples", "float_accuracy_keras", "seconds"}
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreparedModel:
        return cls(d["name"], d["title"], d["origin"], dict(d.get("files", {})), tuple(d.get("input_shape", ())),
                   dict(d.get("trained", {})), d.get("note", ""))

    def tflite(self, quantization: str) -> bytes:
        return Path(self.files[quantization]).read_bytes()


# --- architectures -----------------------------------------------------------------------------------------------


def lenet5(keras, input_shape=INPUTS["lenet5"], classes: int = 10, batch_size: int | None = 1):
    L = keras.layers
    x = inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="image")
    x = L.Conv2D(6, 5, padding="valid", activation="relu", name="c1")(x)
    x = L.MaxPooling2D(2, name="s2")(x)
    x = L.Conv2D(16, 5, padding="valid", activation="relu", name="c3")(x)
    x = L.MaxPooling2D(2, name="s4")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(120, activation="relu", name="c5")(x)
    x = L.Dense(84, activation="relu", name="f6")(x)
    out = L.Dense(classes, activation="softmax", name="output")(x)
    return keras.Model(inp, out, name="lenet5")


def resnet20(keras, input_shape=INPUTS["resnet20"], classes: int = 10, batch_size: int | None = 1):
    L = keras.layers

    def unit(x, filters, kernel=3, stride=1, relu=True, norm=True, name=""):
        x = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=not norm, name=f"{name}_conv",
                     kernel_initializer="he_normal")(x)
        if norm:
            x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.ReLU(name=f"{name}_relu")(x) if relu else x

    x = inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="image")
    x = unit(x, 16, name="stem")
    filters = 16
    for stage in range(3):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage + 1}b{block + 1}"
            y = unit(x, filters, stride=stride, name=f"{name}a")
            y = unit(y, filters, relu=False, name=f"{name}b")
            if stride != 1:
                x = unit(x, filters, kernel=1, stride=stride, relu=False, norm=False, name=f"{name}_proj")
            x = L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([x, y]))
        filters *= 2
    x = L.GlobalAveragePooling2D(name="pool")(x)
    out = L.Dense(classes, activation="softmax", name="output")(x)
    return keras.Model(inp, out, name="resnet20")


ARCHITECTURES = {"lenet5": lenet5, "resnet20": resnet20}


# --- data ----------------------------------------------------------------------------------------------------------


def resize_images(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Images ``(n, h, w, c)`` (or ``(n, h, w)``) resized to ``shape`` = (H, W, C): bilinear in space (exact
    repetition for integer factors), channels repeated or averaged. Float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images of shape {list(x.shape[1:])} cannot be resized to {list(shape)}")
    h, w, c = (int(d) for d in shape)
    n, h0, w0, c0 = x.shape
    if (h0, w0) != (h, w):
        if h % h0 == 0 and w % w0 == 0:
            x = np.repeat(np.repeat(x, h // h0, axis=1), w // w0, axis=2)
        else:
            ys, xs = np.linspace(0, h0 - 1, h), np.linspace(0, w0 - 1, w)
            y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
            y1, x1 = np.minimum(y0 + 1, h0 - 1), np.minimum(x0 + 1, w0 - 1)
            fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
            top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
            bottom = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
            x = (top * (1 - fy) + bottom * fy).astype(np.float32)
    if c0 != c:
        x = np.repeat(x, c, axis=3) if c0 == 1 else np.repeat(x.mean(axis=3, keepdims=True), c, axis=3)
    return x.astype(np.float32)


def fit_to_input(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` shaped for a model input of ``shape`` (without batch): as it is when the sizes agree, resized when
    both are images; ValueError otherwise."""
    shape = tuple(int(d) for d in shape)
    if tuple(x.shape[1:]) == shape:
        return x.astype(np.float32)
    if int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        return x.reshape((len(x), *shape)).astype(np.float32)
    if len(shape) == 3 and x.ndim in (3, 4):
        return resize_images(x, shape)
    raise ValueError(f"samples of shape {list(x.shape[1:])} do not fit the model input {list(shape)}")


# --- building, training, converting ---------------------------------------------------------------------------------


def cache_key(name: str, dataset_fingerprint: str, epochs: int, seed: int, extra: str = "") -> str:
    import importlib.metadata as md

    try:
        tf_version = md.version("tensorflow")
    except md.PackageNotFoundError:  # pragma: no cover
        tf_version = "?"
    text = json.dumps({"v": BUILD_VERSION, "model": name, "data": dataset_fingerprint, "epochs": epochs,
                       "seed": seed, "tf": tf_version, "extra": extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached(folder: Path) -> PreparedModel | None:
    meta = folder / "meta.json"
    if not meta.exists():
        return None
    model = PreparedModel.from_dict(json.loads(meta.read_text()))
    return model if all(Path(p).exists() for p in model.files.values()) else None


def _write(folder: Path, model: PreparedModel, blobs: dict[str, bytes]) -> PreparedModel:
    folder.mkdir(parents=True, exist_ok=True)
    for q, data in blobs.items():
        path = folder / f"{model.name}-{q}.tflite"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        model.files[q] = str(path)
    meta = folder / "meta.json"
    tmp = meta.with_name(f".meta.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(model.to_dict(), indent=1))
    os.replace(tmp, meta)
    return model


def _representative(x: np.ndarray, samples: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(samples, len(x)), replace=False)
    rows = [[x[i:i + 1].astype(np.float32)] for i in pick]
    return lambda: iter(rows)


def _convert_all(keras_model, x_calibration: np.ndarray | None) -> dict[str, bytes]:
    from costmodel.convert import keras_to_tflite

    rep = _representative(x_calibration) if x_calibration is not None else None
    return {q: keras_to_tflite(keras_model, q, rep if q == "int8" else None) for q in QUANTIZATIONS}


def build_builtin(name: str, dataset: Dataset | None, epochs: int, folder: Path, seed: int = 0) -> PreparedModel:
    """Build, train (``epochs`` > 0 and a dataset) and convert one built-in model into ``folder``."""
    import time

    from costmodel.convert import quiet

    start = time.monotonic()
    with quiet():
        import keras

        keras.utils.set_random_seed(seed)
        shape = INPUTS[name]
        classes = dataset.classes if dataset else 10
        model = ARCHITECTURES[name](keras, shape, classes)
        trained: dict = {"epochs": 0}
        x_cal = None
        if dataset is not None:
            x_train = fit_to_input(dataset.x_train, shape)
            x_cal = x_train
            if epochs > 0:
                # the deployed model has batch size 1; training uses the same architecture with a free batch
                train = ARCHITECTURES[name](keras, shape, classes, batch_size=None)
                train.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                              metrics=["accuracy"])
                train.fit(x_train, dataset.y_train, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
                model.set_weights(train.get_weights())
                x_test = fit_to_input(dataset.x_test, shape)
                _, acc = train.evaluate(x_test, dataset.y_test, batch_size=64, verbose=0)
                trained = {"epochs": epochs, "samples": int(len(x_train)), "float_accuracy_keras": float(acc)}
            trained["dataset"] = dataset.name
        blobs = _convert_all(model, x_cal)
        keras.backend.clear_session()
    trained["seconds"] = round(time.monotonic() - start, 1)
    prepared = PreparedModel(name, TITLES[name], "built-in", input_shape=INPUTS[name], trained=trained)
    return _write(folder, prepared, blobs)


def convert_user_keras(path: Path, dataset: Dataset | None, folder: Path) -> PreparedModel:
    """A user's Keras model converted the three ways (int8 calibrated on the dataset's training samples when
    given, else random inputs)."""
    from costmodel.convert import check_static_inputs, load_keras, quiet

    model = load_keras(path)
    check_static_inputs(model)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    x_cal = fit_to_input(dataset.x_train, shape) if dataset is not None else None
    with quiet():
        blobs = _convert_all(model, x_cal)
    note = "int8 calibrated on the dataset" if x_cal is not None else "int8 calibrated on random inputs"
    prepared = PreparedModel(path.stem, path.stem, "keras", input_shape=shape, note=note)
    return _write(folder, prepared, blobs)


def tflite_quantization(data: bytes) -> str:
    """``int8`` (integer activations), ``dynamic`` (int8 weights, float activations) or ``float32``."""
    from costmodel.tflite import read_model

    graph = read_model(data)
    types = {graph.tensors[i].dtype for i in graph.inputs}
    if types & {"int8", "uint8", "int16"}:
        return "int8"
    weights = {t.dtype for t in graph.tensors if getattr(t, "data", None) is not None}
    return "dynamic" if "int8" in weights else "float32"


def user_tflite(path: Path) -> PreparedModel:
    data = path.read_bytes()
    q = tflite_quantization(data)
    from costmodel.tflite import read_model

    graph = read_model(data, name=path.stem)
    shape = tuple(int(d) for d in graph.tensors[graph.inputs[0]].shape[1:])
    return PreparedModel(path.stem, path.stem, "tflite", {q: str(path.resolve())}, shape,
                         note=f"a .tflite as given ({q}); only the configurations of that quantization apply")


def prepare(requests: list[dict], dataset_path: str | None, cache: str) -> list[dict]:
    """Prepare every model of the study (``requests``: ``{"name", "kind": "builtin"|"keras", "path", "epochs"}``)
    into ``cache``; the dicts of :class:`PreparedModel`. Runs TensorFlow: call it in a child process."""
    from costmodel.datasets import load_dataset

    dataset = load_dataset(dataset_path)
    out = []
    for req in requests:
        if req["kind"] == "builtin":
            key = cache_key(req["name"], dataset.fingerprint, req["epochs"], req.get("seed", 0))
            folder = Path(cache) / f"{req['name']}-{key}"
            model = cached(folder) or build_builtin(req["name"], dataset, req["epochs"], folder, req.get("seed", 0))
        else:
            path = Path(req["path"])
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            folder = Path(cache) / f"user-{path.stem}-{cache_key(digest, dataset.fingerprint, 0, 0)}"
            model = cached(folder) or convert_user_keras(path, dataset, folder)
        out.append(model.to_dict())
    return out
