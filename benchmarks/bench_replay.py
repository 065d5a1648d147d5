"""How fast ``sysprune replay`` is: 6 policies x (1 recorded + 20 shuffled) orders over a 200-trial, 10-step
recording (synthetic learning curves and metrics, so no training is needed), with the real pruners on in-memory
studies. The goal is seconds. Usage: python benchmarks/bench_replay.py [--trials 200] [--steps 10] [--orders 20]
"""

from __future__ import annotations

import argparse
import math
import random
import time

import optuna

from sysprune.analysis._recording import RecordedTrial, Recording
from sysprune.analysis._replay import replay

from bench_overhead import machine

POLICIES = ["none", "median", "hyperband", "budget", "curve", "combined"]


def synthetic(n_trials: int, steps: int, seed: int = 0) -> Recording:
    rng = random.Random(seed)
    trials = []
    for i in range(n_trials):
        width = int(math.exp(rng.uniform(math.log(16), math.log(1024))))
        ceiling, speed = rng.uniform(0.5, 0.98), rng.uniform(0.1, 1.5)
        cost = 0.002 * width
        rows = []
        for s in range(steps):
            acc = ceiling * (1 - math.exp(-speed * (s + 1))) + rng.gauss(0, 0.005)
            rows.append(
                (
                    s,
                    acc,
                    {
                        "val_accuracy": acc,
                        "cpu_s": cost * (s + 1),
                        "wall_s": cost * (s + 1) * 1.1,
                        "n_params": width * 80.0,
                        "infer_ms": 1e-5 * width * rng.uniform(0.95, 1.05),
                    },
                )
            )
        final = {k: v for k, v in rows[-1][2].items()}
        trials.append(
            RecordedTrial(i, {"width": width}, {}, rows, [rows[-1][1]], {s: m["cpu_s"] for s, _, m in rows}, final)
        )
    budgets = {"n_params": 80.0 * 200}  # about 60 % of the widths are over it
    return Recording("bench", ["maximize"], budgets, steps, "val_accuracy", trials)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--orders", type=int, default=20)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rec = synthetic(args.trials, args.steps)
    print(f"machine: {machine()}")
    t = time.perf_counter()
    res = replay(rec, POLICIES, n_orders=args.orders)
    total = time.perf_counter() - t
    print(
        f"{len(POLICIES)} policies x {args.orders + 1} orders x {args.trials} trials x {args.steps} steps: "
        f"{total:.2f} s in all"
    )
    for p in POLICIES:
        r = res.replays[p]
        n = len(r.results) * args.trials
        print(
            f"  {p:<10} {r.seconds:6.2f} s  ({r.seconds / n * 1e3:.2f} ms per trial)  "
            f"pruned/order {sum(len(o.pruned) for o in r.results) / len(r.results):.0f}"
        )


if __name__ == "__main__":
    main()
