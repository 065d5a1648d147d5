"""``pmlb:<name>``: a PMLB classification dataset via ``pmlb.fetch_data`` (tabular; the ``pmlb`` extra), read
from ``$SYSPRUNE_DATA_DIR/pmlb/<name>/<name>.tsv.gz`` or downloaded there."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sysprune.datasets._registry import register_dataset, unavailable

PMLB_PREFIX = "pmlb:"
_PMLB_EXAMPLES = ("adult", "connect_4", "iris", "letter", "mushroom")


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
        raise unavailable(full, pmlb_dir, e) from None
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


def _check_known(full: str, data_dir: Path) -> None:
    """Offline: refuse a well-formed name that PMLB does not list as a classification dataset (and that is not
    already in the data directory). A no-op when pmlb is not installed (``prepare`` then says what is missing)."""
    try:
        import pmlb  # ~0.8 s; only for pmlb: names
    except ImportError:
        return
    short, pmlb_dir = full[len(PMLB_PREFIX) :], data_dir / "pmlb"
    if not _pmlb_cached(short, pmlb_dir) and short not in pmlb.classification_dataset_names:
        raise ValueError(_unknown_pmlb_message(short, pmlb_dir, pmlb))


register_dataset(
    PMLB_PREFIX,
    _load_pmlb,
    kind="tabular",
    requires=("pmlb",),
    check=_check_known,
    description="a PMLB classification dataset, e.g. pmlb:adult",
)
