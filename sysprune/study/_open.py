"""Opening a study to run it: created, or loaded and checked against its stored identity; the sampler; the run history."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sysprune import _attrs
from sysprune._attrs import HISTORY_ATTR, IDENTITY_ATTR
from sysprune.exceptions import StudyMismatch
from sysprune.metrics._monitor import energy_available
from sysprune.pruners import build_pruner
from sysprune.spec import StudySpec, describe_diff, identity_diff, study_identity
from sysprune.storage._open import mask_url
from sysprune.storage._open import open_storage as make_storage


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    s = spec.sampler
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.name == "nsgaii":
        # Population = the random first generation. Optuna's default (50) keeps a study of a few dozen trials
        # random throughout, the more so as budget-pruned (PRUNED) trials do not fill a generation; see
        # docs/pruners.md, "How the sampler learns where the budget breaks".
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, s.n_startup_trials))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True)


def _sampler_seed(seed: int, n_existing: int) -> int:
    """A resumed study must not replay the random start-up draws of its first run: mix in its size."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{n_existing}".encode()).digest()[:4], "little")


def open_study(
    spec: StudySpec, storage_url: str, study_name: str, seed: int, *, n_trials: int | None = None
) -> tuple[optuna.Study, int]:
    """Create the study, or load it to resume. A stored study must have been defined the same way (see
    :func:`sysprune.spec.study_identity`), else :class:`StudyMismatch` before anything is written; what is safe
    to change (``n_trials``, an explicit ``n_trials`` argument, the sampler) is recorded in the run history."""

    storage = make_storage(storage_url)
    identity = study_identity(spec, seed)
    existing = None
    try:
        existing = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        pass
    # Enqueued (WAITING) trials are still to run: they count toward this run, not toward what exists.
    n_existing = (
        sum(t.state != optuna.trial.TrialState.WAITING for t in existing.get_trials(deepcopy=False))
        if existing is not None
        else 0
    )
    unverified: list[str] = []
    if existing is not None:
        stored = stored_identity(existing)
        diffs = identity_diff(stored, identity)
        if diffs:
            raise StudyMismatch(study_name, mask_url(storage_url), diffs, describe_diff(diffs))
        unverified = [k for k in identity if k not in stored and k != "version"]
    directions: list[Literal["minimize", "maximize"]] = [
        "maximize" if d == "maximize" else "minimize" for d in spec.objective.directions
    ]
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=directions,
        sampler=make_sampler(spec, _sampler_seed(seed, n_existing)),
        pruner=build_pruner(spec.pruner.policy, spec.pruner.params, budgets=spec.budgets, steps=spec.steps),
        load_if_exists=True,
    )
    if existing is None or IDENTITY_ATTR not in existing.user_attrs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.objective.metrics))
        study.set_user_attr(_attrs.STUDY_MACHINE, machine_info())
    if existing is None or unverified:
        # A new study, or one written before these fields were stored (or by plain Optuna): the full identity
        # now, so that later runs are checked on every field; what could not be checked is named in the history.
        study.set_user_attr(IDENTITY_ATTR, identity)
        study.set_user_attr(_attrs.STUDY_BUDGETS, dict(spec.budgets))
        study.set_user_attr(_attrs.STUDY_PRUNER, {"policy": spec.pruner.policy, **spec.pruner.params})
        study.set_user_attr(_attrs.STUDY_MODEL, spec.model)
        study.set_user_attr(_attrs.STUDY_DATASET, spec.dataset.name)
        study.set_user_attr(_attrs.STUDY_STEPS, spec.steps)
        study.set_user_attr(_attrs.STUDY_SEED, seed)
    history = list(study.user_attrs.get(HISTORY_ATTR, []))
    entry: dict[str, Any] = {
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "trials_before": n_existing,
        "n_trials": spec.n_trials,
        "n_trials_argument": n_trials,
        "sampler": {"name": spec.sampler.name, "n_startup_trials": spec.sampler.n_startup_trials},
    }
    if existing is not None and unverified:
        entry["identity_recorded"] = unverified  # not stored by the version that created the study
    study.set_user_attr(HISTORY_ATTR, [*history, entry])
    return study, n_existing


def load_opened_study(spec: StudySpec, storage_url: str, study_name: str) -> optuna.Study:
    """A study its launcher has just opened with :func:`open_study` (created or checked against ``spec``, its
    lost trials recovered), loaded for one of the launch's workers without writing anything: N workers opening
    it again under the database lock, one after another, each adding a run to its history, delayed every start.
    The worker samples with its own sampler; the one given here is never asked."""
    return optuna.load_study(
        study_name=study_name,
        storage=make_storage(storage_url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=build_pruner(spec.pruner.policy, spec.pruner.params, budgets=spec.budgets, steps=spec.steps),
    )


def stored_identity(study: optuna.Study) -> dict[str, Any]:
    """The identity a study was stored with. A study written by the previous version stored only model, dataset,
    objective and steps: its budgets and pruner come from its ``budgets``/``pruner`` attrs and its search space
    from its trials (so a changed space is refused before Optuna sees it); its seed and trial settings were never
    stored and are taken from the run that resumes it. A study made by plain Optuna has only what its trials say."""
    attrs = study.user_attrs
    stored = dict(attrs.get(IDENTITY_ATTR) or {})
    budgets, pruner = attrs.get(_attrs.STUDY_BUDGETS), attrs.get(_attrs.STUDY_PRUNER)
    if "budgets" not in stored and isinstance(budgets, dict):
        stored["budgets"] = budgets
    if "pruner" not in stored and isinstance(pruner, dict) and "policy" in pruner:
        params = dict(pruner)
        stored["pruner"] = {"policy": params.pop("policy"), "params": params}
    if "search_space" not in stored:
        space = _space_of_trials(study.get_trials(deepcopy=False))
        if space:
            stored["search_space"] = space
    return stored


def _space_of_trials(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """The search space (as :func:`sysprune.spec.param_identity` spells it) of the first trial that sampled
    parameters: each distribution, plus the parameters fixed in its user attrs."""
    for t in trials:
        if not t.distributions:
            continue
        space: dict[str, Any] = {}
        for name, d in t.distributions.items():
            if isinstance(d, FloatDistribution):
                space[name] = {"type": "float", "low": d.low, "high": d.high, "log": d.log, "step": d.step}
            elif isinstance(d, IntDistribution):
                space[name] = {"type": "int", "low": d.low, "high": d.high, "log": d.log, "step": d.step}
            elif isinstance(d, CategoricalDistribution):
                space[name] = {"type": "categorical", "choices": list(d.choices)}
        for key, value in t.user_attrs.items():
            if key.startswith(_attrs.FIXED_PREFIX):
                space[key[len(_attrs.FIXED_PREFIX) :]] = {"type": "fixed", "value": value}
        return space
    return {}


def machine_info() -> dict[str, Any]:

    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "energy_counter": energy_available(),
    }
