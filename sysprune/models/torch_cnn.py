"""``torch_cnn``: a small convolutional net (conv-ReLU-maxpool blocks, then one hidden dense layer), AdamW.

Images only. Every conv block has ``channels`` channels and "same" padding (``kernel_size // 2``) and halves the
spatial size with a 2x2 max-pool while it is at least 2, so 8x8 digits and 28x28 MNIST both work with up to three
blocks (8->4->2->1, 28->14->7->3). One step is one epoch over the training split.
"""

from __future__ import annotations

from typing import Any

from sysprune._data import Dataset
from sysprune._space import CategoricalParam, FloatParam, IntParam, Param
from sysprune.models._base import Trainer

NAME = "torch_cnn"
INPUTS: frozenset[str] = frozenset({"image"})
SPACE: dict[str, Param] = {
    "n_conv": IntParam(1, 3),
    "channels": IntParam(4, 32, log=True),
    "kernel_size": CategoricalParam((3, 5)),
    "fc_width": IntParam(16, 256, log=True),
    "dropout": FloatParam(0.0, 0.5),
    "lr": FloatParam(1e-4, 3e-2, log=True),
    "weight_decay": FloatParam(1e-6, 1e-2, log=True),
    "batch_size": CategoricalParam((32, 64, 128, 256)),
}
#: Values used for parameters that ``params`` leaves out (mid-range; a study always passes every SPACE entry).
DEFAULTS: dict[str, Any] = {
    "n_conv": 2,
    "channels": 16,
    "kernel_size": 3,
    "fc_width": 64,
    "dropout": 0.1,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "batch_size": 128,
}


def create(params: dict[str, Any], data: Dataset, *, seed: int) -> Trainer:
    """A CNN trainer for image ``data`` with hyperparameters ``params`` (missing ones from :data:`DEFAULTS`)."""
    from sysprune.models import _torch_common as tc

    p = tc.merge_params(params, DEFAULTS, NAME)
    tc.check_kind(data, INPUTS, NAME)
    for name in ("n_conv", "channels", "fc_width", "batch_size"):
        tc.check_int(p, name, 1, NAME)
    if p["kernel_size"] not in (1, 3, 5, 7):
        raise ValueError(f"{NAME}: kernel_size must be one of 1, 3, 5, 7, got {p['kernel_size']!r}")
    tc.check_range(p, "dropout", 0.0, 0.99, NAME)
    tc.check_range(p, "lr", 1e-8, 10.0, NAME)
    tc.check_range(p, "weight_decay", 0.0, 10.0, NAME)
    device = tc.pick_device()
    tc.seeded(seed, device)
    net = _build(data.input_shape, data.n_classes, p)
    return tc.TorchTrainer(
        net, data, lr=p["lr"], weight_decay=p["weight_decay"], batch_size=p["batch_size"], seed=seed, device=device
    )


def _build(input_shape: tuple[int, ...], n_out: int, p: dict[str, Any]) -> Any:
    from torch import nn

    c_in, h, w = input_shape
    k, c = int(p["kernel_size"]), int(p["channels"])
    layers: list[nn.Module] = []
    for _ in range(int(p["n_conv"])):
        layers += [nn.Conv2d(c_in, c, k, padding=k // 2), nn.ReLU()]
        if min(h, w) >= 2:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c_in = c
    layers += [nn.Flatten(), nn.Linear(c_in * h * w, int(p["fc_width"])), nn.ReLU()]
    if p["dropout"] > 0:
        layers.append(nn.Dropout(float(p["dropout"])))
    layers.append(nn.Linear(int(p["fc_width"]), n_out))
    return nn.Sequential(*layers)
