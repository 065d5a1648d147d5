"""``make results``: the research's Results chapter, regenerated from real runs into ``results/RESULTS.md``.

The plan (:data:`._plan.FULL`; :data:`._plan.QUICK` with ``RESULTS_QUICK=1``, written to ``results/quick/``, never
over the committed chapter):

1. **Record** each study with a random sampler and policy ``none`` (every trial to the end: RQ1 needs unbiased
   samples of the space, replay needs full curves). Studies that differ only in their budget share one recording.
2. **RQ2 budget**: the ``feasible_share`` quantile of the budgeted metric over the recording, so a stated share of
   the space is infeasible and the budget binds.
3. **Replay** the item's policies over the recording (recorded + shuffled orders): false prunes, counterfactual
   compute.
4. **RQ1** on each recording: fANOVA importance per metric family with permutation p-values (Holm) and bootstrap
   intervals, and how each family evolves over training.
5. **Compare** live with TPE over paired seeds, each item under the policies its claims need.
6. Write the chapter (:mod:`._chapter`): answers first, the statistics, the method and threats, per-study detail.

Running it again resumes: finished studies are not rerun, test scores and RQ1 inferences are cached beside their
outputs. Each stage prints a progress line with the time spent and the plan's estimate. The time each study and the
whole plan took is summed over the invocations that built the folder (``timing.json`` beside the chapter), so a
resumed chapter states what its runs cost in all, not only the last invocation's share.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from sysprune._plugins import check_installed
from sysprune.analysis import _compare, _replay, _rq1
from sysprune.analysis._chapter import write_chapter
from sysprune.analysis._compare_report import write_compare
from sysprune.analysis._plan import (
    FULL,
    OUT_FULL,
    OUT_QUICK,
    QUICK,
    RECORD_SEED_OFFSET,
    Item,
    StudyOutcome,
    apply,
    derive_budget,
    estimate_minutes,
    record_name,
)
from sysprune.analysis._paths import study_dir
from sysprune.analysis._recording import load_recording
from sysprune.analysis._trials import load_study
from sysprune.datasets import read_meta
from sysprune.pruners import budget_bound, policy_names
from sysprune.spec import SpecError, StudySpec, load_spec
from sysprune.study._dataset import prepare_dataset
from sysprune.study._runner import run_study


#: The quick plan's RQ1 inference: few fits, to check the pipeline (its p-values cannot clear Holm's threshold).
QUICK_PERMUTATIONS, QUICK_BOOTSTRAPS = 19, 20


#: Beside the chapter: seconds per study and in all, summed over the invocations of ``make results`` in that folder.
TIMING = "timing.json"


def _has_recordings(storage_url: str) -> bool:
    """Whether the storage already holds a recording of the plan (this invocation resumes a run)."""
    import optuna

    return any(name.endswith(".record") for name in optuna.get_all_study_names(storage=storage_url))


def load_timing(path: Path | None) -> dict:
    """``{"invocations": n, "total_s": s, "studies": {study: s}, "loads": [[start, end], ...]}`` (the load average
    at each invocation's start and end) from ``path`` (zeros if it is not there)."""
    timing: dict = {"invocations": 0, "total_s": 0.0, "studies": {}, "loads": []}
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
        except ValueError as e:
            raise SystemExit(f"{path}: not valid JSON ({e}); delete it to count the time from this run on") from None
        timing.update({k: stored[k] for k in timing if k in stored})
    return timing


def policies_of(item: Item) -> list[str]:
    """The item's policies (every registered one if it names none), those unknown to the registry refused."""
    names = list(item.policies) or list(policy_names())
    unknown = [p for p in names if p not in policy_names()]
    if unknown:
        raise SpecError(
            f"plan item {item.study}: unknown policies {', '.join(unknown)}; valid: {', '.join(policy_names())}"
        )
    return names


def _record(spec: StudySpec, trials: int, storage_url: str, log: Callable[[str], None]) -> tuple[str, float]:
    """Run (or resume) the study's recording; return its name and the seconds it took now."""
    rec_spec = _compare.policy_spec(spec, "none", sampler="random", n_trials=trials)
    t = time.perf_counter()
    run_study(rec_spec, storage_url=storage_url, study_name=record_name(spec), seed=spec.seed + RECORD_SEED_OFFSET)
    return record_name(spec), time.perf_counter() - t


def run_item(
    item: Item,
    *,
    storage_url: str,
    out: Path,
    quick: bool,
    plan: tuple[Item, ...] = (),
    studies: Path = Path("studies"),
    permutations: int | None = None,
    bootstraps: int | None = None,
    static: bool = True,
    log: Callable[[str], None] = print,
) -> StudyOutcome:
    """Record (or reuse the shared recording), derive the budget, replay, report RQ1 and compare one study."""

    t0 = time.perf_counter()
    spec = apply(item, load_spec(studies / f"{item.study}.toml"), quick)
    sizes = read_meta(prepare_dataset(spec, spec.seed)).get("sizes", {})
    source = item
    if item.recording is not None:
        source = next((i for i in plan if i.study == item.recording), None) or item
        if source is item:
            raise SpecError(f"plan item {item.study}: its recording {item.recording!r} is not an item of the plan")
    src_spec = spec if source is item else apply(source, load_spec(studies / f"{source.study}.toml"), quick)
    log(f"[{item.study}] recording {source.record_trials} trials of {source.study} (random sampler, policy none)")
    rec_name, record_s = _record(src_spec, source.record_trials, storage_url, log)
    budgets = dict(spec.budgets)
    share = None
    if item.budget_metric is not None:
        rec_study = load_study(storage_url, rec_name)
        vals = [t.user_attrs[item.budget_metric] for t in rec_study.trials if item.budget_metric in t.user_attrs]
        budgets = {item.budget_metric: derive_budget(vals, item.feasible_share)}
        share = sum(v > budgets[item.budget_metric] for v in vals) / len(vals)
        spec = _with_budgets(spec, budgets)
    outcome = StudyOutcome(item, spec, budgets, share, sizes, record_s)
    folder = study_dir(out, spec.name)
    files: list[Path] = []
    policies = policies_of(item)
    if item.budget_metric is not None:
        replayed = [p for p in policies if p != "plain"]  # in a replay the sampler is random: plain is none
        log(f"[{item.study}] replaying {', '.join(replayed)} over {item.orders + 1} orders")
        rec = load_recording(storage_url, rec_name, budgets)
        outcome.replay = _replay.replay(rec, replayed, n_orders=item.orders)
        files += _replay.write_replay(outcome.replay, folder)
    if item.records:
        log(f"[{item.study}] RQ1: importances with permutation tests and bootstrap intervals")
        outcome.report = _rq1.build_report(
            storage_url,
            rec_name,
            n_permutations=0,  # the per-family permutation tests replace the per-metric noise floor
            inference=True,
            permutations=permutations,
            bootstraps=_rq1.BOOTSTRAPS if bootstraps is None else bootstraps,
            cache=folder / "rq1_inference.json",
        )
        files += _rq1.write_report(outcome.report, folder)
    if item.live:
        usable = [p for p in policies if budgets or not budget_bound(p, _compare.DEFAULT_PARAMS.get(p))]
        seeds = _compare.seeds_of(spec, item.seeds)
        log(f"[{item.study}] comparing {', '.join(usable)} live (TPE, {item.compare_trials} trials, seeds {seeds})")
        _compare.run_compare(
            spec, usable, seeds, storage_url=storage_url, sampler="tpe", n_trials=item.compare_trials, log=log
        )
        outcome.compare = _compare.collect(
            spec,
            usable,
            seeds,
            storage_url=storage_url,
            sampler="tpe",
            tolerance=_tolerance(spec),
            n_val=sizes.get("val"),
        )
        _compare.add_test_scores(outcome.compare, folder / "test_scores.json", log=log)
        files += write_compare(outcome.compare, folder, static=static)
    outcome.files = files
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _tolerance(spec: StudySpec) -> float | None:
    """The target's tolerance: from the validation noise for an accuracy (None), else the absolute default."""
    return None if spec.objective.metrics[0].endswith("accuracy") else _compare.DEFAULT_TOLERANCE


def _with_budgets(spec: StudySpec, budgets: dict[str, float]) -> StudySpec:
    from dataclasses import replace

    return replace(spec, budgets=budgets)


def estimate(plan: tuple[Item, ...], studies: Path = Path("studies")) -> list[tuple[str, float]]:
    """``(study, estimated minutes)`` per item (:func:`._plan.estimate_minutes`)."""
    out = []
    for it in plan:
        spec = apply(it, load_spec(studies / f"{it.study}.toml"))
        out.append((it.study, estimate_minutes(it, spec, len(policies_of(it)) if it.live else 0)))
    return out


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    """``python -m sysprune.analysis._results [--storage URL] [--out DIR] [--only a,b] [--estimate]``;
    ``RESULTS_QUICK=1`` runs the quick plan into results/quick/."""
    import argparse

    import optuna

    ap = argparse.ArgumentParser(prog="make results", description=__doc__.splitlines()[0])
    ap.add_argument("--storage", default=None, help="SQLAlchemy URL (default: sqlite:///<out>/results.db)")
    ap.add_argument("--out", default=None, help="output folder (default: results; quick: results/quick)")
    ap.add_argument("--only", default=None, help="comma-separated study names of the plan to run")
    ap.add_argument("--estimate", action="store_true", help="print the plan's estimated time and run nothing")
    args = ap.parse_args(argv)
    quick = os.environ.get("RESULTS_QUICK", "") not in ("", "0")
    full_plan = QUICK if quick else FULL
    plan = full_plan
    if args.only:
        keep = set(args.only.split(","))
        unknown = keep - {i.study for i in full_plan}
        if unknown:
            raise SystemExit(
                f"--only: {', '.join(sorted(unknown))} not in the plan; valid: {', '.join(i.study for i in full_plan)}"
            )
        plan = tuple(i for i in full_plan if i.study in keep)
    if args.estimate:
        rows = estimate(plan)
        for study, minutes in rows:
            print(f"{study:28s} ~{minutes:5.1f} min")
        print(
            f"{'total':28s} ~{sum(m for _, m in rows):5.1f} min of trials (a quiet 2-core machine, every trial to "
            "the end; RQ1's permutation tests come on top)"
        )
        return 0
    out = Path(args.out) if args.out else (OUT_QUICK if quick else OUT_FULL)
    if quick and (out.resolve() == OUT_FULL.resolve()):
        raise SystemExit(f"--out {out}: the quick plan never writes over the committed chapter; use another folder")
    check_installed(("scikit_posthocs", "statsmodels", "kaleido"), "make results")
    storage = args.storage or f"sqlite:///{out / 'results.db'}"
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    estimates = dict(estimate(plan))
    t0 = time.perf_counter()
    timing_path = out / TIMING
    # a database without recordings is a new run: the sums of an earlier one (a committed timing.json) do not apply
    timing = load_timing(timing_path if _has_recordings(storage) else None)
    before_s = float(timing["total_s"])
    timing["invocations"] = int(timing["invocations"]) + 1

    def save_timing() -> None:
        timing["total_s"] = before_s + time.perf_counter() - t0
        timing_path.write_text(json.dumps(timing, indent=1, sort_keys=True))

    load_start = _load_average()
    outcomes, failed = [], {}
    done_est = 0.0
    for k, it in enumerate(plan, start=1):
        spent = (time.perf_counter() - t0) / 60
        print(
            f"[{k}/{len(plan)}] {it.study}: {spent:.1f} min spent, ~{done_est:.0f} of ~{sum(estimates.values()):.0f} "
            f"estimated min done (load {_load_average()})",
            flush=True,
        )
        try:
            outcome = run_item(
                it,
                storage_url=storage,
                out=out,
                quick=quick,
                plan=full_plan,
                permutations=QUICK_PERMUTATIONS if quick else None,
                bootstraps=QUICK_BOOTSTRAPS if quick else None,
                log=lambda s: print(s, flush=True),
            )
            studies = timing["studies"]
            studies[it.study] = float(studies.get(it.study, 0.0)) + outcome.seconds
            outcome.seconds = studies[it.study]  # what the study took over every invocation
            outcomes.append(outcome)
            save_timing()
        except (ValueError, RuntimeError, OSError) as e:  # one study's problem (data missing, ...) ends only it
            failed[it.study] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"[{it.study}] not done: {failed[it.study]}", flush=True)
        done_est += estimates[it.study]
    plan_name = (
        ("quick" if quick else "full")
        + " plan"
        + (f" restricted with `--only` to {len(plan)} of its {len(full_plan)} studies" if args.only else "")
    )
    load_end = _load_average()
    timing["loads"] = [*timing["loads"], [load_start, load_end]]
    save_timing()
    path = write_chapter(
        outcomes,
        out,
        plan_name=plan_name,
        plan=plan,
        seconds=timing["total_s"],
        invocations=(timing["invocations"], time.perf_counter() - t0),
        storage_url=storage,
        failed=failed,
        load=[tuple(x) for x in timing["loads"]],
    )
    print(f"wrote {path} in {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
