"""Model families: a registry of ``create`` functions with their search spaces (see :func:`register_model`).

The built-in families register themselves exactly as a model of one's own does: one module, one
``register_model`` call. None of them imports torch or scikit-learn at module level (study files are validated
without them); ``create`` does.
"""

from __future__ import annotations

from sysprune.models._base import DryRun, Trainer
from sysprune.models._registry import ModelFamily, get_model, model_names, register_model

# The built-in families (each module ends with its register_model call).
from sysprune.models import torch_mlp, torch_cnn, sklearn_sgd  # noqa: E402, F401  isort: skip

__all__ = ["DryRun", "ModelFamily", "Trainer", "get_model", "model_names", "register_model"]
