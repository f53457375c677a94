"""Datasets of a search: :mod:`costmodel.datasets` (an ``.npz`` or the offline default, scikit-learn's digits),
with the search's own requirement on the samples: images (h, w, c) or signals (length, channels), which the
search spaces know how to build models for."""

from __future__ import annotations

from pathlib import Path

from costmodel.datasets import DIGITS as DEFAULT
from costmodel.datasets import Dataset, DatasetError, digits
from costmodel.datasets import load_npz as _load_npz

__all__ = ["DEFAULT", "Dataset", "DatasetError", "digits", "load", "load_npz"]


def load_npz(path: str | Path) -> Dataset:
    """A search dataset from an ``.npz`` file; DatasetError with the reason for a file that is not one."""
    dataset = _load_npz(path, split=False)  # a search trains and tests on the user's own split
    if len(dataset.x_train.shape) not in (3, 4):
        raise DatasetError(f"{path}: samples of shape {dataset.input_shape}; expected images (h, w, c) or signals "
                           "(length, channels)")
    return dataset


def load(spec: str | Path | None) -> Dataset:
    """``digits`` (the default) or the path of an ``.npz`` file."""
    if spec in (None, "", DEFAULT):
        return digits()
    return load_npz(spec)
