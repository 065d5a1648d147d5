"""One validation vocabulary (sysprune._validation, public as sysprune.constraints): the same mistake gives the same
message whichever way it is given — a study file, run_study, the policy factory, a pruner's constructor."""

from __future__ import annotations

import math

import optuna
import pytest

import sysprune
from sysprune.constraints import (
    AnyOf,
    Boolean,
    Exactly,
    InstanceOf,
    Integer,
    ListOf,
    MappingOf,
    Matches,
    OneOf,
    Real,
    Text,
    check,
    check_params,
    check_table,
)
from sysprune.exceptions import InvalidArgument
from sysprune.pruners import CurvePruner, ResourceBudgetPruner, ThresholdBudgetPruner, validate_policy
from sysprune.spec import parse_spec

STUDY = 'model = "torch_mlp"\ndataset = "digits"\nsteps = 10\n'


def _raised(call) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as e:
        call()
    return e.value


def _load(tmp_path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(STUDY + text)
    return path, lambda: sysprune.load_spec(path)


def test_one_invalid_pruner_parameter_reads_the_same_from_a_file_the_factory_and_the_constructor(tmp_path):
    same = "probability: value 2.0 is invalid; valid: a finite number in (0, 1)"
    path, load = _load(tmp_path, '[pruner]\npolicy = "curve"\nprobability = 2.0\n')
    member = '[budgets]\nwall_s = 9\n[pruner]\npolicy = "combined"\nmembers = ["budget", "curve"]\n'
    member_path, load_member = _load(tmp_path, member + "[pruner.curve]\nprobability = 2.0\n", "m.toml")
    raw = {"model": "torch_mlp", "dataset": "digits", "pruner": {"policy": "curve", "probability": 2.0}}
    combined = {"members": ["budget", "curve"], "curve": {"probability": 2.0}}
    given = [
        (f"{path}: pruner.", _raised(load)),  # a study file, through load_spec
        ("pruner.", _raised(lambda: parse_spec(raw))),  # the document run_study's callers parse
        (f"{member_path}: pruner.curve.", _raised(load_member)),  # a member of combined
        ("pruner.curve.", _raised(lambda: validate_policy("combined", combined, steps=10))),  # the factory
        ("pruner.", _raised(lambda: validate_policy("curve", {"probability": 2.0}, steps=10))),
        ("CurvePruner: ", _raised(lambda: CurvePruner(probability=2.0))),  # the constructor
    ]
    for prefix, e in given:
        assert str(e) == f"{prefix}{same}", prefix
        assert (e.argument.rsplit(".", 1)[-1], e.value, e.valid) == ("probability", 2.0, "a finite number in (0, 1)")


def test_one_invalid_budget_reads_the_same_from_a_file_and_from_every_pruner_and_function_taking_budgets(tmp_path):
    same = "budgets.infer_ms: value -1 is invalid; valid: a finite number >= 0"
    path, load = _load(tmp_path, "[budgets]\ninfer_ms = -1\n")
    trial = optuna.create_study().ask()
    given = {
        f"{path}: ": _raised(load),
        "ResourceBudgetPruner: ": _raised(lambda: ResourceBudgetPruner({"infer_ms": -1})),
        "ThresholdBudgetPruner: ": _raised(lambda: ThresholdBudgetPruner({"infer_ms": -1})),
        "PrecheckPruner: ": _raised(lambda: sysprune.pruners.PrecheckPruner({"infer_ms": -1})),
        "record_constraints: ": _raised(lambda: sysprune.record_constraints(trial, {"infer_ms": -1})),
        "": _raised(lambda: sysprune.pruners.check_budgets({"infer_ms": -1})),
    }
    for prefix, e in given.items():
        assert str(e) == f"{prefix}{same}", prefix


def test_one_invalid_trial_count_reads_the_same_from_a_file_and_from_run_study(tmp_path):
    same = "n_trials: value 0 is invalid; valid: an integer >= 1"
    path, load = _load(tmp_path, "n_trials = 0\n")
    assert str(_raised(load)) == f"{path}: {same}"
    spec = parse_spec({"model": "torch_mlp", "dataset": "digits"})
    e = _raised(lambda: sysprune.run_study(spec, storage_url=f"sqlite:///{tmp_path / 'never.db'}", n_trials=0))
    assert str(e) == same and e.where is None  # a library argument: the command line shows it as --n-trials
    assert not (tmp_path / "never.db").exists()


@pytest.mark.parametrize(
    "constraint, good, bad, described",
    [
        (OneOf((1, 3, 5)), [1, 5, 3.0], [2, True, "3", None], "1, 3, 5"),
        (Exactly(None), [None], [0, False, "None"], "None"),
        (Exactly("auto"), ["auto"], ["Auto", None], '"auto"'),
        (InstanceOf(optuna.pruners.BasePruner, "a pruner"), [optuna.pruners.NopPruner()], ["nop"], "a pruner"),
        (AnyOf((Integer(low=1), Exactly(None))), [1, None], [0, 1.0, "1"], "an integer >= 1 or None"),
        (Matches(r"[a-z]+", "lower-case letters"), ["abc"], ["ab1", "", 3], "lower-case letters"),
        (Text(max_len=3), ["abc"], ["abcd", ""], "a non-empty string of at most 3 characters"),
        (Text(lambda: ("x", "y")), ["x"], ["z"], "x, y"),
        (Real(finite=False), [math.inf, -1e300], [True, "1"], "a number"),
        (Boolean(), [True, False], [0, 1, "true"], "true or false"),
        (
            ListOf(Text(("a", "b")), min_len=2, distinct=True),
            [["a", "b"], ("b", "a")],
            [["a"], ["a", "a"], "ab", ["a", "c"]],
            "a list of 2 or more distinct values from: a, b",
        ),
        (ListOf(Integer(low=0)), [[0, 3]], [[], [-1]], "a non-empty list of items, each an integer >= 0"),
        (
            MappingOf(Text(("a",)), Real(low=0.0), what="name", min_len=1),
            [{"a": 1}],
            [{}, {"b": 1}, {"a": -1}, ["a"]],
            "a table whose keys are names and values a finite number >= 0, at least one entry",
        ),
    ],
)
def test_each_constraint_accepts_its_values_and_describes_itself(constraint, good, bad, described):
    assert all(constraint.accepts(v) for v in good)
    assert not any(constraint.accepts(v) for v in bad)
    assert constraint.describe() == described


def test_a_compound_constraint_names_the_part_that_is_wrong():
    families = ListOf(Text(("pow", "exp")), distinct=True)
    assert check(("pow",), families, "families") == ["pow"]  # normalised to a list
    assert str(_raised(lambda: check(["pow", "x"], families, "families"))) == (
        "families[1]: value 'x' is invalid; valid: pow, exp"
    )
    assert str(_raised(lambda: check(["pow", "pow"], families, "families"))) == (
        "families: value ['pow', 'pow'] is invalid ('pow' twice); valid: a non-empty list of distinct values from: "
        "pow, exp"
    )
    budgets = MappingOf(Text(("wall_s",)), Real(low=0.0), what="system metric")
    assert check({"wall_s": 1}, budgets, "budgets") == {"wall_s": 1.0}
    assert str(_raised(lambda: check({"ram": 1}, budgets, "budgets"))) == (
        "budgets.ram: unknown system metric; valid: wall_s"
    )
    names = MappingOf(Text(max_len=2), Real(), what="metric name")
    assert str(_raised(lambda: check({"abc": 1}, names, "metrics"))) == (
        "metrics: metric name 'abc' is invalid; valid: a non-empty string of at most 2 characters"
    )
    optional = AnyOf((ListOf(Integer()), Exactly(None)))  # "a list ... or None", given a list: its bad item named
    assert str(_raised(lambda: check([1, "2"], optional, "xs"))) == "xs[1]: value '2' is invalid; valid: an integer"


def test_a_table_refuses_unknown_keys_and_checks_each_entry_in_the_declared_order():
    declared = {"b": Integer(low=0), "a": Real()}
    assert list(check_table({"a": 1, "b": 2}, declared, "t")) == ["b", "a"]
    assert check_table({"a": 1}, declared, "t") == {"a": 1.0}
    assert str(_raised(lambda: check_table({"c": 1}, declared, "t"))) == "t.c: unknown key; valid: b, a"
    assert str(_raised(lambda: check_table({"b": -1}, declared, "t", where="f.toml"))) == (
        "f.toml: t.b: value -1 is invalid; valid: an integer >= 0"
    )
    assert str(_raised(lambda: check_table(3, declared, "t"))) == "t: value 3 is invalid; valid: a table"


def test_check_params_checks_a_functions_arguments_as_a_constructor_does():
    def f(n=1, x=0.5):
        return check_params("f", {"n": Integer(low=1), "x": Real(0.0, 1.0)}, locals())

    assert f(2, 1) == {"n": 2, "x": 1.0}
    assert str(_raised(lambda: f(0))) == "f: n: value 0 is invalid; valid: an integer >= 1"
    e = _raised(lambda: f(x="a"))
    assert isinstance(e, TypeError) and isinstance(e, ValueError) and isinstance(e, sysprune.SpecError)
