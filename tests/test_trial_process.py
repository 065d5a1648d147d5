"""The trial process: per-trial measurements from outside, the step protocol, caps and failures."""

from __future__ import annotations

import pytest

from sysprune._data import prepare
from sysprune._trial_process import CapExceeded, TrialJob, TrialProcess, TrialProcessError

ALLOC = "tests.workloads.alloc"


@pytest.fixture(scope="module")
def digits_path(tmp_path_factory) -> str:
    return str(prepare("digits", seed=0, cache_dir=tmp_path_factory.mktemp("cache")))


def _run(path: str, steps: int = 3, **params) -> list[dict]:
    p = {"mb": 10, "spin_ms": 20, "fail_at": -1, **params}
    job = TrialJob(model=ALLOC, params=p, dataset_path=path, seed=0, steps=steps, infer_repeats=3)
    rows = []
    with TrialProcess(job) as tp:
        for r in tp.steps():
            rows.append(r.metrics)
            tp.decide(stop=False)
        assert tp.finished
    return rows


def test_every_step_has_a_full_row(digits_path):
    rows = _run(digits_path, steps=3)
    assert len(rows) == 3
    for row in rows:
        for name in ("val_accuracy", "train_loss", "wall_s", "cpu_s", "rss_mb", "peak_rss_mb",
                     "peak_rss_delta_mb", "infer_ms", "n_params", "model_bytes"):  # fmt: skip
            assert isinstance(row[name], float), name
        # No GPU and no energy counter here: missing, never zero.
        assert row["gpu_mem_mb"] is None
        assert row["val_loss"] is None


def test_cumulative_metrics_are_monotone_and_track_work(digits_path):
    rows = _run(digits_path, steps=4, spin_ms=100)
    cpu = [r["cpu_s"] for r in rows]
    wall = [r["wall_s"] for r in rows]
    assert cpu == sorted(cpu) and wall == sorted(wall)
    # each step burns >= 100 ms of CPU in the child; the parent's measurement sees it
    steps = [b - a for a, b in zip(cpu, cpu[1:])]
    assert all(0.09 <= d <= 0.5 for d in steps), steps
    assert cpu[0] >= 0.09


def test_peak_memory_is_per_trial_not_per_worker(digits_path):
    big = _run(digits_path, steps=2, mb=300, spin_ms=1)
    small = _run(digits_path, steps=2, mb=30, spin_ms=1)  # after the big one, in the same worker
    big_delta = big[-1]["peak_rss_delta_mb"]
    small_delta = small[-1]["peak_rss_delta_mb"]
    assert 290 <= big_delta <= 400, big_delta
    assert 25 <= small_delta <= 120, small_delta
    assert big[-1]["peak_rss_mb"] - small[-1]["peak_rss_mb"] > 200
    for rows in (big, small):
        assert rows[-1]["peak_rss_mb"] >= rows[-1]["rss_mb"]


def test_stop_ends_the_child_after_the_current_step(digits_path):
    job = TrialJob(model=ALLOC, params={"mb": 1, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path,
                   seed=0, steps=10)  # fmt: skip
    seen = []
    with TrialProcess(job) as tp:
        for r in tp.steps():
            seen.append(r.step)
            tp.decide(stop=r.step == 1)
        assert tp.finished
    assert seen == [0, 1]


def test_training_error_is_reported_with_its_message(digits_path):
    with pytest.raises(TrialProcessError, match="RuntimeError: planned failure at step 1"):
        _run(digits_path, steps=3, fail_at=1)


def test_memory_cap_kills_the_trial(digits_path):
    job = TrialJob(model=ALLOC, params={"mb": 400, "spin_ms": 300, "fail_at": -1}, dataset_path=digits_path,
                   seed=0, steps=3)  # fmt: skip
    with TrialProcess(job) as probe:  # the fork server's image is the baseline
        base = probe.baseline_rss_mb
    with pytest.raises(CapExceeded) as info:
        with TrialProcess(job, max_rss_mb=base + 150) as tp:
            for _ in tp.steps():
                tp.decide(stop=False)
    assert info.value.metric == "rss_mb" and info.value.value > base + 150
    assert not tp._proc.is_alive()


def test_caps_are_checked_from_the_start(digits_path):
    """A wall cap shorter than the process start breaches while waiting for the child to be ready."""
    job = TrialJob(model=ALLOC, params={"mb": 1, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path,
                   seed=0, steps=1)  # fmt: skip
    with pytest.raises(CapExceeded) as info:
        TrialProcess(job, max_wall_s=1e-9, poll_s=1e-6)
    assert info.value.metric == "wall_s" and info.value.step == 0
