"""Publishing a study's step metrics into optuna-dashboard.

After a trial finishes, :class:`DashboardPublisher` writes, into the study's own storage (so any dashboard on that
database shows them, and they travel with the database):

* the trial's **note**: verdict, prune reason, budgets and its step table (markdown);
* the trial's **artifact** ``trial-<number>-step-metrics.csv`` (the same steps at full precision; the dashboard
  shows a CSV artifact as a table), when an artifact directory is given;
* the **study figures**, one per system metric with one line per finished trial, saved under the stable ids
  ``sysprune-<metric>`` so that each refresh replaces them;
* the **study note**: counts, budgets, the pruned trials and why.

All of a trial's publication is one transaction on an RDB storage (see :mod:`._study_attrs`); the trial's steps are
read once and kept, so the cost per trial does not grow with re-reading the study's steps (measured in
``docs/dashboard.md``).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from sysprune._attrs import IDENTITY_ATTR, STUDY_BUDGETS, STUDY_STEPS
from sysprune._logging import get_logger
from sysprune.metrics._dryrun import METRICS as DRY_RUN_METRICS
from sysprune.metrics._registry import METRICS, check_metric_name, system_metric_names
from sysprune import _compat
from sysprune.storage._open import storage_key
from sysprune.storage._step_table import store_for
from sysprune.dashboard import _study_attrs as sa_
from sysprune.dashboard._curves import FINISHED, TrialCurves, finished_trials, from_trial
from sysprune.dashboard._figures import FIGURE_ID_PREFIX, FigureBuilder, dumps
from sysprune.dashboard._fits import summary_figures
from sysprune.dashboard._notes import NOTE_HEADING, artifact_filename, steps_csv, study_note, trial_note

_logger = get_logger(__name__)

#: Study user attribute the publisher reads budgets from when none are passed: ``{metric: budget}``.
STUDY_BUDGETS_ATTR = STUDY_BUDGETS
_ARTIFACT_NAMESPACE = uuid.UUID("6f1f4c52-0d7e-4c55-9b52-3d1b8f0a7c11")
#: Above this many unread trials, read the whole study's steps in one query instead of one query per trial.
_BULK_READ = 8


def default_artifact_dir(storage_url: str) -> Path:
    """Where artifacts live for a storage: ``artifacts/`` beside an SQLite file, else ``results/artifacts``.

    The default storage ``sqlite:///results/sysprune.db`` gives ``results/artifacts``. The runner and
    ``sysprune dashboard`` must agree on this directory: the database records artifact ids, the files live here.
    """
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(storage_url)
    except sa.exc.ArgumentError:
        return Path("results", "artifacts")
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / "artifacts"
    return Path("results", "artifacts")


class DashboardPublisher:
    """An Optuna-style callback that shows each finished trial's system metrics in optuna-dashboard.

    Call it after every finished trial (complete, pruned or failed), as ``study.optimize(..., callbacks=[...])``
    does, or from a runner's own loop after ``study.tell``. As a callback it never raises: a failure to publish
    is logged as a warning and the study goes on. :meth:`publish` and :meth:`publish_all` raise.

    Args:
        artifact_dir:
            Directory of the :class:`optuna.artifacts.FileSystemArtifactStore` that ``sysprune dashboard`` serves
            (see :func:`default_artifact_dir`); ``None`` publishes no CSV artifacts.
        budgets:
            ``{metric: budget}`` of the study, drawn in the figures and listed in the notes. ``None`` reads them
            from the study user attribute ``budgets`` if the runner set one, else there are none.
        metrics:
            The metrics that get a study figure (default: every system metric; those no trial measured get none).
        metric_store:
            Where step metrics are read (default: the store beside the study's storage); for tests.
    """

    def __init__(
        self,
        artifact_dir: str | os.PathLike[str] | None,
        *,
        budgets: Mapping[str, float] | None = None,
        metrics: Sequence[str] | None = None,
        metric_store: Any = None,
    ) -> None:
        if isinstance(metrics, str):
            raise TypeError(f"metrics must be a sequence of metric names, got the string {metrics!r}")
        metrics = system_metric_names() if metrics is None else metrics
        self._metrics = tuple(check_metric_name(m, field="metrics") for m in metrics)
        if budgets is not None:
            budgets = {check_metric_name(m, field="budgets"): float(b) for m, b in budgets.items()}
        self._budgets = budgets
        self._artifact_dir = Path(artifact_dir) if artifact_dir is not None else None
        self._artifact_store: Any = None
        self._metric_store = metric_store
        self._lock = threading.Lock()
        # (storage identity, study id) -> {trial id: TrialCurves}; finished trials never change.
        self._cache: dict[tuple[str, int], dict[int, TrialCurves]] = {}
        self._figures: dict[tuple[str, int], FigureBuilder] = {}
        self._warned: set[str] = set()

    # -- Optuna callback -------------------------------------------------------------------------------------
    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        try:
            self.publish(study, trial)
        except Exception as e:  # noqa: BLE001 - the dashboard must never stop a study
            kind = type(e).__name__
            level = _logger.debug if kind in self._warned else _logger.warning
            self._warned.add(kind)
            level("could not publish trial %d to the dashboard: %s: %s", trial.number, kind, e)

    # -- public API -----------------------------------------------------------------------------------------
    def publish(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Publish one finished trial (note, artifact) and refresh the study figures and note."""
        with self._lock:
            t0 = time.perf_counter()
            self._publish(study, [trial])
            _logger.debug("published trial %d in %.1f ms", trial.number, 1000 * (time.perf_counter() - t0))

    def publish_all(self, study: optuna.Study) -> int:
        """Publish every finished trial of ``study`` (its notes, artifacts, figures); return how many."""
        with self._lock:
            trials = finished_trials(study)
            self._publish(study, trials)
            return len(trials)

    # -- internals ------------------------------------------------------------------------------------------
    def _publish(self, study: optuna.Study, new: Sequence[FrozenTrial]) -> None:
        storage = _compat.study_storage(study)
        study_id = _compat.study_id(study)
        budgets = self._study_budgets(study)
        key = self._key(storage, study_id)
        known = self._cache.setdefault(key, {})
        finished = finished_trials(study)
        if any(_another_trial(known.get(_compat.trial_id(t)), t) for t in finished):
            # The study was deleted and re-created under the same id, and SQLite reused its trial ids: a trial is
            # (storage, trial id, start time), so everything kept for the old trials goes.
            known.clear()
            self._figures.pop(key, None)
        fresh = {_compat.trial_id(t): t for t in new if t.state in FINISHED}
        for t in finished:  # trials other workers finished since the last call
            if _compat.trial_id(t) not in known:
                fresh.setdefault(_compat.trial_id(t), t)
        curves = self._read(study, list(fresh.values()))
        known.update(curves)
        ids = [_compat.trial_id(t) for t in finished]
        listed = set(ids)
        ids += [tid for tid in fresh if tid not in listed]  # a trial the storage's list does not show yet
        ordered = [known[tid] for tid in ids if tid in known]

        republish = {_compat.trial_id(t) for t in new}  # the trials asked for are (re)written even if cached
        to_write = [c for tid, c in known.items() if tid in curves or tid in republish]
        attrs: dict[str, Any] = {}
        clear: list[str] = []
        notes = sa_.read_notes(storage, study_id, [c.trial_id for c in to_write] + [None])
        for c in to_write:
            self._trial_attrs(study, c, budgets, notes, attrs, clear)

        # The summary figures (what fits each budget, the compute spent) first: the dashboard shows them in order.
        summary = summary_figures(ordered, budgets, objective=_objective_name(study), n_steps=_steps(study))
        figures = {fid: dumps(fig) for fid, fig in summary.items()}
        figures.update(self._figures.setdefault(key, FigureBuilder()).study_figures(ordered, self._metrics, budgets))
        for fid, fig in figures.items():
            prefix = sa_.plot_key_prefix(fid)
            attrs.update(sa_.chunked(prefix, fig))
            clear.append(prefix)
        shown = [m for m in self._metrics if FIGURE_ID_PREFIX + m in figures]
        # what the machine or the model did not give; a dry run's predictions are absent by design where none ran
        unmeasured = [m for m in self._metrics if m not in shown and m not in DRY_RUN_METRICS]
        _note_attrs(notes, None, study_note(ordered, budgets, shown, unmeasured, list(summary)), attrs, clear)
        sa_.replace_study_system_attrs(storage, study_id, attrs, clear_prefixes=clear)

    def _trial_attrs(
        self,
        study: optuna.Study,
        c: TrialCurves,
        budgets: Mapping[str, float],
        notes: Mapping[int | None, tuple[int, str]],
        attrs: dict[str, Any],
        clear: list[str],
    ) -> None:
        _note_attrs(notes, c.trial_id, trial_note(c, budgets), attrs, clear)
        store = self._artifacts()
        if store is None or not c.steps:
            return
        name = artifact_filename(c.number)
        # A stable id: publishing the same trial again overwrites its file and record instead of adding one.
        artifact_id = str(uuid.uuid5(_ARTIFACT_NAMESPACE, f"{study.study_name}\0{c.trial_id}\0{c.datetime_start}"))
        store.write(artifact_id, io.BytesIO(steps_csv(c)))
        meta = {"artifact_id": artifact_id, "filename": name, "mimetype": "text/csv", "encoding": None}
        attrs[sa_.trial_artifact_prefix(c.trial_id) + artifact_id] = json.dumps(meta)

    def _artifacts(self) -> Any:
        if self._artifact_dir is None:
            return None
        if self._artifact_store is None:
            from optuna.artifacts import FileSystemArtifactStore

            self._artifact_dir.mkdir(parents=True, exist_ok=True)
            self._artifact_store = FileSystemArtifactStore(str(self._artifact_dir))
        return self._artifact_store

    def _study_budgets(self, study: optuna.Study) -> dict[str, float]:
        if self._budgets is not None:
            return dict(self._budgets)
        raw = study.user_attrs.get(STUDY_BUDGETS_ATTR)
        if not isinstance(raw, Mapping):
            return {}
        return {m: float(b) for m, b in raw.items() if m in METRICS and isinstance(b, (int, float))}

    def _read(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> dict[int, TrialCurves]:
        if not trials:
            return {}
        store = self._metric_store if self._metric_store is not None else store_for(_compat.study_storage(study))
        if len(trials) <= _BULK_READ:
            return {_compat.trial_id(t): from_trial(t, store.trial_steps(_compat.trial_id(t))) for t in trials}
        numbers = {_compat.trial_id(t): t.number for t in study.get_trials(deepcopy=False)}
        frame = store.load(study.study_name, numbers)
        by_number: dict[int, dict[int, dict[str, float | None]]] = {}
        columns = [c for c in frame.columns if c not in ("trial_number", "step")]
        for row in frame.itertuples(index=False):
            rec = row._asdict()
            by_number.setdefault(int(rec["trial_number"]), {})[int(rec["step"])] = {
                m: rec[m]
                for m in columns
                if rec[m] == rec[m]  # NaN != NaN: not recorded or missing
            }
        return {_compat.trial_id(t): from_trial(t, by_number.get(t.number, {})) for t in trials}

    @staticmethod
    def _key(storage: Any, study_id: int) -> tuple[Any, int]:
        return (storage_key(storage), study_id)


def _objective_name(study: optuna.Study) -> str:
    """The study's (first) objective metric, from the definition the runner recorded; ``objective`` if none."""
    identity = study.user_attrs.get(IDENTITY_ATTR)
    metrics = identity.get("objective", {}).get("metrics") if isinstance(identity, Mapping) else None
    return str(metrics[0]) if isinstance(metrics, list) and metrics else "objective"


def _steps(study: optuna.Study) -> int | None:
    steps = study.user_attrs.get(STUDY_STEPS)
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else None


def _another_trial(kept: TrialCurves | None, trial: FrozenTrial) -> bool:
    """Whether a kept trial with this trial's id is another trial (a deleted study's, whose id was reused)."""
    if kept is None:
        return False
    return kept.datetime_start != (trial.datetime_start.isoformat() if trial.datetime_start else None)


def _note_attrs(
    notes: Mapping[int | None, tuple[int, str]],
    trial_id: int | None,
    body: str,
    attrs: dict[str, Any],
    clear: list[str],
) -> None:
    version, current = notes.get(trial_id, (0, ""))
    if current == body:
        return
    if current.strip() and not current.startswith(NOTE_HEADING):
        whose = "the study" if trial_id is None else f"trial id {trial_id}"
        _logger.debug("keeping the hand-written note of %s", whose)
        return
    attrs[sa_.note_version_key(trial_id)] = version + 1
    prefix = sa_.note_key_prefix(trial_id)
    attrs.update(sa_.chunked(prefix, body))
    clear.append(prefix)


def publish_study(
    study: optuna.Study,
    artifact_dir: str | os.PathLike[str] | None,
    *,
    budgets: Mapping[str, float] | None = None,
) -> int:
    """Publish every finished trial of an existing study at once; return the number of trials published."""
    return DashboardPublisher(artifact_dir, budgets=budgets).publish_all(study)
