"""``mnist`` and ``fashion_mnist`` via torchvision (70,000 images 1x28x28, 10 classes; the ``torch`` extra),
read from ``$SYSPRUNE_DATA_DIR/{MNIST,FashionMNIST}/raw`` or downloaded there; the official test split is kept."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from sysprune.datasets._registry import register_dataset, unavailable

_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def _load_torchvision(name: str, data_dir: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) as uint8 images (n, 28, 28) and labels, downloading into ``data_dir`` if missing."""
    cls_name = _TORCHVISION_CLASS[name]
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            from torchvision import datasets

            cls = getattr(datasets, cls_name)
            splits = [cls(root=str(data_dir), train=train, download=True) for train in (True, False)]
    except Exception as e:  # torchvision raises RuntimeError, URLError, OSError, ... depending on what failed
        raise unavailable(name, data_dir / cls_name / "raw", e) from None
    train, test = ((ds.data.numpy(), ds.targets.numpy().astype(np.int64)) for ds in splits)
    return train, test


register_dataset("mnist", _load_torchvision, kind="image", requires=("torchvision",))
register_dataset("fashion_mnist", _load_torchvision, kind="image", requires=("torchvision",))
