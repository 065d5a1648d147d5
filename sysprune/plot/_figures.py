"""The public figure functions: thin wrappers over the builders the dashboard publisher
(:mod:`sysprune.dashboard._figures`, :mod:`sysprune.dashboard._fits`) and the analyses
(:mod:`sysprune.analysis._figures`, :mod:`sysprune.analysis._rq1`) use, so a figure here is the one the commands
write. Each returns a ``plotly.graph_objects.Figure``; a study with nothing to draw is a ``ValueError`` naming what
is missing, never an empty figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from sysprune import _compat
from sysprune._attrs import STUDY_BUDGETS
from sysprune.analysis._compare import collect, parse_policies, seeds_of
from sysprune.analysis._figures import anytime_figure
from sysprune.analysis._rq1 import _importance_figure, build_report
from sysprune.dashboard._curves import TrialCurves, finished_trials, from_trial
from sysprune.dashboard._figures import FigureBuilder
from sysprune.dashboard._fits import compute_figure, what_fits_figure
from sysprune.dashboard._publish import _objective_name, _steps
from sysprune.spec import load_spec
from sysprune.storage._step_table import store_for

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _figure(fig: dict[str, Any] | str) -> "go.Figure":
    import plotly.graph_objects as go

    return go.Figure(json.loads(fig) if isinstance(fig, str) else fig)


def _curves(study: optuna.Study) -> list[TrialCurves]:
    store = store_for(_compat.study_storage(study))
    return [from_trial(t, store.trial_steps(_compat.trial_id(t))) for t in finished_trials(study)]


def _budgets(study: optuna.Study) -> dict[str, float]:
    budgets = study.user_attrs.get(STUDY_BUDGETS)
    return {str(k): float(v) for k, v in budgets.items()} if isinstance(budgets, dict) else {}


def plot_step_metric(study: optuna.Study, metric: str) -> "go.Figure":
    """``metric`` per step, one line per finished trial (a structural metric, measured at step -1 and the last
    step only, as points), its state's colour, the budget as a dashed line: the dashboard's per-metric figure."""
    fig = FigureBuilder().figure_json(metric, _curves(study), _budgets(study).get(metric))
    if fig is None:
        raise ValueError(f"no finished trial of study {study.study_name!r} measured {metric!r}")
    return _figure(fig)


def plot_what_fits(study: optuna.Study, metric: str, budget: float | None = None) -> "go.Figure":
    """The objective against the final ``metric`` of every finished trial: feasible, pruned by a budget, pruned on
    its curve and failed in distinct colours and symbols, with the budget line (default: the study's budget of
    ``metric``, if it has one): the dashboard's what-fits figure."""
    budget = _budgets(study).get(metric) if budget is None else float(budget)
    fig = what_fits_figure(_curves(study), metric, budget, _objective_name(study))
    if fig is None:
        raise ValueError(f"no finished trial of study {study.study_name!r} measured {metric!r}")
    return _figure(fig)


def plot_compute(study: optuna.Study) -> "go.Figure":
    """Cumulative CPU seconds by trial state against the time trials finished, and the training the pruned trials
    did not run: what pruning saved (the dashboard's compute figure)."""
    fig = compute_figure(_curves(study), _steps(study))
    if fig is None:
        raise ValueError(f"study {study.study_name!r} has no finished trial with a measured compute")
    return _figure(fig)


def plot_importances(storage_url: str, study_name: str, *, n_permutations: int = 5, seed: int = 0) -> "go.Figure":
    """RQ1: how much each hyperparameter drives each system metric (fANOVA, pruned trials included), the heatmap
    ``sysprune report`` writes."""
    return _importance_figure(build_report(storage_url, study_name, n_permutations=n_permutations, seed=seed))


def plot_anytime(
    study_file: str | Path,
    *,
    storage_url: str,
    policies: str | Sequence[str] = ("none", "median", "budget"),
    seeds: int = 5,
) -> "go.Figure":
    """Best feasible objective against cumulative compute per policy (median over seeds, IQR band): the anytime
    figure ``sysprune compare`` writes, read from the comparison's stored studies (``compare`` must have run them)."""
    spec = load_spec(study_file)
    return anytime_figure(
        collect(
            spec,
            parse_policies(policies if isinstance(policies, str) else list(policies)),
            seeds_of(spec, seeds),
            storage_url=storage_url,
        )
    )
