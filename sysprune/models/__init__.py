"""Model families. Adding one is one new module here plus one line in ``_REGISTRY``."""

from __future__ import annotations

import importlib
from types import ModuleType

from sysprune.models._base import Trainer

_REGISTRY: dict[str, str] = {
    "torch_mlp": "sysprune.models.torch_mlp",
    "torch_cnn": "sysprune.models.torch_cnn",
    "sklearn_sgd": "sysprune.models.sklearn_sgd",
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_model(name: str) -> ModuleType:
    """The module of model family ``name`` (light: it imports torch/scikit-learn only inside ``create``)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)}")
    return importlib.import_module(_REGISTRY[name])


__all__ = ["MODEL_NAMES", "Trainer", "get_model"]
