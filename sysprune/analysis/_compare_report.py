"""What ``sysprune compare`` writes: the policy table (median [IQR] over seeds, the ceiling rows), ``compare.csv``
with the raw numbers per (policy, seed), and ``compare.md`` beside the figures."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

from sysprune.analysis import _figures, _stats
from sysprune.analysis._compare import _label, compare_study_name
from sysprune.analysis._digest import CEILING_OF, CompareResult, RunStats, references
from sysprune.analysis._page import write_page
from sysprune.metrics._format import fmt_budgets
from sysprune.storage._open import mask_url

#: How to read compare.md's table (its second paragraph).
_READING = (
    "Each cell: median [inter-quartile range] over seeds. Compute = CPU seconds of the trial processes + the "
    "worker's own. Compute-to-target: until the best feasible objective is within {tolerance} of the best "
    "feasible value `none` finds at that seed; a saving is the reference's compute-to-target divided by the "
    'policy\'s (higher is better), "not reached" is counted as such (below any number). Best built-in: `median` '
    "or `hyperband`, whichever reached the target with less at that seed. Test score: the best feasible "
    "configuration retrained on train+validation, scored on the held-out test split. `plain`: no pruning and the "
    "sampler not told about budgets (a plain Optuna study); `precheck`: the same with a hand-written check of the "
    "structural metrics before training. A ceiling row: that policy's own trials with every over-budget one free "
    "— the most any pruning of over-budget configurations could save against it on those trials (`none`'s "
    "sampler already steers away from the infeasible region, so little is left to save there)."
)


def tolerance_text(result: CompareResult) -> str:
    """How the target's tolerance was set, in words."""
    if result.tolerance is not None:
        return f"{result.tolerance:g} (absolute)"
    tols = sorted({r.tolerance for r in result.runs.values() if r.tolerance is not None})
    span = f"{tols[0]:.4f}" if len(tols) == 1 else f"{tols[0]:.4f}-{tols[-1]:.4f}" if tols else "-"
    return f"one binomial standard error on the {result.n_val} validation examples ({span} across seeds)"


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
        for key in references():
            if any(key in r.savings for r in runs):
                row[_label(key)] = _stats.summarise_savings([r.savings.get(key, _stats.NA) for r in runs]).fmt()
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
        _label(policy): _stats.summarise_savings(ceiling_savings(result, policy)).fmt(),
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
        "reference_val",
        "tolerance",
        "compute_to_target_cpu_s",
        *[f"saving_vs_{k}" for k in references()],
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
                    "compute_cpu_s": round(r.compute, 6),
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
                    "reference_val": "" if r.reference is None else r.reference,
                    "tolerance": "" if r.tolerance is None else r.tolerance,
                    "compute_to_target_cpu_s": "" if r.ctt is None else round(r.ctt, 6),
                    **{f"saving_vs_{k}": (v if isinstance(v, str) else round(v, 6)) for k, v in r.savings.items()},
                    "ceiling_compute_to_target_cpu_s": "" if r.ceiling_ctt is None else round(r.ceiling_ctt, 4),
                }
            )


def write_compare(result: CompareResult, out_dir: Path, *, static: bool = False) -> list[Path]:
    """compare.md, compare.csv and the figures under ``out_dir`` (``static``: PNGs beside them); returns the files
    written."""

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = result.spec
    written = [out_dir / "compare.csv"]
    write_csv(result, written[0])
    figs = _figures.write_compare_figures(result, out_dir, static=static)
    written += figs
    n_trials = max((len(r.rows) for r in result.runs.values()), default=0)
    setting = (
        f"{spec.model} on {spec.dataset.name}, objective {spec.objective.metrics[0]} ({result.direction}), "
        f"{spec.steps} steps, up to {n_trials} trials per study, sampler {result.sampler}, "
        f"seeds {', '.join(map(str, result.seeds))}; budgets: {fmt_budgets(spec.budgets)}. "
        f"Database: `{mask_url(result.storage_url)}`, "
        f"studies `{compare_study_name(spec.name, '<policy>', 0).replace('.s0', '.s<seed>')}`."
    )
    page = write_page(
        out_dir / "compare.md",
        f"{spec.name}: pruning policies compared",
        f"{setting}\n\n{_READING.format(tolerance=tolerance_text(result))}",
        policy_table(result),
        figs,
    )
    return [page, *written]
