"""A study's dataset, prepared for one seed: the split and preprocessing of its file's ``[dataset]``, cached."""

from __future__ import annotations

from pathlib import Path

from sysprune._signals import interruptible
from sysprune.datasets import prepare
from sysprune.spec import StudySpec


@interruptible  # no storage call: a Ctrl-C while a dataset is prepared stops at once (it writes to a temporary folder)
def prepare_dataset(spec: StudySpec, seed: int, *, data_dir: str | None = None, cache_dir: str | None = None) -> Path:
    """The prepared arrays of ``spec``'s dataset split with ``seed`` (made once, then read from the cache):
    what the workers train on, what ``compare`` retrains on for a test score, what ``make results`` sizes."""
    d = spec.dataset
    return prepare(
        d.name,
        seed=seed,
        subsample=d.subsample,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        data_dir=data_dir,
        cache_dir=cache_dir,
    )
