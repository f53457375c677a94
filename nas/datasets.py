"""Datasets of a search: ``.npz`` files with ``x_train, y_train, x_test, y_test``, or the offline default.

The default, ``digits``, is scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes) that ship
with scikit-learn: a search runs without a download. Images are scaled to [-1, 1] (what random calibration
of untrained candidates assumes) and given a channel axis; labels are class indices.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEYS = ("x_train", "y_train", "x_test", "y_test")
DEFAULT = "digits"


class DatasetError(ValueError):
    """A dataset that cannot be read or does not have the keys and shapes of a classification task."""


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


def digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's digits as 8x8x1 images in [-1, 1], split reproducibly."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], _fingerprint(x[train], y[test]))


def _check(name: str, arrays: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2:
            raise DatasetError(f"{name}: x_{split} has shape {x.shape}; expected (samples, ...features)")
        if y.ndim != 1:
            raise DatasetError(f"{name}: y_{split} has shape {y.shape}; expected (samples,) of class indices")
        if len(x) != len(y) or len(x) == 0:
            raise DatasetError(f"{name}: x_{split} has {len(x)} samples, y_{split} {len(y)}")
        if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
            raise DatasetError(f"{name}: x_{split} must be finite numbers")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DatasetError(f"{name}: y_{split} must be non-negative integer class indices")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DatasetError(f"{name}: x_train samples are {arrays['x_train'].shape[1:]}, x_test samples "
                           f"{arrays['x_test'].shape[1:]}")
    if len(arrays["x_train"].shape) not in (3, 4):
        raise DatasetError(f"{name}: samples of shape {arrays['x_train'].shape[1:]}; expected images (h, w, c) "
                           "or signals (length, channels)")


def load_npz(path: str | Path) -> Dataset:
    """A dataset from an ``.npz`` file; DatasetError with the reason for a file that is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise DatasetError(f"{path}: missing {', '.join(missing)} (a dataset has {', '.join(KEYS)}; "
                                   f"this file has {', '.join(f.files) or 'nothing'})")
            arrays = {k: np.asarray(f[k]) for k in KEYS}
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None
    _check(str(path), arrays)
    x_train, x_test = (arrays[k].astype(np.float32) for k in ("x_train", "x_test"))
    y_train, y_test = (arrays[k].astype(np.int64) for k in ("y_train", "y_test"))
    return Dataset(path.stem, x_train, y_train, x_test, y_test, _fingerprint(x_train, y_test))


def load(spec: str | Path | None) -> Dataset:
    """``digits`` (the default) or the path of an ``.npz`` file."""
    if spec in (None, "", DEFAULT):
        return digits()
    return load_npz(spec)
