"""Benchmark: do a big study's readers stay fast, and does a worker's memory stay flat over a long study? (issue 16)

1. **A long study, one real worker.** ``sysprune.run_study`` (public API, in a child process: the worker) runs
   ``--long-trials`` cheap trials of ``bench_wait`` (``_scale_workloads.py``: ``--steps`` steps that only sleep
   ``--step-s``; random sampler, policy ``none``, a ``peak_rss_delta_mb`` budget). A callback (``run_study``'s
   ``callbacks``, run in the worker) samples the worker's RSS every ``--every`` trials, and the RSS of the worker
   with its children (fork server, trial processes). Printed: first and last sample, and the slope (least squares)
   in MB per 100 trials.
2. **That study grown to ``--trials`` (default 10,000).** Its trials are copied row for row, by bulk insert, into the
   same study (every table with a ``trial_id``, sysprune's step-metrics table included; new ids, numbers and
   times, and fresh values of the continuous parameters so that the copies are distinct configurations), so every
   row has exactly the shape the runner wrote. The study is named as ``sysprune compare`` names
   its run of policy ``none`` at the file's seed (``big.compare.none.s0``): the same study is compare's, replay's
   recording and report's.
3. **Its readers**, on that storage: in this process, ``sysprune.load_step_metrics`` against plain Optuna's
   ``trials_dataframe()`` (the anchor, median of 3), and the memory plain Optuna keeps for the study's trials once
   read (tracemalloc; every worker keeps them: the anchor for the worker's slope); as the commands a user types (subprocesses: wall time and the
   child's CPU), the anchor in a fresh interpreter (``python -c`` load_study + trials_dataframe), ``sysprune
   compare --no-run``, ``sysprune replay`` (``--replay-args``: one order, the policies none and budget by default —
   replay *simulates* every policy over every trial per order, so its full default, 6 policies x 21 orders, is a
   simulation 126 times this size, not a read), ``sysprune report`` (one fANOVA fit per system metric plus its
   default 5 permuted ones) beside its own anchor, one fit of plain Optuna's fANOVA (``get_param_importances``)
   over the same study; a command still running after ``--timeout`` seconds is stopped and shown as ``>``; then ``sysprune dashboard`` (and plain
   ``optuna-dashboard``, the anchor) started on a free port: seconds from its start until the study list page
   (``/dashboard``) answers 200, then the study list (``/api/studies``) and the study's first API page
   (``/api/studies/<id>?after=0``, every trial), each until it answers 200.
4. **Pruner decisions** on that study (``bench_pruners.time_pruner``: fresh trials through ``report`` +
   ``should_prune``, steps 3..9): MedianPruner, ResourceBudgetPruner, CombinedPruner(budget, curve). Last, since
   its timed trials (FAIL) join the study.

Goals (issue 16): ``load_step_metrics`` within 2x of ``trials_dataframe()``; a pruner decision <= 10 ms median.
Prints the machine and its load average before and after.

Usage: python benchmarks/bench_big.py [--trials 10000] [--long-trials 500] [--every 25] [--db DIR]
       [--sections long,grow,readers,commands,dashboard,pruners]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # _scale_workloads, bench_pruners, _machine
# ... and for every process it starts (the worker, its trial processes, the commands)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH")) if p)

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from _machine import cpu_name  # noqa: E402

SPEC = "big"
STUDY = f"{SPEC}.compare.none.s0"  # compare's name for policy none at seed 0 (analysis._compare.compare_study_name)
SECTIONS = ("long", "grow", "readers", "commands", "dashboard", "pruners")

STUDY_TOML = """
name = "{spec}"
model = "bench_wait"
plugins = ["_scale_workloads"]
steps = {steps}
n_trials = {trials}
seed = 0
[dataset]
name = "digits"
[sampler]
name = "random"
[pruner]
policy = "none"
[budgets]
peak_rss_delta_mb = 400.0
[search_space]
x = {{type = "float", low = 0.0, high = 1.0}}
step_s = {step_s}
"""

# The worker: run_study in a fresh interpreter; a callback samples the RSS every `every` trials (one JSON line each).
WORKER = """
import json, sys, psutil, sysprune
spec, url, study, every = sysprune.load_spec(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
me = psutil.Process()
done = 0
def sample(study, trial):
    global done
    done += 1
    if done == 1 or done % every == 0:
        tree = me.memory_info().rss
        for c in me.children(recursive=True):
            try:
                tree += c.memory_info().rss
            except psutil.Error:
                pass
        print(json.dumps({"trials": done, "rss": me.memory_info().rss / 2**20, "tree": tree / 2**20}), flush=True)
sysprune.run_study(spec, storage_url=url, study_name=study, callbacks=[sample])
"""

ANCHOR = "import optuna, sys; optuna.logging.set_verbosity(optuna.logging.WARNING); " \
    "optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2]).trials_dataframe()"  # fmt: skip


# report's own anchor: one fit of plain Optuna's fANOVA (the evaluator report runs, 64 trees) over the study.
IMPORTANCE = """
import sys, warnings, optuna
warnings.simplefilter("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
"""


# What plain Optuna's trial cache holds: the Python memory a process keeps for the study's trials once read (every
# worker keeps them, through Optuna's cached storage), per 100 trials (tracemalloc, after a collection: what stays,
# not the read's transient peak): the anchor for the worker's slope.
TRIAL_CACHE = """
import gc, sys, tracemalloc, optuna
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
gc.collect()
tracemalloc.start()
trials = study.get_trials(deepcopy=False)
gc.collect()
print(len(trials), tracemalloc.get_traced_memory()[0] / 2**20)
"""


def machine() -> str:
    return (
        f"{platform.node()} | {platform.platform()} | {cpu_name()} | {os.cpu_count()} CPUs | "
        f"Python {platform.python_version()} | optuna {optuna.__version__} | SQLite {sqlite3.sqlite_version}"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


# -- 1. a long study, one real worker --------------------------------------------------------------------------


def long_study(spec_path: Path, url: str, every: int) -> list[dict[str, float]]:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", WORKER, str(spec_path), url, STUDY, str(every)], capture_output=True, text=True
    )
    if r.returncode != 0:
        sys.exit(f"the worker failed ({r.returncode}):\n{r.stderr[-3000:]}")
    samples = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    wall = time.perf_counter() - t0
    n = samples[-1]["trials"] if samples else 0
    print(f"\n== a long study: one worker, {n} trials in {wall:.0f} s ({n / wall * 60:.0f} trials/min)")
    print(f"{'trials':>7} {'worker RSS MB':>14} {'worker + children MB':>21}")
    for s in samples:
        print(f"{s['trials']:>7} {s['rss']:>14.1f} {s['tree']:>21.1f}")
    later = [s for s in samples if s["trials"] >= every]  # the first sample is taken before anything warmed up
    if len(later) >= 2:
        x = np.array([s["trials"] for s in later], dtype=float)
        for key, label in (("rss", "worker"), ("tree", "worker + children")):
            slope = np.polyfit(x, np.array([s[key] for s in later]), 1)[0] * 100
            print(
                f"   {label}: first {samples[0][key]:.1f} MB (trial 1), {later[0][key]:.1f} MB (trial "
                f"{later[0]['trials']}), last {later[-1][key]:.1f} MB (trial {later[-1]['trials']}); slope from "
                f"trial {later[0]['trials']}: {slope:+.2f} MB per 100 trials"
            )
    return samples


# -- 2. grow the study by copying its rows ---------------------------------------------------------------------


def _draw(distribution_json: str, value: float, rng: np.random.Generator) -> float:
    """A fresh value of a continuous parameter (uniform, or log-uniform), so that the copies are distinct
    configurations (what fANOVA's trees split on); other parameters keep the copied value."""
    d = optuna.distributions.json_to_distribution(distribution_json)
    if not isinstance(d, optuna.distributions.FloatDistribution) or d.step is not None:
        return value
    if d.log:
        return float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))))
    return float(rng.uniform(d.low, d.high))


def grow(url: str, study_name: str, n_total: int, seed: int = 0) -> tuple[int, float]:
    """Copy the study's trials, row for row in every table with a ``trial_id``, until it holds ``n_total``; a
    copy's continuous parameters get fresh values (:func:`_draw`), everything else is the copied row. Returns
    (trials added, seconds)."""
    from sysprune.storage._step_table import tune_sqlite_engine

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    engine = sa.create_engine(url)
    tune_sqlite_engine(engine)
    md = sa.MetaData()
    md.reflect(engine)
    trials_t = md.tables["trials"]
    children = [t for name, t in md.tables.items() if name != "trials" and "trial_id" in t.c]
    with engine.begin() as conn:
        sid = conn.execute(
            sa.select(md.tables["studies"].c.study_id).where(md.tables["studies"].c.study_name == study_name)
        ).scalar_one()
        template = [dict(r) for r in conn.execute(sa.select(trials_t).where(trials_t.c.study_id == sid)).mappings()]
        template.sort(key=lambda r: r["number"])
        ids = [r["trial_id"] for r in template]
        rows: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for t in children:
            auto = [c.name for c in t.primary_key.columns if c.name != "trial_id"]  # the table's own row id
            by_trial: dict[int, list[dict[str, Any]]] = {}
            for r in conn.execute(sa.select(t).where(t.c.trial_id.in_(ids))).mappings():
                d = {k: v for k, v in r.items() if k not in auto}
                by_trial.setdefault(d["trial_id"], []).append(d)
            rows[t.name] = by_trial
        next_id = conn.execute(sa.select(sa.func.max(trials_t.c.trial_id))).scalar_one() + 1
        starts = [r["datetime_start"] for r in template if r["datetime_start"]]
        ends = [r["datetime_complete"] for r in template if r["datetime_complete"]]
        span = (max(ends) - min(starts)) if starts and ends else None
        number, copy = len(template), 0
        while number < n_total:
            copy += 1
            new_trials: list[dict[str, Any]] = []
            new_rows: dict[str, list[dict[str, Any]]] = {name: [] for name in rows}
            for src in template:
                if number >= n_total:
                    break
                new = dict(src, trial_id=next_id, number=number)
                if span is not None:
                    for k in ("datetime_start", "datetime_complete"):
                        if new[k] is not None:
                            new[k] = new[k] + span * copy
                new_trials.append(new)
                for name, by_trial in rows.items():
                    for r in by_trial.get(src["trial_id"], ()):
                        d = dict(r, trial_id=next_id)
                        if "trial_number" in d:
                            d["trial_number"] = number
                        if name == "trial_params":
                            d["param_value"] = _draw(d["distribution_json"], d["param_value"], rng)
                        new_rows[name].append(d)
                next_id += 1
                number += 1
            conn.execute(sa.insert(trials_t), new_trials)
            for name, batch in new_rows.items():
                if batch:
                    conn.execute(sa.insert(md.tables[name]), batch)
    engine.dispose()
    return number - len(template), time.perf_counter() - t0


# -- 3. the readers ---------------------------------------------------------------------------------------------


def time_in_process(url: str, repeats: int = 3) -> list[tuple[str, float]]:
    import bench_pruners as bp
    import sysprune

    readers = {
        "optuna trials_dataframe()  (anchor)": lambda: optuna.load_study(
            study_name=STUDY, storage=url
        ).trials_dataframe(),
        "sysprune.load_step_metrics": lambda: sysprune.load_step_metrics(url, STUDY),
    }
    return bp.median_seconds(readers, repeats)


def run_command(cmd: list[str], cwd: Path, timeout: float | None = None) -> tuple[float, float, bool]:
    """(wall s, the child's CPU s: user + system, its whole tree; whether it finished within ``timeout``), or exit
    naming the failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        finished = True
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        finished = False
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished and proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, finished


def commands(
    spec_path: Path, url: str, out: Path, replay_args: list[str], timeout: float
) -> list[tuple[str, float, float, bool]]:
    sp = _bin("sysprune")
    out.mkdir(parents=True, exist_ok=True)
    cmds = {
        "python -c trials_dataframe()  (anchor)": [sys.executable, "-c", ANCHOR, STUDY, url],
        "sysprune compare --no-run": [sp, "compare", str(spec_path), "--policies", "none", "--seeds", "1"]
        + ["--no-run", "--no-test", "--storage", url, "--out", str(out)],
        f"sysprune replay {' '.join(replay_args)}": [sp, "replay", STUDY, *replay_args, "--storage", url]
        + ["--out", str(out)],
        "python -c get_param_importances()  (fANOVA, 1 fit)": [sys.executable, "-c", IMPORTANCE, STUDY, url],
        "sysprune report": [sp, "report", STUDY, "--storage", url, "--out", str(out)],
    }
    res = []
    for name, cmd in cmds.items():
        wall, cpu, finished = run_command(cmd, out, timeout)
        res.append((name, wall, cpu, finished))
        print(f"   {name}: {wall:.2f} s" + ("" if finished else " (stopped: --timeout)"), flush=True)
    return res


def _get(url: str, timeout: float = 600.0) -> tuple[float, int, bytes]:
    """Seconds until ``url`` answers 200 (retried while the server is not yet listening), and the body."""
    t0 = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = resp.read()
                if resp.status == 200:
                    return time.perf_counter() - t0, len(body), body
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(url)
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard(cmd: list[str], port: int) -> dict[str, float]:
    """Start the server on ``port``; seconds from its start until ``/dashboard`` answers 200 (the start included),
    then the study list and the study's first API page; stop it."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _get(f"{base}/dashboard")
        page = time.perf_counter() - t0
        listing, _, body = _get(f"{base}/api/studies")
        sid = next(s["study_id"] for s in json.loads(body)["study_summaries"] if s["study_name"] == STUDY)
        first, size, body = _get(f"{base}/api/studies/{sid}?after=0")
        n = len(json.loads(body)["trials"])
        return {"page": page, "list": listing, "first": first, "mb": size / 2**20, "trials": n}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 4. pruner decisions ------------------------------------------------------------------------------------------


def pruner_decisions(url: str, n_timed: int, seed: int) -> None:
    import bench_pruners as bp
    from sysprune.pruners import CombinedPruner, CurvePruner, ResourceBudgetPruner, _steps

    pruners = {
        "optuna MedianPruner": optuna.pruners.MedianPruner(n_startup_trials=5),
        "ResourceBudgetPruner (cache)": ResourceBudgetPruner(bp.BUDGETS, max_steps=bp.STEPS),
        "CombinedPruner(budget, curve)": CombinedPruner(
            ResourceBudgetPruner(bp.BUDGETS, max_steps=bp.STEPS), CurvePruner(max_steps=bp.STEPS)
        ),
    }
    print(f"\n== pruner decisions on that study ({n_timed} fresh trials each, steps 3..{bp.STEPS - 1})")
    print(f"{'pruner':<36} {'decisions':>9} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'cold ms':>8}")
    for i, (name, pruner) in enumerate(pruners.items()):
        _steps.clear()
        r = bp.time_pruner(url, name, pruner, n_timed, seed + i, study_name=STUDY)
        print(f"{name:<36} {r['n']:>9} {r['median']:>10.2f} {r['p90']:>8.2f} {r['max']:>8.2f} {r['cold']:>8.1f}")
    print("goal (issue 3, 16): median <= 10 ms per decision")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000, help="trials in the grown study (default 10,000)")
    parser.add_argument("--long-trials", type=int, default=500, help="trials of the long study (default 500)")
    parser.add_argument("--every", type=int, default=25, help="sample the worker's RSS every N trials")
    parser.add_argument("--steps", type=int, default=4, help="steps per trial of the long study")
    parser.add_argument("--step-s", type=float, default=0.002, help="seconds each step sleeps")
    parser.add_argument(
        "--replay-args", default="--orders 0 --policies none,budget", help="replay's options (default: %(default)s)"
    )
    parser.add_argument("--timed-trials", type=int, default=30, help="fresh trials per pruner")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="stop a command after this many seconds (default: %(default)s)"
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help="which sections (default: all)")
    parser.add_argument("--db", default=None, help="directory for the database and results (default: a temp dir)")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        parser.error(f"--sections: unknown {sorted(sections - set(SECTIONS))}; known: {', '.join(SECTIONS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    print(f"machine: {machine()}")
    print(f"load average at the start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.db or tmp)
        directory.mkdir(parents=True, exist_ok=True)
        spec_path = directory / f"{SPEC}.toml"
        spec_path.write_text(
            STUDY_TOML.format(spec=SPEC, steps=args.steps, trials=args.long_trials, step_s=args.step_s)
        )
        db = directory / "bench_big.db"
        url = f"sqlite:///{db}"
        if "long" in sections:
            for suffix in ("", "-wal", "-shm", "-sysprune.lock"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            long_study(spec_path, url, args.every)
        if "grow" in sections:
            added, seconds = grow(url, STUDY, args.trials)
            print(f"\n== grown to {args.trials:,} trials: {added:,} copied by bulk insert in {seconds:.1f} s")
        n = len(optuna.load_study(study_name=STUDY, storage=url).get_trials(deepcopy=False))
        rows = sa.create_engine(url).connect().execute(sa.text("select count(*) from sysprune_step_metrics")).scalar()
        print(f"study {STUDY}: {n:,} trials, {rows:,} step rows, SQLite (WAL), load average {load()}")
        anchor = None
        if "readers" in sections:
            readers = time_in_process(url)
            anchor = readers[0][1]
            print(f"\n{'reader, in this process (median of 3)':<44} {'s':>8} {'x anchor':>9}")
            for name, sec in readers:
                print(f"{name:<44} {sec:>8.3f} {sec / anchor:>9.2f}")
            print("goal (issue 16): load_step_metrics within 2x of trials_dataframe()")
            r = subprocess.run([sys.executable, "-c", TRIAL_CACHE, STUDY, url], capture_output=True, text=True)
            n_held, mb = r.stdout.split()
            print(
                f"plain Optuna holding the study's {int(n_held):,} trials (get_trials, a fresh process): "
                f"{float(mb):.1f} MB kept = {float(mb) / int(n_held) * 100:.2f} MB per 100 trials"
            )
        if "commands" in sections:
            print("\n== the commands (subprocesses, one run each)", flush=True)
            res = commands(spec_path, url, directory / "results", args.replay_args.split(), args.timeout)
            print(f"{'command':<52} {'wall s':>8} {'CPU s':>8} {'x anchor':>9}")
            for name, wall, cpu, finished in res:
                more = "" if finished else ">"  # stopped at --timeout: at least this long
                cells = (f"{more}{x:.2f}" for x in (wall, cpu, wall / res[0][1]))
                print(f"{name:<52} " + " ".join(c.rjust(w) for c, w in zip(cells, (8, 8, 9), strict=True)))
            fit, rep = res[-2], res[-1]
            print(f"sysprune report / one plain fANOVA fit: {'' if rep[3] else '>'}{rep[1] / fit[1]:.1f}x")
        if "dashboard" in sections:
            print(f"\n== the dashboard, started on a free port (load average {load()})", flush=True)
            servers = {
                "sysprune dashboard": [_bin("sysprune"), "dashboard", "--storage", url, "--port"],
                "optuna-dashboard  (anchor)": [_bin("optuna-dashboard"), url, "--port"],
            }
            print(f"{'server':<28} {'start + /dashboard s':>21} {'/api/studies s':>15} {'study page s':>13}")
            for name, cmd in servers.items():
                port = free_port()
                d = dashboard([*cmd, str(port)], port)
                print(
                    f"{name:<28} {d['page']:>21.2f} {d['list']:>15.3f} {d['first']:>13.2f}"
                    f"   ({d['trials']:,} trials, {d['mb']:.1f} MB)",
                    flush=True,
                )
        if "pruners" in sections:
            pruner_decisions(url, args.timed_trials, seed=0)
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
