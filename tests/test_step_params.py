"""``load_step_metrics(..., params=True)``: the trials' parameters beside their step metrics, one column each."""

from __future__ import annotations

import uuid

import optuna
import pandas as pd

from sysprune import load_step_metrics
from sysprune.metrics._registry import metric_names
from sysprune.storage._step_table import MetricStore
from tests._optuna import trial_id


def test_one_column_per_parameter_after_state(rdb_url):
    name = f"p-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=rdb_url, study_name=name)
    store = MetricStore(rdb_url)
    for lr, kind in ((0.1, "a"), (0.01, "b")):
        t = study.ask()
        t.suggest_float("lr", 1e-3, 1.0, log=True)
        t.suggest_categorical("kind", ["a", "b"])
        if kind == "b":
            t.suggest_int("width", 8, 64)  # only this trial samples it
        for step in (-1, 0):
            store.write_step(
                study_name=name, trial_id=trial_id(t), trial_number=t.number, step=step, metrics={"cpu_s": 1.0 + step}
            )
        study.tell(t, 1.0)
    df = load_step_metrics(rdb_url, name, params=True)
    assert list(df.columns[:6]) == ["trial_number", "step", "state", "params_kind", "params_lr", "params_width"]
    assert list(df.columns[6:]) == list(metric_names())
    by_trial = df.groupby("trial_number").first()
    for t in study.trials:
        row = by_trial.loc[t.number]
        assert row.params_lr == t.params["lr"] and row.params_kind == t.params["kind"]
    assert pd.isna(by_trial.loc[0].params_width) and by_trial.loc[1].params_width == study.trials[1].params["width"]
    assert df.params_lr.dtype == "float64"
    # Without params the columns are as before; a study object gives the same table as its URL.
    assert "params_lr" not in load_step_metrics(rdb_url, name).columns
    pd.testing.assert_frame_equal(load_step_metrics(study, params=True), df)
