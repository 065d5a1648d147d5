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


_CONTRACT = ("NAME", "INPUTS", "SPACE", "create")


def get_model(name: str) -> ModuleType:
    """The module of model family ``name`` (light: it imports torch/scikit-learn only inside ``create``).

    ``name`` is a registry name, or the dotted path of your own module that follows the same contract
    (``NAME``, ``INPUTS``, ``SPACE``, ``create``; see ``_base.py``), importable by the trial processes.
    """
    if not isinstance(name, str) or (name not in _REGISTRY and "." not in name):
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)} or a dotted module path")
    path = _REGISTRY.get(name, name)
    try:
        module = importlib.import_module(path)
    except ImportError as e:
        raise ValueError(f"model module {path!r} cannot be imported ({e})") from None
    missing = [a for a in _CONTRACT if not hasattr(module, a)]
    if missing:
        raise ValueError(f"model module {path!r} lacks {', '.join(missing)} (a model defines {', '.join(_CONTRACT)})")
    return module


__all__ = ["MODEL_NAMES", "Trainer", "get_model"]
