"""``sysprune compare``: the same study under several pruning policies at equal seeds, and what each one spent.

Each (policy, seed) is its own Optuna study in one database, named ``<study>.compare.<policy>.s<seed>``
(:func:`compare_study_name`); running the command again resumes every unfinished one. At a given seed every policy
gets the same sampler seed, the same trial seeds and the same data split, so the first trial is the same
configuration everywhere and later ones differ only through what the pruner did.

What is reported, per policy, as the median and inter-quartile range over seeds (see docs/analysis.md):

* compute = Σ over trials of ``process_cpu_s`` + ``worker_cpu_s``; wall = Σ of trial durations;
* trials complete / pruned by reason / failed, and COMPLETE trials over a budget (work that ran to the end for
  a model that does not fit);
* the best feasible validation objective and the test score of that configuration (:mod:`._testscore`);
* compute-to-target: cumulative compute until the best feasible objective first comes within ``tolerance`` of the
  reference — the best feasible value ``none`` finds at that seed — and the saving against each reference of the
  policy registry: ``none``, the best Optuna built-in at that seed (``median``/``hyperband``, whichever reached it
  with less), ``threshold``, ``plain`` and ``precheck``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from sysprune.spec import SamplerSpec, SpecError, StudySpec
from sysprune.analysis._trials import rows_of
from sysprune._validation import Text, check
from sysprune.pruners import policy_names, validate_policy
from sysprune.spec import PrunerSpec
from sysprune.study._objective import _trial_seed
from sysprune.study._runner import run_study
from sysprune.analysis._trials import load_study
from sysprune.study._dataset import prepare_dataset
from sysprune.analysis._testscore import test_score
from sysprune.models._space import FixedParam
from sysprune.analysis._digest import (
    DEFAULT_TOLERANCE,
    CompareResult,
    digest,
    fill_targets,
)

_LABELS = {"none": "saving vs none", "builtin": "vs best built-in"}


def _label(reference: str) -> str:
    """The policy table's column of the savings against ``reference`` (``vs threshold``)."""
    return _LABELS.get(reference, f"vs {reference}")


#: Parameters a policy gets when the study file configures another one (the file's own policy keeps its table).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"combined": {"members": ["budget", "curve"]}}


def compare_study_name(study: str, policy: str, seed: int) -> str:
    return f"{study}.compare.{policy}.s{seed}"


def parse_policies(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"none,median"`` → ``["none", "median"]``; SpecError (one line) names an unknown or repeated policy."""

    names = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise SpecError(f"--policies: give at least one policy; valid: {', '.join(policy_names())}")
    for n in names:
        check(n, Text(policy_names), "--policies")  # the registry's names: a plugin's policy too
    if len(set(names)) != len(names):
        raise SpecError(f"--policies: each policy once, got {','.join(names)}")
    return names


def policy_spec(
    spec: StudySpec,
    policy: str,
    *,
    sampler: str | None = None,
    n_trials: int | None = None,
    flag: str = "--policies",
) -> StudySpec:
    """The study file's spec under ``policy`` (its own parameters if the file uses that policy, else defaults);
    errors name ``flag``."""

    check(policy, Text(policy_names), flag)
    params = dict(spec.pruner.params) if spec.pruner.policy == policy else dict(DEFAULT_PARAMS.get(policy, {}))
    try:
        policy, params = validate_policy(
            policy, params, steps=spec.steps, budgets=spec.budgets, directions=list(spec.objective.directions)
        )
    except SpecError as e:
        raise e.within(f"{spec.path or spec.name}: {flag} {policy}") from None
    out = replace(spec, pruner=PrunerSpec(policy, params))
    if sampler is not None:
        if sampler not in ("tpe", "random"):
            raise SpecError(f"--sampler: unknown sampler {sampler!r}; valid: tpe, random")
        out = replace(out, sampler=SamplerSpec(sampler, spec.sampler.n_startup_trials))
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise SpecError(f"--n-trials must be an integer >= 1, got {n_trials!r}")
        out = replace(out, n_trials=n_trials)
    return out


def check_comparable(spec: StudySpec) -> None:
    """compare ranks a single objective: SpecError (one line) for a multi-objective study, before anything runs."""
    if spec.objective.is_multi:
        raise SpecError(
            f"{spec.path or spec.name}: compare needs a single-objective study "
            f"(this one has {len(spec.objective.metrics)}: {', '.join(spec.objective.metrics)})"
        )


def seeds_of(spec: StudySpec, k: int) -> list[int]:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SpecError(f"--seeds must be an integer >= 1, got {k!r}")
    return [spec.seed + i for i in range(k)]


def run_compare(
    spec: StudySpec,
    policies: list[str],
    seeds: list[int],
    *,
    storage_url: str,
    sampler: str | None = None,
    n_trials: int | None = None,
    callbacks: Callable[[str], list] | None = None,
    log: Callable[[str], None] = print,
    data_dir: str | None = None,
    cache_dir: str | None = None,
) -> dict[tuple[str, int], str]:
    """Run (or resume) every (policy, seed) study; return their names. Every spec is validated first."""

    check_comparable(spec)
    specs = {p: policy_spec(spec, p, sampler=sampler, n_trials=n_trials) for p in policies}
    names = {}
    for seed in seeds:
        for p in policies:
            name = compare_study_name(spec.name, p, seed)
            names[(p, seed)] = name
            res = run_study(
                specs[p],
                storage_url=storage_url,
                study_name=name,
                seed=seed,
                callbacks=callbacks(name) if callbacks else (),
                data_dir=data_dir,
                cache_dir=cache_dir,
            )
            log(f"  {name}: {res.n_existing + res.n_run} trials ({res.n_run} run now)")
    return names


def collect(
    spec: StudySpec,
    policies: list[str],
    seeds: list[int],
    *,
    storage_url: str,
    tolerance: float | None = DEFAULT_TOLERANCE,
    sampler: str | None = None,
    n_val: int | None = None,
) -> CompareResult:
    """Read every (policy, seed) study from the database and digest it (no test scores yet). ``tolerance=None``
    sets the target's tolerance from the validation noise of the reference on ``n_val`` examples."""

    check_comparable(spec)
    direction = spec.objective.directions[0]
    runs = {}
    for seed in seeds:
        for p in policies:
            name = compare_study_name(spec.name, p, seed)
            runs[(p, seed)] = digest(p, seed, name, rows_of(load_study(storage_url, name)), direction)
    fill_targets(runs, tolerance, direction, n_val=n_val)
    return CompareResult(spec, policies, seeds, tolerance, sampler or spec.sampler.name, storage_url, runs, n_val)


def add_test_scores(
    result: CompareResult,
    cache_file: Path | None = None,
    *,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Retrain each run's best feasible configuration and score the test split (cached in ``cache_file``)."""

    cache: dict[str, Any] = {}
    if cache_file is not None and cache_file.is_file():
        cache = json.loads(cache_file.read_text())
    spec = result.spec
    d = spec.dataset
    for (p, seed), run in sorted(result.runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if run.best is None:
            continue
        params = {**run.best.params, **_fixed(spec)}
        key = json.dumps(
            [
                spec.model,
                d.name,
                d.subsample,
                d.val_fraction,
                d.test_fraction,
                seed,
                spec.steps,
                run.best.number,
                sorted(params.items()),
            ],
            default=str,
        )
        if key not in cache:
            path = prepare_dataset(spec, seed, data_dir=data_dir, cache_dir=cache_dir)
            log(f"  test score: {run.study_name} trial #{run.best.number}")
            cache[key] = test_score(
                model=spec.model,
                params=params,
                dataset_path=str(path),
                seed=_trial_seed(seed, run.best.number),
                steps=spec.steps,
                threads=spec.trial.threads,
            )
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                cache_file.write_text(json.dumps(cache, indent=1))
        run.test = cache[key]


def _fixed(spec: StudySpec) -> dict[str, Any]:

    return {k: p.value for k, p in spec.search_space.items() if isinstance(p, FixedParam)}
