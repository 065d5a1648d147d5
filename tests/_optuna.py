"""What the tests need from Optuna that Optuna keeps private, through public seams only.

Optuna has no public trial id or storage handle, yet sysprune's step table (``MetricStore.write_step(trial_id=...)``)
and optuna-dashboard's keys are addressed by them. The tests get them here, from :mod:`sysprune._compat` (the one
place sysprune touches Optuna's private names, each checked by ``tests/test_compat.py``) or from the public
``BaseStorage`` API, never from the private attributes themselves (a trial's ``_trial_id``, a study's ``_storage``
or ``_study_id``): an Optuna upgrade that renames one then fails ``tests/test_compat.py`` by name instead of dozens of
tests. ``tests/test_architecture.py`` keeps it that way. A test that built its storage itself should keep and use that object instead.
"""

from __future__ import annotations

from typing import Any

import optuna

from sysprune import _compat


def trial_id(trial: optuna.trial.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (unique in the storage; ``number`` is unique in its study only)."""
    return _compat.trial_id(trial)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage object the study reads and writes (for a URL, Optuna's caching wrapper around an RDBStorage)."""
    return _compat.study_storage(study)


def study_id(study: optuna.Study) -> int:
    """The storage's id of a study, asked of the storage by the study's name (public ``BaseStorage`` API)."""
    return storage_of(study).get_study_id_from_name(study.study_name)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's system attributes, where optuna-dashboard keeps notes, figures and artifact records."""
    storage = storage_of(study)
    return storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name))
