"""Labelled classification datasets for the search and the study: ``.npz`` files, or the offline default.

An ``.npz`` holds ``x_train, y_train, x_test, y_test``, or ``x, y`` (split 80/20 reproducibly). Labels are class
indices (one-hot rows are accepted and read as indices). The default, ``digits``, is scikit-learn's 8x8
handwritten digits (1,797 images, 10 classes), which ship with scikit-learn: no download. Its images are scaled
to [-1, 1] (what random calibration of untrained models assumes) and given a channel axis. Plain numpy: reading
a dataset needs no TensorFlow.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEYS = ("x_train", "y_train", "x_test", "y_test")
DIGITS = "digits"


class DatasetError(ValueError):
    """A dataset that cannot be read or is not a labelled classification set."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    fingerprint: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def describe(self) -> str:
        return (f"{self.name}: {len(self.x_train)} training and {len(self.x_test)} test samples of "
                f"{'x'.join(map(str, self.input_shape))}, {self.classes} classes")


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    return x[order[n_test:]], y[order[n_test:]], x[order[:n_test]], y[order[:n_test]]


def _dataset(name: str, x_train, y_train, x_test, y_test) -> Dataset:
    return Dataset(name, x_train, y_train, x_test, y_test, _fingerprint(x_train, y_train, x_test, y_test))


def digits() -> Dataset:
    """scikit-learn's digits as 8x8x1 images in [-1, 1], split reproducibly (1,438 training, 359 test)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    return _dataset(DIGITS, *_split(x, data.target.astype(np.int64)))


def _labels(name: str, what: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] > 1 and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        y = np.argmax(y, axis=1)  # one-hot rows
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DatasetError(f"{name}: {what} has shape {y.shape}; expected (samples,) of class indices")
    if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise DatasetError(f"{name}: {what} must be non-negative integer class indices (or one-hot rows)")
    return y.astype(np.int64)


def load_npz(path: str | Path, *, split: bool = True) -> Dataset:
    """A dataset from an ``.npz`` file; DatasetError with the reason for a file that is not one. ``split=False``
    refuses a file with ``x, y`` only (it asks for the user's own train/test split)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            if set(KEYS) <= files:
                arrays = [np.asarray(f[k]) for k in KEYS]
            elif split and {"x", "y"} <= files:
                arrays = list(_split(np.asarray(f["x"]), np.asarray(f["y"])))
            else:
                missing = [k for k in KEYS if k not in files]
                alternative = ", or x and y" if split else ""
                raise DatasetError(f"{path}: missing {', '.join(missing)} (a dataset has {', '.join(KEYS)}"
                                   f"{alternative}; this file has {', '.join(sorted(files)) or 'nothing'})")
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None
    x_train, y_train, x_test, y_test = arrays
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim < 2:
            raise DatasetError(f"{path}: x_{split} has shape {x.shape}; expected (samples, ...features)")
        if x.dtype.kind not in "biuf" or not np.all(np.isfinite(x)):
            raise DatasetError(f"{path}: x_{split} must be finite numbers")
        if len(x) != len(y) or len(x) == 0:
            raise DatasetError(f"{path}: x_{split} has {len(x)} samples, y_{split} {len(y)}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{path}: x_train samples are {x_train.shape[1:]}, x_test samples {x_test.shape[1:]}")
    return _dataset(path.stem, x_train.astype(np.float32), _labels(str(path), "y_train", y_train),
                    x_test.astype(np.float32), _labels(str(path), "y_test", y_test))


def load_dataset(spec: str | Path | None) -> Dataset:
    """``digits`` (the default, also for None) or the path of an ``.npz`` file."""
    if spec in (None, "", DIGITS):
        return digits()
    return load_npz(spec)
