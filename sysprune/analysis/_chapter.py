"""The Results chapter (``RESULTS.md``): the two questions and their answers first, each with its summary table;
then the goals, the method, the threats to validity and the detail per study. Every sentence that claims a
difference is written only when its test supports it (:mod:`._inference`); the summary tables are also written as
CSVs (``rq1_summary.csv``, ``rq2_summary.csv``, ``friedman.csv``) from which they can be re-derived."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sysprune.analysis import _evolution, _figures, _rq2
from sysprune.analysis._digest import CompareResult
from sysprune.analysis._inference import ALPHA, Friedman, ratio_ci
from sysprune.analysis._plan import Item, StudyOutcome, record_name
from sysprune.analysis._rq1 import family_table
from sysprune.analysis._chapter_method import (
    plan_table,
    rq1_floor_sentence,
    seeds_sentence,
    threats,
    tolerance_words,
)
from sysprune.analysis._summary_tables import (
    fmt_p,
    ratio_cell,
    rq1_rows,
    rq1_table,
    rq2_rows,
    rq2_table,
    saving_ratios,
    write_csv,
)
from sysprune.metrics._format import MISSING, markdown_table, records_table
from sysprune.study._open import machine_info

#: RQ2's goals: (reference group, factor, what it is).
GOALS = (
    ("none", 5.0, "no pruning (`none`)"),
    ("builtin", 2.0, "the better of Optuna's built-in pruners at each seed (`median`, `hyperband`)"),
    ("threshold", 1.3, "a stopper on one measured value (`threshold`)"),
)
Q1 = "RQ1: how do hyperparameters change system performance during training?"
Q2 = "RQ2: how does early stopping on system criteria change the compute budget?"


def goal_verdict(est: Any, goal: float) -> str:
    """Met only when the interval's lower end is at or above the goal, missed when its upper end is below it."""
    if est.n < 2 or est.lo is None:
        return "undecided (too few seeds)"
    if est.lo >= goal:
        return "met"
    if est.hi < goal:
        return "missed"
    return "undecided (the interval contains it)"


def _versus_sentence(rows: list[dict[str, Any]], policy: str, reference: str) -> list[str]:
    """What the tests support about ``policy`` against ``reference``, study by study."""
    saved: list[str] = []
    none_shown: list[str] = []
    identical: list[str] = []
    worse: list[str] = []
    for row in rows:
        if row["policy"] != policy or row["reference"] != reference:
            continue
        v = row["_versus"]
        if v.all_identical:
            identical.append(row["study"])
        elif row["p_holm"] is not None and row["p_holm"] < ALPHA:
            (saved if row["gm"] > 1 else worse).append(f"{row['study']} {ratio_cell(row)}")
        else:
            none_shown.append(f"{row['study']} ({ratio_cell(row)})")
    out = []
    if saved:
        out.append(f"`{policy}` reached the target with less compute than `{reference}` on {'; '.join(saved)}")
    if worse:
        out.append(f"`{policy}` needed *more* compute than `{reference}` on {'; '.join(worse)}")
    if none_shown:
        out.append(f"no difference from `{reference}` is shown on {'; '.join(none_shown)}")
    if identical:
        out.append(f"`{policy}` and `{reference}` made identical decisions on {', '.join(identical)}")
    return out


def rq2_answer(rows: list[dict[str, Any]], fr: Friedman | None, outcomes: list[StudyOutcome]) -> list[str]:
    lines = []
    for policy in ("budget", "combined"):
        for ref in ("none", "plain"):
            parts = _versus_sentence(rows, policy, ref)
            if parts:
                lines.append("- " + "; ".join(parts) + ".")
    tests = [
        r
        for r in rows
        if r["policy"] in ("budget", "combined") and r["reference"] == "none" and r["test_lo"] is not None
    ]
    if tests:
        worse = [r for r in tests if r["test_hi"] < 0]
        lines.append(
            "- The held-out test score of the best feasible model: "
            + (
                "lower than `none`'s on " + ", ".join(f"{r['study']} (`{r['policy']}`)" for r in worse)
                if worse
                else f"no loss against `none` is shown for `budget`/`combined` on any of {len(tests)} study rows"
            )
            + " (paired differences, 95 % intervals in the table)."
        )
    if fr is not None:
        order = sorted(fr.mean_ranks, key=fr.mean_ranks.get)  # type: ignore[arg-type]
        verdict = "differ" if fr.p < ALPHA else "are not shown to differ"
        lines.append(
            f"- Across all {fr.n} study x seed blocks the policies {', '.join(f'`{p}`' for p in fr.treatments)} "
            f"{verdict} (Friedman chi2 = {fr.chi2:.1f}, p {fmt_p(fr.p)}); by mean rank of compute-to-target, "
            f"best first: {', '.join(f'`{p}` {fr.mean_ranks[p]:.2f}' for p in order)}."
        )
    return lines


def rq1_answer(outcomes: list[StudyOutcome], rows: list[dict[str, Any]]) -> list[str]:
    pairs = sorted({r["pair"] for r in rows})
    cells = {(r["pair"], r["family"]) for r in rows}
    with_driver = {(r["pair"], r["family"]) for r in rows if r["driver"]}
    lines = [
        f"- Over {len(pairs)} model x dataset pairs and {len(cells)} (pair, metric family) cells, {len(with_driver)} "
        "have at least one hyperparameter that drives the family (permutation test, Holm-corrected, p < 0.05)."
    ]
    by_family: dict[str, Counter] = {}
    for r in rows:
        if r["driver"]:
            by_family.setdefault(r["family"], Counter())[r["param"]] += 1
    for fam, counts in by_family.items():
        n = sum(1 for c in cells if c[1] == fam)
        lines.append(f"- {fam}: " + ", ".join(f"`{p}` in {k} of {n} pairs" for p, k in counts.most_common()) + ".")
    growth: dict[str, list[float]] = {}
    for o in outcomes:
        for e in o.report.evolution if o.report is not None else []:
            if e.growth.median is not None:
                growth.setdefault(e.family, []).append(e.growth.median)
    if growth:
        lines.append(
            "- During training (last step over step 0, the median trial of each recording): "
            + "; ".join(f"{fam} {min(v):.2f}x-{max(v):.2f}x over {len(v)} recordings" for fam, v in growth.items())
            + "; size and latency are fixed by the architecture before training starts."
        )
    return lines


def _img(folder: str, name: str, alt: str, out: Path) -> list[str]:
    """An embedded PNG (when it was written) beside the link to its interactive HTML."""
    png, html = Path(folder) / f"{name}.png", Path(folder) / f"{name}.html"
    lines = []
    if (out / png).is_file():
        lines.append(f"![{alt}]({png.as_posix()})")
    if (out / html).is_file():
        lines.append(f"[{alt} (interactive)]({html.as_posix()})")
    return lines


def write_chapter(
    outcomes: list[StudyOutcome],
    out: Path,
    *,
    plan_name: str,
    plan: tuple[Item, ...],
    seconds: float,
    storage_url: str,
    invocations: tuple[int, float] = (1, 0.0),
    failed: dict[str, str] | None = None,
    load: tuple[str, str] | list[tuple[str, str]] = ("?", "?"),
    commit: str | None = None,
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    r2 = rq2_rows(outcomes)
    r1 = rq1_rows(outcomes)
    write_csv(r2, out / "rq2_summary.csv")
    write_csv(r1, out / "rq1_summary.csv")
    results = [o.compare for o in outcomes if o.compare is not None]
    fr = _rq2.across_studies(results)
    if fr is not None:
        labels, table = _rq2.block_table(results, list(fr.treatments))
        write_csv(
            [{"block": b, **{p: v for p, v in zip(fr.treatments, row)}} for b, row in zip(labels, table)],
            out / "friedman.csv",
        )
        _figures.cd_diagram(fr, out / "cd_diagram.png")
    m = machine_info()
    md = [
        "# Results",
        "",
        f"Generated by `make results` ({plan_name}) in **{seconds / 60:.1f} min**"
        + (
            f" over {invocations[0]} invocations (it resumes; the last took {invocations[1] / 60:.1f} min)"
            if invocations[0] > 1
            else ""
        )
        + f" on {m['node']} ({m['cpu_count']} "
        f"CPUs, {m['platform']}, Python {m['python']}; energy counter: {'yes' if m['energy_counter'] else 'no'})"
        + (f", commit {commit}" if commit else "")
        + ". The plan, the statistics and every number below come from `sysprune/analysis/` "
        "(`_plan.py`, `_inference.py`); the tables are re-derivable from the CSVs beside this file.",
        "",
        "## The answers",
        "",
        f"**{Q1}**",
        "",
        *rq1_answer(outcomes, r1),
        "",
        records_table(rq1_table(r1)) if r1 else "(no recording was analysed)",
        "",
        f"**{Q2}**",
        "",
        *rq2_answer(r2, fr, outcomes),
        "",
        records_table(rq2_table(r2)) if r2 else "(no live comparison ran)",
        "",
        "Savings: geometric mean over paired seeds of the reference's compute-to-target over the policy's, 95 % "
        "interval from a t test on the log-ratios, p-value of that test Holm-adjusted over every saving in this "
        "table. Test score: the policy's best feasible model minus `none`'s, retrained and scored on the held-out "
        "split. False prunes: replay orders in which the truly best feasible trial was pruned, exact 95 % interval.",
        "",
    ]
    if fr is not None:
        sig = [f"`{a}`-`{b}` (p {fmt_p(p)})" for (a, b), p in fr.posthoc.items() if p < ALPHA]
        md += [
            "### The policies across all studies (Friedman, Demšar 2006)",
            "",
            f"Blocks: {fr.n} study x seed pairs of the live comparisons; treatments: the {len(fr.treatments)} "
            "policies every comparison ran; the value: compute-to-target, a policy that did not reach the target "
            "ranked last (censored, not dropped). Friedman chi2 = "
            f"{fr.chi2:.2f} (p {fmt_p(fr.p)}), Iman-Davenport F = {fr.f:.2f} (p {fmt_p(fr.p_f)}). Post-hoc: "
            "Conover's test, Holm-corrected: "
            + ("; ".join(sig) if sig else "no pair separated")
            + f". Nemenyi's critical difference at alpha 0.05: {fr.cd:.2f} ranks.",
            "",
            *(["![critical-difference diagram](cd_diagram.png)", ""] if (out / "cd_diagram.png").is_file() else []),
        ]
    md += _goals(outcomes)
    md += [
        "## Method",
        "",
        "Per study: a **recording** (random sampler, policy `none`: every trial to its end, its own seed so no two "
        "recordings share configurations), **RQ1** on it, a **replay** of the item's policies over it (recorded "
        "and shuffled orders), and for the RQ2 studies a **live comparison** (TPE) over paired seeds. RQ2 budgets "
        "are the stated quantile of the recorded metric, so the budget binds on a known share of the space.",
        "",
        *plan_table(plan),
        "",
        tolerance_words(results),
        "",
        "**Statistics** (Fernandez-Lozano et al. 2016; Demšar 2006). Per study, each policy is paired with its "
        "reference seed by seed: a saving is tested on the log scale (paired t; the exact Wilcoxon test is in "
        "rq2_summary.csv beside it), an accuracy difference as is, a false-prune rate with an exact binomial "
        "interval. A seed where a side did not reach the target has no ratio: it is counted, compared at equal "
        "compute in the per-study tables, and ranked last in the Friedman test. Runs that made identical "
        "decisions are reported as such. RQ1: fANOVA importance of each hyperparameter for each metric family's "
        "representative over every recorded trial, on the log scale where every value is positive (system metrics "
        "change by factors; on the raw scale the few largest trials own most of the variance and a chance split "
        "that isolates them reads as an importance); a driver's permutation p-value (that hyperparameter's values "
        "permuted across trials, the others kept; enough permutations for Holm over the parameters) and its "
        "bootstrap interval. " + rq1_floor_sentence(r1) + seeds_sentence(r2),
        "",
        "## Threats to validity",
        "",
        *threats(outcomes, r2, load),
        "",
        "## Per study",
    ]
    for o in outcomes:
        md += _study_section(o, out, r2)
    for study, why in (failed or {}).items():
        md += ["", f"### {study}", "", f"Not done: {why}", ""]
    path = out / "RESULTS.md"
    path.write_text("\n".join(md) + "\n")
    return path


def _goals(outcomes: list[StudyOutcome]) -> list[str]:
    md = [
        "## The goals",
        "",
        "The project set RQ2 three goals for sysprune's budget-aware policies (`budget`, `combined`) before any "
        "result: reach the reference's best feasible accuracy with at least "
        + "; ".join(f"{g:g}x less compute than {what}" for _, g, what in GOALS)
        + ". They are targets of the project, not derived from data. A goal is **met** when the saving's 95 % "
        "interval lies at or above it, **missed** when the interval lies below it, and undecided otherwise.",
        "",
    ]
    rows = []
    for o in outcomes:
        r = o.compare
        if r is None:
            continue
        for p in ("budget", "combined"):
            if p not in r.policies:
                continue
            cells = [o.spec.name, f"`{p}`"]
            for ref, goal, _ in GOALS:
                if not any(ref in r.runs[(p, s)].savings for s in r.seeds):
                    cells.append(MISSING)
                    continue
                est = ratio_cell_est(r, p, ref)
                cells.append(f"{goal:g}x: {goal_verdict(est, goal)}" + (f" ({est.point:.2f}x)" if est.point else ""))
            rows.append(cells)
    if rows:
        md += markdown_table(["study", "policy", *[f"vs {ref}" for ref, _, _ in GOALS]], rows) + [""]
    return md


def ratio_cell_est(result: CompareResult, policy: str, reference: str):
    return ratio_ci(saving_ratios(result, policy, reference))


def _study_section(o: StudyOutcome, out: Path, rows: list[dict[str, Any]]) -> list[str]:
    s = o.spec
    name = s.name
    sizes = ", ".join(f"{k} {v}" for k, v in o.sizes.items())
    share = f" ({o.infeasible_share:.0%} of the recorded trials over it)" if o.infeasible_share is not None else ""
    md = [
        "",
        f"### {name}",
        "",
        f"{s.model} on {s.dataset.name} ({sizes}), {s.steps} steps, objective {s.objective.metrics[0]}; budgets: "
        + (", ".join(f"{k} <= {v:g}" for k, v in o.budgets.items()) or MISSING)
        + f"{share}. Recording: `{record_name(s) if o.item.records else f'{o.item.recording}.record'}`. "
        f"Took {o.seconds / 60:.1f} min.",
        "",
    ]
    rep = o.report
    if rep is not None and rep.families:
        md += [
            "**RQ1** (all metrics: [rq1.md](" + f"{name}/rq1.md))",
            "",
            records_table(family_table(rep)),
            "",
            *(f"- {_evolution.sentence(e)}" for e in rep.evolution),
            "",
            *_img(name, "rq1_families", "importance by family", out),
            *_img(name, "rq1_evolution", "the families over training", out),
            "",
        ]
    r = o.compare
    if r is not None:
        mine = [x for x in rows if x["study"] == name]
        lines = []
        for p in r.policies:
            if p == "none":
                continue
            cells = {x["reference"]: x for x in mine if x["policy"] == p}
            v = _rq2.versus(r, p, "none")
            eq = v.at_equal
            lines.append(
                [
                    f"`{p}`",
                    *(ratio_cell(cells[ref]) if ref in cells else MISSING for ref in ("none", "plain", "threshold")),
                    (f"{eq.point:+.4f} [{eq.lo:+.4f}, {eq.hi:+.4f}] (n={eq.n})" if eq.lo is not None else MISSING),
                ]
            )
        md += [
            f"**RQ2, live** (TPE, {len(r.seeds)} seeds; every number per seed: [compare.md]({name}/compare.md), "
            f"[compare.csv]({name}/compare.csv))",
            "",
            *markdown_table(
                ["policy", "saving vs none", "vs plain", "vs threshold", "best feasible at equal compute vs none"],
                lines,
            ),
            "",
            *_img(name, "compare_anytime", "anytime: best feasible vs compute", out),
            *(line for k in o.budgets for line in _img(name, f"compare_fits_{k}", f"what fits under {k}", out)),
            "",
        ]
        overhead = _rq2.overhead_share([r.runs[("none", sd)] for sd in r.seeds])
        rp = o.replay
        if overhead is not None and rp is not None and "budget" in rp.replays and "none" in rp.replays:
            rep_saving = rp.replays["none"].results[0].compute / max(rp.replays["budget"].results[0].compute, 1e-12)
            live = [x for x in mine if x["policy"] == "budget" and x["reference"] == "none"]
            measured = f"{live[0]['gm']:.2f}x" if live and live[0]["gm"] else MISSING
            md += [
                f"Replay vs live: the replay saves {rep_saving:.2f}x of training CPU (recorded order); {overhead:.0%} "
                f"of `none`'s live compute is per-trial bookkeeping a prune does not remove, which alone turns that "
                f"into ~{_rq2.live_from_replay(rep_saving, overhead):.2f}x on the same trials; live, `budget` measured "
                f"{measured} to the target (its sampler also chose other trials).",
                "",
            ]
    if o.replay is not None:
        md += [f"Replay: [replay.md]({name}/replay.md), [replay.csv]({name}/replay.csv).", ""]
    return md
