"""Convert Keras models to .tflite: int8 (full integer), float32, or dynamic-range (int8 weights).

Candidates of a search are measured untrained, so int8 calibration uses random inputs by default:
latency and energy do not depend on the weight values (the paper's observation).

:func:`model_file_bytes` is what the command-line tools read a model file with: a ``.tflite`` (size and
header checked before it is read) or a ``.keras``/``.h5`` file, checked, then converted by
:func:`convert_keras_file` in a child process: TensorFlow's converter can crash the process it runs
in (int8 calibration of an LSTM ends in a segmentation fault), and a crash there is one clear error here.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from costmodel.errors import ModelError

QUANTIZATIONS = ("int8", "float32", "dynamic")
#: the same, as a choice of the command lines
Quantization = enum.Enum("Quantization", {q: q for q in QUANTIZATIONS}, type=str)
KERAS_SUFFIXES = (".keras", ".h5")
#: the largest Keras file converted (a model for a microcontroller is a few MB)
MAX_KERAS_FILE_BYTES = 256 * 1024 * 1024
CONVERT_TIMEOUT_S = 900.0
_ZIP = b"PK\x03\x04"
_HDF5 = b"\x89HDF\r\n\x1a\n"


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
        configure_quantization(converter, quantization,
                               representative or _random_dataset(model, calibration_samples, seed))
        return converter.convert()


def configure_quantization(converter, quantization: str,
                           representative: Callable[[], Iterator[list[np.ndarray]]] | None = None) -> None:
    """Set a ``tf.lite.TFLiteConverter`` up for ``quantization``: ``float32`` as it is; ``dynamic``, int8 weights
    and float activations; ``int8``, full integer with int8 input and output, calibrated on ``representative``
    (required)."""
    import tensorflow as tf

    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]


def load_keras(path: str | Path):
    """Load a .keras or .h5 model without compiling it."""
    with quiet():
        import keras

        return keras.models.load_model(str(path), compile=False)


def check_keras_file(path: str | Path, max_bytes: int = MAX_KERAS_FILE_BYTES) -> None:
    """ModelError unless ``path`` is a readable Keras file of at most ``max_bytes`` (a .keras zip archive or
    an HDF5 .h5 file, by their signatures): checked before TensorFlow is loaded."""
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ModelError("is a directory, not a model file")
        if info.st_size > max_bytes:
            raise ModelError(f"file is {info.st_size} bytes, more than the limit of {max_bytes} bytes for a model")
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror}") from None
    if not head:
        raise ModelError("file is empty")
    if path.suffix.lower() == ".keras":
        if not head.startswith(_ZIP):
            raise ModelError("not a Keras model (a .keras file is a zip archive; this one is not)")
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelError(f"not a Keras model (a damaged zip archive: {exc})") from None
        if "config.json" not in names:
            raise ModelError("not a Keras model (the archive has no config.json)")
    if path.suffix.lower() == ".h5" and head != _HDF5:
        raise ModelError("not a Keras model (an .h5 file is an HDF5 file; this one is not)")


def check_static_inputs(model) -> None:
    """ModelError for a model input with an unknown dimension other than the batch: a microcontroller
    model has one fixed input shape."""
    for inp in model.inputs:
        shape = tuple(inp.shape)
        if any(d is None for d in shape[1:]):
            dims = ", ".join("None" if d is None else str(d) for d in shape)
            raise ModelError(f"input {getattr(inp, 'name', '')!r} has unknown dimensions ({dims}); give the model a "
                             "fixed input shape (e.g. keras.Input((96, 96, 3)))")


def converter_message(exc: BaseException) -> str:
    """The line that says why TensorFlow's converter failed (its messages run over many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "error:" in line:
            text = line.split("error:", 1)[1].strip()
            if text.startswith("loc("):  # loc(...): the op's location in the graph
                depth, end = 0, len(text)
                for i, ch in enumerate(text):
                    depth += ch == "("
                    depth -= ch == ")"
                    if depth == 0:
                        end = i + 1
                        break
                text = text[end:].lstrip(": ")
            return text[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _convert_main(argv: list[str]) -> int:
    """``python -m costmodel.convert MODEL QUANTIZATION OUT``: the child process of convert_keras_file.
    Exit 0 with the .tflite in OUT, or 2 with the reason in OUT + '.error'."""
    path, quantization, out = Path(argv[0]), argv[1], Path(argv[2])
    try:
        try:
            model = load_keras(path)
        except Exception as exc:  # noqa: BLE001 (Keras raises many kinds for a bad file)
            raise ModelError(f"cannot load the Keras model: {str(exc).strip().splitlines()[0][:300]}") from None
        check_static_inputs(model)
        try:
            data = keras_to_tflite(model, quantization)
        except Exception as exc:  # noqa: BLE001 (ConverterError, RuntimeError, ValueError, ...)
            raise ModelError(f"TensorFlow cannot convert it to .tflite ({quantization}): {converter_message(exc)}") from None
    except ModelError as exc:
        Path(f"{out}.error").write_text(str(exc))
        return 2
    out.write_bytes(data)
    return 0


def convert_keras_file(path: str | Path, quantization: str = "int8", *, max_bytes: int = MAX_KERAS_FILE_BYTES,
                       timeout_s: float = CONVERT_TIMEOUT_S) -> bytes:
    """Convert a .keras/.h5 file to .tflite bytes in a child process; ModelError with the reason on failure
    (including a crash of TensorFlow's converter)."""
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    check_keras_file(path, max_bytes)
    with tempfile.TemporaryDirectory(prefix="costmodel-convert-") as tmp:
        out = Path(tmp) / "model.tflite"
        try:
            done = subprocess.run([sys.executable, "-m", "costmodel.convert", str(Path(path).resolve()), quantization,
                                   str(out)], capture_output=True, text=True, timeout=timeout_s,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        except subprocess.TimeoutExpired:
            raise ModelError(f"conversion with TensorFlow took more than {timeout_s:.0f} s; gave up") from None
        if done.returncode == 0 and out.exists():
            return out.read_bytes()
        error = Path(f"{out}.error")
        if error.exists():
            raise ModelError(error.read_text())
        if done.returncode < 0:
            try:
                name = signal.Signals(-done.returncode).name
            except ValueError:
                name = f"signal {-done.returncode}"
            hint = " (int8 calibration of recurrent layers such as LSTM does this; try float32)" \
                if quantization == "int8" else ""
            raise ModelError(f"TensorFlow's converter crashed ({name}) converting it to .tflite ({quantization})"
                             f"{hint}")
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise ModelError(f"conversion with TensorFlow failed: {last[:300]}")


def model_file_bytes(path: str | Path, quantization: str | None = None, *,
                     max_bytes: int | None = None) -> bytes:
    """The .tflite bytes of a model file: a .tflite as it is (``quantization`` must not be given: a
    .tflite is already converted), a .keras/.h5 converted with ``quantization`` (default int8).
    ModelError (without the file name) for anything that is not a usable model."""
    from costmodel.tflite import MAX_MODEL_FILE_BYTES, read_model_file

    path = Path(path)
    limit = max_bytes or MAX_MODEL_FILE_BYTES
    if path.suffix.lower() in KERAS_SUFFIXES:
        data = convert_keras_file(path, quantization or "int8", max_bytes=max(limit, MAX_KERAS_FILE_BYTES))
        if len(data) > limit:
            raise ModelError(f"the converted model is {len(data)} bytes, more than the limit of {limit} bytes")
        return data
    if quantization is not None:
        raise ModelError(f"--quantization {quantization} applies to Keras models (.keras, .h5) only; a .tflite "
                         "is already quantized as it is")
    return read_model_file(path, limit)


if __name__ == "__main__":
    sys.exit(_convert_main(sys.argv[1:]))
