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
  reference — the best feasible value ``none`` finds at that seed — and the saving against ``none``, the best
  Optuna built-in at that seed (``median``/``hyperband``, whichever reached it with less) and ``threshold``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from sysprune.spec import SamplerSpec, SpecError, StudySpec
from sysprune.metrics._format import fmt_budgets, records_table
from sysprune.storage._open import mask_url
from sysprune.analysis import _stats
from sysprune.analysis._trials import rows_of
from sysprune.pruners import policy_names, validate_policy
from sysprune.spec import PrunerSpec
from sysprune.study._objective import _trial_seed
from sysprune.study._runner import run_study
from sysprune.analysis._trials import load_study
from sysprune.study._dataset import prepare_dataset
from sysprune.analysis._testscore import test_score
from sysprune.models._space import FixedParam
from sysprune.analysis import _figures
from sysprune.analysis._digest import (
    CEILING_OF,
    DEFAULT_TOLERANCE,
    REFERENCES,
    CompareResult,
    RunStats,
    digest,
    fill_targets,
)

_LABELS = {
    "none": "saving vs none",
    "builtin": "vs best built-in",
    "threshold": "vs threshold",
    "plain": "vs plain",
    "precheck": "vs precheck",
}
#: Parameters a policy gets when the study file configures another one (the file's own policy keeps its table).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"combined": {"members": ["budget", "median"]}}


def compare_study_name(study: str, policy: str, seed: int) -> str:
    return f"{study}.compare.{policy}.s{seed}"


def parse_policies(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"none,median"`` → ``["none", "median"]``; SpecError (one line) names an unknown or repeated policy."""

    names = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise SpecError(f"--policies: give at least one policy; valid: {', '.join(policy_names())}")
    for n in names:
        if n not in policy_names():
            raise SpecError(f"--policies: unknown policy {n!r}; valid: {', '.join(policy_names())}")
    if len(set(names)) != len(names):
        raise SpecError(f"--policies: each policy once, got {','.join(names)}")
    return names


def policy_spec(spec: StudySpec, policy: str, *, sampler: str | None = None, n_trials: int | None = None) -> StudySpec:
    """The study file's spec under ``policy`` (its own parameters if the file uses that policy, else defaults)."""

    params = dict(spec.pruner.params) if spec.pruner.policy == policy else dict(DEFAULT_PARAMS.get(policy, {}))
    try:
        policy, params = validate_policy(
            policy, params, steps=spec.steps, budgets=spec.budgets, directions=list(spec.objective.directions)
        )
    except ValueError as e:
        raise SpecError(f"{spec.path or spec.name}: --policies {policy}: {e}") from None
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
    tolerance: float = DEFAULT_TOLERANCE,
    sampler: str | None = None,
) -> CompareResult:
    """Read every (policy, seed) study from the database and digest it (no test scores yet)."""

    check_comparable(spec)
    direction = spec.objective.directions[0]
    runs = {}
    for seed in seeds:
        for p in policies:
            name = compare_study_name(spec.name, p, seed)
            runs[(p, seed)] = digest(p, seed, name, rows_of(load_study(storage_url, name)), direction)
    fill_targets(runs, tolerance, direction)
    return CompareResult(spec, policies, seeds, tolerance, sampler or spec.sampler.name, storage_url, runs)


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


# ------------------------------------------------------------------------------------------------------ output


def policy_table(result: CompareResult) -> list[dict[str, str]]:
    """One row per policy: median [IQR] over seeds of every reported quantity, as display strings."""
    rows = []
    test_key = "test_" + result.spec.objective.metrics[0].removeprefix("val_")
    for p in result.policies:
        runs = [result.runs[(p, s)] for s in result.seeds]
        reasons = sorted({k for r in runs for k in r.pruned})
        pruned = _stats.spread([r.n_pruned for r in runs]).fmt()
        if reasons:
            pruned += (
                " ("
                + ", ".join(f"{k} {_stats.spread([r.pruned.get(k, 0) for r in runs]).fmt()}" for k in reasons)
                + ")"
            )
        # Seeds without a reference (none found nothing feasible) have no target; "not reached" ranks last.
        ctt = [(r.ctt if r.ctt is not None else math.inf) for r in runs if r.reference is not None]
        row = {
            "policy": p,
            "compute (CPU s)": _stats.spread([r.compute for r in runs]).fmt(),
            "wall (s)": _stats.spread([r.wall for r in runs]).fmt(),
            "complete": _stats.spread([r.n_complete for r in runs]).fmt(),
            "pruned (by reason)": pruned,
            "failed": _stats.spread([r.n_failed for r in runs]).fmt(),
            "over budget, run to the end": _stats.spread([r.over_budget_complete for r in runs]).fmt(),
            "best feasible (val)": _stats.spread([r.best.value if r.best else None for r in runs]).fmt(4)
            + _missing(runs, lambda r: r.best is None, "none feasible"),
            "test score of it": _stats.spread([(r.test or {}).get(test_key) for r in runs]).fmt(4),
            "compute-to-target (CPU s)": _stats.spread(ctt).fmt()
            + _missing(runs, lambda r: r.reference is not None and r.ctt is None, _stats.NOT_REACHED)
            + _missing(runs, lambda r: r.reference is None, "no target (none found nothing feasible)"),
        }
        for key in REFERENCES:
            if any(key in r.savings for r in runs):
                row[_LABELS[key]] = _stats.summarise_savings([r.savings.get(key, _stats.NA) for r in runs]).fmt()
        rows.append(row)
        if p in CEILING_OF:
            rows.append(ceiling_row(result, p))
    return rows


def ceiling_label(policy: str = "none") -> str:
    """The policy-table row of :func:`ceiling_row`."""
    return f"ceiling: {policy}'s over-budget trials free"


#: The policy-table row of ``none``'s ceiling.
CEILING = ceiling_label("none")


def ceiling_savings(result: CompareResult, policy: str = "none") -> list[float | str]:
    """Per seed: ``policy``'s compute-to-target over the same with its over-budget trials free — the most any
    pruning of over-budget configurations could save against ``policy`` on its own trials."""
    out: list[float | str] = []
    for s in result.seeds:
        run = result.runs.get((policy, s))
        out.append(_stats.NA if run is None else _stats.saving(run.ctt, run.ceiling_ctt))
    return out


def ceiling_row(result: CompareResult, policy: str = "none") -> dict[str, str]:
    """A reference row under ``policy``: what a free, perfect pre-check would need on ``policy``'s own trials."""
    runs = [result.runs[(policy, s)] for s in result.seeds]
    ctt = [r.ceiling_ctt for r in runs if r.reference is not None]
    return {
        "policy": ceiling_label(policy),
        "compute-to-target (CPU s)": _stats.spread(ctt).fmt(),
        _LABELS[policy]: _stats.summarise_savings(ceiling_savings(result, policy)).fmt(),
    }


def _missing(runs: list[RunStats], pred: Callable[[RunStats], bool], what: str) -> str:
    n = sum(pred(r) for r in runs)
    return f"; {what} in {n}/{len(runs)} seeds" if n else ""


def write_csv(result: CompareResult, path: Path) -> None:
    """One row per (policy, seed) with the raw numbers (empty = not measured / not reached)."""
    test_key = "test_" + result.spec.objective.metrics[0].removeprefix("val_")
    reasons = sorted({k for r in result.runs.values() for k in r.pruned})
    fields = [
        "policy",
        "seed",
        "study_name",
        "compute_cpu_s",
        "process_cpu_s",
        "worker_cpu_s",
        "wall_s",
        "n_trials",
        "complete",
        "pruned",
        *[f"pruned_{k}" for k in reasons],
        "failed",
        "over_budget_complete",
        "unmeasured_trials",
        "best_number",
        "best_val",
        test_key,
        "compute_to_target_cpu_s",
        *[f"saving_vs_{k}" for k in REFERENCES],
        "ceiling_compute_to_target_cpu_s",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for (p, s), r in sorted(result.runs.items(), key=lambda kv: (result.policies.index(kv[0][0]), kv[0][1])):
            w.writerow(
                {
                    "policy": p,
                    "seed": s,
                    "study_name": r.study_name,
                    "compute_cpu_s": round(r.compute, 4),
                    "process_cpu_s": round(r.process_cpu, 4),
                    "worker_cpu_s": round(r.worker_cpu, 4),
                    "wall_s": round(r.wall, 3),
                    "n_trials": len(r.rows),
                    "complete": r.n_complete,
                    "pruned": r.n_pruned,
                    **{f"pruned_{k}": r.pruned.get(k, 0) for k in reasons},
                    "failed": r.n_failed,
                    "over_budget_complete": r.over_budget_complete,
                    "unmeasured_trials": r.unmeasured,
                    "best_number": r.best.number if r.best else "",
                    "best_val": r.best.value if r.best else "",
                    test_key: (r.test or {}).get(test_key, ""),
                    "compute_to_target_cpu_s": "" if r.ctt is None else round(r.ctt, 4),
                    **{f"saving_vs_{k}": (v if isinstance(v, str) else round(v, 4)) for k, v in r.savings.items()},
                    "ceiling_compute_to_target_cpu_s": "" if r.ceiling_ctt is None else round(r.ceiling_ctt, 4),
                }
            )


def write_compare(result: CompareResult, out_dir: Path) -> list[Path]:
    """compare.md, compare.csv and the figures under ``out_dir``; returns the files written."""

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = result.spec
    written = [out_dir / "compare.csv"]
    write_csv(result, written[0])
    figs = _figures.write_compare_figures(result, out_dir)
    written += figs
    n_trials = max((len(r.rows) for r in result.runs.values()), default=0)
    md = [
        f"# {spec.name}: pruning policies compared",
        "",
        f"{spec.model} on {spec.dataset.name}, objective {spec.objective.metrics[0]} ({result.direction}), "
        f"{spec.steps} steps, up to {n_trials} trials per study, sampler {result.sampler}, "
        f"seeds {', '.join(map(str, result.seeds))}; budgets: {fmt_budgets(spec.budgets)}. Database: `{mask_url(result.storage_url)}`, "
        f"studies `{compare_study_name(spec.name, '<policy>', 0).replace('.s0', '.s<seed>')}`.",
        "",
        "Each cell: median [inter-quartile range] over seeds. Compute = CPU seconds of the trial processes + the "
        "worker's own. Compute-to-target: until the best feasible objective is within "
        f"{result.tolerance:g} of the best feasible value `none` finds at that seed; a saving is the reference's "
        'compute-to-target divided by the policy\'s (higher is better), "not reached" is counted as such '
        "(below any number). Best built-in: `median` or `hyperband`, whichever reached the target with less at "
        "that seed. Test score: the best feasible configuration retrained on train+validation, scored on the "
        "held-out test split. `plain`: no pruning and the sampler not told about budgets (a plain Optuna study); "
        "`precheck`: the same with a hand-written check of the structural metrics before training. A ceiling row: "
        "that policy's own trials with every over-budget one free — the most any pruning of over-budget "
        "configurations could save against it on those trials (`none`'s sampler already steers away from the "
        "infeasible region, so little is left to save there).",
        "",
        records_table(policy_table(result)),
        "",
        "Figures: " + ", ".join(f"[{p.stem}]({p.name})" for p in figs),
        "",
    ]
    (out_dir / "compare.md").write_text("\n".join(md))
    written.insert(0, out_dir / "compare.md")
    return written
