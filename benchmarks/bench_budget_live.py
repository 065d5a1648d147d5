"""Live check: on the default digits study with a latency budget that part of the search space breaks, how much
compute does the `budget` policy spend against `none`, and does it find a feasible best at least as good?

Both policies run the same trials: a RandomSampler with the same seed draws the same hyperparameters whatever the
pruner does, so the difference is the pruning alone. (A second pair with TPE shows the sampler learning from the
infeasible trials' constraints; there the trials differ by design.)

Compute = the sum over trials of each trial process's total CPU seconds (user attr ``process_cpu_s``: training,
probes, set-up and a step cut short by a prune, all included).
Usage: python benchmarks/bench_budget_live.py [--trials 20] [--infer-ms 0.004] [--sampler random|tpe|both]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from dataclasses import replace

import optuna
from optuna.trial import TrialState

from sysprune.study._runner import run_study
from sysprune.spec import PrunerSpec, SamplerSpec, load_spec
from sysprune.pruners import validate_policy

from bench_overhead import machine


def run(policy: str, sampler: str, trials: int, budget: float, url: str) -> dict:
    spec = load_spec(Path(__file__).resolve().parents[1] / "studies" / "digits_mlp.toml")
    budgets = {"infer_ms": budget}
    _, params = validate_policy(policy, {}, steps=spec.steps, budgets=budgets)
    spec = replace(
        spec,
        name=f"{policy}-{sampler}",
        n_trials=trials,
        budgets=budgets,
        pruner=PrunerSpec(policy, params),
        sampler=SamplerSpec(sampler, n_startup_trials=5),
    )
    study = run_study(spec, storage_url=url).study
    trials_ = study.get_trials(deepcopy=False)
    cpu = sum(t.user_attrs.get("process_cpu_s", 0.0) for t in trials_)
    train_cpu = sum(t.user_attrs.get("cpu_s", 0.0) for t in trials_)
    over = sum(1 for t in trials_ if t.user_attrs.get("infer_ms", 0.0) > budget)
    try:
        best = study.best_trial  # feasible only: budget constraints are on every finished trial
        best_s = f"{best.value:.4f} (#{best.number}, infer_ms {best.user_attrs['infer_ms']:.4f})"
    except ValueError:
        best_s = "none feasible"
    return {
        "policy": policy,
        "sampler": sampler,
        "complete": sum(t.state == TrialState.COMPLETE for t in trials_),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials_),
        "over": over,
        "cpu": cpu,
        "train_cpu": train_cpu,
        "best": best_s,
        "params": [t.params for t in trials_],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--infer-ms", type=float, default=0.004)
    ap.add_argument("--sampler", choices=["random", "tpe", "both"], default="both")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"machine: {machine()}")
    print(f"digits_mlp, {args.trials} trials x 8 steps, budget infer_ms <= {args.infer_ms}\n")
    samplers = ["random", "tpe"] if args.sampler == "both" else [args.sampler]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/live.db"
        print(
            f"{'sampler':<8} {'policy':<7} {'complete':>8} {'pruned':>6} {'over budget':>11} "
            f"{'process cpu_s':>13} {'training cpu_s':>14}  best feasible val_accuracy"
        )
        for sampler in samplers:
            rows = [run(policy, sampler, args.trials, args.infer_ms, url) for policy in ("none", "budget")]
            for r in rows:
                print(
                    f"{r['sampler']:<8} {r['policy']:<7} {r['complete']:>8} {r['pruned']:>6} {r['over']:>11} "
                    f"{r['cpu']:>13.1f} {r['train_cpu']:>14.1f}  {r['best']}"
                )
            none, budget = rows
            same = "same trials" if none["params"] == budget["params"] else "different trials (sampler adapts)"
            print(f"{'':<8} budget spends {100 * budget['cpu'] / none['cpu']:.0f} % of none's process CPU ({same})\n")


if __name__ == "__main__":
    main()
