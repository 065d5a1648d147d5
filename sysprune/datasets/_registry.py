"""Datasets: registry, offline-first loading, deterministic splits, and an array cache for trial processes.

Names (each one :func:`register_dataset` call in its own module of this package; a dataset of one's own is
one more)
    ``digits``          scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); needs no data directory.
    ``mnist``           MNIST via ``torchvision.datasets.MNIST`` (70,000 images 1x28x28, 10 classes; extra torch).
    ``fashion_mnist``   Fashion-MNIST via ``torchvision.datasets.FashionMNIST`` (70,000 images, 10 classes).
    ``pmlb:<name>``     a PMLB classification dataset via ``pmlb.fetch_data`` (tabular; extra pmlb). A name that
                        ends in ``:`` registers such a family: its loader receives the full name.

Where files live
    Raw data:        the ``data_dir`` argument, else ``$SYSPRUNE_DATA_DIR``, else ``~/.cache/sysprune/data``
                     (torchvision's ``<dir>/MNIST/raw``, ``<dir>/FashionMNIST/raw``; PMLB's ``<dir>/pmlb/<name>``).
    Prepared arrays: the ``cache_dir`` argument, else ``$SYSPRUNE_CACHE_DIR``, else ``~/.cache/sysprune/arrays``.

A dataset missing from the data directory is downloaded there by the library's own loader (a connected machine
downloads once and caches). When that fails (no network, a read-only directory, ...) :class:`DatasetUnavailable`
is raised with one line naming the dataset, the directory searched and what to do.

:func:`prepare` turns raw data into arrays, once:

1. labels are remapped to ``0..K-1`` (sorted original values; e.g. PMLB ``letter``'s 1..26 become 0..25);
2. if ``subsample`` is given, a stratified subsample of that many rows is drawn (all rows if it is larger);
3. the rows are split into train / val / test, stratified, deterministically from ``seed``:
   ``round(test_fraction * n)`` test rows and ``round(val_fraction * n)`` val rows, the rest train. MNIST and
   Fashion-MNIST take their test rows from the official test split (at most all 10,000 of it) and train and val
   from the official training split;
4. preprocessing is fitted on the training rows only and applied to all three parts: tabular data is
   standardised per feature (``sklearn.preprocessing.StandardScaler``: mean 0, std 1; a constant feature keeps
   scale 1); images are scaled to [0, 1] (divided by the source's ``pixel_max``) and then normalised by the
   training pixels' mean and std (one scalar each);
5. ``X_{train,val,test}.npy`` (float32) and ``y_{train,val,test}.npy`` (int64) and ``meta.json`` are written to
   ``<cache_dir>/<name>-<hash>``, where the hash covers the name, seed, subsample, both fractions and
   :data:`FORMAT_VERSION` (the data directory is not part of the key: it changes where bytes come from, not what
   they are). The folder is written under a temporary name and renamed into place, so readers never see a partial
   folder, and a concurrent writer that wins the race is accepted. A cached folder makes ``prepare`` a no-op.

:func:`open_prepared` memory-maps a prepared folder and returns a :class:`Dataset` in milliseconds; trial processes
use it. :func:`check_dataset_name` and :func:`dataset_kind` are registry look-ups (no torch, no pmlb import): a
family member such as a PMLB name is checked only for its syntax there, and :func:`prepare` rejects names PMLB
does not know.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from sysprune._plugins import check_installed, check_registrant
from sysprune.exceptions import DatasetUnavailable

DATA_DIR_ENV = "SYSPRUNE_DATA_DIR"
CACHE_DIR_ENV = "SYSPRUNE_CACHE_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/sysprune/data")
DEFAULT_CACHE_DIR = Path("~/.cache/sysprune/arrays")
_MEMBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")  # a family member's name (every PMLB name matches)
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*:?")
DataKind = Literal["image", "tabular"]


@dataclass
class Dataset:
    """A prepared dataset as a trainer sees it. ``X_*`` are float32 (already preprocessed), ``y_*`` int64 in
    ``0..n_classes-1``. ``input_shape`` is one sample's shape: ``(n_features,)`` for tabular data,
    ``(channels, height, width)`` for images (``X`` then has shape ``(n, *input_shape)``)."""

    name: str
    kind: DataKind
    input_shape: tuple[int, ...]
    n_classes: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


# ---------------------------------------------------------------------------------------------------------------
# The registry (cheap: no heavy imports)

#: ``load(name, data_dir) -> (X, y)`` or ``((X_train, y_train), (X_test, y_test))`` (an official test split).
LoadFn = Callable[[str, Path], Any]
#: ``check(name, data_dir)``: offline, raise ValueError when a family member's name is not one the loader knows.
CheckFn = Callable[[str, Path], None]


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset, or a family of them when ``name`` ends in ``:`` (see :func:`register_dataset`)."""

    name: str
    load: LoadFn
    kind: DataKind
    pixel_max: float = 255.0
    requires: tuple[str, ...] = ()
    description: str = ""
    version: str | None = None
    check: CheckFn | None = None

    @property
    def is_family(self) -> bool:
        return self.name.endswith(":")


_SOURCES: dict[str, DatasetSource] = {}


def register_dataset(
    name: str,
    load: LoadFn,
    *,
    kind: DataKind,
    pixel_max: float = 255.0,
    requires: Iterable[str] = (),
    description: str = "",
    version: str | None = None,
    check: CheckFn | None = None,
) -> DatasetSource:
    """Make dataset ``name`` usable in study files (``dataset = "<name>"``).

    Args:
        name: lower case letters, digits and ``_``; a name ending in ``:`` (``"pmlb:"``) registers a family whose
            members are named ``<name><member>``.
        load: ``load(name, data_dir) -> (X, y)`` with the raw rows (the shared code subsamples, splits stratified,
            preprocesses and caches), or ``((X_train, y_train), (X_test, y_test))`` to keep an official test
            split. ``name`` is the full name asked for, ``data_dir`` the raw-data directory (``SYSPRUNE_DATA_DIR``).
            Tabular ``X`` is ``(n, n_features)``; image ``X`` is ``(n, height, width)`` or ``(n, channels, height,
            width)``. Labels may be any sortable values; they become ``0..K-1``.
        kind: ``"tabular"`` (standardised per feature) or ``"image"`` (divided by ``pixel_max``, then normalised).
        pixel_max: images: the raw value that maps to 1.0.
        requires: optional modules the loader imports (``("torchvision",)``): naming the dataset without them is a
            one-line error saying which extra to install.
        description: shown in the list of valid names.
        version: part of the prepared-array cache key: change it when the loader's output changes.
        check: ``check(name, data_dir)`` refuses, offline and with a ValueError, a name the loader would not know
            (validating a study file calls it; ``pmlb:`` checks PMLB's list of classification datasets).

    Registering the same loader again is a no-op; another loader under a registered name is a ValueError.
    """
    if not isinstance(name, str) or not _SOURCE_NAME.fullmatch(name):
        raise ValueError(
            f"dataset name must be lower case letters, digits and '_' (a family: ending in ':'), got {name!r}"
        )
    if kind not in get_args(DataKind):
        raise ValueError(f"kind of dataset {name!r} must be 'tabular' or 'image', got {kind!r}")
    if not callable(load):
        raise ValueError(f"load of dataset {name!r} must be callable, got {load!r}")
    if isinstance(pixel_max, bool) or not isinstance(pixel_max, (int, float)) or not pixel_max > 0:
        raise ValueError(f"pixel_max of dataset {name!r} must be a number > 0, got {pixel_max!r}")
    source = DatasetSource(name, load, kind, float(pixel_max), tuple(requires), description, version, check)
    known = _SOURCES.get(name)
    check_registrant("register_dataset", name, known.load if known is not None else None, load)
    _SOURCES[name] = source
    return source


def dataset_names() -> tuple[str, ...]:
    """Registered names; a family as ``<prefix><name>`` (e.g. ``pmlb:<name>``)."""
    return tuple(f"{n}<name>" if s.is_family else n for n, s in _SOURCES.items())


def get_source(name: object) -> DatasetSource:
    """The registered source of dataset ``name``, else ValueError naming it and what is valid;
    :class:`~sysprune._plugins.MissingDependency` when the source's optional dependency is not installed."""
    source = _find(name)
    check_installed(source.requires, f"dataset {name!r}")
    return source


def _find(name: object) -> DatasetSource:
    plain = [n for n, s in _SOURCES.items() if not s.is_family]
    families = [s for s in _SOURCES.values() if s.is_family]
    described = [f"{s.name}<name>" + (f" ({s.description})" if s.description else "") for s in families]
    valid = f"valid: {', '.join(plain)}" + (f", or {', '.join(described)}" if described else "")
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {name!r}; {valid}")
    source = _SOURCES.get(name)
    if source is not None and not source.is_family:
        return source
    for family in families:
        if name.startswith(family.name):
            if _MEMBER_NAME.fullmatch(name[len(family.name) :]):
                return family
            raise ValueError(
                f"invalid dataset name {name!r}: expected {family.name}<name>, the name made of "
                "letters, digits, '_', '.', '+' or '-' and starting with a letter or digit"
            )
    raise ValueError(f"unknown dataset {name!r}; {valid}")


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a registered dataset name, else raise ValueError naming it and what is valid."""
    get_source(name)
    return name  # type: ignore[return-value]  # get_source checked it is a str


def check_dataset_known(name: str, data_dir: str | os.PathLike[str] | None = None) -> str:
    """Offline: the registered source's own ``check`` of a family member's name (``pmlb:<name>``: one PMLB lists
    as a classification dataset, or one already in the data directory), with the same message :func:`prepare`
    gives. Needs no network; a no-op for a source without a check (every built-in name but ``pmlb:``)."""
    source = _find(name)
    if source.check is not None:
        source.check(name, resolve_data_dir(data_dir))
    return name


def dataset_kind(name: str) -> DataKind:
    """``"image"`` or ``"tabular"`` for a dataset name, without loading anything."""
    return get_source(name).kind


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The raw-data directory: the argument, else ``$SYSPRUNE_DATA_DIR``, else ``~/.cache/sysprune/data``."""
    return _resolve_dir(data_dir, DATA_DIR_ENV, DEFAULT_DATA_DIR)


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The prepared-array directory: the argument, else ``$SYSPRUNE_CACHE_DIR``, else ``~/.cache/sysprune/arrays``."""
    return _resolve_dir(cache_dir, CACHE_DIR_ENV, DEFAULT_CACHE_DIR)


def _resolve_dir(arg: str | os.PathLike[str] | None, env: str, default: Path) -> Path:
    if arg is not None:
        return Path(arg).expanduser()
    value = os.environ.get(env)
    return Path(value).expanduser() if value else default.expanduser()


_NETWORK_MARKERS = (
    "Name or service not known",
    "Failed to resolve",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No route to host",
    "Connection refused",
    "timed out",
)


def _reason(error: BaseException) -> str:
    """A short one-line cause: unwritable directory, no network, or the error's own first words."""
    text = " ".join(str(error).split())
    if isinstance(error, PermissionError) or "Permission denied" in text or "Read-only file system" in text:
        return f"the directory is not writable: {text[:120]}"
    for marker in _NETWORK_MARKERS:
        if marker in text:
            return f"no network: {marker[0].lower() + marker[1:]}"
    return f"{type(error).__name__}: {text[:120] or 'no message'}"


def unavailable(name: str, where: Path, error: BaseException) -> DatasetUnavailable:
    reason = _reason(error)
    return DatasetUnavailable(
        f"dataset {name!r} is not in {where} and could not be downloaded ({reason}); "
        f"download it on a machine with network access or set {DATA_DIR_ENV} to a directory that holds it"
    )
