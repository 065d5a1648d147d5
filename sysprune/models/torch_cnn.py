"""``torch_cnn``: a small convolutional net (conv-ReLU-maxpool blocks, then one hidden dense layer), AdamW.

Images only. Every conv block has ``channels`` channels and "same" padding (``kernel_size // 2``) and halves the
spatial size with a 2x2 max-pool while it is at least 2, so 8x8 digits and 28x28 MNIST both work with up to three
blocks (8->4->2->1, 28->14->7->3). One step is one epoch over the training split.
"""

from __future__ import annotations

from typing import Any

from sysprune._validation import Constraint, Integer, OneOf
from sysprune.datasets import Dataset
from sysprune.models._space import CategoricalParam, FloatParam, IntParam, Param
from sysprune.models._base import TORCH_CONSTRAINTS, Trainer
from sysprune.models._registry import register_model

NAME = "torch_cnn"
INPUTS: frozenset[str] = frozenset({"image"})
KERNEL_SIZES = (1, 3, 5, 7)
#: Defaults are used for parameters a direct ``create`` call leaves out (a study passes every entry).
SPACE: dict[str, Param] = {
    "n_conv": IntParam(1, 3, default=2),
    "channels": IntParam(4, 32, log=True, default=16),
    "kernel_size": CategoricalParam((3, 5), default=3),
    "fc_width": IntParam(16, 256, log=True, default=64),
    "dropout": FloatParam(0.0, 0.5, default=0.1),
    "lr": FloatParam(1e-4, 3e-2, log=True, default=1e-3),
    "weight_decay": FloatParam(1e-6, 1e-2, log=True, default=1e-4),
    "batch_size": CategoricalParam((32, 64, 128, 256), default=128),
}
#: Hard limits of its own (with the torch families' shared ones, ``_torch_common.CONSTRAINTS``).
CONSTRAINTS: dict[str, Constraint] = {
    "n_conv": Integer(1, 16),
    "channels": Integer(1, 4096),
    "kernel_size": OneOf(KERNEL_SIZES),
    "fc_width": Integer(1, 65536),
}


def create(params: dict[str, Any], data: Dataset, *, seed: int) -> Trainer:
    """A CNN trainer for image ``data`` with hyperparameters ``params`` (missing ones from the space's defaults)."""
    from sysprune.models import _torch_common as tc  # imports torch (~3 s): only when a torch model is built

    return tc.create_trainer(
        NAME,
        INPUTS,
        SPACE,
        params,
        data,
        seed=seed,
        constraints=CONSTRAINTS,
        build=_build,
    )


def _build(data: Dataset, p: dict[str, Any]) -> Any:
    from torch import nn

    c_in, h, w = data.input_shape
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
    layers.append(nn.Linear(int(p["fc_width"]), data.n_classes))
    return nn.Sequential(*layers)


register_model(
    NAME, create, space=SPACE, inputs=INPUTS, requires=("torch",), bounds={**TORCH_CONSTRAINTS, **CONSTRAINTS}
)
