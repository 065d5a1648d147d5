"""``sysprune.plot_*``: the figures ``sysprune run`` publishes and ``compare`` / ``report`` write, as plotly figures
built from a study, as ``optuna.visualization.plot_*`` returns them. Re-exported by :mod:`sysprune`."""

from sysprune.plot._figures import plot_anytime, plot_compute, plot_importances, plot_step_metric, plot_what_fits

__all__ = ["plot_anytime", "plot_compute", "plot_importances", "plot_step_metric", "plot_what_fits"]
