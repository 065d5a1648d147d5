"""RQ1's inference on fANOVA importances: a permutation p-value per hyperparameter and a bootstrap interval.

**Per-parameter permutation test**: the parameter's values are permuted across trials (the others and the target
kept), which breaks its link to the target and only its; the importance fANOVA then gives it is its null
distribution, and its p-value is :func:`._inference.permutation_p` — or Besag & Clifford's sequential estimate once
``h`` null importances have reached the real one (a parameter with no effect is settled in a few dozen fits, a
driver gets all ``B``). Permuting the *target* instead (a single "noise floor") puts every parameter against a
null in which nothing else explains the variance, so beside one strong driver no second one could ever clear it.
``B`` is chosen for Holm's correction over the parameters of one model x metric family
(:func:`._inference.permutations_for`). **Bootstrap**: trials resampled with replacement, the percentile interval of
each importance. Every fit is seeded, so the fits run in a pool of processes (``jobs``) and the result does not
depend on how many.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna

from sysprune.analysis._inference import holm, percentile_interval, permutations_for

#: Trees of each fANOVA forest here (Optuna's default is 64): the real fit and the null fits use the same number,
#: so the test is valid whatever it is; 16 keeps a family's few hundred fits within a minute on 2 cores.
TREES = 16
BOOTSTRAPS = 100
#: Besag & Clifford's h: a parameter's permutations stop once this many null importances reach the real one.
SEQUENTIAL_H = 10
#: Permutations per parameter: enough for Holm at 1.5x the margin (:func:`permutations_for`).
MARGIN = 1.5


def fanova(
    trials: list[optuna.trial.FrozenTrial], values: list[float], seed: int, trees: int = TREES
) -> dict[str, float]:
    """fANOVA importance (not normalised: the share of the target's variance a parameter explains alone) of each
    parameter over ``trials`` with ``values`` as their objective, on a throw-away in-memory study."""
    import warnings

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for t, v in zip(trials, values):
        study.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=v))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            imp = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=trees, seed=seed),
                normalize=False,
            )
        except (ValueError, RuntimeError):  # e.g. no parameter varies across these trials
            return {}
    return {k: float(v) for k, v in imp.items()}


@dataclass
class Inference:
    """Importances of one target with their inference."""

    n: int
    importance: dict[str, float]
    p: dict[str, float] = field(default_factory=dict)
    p_holm: dict[str, float] = field(default_factory=dict)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    permutations: int = 0
    bootstraps: int = 0

    def drivers(self, alpha: float = 0.05) -> list[str]:
        """The parameters whose Holm-adjusted p is below ``alpha``, most important first."""
        found = [k for k, p in self.p_holm.items() if p < alpha]
        return sorted(found, key=lambda k: -self.importance.get(k, 0.0))


_JOB: dict[str, Any] = {}


def sequential_p(exceed: Iterable[bool], limit: int, h: int = SEQUENTIAL_H) -> tuple[float, int]:
    """Besag & Clifford (1991): the p-value from null draws taken one at a time (``exceed``: whether each reached
    the real statistic), stopping at the ``h``-th exceedance (``h / l`` after ``l`` draws) or after ``limit``
    draws (Phipson & Smyth's (k + 1) / (n + 1)); and the number of draws used."""
    k = n = 0
    for e in exceed:
        if n >= limit:
            break
        n += 1
        k += bool(e)
        if k >= h:
            return h / n, n
    return (k + 1) / (n + 1), n


def _column_test(task: tuple[str, int]) -> tuple[str, float, int]:
    """One parameter's sequential permutation test (in a pool worker; the data come from ``_JOB``)."""
    name, limit = task
    trials, values, seed, real = _JOB["trials"], _JOB["values"], _JOB["seed"], _JOB["real"][name]
    rng = random.Random(f"{seed}/{name}")
    column = [t.params[name] for t in trials]

    def draws() -> Iterator[bool]:
        for i in itertools.count(1):
            perm = list(column)
            rng.shuffle(perm)
            shuffled = [
                optuna.trial.create_trial(params={**t.params, name: v}, distributions=t.distributions, value=0.0)
                for t, v in zip(trials, perm)
            ]
            yield fanova(shuffled, values, seed + i).get(name, 0.0) >= real

    p, used = sequential_p(draws(), limit)
    return name, p, used


def _bootstrap(i: int) -> dict[str, float]:
    trials, values, seed = _JOB["trials"], _JOB["values"], _JOB["seed"]
    rng = random.Random(f"{seed}/boot/{i}")
    idx = [rng.randrange(len(trials)) for _ in trials]
    return fanova([trials[j] for j in idx], [values[j] for j in idx], seed + 1 + i)


def _pool_map(fn: Any, tasks: list[Any], jobs: int) -> list[Any]:
    if jobs == 1 or len(tasks) < 2:
        return [fn(t) for t in tasks]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(fn, tasks))


def infer(
    trials: list[optuna.trial.FrozenTrial],
    values: list[float],
    *,
    permutations: int | None = None,
    bootstraps: int = BOOTSTRAPS,
    seed: int = 0,
    jobs: int | None = None,
) -> Inference:
    """fANOVA importance of each parameter for ``values`` over ``trials``, with a per-parameter permutation p-value
    (Holm over the parameters; up to ``permutations`` fits each, ``None``: :func:`permutations_for` their number)
    and bootstrap intervals."""
    real = fanova(trials, values, seed)
    params = sorted(real)
    if not params:
        return Inference(len(trials), {})
    b = permutations_for(len(params), margin=MARGIN) if permutations is None else permutations
    jobs = max(1, jobs or os.cpu_count() or 1)
    _JOB.update(trials=trials, values=values, seed=seed, real=real)
    try:
        tests = _pool_map(_column_test, [(k, b) for k in params], min(jobs, len(params))) if b else []
        boots = _pool_map(_bootstrap, list(range(bootstraps)), jobs)
    finally:
        _JOB.clear()
    out = Inference(len(trials), real, permutations=b, bootstraps=bootstraps)
    if tests:
        out.p = {k: p for k, p, _ in tests}
        adjusted = holm([out.p[k] for k in params])
        out.p_holm = {k: float(a) for k, a in zip(params, adjusted) if a is not None}
    for k in params:
        ci = percentile_interval([d.get(k, 0.0) for d in boots])
        if ci is not None:
            out.ci[k] = ci
    return out


def spearman(a: dict[int, float], b: dict[int, float]) -> float | None:
    """Spearman's rho between two targets over the trials both have (``None``: fewer than 3, or one constant)."""
    from scipy.stats import spearmanr

    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return None
    x, y = [a[k] for k in common], [b[k] for k in common]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    rho = float(spearmanr(x, y).statistic)
    return None if math.isnan(rho) else rho
