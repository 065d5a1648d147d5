"""``make results``: the research's Results chapter, regenerated from real runs into ``results/RESULTS.md``.

The plan (:data:`._plan.FULL`; :data:`._plan.QUICK` with ``RESULTS_QUICK=1`` to check the pipeline in a few minutes):

1. **Record** each study with a random sampler and policy ``none``: every trial runs to the end, so the full
   curves and metrics are known (RQ1 needs unbiased samples of the space; replay needs full curves).
2. **RQ2 budget**: for the RQ2 studies, the budget is set from the recording — the ``feasible_share`` quantile of
   the budgeted metric's final values over the recorded trials — so a stated share of the space is infeasible.
3. **Replay** every policy over the recording (recorded order + shuffled orders): counterfactual compute and
   false prunes, the pruner's effect separated from the sampler's.
4. **Report** RQ1 on the recording (fANOVA per system metric, pruned trials included, noise floor).
5. **Compare** live, with TPE at several seeds, on the RQ2 studies (budgets of different kinds).
6. Write ``results/RESULTS.md``: set-up, plan, time taken, per study the tables, figure links and a reading
   generated from the numbers.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable


from sysprune.spec import load_spec
from sysprune.analysis import _stats
from sysprune.datasets import read_meta
from sysprune.study._dataset import prepare_dataset
from sysprune.study._open import machine_info
from sysprune.study._runner import run_study
from sysprune.analysis import _compare, _replay, _rq1 as _report
from sysprune.analysis._compare import DEFAULT_PARAMS, DEFAULT_TOLERANCE
from sysprune.analysis._compare_report import ceiling_savings, policy_table, write_compare
from sysprune.metrics._format import MISSING, fmt, fmt_budgets, markdown_table, records_table
from sysprune.analysis._recording import load_recording
from sysprune.analysis._replay import replay_table
from sysprune.analysis._rq1 import importance_table
from sysprune.pruners import budget_bound, policy_names
from sysprune.analysis._plan import FULL, QUICK, STEPS_QUICK, Item, StudyOutcome, derive_budget, record_name
from sysprune.analysis._paths import study_dir


def run_item(
    item: Item,
    *,
    storage_url: str,
    out: Path,
    quick: bool,
    policies: list[str],
    studies: Path = Path("studies"),
    permutations: int = 5,
    log: Callable[[str], None] = print,
) -> StudyOutcome:
    """Record, derive the budget, replay, report and (for RQ2 items) compare one study of the plan."""

    t0 = time.perf_counter()
    spec = load_spec(studies / f"{item.study}.toml")
    if quick:
        spec = replace(spec, steps=min(spec.steps, STEPS_QUICK))
    sizes = read_meta(prepare_dataset(spec, spec.seed)).get("sizes", {})
    rec_spec = _compare.policy_spec(spec, "none", sampler="random", n_trials=item.record_trials)
    log(f"[{item.study}] recording {item.record_trials} trials (random sampler, policy none)")
    t = time.perf_counter()
    rec_study = run_study(rec_spec, storage_url=storage_url, study_name=record_name(spec)).study
    record_s = time.perf_counter() - t
    budgets = dict(spec.budgets)
    share = None
    if item.budget_metric is not None:
        vals = [t.user_attrs[item.budget_metric] for t in rec_study.trials if item.budget_metric in t.user_attrs]
        budgets = {item.budget_metric: derive_budget(vals, item.feasible_share)}
        share = sum(v > budgets[item.budget_metric] for v in vals) / len(vals)
        spec = replace(spec, budgets=budgets)
    outcome = StudyOutcome(item, spec, budgets, share, sizes, record_s)
    folder = study_dir(out, spec.name)
    files: list[Path] = []
    # Without budgets, a policy that prunes on them, or a plain-Optuna baseline (then no different from none), has
    # nothing to show (the policy registry says which: sysprune.pruners.budget_bound).
    usable = list(policies) if budgets else [p for p in policies if not budget_bound(p, DEFAULT_PARAMS.get(p))]
    replayed = [p for p in usable if p != "plain"]  # in a replay the sampler is random: plain is none
    log(f"[{item.study}] replaying {', '.join(replayed)} over {item.orders + 1} orders")
    rec = load_recording(storage_url, record_name(spec), budgets)
    outcome.replay = _replay.replay(rec, replayed, n_orders=item.orders)
    files += _replay.write_replay(outcome.replay, folder)
    log(f"[{item.study}] RQ1 report")
    outcome.report = _report.build_report(storage_url, record_name(spec), n_permutations=permutations)
    files += _report.write_report(outcome.report, folder)
    if item.compare_trials:
        seeds = _compare.seeds_of(spec, item.seeds)
        log(f"[{item.study}] comparing {', '.join(usable)} live (TPE, {item.compare_trials} trials, seeds {seeds})")
        _compare.run_compare(
            spec, usable, seeds, storage_url=storage_url, sampler="tpe", n_trials=item.compare_trials, log=log
        )
        outcome.compare = _compare.collect(spec, usable, seeds, storage_url=storage_url, sampler="tpe")
        _compare.add_test_scores(outcome.compare, folder / "test_scores.json", log=log)
        files += write_compare(outcome.compare, folder)
    outcome.files = files
    outcome.seconds = time.perf_counter() - t0
    return outcome


# ----------------------------------------------------------------------------------------------------- reading


def _median_best(result, policy: str) -> float | None:
    vals = [result.runs[(policy, s)].best.value for s in result.seeds if result.runs[(policy, s)].best]
    return statistics.median(vals) if vals else None


def reading(o: StudyOutcome) -> list[str]:
    """A short reading generated from the numbers: what helped, what did not, what pruned the best."""
    out = []
    r = o.compare
    if r is not None:
        none_best = _median_best(r, "none")
        for ref, why in (
            ("none", "`none`'s sampler already learns the budget from its finished trials"),
            ("plain", "its sampler is not told about the budget"),
        ):
            if ref not in r.policies:
                continue
            c = _stats.summarise_savings(ceiling_savings(r, ref))
            if c.n:
                out.append(
                    f"- ceiling: had every over-budget trial of `{ref}` cost nothing (a free, perfect "
                    f"pre-check on the same trials), `{ref}` would have reached the target with {c.fmt()} "
                    f"less compute — the most any pruning of over-budget configurations saves against it "
                    f"on those trials; {why}."
                )
        for p in ("budget", "combined"):
            if p not in r.policies:
                continue
            runs = [r.runs[(p, s)] for s in r.seeds]
            s_none = _stats.summarise_savings([x.savings.get("none", _stats.NA) for x in runs])
            s_bi = _stats.summarise_savings([x.savings.get("builtin", _stats.NA) for x in runs])
            s_th = _stats.summarise_savings([x.savings.get("threshold", _stats.NA) for x in runs])
            goal = []
            for s, target, name in ((s_none, 5.0, "none"), (s_bi, 2.0, "the best built-in"), (s_th, 1.3, "threshold")):
                if s.n == 0 or (name == "threshold" and "threshold" not in r.policies):
                    continue
                if isinstance(s.median, float) and s.median >= target:
                    goal.append(f"meets the {target:g}x goal against {name} ({s.fmt()})")
                else:
                    goal.append(f"misses the {target:g}x goal against {name} ({s.fmt()})")
            for ref, name in (
                ("plain", "plain Optuna without pruning (`plain`)"),
                ("precheck", "plain Optuna with a hand-written pre-check (`precheck`)"),
            ):
                if ref in r.policies:
                    sv = _stats.summarise_savings([x.savings.get(ref, _stats.NA) for x in runs])
                    targets = [r.runs[(ref, sd)] for sd in r.seeds if r.runs[(ref, sd)].reference is not None]
                    missed = sum(t.ctt is None for t in targets)
                    mine = [x for x in runs if x.reference is not None]
                    also = (
                        f" (`{ref}` itself missed the target in {missed}/{len(targets)} seeds; `{p}` reached "
                        f"it in {sum(x.ctt is not None for x in mine)}/{len(mine)})"
                        if missed
                        else ""
                    )
                    if sv.n or missed:
                        goal.append(f"{sv.fmt()} against {name}{also}")
            best = _median_best(r, p)
            acc = ""
            if best is not None and none_best is not None:
                gap = best - none_best if r.direction == "maximize" else none_best - best
                acc = (
                    f"; its median best feasible {fmt(best)} is within the tolerance of none's {fmt(none_best)}"
                    if gap >= -r.tolerance
                    else f"; its median best feasible {fmt(best)} falls short of none's {fmt(none_best)} by more than "
                    f"the tolerance {r.tolerance:g}"
                )
            out.append(
                f"- `{p}` (live, TPE, {len(r.seeds)} seeds): " + "; ".join(goal or ["no target reached"]) + acc + "."
            )
    rp = o.replay
    if rp is not None:
        for p in rp.policies:
            flags = [x.best_pruned for x in rp.replays[p].results if x.best_pruned is not None]
            if p != "none" and flags and any(flags):
                out.append(
                    f"- replay: `{p}` pruned the truly best feasible trial in {sum(flags)} of {len(flags)} orders."
                )
        clean = [p for p in rp.policies if p != "none" and not any(x.best_pruned for x in rp.replays[p].results)]
        if clean:
            out.append(f"- replay: never pruned the best feasible trial: {', '.join(f'`{p}`' for p in clean)}.")
    rep = o.report
    if rep is not None:
        found: list[str] = []
        noise: list[str] = []
        for m in rep.metrics:
            if not m.importance or m.floor is None:
                continue
            top, v = max(m.importance.items(), key=lambda kv: kv[1])
            (found if v > m.floor else noise).append(f"{m.label}: {top} {v:.2f}" if v > m.floor else m.label)
        if found:
            out.append("- RQ1: above the noise floor — " + "; ".join(found) + ".")
        if noise:
            out.append("- RQ1: nothing above the noise floor for " + ", ".join(noise) + ".")
    return out


def _versions() -> str:
    import importlib.metadata as md

    parts = []
    for pkg in ("optuna", "torch", "scikit-learn", "numpy", "plotly", "sysprune"):
        try:
            parts.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(parts)


def _git() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "?"
        )
    except (OSError, subprocess.SubprocessError):
        return "?"


def _plan_row(it: Item) -> list[str]:
    budget = f"{it.budget_metric} at the {it.feasible_share:.0%} quantile" if it.budget_metric else "file's budgets"
    live = f"{it.compare_trials} x {it.seeds}" if it.compare_trials else MISSING
    return [it.study, str(it.record_trials), f"1 + {it.orders}", budget, live]


def write_results(
    outcomes: list[StudyOutcome],
    out: Path,
    *,
    plan_name: str,
    plan: tuple[Item, ...],
    seconds: float,
    storage_url: str,
    failed: dict[str, str] | None = None,
) -> Path:

    m = machine_info()
    md = [
        "# Results",
        "",
        f"Generated by `make results` ({plan_name}) in **{seconds / 60:.1f} min** on {m['node']} "
        f"({m['processor']}, {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}; energy counter: "
        f"{'yes' if m['energy_counter'] else 'no'}), commit {_git()}; {_versions()}. Database: `{storage_url}`.",
        "",
        "## Plan",
        "",
        "Per study: a **recording** (random sampler, policy `none`: every trial to the end), the RQ1 **report** on "
        "it, a **replay** of every policy over it (recorded order + shuffled orders), and for the RQ2 studies a "
        "**live comparison** with TPE at several seeds. RQ2 budgets are set from the recording (the stated "
        "quantile of the budgeted metric), so a known share of each space is infeasible. Compute-to-target "
        f"tolerance: {DEFAULT_TOLERANCE:g} (absolute, objective units); the reference is the best feasible "
        "value `none` finds at the same seed. Test scores: the best feasible configuration retrained on "
        "train+validation, scored on the held-out test split.",
        "",
        *markdown_table(
            ["study", "recorded trials", "orders", "budget (from the recording)", "live trials x seeds"],
            (_plan_row(it) for it in plan),
        ),
    ]
    for o in outcomes:
        s = o.spec
        share = f" ({o.infeasible_share:.0%} of the recorded trials over it)" if o.infeasible_share is not None else ""
        sizes = ", ".join(f"{k} {v}" for k, v in o.sizes.items())
        md += [
            "",
            f"## {s.name}",
            "",
            f"{s.model} on {s.dataset.name} ({sizes}), {s.steps} steps, objective {s.objective.metrics[0]}; "
            f"budgets: {fmt_budgets(o.budgets)}{share}. Seeds: recording {s.seed}"
            + (f", live comparison {', '.join(map(str, o.compare.seeds))}" if o.compare is not None else "")
            + f". Took {o.seconds / 60:.1f} min (recording {o.record_s:.0f} s).",
            "",
            "**Reading.**",
            "",
            *(reading(o) or ["- (nothing to read: too few trials)"]),
            "",
            "### RQ1: what drives each system metric",
            "",
            records_table(importance_table(o.report)),
            "",
            f"Figures: [importance]({s.name}/rq1_importance.html), "
            + ", ".join(f"[{m.metric}]({s.name}/rq1_{m.metric}.html)" for m in o.report.metrics),
            "",
            "### RQ2: replay over the recording",
            "",
            records_table(replay_table(o.replay)),
            "",
        ]
        if o.compare is not None:
            figs = ["compare_anytime", *[f"compare_fits_{k}" for k in o.budgets]]
            md += [
                "### RQ2: live comparison (TPE)",
                "",
                records_table(policy_table(o.compare)),
                "",
                "Figures: " + ", ".join(f"[{f}]({s.name}/{f}.html)" for f in figs) + f"; raw: [{s.name}/compare.csv]"
                f"({s.name}/compare.csv), [{s.name}/replay.csv]({s.name}/replay.csv)",
                "",
            ]
    for study, why in (failed or {}).items():
        md += ["", f"## {study}", "", f"Not done: {why}", ""]
    path = out / "RESULTS.md"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(md) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m sysprune.analysis._results [--storage URL] [--out results] [--only a,b]``; ``RESULTS_QUICK=1``
    runs the quick plan."""
    import argparse

    import optuna

    ap = argparse.ArgumentParser(prog="make results", description=__doc__.splitlines()[0])
    ap.add_argument("--storage", default=None, help="SQLAlchemy URL (default: sqlite:///<out>/results[-quick].db)")
    ap.add_argument("--out", default="results")
    ap.add_argument("--only", default=None, help="comma-separated study names of the plan to run")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    quick = os.environ.get("RESULTS_QUICK", "") not in ("", "0")
    plan = QUICK if quick else FULL
    if args.only:
        keep = set(args.only.split(","))
        plan = tuple(i for i in plan if i.study in keep)
    out = Path(args.out)
    storage = args.storage or f"sqlite:///{out / ('results-quick.db' if quick else 'results.db')}"
    policies = list(policy_names())
    t0 = time.perf_counter()
    outcomes, failed = [], {}
    for it in plan:
        try:
            outcomes.append(run_item(it, storage_url=storage, out=out, quick=quick, policies=policies))
        except (ValueError, RuntimeError, OSError) as e:  # one study's problem (data missing, ...) ends only it
            failed[it.study] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"[{it.study}] not done: {failed[it.study]}")
    full_plan = QUICK if quick else FULL
    plan_name = (
        ("quick" if quick else "full")
        + " plan"
        + (f" restricted with `--only` to {len(plan)} of its {len(full_plan)} studies" if args.only else "")
    )
    path = write_results(
        outcomes,
        out,
        plan_name=plan_name,
        plan=plan,
        seconds=time.perf_counter() - t0,
        storage_url=storage,
        failed=failed,
    )
    print(f"wrote {path} in {(time.perf_counter() - t0) / 60:.1f} min ({platform.node()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
