"""Datasets: a registry of sources (``_registry``), one module per built-in family that registers itself exactly
as a dataset of one's own does (``sklearn_digits``, ``torchvision_mnist``, ``pmlb_sets``), and the shared
preparation: subsample, stratified split, preprocessing and the memory-mapped array cache (``_prepare``).
"""

from sysprune.datasets._prepare import FORMAT_VERSION, load, open_prepared, prepare, read_meta, stratified_order
from sysprune.datasets._registry import (
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    Dataset,
    DatasetSource,
    check_dataset_known,
    check_dataset_name,
    dataset_kind,
    dataset_names,
    get_source,
    register_dataset,
    resolve_cache_dir,
    resolve_data_dir,
)

# The built-in families register themselves on import (after the registry exists).
from sysprune.datasets import pmlb_sets, sklearn_digits, torchvision_mnist  # noqa: E402, F401  isort: skip

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "FORMAT_VERSION",
    "Dataset",
    "DatasetSource",
    "check_dataset_known",
    "check_dataset_name",
    "dataset_kind",
    "dataset_names",
    "get_source",
    "load",
    "open_prepared",
    "prepare",
    "read_meta",
    "register_dataset",
    "resolve_cache_dir",
    "resolve_data_dir",
    "stratified_order",
]
