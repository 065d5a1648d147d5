"""Datasets: registry, offline-first loading, deterministic splits, and an array cache for trial processes.

INTERFACE (implemented by the data work; the runner and the trial process rely on exactly this):

    DATA_DIR_ENV = "SYSPRUNE_DATA_DIR"      where raw data lives (default ~/.cache/sysprune/data)
    CACHE_DIR_ENV = "SYSPRUNE_CACHE_DIR"    where prepared arrays live (default ~/.cache/sysprune/arrays)

    class DatasetUnavailable(ValueError)    one-line message: dataset, where it was looked for, what to do
    def check_dataset_name(name) -> str     "digits" | "mnist" | "fashion_mnist" | "pmlb:<name>"; ValueError else
    def dataset_kind(name) -> "image" | "tabular"     without loading anything
    def prepare(name, *, seed, subsample=None, val_fraction=0.2, test_fraction=0.2,
                data_dir=None, cache_dir=None) -> pathlib.Path
        load raw data (downloading only if missing and a network exists), subsample (stratified), split
        train/val/test deterministically from seed, fit preprocessing on train only, write .npy files + meta.json
        into a cache folder keyed by all arguments; return the folder. Idempotent and cheap when cached.
    def open_prepared(path) -> Dataset      memory-maps the arrays (milliseconds), used inside trial processes
"""

from __future__ import annotations



from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass
class Dataset:
    """A prepared dataset as a trainer sees it. ``X_*`` are float32 (already preprocessed), ``y_*`` int64 in
    ``0..n_classes-1``. ``input_shape`` is one sample's shape: ``(n_features,)`` for tabular data,
    ``(channels, height, width)`` for images (``X`` then has shape ``(n, *input_shape)``)."""

    name: str
    kind: Literal["image", "tabular"]
    input_shape: tuple[int, ...]
    n_classes: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
