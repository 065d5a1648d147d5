"""Ray at cluster scale on one machine: a head (no CPUs for tasks) and two worker nodes of their own
(``ray.cluster_utils.Cluster``), PostgreSQL storage. A node killed mid-trial loses only its running trial: it is
failed as "worker lost" and its configuration retried, and the study still holds exactly ``n_trials`` trials.
Needs the [ray] extra and the PostgreSQL server of SYSPRUNE_TEST_POSTGRES_URL: fails under CI without them."""

from __future__ import annotations

import os

import optuna
import pytest
from optuna.trial import TrialState

from sysprune import load_step_metrics
from sysprune.spec import parse_spec
from sysprune.study._lost import LOST, WORKER_ATTR
from sysprune.study._runner import run_study
from tests._require import missing
from tests._workers_util import fresh

N_TRIALS = 6
STEPS = 5


@pytest.fixture
def cluster():
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        missing("ray is not installed (pip install 'sysprune[ray]')")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    yield c, nodes
    ray.shutdown()
    c.shutdown()


@pytest.fixture
def pg():
    url = os.environ.get("SYSPRUNE_TEST_POSTGRES_URL")
    if not url:
        missing("SYSPRUNE_TEST_POSTGRES_URL not set (tools/start-postgres.sh starts a server)")
    url, drop = fresh(url)
    yield url
    drop()


def _spec():
    return parse_spec(
        {
            "name": "rc",
            "model": "tests.workloads.alloc",
            "steps": STEPS,
            "n_trials": N_TRIALS,
            "seed": 3,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
            "search_space": {"spin_ms": {"type": "float", "low": 150.0, "high": 200.0}, "mb": 1},
        }
    )


def _raylet_pid(pid: int) -> int | None:
    """The raylet a Ray worker process was started by (its nearest ancestor named raylet)."""
    import psutil

    try:
        for parent in psutil.Process(pid).parents():
            if "raylet" in parent.name():
                return parent.pid
    except psutil.NoSuchProcess:
        return None
    return None


@pytest.mark.slow
def test_a_node_killed_mid_trial_loses_only_its_trial_which_is_retried(cluster, pg, cache_dir):
    c, nodes = cluster
    killed: list[int] = []  # the pid of the worker on the node removed (it runs one trial after another)

    def kill_a_node(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if killed:
            return
        by_raylet = {n.all_processes["raylet"][0].process.pid: n for n in nodes}
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            node = by_raylet.get(_raylet_pid(t.user_attrs[WORKER_ATTR]["pid"]))
            if node is not None:
                killed.append(t.user_attrs[WORKER_ATTR]["pid"])
                c.remove_node(node, allow_graceful=False)
                return

    run_study(
        _spec(), storage_url=pg, cache_dir=str(cache_dir), ray_address=c.address, workers=2, callbacks=[kill_a_node]
    )
    assert killed, "no trial was running on a worker node when the first trial finished"
    trials = optuna.load_study(study_name="rc", storage=pg).get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == N_TRIALS  # exact: the lost trial was retried, nothing more
    lost = [t for t in trials if t.state != TrialState.COMPLETE]
    # one trial lost: the one that worker was running when its node went (the trial seen running, or the next one
    # it claimed if it finished that one between the look and the removal)
    assert len(lost) == 1 and lost[0].user_attrs["error"] == LOST, [(t.number, t.user_attrs) for t in lost]
    assert lost[0].user_attrs[WORKER_ATTR]["pid"] == killed[0]
    assert any(t.params == lost[0].params for t in done)  # its configuration ran again
    pids = {t.user_attrs[WORKER_ATTR]["pid"] for t in done}
    assert len(pids) >= 2  # the trials spread over both nodes' workers (and the retried task)
    df = load_step_metrics(pg, "rc")
    numbers = sorted(t.number for t in done)
    rows = df[df.trial_number.isin(numbers)][["trial_number", "step"]].itertuples(index=False, name=None)
    assert sorted(rows) == [(n, s) for n in numbers for s in range(-1, STEPS)]  # every step row of each trial
