"""The trials of ``bench_scale.py``, registered through sysprune's public model API, and their plain-Optuna twins.

Two kinds, each ``steps`` steps of ``step_s`` seconds:

* ``bench_wait``: a step only *waits* (``time.sleep``), so the CPUs are not the limit and throughput measures the
  coordination (claiming trials, sampling, storage writes);
* ``bench_spin``: a step burns ``step_s`` of CPU, so the cores are the limit.

The plain-Optuna twin (:func:`plain_worker`) runs the same steps in-process with ``trial.report`` and
``trial.should_prune`` at each step, the same sampler and pruner, on the same storage: the anchor. A module of its
own so that spawned workers, fork-server trial processes and Ray tasks import it by name.
"""

from __future__ import annotations

import os
import time
from typing import Any

import sysprune

KINDS = ("wait", "spin")


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def _step(kind: str, step_s: float) -> None:
    if kind == "wait":
        time.sleep(step_s)
    else:
        _spin(step_s)


def _value(x: float, step: int) -> float:
    """A learning curve that rises with the step and peaks at x = 0.3 (something for TPE to find)."""
    return (1.0 - (x - 0.3) ** 2) * (1.0 - 0.5 / (step + 1))


class _Bench(sysprune.Trainer):
    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind, self.x, self.step_s = kind, float(params["x"]), float(params["step_s"])
        self.step = 0

    def train_step(self, step: int) -> dict[str, float]:
        _step(self.kind, self.step_s)
        self.step = step
        return {"train_loss": 1.0 - _value(self.x, step)}

    def evaluate(self) -> dict[str, float | None]:
        return {"val_accuracy": _value(self.x, self.step), "val_loss": None}

    def infer(self, X: Any) -> Any:
        return X[:1]

    def size(self) -> dict[str, float]:
        return {"n_params": 1.0, "model_bytes": 8.0}


def _create(kind: str):
    def create(params: dict, data: Any, *, seed: int) -> sysprune.Trainer:
        return _Bench(kind, params)

    create.__name__ = f"create_{kind}"
    create.__qualname__ = f"create_{kind}"
    return create


_CREATE = {kind: _create(kind) for kind in KINDS}
for _kind in KINDS:
    sysprune.register_model(
        f"bench_{_kind}",
        _CREATE[_kind],
        space={"x": sysprune.FloatParam(0.0, 1.0), "step_s": sysprune.FixedParam(0.25)},
    )


def plain_worker(
    url: str, study_name: str, kind: str, steps: int, step_s: float, n_trials: int, seed: int, n_startup: int
) -> tuple[int, float]:
    """One plain-Optuna process: ``n_trials`` trials of the same steps on the same study, TPE seeded ``seed``.
    Returns (trials run, this process's CPU seconds in ``optimize``: ask, the objective's reports, tell)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)

    trained = [0.0]  # CPU seconds of the steps themselves (the spin kind's training), not bookkeeping

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        value = 0.0
        for step in range(steps):
            t = time.thread_time()
            _step(kind, step_s)
            trained[0] += time.thread_time() - t
            value = _value(x, step)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True)
    study = optuna.load_study(study_name=study_name, storage=url, sampler=sampler, pruner=optuna.pruners.NopPruner())
    t0 = time.thread_time()
    study.optimize(objective, n_trials=n_trials, gc_after_trial=False)
    return n_trials, time.thread_time() - t0 - trained[0]


def plain_process(args: tuple, out: Any) -> None:
    """multiprocessing target: :func:`plain_worker`, result put on ``out``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out.put(plain_worker(*args))
