"""Study-file validation: declared constraints, one message format, the model's declared space, study identity."""

from __future__ import annotations

import math

import pytest

from sysprune.models._space import CategoricalParam, FixedParam, FloatParam, IntParam
from sysprune.spec import (
    BUDGET,
    N_TRIALS,
    InvalidArgument,
    SpecError,
    check_argument,
    declared_domain,
    describe_diff,
    identity_diff,
    load_spec,
    parse_spec,
    study_identity,
)
from sysprune._validation import Integer, Real, Text

BASE = {"model": "torch_mlp", "dataset": "digits", "steps": 4}


def _error(**over) -> str:
    with pytest.raises(SpecError) as e:
        parse_spec({**BASE, **over})
    return str(e.value)


# ------------------------------------------------------------------------------------------- declared constraints


@pytest.mark.parametrize(
    "constraint, good, bad, described",
    [
        (Integer(low=1), [1, 7, 10**12], [0, -1, 1.0, True, "1", None], "an integer >= 1"),
        (Integer(0, 7), [0, 7], [-1, 8], "an integer in [0, 7]"),
        (Real(low=0.0), [0, 0.0, 1e300], [-1e-9, math.inf, math.nan, True, "0"], "a finite number >= 0"),
        (Real(0.0, low_open=True), [1e-12, 5], [0, 0.0, math.inf], "a finite number > 0"),
        (Real(0.0, 1.0, low_open=True, high_open=True), [0.5], [0.0, 1.0, -math.inf], "a finite number in (0, 1)"),
        (Text(("a", "b")), ["a", "b"], ["c", "", 1, None], "a, b"),
        (Text(), ["x"], ["", 3], "a non-empty string"),
    ],
)
def test_a_constraint_accepts_its_values_and_describes_itself(constraint, good, bad, described):
    assert all(constraint.accepts(v) for v in good)
    assert not any(constraint.accepts(v) for v in bad)
    assert constraint.describe() == described


def test_check_argument_names_the_argument_and_renders_under_another_name():
    assert check_argument("n_trials", 3, N_TRIALS) == 3
    assert check_argument("budget", 2, BUDGET) == 2.0 and isinstance(check_argument("budget", 2, BUDGET), float)
    with pytest.raises(InvalidArgument) as e:
        check_argument("n_trials", 0, N_TRIALS)
    assert str(e.value) == "n_trials: value 0 is invalid; valid: an integer >= 1"
    assert e.value.argument == "n_trials"
    assert e.value.message_for("--n-trials") == "--n-trials: value 0 is invalid; valid: an integer >= 1"


def test_parse_spec_raises_spec_error_only():
    """The internal error class no longer escapes: callers catch SpecError (a ValueError)."""
    with pytest.raises(SpecError, match=r"^steps: value 0 is invalid; valid: an integer >= 1$"):
        parse_spec({**BASE, "steps": 0})
    with pytest.raises(ValueError, match=r"^x\.toml: model: missing \(required\)"):
        parse_spec({"dataset": "digits"}, source="x.toml")


def test_load_spec_prefixes_the_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('model = "torch_mlp"\ndataset = "digits"\nseed = -1\n')
    with pytest.raises(SpecError) as e:
        load_spec(f)
    assert str(e.value) == f"{f}: seed: value -1 is invalid; valid: an integer >= 0"


# ---------------------------------------------------------------------------------- non-finite numbers everywhere


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    "where, over",
    [
        ("search_space.lr.low", lambda v: {"search_space": {"lr": {"type": "float", "low": v, "high": 0.1}}}),
        ("search_space.lr.high", lambda v: {"search_space": {"lr": {"type": "float", "low": 1e-4, "high": v}}}),
        (
            "search_space.lr.step",
            lambda v: {"search_space": {"lr": {"type": "float", "low": 0.0, "high": 1.0, "step": v}}},
        ),
        ("search_space.dropout", lambda v: {"search_space": {"dropout": v}}),
        ("budgets.wall_s", lambda v: {"budgets": {"wall_s": v}}),
        ("trial.max_wall_s", lambda v: {"trial": {"max_wall_s": v}}),
        ("dataset.val_fraction", lambda v: {"dataset": {"name": "digits", "val_fraction": v}}),
    ],
)
def test_non_finite_numbers_are_refused_by_field(where, over, bad):
    message = _error(**over(bad))
    assert message.startswith(f"{where}: value {bad!r} is invalid; valid: ")


# --------------------------------------------------------------------------------- the model's declared space


def test_declared_domain_reads_type_and_sign_from_the_space():
    assert declared_domain(IntParam(1, 3)).describe() == "an integer >= 1"
    assert declared_domain(IntParam(-2, 3)).describe() == "an integer"
    assert declared_domain(FloatParam(0.0, 0.5)).describe() == "a finite number >= 0"
    assert declared_domain(CategoricalParam((32, 64))).describe() == "an integer >= 1"
    assert declared_domain(CategoricalParam(("a", "b"))).describe() == "a string"
    assert declared_domain(CategoricalParam((0.5, 1))).describe() == "a finite number >= 0"
    assert declared_domain(FixedParam(-1)).describe() == "an integer"  # a fixed entry declares its type only
    d = declared_domain(IntParam(1, 3), "torch_mlp", "n_layers")
    assert d.declared == "torch_mlp declares n_layers as int[1, 3]"
    assert d.accepts(7) and not d.accepts(0) and not d.accepts(2.0) and not d.accepts(True)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"n_layers": "three"},
            "search_space.n_layers: value 'three' is invalid; valid: an integer >= 1 "
            "(torch_mlp declares n_layers as int[1, 3])",
        ),
        ({"n_layers": 2.5}, "search_space.n_layers: value 2.5 is invalid; valid: an integer >= 1"),
        (
            {"batch_size": 0},
            "search_space.batch_size: value 0 is invalid; valid: an integer >= 1 "
            "(torch_mlp declares batch_size as {32, 64, 128, 256})",
        ),
        ({"dropout": -0.1}, "search_space.dropout: value -0.1 is invalid; valid: a finite number >= 0"),
        ({"lr": True}, "search_space.lr: value True is invalid; valid: a finite number >= 0"),
        ({"lr": [0.1]}, 'search_space.lr: value [0.1] is invalid; valid: a plain value, or {type = "categorical"'),
        (
            {"width": {"type": "int", "low": 0, "high": 64}},
            "search_space.width.low: value 0 is invalid; valid: an integer >= 1",
        ),
        (
            {"n_layers": {"type": "float", "low": 1.0, "high": 3.0}},
            "search_space.n_layers.type: value 'float' is invalid; valid: int, categorical",
        ),
        (
            {"lr": {"type": "int", "low": 1, "high": 3}},
            "search_space.lr.type: value 'int' is invalid; valid: float, categorical",
        ),
        ({"lr": {"type": "normal"}}, "search_space.lr.type: value 'normal' is invalid; valid: float, categorical"),
        (
            {"batch_size": {"type": "categorical", "choices": [1, True]}},
            "search_space.batch_size.choices: value [1, True] is invalid; valid: choices of one type",
        ),
        (
            {"batch_size": {"type": "categorical", "choices": [32, 0]}},
            "search_space.batch_size.choices[1]: value 0 is invalid; valid: an integer >= 1",
        ),
        (
            {"batch_size": {"type": "categorical", "choices": [64, 64]}},
            "search_space.batch_size.choices: value [64, 64] is invalid; valid: distinct choices",
        ),
        (
            {"dropout": {"type": "categorical", "choices": [0.5, "x"]}},
            "search_space.dropout.choices: value [0.5, 'x'] is invalid; valid: choices of one type",
        ),
        (
            {"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True, "step": 0.01}},
            "search_space.lr: value log=true step=0.01 is invalid; valid: either log or step, not both",
        ),
        (
            {"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}},
            "search_space.lr: value log=true low=0 is invalid; valid: low > 0 on a log scale",
        ),
        ({"lr": {"type": "float", "high": 0.1}}, "search_space.lr.low: missing (required); valid: a finite number"),
    ],
)
def test_search_space_entries_are_checked_against_the_declared_space(entry, message):
    assert _error(search_space=entry).startswith(message)


def test_what_the_declared_space_allows_still_passes():
    spec = parse_spec(
        {
            **BASE,
            "search_space": {
                "n_layers": 5,  # outside the default range: the range is a default, not a limit
                "batch_size": {"type": "categorical", "choices": [16, 512]},
                "dropout": {"type": "categorical", "choices": [0, 0.25]},  # TOML integers are numbers for a float
                "weight_decay": 0,
                "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            },
        }
    )
    assert spec.search_space["n_layers"] == FixedParam(5)
    assert spec.search_space["dropout"] == CategoricalParam((0, 0.25))
    sgd = parse_spec({"model": "sklearn_sgd", "dataset": "pmlb:iris", "search_space": {"loss": "log_loss"}})
    assert sgd.search_space["loss"] == FixedParam("log_loss")
    with pytest.raises(SpecError, match=r"^search_space.loss: value 3 is invalid; valid: a string "):
        parse_spec({"model": "sklearn_sgd", "dataset": "pmlb:iris", "search_space": {"loss": 3}})


# ---------------------------------------------------------------------------------- pruners that could never act


@pytest.mark.parametrize(
    "pruner, where",
    [
        ({"policy": "median", "n_warmup_steps": 4}, "pruner.n_warmup_steps"),
        ({"policy": "budget", "n_warmup_steps": 9}, "pruner.n_warmup_steps"),
        ({"policy": "curve", "n_warmup_steps": 4}, "pruner.n_warmup_steps"),
        (
            {"policy": "combined", "members": ["budget", "median"], "median": {"n_warmup_steps": 4}},
            "pruner.median.n_warmup_steps",
        ),
    ],
)
def test_a_warm_up_as_long_as_the_study_is_refused(pruner, where):
    message = _error(pruner=pruner, budgets={"wall_s": 10})
    value = pruner.get("n_warmup_steps", pruner.get("median", {}).get("n_warmup_steps"))
    assert message == (
        f"{where}: value {value} is invalid (the pruner could never act: the study has steps = 4); "
        "valid: an integer in [0, 3]"
    )
    assert (
        parse_spec({**BASE, "pruner": {"policy": "median", "n_warmup_steps": 3}}).pruner.params["n_warmup_steps"] == 3
    )


# ---------------------------------------------------------------------------------------------- unknown PMLB names


def test_an_unknown_pmlb_name_is_refused_offline():
    message = _error(dataset="pmlb:no_such_set")
    assert message.startswith(
        "dataset.name: unknown dataset 'pmlb:no_such_set': not a PMLB classification dataset; "
        "valid: pmlb:<name> for one of the"
    )
    assert parse_spec({**BASE, "dataset": "pmlb:iris"}).dataset.name == "pmlb:iris"


# ------------------------------------------------------------------------------------------------- study identity


def test_identity_covers_what_changes_the_data_or_the_meaning_of_a_value():
    spec = parse_spec(
        {**BASE, "budgets": {"wall_s": 10}, "pruner": "budget", "dataset": {"name": "digits", "subsample": 500}}
    )
    ident = study_identity(spec, seed=7)
    assert ident["seed"] == 7 and study_identity(spec)["seed"] == 0
    assert ident["dataset"] == {"name": "digits", "subsample": 500, "val_fraction": 0.2, "test_fraction": 0.2}
    assert ident["budgets"] == {"wall_s": 10.0}
    assert ident["pruner"]["policy"] == "budget" and ident["pruner"]["params"]["n_warmup_steps"] == 0
    assert ident["search_space"]["lr"] == {"type": "float", "low": 1e-4, "high": 3e-2, "log": True, "step": None}
    assert ident["search_space"]["batch_size"] == {"type": "categorical", "choices": [32, 64, 128, 256]}
    assert {"model", "objective", "steps", "trial"} <= set(ident)
    # safe to change: not part of the identity
    assert "n_trials" not in ident and "sampler" not in ident


def test_identity_diff_names_each_changed_leaf_old_and_new():
    old = study_identity(parse_spec(BASE), seed=0)
    new = study_identity(
        parse_spec(
            {**BASE, "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 3e-2}}, "budgets": {"wall_s": 5}}
        ),
        seed=7,
    )
    diffs = identity_diff(old, new)
    assert [d[0] for d in diffs] == ["seed", "budgets.wall_s", "search_space.lr.log"]
    assert describe_diff(diffs) == "seed 0 -> 7; budgets.wall_s (absent) -> 5.0; search_space.lr.log true -> false"
    assert identity_diff(old, study_identity(parse_spec({**BASE, "n_trials": 99}), seed=0)) == []


def test_identity_diff_judges_only_what_an_older_study_stored():
    new = study_identity(parse_spec(BASE), seed=3)
    legacy = {k: new[k] for k in ("model", "dataset", "objective", "steps")}
    assert identity_diff(legacy, new) == []
    assert describe_diff(identity_diff({**legacy, "steps": 8}, new)) == "steps 8 -> 4"
    changed = {
        **legacy,
        "search_space": {**new["search_space"], "batch_size": {"type": "categorical", "choices": [32, 64]}},
    }
    assert describe_diff(identity_diff(changed, new)) == (
        "search_space.batch_size.choices [32, 64] -> [32, 64, 128, 256]"
    )
    assert describe_diff(identity_diff({"trial": {"threads": 1}}, {"trial": {"threads": True}})) == (
        "trial.threads 1 -> true"
    )


def test_a_subsample_too_small_for_the_split_is_refused():
    message = _error(dataset={"name": "digits", "subsample": 10, "val_fraction": 0.01})
    assert message == (
        "dataset: value subsample=10 val_fraction=0.01 test_fraction=0.2 is invalid; valid: at least one "
        "row for each of train, val and test"
    )
    assert parse_spec({**BASE, "dataset": {"name": "digits", "subsample": 10}}).dataset.subsample == 10
