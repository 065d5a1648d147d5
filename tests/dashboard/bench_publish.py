"""Cost of DashboardPublisher per finished trial, as the runner calls it (not a test; run by hand).

    .venv/bin/python tests/dashboard/bench_publish.py [--trials 100] [--steps 20]

Builds a study trial by trial in a fresh SQLite file (WAL + synchronous=NORMAL, as the runner's storage), every
system metric measured at every step; after each ``study.tell`` it times one publisher call. For comparison it then
times the same publication through optuna-dashboard's public per-key writers (``save_plotly_graph_object`` for each
figure + ``save_note``) at the final study size.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from sysprune.metrics._registry import metric_names, system_metric_names
from sysprune.storage._step_table import MetricStore, tune_sqlite_engine
from sysprune._compat import trial_id  # a script, run without tests/ on its path
from sysprune.dashboard import DashboardPublisher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    url = f"sqlite:///{root / 'study.db'}"
    storage = optuna.storages.RDBStorage(url)
    tune_sqlite_engine(storage.engine)
    study = optuna.create_study(storage=storage, study_name="bench", direction="maximize")
    study.set_user_attr("budgets", {"peak_rss_mb": 700.0, "wall_s": 30.0})
    store = MetricStore(url)
    publisher = DashboardPublisher(root / "artifacts")
    rng = random.Random(0)
    costs = []
    for i in range(args.trials):
        t = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        base = 500 + 300 * rng.random()
        pruned = rng.random() < 0.3
        steps = rng.randint(1, args.steps // 2) if pruned else args.steps
        for s in range(steps):
            metrics = {m: rng.random() for m in metric_names()}
            metrics.update(
                wall_s=0.1 * (s + 1), rss_mb=base + s, peak_rss_mb=base + s + 3, energy_j=None, gpu_mem_mb=None
            )
            store.write_step(study_name="bench", trial_id=trial_id(t), trial_number=t.number, step=s, metrics=metrics)
            t.report(metrics["val_accuracy"], s)
        if pruned:
            t.set_user_attr("prune_reason", f"peak_rss_mb {base + 3:.1f} MiB over budget 700 MiB at step {steps - 1}")
            frozen = study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            frozen = study.tell(t, metrics["val_accuracy"])
        t0 = time.perf_counter()
        publisher(study, frozen)
        costs.append(time.perf_counter() - t0)

    ms = [1000 * c for c in costs]
    last = ms[-10:]
    print(f"{args.trials} trials x up to {args.steps} steps, {len(metric_names()) - 2} metrics measured per step")
    print(
        f"publisher per trial: mean {statistics.mean(ms):.1f} ms, median {statistics.median(ms):.1f} ms, "
        f"p95 {sorted(ms)[int(0.95 * len(ms)) - 1]:.1f} ms, first {ms[0]:.1f} ms, "
        f"last 10 (study of ~{args.trials}) median {statistics.median(last):.1f} ms"
    )

    from optuna_dashboard import save_note, save_plotly_graph_object
    import plotly.graph_objects as go

    from sysprune.dashboard._curves import finished_trials
    from sysprune.dashboard._figures import FigureBuilder

    curves = list(publisher._cache.values())[0]
    ordered = [curves[trial_id(t)] for t in finished_trials(study)]
    t0 = time.perf_counter()
    figures = FigureBuilder().study_figures(ordered, system_metric_names(), {})
    built = time.perf_counter()
    for fid, fig in figures.items():
        save_plotly_graph_object(study, go.Figure(json.loads(fig)), graph_object_id="naive-" + fid)
    save_note(study, "x" * 3000)
    done = time.perf_counter()
    print(
        f"for comparison, optuna-dashboard's public writers at {args.trials} trials: "
        f"{1000 * (done - built):.0f} ms to save the same {len(figures)} figures + a note "
        f"(plus {1000 * (built - t0):.0f} ms to encode every line afresh)"
    )


if __name__ == "__main__":
    main()
