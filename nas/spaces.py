"""Search spaces as code: each one a small class that builds a Keras model from an Optuna trial.

A space has one job, :meth:`SearchSpace.build`: suggest its hyper-parameters on the trial and return an
uncompiled ``keras.Model`` for the dataset's input shape (without the batch) and number of classes. The
search replays a trial's parameters with :class:`optuna.trial.FixedTrial` (in a TensorFlow worker process,
for a repair, for training), so ``build`` must depend on nothing but the trial, the shape and the classes.

Add a space by subclassing; it registers itself under its ``name``::

    class TinyMLP(SearchSpace):
        name = "tiny-mlp"

        def build(self, trial, input_shape, classes):
            keras = self.keras
            inputs = self.input(input_shape)
            x = keras.layers.Flatten()(inputs)
            units = trial.suggest_int("units", 4, 64)
            x = self.tunable(keras.layers.Dense(units, activation="relu", name="hidden"), units="units")(x)
            return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))

and search it with ``nas search --space tiny-mlp --space-module my_spaces.py`` (or ``my_package.spaces``).
:meth:`SearchSpace.tunable` tells the search which trial parameter sets a layer's filters / units / kernel
size, so the cost model's known-inferior rule can *repair* a candidate (move to the faster
parametrization) instead of only pruning it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, ClassVar

import optuna

#: repairable parameters of a layer, as the cost model's alternatives name them
REPAIRABLE = ("filters", "units", "kernel")


class SpaceError(ValueError):
    """An unknown space, a space module that cannot be loaded, or a space that builds no model."""


_REGISTRY: dict[str, type[SearchSpace]] = {}


class SearchSpace:
    """Base of the search spaces; subclasses set ``name`` and implement :meth:`build`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    def __init__(self) -> None:
        self._tunables: dict[str, dict[str, str]] = {}

    # --- what a subclass implements ------------------------------------------------------------------------

    def build(self, trial: optuna.Trial, input_shape: tuple[int, ...], classes: int):
        """An uncompiled ``keras.Model`` for inputs of ``input_shape`` (no batch) and ``classes`` outputs."""
        raise NotImplementedError

    # --- helpers for subclasses ----------------------------------------------------------------------------

    @property
    def keras(self):
        from nas.convert import keras_module

        return keras_module()

    def input(self, input_shape: tuple[int, ...]):
        """The model's input with batch size 1 (what a microcontroller runs; avoids the converter's dynamic
        batch shape arithmetic)."""
        return self.keras.Input(tuple(input_shape), batch_size=1, name="input")

    def tunable(self, layer, **params: str):
        """Record that trial parameters set ``layer``'s ``filters``, ``units`` or ``kernel`` (a parameter name
        each); returns the layer. Give the layer a unique ``name`` not ending in ``_<digits>``."""
        unknown = set(params) - set(REPAIRABLE)
        if unknown:
            raise SpaceError(f"{type(self).__name__}: tunable() takes {', '.join(REPAIRABLE)}, not "
                             f"{', '.join(sorted(unknown))}")
        self._tunables[layer.name] = dict(params)
        return layer

    # --- what the search calls -----------------------------------------------------------------------------

    def candidate(self, trial: optuna.Trial | optuna.trial.FixedTrial, input_shape: tuple[int, ...],
                  classes: int):
        """``(model, tunables)``: the model of ``trial`` and which parameter sets which layer's dimensions
        (Keras layer name -> {"filters"|"units"|"kernel": parameter name})."""
        self._tunables = {}
        model = self.build(trial, tuple(input_shape), int(classes))
        if model is None or not hasattr(model, "inputs"):
            raise SpaceError(f"search space {self.name!r}: build() returned {type(model).__name__}, not a Keras model")
        return model, dict(self._tunables)

    def replay(self, params: dict, input_shape: tuple[int, ...], classes: int):
        """The model of a finished trial's parameters."""
        return self.candidate(optuna.trial.FixedTrial(params), input_shape, classes)[0]


def _pool(keras, kind: str, x, size: int = 2):
    if kind == "max":
        return keras.layers.MaxPooling2D(size, padding="same")(x)
    if kind == "avg":
        return keras.layers.AveragePooling2D(size, padding="same")(x)
    return x


def _spatial(x) -> int:
    shape = tuple(x.shape)
    return min(shape[1], shape[2]) if len(shape) == 4 else 1


class PlainCNN(SearchSpace):
    """Plain convolutional blocks (filters, kernel size, stride, pooling) and a dense head."""

    name = "cnn"
    description = "conv blocks (filters, kernel 1/3/5, stride 1/2, max/avg/no pooling), optional dense layer"
    max_blocks = 3
    max_filters = 32
    max_units = 64

    def build(self, trial, input_shape, classes):
        keras = self.keras
        inputs = self.input(input_shape)
        x = inputs
        if len(x.shape) == 3:  # (length, channels): a 1-D signal as an image of height 1
            x = keras.layers.Reshape((1, *x.shape[1:]), name="to_image")(x)
        blocks = trial.suggest_int("blocks", 1, self.max_blocks)
        for i in range(blocks):
            filters = trial.suggest_int(f"filters_{i}", 2, self.max_filters)
            kernel = trial.suggest_categorical(f"kernel_{i}", [1, 3, 5])
            stride = trial.suggest_categorical(f"stride_{i}", [1, 2])
            pool = trial.suggest_categorical(f"pool_{i}", ["none", "max", "avg"])
            if _spatial(x) < 2:
                stride, pool = 1, "none"
            conv = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", activation="relu",
                                       name=f"b{i}_conv")
            x = self.tunable(conv, filters=f"filters_{i}", kernel=f"kernel_{i}")(x)
            if _spatial(x) >= 2:
                x = _pool(keras, pool, x)
        head = trial.suggest_categorical("head", ["flatten", "gap"])
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x) if head == "gap" else \
            keras.layers.Flatten(name="flatten")(x)
        units = trial.suggest_int("units", 0, self.max_units)
        if units:
            x = self.tunable(keras.layers.Dense(units, activation="relu", name="hidden"), units="units")(x)
        outputs = keras.layers.Dense(classes, activation="softmax", name="classes")(x)
        return keras.Model(inputs, outputs, name="cnn")


class DSCNN(SearchSpace):
    """Depthwise-separable blocks (DS-CNN / MobileNet-like): a stem convolution of ``width`` filters, then
    blocks of an optional 1x1 expansion, a depthwise convolution (depth multiplier, kernel, stride) and a
    1x1 projection; global pooling and the classifier."""

    name = "dscnn"
    description = "stem conv (width), DS blocks (expansion 1/2/4, depth multiplier 1/2, kernel 3/5, stride)"
    max_blocks = 4
    max_width = 32

    def build(self, trial, input_shape, classes):
        keras = self.keras
        inputs = self.input(input_shape)
        x = inputs
        if len(x.shape) == 3:
            x = keras.layers.Reshape((1, *x.shape[1:]), name="to_image")(x)
        width = trial.suggest_int("width", 4, self.max_width)
        stem_stride = trial.suggest_categorical("stem_stride", [1, 2])
        if _spatial(x) < 4:
            stem_stride = 1
        stem = keras.layers.Conv2D(width, 3, strides=stem_stride, padding="same", activation="relu", name="stem")
        x = self.tunable(stem, filters="width")(x)
        blocks = trial.suggest_int("blocks", 1, self.max_blocks)
        for i in range(blocks):
            expansion = trial.suggest_categorical(f"expansion_{i}", [1, 2, 4])
            multiplier = trial.suggest_categorical(f"depth_multiplier_{i}", [1, 2])
            kernel = trial.suggest_categorical(f"kernel_{i}", [3, 5])
            stride = trial.suggest_categorical(f"stride_{i}", [1, 2])
            filters = trial.suggest_int(f"filters_{i}", 4, self.max_width * 2)
            if _spatial(x) < 2:
                stride = 1
            if expansion > 1:
                x = keras.layers.Conv2D(int(x.shape[-1]) * expansion, 1, padding="same", activation="relu",
                                        name=f"b{i}_expand")(x)
            dw = keras.layers.DepthwiseConv2D(kernel, strides=stride, depth_multiplier=multiplier, padding="same",
                                              activation="relu", name=f"b{i}_dw")
            x = self.tunable(dw, kernel=f"kernel_{i}")(x)
            pw = keras.layers.Conv2D(filters, 1, padding="same", activation="relu", name=f"b{i}_project")
            x = self.tunable(pw, filters=f"filters_{i}")(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        outputs = keras.layers.Dense(classes, activation="softmax", name="classes")(x)
        return keras.Model(inputs, outputs, name="dscnn")


def names() -> list[str]:
    return sorted(_REGISTRY)


def load_module(spec: str) -> None:
    """Import a module of user spaces: a dotted module name or a ``.py`` file (its spaces register)."""
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.exists():
            if not path.is_file():
                raise SpaceError(f"space module {spec}: no such file")
            name = "nas_user_spaces_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            if name in sys.modules:
                return
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except SpaceError:
        raise
    except Exception as exc:  # noqa: BLE001 (a user's module can raise anything on import)
        raise SpaceError(f"cannot load the space module {spec}: {type(exc).__name__}: {exc}") from None


def get_space(name: str, module: str | None = None) -> SearchSpace:
    """The space registered as ``name`` (after importing ``module``, when given); SpaceError otherwise."""
    if module:
        load_module(module)
    cls = _REGISTRY.get(name)
    if cls is None:
        raise SpaceError(f"unknown search space {name!r} (known: {', '.join(names())}; add one by subclassing "
                         "nas.spaces.SearchSpace, loaded with --space-module)")
    return cls()
