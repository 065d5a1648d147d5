"""Every trial's compute is counted, however it ends: complete, pruned mid-way or at its last step, past a hard cap,
failed by an exception or a dead trial process, lost with its worker (its last stored figures) — and the run's
summary never says "without a measured process" for a trial that ran one.

The issue's finding: a trial pruned at its last step had no ``process_cpu_s`` (its child had already sent its
totals while the parent decided), so comparisons undercounted exactly the trials that cost most.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from sysprune import _attrs
from sysprune.analysis import run_summary
from sysprune.datasets import prepare
from sysprune.spec import parse_spec
from sysprune.storage._step_table import store_for
from sysprune.study._lost import LOST, fail_trial
from sysprune.study._open import make_storage
from sysprune.study._runner import run_study
from sysprune.trial._forkserver import warm_up
from sysprune.trial._job import TrialJob
from sysprune.trial._process import TrialProcess
from tests._optuna import trial_id

pytestmark = pytest.mark.faults

FAULTS = "tests.workloads.faults"
STEPS = 3
SPIN_MS = 150  # CPU per step: what each ending must have counted at least, for the steps it ran
SPIKE_MB = 250


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory) -> float:
    warm_up()
    path = str(prepare("digits", seed=0, cache_dir=tmp_path_factory.mktemp("cache")))
    job = TrialJob(model=FAULTS, params={}, dataset_path=path, seed=0, steps=1, infer_repeats=3)
    with TrialProcess(job) as tp:
        return tp.baseline_rss_mb


def _study(model: str = FAULTS, *, pruner: str = "none", budgets: dict | None = None, trial: dict | None = None, **ps):
    return parse_spec(
        {
            "name": "compute",
            "model": model,
            "steps": STEPS,
            "n_trials": 1,
            "seed": 0,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
            "pruner": {"policy": pruner},
            **({"budgets": budgets} if budgets else {}),
            "search_space": {"spin_ms": SPIN_MS, **ps},
            "trial": {"infer_repeats": 3, **(trial or {})},
        }
    )


# ending -> (the study's spec arguments, the state it ends in, the steps it trained before it ended)
ENDINGS = {
    "complete": (lambda b: {}, TrialState.COMPLETE, STEPS),
    "pruned mid-way": (
        lambda b: {"pruner": "threshold", "budgets": {"peak_rss_delta_mb": 100.0}, "spike_mb": SPIKE_MB, "spike_at": 0},
        TrialState.PRUNED,
        1,
    ),
    "pruned at the last step": (
        lambda b: {
            "pruner": "threshold",
            "budgets": {"peak_rss_delta_mb": 100.0},
            "spike_mb": SPIKE_MB,
            "spike_at": STEPS - 1,
        },
        TrialState.PRUNED,
        STEPS,
    ),
    "memory cap": (
        lambda b: {"trial": {"max_rss_mb": round(b + 100)}, "spike_mb": SPIKE_MB, "spike_at": 1},
        TrialState.PRUNED,
        1,
    ),
    "wall cap": (lambda b: {"trial": {"max_wall_s": 0.3}, "spin_ms": 1000}, TrialState.PRUNED, 0),
    "trial process killed": (lambda b: {"crash": "kill", "crash_at": 1}, TrialState.FAIL, 1),
    "exception": (lambda b: {"model": "tests.workloads.alloc", "fail_at": 1, "mb": 1}, TrialState.FAIL, 1),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_ending_has_its_compute(sqlite_url, cache_dir, baseline_mb, ending):
    args, state, trained = ENDINGS[ending]
    study = run_study(_study(**args(baseline_mb)), storage_url=sqlite_url, cache_dir=str(cache_dir)).study
    (t,) = study.trials
    assert t.state == state, (t.state, t.user_attrs)
    if ending == "pruned at the last step":
        assert t.user_attrs["prune_detail"]["step"] == STEPS - 1
    if ending.endswith("cap"):
        assert t.user_attrs["prune_detail"]["rule"] == "hard_cap"
    cpu, wall = t.user_attrs.get(_attrs.PROCESS_CPU), t.user_attrs.get(_attrs.PROCESS_WALL)
    assert cpu is not None and wall is not None, t.user_attrs
    assert cpu >= 0.9 * trained * SPIN_MS / 1e3  # at least the steps it trained
    if trained < STEPS or state != TrialState.COMPLETE:
        assert cpu > 0 and wall > 0
    summary = run_summary(study)
    assert "without a measured process" not in summary[0], summary


def _running(study: optuna.Study) -> int:
    t = study.ask()
    t.suggest_float("x", 0.0, 1.0)
    return trial_id(t)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_lost_trial_keeps_its_last_stored_compute(sqlite_url):
    """Its worker died before it could write the totals: the last stored step's cumulative figures stand in."""
    storage = make_storage(sqlite_url)
    study = optuna.create_study(storage=storage, study_name="s")
    lost, early = _running(study), _running(study)
    store = store_for(storage)
    for step, cpu, wall in [(-1, 0.5, 0.6), (0, 1.25, 1.5), (1, 2.0, 2.75)]:
        metrics = {"cpu_s": cpu, "wall_s": wall}
        store.write_step(study_name="s", trial_id=lost, trial_number=0, step=step, metrics=metrics)
    assert fail_trial(study, lost, LOST) and fail_trial(study, early, LOST)

    again = optuna.load_study(study_name="s", storage=sqlite_url)
    trials = again.get_trials()
    assert trials[0].user_attrs[_attrs.ERROR] == LOST
    assert trials[0].user_attrs[_attrs.PROCESS_CPU] == 2.0 and trials[0].user_attrs[_attrs.PROCESS_WALL] == 2.75
    # one lost before its first step has none, and the summary says why
    assert trials[1].user_attrs[_attrs.ERROR] == LOST and _attrs.PROCESS_CPU not in trials[1].user_attrs
    assert [t.state for t in trials[2:]] == [TrialState.WAITING] * 2  # both configurations run again
    assert "; 1 without a measured process (none started, or lost before a step)" in run_summary(again)[0]
