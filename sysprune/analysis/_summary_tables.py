"""The chapter's two summary tables as numbers (rows of dicts, written to ``rq1_summary.csv`` and
``rq2_summary.csv``) and as Markdown cells: what :mod:`._chapter` prints and an independent re-derivation from the
CSVs must reproduce.

RQ2: for every live-compared study and policy, the saving against ``none``, ``plain`` and ``threshold`` (geometric
mean of per-seed compute-to-target ratios with a 95 % t interval on the logs; p-values Holm-adjusted over every
comparison in the table), the held-out test score difference against ``none``, and the replay's false-prune rate
with its exact binomial interval. RQ1: for every recording and metric family, the drivers.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from sysprune.analysis._inference import Estimate, holm, ratio_ci
from sysprune.analysis._plan import StudyOutcome
from sysprune.analysis._rq2 import Versus, false_prunes, held_out_difference, versus
from sysprune.analysis._stats import NA

#: The references of the RQ2 summary table, in its column order.
REFERENCES = ("none", "plain", "threshold")
ALPHA = 0.05


def saving_ratios(result: Any, policy: str, reference: str) -> list[float]:
    """Per seed, the policy's saving against ``reference`` where both reached the target (compare.csv's
    ``saving_vs_<reference>`` column: the reference group's compute-to-target over the policy's)."""
    out = []
    for s in result.seeds:
        v = result.runs[(policy, s)].savings.get(reference)
        if isinstance(v, float) and math.isfinite(v) and v > 0:
            out.append(v)
    return out


def rq2_rows(outcomes: list[StudyOutcome]) -> list[dict[str, Any]]:
    """One row per (study, policy, reference) with every number of the RQ2 summary; p Holm-adjusted over all."""
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        r = o.compare
        if r is None:
            continue
        for p in r.policies:
            if p == "none":
                continue
            test = held_out_difference(r, p, "none")
            fp = _false_prunes(o, p)
            for ref in REFERENCES:
                if ref not in r.policies or ref == p:
                    continue
                v = versus(r, p, ref)
                est = ratio_ci(saving_ratios(r, p, ref))
                rows.append(
                    {
                        "study": r.spec.name,
                        "budget": ", ".join(f"{k}<={b:g}" for k, b in o.budgets.items()),
                        "policy": p,
                        "reference": ref,
                        "seeds": v.seeds,
                        "reached": v.reached,
                        "ref_reached": v.ref_reached,
                        "identical": v.identical,
                        "n_ratio": est.n,
                        "gm": est.point,
                        "lo": est.lo,
                        "hi": est.hi,
                        "p": est.p,
                        "effect_dz": est.effect,
                        "wilcoxon_p": v.wilcoxon,
                        "test_n": test.n,
                        "test_diff": test.point,
                        "test_lo": test.lo,
                        "test_hi": test.hi,
                        "fp_n": fp.n,
                        "fp_rate": fp.point,
                        "fp_lo": fp.lo,
                        "fp_hi": fp.hi,
                        "_versus": v,
                    }
                )
    adjusted = holm([row["p"] for row in rows])
    for row, a in zip(rows, adjusted):
        row["p_holm"] = a
    return rows


def _false_prunes(o: StudyOutcome, policy: str) -> Estimate:
    rp = o.replay
    if rp is None or policy not in rp.replays:
        return Estimate(0, None)
    return false_prunes([x.best_pruned for x in rp.replays[policy].results])


def fmt_p(p: float | None) -> str:
    if p is None:
        return NA
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def ratio_cell(row: dict[str, Any]) -> str:
    """A saving as the chapter prints it: identical decisions as such, else the geometric mean [95 % CI], the
    Holm-adjusted p and, where a side did not reach the target at some seeds, how many reached it."""
    v: Versus | None = row.get("_versus")
    seeds = row["seeds"]
    if v is not None and v.all_identical:
        return f"identical decisions ({seeds}/{seeds} seeds)"
    if row["n_ratio"] == 0:
        return f"{NA} (reached {row['reached']}/{seeds}, reference {row['ref_reached']}/{seeds})"
    cell = f"{row['gm']:.2f}x"
    if row["lo"] is not None:
        cell += f" [{row['lo']:.2f}, {row['hi']:.2f}], p {fmt_p(row['p_holm'])}"
    if row["n_ratio"] < seeds:
        cell += f" ({row['n_ratio']}/{seeds} both reached)"
    return cell


def diff_cell(n: int, point: float | None, lo: float | None, hi: float | None) -> str:
    if point is None:
        return NA
    return f"{point:+.4f}" + (f" [{lo:+.4f}, {hi:+.4f}]" if lo is not None else "") + f" (n={n})"


def rate_cell(n: int, point: float | None, lo: float | None, hi: float | None) -> str:
    if point is None:
        return NA
    return f"{round(point * n)}/{n} [{lo:.0%}, {hi:.0%}]"


def rq2_table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The RQ2 summary table: one line per (study, policy), a column per reference."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        key = (row["study"], row["policy"])
        line = out.setdefault(
            key,
            {
                "study (budget)": f"{row['study']} ({row['budget']})",
                "policy": f"`{row['policy']}`",
                **{f"saving vs {ref}": "" for ref in REFERENCES},
                "test score vs none": diff_cell(row["test_n"], row["test_diff"], row["test_lo"], row["test_hi"]),
                "false prunes (replay)": rate_cell(row["fp_n"], row["fp_rate"], row["fp_lo"], row["fp_hi"]),
            },
        )
        line[f"saving vs {row['reference']}"] = ratio_cell(row)
    return list(out.values())


def rq1_rows(outcomes: list[StudyOutcome], alpha: float = ALPHA) -> list[dict[str, Any]]:
    """One row per (recording, family, parameter) with its importance, interval and p-values."""
    rows = []
    for o in outcomes:
        rep = o.report
        if rep is None:
            continue
        for f in rep.families:
            inf = f.inference
            for k in sorted(inf.importance):
                lo, hi = inf.ci.get(k, (None, None))
                rows.append(
                    {
                        "study": o.spec.name,
                        "pair": f"{o.spec.model} on {o.spec.dataset.name}",
                        "family": f.family,
                        "target": f.scaled_label,
                        "param": k,
                        "n": inf.n,
                        "importance": inf.importance[k],
                        "ci_lo": lo,
                        "ci_hi": hi,
                        "p": inf.p.get(k),
                        "p_holm": inf.p_holm.get(k),
                        "driver": inf.p_holm.get(k, 1.0) < alpha,
                        "permutations": inf.permutations,
                    }
                )
    return rows


def rq1_table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The RQ1 summary: one line per (model x dataset, family): its drivers, importance [CI], Holm p."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["pair"], row["family"])
        line = out.setdefault(
            key, {"rows": [], "pair": row["pair"], "family": row["family"], "target": row["target"], "n": row["n"]}
        )
        line["rows"].append(row)
    table = []
    for line in out.values():
        drivers = sorted((r for r in line["rows"] if r["driver"]), key=lambda r: -r["importance"])
        others = sorted((r for r in line["rows"] if not r["driver"]), key=lambda r: -r["importance"])

        def cell(r: dict[str, Any]) -> str:
            ci = f" [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]" if r["ci_lo"] is not None else ""
            return f"`{r['param']}` {r['importance']:.2f}{ci}, p {fmt_p(r['p_holm'])}"

        table.append(
            {
                "model on data": line["pair"],
                "family (target)": f"{line['family']} ({line['target']})",
                "trials": str(line["n"]),
                "drivers: importance [95% CI], Holm p": "; ".join(cell(r) for r in drivers) or "none found",
                "strongest other": cell(others[0]) if others else NA,
            }
        )
    return table


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """The rows with every number unrounded (private fields, starting with ``_``, left out)."""
    fields = [k for k in (rows[0] if rows else {}) if not k.startswith("_")]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return path
