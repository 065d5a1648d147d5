"""``torch_mlp``: a multi-layer perceptron (Linear-ReLU-Dropout blocks of one width) trained with AdamW.

Reads tabular data and images (flattened). One step is one epoch over the training split.
"""

from __future__ import annotations

from typing import Any

from sysprune._data import Dataset
from sysprune._space import CategoricalParam, FloatParam, IntParam, Param
from sysprune.models._base import Trainer

NAME = "torch_mlp"
INPUTS: frozenset[str] = frozenset({"tabular", "image"})
SPACE: dict[str, Param] = {
    "n_layers": IntParam(1, 3),
    "width": IntParam(16, 1024, log=True),
    "dropout": FloatParam(0.0, 0.5),
    "lr": FloatParam(1e-4, 3e-2, log=True),
    "weight_decay": FloatParam(1e-6, 1e-2, log=True),
    "batch_size": CategoricalParam((32, 64, 128, 256)),
}
#: Values used for parameters that ``params`` leaves out (mid-range; a study always passes every SPACE entry).
DEFAULTS: dict[str, Any] = {
    "n_layers": 2,
    "width": 128,
    "dropout": 0.1,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "batch_size": 128,
}


def create(params: dict[str, Any], data: Dataset, *, seed: int) -> Trainer:
    """An MLP trainer for ``data`` with hyperparameters ``params`` (missing ones from :data:`DEFAULTS`)."""
    from sysprune.models import _torch_common as tc

    p = tc.merge_params(params, DEFAULTS, NAME)
    tc.check_kind(data, INPUTS, NAME)
    for name in ("n_layers", "width", "batch_size"):
        tc.check_int(p, name, 1, NAME)
    tc.check_range(p, "dropout", 0.0, 0.99, NAME)
    tc.check_range(p, "lr", 1e-8, 10.0, NAME)
    tc.check_range(p, "weight_decay", 0.0, 10.0, NAME)
    device = tc.pick_device()
    tc.seeded(seed, device)
    net = _build(tc.flat_features(data.input_shape), data.n_classes, p)
    return tc.TorchTrainer(
        net, data, lr=p["lr"], weight_decay=p["weight_decay"], batch_size=p["batch_size"], seed=seed, device=device
    )


def _build(n_in: int, n_out: int, p: dict[str, Any]) -> Any:
    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]
    width_in = n_in
    for _ in range(int(p["n_layers"])):
        layers += [nn.Linear(width_in, int(p["width"])), nn.ReLU()]
        if p["dropout"] > 0:
            layers.append(nn.Dropout(float(p["dropout"])))
        width_in = int(p["width"])
    layers.append(nn.Linear(width_in, n_out))
    return nn.Sequential(*layers)
