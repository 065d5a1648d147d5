"""``digits``: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); needs no data directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sysprune.datasets._registry import register_dataset


def _load_digits(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (``data_dir`` unused)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


register_dataset("digits", _load_digits, kind="image", pixel_max=16.0)
