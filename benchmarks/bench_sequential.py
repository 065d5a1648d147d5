"""Benchmark: false-prune and detection rates of the budget pruner's sequential decisions, by simulation.

Three parts, each printing a table (rates over ``--trials`` simulated trials, fixed seeds):

``noise``     The noisy-metric test on its own (:func:`sysprune.pruners._noise.confident_breach`), readings drawn
              from the latency probe's measured noise (``LATENCY_NOISE``: 1,000 probes on this machine under load,
              benchmarks/bench_noise.py), with the probe's lower bound (the runner) and without (a plain objective
              that reports only ``infer_ms``), for 2 readings (the runner's schedule), 10 and 50 (a probe every
              step): how many trials are pruned, and how many within two decisions.
``plain``     A plain Optuna objective through the public API — ask/tell, ``sysprune.report`` and
              ``sysprune.should_prune`` at each of 10 steps — reporting a flat latency plus noise: uniform over
              +-5 % of the budget, normal with sd 2.5 % and 5 % of the budget, or the measured probe noise.
``forecast``  Cumulative costs (``wall_s``) with a noisy cost per step, forecast at every step by the budget
              pruner's forecast: a 95 % bound at every step (before) against the trial's error budget shared over
              its forecasts (now). A false prune is a trial pruned whose final total is within the budget; the
              decision step is the median step at which over-budget trials are pruned (the end if never).

``replay``    Not run by default (it needs recordings): ``sysprune replay``'s simulation of ``budget``, ``curve`` and
              ``combined`` (its default members: budget + curve) over the
              recorded order and 20 shuffled ones of each ``--recording NAME:METRIC`` in ``--storage``, the
              budget on METRIC set at the recording's median (half the trials over it, as ``make results`` does):
              compute, saving against ``none`` and against ``budget``, false prunes of the best feasible trial.
              Record with policy ``none`` and a random sampler, e.g. a copy of studies/rq2_size_mlp_digits.toml
              with ``[sampler] name = "random"``, ``[pruner] policy = "none"``, ``n_trials = 48``.

Nothing here trains a model; the ``plain`` part makes Optuna studies in memory. Run time with the defaults:
~1-2 min on the 2-core VM at load ~1; ``replay``, ~20 s per 48-trial recording.

Usage: python benchmarks/bench_sequential.py [--trials 2000] [--parts noise,plain,forecast] [--seed 0]
       python benchmarks/bench_sequential.py --parts replay --storage sqlite:///rec.db --recording rq2_size:model_bytes
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
from optuna.trial import TrialState

import sysprune
from bench_overhead import machine
from sysprune.pruners._budget import _forecasts
from sysprune.pruners._forecast import forecast_cumulative
from sysprune.pruners._noise import LATENCY_NOISE, Reading, confident_breach

TRUE_RATIOS = (0.9, 1.0, 1.1, 1.2)


def _probe_draws(rng: np.random.Generator, true: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Readings and lower bounds of probes of a configuration at ``true`` x the budget (1): one uniform draw per
    probe through the measured quantiles, so a probe slowed as a whole moves both."""
    u = rng.random(shape)
    probs = np.array(LATENCY_NOISE.probs)
    values = true * np.interp(u, probs, LATENCY_NOISE.value)
    lows = np.minimum(true * np.interp(u, probs, np.array(LATENCY_NOISE.low)), values)
    return values, lows


def part_noise(n: int, seed: int) -> None:
    print("\n## noise: the noisy-metric test, measured probe noise (budget 1)\n")
    print("| true / budget | readings | lower bound | pruned | within 2 decisions |")
    print("|---|---|---|---|---|")
    for true in TRUE_RATIOS:
        for k in (2, 10, 50):
            for with_low in (True, False):
                values, lows = _probe_draws(np.random.default_rng(seed), true, (n, k))
                decisions = []
                for v, lo in zip(values, lows):
                    rs = [Reading(i, float(a), float(b) if with_low else None) for i, (a, b) in enumerate(zip(v, lo))]
                    b = confident_breach(rs, 1.0, LATENCY_NOISE)
                    decisions.append(None if b is None else b.decision)
                pruned = sum(d is not None for d in decisions) / n
                early = sum(d is not None and d <= 2 for d in decisions) / n
                print(f"| {true} | {k} | {'yes' if with_low else 'no'} | {pruned:.2%} | {early:.2%} |")


def _plain_study(true: float, noise: str, n: int, seed: int, steps: int = 10) -> list[int | None]:
    rng = np.random.default_rng(seed)
    study = optuna.create_study(
        direction="maximize", pruner=sysprune.ResourceBudgetPruner({"infer_ms": 1.0}, max_steps=steps)
    )
    out: list[int | None] = []
    for _ in range(n):
        trial = study.ask()
        if noise == "measured":
            readings = _probe_draws(rng, true, (steps,))[0]
        elif noise == "uniform 5%":
            readings = true + rng.uniform(-0.05, 0.05, steps)
        else:
            readings = true + rng.normal(0.0, float(noise.split()[-1].rstrip("%")) / 100, steps)
        pruned = None
        for step in range(steps):
            sysprune.report(trial, step, 0.5, {"infer_ms": float(readings[step])})
            if sysprune.should_prune(trial):
                pruned = step + 1
                break
        study.tell(trial, state=TrialState.PRUNED) if pruned else study.tell(trial, 0.5)
        out.append(pruned)
    return out


def part_plain(n: int, seed: int) -> None:
    print("\n## plain: an objective reporting infer_ms at each of 10 steps (public API, budget 1 ms)\n")
    print("| noise | true / budget | pruned | within 2 decisions | trials/s |")
    print("|---|---|---|---|---|")
    for noise in ("uniform 5%", "normal sd 2.5%", "normal sd 5%", "measured"):
        for true in TRUE_RATIOS:
            t = time.perf_counter()
            d = _plain_study(true, noise, n, seed)
            rate = n / (time.perf_counter() - t)
            pruned = sum(x is not None for x in d) / n
            early = sum(x is not None and x <= 2 for x in d) / n
            print(f"| {noise} | {true} | {pruned:.2%} | {early:.2%} | {rate:.0f} |")


def _forecast_run(ratio: float, steps: int, sd: float, n: int, seed: int, *, shared: bool) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    budget, false, at = float(steps), 0, []
    for _ in range(n):
        totals = np.cumsum(np.maximum(rng.normal(ratio, sd * ratio, steps), 0.0))
        stop = steps
        for s in range(steps - 1):
            if totals[s] > budget:  # measured: exact
                stop = s
                break
            if shared:
                pts = {i: {"wall_s": float(totals[i])} for i in range(s + 1)}
                f = _forecasts(pts, {"wall_s": budget}, steps - 1, 0.05, 0).get("wall_s")
            else:
                f = forecast_cumulative([(i, float(totals[i])) for i in range(s + 1)], steps - 1, confidence=0.95)
            if f is not None and f.low > budget:
                stop = s
                false += bool(totals[-1] <= budget)
                break
        at.append(stop)
    return false / n, float(np.median(at))


def part_forecast(n: int, seed: int) -> None:
    print("\n## forecast: cumulative cost, forecast at every step (budget = steps x 1.0 per step)\n")
    print(
        "| steps | sd of cost/step | cost / budget | false prunes: 95 % each step | shared | decision step: before | shared |"
    )
    print("|---|---|---|---|---|---|---|")
    m = max(200, n // 4)
    for steps in (8, 20):
        for sd in (0.1, 0.3):
            for ratio in (0.95, 1.0, 1.1, 1.3, 2.0):
                f0, s0 = _forecast_run(ratio, steps, sd, m, seed, shared=False)
                f1, s1 = _forecast_run(ratio, steps, sd, m, seed, shared=True)
                print(f"| {steps} | {sd:.0%} | {ratio} | {f0:.2%} | {f1:.2%} | {s0:g} | {s1:g} |")


def part_replay(storage: str, recordings: list[str]) -> None:
    from sysprune.analysis import _replay
    from sysprune.analysis._plan import derive_budget
    from sysprune.analysis._recording import load_recording

    print("\n## replay: budget, curve and combined (budget + curve) over the recorded order and 20 shuffled ones\n")
    print("| recording | budget | policy | compute (CPU s, median) | saving vs none | vs budget | best pruned |")
    print("|---|---|---|---|---|---|---|")
    for spec in recordings:
        name, metric = spec.split(":")
        values = [t.final[metric] for t in load_recording(storage, name).trials if metric in t.final]
        budget = derive_budget(values, 0.5)
        rec = load_recording(storage, name, {metric: budget})
        res = _replay.replay(rec, ["none", "budget", "curve", "combined"], n_orders=20)
        compute = {p: float(np.median([r.compute for r in res.replays[p].results])) for p in res.policies}
        for p in ("budget", "curve", "combined"):
            rs = res.replays[p].results
            fp = sum(bool(r.best_pruned) for r in rs)
            print(
                f"| {name} ({len(rec.trials)} trials) | {metric} <= {budget:g} | {p} | {compute[p]:.2f} |"
                f" {compute['none'] / compute[p]:.2f}x | {compute['budget'] / compute[p]:.2f}x | {fp}/{len(rs)} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=2000, help="simulated trials per cell")
    ap.add_argument("--parts", default="noise,plain,forecast")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--storage", default="sqlite:///results/sysprune.db", help="where the recordings are (replay)")
    ap.add_argument("--recording", action="append", default=[], help="NAME:METRIC, a recording to replay")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"# bench_sequential — {machine()}")
    t0 = time.perf_counter()
    parts = {"noise": part_noise, "plain": part_plain, "forecast": part_forecast}
    for name in args.parts.split(","):
        if name.strip() == "replay":
            part_replay(args.storage, args.recording)
        else:
            parts[name.strip()](args.trials, args.seed)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
