"""Hand-made trial rows and tiny real studies for the analysis tests."""

from __future__ import annotations

import datetime

from sysprune.spec import parse_spec
from sysprune.analysis._trials import TrialRow

T0 = datetime.datetime(2026, 1, 1)


def row(
    number: int,
    state: str = "COMPLETE",
    value: float | None = None,
    compute: float | None = 1.0,
    *,
    infeasible: bool = False,
    rule: str | None = None,
) -> TrialRow:
    return TrialRow(
        number=number,
        state=state,
        params={},
        value=value,
        values=None if value is None else [value],
        constraints={"n_params": 1.0 if infeasible else -1.0},
        rule=rule,
        last_step=None,
        compute=compute,
        process_cpu=compute,
        worker_cpu=0.0,
        wall=compute,
        start=T0 + datetime.timedelta(seconds=number),
        complete=T0 + datetime.timedelta(seconds=number, milliseconds=500),
    )


def tiny_spec(**over):
    """A torch MLP on digits: 3 steps, a few trials; widths 8..256 so an n_params budget splits the space."""
    raw = {
        "name": "tiny",
        "model": "torch_mlp",
        "steps": 3,
        "n_trials": 4,
        "seed": 1,
        "dataset": {"name": "digits"},
        "sampler": {"name": "random"},
        "search_space": {
            "width": {"type": "int", "low": 8, "high": 256, "log": True},
            "n_layers": 1,
            "batch_size": 128,
        },
        "trial": {"infer_repeats": 3, "infer_batch_size": 64},
        "budgets": {"n_params": 5000},
    }
    raw.update(over)
    return parse_spec(raw)
