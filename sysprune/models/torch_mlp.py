"""``torch_mlp``: a multi-layer perceptron (Linear-ReLU-Dropout blocks of one width) trained with AdamW.

Reads tabular data and images (flattened). One step is one epoch over the training split.
"""

from __future__ import annotations

from typing import Any

from sysprune._validation import Constraint, Integer
from sysprune.datasets import Dataset
from sysprune.models._space import CategoricalParam, FloatParam, IntParam, Param
from sysprune.models._base import TORCH_CONSTRAINTS, Trainer
from sysprune.models._registry import register_model

NAME = "torch_mlp"
INPUTS: frozenset[str] = frozenset({"tabular", "image"})
#: Defaults are used for parameters a direct ``create`` call leaves out (a study passes every entry).
SPACE: dict[str, Param] = {
    "n_layers": IntParam(1, 3, default=2),
    "width": IntParam(16, 1024, log=True, default=128),
    "dropout": FloatParam(0.0, 0.5, default=0.1),
    "lr": FloatParam(1e-4, 3e-2, log=True, default=1e-3),
    "weight_decay": FloatParam(1e-6, 1e-2, log=True, default=1e-4),
    "batch_size": CategoricalParam((32, 64, 128, 256), default=128),
}
#: Hard limits of its own (with the torch families' shared ones, ``_torch_common.CONSTRAINTS``).
CONSTRAINTS: dict[str, Constraint] = {"n_layers": Integer(1, 64), "width": Integer(1, 65536)}


def create(params: dict[str, Any], data: Dataset, *, seed: int) -> Trainer:
    """An MLP trainer for ``data`` with hyperparameters ``params`` (missing ones from the space's defaults)."""
    from sysprune.models import _torch_common as tc  # imports torch (~3 s): only when a torch model is built

    return tc.create_trainer(NAME, INPUTS, SPACE, params, data, seed=seed, constraints=CONSTRAINTS, build=_build)


def _build(data: Dataset, p: dict[str, Any]) -> Any:
    from torch import nn

    from sysprune.models._torch_common import flat_features  # imports torch (~3 s)

    layers: list[nn.Module] = [nn.Flatten()]
    width_in = flat_features(data.input_shape)
    for _ in range(int(p["n_layers"])):
        layers += [nn.Linear(width_in, int(p["width"])), nn.ReLU()]
        if p["dropout"] > 0:
            layers.append(nn.Dropout(float(p["dropout"])))
        width_in = int(p["width"])
    layers.append(nn.Linear(width_in, data.n_classes))
    return nn.Sequential(*layers)


register_model(
    NAME, create, space=SPACE, inputs=INPUTS, requires=("torch",), bounds={**TORCH_CONSTRAINTS, **CONSTRAINTS}
)
