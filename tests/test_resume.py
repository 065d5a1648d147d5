"""Sound resume on real SQLite and PostgreSQL: a study's stored identity covers everything that changes the data or
the meaning of a value; a change is refused in one line before anything is written, a safe one (more trials, another
sampler) is accepted and recorded; a study written by the previous version is checked on what it stored."""

from __future__ import annotations

import uuid

import optuna
import pytest
from optuna.trial import TrialState

from sysprune.study._open import HISTORY_ATTR, IDENTITY_ATTR
from sysprune.study._runner import StudyMismatch, run_study
from sysprune.spec import parse_spec

SPACE = {
    "width": {"type": "int", "low": 8, "high": 16},
    "n_layers": 1,
    "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "batch_size": {"type": "categorical", "choices": [64, 128]},
}


def _spec(name: str, **over):
    raw = {
        "name": name,
        "model": "torch_mlp",
        "dataset": "digits",
        "steps": 2,
        "n_trials": 1,
        "seed": 0,
        "sampler": "random",
        "search_space": SPACE,
        "budgets": {"wall_s": 60.0},
        "pruner": "budget",
        "trial": {"infer_repeats": 1, "infer_batch_size": 16},
    }
    raw.update(over)
    return parse_spec(raw)


def _study(url: str, cache_dir) -> object:
    """A study of one finished trial; returns a function running the study again with changes."""
    name = f"resume-{uuid.uuid4().hex[:10]}"

    def again(n_trials=None, seed=None, **over):
        return run_study(_spec(name, **over), storage_url=url, cache_dir=str(cache_dir), n_trials=n_trials, seed=seed)

    first = again()
    assert [t.state for t in first.study.trials] == [TrialState.COMPLETE]
    again.name, again.url = name, url
    return again


@pytest.fixture
def study(rdb_url, cache_dir):
    again = _study(rdb_url, cache_dir)
    yield again
    if rdb_url.startswith("postgresql"):
        optuna.delete_study(study_name=again.name, storage=rdb_url)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def untouched(request, tmp_path_factory):
    """One study per backend shared by the refusal cases (a refusal writes nothing, which each case checks)."""
    import os

    from tests._require import missing

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('resume') / 'study.db'}"
    else:
        url = os.environ.get("SYSPRUNE_TEST_POSTGRES_URL") or missing("SYSPRUNE_TEST_POSTGRES_URL not set")
    again = _study(url, tmp_path_factory.getbasetemp() / "array-cache")
    yield again
    if url.startswith("postgresql"):
        optuna.delete_study(study_name=again.name, storage=url)


def _load(again) -> optuna.Study:
    return optuna.load_study(study_name=again.name, storage=again.url)


CHANGES = {
    "seed in the file": ({"seed": 7}, "seed 0 -> 7"),
    "subsample": ({"dataset": {"name": "digits", "subsample": 500}}, "dataset.subsample null -> 500"),
    "split fraction": ({"dataset": {"name": "digits", "val_fraction": 0.3}}, "dataset.val_fraction 0.2 -> 0.3"),
    "budget": ({"budgets": {"wall_s": 30.0}}, "budgets.wall_s 60.0 -> 30.0"),
    "another budget": ({"budgets": {"wall_s": 60.0, "infer_ms": 1.0}}, "budgets.infer_ms (absent) -> 1.0"),
    "pruner policy": ({"pruner": "none"}, 'pruner.policy "budget" -> "none"'),
    "pruner parameter": ({"pruner": {"policy": "budget", "confidence": 0.9}}, "pruner.params.confidence 0.95 -> 0.9"),
    "categorical choices": (
        {"search_space": {**SPACE, "batch_size": {"type": "categorical", "choices": [64, 256]}}},
        "search_space.batch_size.choices [64, 128] -> [64, 256]",
    ),
    "a range's log": (
        {"search_space": {**SPACE, "lr": {"type": "float", "low": 1e-3, "high": 1e-2}}},
        "search_space.lr.log true -> false",
    ),
    "a range's bounds": (
        {"search_space": {**SPACE, "width": {"type": "int", "low": 8, "high": 32}}},
        "search_space.width.high 16 -> 32",
    ),
    "a fixed value": ({"search_space": {**SPACE, "n_layers": 2}}, "search_space.n_layers.value 1 -> 2"),
    "objective": ({"objective": {"metric": "val_loss"}}, 'objective.metrics ["val_accuracy"] -> ["val_loss"]'),
    "steps": ({"steps": 3}, "steps 2 -> 3"),
    "model": ({"model": "sklearn_sgd", "search_space": {}}, 'model "torch_mlp" -> "sklearn_sgd"'),
    "measurement": ({"trial": {"infer_repeats": 1, "infer_batch_size": 32}}, "trial.infer_batch_size 16 -> 32"),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_a_change_is_refused_in_one_line_and_nothing_is_written(untouched, case):
    study = untouched
    over, expected = CHANGES[case]
    before = _load(study)
    with pytest.raises(StudyMismatch) as e:
        study(**over)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"study {study.name!r} in ") and " was defined differently: " in message
    assert message.endswith("; to start a new study, give another study_name")
    assert expected in message
    after = _load(study)
    assert len(after.trials) == 1 and after.trials[0].state == TrialState.COMPLETE  # no FAIL trial from Optuna
    assert after.user_attrs == before.user_attrs  # no history entry, no identity rewritten


def test_the_seed_argument_is_part_of_the_identity(untouched):
    study = untouched
    with pytest.raises(StudyMismatch, match=r"was defined differently: seed 0 -> 7;"):
        study(seed=7)


def test_more_trials_and_another_sampler_are_accepted_and_recorded(study):
    study(n_trials=1)
    result = run_study(
        _spec(study.name, n_trials=3, sampler={"name": "tpe", "n_startup_trials": 2}), storage_url=study.url
    )
    assert result.n_run == 1 and result.n_existing == 2
    s = _load(study)
    assert len(s.trials) == 3
    history = s.user_attrs[HISTORY_ATTR]
    assert [h["trials_before"] for h in history] == [0, 1, 2]
    assert [h["n_trials_argument"] for h in history] == [None, 1, None]
    assert [h["n_trials"] for h in history] == [1, 1, 3]
    assert history[-1]["sampler"] == {"name": "tpe", "n_startup_trials": 2}
    assert s.user_attrs[IDENTITY_ATTR]["seed"] == 0 and s.user_attrs["seed"] == 0


def _make_legacy(again) -> None:
    """What the previous version stored: an identity of model, dataset, objective and steps only."""
    s = _load(again)
    old = {k: s.user_attrs[IDENTITY_ATTR][k] for k in ("model", "dataset", "objective", "steps")}
    s.set_user_attr(IDENTITY_ATTR, old)


def test_a_study_of_the_previous_version_is_resumed_and_its_identity_completed(study):
    _make_legacy(study)
    # its seed was never stored: the resuming run's seed is accepted, and recorded as such
    result = study(n_trials=1, seed=5)
    assert result.n_run == 1
    s = _load(study)
    assert s.user_attrs[IDENTITY_ATTR]["seed"] == 5 and set(s.user_attrs[IDENTITY_ATTR]) >= {"search_space", "trial"}
    assert s.user_attrs[HISTORY_ATTR][-1]["identity_recorded"] == ["seed", "trial"]
    with pytest.raises(StudyMismatch, match="seed 5 -> 0"):  # from now on the seed is checked
        study(n_trials=1)


@pytest.mark.parametrize("case", ["a range's log", "categorical choices", "budget", "pruner policy"])
def test_a_study_of_the_previous_version_is_still_checked_on_what_it_stored(study, case):
    """Budgets and pruner from its attrs, the search space from its trials: no Optuna traceback, no FAIL trial."""
    _make_legacy(study)
    over, expected = CHANGES[case]
    with pytest.raises(StudyMismatch) as e:
        study(n_trials=1, **over)
    assert expected in str(e.value)
    assert [t.state for t in _load(study).trials] == [TrialState.COMPLETE]
