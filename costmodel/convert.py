"""Convert Keras models to .tflite: int8 (full integer), float32, or dynamic-range (int8 weights).

Candidates of a search are measured untrained, so int8 calibration uses random inputs by default:
latency and energy do not depend on the weight values (the paper's observation).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

QUANTIZATIONS = ("int8", "float32", "dynamic")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence TensorFlow's Python and C++ logging (the converter writes to the process's file descriptors)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def _random_dataset(model, samples: int, seed: int) -> Callable[[], Iterator[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    shapes = [tuple(1 if d is None else d for d in inp.shape) for inp in model.inputs]

    def generate() -> Iterator[list[np.ndarray]]:
        for _ in range(samples):
            yield [rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in shapes]

    return generate


def keras_to_tflite(model, quantization: str = "int8",
                    representative: Callable[[], Iterator[list[np.ndarray]]] | None = None,
                    calibration_samples: int = 8, seed: int = 0) -> bytes:
    """Convert an in-memory Keras model to .tflite bytes.

    ``int8``: full-integer model with int8 input and output, calibrated on ``representative`` (random
    uniform [-1, 1] inputs when not given). ``dynamic``: int8 weights, float activations.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}")
    with quiet():
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative or _random_dataset(model, calibration_samples, seed)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif quantization == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()


def load_keras(path: str | Path):
    """Load a .keras or .h5 model without compiling it."""
    with quiet():
        import keras

        return keras.models.load_model(str(path), compile=False)
