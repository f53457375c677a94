"""Benchmark networks that vary one layer hyper-parameter while the rest stays fixed (the paper's section 4.3),
and random small CNNs for whole-model validation.

A network is a :class:`NetSpec`: an input shape and a list of layer dicts, plain JSON, hashed by content::

    {"type": "conv", "filters": 16, "kernel": 3, "stride": 1, "padding": "same", "activation": "relu"}
    {"type": "dwconv", "kernel": 3, "stride": 1, "depth_multiplier": 1, "padding": "same"}
    {"type": "dense", "units": 32}
    {"type": "maxpool" | "avgpool", "pool": 2, "stride": 2}
    {"type": "add", "kernel": 3}      # x + conv(x) with as many filters as x has channels
    {"type": "flatten"}  {"type": "gap"}  {"type": "softmax"}

Sweeps (:data:`SWEEPS`; each a function of a size, ``"small"`` for tests and demos, ``"full"`` for fitting):

``dense``      dense layers, input length 1..N for several unit counts (and units varied)
``conv``       a static convolution whose input channels vary through the preceding layer's filters, for
               kernel sizes 1/3/5/7, strides 1/2, several spatial sizes and filter counts
``dwconv``     depthwise convolution, depth multiplier 1/2, channels varied through the preceding layer
``pool``       max and average pooling over varied channels
``add``        residual adds over varied channels
``head``       classifier heads: global average pooling (MEAN) or flatten (RESHAPE), then dense layers
``random``     random small CNNs, plain and depthwise-separable (whole-model validation)

:func:`tflite_bytes` builds a spec with Keras (batch size 1, untrained: weights drawn from a seeded
generator), converts it with :func:`costmodel.convert.keras_to_tflite` (full int8 calibrated on random
data by default; ``float32`` and ``dynamic`` on request) and caches the result by content hash in the
folder given (the command line uses the project cache's ``sweep-models`` folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

GENERATOR_VERSION = 1
QUANTIZATIONS = ("int8", "float32", "dynamic")


@dataclass(frozen=True)
class NetSpec:
    """A benchmark network: input shape (HWC, or (n,) for dense), layers, quantization, and the sweep it is from."""

    name: str
    input: tuple[int, ...]
    layers: tuple[dict, ...]
    sweep: str = ""
    params: dict = field(default_factory=dict, compare=False, hash=False)
    quantization: str = "int8"

    def to_dict(self) -> dict:
        return {"name": self.name, "input": list(self.input), "layers": [dict(x) for x in self.layers],
                "sweep": self.sweep, "params": dict(self.params), "quantization": self.quantization}

    @classmethod
    def from_dict(cls, d: dict) -> NetSpec:
        return cls(d["name"], tuple(d["input"]), tuple(d["layers"]), d.get("sweep", ""), d.get("params", {}),
                   d.get("quantization", "int8"))

    @property
    def content_hash(self) -> str:
        """A hash of what the network is (not its name): the cache key of its .tflite."""
        text = json.dumps({"v": GENERATOR_VERSION, "input": list(self.input), "layers": list(self.layers),
                           "q": self.quantization}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def with_quantization(self, quantization: str) -> NetSpec:
        return NetSpec(f"{self.name}-{quantization}" if quantization != "int8" else self.name, self.input,
                       self.layers, self.sweep, self.params, quantization)


def _net(sweep: str, name: str, inp, layers, **params) -> NetSpec:
    return NetSpec(f"{sweep}-{name}", tuple(inp), tuple(layers), sweep, params)


def conv(filters, kernel=3, stride=1, padding="same", activation="relu") -> dict:
    return {"type": "conv", "filters": int(filters), "kernel": int(kernel), "stride": int(stride), "padding": padding,
            "activation": activation}


def dwconv(kernel=3, stride=1, depth_multiplier=1, padding="same", activation="relu") -> dict:
    return {"type": "dwconv", "kernel": int(kernel), "stride": int(stride), "depth_multiplier": int(depth_multiplier),
            "padding": padding, "activation": activation}


def dense(units, activation=None) -> dict:
    return {"type": "dense", "units": int(units), "activation": activation}


# --- the sweeps --------------------------------------------------------------------------------------------------


def dense_sweep(size: str = "small") -> list[NetSpec]:
    """Dense layers over input lengths (the paper's figure 4) for several unit counts, and units varied."""
    if size == "small":
        return [_net("dense", f"n{n}-u16", (n,), [dense(16)], input_length=n, units=16) for n in range(8, 25)]
    rng = random.Random("dense-sweep")
    nets = []
    for n in range(1, 97):
        for cls, choices in FILTERS_BY_CLASS.items():
            u = rng.choice(choices) * rng.choice((1, 2))
            if cls == "odd" and u % 2 == 0:
                u -= 1
            nets.append(_net("dense", f"n{n}-u{u}", (n,), [dense(u)], input_length=n, units=u))
    nets += [_net("dense", f"n{n}-u{u}", (n,), [dense(u)], input_length=n, units=u)
             for n in (20, 64) for u in range(1, 25)]
    return list({net.name: net for net in nets}.values())


FILTERS_BY_CLASS = {"%4": (4, 8, 12, 16, 20, 24), "even": (6, 10, 14, 18, 22), "odd": (5, 7, 9, 11, 13, 15, 17)}


def conv_sweep(size: str = "small") -> list[NetSpec]:
    """A static convolution whose input channels come from the preceding layer's filters (the paper's figure 5),
    for kernel sizes 1/3/5/7 and strides 1/2; both layers are measured. ``full``: for every input channel count
    1..24, one network per alignment class of the static layer's filters, at a spatial size and filter count
    drawn (seeded) so that every table key sees several of each."""
    nets = []
    if size == "small":
        for c in range(1, 17):
            nets.append(_net("conv", f"hw12-k3-s1-c{c}-f8", (12, 12, 3), [conv(c, 3), conv(8, 3)], hw=12, kernel=3,
                             stride=1, in_channels=c, filters=8))
        return nets
    rng = random.Random("conv-sweep")
    for k in (1, 3, 5, 7):
        for s in (1, 2):
            for c in range(1, 25):
                for cls, choices in FILTERS_BY_CLASS.items():
                    f, hw = rng.choice(choices), rng.choice((8, 10, 12, 14, 16))
                    nets.append(_net("conv", f"hw{hw}-k{k}-s{s}-c{c}-f{f}", (hw, hw, rng.choice((1, 2, 3, 4))),
                                     [conv(c, 3), conv(f, k, s)], hw=hw, kernel=k, stride=s, in_channels=c, filters=f))
    return nets


def dwconv_sweep(size: str = "small") -> list[NetSpec]:
    """Depthwise convolution (depth multiplier 1/2) whose channels vary through the preceding layer."""
    nets = []
    rng = random.Random("dwconv-sweep")
    grid = [(12, 3, 1, 1)] if size == "small" else [(0, k, s, m) for k in (3, 5) for s in (1, 2) for m in (1, 2)]
    channels = range(1, 13) if size == "small" else range(1, 17)
    for hw0, k, s, m in grid:
        for c in channels:
            hw = hw0 or rng.choice((6, 8, 10, 12, 14))
            nets.append(_net("dwconv", f"hw{hw}-k{k}-s{s}-m{m}-c{c}", (hw, hw, 3),
                             [conv(c, 1), dwconv(k, s, m)], hw=hw, kernel=k, stride=s, depth_multiplier=m,
                             in_channels=c))
    return nets


def pool_sweep(size: str = "small") -> list[NetSpec]:
    nets = []
    rng = random.Random("pool-sweep")
    kinds = ("maxpool", "avgpool")
    channels = range(1, 9) if size == "small" else range(1, 17)
    for kind in kinds:
        for hw0 in (12,) if size == "small" else (0,):
            for c in channels:
                hw = hw0 or rng.choice((6, 8, 10, 12, 16))
                nets.append(_net("pool", f"{kind}-hw{hw}-c{c}", (hw, hw, 3),
                                 [conv(c, 1), {"type": kind, "pool": 2, "stride": 2}], kind=kind, hw=hw,
                                 in_channels=c))
    return nets


def add_sweep(size: str = "small") -> list[NetSpec]:
    channels = range(2, 9) if size == "small" else range(1, 17)
    rng = random.Random("add-sweep")
    return [_net("add", f"hw{hw}-c{c}", (hw, hw, 3), [conv(c, 1), {"type": "add", "kernel": 1}], hw=hw,
                 in_channels=c) for c in channels for hw in [8 if size == "small" else rng.choice((4, 6, 8, 12))]]


def head_sweep(size: str = "small") -> list[NetSpec]:
    """Classifier heads: a convolution, then global average pooling (MEAN) or flatten (RESHAPE), then dense
    layers, over channels and spatial sizes."""
    rng = random.Random("head-sweep")
    nets = []
    channels = range(2, 9) if size == "small" else range(1, 17)
    for c in channels:
        for head in ("gap", "flatten"):
            hw = rng.choice((2, 3, 4, 6)) if head == "flatten" else rng.choice((3, 4, 6, 8, 12))
            layers = [conv(c, 3), {"type": head}, dense(rng.randint(8, 48), "relu"), dense(rng.choice((2, 10, 12)))]
            nets.append(_net("head", f"{head}-hw{hw}-c{c}", (hw, hw, 3), layers, head=head, hw=hw, in_channels=c))
    return nets


def random_cnn(seed: int, kind: str = "plain") -> NetSpec:
    """A random small CNN: ``plain`` (conv/pool stacks) or ``ds`` (depthwise-separable blocks), then global
    pooling or flatten, and a dense classifier."""
    rng = random.Random(f"{kind}-{seed}")
    hw = rng.choice((12, 16, 20, 24))
    channels = rng.choice((1, 2, 3, 4))
    layers: list[dict] = []
    c = channels
    spatial = hw
    layers.append(conv(rng.randint(3, 24), rng.choice((3, 5)), rng.choice((1, 2)), "same"))
    spatial = -(-spatial // layers[-1]["stride"])
    c = layers[-1]["filters"]
    blocks = rng.randint(2, 4)
    for _ in range(blocks):
        if kind == "ds":
            stride = 2 if spatial >= 8 and rng.random() < 0.4 else 1
            layers.append(dwconv(rng.choice((3, 5)), stride, 1, "same"))
            spatial = -(-spatial // stride)
            layers.append(conv(rng.randint(4, 32), 1, 1, "same"))
        else:
            k = rng.choice((1, 3, 3, 5, 7))
            stride = 2 if spatial >= 8 and rng.random() < 0.35 else 1
            layers.append(conv(rng.randint(4, 32), k, stride, "same"))
            spatial = -(-spatial // stride)
            if spatial >= 6 and rng.random() < 0.3:
                layers.append({"type": rng.choice(("maxpool", "avgpool")), "pool": 2, "stride": 2})
                spatial //= 2
        c = layers[-1].get("filters", c)
    if rng.random() < 0.5:
        layers.append({"type": "gap"})
    else:
        layers.append({"type": "flatten"})
    if rng.random() < 0.5:
        layers.append(dense(rng.randint(8, 48), "relu"))
    layers.append(dense(rng.choice((2, 10, 12))))
    return NetSpec(f"random-{kind}-{seed}", (hw, hw, channels), tuple(layers), "random", {"seed": seed, "kind": kind})


def random_sweep(size: str = "small", start: int = 0) -> list[NetSpec]:
    n = 6 if size == "small" else 30
    return [random_cnn(start + i, kind) for i in range(n) for kind in ("plain", "ds")]


SWEEPS: dict[str, Callable[..., list[NetSpec]]] = {
    "dense": dense_sweep, "conv": conv_sweep, "dwconv": dwconv_sweep, "pool": pool_sweep, "add": add_sweep,
    "head": head_sweep, "random": random_sweep,
}


def sweep(name: str, size: str = "small") -> list[NetSpec]:
    """The networks of one sweep (:data:`SWEEPS`)."""
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; sweeps: {', '.join(SWEEPS)}")
    if size not in ("small", "full"):
        raise ValueError("size must be small or full")
    return SWEEPS[name](size)


# --- building ------------------------------------------------------------------------------------------------------


def build_keras(spec: NetSpec, seed: int | None = None):
    """The Keras model of ``spec`` (batch size 1), with seeded random weights."""
    import keras
    import numpy as np
    from keras import layers as L

    seed = int(spec.content_hash[:8], 16) if seed is None else seed
    keras.utils.set_random_seed(seed % (2 ** 31))
    x = inp = keras.Input(tuple(spec.input), batch_size=1)
    for layer in spec.layers:
        t = layer["type"]
        act = layer.get("activation")
        if t == "conv":
            x = L.Conv2D(layer["filters"], layer["kernel"], strides=layer.get("stride", 1),
                         padding=layer.get("padding", "same"), activation=act)(x)
        elif t == "dwconv":
            x = L.DepthwiseConv2D(layer["kernel"], strides=layer.get("stride", 1), padding=layer.get("padding", "same"),
                                  depth_multiplier=layer.get("depth_multiplier", 1), activation=act)(x)
        elif t == "dense":
            x = L.Dense(layer["units"], activation=act)(x)
        elif t in ("maxpool", "avgpool"):
            cls = L.MaxPooling2D if t == "maxpool" else L.AveragePooling2D
            x = cls(layer.get("pool", 2), strides=layer.get("stride"), padding=layer.get("padding", "valid"))(x)
        elif t == "add":
            y = L.Conv2D(int(x.shape[-1]), layer.get("kernel", 1), padding="same")(x)
            x = L.Add()([x, y])
        elif t == "flatten":
            x = L.Flatten()(x)
        elif t == "gap":
            x = L.GlobalAveragePooling2D()(x)
        elif t == "softmax":
            x = L.Softmax()(x)
        else:
            raise ValueError(f"unknown layer type {t!r} in {spec.name}")
    model = keras.Model(inp, x)
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        if w.ndim == 1:
            weights.append(rng.normal(0.0, 0.1, w.shape).astype(np.float32))
        else:
            fan_in = int(np.prod(w.shape[:-1]))
            weights.append((rng.uniform(-1, 1, w.shape) * np.sqrt(3.0 / max(fan_in, 1))).astype(np.float32))
    model.set_weights(weights)
    return model


def tflite_bytes(spec: NetSpec, cache: str | os.PathLike | None = None) -> bytes:
    """The .tflite of ``spec`` (converted with :func:`costmodel.convert.keras_to_tflite`), cached by content hash
    under ``cache`` when given."""
    if spec.quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}")
    path = Path(cache) / f"{spec.content_hash}.tflite" if cache is not None else None
    if path is not None and path.exists():
        return path.read_bytes()
    import warnings

    from costmodel.convert import keras_to_tflite, quiet

    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import keras

        model = build_keras(spec)
        data = keras_to_tflite(model, spec.quantization, seed=int(spec.content_hash[:6], 16))
        keras.backend.clear_session()  # Keras keeps every model built; a sweep builds thousands
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


def _convert_one(args) -> str:
    spec_dict, cache = args
    tflite_bytes(NetSpec.from_dict(spec_dict), cache)
    return spec_dict["name"]


def convert_all(specs, cache: str | os.PathLike, workers: int = 1,
                on_done: Callable[[int, int], None] | None = None) -> None:
    """Convert every spec not yet in ``cache``, in ``workers`` processes (conversion is CPU-bound, seconds each)."""
    todo = [s for s in specs if not (Path(cache) / f"{s.content_hash}.tflite").exists()]
    total, done = len(specs), len(specs) - len(todo)
    if on_done:
        on_done(done, total)
    if workers <= 1 or len(todo) < 4:
        for spec in todo:
            tflite_bytes(spec, cache)
            done += 1
            if on_done:
                on_done(done, total)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        for _ in ex.map(_convert_one, [(s.to_dict(), str(cache)) for s in todo], chunksize=4):
            done += 1
            if on_done:
                on_done(done, total)


def iter_tflite(specs, cache=None) -> Iterator[tuple[NetSpec, bytes]]:
    for spec in specs:
        yield spec, tflite_bytes(spec, cache)
