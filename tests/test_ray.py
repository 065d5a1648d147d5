"""Ray as the executor: sysprune workers as Ray tasks on a local cluster (ray.init(num_cpus=2)), sharing the study's
storage; every trial still runs in its own measured process. Needs the [ray] extra: fails under CI without it."""

from __future__ import annotations

import os
import sys

import optuna
import pytest
from optuna.trial import TrialState

from sysprune import load_step_metrics
from sysprune.study._runner import run_study
from sysprune.spec import parse_spec
from sysprune.study._lost import WORKER_ATTR
from tests._require import missing


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
    except ImportError:
        missing("ray is not installed (pip install 'sysprune[ray]')")
    # The Ray workers import sysprune and the test workloads from this checkout.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _spec():
    return parse_spec(
        {
            "name": "r",
            "model": "torch_mlp",
            "steps": 2,
            "n_trials": 4,
            "seed": 2,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
            "search_space": {
                "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
                "width": 16,
                "n_layers": 1,
                "batch_size": 256,
            },
            "trial": {"infer_repeats": 3, "infer_batch_size": 64},
        }
    )


@pytest.mark.slow
def test_a_small_study_on_a_local_ray_cluster_stores_every_step(ray_cluster, sqlite_url, cache_dir):
    seen = []
    result = run_study(
        _spec(),
        storage_url=sqlite_url,
        cache_dir=str(cache_dir),
        ray_address="",
        workers=2,
        callbacks=[lambda study, trial: seen.append(trial.number)],
    )
    trials = optuna.load_study(study_name="r", storage=sqlite_url).get_trials()
    assert result.n_run == 4
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    df = load_step_metrics(sqlite_url, "r")
    assert sorted(df[["trial_number", "step"]].itertuples(index=False, name=None)) == [
        (n, s)
        for n in range(4)
        for s in range(-1, 2)  # step -1: the pre-training probe
    ]
    assert df[["wall_s", "cpu_s", "peak_rss_mb"]].notna().all().all()
    # structural metrics: at the pre-training probe and the last step (no pruner asked for step 0's)
    assert df.groupby("step").infer_ms.apply(lambda s: s.notna().all()).to_dict() == {-1: True, 0: False, 1: True}
    # the trials ran in Ray worker processes, not here, and the callbacks here saw each of them once
    assert {t.user_attrs[WORKER_ATTR]["pid"] for t in trials}.isdisjoint({os.getpid()})
    assert sorted(seen) == [0, 1, 2, 3]
    assert len({t.params["lr"] for t in trials}) == 4


def test_without_ray_installed_the_error_is_one_line(monkeypatch):
    from sysprune.study._ray import RayUnavailable, _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(
        RayUnavailable,
        match=r"^--ray: ray is not installed; install the extra: "
        r"pip install 'sysprune\[ray\]'$",
    ):
        _import_ray()
