"""Live: what the dry run buys on time and memory budgets — `budget` against `none` and `threshold`, paired over
seeds, with the pruning ceiling and the dry run's own cost.

For each budget (``--budget cpu_s=0.36`` and/or ``--budget peak_rss_delta_mb=33.5``; `make results` sets them to
the median of a 60-trial random recording of the same study), the study runs once per policy and seed (TPE, the
same seeds for every policy, one database), exactly as ``sysprune compare`` does; then per budget:

* compute-to-target of each policy (the compute until its best feasible value reaches `none`'s, within one
  binomial standard error of the validation accuracy), and the saving of `budget` against `none` and `threshold`:
  geometric mean over seeds with a 95 % t interval on the log-ratios and the paired t test's p;
* `none`'s ceiling: its compute-to-target had every over-budget trial cost nothing, and the share of that ceiling
  `budget` reaches (saving vs `none` / ceiling saving, on the geometric means);
* the dry run's share of the search's compute (``dry_run_cpu_s`` summed over the `budget` runs' trials, over their
  compute) and where `budget` decided (how many trials pruned at step -1, by a dry-run prediction or its measured
  peak, and later).

Usage: python benchmarks/bench_dry_run.py [--study studies/rq2_time_mlp_digits.toml] [--budget cpu_s=0.36]
           [--seeds 10] [--trials 20] [--storage sqlite:///results/bench_dry_run.db] [--sampler tpe|random]

With ``--sampler random`` every policy runs the same trials in the same order (the sampler's draws do not depend
on what was pruned), so a saving is what pruning saved, free of the search-path noise TPE adds (a pruned trial's
constraint steers TPE elsewhere); the total compute of the searches is printed paired as well.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import optuna

from sysprune import load_step_metrics
from sysprune.analysis._compare import collect, run_compare, seeds_of
from sysprune.analysis._inference import ratio_ci
from sysprune.analysis._summary_tables import saving_ratios
from sysprune.spec import load_spec

from _machine import cpu_name

POLICIES = ["none", "budget", "threshold"]


def _fmt(e) -> str:
    if e.point is None:
        return "—"
    ci = f" [{e.lo:.2f}, {e.hi:.2f}], p {e.p:.3g}" if e.lo is not None and e.p is not None else ""
    return f"{e.point:.2f}x{ci} (n={e.n})"


def run(study: Path, metric: str, budget: float, seeds: int, trials: int, storage: str, sampler: str = "tpe") -> None:
    spec = load_spec(study)
    spec = replace(spec, name=f"{spec.name}.dry.{metric}.{sampler}", budgets={metric: budget})
    seed_list = seeds_of(spec, seeds)
    t0 = time.perf_counter()
    run_compare(spec, POLICIES, seed_list, storage_url=storage, sampler=sampler, n_trials=trials, log=lambda s: None)
    result = collect(
        spec, POLICIES, seed_list, storage_url=storage, sampler=sampler, tolerance=None, n_val=_n_val(spec)
    )
    print(
        f"\n## {spec.name}: {metric} <= {budget:g}, {seeds} seeds x {trials} trials ({sampler}),"
        f" {time.perf_counter() - t0:.0f} s"
    )
    vs_none = ratio_ci(saving_ratios(result, "budget", "none"))
    vs_thr = ratio_ci(saving_ratios(result, "budget", "threshold"))
    ceiling = []
    for s in seed_list:
        r = result.runs[("none", s)]
        if r.ctt and r.ceiling_ctt:
            ceiling.append(r.ctt / r.ceiling_ctt)
    ceil = ratio_ci(ceiling)
    print(f"budget vs none:      {_fmt(vs_none)}")
    print(f"budget vs threshold: {_fmt(vs_thr)}")
    print(f"ceiling (none, over-budget trials free): {_fmt(ceil)}")
    if vs_none.point and ceil.point and ceil.point > 1:
        print(f"share of the ceiling reached: {math.log(vs_none.point) / math.log(ceil.point):.0%} (on the log scale)")
    for other in ("none", "threshold"):
        total = ratio_ci([result.runs[(other, s)].compute / result.runs[("budget", s)].compute for s in seed_list])
        print(f"total compute of the search, {other} / budget: {_fmt(total)}")
    for p in POLICIES:
        runs = [result.runs[(p, s)] for s in seed_list]
        reached = sum(r.ctt is not None for r in runs)
        compute = sum(r.compute for r in runs)
        print(f"  {p:10s} compute {compute:7.1f} CPU s over {seeds} seeds, target reached at {reached}/{seeds}")
    dry = pre = later = 0
    dry_cpu = wasted = compute = 0.0
    for s in seed_list:
        name = result.runs[("budget", s)].study_name
        df = load_step_metrics(storage, name)
        at_pre = df[df.step == -1].set_index("trial_number")
        compute += result.runs[("budget", s)].compute
        st = optuna.load_study(study_name=name, storage=storage)
        for t in st.trials:
            d_cpu = float(at_pre.dry_run_cpu_s.get(t.number, 0.0)) if "dry_run_cpu_s" in at_pre else 0.0
            d_cpu = 0.0 if math.isnan(d_cpu) else d_cpu
            dry_cpu += d_cpu
            if t.state.name != "PRUNED":
                continue
            if (t.user_attrs.get("prune_detail") or {}).get("step") == -1:
                pre += 1
                wasted += d_cpu  # its batches were never continued
                dry += "dry run" in (t.user_attrs.get("prune_reason") or "")
            else:
                later += 1
    if compute:
        print(
            f"budget: pruned at step -1 {pre} (by a dry-run prediction {dry}; the rest on a measured value), later"
            f" {later}; dry runs {dry_cpu:.2f} CPU s = {dry_cpu / compute:.1%} of the search's compute (the"
            f" batches of a trial that went on are its step 0's training), of which in trials pruned at step -1"
            f" {wasted:.2f} CPU s = {wasted / compute:.1%}"
        )


def _n_val(spec) -> int:
    from sysprune.datasets import read_meta
    from sysprune.study._dataset import prepare_dataset

    return int(read_meta(prepare_dataset(spec, spec.seed)).get("sizes", {}).get("val", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, default=Path("studies/rq2_time_mlp_digits.toml"))
    ap.add_argument("--budget", action="append", default=None, help="metric=value (repeatable)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--storage", default="sqlite:///results/bench_dry_run.db")
    ap.add_argument(
        "--sampler",
        choices=("tpe", "random"),
        default="tpe",
        help="tpe: the search as users run it; random: every policy sees the same trials, so the policies differ"
        " only in what they prune (no search-path noise)",
    )
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"# bench_dry_run on {cpu_name()} ({__import__('os').cpu_count()} CPUs)")
    for item in a.budget or ["cpu_s=0.36"]:
        metric, _, value = item.partition("=")
        run(a.study, metric, float(value), a.seeds, a.trials, a.storage, a.sampler)


if __name__ == "__main__":
    main()
