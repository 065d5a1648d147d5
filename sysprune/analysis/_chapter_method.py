"""The Results chapter's Method and Threats-to-validity sections (:mod:`._chapter` writes the chapter): the plan
table, the target's tolerance, the machine's load, the statistics' resolution and the seeds the effects need."""

from __future__ import annotations

import math
from typing import Any

from sysprune.analysis import _rq2
from sysprune.analysis._digest import CompareResult
from sysprune.analysis._inference import seeds_for
from sysprune.analysis._plan import Item, StudyOutcome
from sysprune.analysis._stats import spread
from sysprune.metrics._format import MISSING, markdown_table


def plan_table(plan: tuple[Item, ...]) -> list[str]:
    rows = []
    for it in plan:
        rec = f"{it.record_trials} random" if it.records else f"shares {it.recording}'s"
        budget = f"{it.budget_metric} at the {it.feasible_share:.0%} quantile" if it.budget_metric else MISSING
        live = f"{it.compare_trials} x {it.seeds} seeds" if it.live else MISSING
        over = ", ".join(
            x for x in (f"{it.steps} steps" if it.steps else "", f"{it.subsample} rows" if it.subsample else "") if x
        )
        rows.append(
            [
                it.study + (f" ({over})" if over else ""),
                rec,
                budget,
                live,
                ", ".join(it.policies) or "all",
                it.why or MISSING,
            ]
        )
    return markdown_table(["study", "recording", "RQ2 budget", "live: trials x seeds", "policies", "why these"], rows)


def tolerance_words(results: list[CompareResult]) -> str:
    tols = sorted(r.tolerance for c in results for r in c.runs.values() if r.tolerance is not None)
    span = f"{tols[0]:.4f}-{tols[-1]:.4f}" if tols else MISSING
    return (
        "**The target.** A search reaches the target when its best feasible validation accuracy comes within one "
        "binomial standard error of the reference — the best feasible accuracy `none` finds at the same seed — "
        "sqrt(p (1 - p) / n_val) on that study's n_val validation examples "
        f"({span} in this run). Two accuracies closer than that cannot be told apart on that split; a fixed "
        "0.005 (1.8 digits examples) was below the accuracy's own standard error (~0.009 on digits) and made "
        "one seed's lucky maximum the bar. The held-out test score of each search's best feasible model is "
        "compared as well (paired differences with their intervals)."
    )


def load_words(load: tuple[str, str] | list[tuple[str, str]]) -> str:
    """The load average at the start and end of the run, or of each invocation of a resumed one."""
    loads = [load] if isinstance(load, tuple) else list(load)
    if len(loads) == 1:
        return f"load average {loads[0][0]} at the start, {loads[0][1]} at the end"
    return f"load average at the start/end of each of its {len(loads)} invocations: " + ", ".join(
        f"{a}/{b}" for a, b in loads
    )


def threats(
    outcomes: list[StudyOutcome], rows: list[dict[str, Any]], load: tuple[str, str] | list[tuple[str, str]]
) -> list[str]:
    shares = []
    for o in outcomes:
        if o.compare is not None:
            s = _rq2.overhead_share([o.compare.runs[("none", sd)] for sd in o.compare.seeds])
            if s is not None:
                shares.append(f"{o.spec.name} {s:.0%}")
    noise = []
    for o in outcomes:
        r = o.compare
        if r is None:
            continue
        for p in r.policies:
            for q in r.policies:
                if p < q:
                    for sd in r.seeds:
                        a, b = r.runs[(p, sd)], r.runs[(q, sd)]
                        if a.ctt and b.ctt and _rq2.same_decisions(a, b):
                            noise.append(a.ctt / b.ctt)
    costs = []
    for o in outcomes:
        if o.compare is not None:
            c = spread([t.compute for sd in o.compare.seeds for t in o.compare.runs[("none", sd)].rows if t.finished])
            if c.median is not None:
                costs.append(f"{o.spec.name} {c.median:.2g} s")
    lines = [
        f"- **A shared machine.** Everything ran on one 2-core VM ({load_words(load)}); CPU time is less sensitive to load than wall time, but caches and memory bandwidth are shared.",
        "- **Bookkeeping in the compute.** Live compute counts the trial process and the worker's own CPU; a "
        "replay counts only the recorded training CPU. The share of `none`'s compute a replay does not see: "
        + (", ".join(shares) if shares else MISSING)
        + ". Pruning cannot save that per-trial share, so live savings are smaller than replay savings.",
    ]
    if costs:
        lines.append(
            "- **Toy scale.** A finished trial of `none` costs (median CPU s): " + ", ".join(costs) + ". Where a "
            "trial costs well under a second, process start-up and bookkeeping are a large share of it (above), so "
            "the digits studies understate what pruning saves when training dominates; the MNIST-sized studies are "
            "the check on that."
        )
    if noise:
        lines.append(
            f"- **Measurement noise.** Runs that made identical decisions differ in compute-to-target by "
            f"{min(noise):.2f}x-{max(noise):.2f}x ({len(noise)} pairs): a ratio inside that range without a test "
            "behind it is noise, which is why every ratio here carries an interval and a p-value."
        )
    lines.append(
        "- **Replay orders** are shuffles of one recording, not independent searches: the false-prune interval is "
        "over orders of that recording only."
    )
    return lines


def seeds_sentence(rows: list[dict[str, Any]]) -> str:
    import statistics

    logs_sd = []
    for row in rows:
        v = row["_versus"]
        if row["reference"] == "none" and row["n_ratio"] >= 3 and v.saving.effect:
            sd = abs(math.log(row["gm"]) / v.saving.effect)
            logs_sd.append(sd)
    if not logs_sd:
        return ""
    sd = statistics.median(logs_sd)
    return (
        f"The per-seed log-ratios spread with a median SD of {sd:.2f}: detecting a 1.3x saving with 80 % power at "
        f"alpha 0.05 takes ~{seeds_for(sd, 1.3)} paired seeds, a 2x saving ~{seeds_for(sd, 2.0)}."
    )


def rq1_floor_sentence(rows: list[dict[str, Any]]) -> str:
    """What the permutation count lets RQ1's p-values say: the smallest Holm-adjusted p of each (study, family)."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["study"], r["family"]), []).append(r)
    floors = sorted({round(len(rs) / (rs[0]["permutations"] + 1), 3) for rs in cells.values() if rs[0]["permutations"]})
    if not floors:
        return ""
    span = f"{floors[0]:.3f}" if len(floors) == 1 else f"{floors[0]:.3f}-{floors[-1]:.3f}"
    return (
        f"RQ1's tests run up to B permutations per hyperparameter, so the smallest p one can give is 1 / (B + 1) "
        f"and, after Holm over a family's m hyperparameters, the smallest adjusted p is m / (B + 1) ({span} here): "
        "a p-value at that floor says *driver*, not how strong — the importance and its interval say that. "
    )
