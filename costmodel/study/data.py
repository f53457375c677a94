"""The study's dataset: scikit-learn's 8x8 digits by default (ships with scikit-learn, no download), or an
``.npz`` the user gives: ``x_train, y_train, x_test, y_test`` (the search's format), or ``x, y`` (the validation
format; split 80/20 for training the built-in models). Plain numpy: no TensorFlow needed to read it."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

DIGITS = "digits"


class DatasetError(ValueError):
    """A dataset that cannot be read, or is not a labelled classification set."""


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


def digits() -> dict:
    """The digits as 8x8x1 images in [-1, 1]: 1,437 training and 360 test samples."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    y = data.target.astype(np.int64)
    return _dataset(DIGITS, *_split(x, y))


def _dataset(name, x_train, y_train, x_test, y_test) -> dict:
    classes = int(max(y_train.max(), y_test.max())) + 1
    return {"name": name, "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "classes": classes, "fingerprint": _fingerprint(x_train, y_train, x_test, y_test)}


def _labels(name: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] > 1 and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        y = np.argmax(y, axis=1)
    y = np.asarray(y).reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise DatasetError(f"{name}: labels must be non-negative integer class indices (or one-hot rows)")
    return y.astype(np.int64)


def load_npz(path: str | Path) -> dict:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            if {"x_train", "y_train", "x_test", "y_test"} <= files:
                arrays = [np.asarray(f[k]) for k in ("x_train", "y_train", "x_test", "y_test")]
            elif {"x", "y"} <= files:
                arrays = list(_split(np.asarray(f["x"]), np.asarray(f["y"])))
            else:
                raise DatasetError(f"{path}: needs arrays x_train, y_train, x_test, y_test (or x, y); it has "
                                   f"{', '.join(sorted(files)) or 'nothing'}")
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None
    x_train, y_train, x_test, y_test = arrays
    for what, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype.kind not in "biuf" or x.ndim < 2 or not np.all(np.isfinite(x)):
            raise DatasetError(f"{path}: x_{what} must be finite numbers, samples first")
        if len(x) != len(y) or not len(x):
            raise DatasetError(f"{path}: x_{what} has {len(x)} samples and y_{what} {len(y)}")
    return _dataset(path.stem, x_train.astype(np.float32), _labels(str(path), y_train),
                    x_test.astype(np.float32), _labels(str(path), y_test))


def load_dataset(spec: str | Path | None) -> dict:
    """``digits`` (the default, also for None) or an ``.npz`` path."""
    if spec in (None, "", DIGITS):
        return digits()
    return load_npz(spec)
