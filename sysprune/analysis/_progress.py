"""Progress for ``sysprune compare``: one :class:`sysprune.study._progress.Progress` per (policy, seed) study as it
runs, labelled with the policy, the seed and which study of how many it is (a bar with its ETA on a terminal,
plain lines per trial elsewhere); the line each finished study logs is printed above the next bar."""

from __future__ import annotations

import sys

import optuna

from sysprune.storage._open import open_existing
from sysprune.study._lost import is_requeued
from sysprune.study._progress import Progress
from sysprune.exceptions import StorageError


class StudyBars:
    """``callbacks(name)`` / ``log(text)`` for :func:`sysprune.analysis.run_compare`. ``n_studies`` studies of
    ``n_trials`` trials each; ``quiet``: no bars, only the log lines."""

    def __init__(self, n_studies: int, n_trials: int, storage_url: str, *, quiet: bool = False) -> None:
        self.n_studies, self.n_trials, self.storage_url, self.quiet = n_studies, n_trials, storage_url, quiet
        self.started = 0
        self.bar: Progress | None = None

    def callbacks(self, name: str) -> list:
        self.close()
        self.started += 1
        if self.quiet:
            return []
        # <study>.compare.<policy>.s<seed> -> "<policy> s<seed>"
        parts = name.rsplit(".", 2)
        label = f"{parts[-2]} {parts[-1]} ({self.started}/{self.n_studies})" if len(parts) == 3 else name
        done = self._done(name)
        if done >= self.n_trials:
            return []  # nothing to run: the log line says so
        self.bar = Progress(self.n_trials, label=label, done=done)
        return [self.bar]

    def _done(self, name: str) -> int:
        """The trials of study ``name`` that count already (0 if it is not stored yet)."""
        try:
            storage = open_existing(self.storage_url)
            trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except (StorageError, KeyError):
            return 0
        return sum(t.state.is_finished() and not is_requeued(t) for t in trials)

    def log(self, text: str) -> None:
        self.close()
        print(text, file=sys.stdout, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
