"""Figures you can read, on hand-made runs: a monotone median line per policy whose seeds keep their best once their
search ended, log axes where values span decades, and one-panel-per-policy figures that wrap instead of widening."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sysprune.analysis import _compare, _figures
from tests.analysis._helpers import row, tiny_spec


def test_a_seed_that_ended_keeps_its_best_so_the_median_never_goes_back():
    # seed A ends at compute 2 with 0.9; seeds B and C go on to 10 and only reach 0.5 and 0.6
    curves = [[(1.0, 0.9), (2.0, 0.9)], [(1.0, 0.2), (10.0, 0.5)], [(3.0, 0.4), (10.0, 0.6)]]
    grid = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0]
    med, lo, hi = _figures.anytime_bands(curves, grid, "maximize")
    # before anything is feasible the median is missing, not 0; once two of three seeds have one it is a number
    assert med[0] is None
    vals = [m for m in med if m is not None]
    assert vals == sorted(vals)  # monotone
    assert med[-1] == 0.6 and hi[-1] == pytest.approx(0.75)  # A keeps its 0.9 (dropped, the band would be 0.575)
    assert lo[3] == pytest.approx(0.3) and med[3] == 0.4


def test_minimising_bands_keep_the_better_quartile_on_the_same_side():
    curves = [[(1.0, 3.0)], [(1.0, 1.0)], [(1.0, 2.0)]]
    med, lo, hi = _figures.anytime_bands(curves, [1.0], "minimize")
    assert (med[0], lo[0], hi[0]) == (2.0, 2.5, 1.5)


def test_spans_decades():
    assert _figures.spans_decades([1.0, 50.0])
    assert not _figures.spans_decades([1.0, 9.0, None, math.nan])
    assert not _figures.spans_decades([0.0, 5.0])  # non-positive values are not on a log axis


def _result(policies, bytes_per_trial):
    runs = {}
    for p in policies:
        rows = [
            dataclasses.replace(row(i, value=0.5 + 0.1 * i), metrics={"model_bytes": b})
            for i, b in enumerate(bytes_per_trial)
        ]
        runs[(p, 0)] = _compare.digest(p, 0, f"s.{p}.0", rows, "maximize")
    spec = dataclasses.replace(tiny_spec(), budgets={"model_bytes": 1e5})
    return _compare.CompareResult(spec, list(policies), [0], 0.005, "tpe", "sqlite://", runs)


def test_the_anytime_figure_has_one_line_and_one_band_per_policy_and_trials_only_on_request():
    r = _result(["none", "budget", "threshold"], [1e3, 1e4, 1e6])
    fig = _figures.anytime_figure(r)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["none", "budget", "threshold"]
    assert len(fig.data) == 6 and not any(t.mode == "markers" for t in fig.data)
    assert any(t.mode == "markers" for t in _figures.anytime_figure(r, dots=True).data)


def test_what_fits_is_logarithmic_over_decades_and_wraps_its_panels():
    policies = [f"p{i}" for i in range(9)]
    fig = _figures.what_fits_figure(_result(policies, [1e3, 1e4, 1e6]), "model_bytes")
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.width <= 260 * _figures.PANELS_PER_ROW + 160 and fig.layout.height > 600  # 3 rows of panels
    narrow = _figures.what_fits_figure(_result(["none", "budget"], [5e4, 8e4, 9e4]), "model_bytes")
    assert narrow.layout.xaxis.type == "linear"
