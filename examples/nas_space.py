"""A search space of your own: subclass ``nas.spaces.SearchSpace``, give it a ``name``, build a Keras model.

    nas spaces --space-module examples/nas_space.py
    nas search --study mlp --space tiny-mlp --space-module examples/nas_space.py --trials 20

``build`` gets an Optuna trial (suggest what you like: int, float, categorical; conditional parameters are
fine), the dataset's input shape without the batch and its number of classes. ``self.input`` gives the
input with batch size 1 (what the board runs); ``self.tunable`` names the parameter behind a layer's
units / filters / kernel size, so the cost model can repair a candidate to a faster parametrization.
"""

from __future__ import annotations

from nas.spaces import SearchSpace


class TinyMLP(SearchSpace):
    """One or two dense layers on the flattened input (the paper's dense-layer alignment effects)."""

    name = "tiny-mlp"
    description = "flatten, 1-2 dense layers of 4..64 units"

    def build(self, trial, input_shape, classes):
        keras = self.keras
        inputs = self.input(input_shape)
        x = keras.layers.Flatten()(inputs)
        for i in range(trial.suggest_int("layers", 1, 2)):
            units = trial.suggest_int(f"units_{i}", 4, 64)
            dense = keras.layers.Dense(units, activation="relu", name=f"dense{i}")
            x = self.tunable(dense, units=f"units_{i}")(x)
        outputs = keras.layers.Dense(classes, activation="softmax", name="classes")(x)
        return keras.Model(inputs, outputs, name="tiny_mlp")
