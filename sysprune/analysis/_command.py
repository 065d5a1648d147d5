"""The ``compare``, ``replay`` and ``report`` subcommands (``sysprune/cli.py`` registers them). Bad input raises
SpecError, which the CLI prints as one line with exit status 2."""

from __future__ import annotations

import argparse
from pathlib import Path
from sysprune.study._runner import DEFAULT_STORAGE
from sysprune.storage._open import STORAGE_ENV, mask_url
from sysprune.analysis._compare import DEFAULT_TOLERANCE, parse_policies
from sysprune.analysis._recording import load_recording
from sysprune.analysis._progress import StudyBars
from sysprune.analysis._table import records_lines, terminal_width
from sysprune._plugins import import_plugins
from sysprune.pruners import policy_names
from sysprune.metrics._registry import system_metric_names
from sysprune.spec import SpecError, load_spec
from sysprune.analysis import _compare, _compare_report, _replay, _rq1 as _report
from sysprune._commands import add_command
from sysprune.analysis._paths import study_dir


def _results_dir(args: argparse.Namespace, study: str) -> Path:
    return study_dir(Path(args.out), study)


def _tolerance(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value!r}") from None
    if not f >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value!r}")
    return f


def add_parsers(sub: argparse._SubParsersAction) -> None:

    p = add_command(sub, "compare", cmd_compare)
    p.add_argument("study", help="the study file (studies/*.toml)")
    p.add_argument(
        "--policies",
        default=",".join(policy_names()),
        help=f"comma-separated policy names (default: all of {', '.join(policy_names())})",
    )
    p.add_argument("--seeds", type=int, default=5, help="number of seeds, from the file's seed up (default: 5)")
    p.add_argument("--n-trials", type=int, default=None, help="trials per study (default: the file's n_trials)")
    _add_storage(p)
    p.add_argument("--sampler", choices=("tpe", "random"), default=None, help="sampler (default: the file's)")
    p.add_argument(
        "--tolerance",
        type=_tolerance,
        default=DEFAULT_TOLERANCE,
        help=f"compute-to-target tolerance, absolute, in objective units (default: {DEFAULT_TOLERANCE})",
    )
    p.add_argument("--no-test", action="store_true", help="skip retraining the best feasible models for test scores")
    p.add_argument("--no-run", action="store_true", help="only read the stored studies and write the results")
    p.add_argument("--quiet", action="store_true", help="no progress display while the studies run")
    _add_out(p)

    p = add_command(sub, "replay", cmd_replay)
    p.add_argument("study_name", help="name of the recorded study in the database")
    p.add_argument(
        "--policies",
        default="none,median,hyperband,budget,curve,combined",
        help="comma-separated policy names (default: none, median, hyperband, budget, curve, combined)",
    )
    p.add_argument("--orders", type=int, default=20, help="shuffled orders besides the recorded one (default: 20)")
    p.add_argument(
        "--plugins",
        default=None,
        metavar="MODULE[,MODULE]",
        help="modules to import first, as a study file's plugins: they register policies of one's own "
        "(sysprune.register_policy) for --policies",
    )
    p.add_argument(
        "--budgets", default=None, help="budgets to replay under, metric=value,... (default: the recording's own)"
    )
    p.add_argument("--tolerance", type=_tolerance, default=DEFAULT_TOLERANCE, help="compute-to-target tolerance")
    _add_storage(p)
    _add_out(p)

    p = add_command(sub, "report", cmd_report)
    p.add_argument("study_name", help="name of the study in the database")
    _add_storage(p)
    p.add_argument("--permutations", type=int, default=5, help="permuted fits for the noise floor (default: 5)")
    _add_out(p)


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage", default=None, help=f"SQLAlchemy URL (default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE})"
    )


def _add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="results", help="results folder (default: results)")


def parse_budgets(text: str) -> dict[str, float]:
    """``"n_params=20000,infer_ms=0.01"`` → dict; SpecError names a bad entry."""

    out = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in system_metric_names():
            raise SpecError(
                f"--budgets: {part!r} must be metric=value with a metric of {', '.join(system_metric_names())}"
            )
        try:
            v = float(value)
        except ValueError:
            raise SpecError(f"--budgets: {part!r}: the value must be a number >= 0") from None
        if not v >= 0:
            raise SpecError(f"--budgets: {part!r}: the value must be a number >= 0")
        out[name.strip()] = v
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """run a study under several pruning policies at equal seeds and compare what each spent

    Run the study once per policy and seed (each its own Optuna study, <study>.compare.<policy>.s<seed>, all in one
    database; run again to resume), then write results/<study>/compare.md, compare.csv and figures: compute (trial
    processes + worker), trials by state and prune reason, the best feasible objective and its test score, and
    compute-to-target against none, the best Optuna built-in and threshold (median [IQR] over seeds).

    example:
      sysprune compare studies/digits_mlp.toml --policies none,median,budget --seeds 5
      sysprune compare studies/cnn_digits.toml --seeds 3 --n-trials 20 --sampler random --no-test
    """

    spec = load_spec(args.study)
    _compare.check_comparable(spec)
    policies = _compare.parse_policies(args.policies)
    seeds = _compare.seeds_of(spec, args.seeds)
    for p in policies:  # every policy valid for this study before anything runs
        _compare.policy_spec(spec, p, sampler=args.sampler, n_trials=args.n_trials)
    if not args.no_run:
        print(
            f"compare {spec.name}: {len(policies)} policies x {len(seeds)} seeds -> {mask_url(args.storage)}",
            flush=True,
        )
        bars = StudyBars(len(policies) * len(seeds), args.n_trials or spec.n_trials, args.storage, quiet=args.quiet)
        try:
            _compare.run_compare(
                spec,
                policies,
                seeds,
                storage_url=args.storage,
                sampler=args.sampler,
                n_trials=args.n_trials,
                callbacks=bars.callbacks,
                log=bars.log,
            )
        finally:
            bars.close()
    result = _compare.collect(
        spec, policies, seeds, storage_url=args.storage, tolerance=args.tolerance, sampler=args.sampler
    )
    out = _results_dir(args, spec.name)
    if not args.no_test:
        _compare.add_test_scores(result, out / "test_scores.json")
    files = _compare_report.write_compare(result, out)
    print("\n".join(records_lines(_compare_report.policy_table(result), terminal_width())))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """simulate pruning policies over a study recorded with policy none

    Feed the trials of a study recorded with policy 'none' (full curves) through each policy's real pruner, in the
    recorded order and in K shuffled orders, on in-memory studies. Writes results/<study>/replay.md and replay.csv:
    counterfactual training compute per policy, prunes by reason, and how often the truly best feasible trial would
    have been pruned (false prunes).

    example:
      sysprune run studies/digits_mlp.toml --policy none   # records study digits_mlp.none
      sysprune replay digits_mlp.none --policies none,median,budget,combined --orders 20
      sysprune replay digits_mlp.none --policies none,mine --plugins my_policy   # a policy of one's own
      sysprune replay digits_mlp.none --budgets n_params=20000,infer_ms=0.01 --storage sqlite:///results/sysprune.db
    """
    if args.plugins:
        import_plugins(m.strip() for m in args.plugins.split(",") if m.strip())  # their policies, before --policies
    policies = parse_policies(args.policies)
    budgets = parse_budgets(args.budgets) if args.budgets is not None else None
    rec = load_recording(args.storage, args.study_name, budgets)
    print(
        f"replay {args.study_name}: {len(policies)} policies x {args.orders + 1} orders over {len(rec.trials)} trials ...",
        flush=True,
    )
    res = _replay.replay(rec, policies, n_orders=args.orders, tolerance=args.tolerance)
    files = _replay.write_replay(res, _results_dir(args, args.study_name))
    print("\n".join(records_lines(_replay.replay_table(res), terminal_width())))
    print(
        f"replayed {len(policies)} policies x {args.orders + 1} orders x {len(rec.trials)} trials in "
        f"{res.seconds:.2f} s; wrote {', '.join(str(f) for f in files)}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """RQ1: how much each hyperparameter explains each system metric (pruned trials included)

    For each system metric of a stored study: fANOVA importance of each hyperparameter with that metric as target
    (cost per step for cumulative metrics, so trials pruned at different steps compare fairly), a noise floor from
    permuted targets, per-step curves and slice plots. Writes results/<study>/rq1.md and rq1_*.html. Copes with
    pruned, failed and multi-objective studies.

    example:
      sysprune report digits_mlp
      sysprune report cnn_digits --storage sqlite:///results/x.db
    """

    if args.permutations < 0:
        raise SpecError(f"--permutations must be an integer >= 0, got {args.permutations}")
    print(f"report {args.study_name}: fANOVA importances per system metric ({args.permutations} permuted targets each)"
          " ...", flush=True)  # fmt: skip
    rep = _report.build_report(args.storage, args.study_name, n_permutations=args.permutations)
    print(f"writing the figures of {len(rep.metrics)} metrics ...", flush=True)
    files = _report.write_report(rep, _results_dir(args, args.study_name))
    print("\n".join(records_lines(_report.importance_table(rep), terminal_width())))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0
