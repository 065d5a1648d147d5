"""Benchmark: does throughput grow with workers, and what does a trial cost the worker and its trial process?

Public API only (``sysprune.run_study``, ``sysprune.register_model``, ``sysprune.load_step_metrics``; Optuna's own
API for the anchor). Sections (``--sections``, default all):

``scale``
    Trials that only *wait* (``bench_wait``: ``--steps`` x ``--step-s`` of ``time.sleep``, so the CPUs are not the
    limit) and trials that burn CPU (``bench_spin``), registered through ``sysprune.register_model``
    (``_scale_workloads.py``), TPE, ``--trials`` trials per run, at each of ``--workers`` worker counts, on SQLite,
    PostgreSQL (``SYSPRUNE_BENCH_POSTGRES_URL``, else ``SYSPRUNE_TEST_POSTGRES_URL``) and a local Ray cluster (with
    PostgreSQL storage when there is one, else SQLite). In the same run, the **anchor**: plain Optuna with the same
    number of processes (Ray tasks on Ray) on the same storage running the same steps in-process (``trial.report`` +
    ``trial.should_prune`` each step, the same TPE settings and a no-op pruner, as the sysprune study's ``none``
    policy). Printed per row: trials/min from the trials' own times in the database (first start to last
    completion: process start-up is not in it), the ratio sysprune / plain Optuna, the worker's own CPU per trial
    (sysprune: the trials' ``worker_cpu_s``; plain: the process's thread CPU in ``optimize`` minus the steps'
    own CPU) and the trial process's CPU per trial (``process_cpu_s``: a waiting trial trains nothing, so all of it
    is the fixed cost: start, data view, probes, exit).
``fixed``
    The trial-process fixed cost of a real model: ``--fixed-trials`` digits MLP trials (studies/digits_mlp.toml's
    space, ``--steps`` steps, policy ``budget`` with an ``n_params`` budget so the step -1 probe decides), the
    CPU each trial process spent beyond its training steps (``process_cpu_s`` minus the training's ``cpu_s`` from
    step -1 to the last step): fork, data view, model build, probes, exit.
``profile``
    One sysprune worker (in this process) running waiting trials on SQLite under ``py-spy`` (when installed): the
    functions where the worker's time goes, by own CPU share.

Acceptance (issue 16): waiting trials on SQLite at 1 and 8 workers >= 0.8x plain Optuna; PostgreSQL at 32 workers
>= 0.8x; the worker's CPU per trial <= plain Optuna's; the fixed trial-process CPU <= 50 ms for a digits MLP.
Prints the machine and its load average before and after: on a busy machine the ratios, not the rates, are the
result. ``--quick`` checks the script on a small configuration (1 and 4 workers, 12 trials, SQLite, waiting trials).

Usage: python benchmarks/bench_scale.py [--quick] [--workers 1,2,4,8,16,32] [--trials 32] [--kinds wait,spin]
       [--storages sqlite,postgresql,ray] [--steps 4] [--step-s 0.25] [--sections scale,fixed,profile]
       [--repeat R]

``--repeat R`` runs each row's pair R times (alternating which side goes first) and prints, per row, the geometric
mean ratio of throughput and of the worker's CPU per trial (sysprune / plain) with a 95 % t interval and the paired
t-test's p over the R runs: on a shared machine one run's ratio is often inside the noise.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import optuna

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # _scale_workloads, for this process
# ... and for every process it starts (spawned workers, fork servers, Ray workers)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH")) if p)

import sysprune  # noqa: E402
from _machine import cpu_name  # noqa: E402

N_STARTUP = 10  # TPE's random start-up trials, both sides

STUDY = """
name = "bench_scale"
model = "bench_{kind}"
plugins = ["_scale_workloads"]
steps = {steps}
n_trials = {trials}
seed = 0
[dataset]
name = "digits"
[sampler]
name = "tpe"
n_startup_trials = {n_startup}
[pruner]
policy = "none"
[search_space]
x = {{type = "float", low = 0.0, high = 1.0}}
step_s = {step_s}
"""


def machine() -> str:
    cpu = cpu_name()
    return (
        f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}) | "
        f"Python {platform.python_version()} | optuna {optuna.__version__} | load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )


def _spec(tmp: Path, kind: str, steps: int, step_s: float, trials: int) -> sysprune.StudySpec:
    path = tmp / f"bench_{kind}.toml"
    path.write_text(STUDY.format(kind=kind, steps=steps, trials=trials, step_s=step_s, n_startup=N_STARTUP))
    return sysprune.load_spec(path)


def _rate(trials: list[optuna.trial.FrozenTrial]) -> float:
    done = [t for t in trials if t.datetime_complete is not None and t.datetime_start is not None]
    first = min(t.datetime_start for t in done)  # type: ignore[type-var]
    last = max(t.datetime_complete for t in done)  # type: ignore[type-var]
    return len(done) / max((last - first).total_seconds(), 1e-9) * 60.0


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.1f}"


def run_sysprune(spec: Any, url: str, n: int, *, ray: str | None) -> dict[str, Any]:
    name = f"scale_{uuid.uuid4().hex[:8]}"
    t = time.perf_counter()
    sysprune.run_study(spec, storage_url=url, study_name=name, workers=n, oversubscribe=True, ray_address=ray)
    wall = time.perf_counter() - t
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    states = {t.state.name for t in trials}
    worker = [t.user_attrs["worker_cpu_s"] for t in trials if "worker_cpu_s" in t.user_attrs]
    process = [t.user_attrs["process_cpu_s"] for t in trials if "process_cpu_s" in t.user_attrs]
    return {
        "trials": len(trials),
        "states": states,
        "rate": _rate(trials),
        "wall": wall,
        "worker_cpu": _mean(worker),
        "process_cpu": _mean(process),
    }


def _shares(trials: int, n: int) -> list[int]:
    return [trials // n + (i < trials % n) for i in range(n)]


def run_plain(url: str, kind: str, steps: int, step_s: float, trials: int, n: int, *, ray: bool) -> dict[str, Any]:
    import _scale_workloads as w

    name = f"plain_{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=url, direction="maximize")
    args = [(url, name, kind, steps, step_s, share, i, N_STARTUP) for i, share in enumerate(_shares(trials, n))]
    t = time.perf_counter()
    if ray:
        import ray as ray_mod

        task = ray_mod.remote(num_cpus=1, max_calls=1)(w.plain_worker)
        results = ray_mod.get([task.remote(*a) for a in args])
    else:
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=w.plain_process, args=(a, out)) for a in args]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
    wall = time.perf_counter() - t
    trials_ = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    ran = sum(r[0] for r in results)
    return {
        "trials": len(trials_),
        "states": {t.state.name for t in trials_},
        "rate": _rate(trials_),
        "wall": wall,
        "worker_cpu": sum(r[1] for r in results) / ran,
        "process_cpu": None,
    }


def _geo_ci(ratios: list[float]) -> tuple[float, float, float, float]:
    """Geometric mean of ``ratios``, its 95 % t interval, and the paired t-test's two-sided p (log ratio = 0)."""
    from scipy import stats

    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    sd = statistics.stdev(logs)
    half = stats.t.ppf(0.975, len(logs) - 1) * sd / math.sqrt(len(logs))
    p = float(stats.ttest_1samp(logs, 0.0).pvalue) if sd > 0 else 0.0
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half), p


def _paired_summary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """Throughput ratio and worker-CPU ratio (sysprune / plain) over paired runs: geometric mean [95 % CI], p."""
    rate = _geo_ci([s["rate"] / p["rate"] for s, p in pairs])
    cpu = _geo_ci([s["worker_cpu"] / p["worker_cpu"] for s, p in pairs])
    return (
        f"throughput {rate[0]:.2f}x [{rate[1]:.2f}, {rate[2]:.2f}] (p {rate[3]:.2g}); "
        f"worker CPU per trial {cpu[0]:.2f}x [{cpu[1]:.2f}, {cpu[2]:.2f}] (p {cpu[3]:.2g})"
    )


def scale(args: argparse.Namespace, tmp: Path, urls: dict[str, str]) -> None:
    print(
        f"\n== scale: {args.trials} trials x {args.steps} steps x {args.step_s} s, TPE; plain Optuna = the same "
        "steps in N processes on the same storage, same run"
    )
    head = (
        f"   {'storage':<10} {'kind':<5} {'N':>3}  {'sysprune/min':>12} {'plain/min':>9} {'ratio':>6}  "
        f"{'worker ms/trial':>15} {'plain ms/trial':>14} {'trial-proc ms':>13}  {'e2e s':>11}  states"
    )
    print(head)
    ray_started = False
    for storage in args.storages:
        if storage == "ray":
            import ray

            if not ray_started:
                ray.init(num_cpus=max(args.workers), include_dashboard=False, logging_level="WARNING")
                ray_started = True
            url = urls.get("postgresql", urls["sqlite"])
        else:
            url = urls[storage]
        for kind in args.kinds:
            spec = _spec(tmp, kind, args.steps, args.step_s, args.trials)
            for n in args.workers:
                pairs = []
                for r in range(args.repeat):
                    # alternate which side runs first: a drift in the machine's load then favours neither
                    plain_first = r % 2 == 1
                    if plain_first:
                        p = run_plain(url, kind, args.steps, args.step_s, args.trials, n, ray=storage == "ray")
                    s = run_sysprune(spec, url, n, ray="" if storage == "ray" else None)
                    if not plain_first:
                        p = run_plain(url, kind, args.steps, args.step_s, args.trials, n, ray=storage == "ray")
                    pairs.append((s, p))
                    states = ",".join(sorted(s["states"] | p["states"]))
                    count_ok = "" if (s["trials"], p["trials"]) == (args.trials, args.trials) else " COUNT!"
                    print(
                        f"   {storage:<10} {kind:<5} {n:>3}  {s['rate']:>12.1f} {p['rate']:>9.1f} "
                        f"{s['rate'] / p['rate']:>6.2f}  {_ms(s['worker_cpu']):>15} {_ms(p['worker_cpu']):>14} "
                        f"{_ms(s['process_cpu']):>13}  {s['wall']:>5.1f}/{p['wall']:<5.1f}  {states}{count_ok}",
                        flush=True,
                    )
                if len(pairs) > 1:
                    print(f"   {'':<10} {'':<5} {n:>3}  over {len(pairs)} paired runs: " + _paired_summary(pairs))
    if ray_started:
        import ray

        ray.shutdown()


FIXED_STUDY = """
name = "bench_fixed"
model = "torch_mlp"
steps = {steps}
n_trials = {trials}
seed = 0
[dataset]
name = "digits"
[sampler]
name = "tpe"
n_startup_trials = 10
[pruner]
policy = "budget"
[budgets]
n_params = 20000
[search_space]
n_layers = {{type = "int", low = 1, high = 3}}
width = {{type = "int", low = 16, high = 256, log = true}}
lr = {{type = "float", low = 1e-4, high = 1e-1, log = true}}
"""


def fixed(args: argparse.Namespace, tmp: Path, urls: dict[str, str]) -> None:
    path = tmp / "fixed.toml"
    path.write_text(FIXED_STUDY.format(steps=args.steps, trials=args.fixed_trials))
    spec = sysprune.load_spec(path)
    name = f"fixed_{uuid.uuid4().hex[:8]}"
    url = urls["sqlite"]
    sysprune.run_study(spec, storage_url=url, study_name=name)
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    df = sysprune.load_step_metrics(url, name)
    fixed_cpu, by_state = [], {}
    for t in trials:
        rows = df[df.trial_number == t.number].set_index("step")
        total = t.user_attrs.get("process_cpu_s")
        if total is None or -1 not in rows.index:
            continue
        trained = float(rows.cpu_s.max() - rows.cpu_s.loc[-1])  # the training steps' own CPU
        fixed_cpu.append(total - trained)
        by_state.setdefault(t.state.name, []).append(total - trained)
    print(
        f"\n== fixed: digits MLP, {len(trials)} trials x {args.steps} steps, policy budget (n_params <= 20000): "
        "trial-process CPU beyond its training steps (fork, data, build, probes, exit)"
    )
    print(f"   all: median {_ms(statistics.median(fixed_cpu))} ms, mean {_ms(_mean(fixed_cpu))} ms (goal <= 50 ms)")
    for state, xs in sorted(by_state.items()):
        print(f"   {state:<9} {len(xs):>3} trials: median {_ms(statistics.median(xs))} ms, max {_ms(max(xs))} ms")


def profile(args: argparse.Namespace, tmp: Path, urls: dict[str, str]) -> None:
    """py-spy over one worker running waiting trials in a fresh interpreter: where the worker's CPU goes."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        print("\n== profile: left out (py-spy is not installed: pip install py-spy)")
        return
    url = f"sqlite:///{tmp / 'profile.db'}"
    out = tmp / "profile.txt"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sysprune\n"
        "spec = sysprune.load_spec(sys.argv[2])\n"
        "sysprune.run_study(spec, storage_url=sys.argv[3], study_name='profile')\n"
    )
    spec = tmp / "bench_wait.toml"
    spec.write_text(
        STUDY.format(kind="wait", steps=args.steps, trials=args.trials, step_s=args.step_s, n_startup=N_STARTUP)
    )
    cmd = [str(exe), "record", "--format", "raw", "--nonblocking", "--rate", "200", "-o", str(out), "--"]
    cmd += [sys.executable, "-c", code, str(HERE), str(spec), url]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not out.exists():
        print(f"\n== profile: py-spy failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
        return
    inclusive: dict[str, int] = {}
    loop = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if " (" in f]
        if not any(f.startswith("Study.optimize ") for f in frames):
            continue  # start-up (imports, the fork server, the study's creation): not the per-trial loop
        n = int(count)
        loop += n
        for frame in {_frame(f) for f in frames}:
            inclusive[frame] = inclusive.get(frame, 0) + n
    print(
        f"\n== profile: one worker, {args.trials} waiting trials on SQLite: {loop} samples of its busy threads "
        f"in the trial loop (py-spy, 200/s, idle left out) = {loop / 200 / args.trials * 1e3:.0f} ms per trial"
    )
    print("   share of those samples with the function on the stack (inclusive), top 30:")
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:30]:
        print(f"   {100 * n / max(loop, 1):5.1f} %  {frame}")


def _frame(f: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``, the site-packages prefix dropped."""
    func, _, where = f.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "python3.11/", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{func} ({path})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small check: 1 and 4 workers, 12 trials, SQLite, wait")
    ap.add_argument("--workers", default="1,2,4,8,16,32")
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--kinds", default="wait,spin")
    ap.add_argument("--storages", default="sqlite,postgresql,ray")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--step-s", type=float, default=0.25)
    ap.add_argument("--fixed-trials", type=int, default=24)
    ap.add_argument("--sections", default="scale,fixed,profile")
    ap.add_argument("--repeat", type=int, default=1, help="paired runs per row (>1: geometric means, 95%% CIs, p)")
    args = ap.parse_args()
    if args.quick:
        args.workers, args.trials, args.kinds, args.storages = "1,4", 12, "wait", "sqlite"
        args.fixed_trials = 8
    args.workers = [int(n) for n in args.workers.split(",")]
    args.kinds = args.kinds.split(",")
    args.storages = args.storages.split(",")
    sections = args.sections.split(",")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print("bench-scale:", machine())
    tmp = Path(tempfile.mkdtemp(prefix="sysprune-bench-scale-"))
    os.environ.setdefault("SYSPRUNE_CACHE_DIR", str(tmp / "cache"))
    urls = {"sqlite": f"sqlite:///{tmp / 'scale.db'}"}
    pg = os.environ.get("SYSPRUNE_BENCH_POSTGRES_URL") or os.environ.get("SYSPRUNE_TEST_POSTGRES_URL")
    if pg:
        urls["postgresql"] = pg
    elif "postgresql" in args.storages:
        print("   (PostgreSQL left out: set SYSPRUNE_BENCH_POSTGRES_URL)")
        args.storages.remove("postgresql")
    if "ray" in args.storages:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("   (Ray left out: pip install 'sysprune[ray]')")
            args.storages.remove("ray")
    if "scale" in sections:
        scale(args, tmp, urls)
    if "fixed" in sections:
        fixed(args, tmp, urls)
    if "profile" in sections:
        profile(args, tmp, urls)
    print("\nafter:", machine())


if __name__ == "__main__":
    main()
