"""The model registry: a model family is a ``create`` function, its search space and the data kinds it reads."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from sysprune.datasets import Dataset
from sysprune._plugins import check_installed, check_registrant, installed, is_module_path
from sysprune.models._space import Param
from sysprune.models._base import Trainer
from sysprune._validation import Constraint


class CreateFn(Protocol):
    """``create(params, data, *, seed) -> Trainer``: one trainer for one set of hyperparameters."""

    def __call__(self, params: dict[str, Any], data: Dataset, *, seed: int) -> Trainer: ...


DATA_KINDS = ("tabular", "image")


@dataclass(frozen=True)
class ModelFamily:
    """A registered model family (see :func:`register_model`)."""

    name: str
    create: CreateFn
    space: Mapping[str, Param]
    inputs: frozenset[str]
    requires: tuple[str, ...] = ()
    #: The values each parameter may take at all (``sysprune.Real(0.0, 0.99)``, ...): a study file's range or fixed
    #: value outside them is refused before anything runs.
    bounds: Mapping[str, Constraint] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_module_path(self.name):
            raise ValueError(f"model name must be letters, digits, '_' and dots, got {self.name!r}")
        if not callable(self.create):
            raise ValueError(f"create of model {self.name!r} must be callable, got {self.create!r}")
        if not isinstance(self.space, Mapping) or not all(isinstance(k, str) for k in self.space):
            raise ValueError(f"space of model {self.name!r} must map parameter names to parameters, got {self.space!r}")
        bad = sorted(set(self.inputs) - set(DATA_KINDS))
        if not self.inputs or bad:
            raise ValueError(
                f"inputs of model {self.name!r} must be a non-empty subset of "
                f"{', '.join(DATA_KINDS)}, got {sorted(self.inputs)!r}"
            )


_MODELS: dict[str, ModelFamily] = {}


def register_model(
    name: str,
    create: CreateFn,
    *,
    space: Mapping[str, Param],
    inputs: Iterable[str] = DATA_KINDS,
    requires: Iterable[str] = (),
    bounds: Mapping[str, Constraint] | None = None,
) -> ModelFamily:
    """Make model family ``name`` usable in study files (``model = "<name>"``).

    Args:
        name: the name study files use.
        create: ``create(params, data, *, seed) -> sysprune.Trainer``; ``params`` holds one value per entry of
            ``space``, ``data`` is the prepared :class:`sysprune.Dataset`.
        space: the default search space (``sysprune.FloatParam``, ...); a study file may override any entry.
        inputs: the dataset kinds it reads (``"tabular"``, ``"image"``).
        requires: optional modules it needs (``("torch",)``): naming the model without them is a one-line error.
        bounds: per parameter, the values the model accepts at all (``{"dropout": sysprune.Real(0.0, 0.99)}``); a
            study file whose range, choices or fixed value leaves them is refused in one line, exit 2, nothing run.

    Registering the same family again (a module imported twice) is a no-op; another family under a registered
    name is a ValueError.
    """
    family = ModelFamily(name, create, dict(space), frozenset(inputs), tuple(requires), dict(bounds or {}))
    known = _MODELS.get(name)
    check_registrant("register_model", name, known.create if known is not None else None, create)
    _MODELS[name] = family
    return family


def model_names() -> tuple[str, ...]:
    """The registered model families, in registration order."""
    return tuple(_MODELS)


def get_model(name: str) -> ModelFamily:
    """The registered family ``name``; or, for a dotted module path, the module imported (its registrations run)
    and read as a family if it defines ``NAME``, ``INPUTS``, ``SPACE`` and ``create`` (the module form).

    Raises ValueError naming the model and what is valid, :class:`~sysprune._plugins.MissingDependency` when an
    optional dependency of the family is not installed.
    """
    family = _MODELS.get(name) if isinstance(name, str) else None
    if family is None and is_module_path(name) and ("." in name or installed(name)):
        family = _from_module(name)
    if family is None:
        raise ValueError(
            f"unknown model {name!r}; valid: {', '.join(model_names())}, "
            "a model registered by a plugin module, or a dotted module path"
        )
    check_installed(family.requires, f"model {family.name!r}")
    return family


_CONTRACT = ("NAME", "INPUTS", "SPACE", "create")


def _from_module(path: str) -> ModelFamily:
    try:
        module: ModuleType = importlib.import_module(path)
    except ImportError as e:
        raise ValueError(f"model module {path!r} cannot be imported ({e})") from None
    if path in _MODELS:  # the module registered itself under its own path
        return _MODELS[path]
    missing = [a for a in _CONTRACT if not hasattr(module, a)]
    if missing:
        raise ValueError(
            f"model module {path!r} lacks {', '.join(missing)} (a model module defines "
            f"{', '.join(_CONTRACT)}, or calls sysprune.register_model)"
        )
    create: Any = module.create
    return register_model(
        path,
        create,
        space=module.SPACE,
        inputs=module.INPUTS,
        requires=getattr(module, "REQUIRES", ()),
        bounds=getattr(module, "CONSTRAINTS", None),
    )
