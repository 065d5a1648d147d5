"""``sysprune report`` (RQ1): how much each hyperparameter explains each system metric, pruned trials included.

The target per trial and metric is chosen so trials that stopped at different steps compare fairly (a total taken
at each trial's last step would credit whatever decided *when* it stopped — the learning rate, through pruning —
instead of what drives the cost):

* cumulative metrics (``wall_s``, ``cpu_s``, ``energy_j``): the **cost per step** = value at the trial's last
  training step / steps it ran;
* structural metrics (size, latency, model memory: functions of the architecture): the value at the first step the
  trial measured (the pre-training probe, step -1, when recorded — so trials pruned before training count too);
* other level metrics (``rss_mb``, ``peak_rss_mb``, ...): the value at **step 0**, a step every trained trial ran.

Importances are Optuna's fANOVA (:class:`optuna.importance.FanovaImportanceEvaluator`) on a throw-away in-memory
study whose trials are the stored ones — COMPLETE, PRUNED and FAILED alike, whatever the number of objectives —
with the target as their value (Optuna's own helpers would see only COMPLETE trials). They are *not* normalised:
each is the share of the target's variance that parameter explains alone — on the **log scale** when every value is
positive (:func:`on_log_scale`): system metrics are ratio-scale and hyperparameters change them by factors, and on
the raw scale the few largest trials own most of the variance, so a split that isolates them by chance reads as an
importance (a parameter that plainly sets a metric then fails its test). **Noise floor**: the same evaluator on
the target randomly permuted across trials (``n_permutations`` times); the largest importance seen there is what
fANOVA reads into a target with no relation to the parameters. An importance below it is not a finding.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from sysprune import _compat
from sysprune.metrics._registry import METRICS, metric_names
from sysprune.analysis._stats import NA
from sysprune.storage._step_table import MetricStore
from sysprune.analysis._trials import load_study
from sysprune.analysis import _figures
from sysprune.analysis._page import write_page
from sysprune.metrics._format import records_table
from sysprune.analysis import _evolution
from sysprune.analysis._families import families
from sysprune.analysis._importance import BOOTSTRAPS, Inference, fanova, infer, spearman
from sysprune.analysis._paths import out_file

MIN_TRIALS = 5


def is_system(metric: str) -> bool:
    m = METRICS.get(metric)
    return m is not None and m.is_system


def is_structural(metric: str) -> bool:
    """Fixed by the architecture (measured at the pre-training probe and the last step): kind ``structural``."""
    m = METRICS.get(metric)
    return m is not None and m.kind == "structural"


def target_label(metric: str) -> str:
    if metric in metric_names("cumulative"):
        return f"{metric} per step"
    if is_structural(metric):
        return metric
    return f"{metric} at step 0"


def targets(df, metric: str) -> dict[int, float]:
    """trial number → the metric's comparable value (see the module docstring); trials without one are left out."""
    if metric not in df.columns:
        return {}
    sub = df[["trial_number", "step", metric]].dropna()
    out: dict[int, float] = {}
    for number, g in sub.groupby("trial_number"):
        g = g.sort_values("step")
        if metric in metric_names("cumulative"):
            trained = g[g["step"] >= 0]
            if trained.empty:
                continue
            last = trained.iloc[-1]
            out[int(number)] = float(last[metric]) / (int(last["step"]) + 1)
        elif is_structural(metric):
            out[int(number)] = float(g.iloc[0][metric])
        else:
            at0 = g[g["step"] == 0]
            if not at0.empty:
                out[int(number)] = float(at0.iloc[0][metric])
    return out


def on_log_scale(values: list[float]) -> tuple[list[float], bool]:
    """The values fANOVA is run on, and whether they are logarithms: ``log`` of each when all are positive and
    finite (sizes, times, memory, latency), else the values as they are (a memory delta can be zero or negative)."""
    if values and all(math.isfinite(v) and v > 0 for v in values):
        return [math.log(v) for v in values], True
    return list(values), False


def usable(trials: list[optuna.trial.FrozenTrial], target: dict[int, float]) -> list[optuna.trial.FrozenTrial]:
    """The trials fANOVA can use for ``target``: with parameters and a finite value."""
    return [t for t in trials if t.number in target and t.params and math.isfinite(target[t.number])]


def importances(
    trials: list[optuna.trial.FrozenTrial], target: dict[int, float], *, seed: int = 0, n_permutations: int = 5
) -> tuple[dict[str, float], float | None, int]:
    """(importance per parameter, noise floor, trials used), on :func:`on_log_scale`'s scale. Empty when fewer
    than MIN_TRIALS have a target."""
    used = usable(trials, target)
    if len(used) < MIN_TRIALS or len({target[t.number] for t in used}) < 2:
        return {}, None, len(used)
    values, _ = on_log_scale([target[t.number] for t in used])
    real = fanova(used, values, seed, trees=64)
    rng = random.Random(seed)
    floor = 0.0
    for i in range(n_permutations):
        perm = list(values)
        rng.shuffle(perm)
        floor = max([floor, *fanova(used, perm, seed + 1 + i, trees=64).values()])
    return real, (floor if n_permutations else None), len(used)


@dataclass
class MetricReport:
    metric: str
    label: str
    n: int
    importance: dict[str, float]
    floor: float | None
    target: dict[int, float]
    log_scale: bool = False  # the importances are of log(target) (:func:`on_log_scale`)

    @property
    def scaled_label(self) -> str:
        """The label with the scale the importances were computed on (tables)."""
        return f"log {self.label}" if self.log_scale else self.label


@dataclass
class FamilyReport:
    """One metric family answered on its representative (:mod:`._families`), with its inference."""

    family: str
    metric: str
    label: str
    members: dict[str, float | None]  # another member -> Spearman's rho with the representative's target
    inference: Inference
    log_scale: bool = False

    @property
    def scaled_label(self) -> str:
        return f"log {self.label}" if self.log_scale else self.label


@dataclass
class StudyReport:
    study_name: str
    storage_url: str
    params: list[str]
    states: dict[str, int]
    metrics: list[MetricReport]
    n_directions: int
    families: list[FamilyReport] = field(default_factory=list)
    evolution: list[_evolution.Evolution] = field(default_factory=list)
    trial_params: dict[int, dict[str, Any]] = field(default_factory=dict)


def build_report(
    storage_url: str,
    study_name: str,
    *,
    n_permutations: int = 5,
    seed: int = 0,
    inference: bool = False,
    permutations: int | None = None,
    bootstraps: int = BOOTSTRAPS,
    jobs: int | None = None,
    cache: Path | None = None,
) -> StudyReport:
    """Importances of every system metric (with the ``n_permutations`` noise floor); with ``inference``, each
    metric family's representative with permutation p-values (``permutations``; None: enough for Holm over the
    parameters) and bootstrap intervals, and how each family evolves over training. ``cache``: a JSON file keeping
    each inference for the same trials and settings (``make results`` resumes without redoing them)."""
    from collections import Counter

    study = load_study(storage_url, study_name)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    df = MetricStore(storage_url).load(
        study_name, {_compat.trial_id(t): t.number for t in study.get_trials(deepcopy=False)}
    )
    params = sorted({p for t in trials for p in t.params})
    out = []
    for metric in [c for c in df.columns if is_system(c)]:
        tgt = targets(df, metric)
        if not tgt:
            continue
        imp, floor, n = importances(trials, tgt, seed=seed, n_permutations=n_permutations)
        log = on_log_scale([tgt[t.number] for t in usable(trials, tgt)])[1]
        out.append(MetricReport(metric, target_label(metric), n, imp, floor, tgt, log))
    rep = StudyReport(
        study_name, storage_url, params, dict(Counter(t.state.name for t in trials)), out, len(study.directions)
    )
    rep.trial_params = {t.number: dict(t.params) for t in trials}
    if inference:
        cached = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
        by_metric = {m.metric: m for m in out}
        for fam, members in families(by_metric).items():
            rep_m = by_metric[members[0]]
            used = usable(trials, rep_m.target)
            if len(used) < MIN_TRIALS or len({rep_m.target[t.number] for t in used}) < 2:
                continue
            values = on_log_scale([rep_m.target[t.number] for t in used])[0]
            key = json.dumps(
                [study_name, rep_m.metric, [t.number for t in used], values, permutations, bootstraps, seed]
            )
            if key in cached:
                inf = Inference(**{**cached[key], "ci": {k: tuple(v) for k, v in cached[key]["ci"].items()}})
            else:
                inf = infer(used, values, permutations=permutations, bootstraps=bootstraps, seed=seed, jobs=jobs)
                cached[key] = dataclasses.asdict(inf)
                if cache is not None:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    cache.write_text(json.dumps(cached))
            others = {m: spearman(rep_m.target, by_metric[m].target) for m in members[1:]}
            rep.families.append(FamilyReport(fam, rep_m.metric, rep_m.label, others, inf, rep_m.log_scale))
            drivers = inf.drivers() or sorted(inf.importance, key=lambda k: -inf.importance[k])[:1]
            rep.evolution.append(
                _evolution.evolve(df, fam, rep_m.metric, rep.trial_params, drivers[0] if drivers else None)
            )
    return rep


def importance_table(rep: StudyReport) -> list[dict[str, str]]:
    rows = []
    for m in rep.metrics:
        row = {"metric (target)": m.scaled_label, "trials": str(m.n)}
        for p in rep.params:
            v = m.importance.get(p)
            if v is None:
                row[p] = NA
            else:
                above = m.floor is not None and v > m.floor
                row[p] = f"**{v:.2f}**" if above else f"{v:.2f}"
        row["noise floor"] = NA if m.floor is None else f"{m.floor:.2f}"
        rows.append(row)
    return rows


def _p(p: float | None) -> str:
    return NA if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def family_table(rep: StudyReport, alpha: float = 0.05) -> list[dict[str, str]]:
    """One row per metric family: its representative, the drivers (Holm-adjusted permutation p < ``alpha``) with
    their importance and bootstrap interval, the strongest non-driver, and the members merged into it."""
    rows = []
    for f in rep.families:
        inf = f.inference
        drivers = inf.drivers(alpha)

        def cell(k: str) -> str:
            lo, hi = inf.ci.get(k, (None, None))
            ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
            return f"`{k}` {inf.importance[k]:.2f}{ci}, p {_p(inf.p_holm.get(k))}"

        rest = sorted((k for k in inf.importance if k not in drivers), key=lambda k: -inf.importance[k])
        rows.append(
            {
                "family (target)": f"{f.family} ({f.scaled_label})",
                "trials": str(inf.n),
                "drivers: importance [95% CI], Holm p": "; ".join(cell(k) for k in drivers) or "none found",
                "strongest other": cell(rest[0]) if rest else NA,
                "merged (Spearman rho)": ", ".join(
                    f"{k} {NA if r is None else f'{r:.2f}'}" for k, r in f.members.items()
                )
                or NA,
            }
        )
    return rows


def write_report(rep: StudyReport, out_dir: Path, df=None) -> list[Path]:

    out_dir.mkdir(parents=True, exist_ok=True)
    if df is None:
        df = MetricStore(rep.storage_url).load(rep.study_name)

    trials = {t.number: t for t in load_study(rep.storage_url, rep.study_name).get_trials(deepcopy=False)}
    figs = [_figures.write_html(_importance_figure(rep), out_dir / "rq1_importance.html")]
    for m in rep.metrics:
        figs.append(
            _figures.write_html(_metric_figure(rep, m, df, trials), out_file(out_dir, f"rq1_{m.metric}", ".html"))
        )
    states = ", ".join(f"{v} {k.lower()}" for k, v in sorted(rep.states.items()))
    objectives = f"; {rep.n_directions} objectives" if rep.n_directions > 1 else ""
    intro = (
        f"Trials: {states} (all with a value of the metric are used, pruned and failed included{objectives}). "
        "Cells: fANOVA importance — the share of the target's variance a hyperparameter explains alone "
        + (
            "(not normalised). **Bold**: above the noise floor (the largest importance fANOVA gives the same target "
            "permuted at random across trials); the rest is indistinguishable from noise. "
            if any(m.floor is not None for m in rep.metrics)
            else "(not normalised), without a test: the tests are per metric family, below. "
        )
        + "Targets: cumulative metrics as cost per step, structural ones at their first measurement, other level "
        'metrics at step 0; "log": on the log scale (every value positive).'
    )
    title = f"{rep.study_name}: what drives each system metric (RQ1)"
    page = write_page(out_dir / "rq1.md", title, intro, importance_table(rep), figs)
    if rep.families:
        figs.append(
            _figures.write_html(_importance_figure(rep, families=True), out_dir / "rq1_families.html", static=True)
        )
        evo = _evolution.figure(rep.evolution, rep.trial_params, f"{rep.study_name}: the metric families over training")
        figs.append(_figures.write_html(evo, out_dir / "rq1_evolution.html", static=True))
        figs.append(write_family_csv(rep, out_dir / "rq1_families.csv"))
        with page.open("a") as f:
            f.write("\n".join(["", "## By metric family, with inference", "", FAMILY_INTRO, "",
                               records_table(family_table(rep)), "", "During training:", "",
                               *(f"- {_evolution.sentence(e)}" for e in rep.evolution), ""]))  # fmt: skip
    return [page, *figs]


#: How to read :func:`family_table`.
FAMILY_INTRO = (
    "One target per metric family (its representative; the members merged into it follow it with the Spearman rho "
    "shown). A driver: a hyperparameter whose fANOVA importance is above what it gets with its own values "
    "permuted across trials (the others kept), Holm-corrected over the parameters (permutation p-value, enough "
    'permutations for the correction); importance with its bootstrap 95 % interval (trials resampled). "log": '
    "the importances are of the target's logarithm (every value positive)."
)


def write_family_csv(rep: StudyReport, path: Path) -> Path:
    """One row per family and parameter: the numbers of :func:`family_table`, unrounded."""
    import csv

    fields = ["family", "metric", "scale", "param", "n", "importance", "ci_lo", "ci_hi", "p", "p_holm",
              "permutations", "bootstraps"]  # fmt: skip
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for f in rep.families:
            inf = f.inference
            for k in sorted(inf.importance):
                lo, hi = inf.ci.get(k, ("", ""))
                w.writerow({"family": f.family, "metric": f.metric, "scale": "log" if f.log_scale else "raw",
                            "param": k, "n": inf.n,
                            "importance": inf.importance[k], "ci_lo": lo, "ci_hi": hi, "p": inf.p.get(k, ""),
                            "p_holm": inf.p_holm.get(k, ""), "permutations": inf.permutations,
                            "bootstraps": inf.bootstraps})  # fmt: skip
    return path


def _importance_figure(rep: StudyReport, families: bool = False):
    """The importance heat map: every metric with its noise floor, or (``families``) one row per metric family
    with the Holm-adjusted permutation p-value."""
    import plotly.graph_objects as go

    if families:
        z = [[f.inference.importance.get(p) for p in rep.params] for f in rep.families]
        text = [
            [
                "" if v is None else f"{v:.2f}" + ("*" if f.inference.p_holm.get(p, 1.0) < 0.05 else "")
                for v, p in zip(row, rep.params)
            ]
            for row, f in zip(z, rep.families)
        ]
        labels = [f"{f.family}: {f.scaled_label}" for f in rep.families]
    else:
        z = [[m.importance.get(p) for p in rep.params] for m in rep.metrics]
        text = [
            [
                ("" if v is None else f"{v:.2f}") + ("" if v is None or m.floor is None or v > m.floor else " (noise)")
                for v in row
            ]
            for row, m in zip(z, rep.metrics)
        ]
        labels = [m.scaled_label for m in rep.metrics]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=rep.params,
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
        )
    )
    what = "per metric family (* driver: Holm p < 0.05)" if families else "per system metric"
    fig.update_layout(
        title=f"{rep.study_name}: fANOVA importance {what}",
        template="plotly_white",
        width=900,
        height=160 + 60 * len(labels),
    )
    return fig


def _metric_figure(rep: StudyReport, m: MetricReport, df, trials: dict[int, Any]):
    """Per-step curves of the metric (every trial, by state) and one slice plot per hyperparameter."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = 1 + len(rep.params)
    cols = min(3, panels)  # panels wrap onto rows: the figure fits a page at any number of parameters
    nrows = math.ceil(panels / cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[f"{m.metric} per step", *rep.params], shared_yaxes=False)
    colors = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728"}
    sub = df[["trial_number", "step", m.metric]].dropna() if m.metric in df.columns else df.iloc[0:0]
    for state, (xs, ys, cd) in _figures.curves_by_state(sub, m.metric, trials).items():
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                line=dict(color=colors.get(state, "#7f7f7f"), width=1),
                marker=dict(size=3),
                name=state.lower(),
                legendgroup=state,
                customdata=cd,
                hovertemplate="#%{customdata[0]} %{customdata[1]}<br>step %{x}: %{y:.4g}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for c0, p in enumerate(rep.params, start=1):
        row, c = c0 // cols + 1, c0 % cols + 1
        xs, ys, cd, cs = [], [], [], []
        for number, v in sorted(m.target.items()):
            t = trials.get(number)
            if t is None or p not in t.params:
                continue
            xs.append(t.params[p])
            ys.append(v)
            cd.append([number, t.state.name])
            cs.append(colors.get(t.state.name, "#7f7f7f"))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                marker=dict(color=cs, size=5),
                customdata=cd,
                showlegend=False,
                hovertemplate="#%{customdata[0]} %{customdata[1]}<br>"
                f"{p} %{{x}}<br>{m.label} %{{y:.4g}}<extra></extra>",
            ),
            row=row,
            col=c,
        )
        dist = next((t.distributions.get(p) for t in trials.values() if p in t.distributions), None)
        if getattr(dist, "log", False):
            fig.update_xaxes(type="log", row=row, col=c)
        fig.update_yaxes(title_text=m.label if c == 1 else None, row=row, col=c)
    if m.log_scale or _figures.spans_decades(list(m.target.values())):
        fig.update_yaxes(type="log")
    imp = ", ".join(f"{k} {v:.2f}" for k, v in sorted(m.importance.items(), key=lambda kv: -kv[1])[:3])
    fig.update_layout(
        title=f"{rep.study_name}: {m.label} — importance {imp or NA}"
        + (f" (noise floor {m.floor:.2f})" if m.floor is not None else ""),
        template="plotly_white",
        width=1000,
        height=320 * nrows + 80,
    )
    return fig
