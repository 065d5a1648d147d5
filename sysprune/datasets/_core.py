"""Datasets: registry, offline-first loading, deterministic splits, and an array cache for trial processes.

Names (each one :func:`register_dataset` call at the end of this module; a dataset of one's own is one more)
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

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from sysprune._plugins import check_installed

DATA_DIR_ENV = "SYSPRUNE_DATA_DIR"
CACHE_DIR_ENV = "SYSPRUNE_CACHE_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/sysprune/data")
DEFAULT_CACHE_DIR = Path("~/.cache/sysprune/arrays")
#: Bump when the prepared layout or the preprocessing changes: old cache folders are then simply not found.
FORMAT_VERSION = 1

PMLB_PREFIX = "pmlb:"
_MEMBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")  # a family member's name (every PMLB name matches)
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*:?")
DataKind = Literal["image", "tabular"]
_SPLITS = ("train", "val", "test")
_PMLB_EXAMPLES = ("adult", "connect_4", "iris", "letter", "mushroom")
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


from sysprune.exceptions import DatasetUnavailable  # defined with every user-catchable error


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

    Registering the same loader again is a no-op; another loader under a registered name is a ValueError.
    """
    if not isinstance(name, str) or not _SOURCE_NAME.fullmatch(name):
        raise ValueError(f"dataset name must be lower case letters, digits and '_' (a family: ending in ':'), "
                         f"got {name!r}")
    if kind not in get_args(DataKind):
        raise ValueError(f"kind of dataset {name!r} must be 'tabular' or 'image', got {kind!r}")
    if not callable(load):
        raise ValueError(f"load of dataset {name!r} must be callable, got {load!r}")
    if isinstance(pixel_max, bool) or not isinstance(pixel_max, (int, float)) or not pixel_max > 0:
        raise ValueError(f"pixel_max of dataset {name!r} must be a number > 0, got {pixel_max!r}")
    source = DatasetSource(name, load, kind, float(pixel_max), tuple(requires), description, version)
    known = _SOURCES.get(name)
    if known is not None and _origin(known.load) != _origin(load):
        raise ValueError(f"dataset {name!r} is already registered (load from {'.'.join(_origin(known.load))}); "
                         "pick another name")
    _SOURCES[name] = source
    return source


def _origin(fn: Callable[..., Any]) -> tuple[str, str]:
    return (getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", repr(fn)))


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
            raise ValueError(f"invalid dataset name {name!r}: expected {family.name}<name>, the name made of "
                             "letters, digits, '_', '.', '+' or '-' and starting with a letter or digit")
    raise ValueError(f"unknown dataset {name!r}; {valid}")


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a registered dataset name, else raise ValueError naming it and what is valid."""
    get_source(name)
    return name  # type: ignore[return-value]  # get_source checked it is a str


def check_dataset_known(name: str, data_dir: str | os.PathLike[str] | None = None) -> str:
    """Offline: refuse a well-formed ``pmlb:<name>`` that PMLB does not list as a classification dataset (and that
    is not already in the data directory), with the same message :func:`prepare` gives. Needs no network; a
    no-op for the built-in names and when pmlb is not installed (``prepare`` then says what is missing)."""
    check_dataset_name(name)
    if not name.startswith(PMLB_PREFIX):
        return name
    try:
        import pmlb  # ~0.8 s; only for pmlb: names
    except ImportError:
        return name
    short, pmlb_dir = name[len(PMLB_PREFIX) :], resolve_data_dir(data_dir) / "pmlb"
    if not _pmlb_cached(short, pmlb_dir) and short not in pmlb.classification_dataset_names:
        raise ValueError(_unknown_pmlb_message(short, pmlb_dir, pmlb))
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


# ---------------------------------------------------------------------------------------------------------------
# Public entry points


def prepare(
    name: str,
    *,
    seed: int,
    subsample: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Load, subsample, split and preprocess ``name`` once; return the cache folder holding the arrays.

    Cheap (a ``stat``) when the folder already exists. Raises ValueError for bad arguments or an unknown PMLB
    name, :class:`DatasetUnavailable` when the raw data is neither present nor downloadable.
    """
    source = get_source(name)
    _check_args(seed, subsample, val_fraction, test_fraction)
    key: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": name,
        "seed": int(seed),
        "subsample": None if subsample is None else int(subsample),
        "val_fraction": float(val_fraction),
        "test_fraction": float(test_fraction),
    }
    if source.version is not None:  # built-ins have none: their cache folders keep their names
        key["version"] = source.version
    root = resolve_cache_dir(cache_dir)
    target = root / _folder_name(key)
    if (target / "meta.json").is_file():
        return target
    arrays, meta = _build(source, key, resolve_data_dir(data_dir))
    _write_atomically(root, target, arrays, {**key, **meta})
    return target


def open_prepared(path: str | os.PathLike[str]) -> Dataset:
    """Memory-map the arrays of a folder written by :func:`prepare` (read-only ``np.memmap`` arrays)."""
    folder = Path(path)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"not a prepared dataset folder (no meta.json): {folder}; create it with prepare()")
    meta = json.loads(meta_file.read_text())
    arrays = {f"{v}_{s}": np.load(folder / f"{v}_{s}.npy", mmap_mode="r") for s in _SPLITS for v in "Xy"}
    return Dataset(
        name=meta["name"],
        kind=meta["kind"],
        input_shape=tuple(meta["input_shape"]),
        n_classes=int(meta["n_classes"]),
        **arrays,
    )


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta.json`` of a prepared folder: arguments, sizes, class counts, original labels, preprocessing."""
    return json.loads((Path(path) / "meta.json").read_text())


def load(name: str, **kwargs: Any) -> Dataset:
    """``open_prepared(prepare(name, **kwargs))``: the prepared, memory-mapped dataset in one call."""
    return open_prepared(prepare(name, **kwargs))


# ---------------------------------------------------------------------------------------------------------------
# Argument checks and cache layout


def _check_args(seed: object, subsample: object, val_fraction: object, test_fraction: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if subsample is not None and (
        isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)) or subsample < 10
    ):
        raise ValueError(f"subsample must be None or an integer >= 10, got {subsample!r}")
    for field, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"{field} must be a number in (0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1:  # type: ignore[operator]
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction:g} + {test_fraction:g}")


def _folder_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', key['name'])}-{digest}"


def _write_atomically(root: Path, target: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write into a temporary sibling folder, then rename it to ``target``; losing a race to another writer is fine."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other cache folder
    except OSError as e:
        raise OSError(f"cannot write prepared arrays under {root} ({e.strerror or e}); set {CACHE_DIR_ENV} "
                      "to a writable directory") from None
    try:
        for key, array in arrays.items():
            np.save(tmp / f"{key}.npy", array)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "meta.json").is_file():  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Building the arrays


def _build(
    source: DatasetSource, key: dict[str, Any], data_dir: Path
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Raw data -> (arrays by ``X_train``-style key, metadata)."""
    name = key["name"]
    rng = np.random.default_rng(key["seed"])
    fractions = (key["val_fraction"], key["test_fraction"])
    raw = source.load(name, data_dir)
    if _is_official_split(raw):
        (X_tr, y_tr), (X_te, y_te) = raw
        _check_raw(name, source.kind, X_tr, y_tr)
        _check_raw(name, source.kind, X_te, y_te)
        parts, labels = _split_official(X_tr, y_tr, X_te, y_te, rng, key["subsample"], *fractions)
    else:
        X, y = raw
        _check_raw(name, source.kind, X, y)
        parts, labels = _split_pooled(X, y, rng, key["subsample"], *fractions)
    if source.kind == "image":
        arrays, prep = _preprocess_images(parts, source.pixel_max)
    else:
        arrays, prep = _preprocess_tabular(parts)
    n_classes = len(labels)
    meta = {
        "kind": source.kind,
        "input_shape": list(arrays["X_train"].shape[1:]),
        "n_classes": n_classes,
        "classes": labels,
        "sizes": {s: int(len(arrays[f"y_{s}"])) for s in _SPLITS},
        "class_counts": {s: np.bincount(arrays[f"y_{s}"], minlength=n_classes).tolist() for s in _SPLITS},
        "preprocessing": prep,
    }
    return arrays, meta


def _is_official_split(raw: Any) -> bool:
    return isinstance(raw, tuple) and len(raw) == 2 and all(isinstance(r, tuple) and len(r) == 2 for r in raw)


def _check_raw(name: str, kind: str, X: Any, y: Any) -> None:
    """The loader's arrays have the shape its kind needs (one line naming the dataset otherwise)."""
    ndims = (2,) if kind == "tabular" else (3, 4)
    shape_X, shape_y = np.shape(X), np.shape(y)
    if len(shape_X) not in ndims or len(shape_y) != 1 or shape_X[0] != shape_y[0]:
        expected = "(n, n_features)" if kind == "tabular" else "(n, height, width) or (n, channels, height, width)"
        raise ValueError(f"dataset {name!r}: its loader returned X of shape {shape_X} and y of shape {shape_y}; "
                         f"expected X {expected} and y (n,)")


def _remap_labels(*ys: np.ndarray) -> tuple[list[np.ndarray], list[Any]]:
    """Map labels (over all given arrays together) to ``0..K-1`` in sorted order; return them and the originals."""
    classes, codes = np.unique(np.concatenate([np.asarray(y) for y in ys]), return_inverse=True)
    cuts = np.cumsum([len(y) for y in ys])[:-1]
    return [c.astype(np.int64) for c in np.split(codes, cuts)], classes.tolist()


def stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(len(y))`` in which every prefix is stratified.

    Each class's rows are shuffled and spread evenly over [0, 1) (row ``r`` of class ``c`` gets key
    ``(r + u_c) / n_c`` with a random offset ``u_c``); sorting by key interleaves the classes, so any prefix of
    length ``k`` (and any contiguous block) holds each class within 1-2 rows of its proportional share.
    """
    keys = np.empty(len(y), dtype=np.float64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        rows = rows[rng.permutation(len(rows))]
        keys[rows] = (np.arange(len(rows)) + rng.random()) / len(rows)
    return np.argsort(keys, kind="stable")


def _sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(n_val, n_test) for ``n`` rows."""
    return int(round(val_fraction * n)), int(round(test_fraction * n))


def _require_sizes(n_train: int, n_val: int, n_test: int, n: int) -> None:
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"too few rows ({n}) for a train/val/test split of {n_train}/{n_val}/{n_test}; "
            "use a larger subsample or other fractions"
        )


def _split_pooled(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, subsample: int | None, vf: float, tf: float
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[Any]]:
    """Stratified subsample + split of one pool of rows (test block, then val block, then train block)."""
    (y,), labels = _remap_labels(y)
    order = stratified_order(y, rng)
    n = len(y) if subsample is None else min(subsample, len(y))
    n_val, n_test = _sizes(n, vf, tf)
    n_train = n - n_val - n_test
    _require_sizes(n_train, n_val, n_test, n)
    blocks = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val : n]}
    return {s: _take(X, y, idx, rng) for s, idx in blocks.items()}, labels


def _split_official(
    X_tr: np.ndarray,
    y_tr: np.ndarray,
    X_te: np.ndarray,
    y_te: np.ndarray,
    rng: np.random.Generator,
    subsample: int | None,
    vf: float,
    tf: float,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[Any]]:
    """Test rows from the official test split, train and val rows from the official training split."""
    (y_tr, y_te), labels = _remap_labels(y_tr, y_te)
    total = len(y_tr) + len(y_te)
    n = total if subsample is None else min(subsample, total)
    n_val, n_test = _sizes(n, vf, tf)
    n_test = min(n_test, len(y_te))
    n_train = min(n - n_val - n_test, len(y_tr) - n_val)
    _require_sizes(n_train, n_val, n_test, n)
    order_tr = stratified_order(y_tr, rng)
    order_te = stratified_order(y_te, rng)
    return {
        "test": _take(X_te, y_te, order_te[:n_test], rng),
        "val": _take(X_tr, y_tr, order_tr[:n_val], rng),
        "train": _take(X_tr, y_tr, order_tr[n_val : n_val + n_train], rng),
    }, labels


def _take(X: np.ndarray, y: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` in a random order (so no split is sorted by class)."""
    idx = idx[rng.permutation(len(idx))]
    return X[idx], y[idx]


def _preprocess_tabular(
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Standardise every feature with the training rows' mean and std (population std; a constant feature: 1)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(parts["train"][0].astype(np.float64))
    arrays = {}
    for s, (X, y) in parts.items():
        arrays[f"X_{s}"] = scaler.transform(X.astype(np.float64)).astype(np.float32)
        arrays[f"y_{s}"] = y
    return arrays, {"method": "standardize", "mean": scaler.mean_.tolist(), "std": scaler.scale_.tolist()}


def _preprocess_images(
    parts: dict[str, tuple[np.ndarray, np.ndarray]], scale: float
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Scale pixels to [0, 1] (divide by ``scale``), then normalise by the training pixels' mean and std."""
    X_train = parts["train"][0].astype(np.float64) / scale
    mean, std = float(X_train.mean()), float(X_train.std()) or 1.0
    arrays = {}
    for s, (X, y) in parts.items():
        X = (X.astype(np.float32) / np.float32(scale) - np.float32(mean)) / np.float32(std)
        if X.ndim == 3:  # (n, height, width): one channel
            X = X.reshape(len(X), 1, *X.shape[1:])
        arrays[f"X_{s}"] = X.astype(np.float32, copy=False)
        arrays[f"y_{s}"] = y
    return arrays, {"method": "normalize", "scale": scale, "mean": mean, "std": std}


# ---------------------------------------------------------------------------------------------------------------
# Raw loaders (heavy libraries imported here only)


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


def _unavailable(name: str, where: Path, error: BaseException) -> DatasetUnavailable:
    reason = _reason(error)
    return DatasetUnavailable(
        f"dataset {name!r} is not in {where} and could not be downloaded ({reason}); "
        f"download it on a machine with network access or set {DATA_DIR_ENV} to a directory that holds it"
    )


def _load_digits(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (``data_dir`` unused)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


def _load_torchvision(
    name: str, data_dir: Path
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) as uint8 images (n, 28, 28) and labels, downloading into ``data_dir`` if missing."""
    cls_name = _TORCHVISION_CLASS[name]
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            from torchvision import datasets

            cls = getattr(datasets, cls_name)
            splits = [cls(root=str(data_dir), train=train, download=True) for train in (True, False)]
    except Exception as e:  # torchvision raises RuntimeError, URLError, OSError, ... depending on what failed
        raise _unavailable(name, data_dir / cls_name / "raw", e) from None
    train, test = ((ds.data.numpy(), ds.targets.numpy().astype(np.int64)) for ds in splits)
    return train, test


def _pmlb_cached(name: str, pmlb_dir: Path) -> bool:
    return (pmlb_dir / name / f"{name}.tsv.gz").is_file()


def _load_pmlb(full: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """PMLB ``pmlb:<name>`` as (X float64, y), from ``<data_dir>/pmlb`` or downloaded there."""
    pmlb_dir = data_dir / "pmlb"
    name = full[len(PMLB_PREFIX) :]
    import pmlb  # ~0.8 s; only here

    if not _pmlb_cached(name, pmlb_dir) and name not in pmlb.classification_dataset_names:
        raise ValueError(_unknown_pmlb_message(name, pmlb_dir, pmlb))
    try:
        with warnings.catch_warnings():  # pmlb 1.0.1 calls pandas APIs that pandas 3 deprecates
            warnings.simplefilter("ignore")
            X, y = pmlb.fetch_data(name, return_X_y=True, local_cache_dir=str(pmlb_dir))
    except Exception as e:  # requests.ConnectionError offline, PermissionError read-only, ...
        raise _unavailable(full, pmlb_dir, e) from None
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def _unknown_pmlb_message(name: str, pmlb_dir: Path, pmlb: Any) -> str:
    why = "a regression dataset" if name in pmlb.regression_dataset_names else "not a PMLB classification dataset"
    cached = sorted(p.name for p in pmlb_dir.glob("*") if _pmlb_cached(p.name, pmlb_dir)) if pmlb_dir.is_dir() else []
    known = [n for n in _PMLB_EXAMPLES if n in pmlb.classification_dataset_names]
    examples = ", ".join(cached[:8]) if cached else ", ".join(known) + ", ..."
    return (
        f"unknown dataset {PMLB_PREFIX + name!r}: {why}; valid: pmlb:<name> for one of the "
        f"{len(pmlb.classification_dataset_names)} names in pmlb.classification_dataset_names "
        f"({'cached in ' + str(pmlb_dir) + ': ' if cached else 'e.g. '}{examples})"
    )


register_dataset("digits", _load_digits, kind="image", pixel_max=16.0)
register_dataset("mnist", _load_torchvision, kind="image", requires=("torchvision",))
register_dataset("fashion_mnist", _load_torchvision, kind="image", requires=("torchvision",))
register_dataset(PMLB_PREFIX, _load_pmlb, kind="tabular", requires=("pmlb",),
                 description="a PMLB classification dataset, e.g. pmlb:adult")
