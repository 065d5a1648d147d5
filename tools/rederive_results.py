"""Re-derive the Results chapter's summary numbers from the CSVs beside it, without sysprune's code.

    python tools/rederive_results.py [results]

Reads ``rq2_summary.csv``, ``rq1_summary.csv``, ``friedman.csv`` and each live study's ``compare.csv`` under the
folder, recomputes with scipy and statsmodels only (no ``import sysprune``):

* every saving of the RQ2 table from the per-seed compute-to-target in ``compare.csv`` (reference over policy),
  its geometric mean, 95 % t interval on the logs, paired-t p and Holm's adjustment over the whole table;
* the Friedman blocks (one per study x seed with a target; "not reached" ranked last) and the chi2 statistic;
* RQ1's Holm adjustment within each (recording, family) and which parameters are drivers (Holm p < 0.05);

checks each against the CSVs and that the cell the chapter prints for it is in ``RESULTS.md``. Prints one line per
check that fails and a count; exit status 1 if any failed, 0 if all agree.
"""

from __future__ import annotations

import csv
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

REL = 1e-6  # the CSVs hold Python's repr of each float: agreement far below any printed digit
ALPHA = 0.05


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(s: str | None) -> float | None:
    return None if s in (None, "") else float(s)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= REL * max(1.0, abs(a), abs(b))


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


class Checker:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.n = 0

    def same(self, what: str, mine: float | None, theirs: float | None) -> None:
        self.n += 1
        if not _close(mine, theirs):
            self.failed.append(f"{what}: re-derived {mine!r}, the CSV says {theirs!r}")

    def true(self, what: str, ok: bool) -> None:
        self.n += 1
        if not ok:
            self.failed.append(what)


def _ratio_ci(ratios: list[float]) -> tuple[float | None, float | None, float | None, float | None]:
    """Geometric mean, 95 % t interval of the logs mapped back, paired-t p (H0: ratio 1)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    n = len(logs)
    if n == 0:
        return None, None, None, None
    m = float(logs.mean())
    if n < 2:
        return math.exp(m), None, None, None
    sd = float(logs.std(ddof=1))
    if sd == 0:
        return math.exp(m), math.exp(m), math.exp(m), (None if m == 0 else 0.0)
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return math.exp(m), math.exp(m - half), math.exp(m + half), float(stats.ttest_1samp(logs, 0.0).pvalue)


def _ctt(row: dict[str, str]) -> float:
    v = _num(row["compute_to_target_cpu_s"])
    return math.inf if v is None else v


def check_rq2(folder: Path, chapter: str, c: Checker) -> None:
    rows = _read(folder / "rq2_summary.csv")
    compares: dict[str, list[dict[str, str]]] = {}
    for study in dict.fromkeys(r["study"] for r in rows):
        compares[study] = _read(folder / study / "compare.csv")
    pvals: list[float | None] = []
    for r in rows:
        by = {(x["policy"], int(x["seed"])): x for x in compares[r["study"]]}
        seeds = sorted({s for _, s in by})
        ratios = []
        for s in seeds:
            pol, ref = by[(r["policy"], s)], by[(r["reference"], s)]
            a, b = _ctt(ref), _ctt(pol)
            if math.isfinite(a) and math.isfinite(b) and b > 0:
                ratio = a / b
                c.same(f"{r['study']} {r['policy']} seed {s}: saving_vs_{r['reference']}", ratio,
                       _num(pol[f"saving_vs_{r['reference']}"]))  # fmt: skip
                ratios.append(ratio)
        gm, lo, hi, p = _ratio_ci(ratios)
        where = f"{r['study']} {r['policy']} vs {r['reference']}"
        c.true(f"{where}: {len(ratios)} paired ratios, the CSV says {r['n_ratio']}", len(ratios) == int(r["n_ratio"]))
        for name, mine in (("gm", gm), ("lo", lo), ("hi", hi), ("p", p)):
            c.same(f"{where}: {name}", mine, _num(r[name]))
        pvals.append(p)
    idx = [i for i, p in enumerate(pvals) if p is not None]
    adjusted: list[float | None] = [None] * len(rows)
    if idx:
        for i, a in zip(idx, multipletests([pvals[i] for i in idx], method="holm")[1]):
            adjusted[i] = float(a)
    for r, a in zip(rows, adjusted):
        where = f"{r['study']} {r['policy']} vs {r['reference']}"
        c.same(f"{where}: p_holm", a, _num(r["p_holm"]))
        all_identical = int(r["identical"]) == int(r["seeds"]) and int(r["seeds"]) > 0
        gm, lo, hi = _num(r["gm"]), _num(r["lo"]), _num(r["hi"])
        if all_identical or gm is None or lo is None or a is None:
            continue
        cell = f"{gm:.2f}x [{lo:.2f}, {hi:.2f}], p {_p(a)}"
        c.true(f"{where}: the chapter does not print {cell!r}", cell in chapter)


def check_friedman(folder: Path, chapter: str, c: Checker) -> None:
    path = folder / "friedman.csv"
    if not path.exists():
        return
    table = _read(path)
    policies = [k for k in table[0] if k != "block"]
    studies = list(dict.fromkeys(r["study"] for r in _read(folder / "rq2_summary.csv")))
    blocks: list[tuple[str, list[float]]] = []
    for study in studies:
        rows = _read(folder / study / "compare.csv")
        by = {(x["policy"], int(x["seed"])): x for x in rows}
        for s in sorted({s for _, s in by}):
            if _num(by[("none", s)]["reference_val"]) is None:
                continue  # no feasible trial under `none`: no target, no block
            blocks.append((f"{study} s{s}", [_ctt(by[(p, s)]) for p in policies]))
    c.true(f"friedman: {len(blocks)} blocks re-derived, the CSV has {len(table)}", len(blocks) == len(table))
    for (label, values), row in zip(blocks, table):
        c.true(f"friedman: block {label} vs the CSV's {row['block']}", label == row["block"])
        for p, v in zip(policies, values):
            c.same(f"friedman {label} {p}", v, float(row[p]) if row[p] not in ("", "inf") else math.inf)
    ranks = np.vstack([stats.rankdata(v) for _, v in blocks])
    chi2, p = stats.friedmanchisquare(*ranks.T)
    printed = f"Friedman chi2 = {float(chi2):.2f} (p {_p(float(p))})"
    c.true(f"friedman: the chapter does not print {printed!r}", printed in chapter)


def check_rq1(folder: Path, chapter: str, c: Checker) -> None:
    rows = _read(folder / "rq1_summary.csv")
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[(r["study"], r["family"])].append(r)
    for (study, family), rs in groups.items():
        ps = [_num(r["p"]) for r in rs]
        known = [i for i, p in enumerate(ps) if p is not None]
        adj = multipletests([ps[i] for i in known], method="holm")[1] if known else []
        for i, a in zip(known, adj):
            r = rs[i]
            c.same(f"rq1 {study} {family} {r['param']}: p_holm", float(a), _num(r["p_holm"]))
            c.true(f"rq1 {study} {family} {r['param']}: driver flag", (float(a) < ALPHA) == (r["driver"] == "True"))
        for r in rs:
            if r["driver"] != "True":
                continue
            ci = f" [{float(r['ci_lo']):.2f}, {float(r['ci_hi']):.2f}]" if r["ci_lo"] else ""
            cell = f"`{r['param']}` {float(r['importance']):.2f}{ci}, p {_p(float(r['p_holm']))}"
            c.true(f"rq1 {study} {family}: the chapter does not print {cell!r}", cell in chapter)


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "results")
    chapter = (folder / "RESULTS.md").read_text()
    chapter = re.sub(r"\s+", " ", chapter)
    c = Checker()
    check_rq2(folder, chapter, c)
    check_friedman(folder, chapter, c)
    check_rq1(folder, chapter, c)
    for line in c.failed:
        print(line)
    print(f"{folder}: {c.n - len(c.failed)} of {c.n} re-derived numbers and cells agree")
    return 1 if c.failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
