"""Step metrics in a JournalStorage study run by two processes at once: every step row of both is kept.

A journal has no SQL table beside it; the rows are trial system attributes written through the storage API, so
every process that opens the journal file sees them (see sysprune.storage._step_table).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sysprune import load_step_metrics

REPO = Path(__file__).resolve().parents[1]
N_TRIALS, N_STEPS = 4, 3

WORKER = textwrap.dedent(
    f"""
    import sys
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    import sysprune

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    worker = int(sys.argv[2])
    storage = JournalStorage(JournalFileBackend(sys.argv[1]))
    study = optuna.load_study(study_name="journal", storage=storage)
    for _ in range({N_TRIALS}):
        trial = study.ask()
        sysprune.report(trial, -1, None, {{"n_params": 100 + worker}})
        for step in range({N_STEPS}):
            sysprune.report(trial, step, 0.1 * step, {{"cpu_s": 1.0 + step, "my_worker": worker}})
            assert not sysprune.should_prune(trial)
        study.tell(trial, 1.0)
    """
)


def test_two_processes_on_one_journal_keep_every_step_row(tmp_path):
    path = str(tmp_path / "journal.log")
    storage = JournalStorage(JournalFileBackend(path))
    optuna.create_study(study_name="journal", storage=storage, pruner=optuna.pruners.MedianPruner(n_startup_trials=100))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, path, str(w)], env=env, stderr=subprocess.PIPE, text=True)
        for w in (1, 2)
    ]
    for p in workers:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err

    study = optuna.load_study(study_name="journal", storage=JournalStorage(JournalFileBackend(path)))
    df = load_step_metrics(study)
    assert len(study.trials) == 2 * N_TRIALS
    assert len(df) == 2 * N_TRIALS * (N_STEPS + 1)  # every step of every trial, the probe (-1) included
    assert sorted(df.trial_number.unique()) == list(range(2 * N_TRIALS))
    assert (df.groupby("trial_number").step.apply(list) == [[-1, 0, 1, 2]] * (2 * N_TRIALS)).all()
    assert sorted(df.groupby("my_worker").size().to_dict().items()) == [
        (1.0, N_TRIALS * N_STEPS),
        (2.0, N_TRIALS * N_STEPS),
    ]
    probe = df[df.step == -1]
    assert (probe.n_params - 100).tolist() == probe.trial_number.map(
        df[df.step == 0].set_index("trial_number").my_worker
    ).tolist()  # each probe row is its own worker's
    assert set(df.state) == {"COMPLETE"}
