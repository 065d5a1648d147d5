"""Preparing a dataset once: subsample, stratified split, preprocessing, and the memory-mapped array cache."""

from __future__ import annotations

import hashlib
import re
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sysprune.datasets._registry import (
    CACHE_DIR_ENV,
    Dataset,
    DatasetSource,
    get_source,
    resolve_cache_dir,
    resolve_data_dir,
)

#: Bump when the prepared layout or the preprocessing changes: old cache folders are then simply not found.
FORMAT_VERSION = 1
_SPLITS = ("train", "val", "test")


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
        raise OSError(
            f"cannot write prepared arrays under {root} ({e.strerror or e}); set {CACHE_DIR_ENV} "
            "to a writable directory"
        ) from None
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


def _build(source: DatasetSource, key: dict[str, Any], data_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
        raise ValueError(
            f"dataset {name!r}: its loader returned X of shape {shape_X} and y of shape {shape_y}; "
            f"expected X {expected} and y (n,)"
        )


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
