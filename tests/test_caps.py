"""Hard caps that hold: ``max_rss_mb`` (on the peak, VmHWM) and ``max_wall_s`` (the trial's whole wall time) are
checked on every sample the parent takes and at the end of the trial, so fast steps, a spike between two samples
or the last step cannot slip past them; a trial that passed a cap is never COMPLETE.

``poll_s`` is set far above the trials' length in the TrialProcess tests: the checks that catch these breaches are
the per-sample and end-of-trial ones, not the parent's poll while it waits."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from sysprune.datasets import prepare
from sysprune.study._runner import run_study
from sysprune.spec import parse_spec
from sysprune.exceptions import CapExceeded
from sysprune.trial._job import TrialJob
from sysprune.trial._process import TrialProcess
from sysprune.trial._forkserver import warm_up

FAULTS = "tests.workloads.faults"
ALLOC = "tests.workloads.alloc"
NO_POLL = 1000.0


@pytest.fixture(scope="module")
def digits_path(tmp_path_factory) -> str:
    warm_up()  # as the runner does: the fork server's own start is not a trial's time
    return str(prepare("digits", seed=0, cache_dir=tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def baseline_mb(digits_path) -> float:
    """The trial process's RSS when it starts (the fork server's image)."""
    job = TrialJob(model=FAULTS, params={"steps": 1}, dataset_path=digits_path, seed=0, steps=1)
    with TrialProcess(job) as tp:
        return tp.baseline_rss_mb


def _faults(path: str, steps: int, **params) -> TrialJob:
    return TrialJob(
        model=FAULTS, params={"steps": steps, **params}, dataset_path=path, seed=0, steps=steps, infer_repeats=3
    )


def _drive(job: TrialJob, **caps) -> tuple[list[int], TrialProcess]:
    seen: list[int] = []
    tp = TrialProcess(job, poll_s=NO_POLL, **caps)
    try:
        for r in tp.steps():
            seen.append(r.step)
            tp.decide(stop=False)
    finally:
        tp.close()
    return seen, tp


def test_fast_steps_cannot_slip_past_the_wall_cap(digits_path):
    # 10 steps of >= 30 ms of CPU each: well over 0.12 s in all, every step shorter than any poll
    job = _faults(digits_path, 10, spin_ms=30)
    with pytest.raises(CapExceeded) as info:
        _drive(job, max_wall_s=0.12)
    e = info.value
    assert e.metric == "wall_s" and e.value > 0.12 and e.cap == 0.12
    assert e.step < 9  # caught at a sample (set-up or a step; the machine's load decides which), before the end


def test_fast_steps_cannot_slip_past_the_memory_cap(digits_path, baseline_mb):
    job = TrialJob(
        model=ALLOC, params={"mb": 150, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path, seed=0, steps=5
    )
    with pytest.raises(CapExceeded) as info:
        _drive(job, max_rss_mb=baseline_mb + 75)
    e = info.value
    assert e.metric == "peak_rss_mb" and e.value > baseline_mb + 75 and e.step == 0  # the step that allocated


def test_a_spike_between_two_samples_counts(digits_path, baseline_mb):
    """200 MiB allocated and freed inside step 1: the RSS at every sample is low, the peak (VmHWM) is not."""
    job = _faults(digits_path, 4, spike_mb=200, spike_at=1)
    rows = {}
    with TrialProcess(job, poll_s=NO_POLL) as tp:  # uncapped: what the samples see
        for r in tp.steps():
            rows[r.step] = r.metrics
            tp.decide(stop=False)
    cap = baseline_mb + 100
    assert rows[1]["rss_mb"] < cap < rows[1]["peak_rss_mb"]  # the spike is gone by the sample, not from the peak
    with pytest.raises(CapExceeded) as info:
        _drive(job, max_rss_mb=cap)
    assert info.value.metric == "peak_rss_mb" and info.value.step == 1


def test_the_end_of_the_trial_is_checked_too(digits_path, baseline_mb):
    """A spike after the last step's sample (in its latency probe) is seen in the child's own final peak."""
    job = _faults(digits_path, 3, probe_spike_mb=200)
    with pytest.raises(CapExceeded) as info:
        seen, tp = _drive(job, max_rss_mb=baseline_mb + 100)
    assert info.value.metric == "peak_rss_mb" and info.value.step == 2
    # every step was sampled within the cap: only the end-of-trial check could catch it


def test_within_its_caps_a_trial_finishes(digits_path, baseline_mb):
    seen, tp = _drive(_faults(digits_path, 3, spin_ms=5), max_rss_mb=baseline_mb + 300, max_wall_s=300.0)
    assert seen == [-1, 0, 1, 2] and tp.finished


def test_caps_are_checked_from_the_start(digits_path):
    """A wall cap shorter than the process start breaches while waiting for the child to be ready."""
    job = _faults(digits_path, 1)
    with pytest.raises(CapExceeded) as info:
        TrialProcess(job, max_wall_s=1e-9, poll_s=1e-6)
    assert info.value.metric == "wall_s" and info.value.step == -1


# ----------------------------------------------------------------------------------------------- end to end


def _spec(**trial):
    return parse_spec(
        {
            "name": "caps",
            "model": "torch_mlp",
            "steps": 40,
            "n_trials": 2,
            "seed": 0,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
            "search_space": {"width": {"type": "int", "low": 16, "high": 64}, "n_layers": 1, "batch_size": 128},
            "trial": {"infer_repeats": 3, "infer_batch_size": 64, **trial},
        }
    )


@pytest.mark.parametrize(
    "cap, attr",
    [({"max_wall_s": 0.12}, "process_wall_s"), ({"max_rss_mb": 100.0}, None)],
    ids=["wall", "rss"],
)
def test_a_digits_study_never_completes_a_trial_past_its_cap(sqlite_url, cache_dir, cap, attr):
    """The issue's reproduction: fast digits steps with a cap they pass used to end COMPLETE (and best). 40 epochs
    take well over 0.12 s even on an idle machine (digits epochs of these small MLPs take a few ms each)."""
    study = run_study(_spec(**cap), storage_url=sqlite_url, cache_dir=str(cache_dir)).study
    for t in study.trials:
        if attr is not None and t.user_attrs[attr] > cap["max_wall_s"]:
            assert t.state == TrialState.PRUNED, (t.number, t.user_attrs[attr])
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [t.state for t in study.trials]
    for t in pruned:
        assert t.user_attrs["prune_detail"]["rule"] == "hard_cap"
        assert max(t.constraints.values()) > 0  # infeasible: never the best trial
    if "max_rss_mb" in cap:  # below the fork-server image: every trial passes it before training
        assert len(pruned) == 2
        assert all(t.user_attrs["prune_detail"]["step"] == -1 for t in pruned)
        assert all(t.intermediate_values == {} for t in pruned)
