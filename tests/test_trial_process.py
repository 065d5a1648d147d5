"""The trial process: per-trial measurements from outside, the step protocol with its pre-training probe, CPU
pinning, failures with their cause, and no process outliving its worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from sysprune import load_step_metrics
from sysprune.datasets import prepare
from sysprune.study._runner import run_study
from sysprune.spec import parse_spec
from sysprune.trial._job import TrialJob, probes_at
from sysprune.trial._process import TrialProcess, death_message
from sysprune.exceptions import TrialProcessError

ALLOC = "tests.workloads.alloc"
FAULTS = "tests.workloads.faults"
REPO = Path(__file__).resolve().parents[1]
STRUCTURAL = ("n_params", "model_bytes", "infer_ms", "infer_ms_lo", "infer_ms_hi", "model_mem_mb")


@pytest.fixture(scope="module")
def digits_path(tmp_path_factory) -> str:
    return str(prepare("digits", seed=0, cache_dir=tmp_path_factory.mktemp("cache")))


def _run(
    path: str, steps: int = 3, model: str = ALLOC, job_kw: dict | None = None, probe_next: bool = False, **params
) -> dict[int, dict]:
    p = {"mb": 10, "spin_ms": 20, "fail_at": -1, **params} if model == ALLOC else params
    job = TrialJob(model=model, params=p, dataset_path=path, seed=0, steps=steps, infer_repeats=3, **(job_kw or {}))
    rows = {}
    with TrialProcess(job) as tp:
        for r in tp.steps():
            rows[r.step] = r.metrics
            tp.decide(stop=False, probe_next=probe_next and r.step == -1)
        assert tp.finished
    return rows


def test_every_step_has_a_full_row_after_the_pretraining_probe(digits_path):
    rows = _run(digits_path, steps=3)
    assert list(rows) == [-1, 0, 1, 2]
    pre = rows[-1]
    assert not {"val_accuracy", "val_loss", "train_loss"} & set(pre)  # nothing learned yet
    for name in (
        "wall_s",
        "cpu_s",
        "rss_mb",
        "peak_rss_mb",
        "peak_rss_delta_mb",
        "n_params",
        "model_bytes",
        "infer_ms",
        "infer_ms_lo",
        "infer_ms_hi",
    ):
        assert isinstance(pre[name], float), name
    for step in (0, 1, 2):
        for name in ("val_accuracy", "train_loss", "wall_s", "cpu_s", "rss_mb", "peak_rss_mb", "peak_rss_delta_mb"):
            assert isinstance(rows[step][name], float), (step, name)
        # No GPU and no energy counter here: missing, never zero.
        assert rows[step]["gpu_mem_mb"] is None and rows[step]["energy_j"] is None
        assert rows[step]["val_loss"] is None
    # structural metrics: measured at the pre-training probe and the last step only (nobody asked for step 0's)
    assert not set(STRUCTURAL) & (set(rows[0]) | set(rows[1])) and set(STRUCTURAL) <= set(rows[2])
    assert rows[2]["model_bytes"] > rows[-1]["model_bytes"]  # the workload's buffer exists once it trained
    for row in (rows[-1], rows[2]):
        assert row["infer_ms_lo"] <= row["infer_ms"] <= row["infer_ms_hi"]
        assert row["model_mem_mb"] is None  # a trainer that holds no torch module or estimator: not known


def test_a_second_reading_after_step_0_only_when_asked_for_at_step_minus_1(digits_path):
    rows = _run(digits_path, steps=3, probe_next=True)
    assert [s for s, r in rows.items() if "infer_ms" in r] == [-1, 0, 2]
    assert rows[0]["infer_ms_lo"] <= rows[0]["infer_ms"] <= rows[0]["infer_ms_hi"]


def test_structural_metrics_every_k_steps_when_the_model_asks(digits_path):
    rows = _run(digits_path, steps=5, model=FAULTS, probe_every=2)
    assert [s for s, r in rows.items() if "infer_ms" in r] == [-1, 1, 3, 4]
    rows = _run(digits_path, steps=3, model=FAULTS, job_kw={"probe_every": 1})  # the job overrides the model
    assert all("infer_ms" in r for r in rows.values())


def test_probes_at_is_the_pretraining_probe_the_last_step_every_k_and_step_0_when_confirming():
    assert [s for s in range(-1, 6) if probes_at(s, 6, 0)] == [-1, 5]
    assert [s for s in range(-1, 6) if probes_at(s, 6, 0, confirm=True)] == [-1, 0, 5]
    assert [s for s in range(-1, 6) if probes_at(s, 6, 3)] == [-1, 2, 5]
    assert [s for s in range(-1, 3) if probes_at(s, 3, 1)] == [-1, 0, 1, 2]


def test_torch_model_memory_is_known_before_training_and_unchanged_after(digits_path):
    params = {"n_layers": 2, "width": 64, "batch_size": 128}
    rows = _run(digits_path, steps=2, model="torch_mlp", **params)
    pre, last = rows[-1], rows[1]
    n = pre["n_params"]
    # float32 parameters + one gradient each + AdamW's two moments = 4 copies of the parameters
    assert pre["model_mem_mb"] == pytest.approx(4 * 4 * n / 2**20)
    assert last["model_mem_mb"] == pre["model_mem_mb"]
    assert last["n_params"] == n and last["model_bytes"] == pre["model_bytes"]


def test_cumulative_metrics_are_monotone_and_track_work(digits_path):
    rows = _run(digits_path, steps=4, spin_ms=100)
    cpu = [rows[s]["cpu_s"] for s in range(4)]
    wall = [rows[s]["wall_s"] for s in range(4)]
    assert cpu == sorted(cpu) and wall == sorted(wall)
    # each step burns >= 100 ms of CPU in the child; the parent's measurement sees it
    steps = [b - a for a, b in zip(cpu, cpu[1:])]
    assert all(0.08 <= d <= 0.5 for d in steps), steps
    assert cpu[0] - rows[-1]["cpu_s"] >= 0.08


def test_cpu_time_per_step_is_read_on_the_nanosecond_clock_not_in_10_ms_ticks(digits_path):
    # 3 ms of CPU per step: psutil's clock-tick reading (10 ms) would record 0 or 10 ms per step, never ~3 ms
    rows = _run(digits_path, steps=6, spin_ms=3)
    cpu = [rows[s]["cpu_s"] for s in range(-1, 6)]
    steps = [b - a for a, b in zip(cpu, cpu[1:])][1:]  # step 0 also allocates the workload's buffer
    assert all(0.0025 <= d <= 0.1 for d in steps), steps  # at least the 3 ms spun (more on a loaded machine)
    assert all(abs(d - round(d, 2)) > 1e-6 for d in steps), steps  # never whole 10 ms ticks


def test_peak_memory_is_per_trial_not_per_worker(digits_path):
    big = _run(digits_path, steps=2, mb=300, spin_ms=1)
    small = _run(digits_path, steps=2, mb=30, spin_ms=1)  # after the big one, in the same worker
    big_delta = big[1]["peak_rss_delta_mb"]
    small_delta = small[1]["peak_rss_delta_mb"]
    assert 290 <= big_delta <= 400, big_delta
    assert 25 <= small_delta <= 120, small_delta
    assert big[1]["peak_rss_mb"] - small[1]["peak_rss_mb"] > 200
    for rows in (big, small):
        assert rows[1]["peak_rss_mb"] >= rows[1]["rss_mb"]


def test_stop_ends_the_child_after_the_current_step(digits_path):
    job = TrialJob(
        model=ALLOC, params={"mb": 1, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path, seed=0, steps=10
    )
    seen = []
    with TrialProcess(job) as tp:
        for r in tp.steps():
            seen.append(r.step)
            tp.decide(stop=r.step == 1)
        assert tp.finished
    assert seen == [-1, 0, 1]


def test_stop_after_the_pretraining_probe_trains_nothing(digits_path):
    job = TrialJob(
        model=ALLOC, params={"mb": 50, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path, seed=0, steps=10
    )
    with TrialProcess(job) as tp:
        seen = []
        for r in tp.steps():
            seen.append(r.step)
            tp.decide(stop=True)
        assert tp.finished and seen == [-1]
        assert tp.total_cpu_s is not None and tp.peak_rss_mb is not None


def test_training_error_is_reported_with_its_message(digits_path):
    with pytest.raises(TrialProcessError, match="RuntimeError: planned failure at step 1"):
        _run(digits_path, steps=3, fail_at=1)


# ------------------------------------------------------------------------------------------------------ CPU sets


def test_the_child_pins_itself_to_the_cpus_it_is_given(digits_path):
    cpus = (max(os.sched_getaffinity(0)),)
    job = TrialJob(
        model=ALLOC, params={"mb": 1, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path, seed=0, steps=1, cpus=cpus
    )
    with TrialProcess(job) as tp:
        for _ in tp.steps():
            assert psutil.Process(tp._proc.pid).cpu_affinity() == list(cpus)
            tp.decide(stop=False)


@pytest.mark.parametrize("cpus", [(), [0], (-1,), (True,), (0.5,)])
def test_a_bad_cpu_set_is_refused_by_name(cpus):
    with pytest.raises(ValueError, match="cpus must be None or a non-empty tuple"):
        TrialJob(model=ALLOC, params={}, dataset_path="x", seed=0, steps=1, cpus=cpus)


def test_a_cpu_the_machine_lacks_is_an_error_naming_it(digits_path):
    job = TrialJob(
        model=ALLOC,
        params={"mb": 1, "spin_ms": 1, "fail_at": -1},
        dataset_path=digits_path,
        seed=0,
        steps=1,
        cpus=(4095,),
    )
    with pytest.raises(TrialProcessError, match=r"cannot pin the trial process to cpus=\(4095,\)"):
        _run_job(job)


def _run_job(job: TrialJob, **kw) -> list[int]:
    seen = []
    with TrialProcess(job, **kw) as tp:
        for r in tp.steps():
            seen.append(r.step)
            tp.decide(stop=False)
    return seen


# ------------------------------------------------------------------------------------------------- deaths


def _faults(path: str, steps: int = 3, **params) -> TrialJob:
    return TrialJob(
        model=FAULTS, params={"steps": steps, **params}, dataset_path=path, seed=0, steps=steps, infer_repeats=3
    )


def test_a_segfault_names_the_signal_and_the_childs_last_stderr_lines(digits_path):
    with pytest.raises(TrialProcessError) as info:
        _run_job(_faults(digits_path, crash="segv", crash_at=1))
    msg = str(info.value)
    assert "killed by SIGSEGV" in msg and "during step 1" in msg
    assert "faults: crashing on purpose (segv) at step 1" in msg  # its own last words
    assert "Segmentation fault" in msg  # faulthandler's report, captured from the child's stderr
    assert "\n" not in msg  # one line: it goes into the trial's error attr and the progress line


def test_sigkill_is_reported_as_a_likely_out_of_memory_kill(digits_path):
    with pytest.raises(TrialProcessError, match=r"killed by SIGKILL \(killed: out of memory\?") as info:
        _run_job(_faults(digits_path, crash="kill", crash_at=0))
    assert "during step 0" in str(info.value) and "crashing on purpose (kill)" in str(info.value)


def test_a_death_in_the_latency_probe_names_the_probe_and_its_step(digits_path):
    with pytest.raises(
        TrialProcessError,
        match=r"killed by SIGKILL .* while measuring the model \(latency probe, "
        r"size\) at step -1",
    ):
        _run_job(_faults(digits_path, crash="probe_kill", crash_at=0))
    with pytest.raises(TrialProcessError, match=r"while measuring the model \(latency probe, size\) at step 2"):
        _run_job(_faults(digits_path, steps=3, crash="probe_kill", crash_at=3))


def test_an_exit_names_its_code(digits_path):
    with pytest.raises(TrialProcessError, match="exited with code 3 during step 2"):
        _run_job(_faults(digits_path, crash="exit", crash_at=2))


def test_the_stderr_of_one_trial_is_not_blamed_on_the_next(digits_path):
    with pytest.raises(TrialProcessError):
        _run_job(_faults(digits_path, crash="exit", crash_at=0))
    with pytest.raises(TrialProcessError) as info:
        _run_job(_faults(digits_path, crash="kill", crash_at=1))
    assert "(exit)" not in str(info.value)


def test_death_message_without_stderr_says_so():
    assert death_message(-9, "during step 4", []) == (
        "trial process was killed by SIGKILL (killed: out of memory? (the kernel's OOM killer sends SIGKILL)) "
        "during step 4; it wrote nothing to stderr"
    )
    assert death_message(1, "while starting", ["a", "ImportError: x"]).endswith("last stderr: a | ImportError: x")


def _start_a_trial_beside(tmp_path, name: str, text: str) -> subprocess.CompletedProcess:
    """Start a trial process (and run it) from a worker whose current folder holds a file ``name`` shadowing a
    library; the worker prints the TrialProcessError it gets."""
    project = tmp_path / "project"  # the user's folder (the current directory): a file named like a library
    project.mkdir()
    (project / name).write_text(text)
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from sysprune.trial._process import TrialJob, TrialProcess, TrialProcessError
        try:
            tp = TrialProcess(TrialJob(model="x", params={{}}, dataset_path="x", seed=0, steps=1))
            for _ in tp.steps():
                tp.decide(stop=False)
        except TrialProcessError as e:
            print(e)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=project, capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    return out


def test_a_local_optuna_py_does_not_break_the_trial_processes(tmp_path):
    """A local ``optuna.py`` in the user's folder shadows the library in the fork server (its interpreter starts with
    the folder on its path; the worker's and the trial processes' own paths do not have it). It used to break every
    trial process's start-up ("'optuna' is not a package"); nothing a trial process runs uses Optuna now, so the
    trial starts and runs sysprune's code: here it reaches the (deliberately missing) dataset."""
    out = _start_a_trial_beside(tmp_path, "optuna.py", "print('my own experiment')\n")
    assert "while starting" not in out.stdout, out.stdout
    assert "not a prepared dataset folder (no meta.json): x" in out.stdout, out.stdout


def test_a_fork_server_that_cannot_start_is_reported_with_its_stderr(tmp_path):
    """A local ``numpy.py`` breaks the fork server's own start (its preload): the error quotes why."""
    out = _start_a_trial_beside(tmp_path, "numpy.py", "raise RuntimeError('this numpy.py is not numpy')\n")
    assert out.stdout.startswith("the fork server could not start the trial process"), out.stdout
    assert "RuntimeError: this numpy.py is not numpy" in out.stdout


# --------------------------------------------------------------------------------------------- no orphans


@pytest.mark.slow
def test_no_process_outlives_a_killed_worker(tmp_path, digits_path):
    """kill -9 of a worker whose trial hangs: the trial process, the fork server and the resource tracker go too."""
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(f"""
        from sysprune.trial._process import TrialJob, TrialProcess
        job = TrialJob(model={ALLOC!r}, params={{"mb": 5, "spin_ms": 600000, "fail_at": -1}},
                       dataset_path={digits_path!r}, seed=0, steps=2)
        tp = TrialProcess(job)
        print(tp._proc.pid, flush=True)
        for r in tp.steps():
            tp.decide(stop=False)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    descendants: list[psutil.Process] = []
    try:
        trial_pid = int(worker.stdout.readline())
        time.sleep(0.5)  # the trial is training (hanging in its step)
        descendants = psutil.Process(worker.pid).children(recursive=True)
        assert trial_pid in {p.pid for p in descendants}
        assert len(descendants) >= 3  # resource tracker, fork server, trial process
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        gone, alive = psutil.wait_procs(descendants, timeout=15)
        assert not alive, [(p.pid, p.cmdline()[-1][:60]) for p in alive]
    finally:
        if worker.poll() is None:
            worker.kill()
        for p in descendants:  # never leave behind what this test started
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def test_a_segfaulting_trial_is_fail_with_its_cause_and_the_study_goes_on(sqlite_url, cache_dir):
    spec = parse_spec(
        {
            "name": "crash",
            "model": FAULTS,
            "steps": 3,
            "n_trials": 2,
            "seed": 0,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
            "search_space": {"crash": {"type": "categorical", "choices": ["segv", "none"]}, "crash_at": 1, "steps": 3},
            "trial": {"infer_repeats": 3},
        }
    )
    study = optuna.create_study(storage=sqlite_url, study_name="crash", direction="maximize")
    study.enqueue_trial({"crash": "segv"})
    study.enqueue_trial({"crash": "none"})
    study = run_study(spec, storage_url=sqlite_url, cache_dir=str(cache_dir)).study
    crashed, fine = study.trials
    assert crashed.state == TrialState.FAIL and fine.state == TrialState.COMPLETE
    error = crashed.user_attrs["error"]
    assert error.startswith("trial process was killed by SIGSEGV (a crash in native code) during step 1")
    assert "faults: crashing on purpose (segv) at step 1" in error
    df = load_step_metrics(sqlite_url, "crash")
    assert list(df[df.trial_number == 0].step) == [-1, 0]  # what it measured before dying is kept


def test_a_dry_run_predicts_at_step_minus_1_is_paid_by_step_0_and_changes_no_learned_value(digits_path):
    params = {"n_layers": 1, "width": 32, "lr": 3e-3, "batch_size": 64, "dropout": 0.2}
    plain = _run(digits_path, steps=3, model="torch_mlp", **params)
    dry = _run(digits_path, steps=3, model="torch_mlp", job_kw={"dry_run_batches": 5}, **params)
    pre = dry[-1]
    for name in ("pred_cpu_s", "pred_wall_s", "pred_peak_rss_mb", "pred_peak_rss_delta_mb", "dry_run_cpu_s"):
        assert isinstance(pre[name], float) and pre[name] > 0, name
        assert name not in plain[-1]
    # the predictions are of the training's own cumulative cost, step -1's included
    assert pre["pred_cpu_s"] > pre["cpu_s"] and pre["pred_wall_s"] > pre["wall_s"]
    assert 0.25 < pre["pred_cpu_s"] / dry[2]["cpu_s"] < 4  # a prediction, within a small factor here
    # the dry run's batches are step 0's: not in step -1's row, in step 0's, and trained only once
    assert pre["cpu_s"] < plain[-1]["cpu_s"] + pre["dry_run_cpu_s"]
    assert pre["peak_rss_delta_mb"] == pre["pred_peak_rss_delta_mb"]  # memory: measured once it trained
    for step in (0, 1, 2):
        for name in ("val_accuracy", "val_loss", "train_loss"):
            assert dry[step][name] == plain[step][name], (step, name)


def test_the_parent_looks_closely_only_while_a_memory_cap_or_a_live_descendant_needs_it(digits_path):
    from sysprune.trial._process import IDLE_POLL_S

    job = TrialJob(
        model=ALLOC, params={"mb": 1, "spin_ms": 1, "fail_at": -1}, dataset_path=digits_path, seed=0, steps=1
    )
    tp = TrialProcess(job, poll_s=0.05, start=False)
    assert tp._poll_interval() == 0.05  # starting (no monitor yet): every poll_s
    tp.monitor = object()  # type: ignore[assignment]  # ready: nothing to look at closely
    assert tp._poll_interval() == IDLE_POLL_S > 0.05
    tp._has_descendants = True  # a child's memory is sampled every poll_s
    assert tp._poll_interval() == 0.05
    tp._has_descendants, tp.max_rss_mb = False, 500.0  # a memory cap is held every poll_s
    assert tp._poll_interval() == 0.05
    tp.max_rss_mb, tp.max_wall_s = None, 10.0
    tp.t0 = time.perf_counter() - 9.95  # the wait ends at the wall cap's deadline, not a poll later
    assert tp._poll_interval() == pytest.approx(0.051, abs=0.01)
    tp.t0 = time.perf_counter() - 11.0
    assert tp._poll_interval() == 0.001
