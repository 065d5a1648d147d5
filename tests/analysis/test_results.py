"""make results: the chapter from hand-made outcomes (answers first, claims only where a test supports them, the
goals' verdicts), an independent re-derivation of the RQ2 summary and the Friedman statistic from the written CSVs
alone, the quick mode's own folder, and a tiny plan end to end."""

from __future__ import annotations

import csv
import math
import random
import re

import numpy as np
import optuna
import pytest
from scipy import stats

from sysprune.analysis import _chapter, _chapter_method, _compare, _results
from sysprune.analysis._compare_report import write_csv as write_compare_csv
from sysprune.analysis._plan import OUT_FULL, Item, StudyOutcome
from tests.analysis._helpers import row, tiny_spec

REPO_STUDIES = __import__("pathlib").Path(__file__).resolve().parents[2] / "studies"
POLICIES = ["none", "budget", "threshold", "plain"]


def _run(policy, seed, rows):
    return _compare.digest(policy, seed, f"s.{policy}.{seed}", rows, "maximize")


def _study(name, costs, seeds=(0, 1, 2, 3, 4)):
    """A hand-made live comparison: every policy reaches 0.9 (none's best) after ``costs[policy][i]`` CPU s at
    seed i (0: never), an infeasible trial of 3 s first for ``none`` and ``plain``."""
    spec = tiny_spec(name=name)
    runs = {}
    for i, s in enumerate(seeds):
        for p in POLICIES:
            c = costs[p][i]
            rows = [row(0, value=0.5, compute=3.0, infeasible=True)] if p in ("none", "plain") else []
            rows.append(row(len(rows), value=0.9 if c else 0.6, compute=c or 1.0))
            runs[(p, s)] = _run(p, s, rows)
    result = _compare.CompareResult(spec, list(POLICIES), list(seeds), None, "tpe", "sqlite://", runs, 400)
    _compare.fill_targets(runs, None, "maximize", n_val=400)
    item = Item(name, 0, 0, "n_params", 0.5, 2, len(seeds), tuple(POLICIES))
    return StudyOutcome(item, spec, {"n_params": 5000.0}, 0.5, {"val": 400}, 0.0, compare=result)


def _outcomes():
    a = _study(
        "study_a",
        {
            "none": [1.0] * 5,  # + 3 s of infeasible work: 4 s to the target
            "budget": [1.0, 1.2, 0.9, 1.1, 1.0],  # ~4x less
            "threshold": [2.0, 2.5, 1.5, 3.0, 2.0],
            "plain": [1.0, 1.0, 1.0, 1.0, 0.0],  # plain misses at seed 4
        },
    )
    b = _study(
        "study_b",
        {
            "none": [1.0] * 5,
            "budget": [4.0, 3.0, 5.0, 4.5, 3.5],  # about none's 4 s: no difference
            "threshold": [1.0] * 5,
            "plain": [1.0] * 5,
        },
    )
    return [a, b]


def test_goal_verdict_needs_the_whole_interval():
    from sysprune.analysis._inference import ratio_ci

    assert _chapter.goal_verdict(ratio_ci([5.5, 6.0, 6.5, 6.2]), 5.0) == "met"
    assert _chapter.goal_verdict(ratio_ci([1.1, 1.2, 1.3]), 2.0) == "missed"
    assert _chapter.goal_verdict(ratio_ci([1.0, 9.0, 3.0]), 2.0).startswith("undecided")
    assert _chapter.goal_verdict(ratio_ci([4.0]), 2.0) == "undecided (too few seeds)"


def test_the_chapter_opens_with_both_answers_and_claims_only_what_its_tests_support(tmp_path):
    path = _chapter.write_chapter(
        _outcomes(), tmp_path, plan_name="test", plan=(), seconds=60.0, storage_url="sqlite://", load=("1.0", "2.0")
    )
    md = path.read_text()
    head = md.split("## The goals")[0]
    assert head.index(_chapter.Q1) < head.index(_chapter.Q2) < head.index("### The policies across all studies")
    # study_a: budget saves ~4x against none at 5 seeds, significant after Holm; study_b: no difference shown
    assert re.search(r"`budget` reached the target with less compute than `none` on study_a 3\.\d\dx \[", head)
    assert "no difference from `none` is shown on study_b" in head
    # plain missed at one seed of study_a: that seed is counted, not turned into a ratio
    assert "(4/5 both reached)" in md
    # the Friedman test over the 10 study x seed blocks, and its CD diagram embedded
    assert "Across all 10 study x seed blocks" in head
    assert "![critical-difference diagram](cd_diagram.png)" in md and (tmp_path / "cd_diagram.png").is_file()
    # the goals are defined, with a verdict from the interval
    goals = md.split("## The goals")[1].split("## Method")[0]
    assert "5x less compute than no pruning" in goals and "missed" in goals
    assert "## Threats to validity" in md and "one binomial standard error" in md
    assert (
        "**Toy scale.** A finished trial of `none` costs (median CPU s): study_a 2 s, study_b 2 s" in md
    )  # 3 s and 1 s
    # every table of the chapter has at most 8 columns
    widths = [line.count("|") - 1 for line in md.splitlines() if line.startswith("|")]
    assert widths and max(widths) <= 8


def _read(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def _num(x):
    return None if x == "" else float(x)


def test_the_rq2_summary_and_friedman_are_re_derived_from_the_csvs_alone(tmp_path):
    """Independent of sysprune's statistics: scipy and statsmodels straight on compare.csv's columns."""
    from statsmodels.stats.multitest import multipletests

    outcomes = _outcomes()
    for o in outcomes:
        write_compare_csv(o.compare, tmp_path / o.spec.name / "compare.csv")
    md = _chapter.write_chapter(outcomes, tmp_path, plan_name="t", plan=(), seconds=1.0, storage_url="x").read_text()
    summary = _read(tmp_path / "rq2_summary.csv")
    assert summary
    derived, ps = [], []
    for s in summary:
        rows = _read(tmp_path / s["study"] / "compare.csv")
        col = f"saving_vs_{s['reference']}"
        ratios = [float(r[col]) for r in rows if r["policy"] == s["policy"] and _num_or_none(r.get(col, ""))]
        logs = np.log(ratios)
        assert int(s["n_ratio"]) == len(ratios)
        if len(ratios) >= 2 and np.std(logs) > 0:
            half = stats.t.ppf(0.975, len(logs) - 1) * stats.sem(logs)
            derived.append((s, math.exp(logs.mean()), math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
            ps.append(float(stats.ttest_1samp(logs, 0.0).pvalue))
        elif len(ratios) >= 2:  # the same ratio at every seed: a point interval, p 0 unless that ratio is 1
            gm = math.exp(logs.mean())
            derived.append((s, gm, gm, gm))
            assert (s["p"] == "") == (gm == 1.0)
            if gm != 1.0:
                ps.append(0.0)
        else:
            assert s["p"] == ""
    holm = multipletests(ps, method="holm")[1]
    assert len(derived) >= 6
    tested = [d for d in derived if d[0]["p"] != ""]
    for s, gm, lo, hi in derived:
        assert float(s["gm"]) == pytest.approx(gm, rel=1e-4)
        assert float(s["lo"]) == pytest.approx(lo, rel=1e-4) and float(s["hi"]) == pytest.approx(hi, rel=1e-4)
    for (s, *_), p in zip(tested, holm):
        assert float(s["p_holm"]) == pytest.approx(p, rel=1e-3)
    # the Friedman statistic from compare.csv: compute-to-target per (study, seed), "not reached" ranked last
    blocks = []
    for o in outcomes:
        rows = _read(tmp_path / o.spec.name / "compare.csv")
        for seed in sorted({r["seed"] for r in rows}):
            by = {r["policy"]: r for r in rows if r["seed"] == seed}
            if by["none"]["reference_val"] != "":
                blocks.append([_num(by[p]["compute_to_target_cpu_s"]) or math.inf for p in POLICIES])
    chi2 = stats.friedmanchisquare(*np.array([stats.rankdata(b) for b in blocks]).T).statistic
    assert f"Friedman chi2 = {chi2:.2f}" in md
    assert len(_read(tmp_path / "friedman.csv")) == len(blocks) == 10


def _num_or_none(x):
    try:
        v = float(x)
    except ValueError:
        return False
    return math.isfinite(v) and v > 0


def test_the_quick_plan_never_writes_over_the_committed_chapter(monkeypatch):
    monkeypatch.setenv("RESULTS_QUICK", "1")
    with pytest.raises(SystemExit, match="never writes over the committed chapter"):
        _results.main(["--out", str(OUT_FULL)])


def test_only_names_studies_of_the_plan(capsys):
    with pytest.raises(SystemExit, match="--only: nope not in the plan; valid: rq2_size_mlp_digits"):
        _results.main(["--only", "nope", "--estimate"])


def test_the_estimate_covers_every_item_of_the_plan(capsys, monkeypatch):
    monkeypatch.chdir(REPO_STUDIES.parent)
    assert _results.main(["--estimate"]) == 0
    out = capsys.readouterr().out
    assert all(it.study in out for it in _results.FULL) and "total" in out


@pytest.mark.slow
def test_a_tiny_plan_writes_the_chapter_with_everything_it_links(tmp_path, monkeypatch):
    monkeypatch.setenv("SYSPRUNE_CACHE_DIR", str(tmp_path / "arrays"))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    out = tmp_path / "results"
    plan = (Item("rq2_size_mlp_digits", 6, 2, "model_bytes", 0.5, 2, 2, ("none", "budget", "threshold")),)
    o = _results.run_item(
        plan[0], storage_url=url, out=out, quick=True, plan=plan, studies=REPO_STUDIES, permutations=3,
        bootstraps=5, log=lambda s: None,
    )  # fmt: skip
    # the budget comes from the recording: half of the recorded trials within it
    recorded = [
        t.user_attrs["model_bytes"]
        for t in __import__("optuna").load_study(study_name="rq2_size_mlp_digits.record", storage=url).trials
    ]
    assert sum(v <= o.budgets["model_bytes"] for v in recorded) == 3 and o.infeasible_share == 0.5
    assert o.report is not None and {f.family for f in o.report.families} >= {"time", "size"}
    path = _chapter.write_chapter([o], out, plan_name="test", plan=plan, seconds=12.0, storage_url=url)
    md = path.read_text()
    for needed in (
        _chapter.Q1,
        _chapter.Q2,
        "## The goals",
        "## Method",
        "## Threats to validity",
        "| rq2_size_mlp_digits | 6 random | model_bytes at the 50% quantile | 2 x 2 seeds |",
        "(train 1079, val 359, test 359)",
        "50% of the recorded trials over it",
        "**RQ1**",
        "**RQ2, live**",
    ):
        assert needed in md, needed
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert links and all((out / link).is_file() for link in links), [x for x in links if not (out / x).is_file()]
    assert (out / "rq1_summary.csv").is_file() and (out / "rq2_summary.csv").is_file()
    assert (out / "plotly.min.js").is_file()  # figures work offline


@pytest.mark.slow  # ~250 fANOVA fits
def test_the_rq1_summary_is_re_derived_from_its_csv(tmp_path):
    """Holm over each (recording, family)'s permutation p-values (statsmodels) gives the CSV's adjusted p and the
    drivers the chapter's RQ1 table names."""
    from statsmodels.stats.multitest import multipletests

    from sysprune.analysis._importance import infer
    from sysprune.analysis._rq1 import FamilyReport, StudyReport
    from tests.analysis.test_rq1_inference import _trials

    trials, values = _trials(30, seed=2)
    o = _study("study_a", {p: [1.0] * 2 for p in POLICIES}, seeds=(0, 1))
    o.report = StudyReport("study_a.record", "sqlite://", ["a", "b", "c"], {"COMPLETE": 30}, [], 1)
    for fam, scale in (("time", 1.0), ("memory", 0.0)):  # memory: a target of pure noise
        noisy = [v * scale + random.Random(i).gauss(0, 0.1) for i, v in enumerate(values)]
        # 79 permutations: 1 / 80 is small enough for Holm over 3 parameters
        inf = infer(trials, noisy, permutations=79, bootstraps=3, jobs=1)
        o.report.families.append(FamilyReport(fam, f"{fam}_metric", fam, {}, inf))
    md = _chapter.write_chapter([o], tmp_path, plan_name="t", plan=(), seconds=1.0, storage_url="x").read_text()
    rows = _read(tmp_path / "rq1_summary.csv")
    assert {r["family"] for r in rows} == {"time", "memory"} and len(rows) == 6
    drivers = {}
    for fam in ("time", "memory"):
        mine = [r for r in rows if r["family"] == fam]
        adjusted = multipletests([float(r["p"]) for r in mine], method="holm")[1]
        for r, a in zip(mine, adjusted):
            assert float(r["p_holm"]) == pytest.approx(a)
            assert (r["driver"] == "True") == (a < 0.05)
        drivers[fam] = sorted(r["param"] for r in mine if r["driver"] == "True")
    assert drivers["time"] == ["a", "b"] and drivers["memory"] == []
    table = md.split(_chapter.Q2)[0]
    assert re.search(r"\| time \(time\) \| 30 \| `a` [\d.]+ \[[\d.]+, [\d.]+\], p [\d.<  ]+; `b` ", table)
    assert "| memory (memory) | 30 | none found |" in table


def test_the_chapter_states_the_smallest_p_its_permutation_count_allows():
    def rq1(study: str, family: str, params: int, b: int) -> list[dict]:
        return [{"study": study, "family": family, "param": f"p{k}", "permutations": b} for k in range(params)]

    rows = rq1("a", "time", 6, 179) + rq1("a", "size", 6, 179) + rq1("b", "time", 4, 119)
    sentence = _chapter_method.rq1_floor_sentence(rows)
    assert "(0.033 here)" in sentence  # 6 / 180 and 4 / 120: the same floor
    assert "(0.025-0.033 here)" in _chapter_method.rq1_floor_sentence(rows + rq1("c", "memory", 3, 119))
    assert _chapter_method.rq1_floor_sentence(rq1("a", "time", 6, 0)) == ""  # no permutation test ran: nothing to say


def test_a_resumed_plan_states_what_its_runs_took_in_all(tmp_path, monkeypatch):
    plan = (Item("rq2_size_mlp_digits", 6), Item("sgd_letter", 5))
    monkeypatch.setattr(_results, "FULL", plan)

    def run_item(item, storage_url, **kw):
        optuna.create_study(storage=storage_url, study_name=f"{item.study}.record", load_if_exists=True)
        return StudyOutcome(item, None, {}, None, {}, 0.0, seconds=60.0)

    monkeypatch.setattr(_results, "run_item", run_item)
    written: list[dict] = []

    def chapter(outcomes, out, **kw):
        written.append({"studies": {o.item.study: o.seconds for o in outcomes}, **kw})
        return out / "RESULTS.md"

    monkeypatch.setattr(_results, "write_chapter", chapter)
    out = tmp_path / "results"
    for _ in range(2):
        assert _results.main(["--out", str(out)]) == 0
    first, second = written
    assert first["studies"] == {"rq2_size_mlp_digits": 60.0, "sgd_letter": 60.0} and first["invocations"][0] == 1
    assert second["studies"] == {"rq2_size_mlp_digits": 120.0, "sgd_letter": 120.0}  # summed, not the last run's
    assert second["invocations"][0] == 2 and second["seconds"] > first["seconds"]
    assert second["seconds"] == pytest.approx(first["seconds"] + second["invocations"][1], abs=0.05)
    timing = _results.load_timing(out / _results.TIMING)
    assert timing["invocations"] == 2 and timing["studies"]["sgd_letter"] == 120.0
    assert len(timing["loads"]) == 2 and second["load"] == [tuple(x) for x in timing["loads"]]
    assert _chapter_method.load_words(second["load"]).startswith("load average at the start/end of each of its 2 ")
    assert _chapter_method.load_words(("0.5", "1.0")) == "load average 0.5 at the start, 1.0 at the end"
    (out / "results.db").unlink()  # a new database: a new run, whose time starts from zero
    assert _results.main(["--out", str(out)]) == 0
    assert written[-1]["invocations"][0] == 1 and written[-1]["studies"]["sgd_letter"] == 60.0
    (out / _results.TIMING).write_text("{not json")
    with pytest.raises(SystemExit, match="timing.json: not valid JSON"):
        _results.main(["--out", str(out)])
