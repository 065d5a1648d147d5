"""optuna-dashboard's key layout sysprune writes to (a part of :mod:`sysprune._compat`, which re-exports every name
here; tests/test_compat.py checks them against the installed optuna-dashboard): notes, figures and artifact records
live in the study's system attributes under these keys, in chunks of :data:`DASHBOARD_CHUNK` characters."""

from __future__ import annotations


#: optuna-dashboard's chunk length for long study system attributes (notes and figures).
DASHBOARD_CHUNK = 2045
_PLOT_PREFIX = "dashboard:plot_data:"
_ARTIFACT_PREFIX = "dashboard:artifacts:"


def dashboard_plot_prefix(graph_object_id: str) -> str:
    """Where ``save_plotly_graph_object(study, fig, graph_object_id=...)`` keeps the figure's chunks."""
    return f"{_PLOT_PREFIX}{graph_object_id}:"


def dashboard_note_version_key(trial_id: int | None) -> str:
    """The key of a note's version (``None``: the study's note), as ``save_note`` writes it."""
    return "dashboard:note_ver" if trial_id is None else f"dashboard:{trial_id}:note_ver"


def dashboard_note_prefix(trial_id: int | None) -> str:
    """Where ``save_note`` keeps a note's chunks (``None``: the study's note)."""
    return "dashboard:note_str:" if trial_id is None else f"dashboard:{trial_id}:note_str:"


def dashboard_artifact_prefix(trial_id: int) -> str:
    """Where optuna-dashboard looks for a trial's artifact records among the study's system attributes."""
    return f"{_ARTIFACT_PREFIX}{trial_id}:"


def is_dashboard_artifact_key(key: str) -> bool:
    return key.startswith(_ARTIFACT_PREFIX)
