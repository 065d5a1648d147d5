"""The extension API from outside the package: the files of docs/extending.md (a metric, a dataset, a model, a
pruner and its policy) are extracted from the page, written to a temporary folder and used through the public API
only; a real study runs on them with the runner, and the budget on the custom metric prunes; a tiny digits study
runs under the policy of one's own with ``sysprune run``, ``compare`` and ``replay``."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import optuna
import pytest

import sysprune
from sysprune.datasets import _prepare, _registry as _dataset_registry
from sysprune.metrics import _registry as _metrics
from sysprune.models import _registry
from sysprune.pruners import _registry as _policies
from tests.test_cli import sysprune as command

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
_BLOCK = re.compile(r"```(?:python|toml)\n# (\w+\.(?:py|toml))\n(.*?)```", re.S)


def doc_files() -> dict[str, str]:
    """The files that docs/extending.md shows (a fenced block whose first line is ``# <file name>``)."""
    return {name: f"# {name}\n{body}" for name, body in _BLOCK.findall(DOC.read_text())}


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """The page's files in a folder on sys.path; the registrations they make are undone afterwards."""
    folder = tmp_path / "ext"
    folder.mkdir()
    for name, text in doc_files().items():
        (folder / name).write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    metrics, models, sources = dict(_metrics.METRICS), dict(_registry._MODELS), dict(_dataset_registry._SOURCES)
    policies = dict(_policies._POLICIES)
    yield folder
    for module in ("flops_metric", "blobs_data", "random_features", "plateau_pruner"):
        sys.modules.pop(module, None)
    for live, saved in (
        (_metrics.METRICS, metrics),
        (_registry._MODELS, models),
        (_dataset_registry._SOURCES, sources),
        (_policies._POLICIES, policies),
    ):
        live.clear()
        live.update(saved)


def test_the_page_shows_each_file():
    assert set(doc_files()) == {
        "flops_metric.py",
        "blobs_data.py",
        "random_features.py",
        "extend_demo.toml",
        "plateau_pruner.py",
        "plateau_digits.toml",
    }


def test_a_study_on_a_model_dataset_and_metric_of_ones_own_prunes_on_the_custom_budget(plugin_dir, tmp_path):
    spec = sysprune.load_spec(plugin_dir / "extend_demo.toml")
    assert spec.plugins == ("blobs_data", "random_features")
    assert spec.budgets == {"flops": 1000.0}
    assert sysprune.METRICS["flops"].kind == "structural" and sysprune.METRICS["flops"].unit == "FLOP"

    url = f"sqlite:///{tmp_path / 'extend.db'}"
    result = sysprune.run_study(spec, storage_url=url, cache_dir=tmp_path / "arrays")
    trials = result.study.get_trials()
    assert len(trials) == 8

    by_width: dict[int, list[optuna.trial.FrozenTrial]] = {8: [], 128: []}
    for t in trials:
        by_width[t.params["width"]].append(t)
    assert by_width[8] and by_width[128], "the seeded random sampler draws both widths"
    for t in by_width[8]:  # 2*5*8 + 2*8*3 = 128 FLOP: within budget, trained to the end, feasible
        assert t.state == optuna.trial.TrialState.COMPLETE, t.user_attrs
        assert t.user_attrs["flops"] == 128.0
        assert t.value is not None and t.value > 0.5  # three well-separated blobs
    for t in by_width[128]:  # 2*5*128 + 2*128*3 = 2048 FLOP: over budget at its first step
        assert t.state == optuna.trial.TrialState.PRUNED, t.user_attrs
        assert "flops" in t.user_attrs["prune_reason"] and "2048" in t.user_attrs["prune_reason"]
        assert max(t.intermediate_values) == 0
    assert result.study.best_trial.params["width"] == 8

    steps = sysprune.load_step_metrics(url, "extend_demo")
    assert set(steps.loc[steps["flops"] == 2048.0, "trial_number"]) == {t.number for t in by_width[128]}
    assert (steps.groupby("trial_number")["step"].max().loc[[t.number for t in by_width[8]]] == 2).all()
    assert steps.loc[steps.step >= 0, "val_accuracy"].notna().all()  # step -1: the pre-training probe


def test_a_budget_on_an_unregistered_metric_is_refused_naming_it(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('model = "sklearn_sgd"\ndataset = "digits"\n[budgets]\nlatency_p99_ms = 1.0\n')
    with pytest.raises(sysprune.SpecError, match=r"budgets\.latency_p99_ms: unknown system metric; valid: .*infer_ms"):
        sysprune.load_spec(study)


def test_a_registered_metric_is_budgetable_unless_it_is_learning(plugin_dir, tmp_path):
    sysprune.register_metric("latency_p99_ms", unit="ms", kind="level")
    sysprune.register_metric("val_f1", unit="1", kind="learning", better="maximize")
    study = tmp_path / "s.toml"
    study.write_text(
        'model = "sklearn_sgd"\ndataset = "digits"\n[objective]\nmetric = "val_f1"\n[budgets]\nlatency_p99_ms = 1.0\n'
    )
    spec = sysprune.load_spec(study)
    assert spec.budgets == {"latency_p99_ms": 1.0}
    assert spec.objective.directions == ("maximize",)
    assert sysprune.ResourceBudgetPruner({"latency_p99_ms": 1.0})  # the pruner's own check sees it too
    study.write_text('model = "sklearn_sgd"\ndataset = "digits"\n[budgets]\nval_f1 = 1.0\n')
    with pytest.raises(sysprune.SpecError, match=r"budgets\.val_f1: val_f1 is a learning metric, not a system metric"):
        sysprune.load_spec(study)


def test_plugins_are_validated_naming_the_module(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('plugins = ["no_such_plugin_module"]\nmodel = "sklearn_sgd"\ndataset = "digits"\n')
    with pytest.raises(sysprune.SpecError, match=r"s\.toml: plugins: plugin module 'no_such_plugin_module' cannot "):
        sysprune.load_spec(study)
    study.write_text('plugins = "blobs_data"\nmodel = "sklearn_sgd"\ndataset = "digits"\n')
    with pytest.raises(
        sysprune.SpecError, match=r"plugins: value 'blobs_data' is invalid; valid: a list of module names"
    ):
        sysprune.load_spec(study)


def test_without_the_plugin_the_names_are_unknown(plugin_dir, tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('model = "tiny_linear"\ndataset = "digits"\n')
    with pytest.raises(sysprune.SpecError, match=r"model: unknown model 'tiny_linear'; valid: torch_mlp, "):
        sysprune.load_spec(study)
    # A model named by its module path needs no plugins entry (the module registers it when imported) ...
    study.write_text('model = "random_features"\ndataset = "blobs"\n')
    # ... but a dataset registered by another module does.
    with pytest.raises(sysprune.SpecError, match=r"dataset\.name: unknown dataset 'blobs'; valid: digits, mnist"):
        sysprune.load_spec(study)
    assert "random_features" in sysprune.models.model_names()


def test_the_dataset_kind_comes_from_the_registry(plugin_dir, tmp_path):
    import blobs_data  # noqa: F401  (registers "blobs")

    assert _dataset_registry.dataset_kind("blobs") == "tabular"
    assert "blobs" in _dataset_registry.dataset_names()
    study = tmp_path / "s.toml"
    study.write_text('plugins = ["blobs_data"]\nmodel = "torch_cnn"\ndataset = "blobs"\n')
    with pytest.raises(sysprune.SpecError, match=r"dataset\.name: model torch_cnn needs image data; blobs is tabular"):
        sysprune.load_spec(study)


def test_registering_a_name_twice_with_other_code_is_refused(plugin_dir):
    import random_features

    def other_create(params, data, *, seed):  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(
        ValueError, match=r"^register_model: name: value 'random_features' is invalid; valid: a name not yet registered"
    ):
        sysprune.register_model("random_features", other_create, space={})
    sysprune.register_model("random_features", random_features.create, space={})  # the same code again: no-op
    with pytest.raises(ValueError, match="metric 'val_accuracy' is already registered"):
        sysprune.register_metric("val_accuracy", unit="%", kind="learning")
    with pytest.raises(
        ValueError, match=r"^register_dataset: name: value 'digits' is invalid; valid: a name not yet registered"
    ):
        sysprune.register_dataset("digits", lambda name, data_dir: None, kind="image")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sysprune.register_metric("Bad Name", unit="s", kind="level"), "metric name must be lower case"),
        (
            lambda: sysprune.register_metric("x_s", unit="s", kind="gauge"),
            "kind of metric 'x_s' must be one of cumulative, level, structural, learning, got 'gauge'",
        ),
        (lambda: sysprune.register_metric("x_s", unit="", kind="level"), "unit of metric 'x_s' must be a non-empty"),
        (
            lambda: sysprune.register_dataset("x", lambda n, d: None, kind="audio"),
            "kind of dataset 'x' must be 'tabular' or 'image', got 'audio'",
        ),
        (
            lambda: sysprune.register_dataset("x", lambda n, d: None, kind="image", pixel_max=0),
            "pixel_max of dataset 'x' must be a number > 0, got 0",
        ),
        (
            lambda: sysprune.register_model("x", len, space={}, inputs=("audio",)),
            r"inputs of model 'x' must be a non-empty subset of tabular, image, got \['audio'\]",
        ),
    ],
)
def test_registration_arguments_are_checked_naming_the_value(call, message, plugin_dir):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_loader_returning_the_wrong_shape_is_named(plugin_dir, tmp_path):
    import numpy as np

    sysprune.register_dataset("flat_images", lambda name, data_dir: (np.zeros((20, 4)), np.zeros(20)), kind="image")
    with pytest.raises(ValueError, match=r"dataset 'flat_images': its loader returned X of shape \(20, 4\)"):
        _prepare.prepare("flat_images", seed=0, cache_dir=tmp_path)


def test_a_pruner_of_ones_own_prunes_through_sysprune(plugin_dir):
    from plateau_pruner import PlateauPruner

    pruner = sysprune.CombinedPruner(sysprune.ResourceBudgetPruner({"wall_s": 60.0}, max_steps=10), PlateauPruner())
    study = optuna.create_study(direction="maximize", pruner=pruner)

    def objective(trial):  # the page's objective
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        accuracy = 0.0
        for step in range(10):
            accuracy = min(1.0, accuracy + lr)
            sysprune.report(trial, step, accuracy, {"wall_s": 0.1 * (step + 1)})
            if sysprune.should_prune(trial):
                raise optuna.TrialPruned()
        return accuracy

    for lr in (0.1, 1.0, 0.001):
        study.enqueue_trial({"lr": lr})
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, n_trials=3)
    steady, saturated, slow = study.get_trials()
    assert steady.state == optuna.trial.TrialState.COMPLETE and steady.value == pytest.approx(1.0)
    for t in (saturated, slow):  # no gain of 0.01 over the last two steps: pruned at step 2
        assert t.state == optuna.trial.TrialState.PRUNED
        assert max(t.intermediate_values) == 2
        assert "PlateauPruner" in t.user_attrs["prune_reason"]
    with pytest.raises(sysprune.exceptions.InvalidArgument) as e:
        PlateauPruner(patience=0)
    assert str(e.value) == "PlateauPruner: patience: value 0 is invalid; valid: an integer >= 1"


def _plateau_step(values: list[float], patience: int, min_delta: float) -> int | None:
    """The first step at which the page's plateau rule fires on a curve (its own arithmetic, for the check)."""
    for s in range(len(values)):
        seen = values[: s + 1]
        if len(seen) > patience and max(seen[-patience:]) < max(seen[:-patience]) + min_delta:
            return s
    return None


def test_a_policy_of_ones_own_runs_from_a_study_file_and_in_compare_and_replay(plugin_dir, tmp_path):
    """policy = "plateau", registered by the module beside the study file (no private import), runs a real digits
    study; compare runs it beside none, and replay (told the plugin) replays it over compare's none study."""
    db = ["--storage", f"sqlite:///{tmp_path / 'plateau.db'}"]
    r = command("run", "plateau_digits.toml", "--no-publish", "--quiet", *db, cwd=plugin_dir)
    assert r.returncode == 0, r.stderr
    assert "pruner plateau" in r.stdout
    study = optuna.load_study(study_name="plateau_digits", storage=db[1])
    assert study.user_attrs["pruner"] == {"policy": "plateau", "patience": 1, "min_delta": 0.02}
    trials = study.get_trials()
    assert len(trials) == 3
    for t in trials:  # each trial pruned exactly where the page's rule fires on its own curve, and only there
        curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        fires = _plateau_step(curve, 1, 0.02)
        if t.state == optuna.trial.TrialState.PRUNED:
            assert fires == max(t.intermediate_values) and "PlateauPruner" in t.user_attrs["prune_reason"]
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE and fires is None and len(curve) == 4
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in trials)  # the seeded study's curves do plateau

    # Worker processes (started by spawn) import the study's plugins before they build its pruner.
    workers = ["--workers", "2", "--oversubscribe", "--study-name", "plateau_workers", "--n-trials", "2"]
    r = command("run", "plateau_digits.toml", "--no-publish", "--quiet", *workers, *db, cwd=plugin_dir)
    assert r.returncode == 0, r.stderr
    for t in optuna.load_study(study_name="plateau_workers", storage=db[1]).get_trials():
        curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        assert (t.state == optuna.trial.TrialState.PRUNED) == (_plateau_step(curve, 1, 0.02) is not None)

    r = command(
        "compare",
        "plateau_digits.toml",
        "--policies",
        "none,plateau",
        "--seeds",
        "1",
        "--no-test",
        *db,
        cwd=plugin_dir,
    )
    assert r.returncode == 0, r.stderr
    assert "| plateau |" in (plugin_dir / "results" / "plateau_digits" / "compare.md").read_text()
    compared = optuna.load_study(study_name="plateau_digits.compare.plateau.s0", storage=db[1])
    assert compared.user_attrs["pruner"]["policy"] == "plateau" and len(compared.trials) == 3

    recording = optuna.load_study(study_name="plateau_digits.compare.none.s0", storage=db[1])
    expected = []  # where the rule fires on each recorded (full) curve: the replay must prune there, in any order
    for t in recording.get_trials():  # replay runs each policy with its own defaults: patience 2, min_delta 0.01
        at = _plateau_step([t.intermediate_values[s] for s in sorted(t.intermediate_values)], 2, 0.01)
        if at is not None:
            expected.append(f"{t.number}@{at}")
    assert len(recording.trials) == 3 and all(t.state.name == "COMPLETE" for t in recording.trials)
    assert expected  # some recorded curve plateaus: the replay has something to prune

    replay = ["replay", "plateau_digits.compare.none.s0", "--policies", "none,plateau", "--orders", "2", *db]
    r = command(*replay, cwd=plugin_dir)
    assert r.returncode == 2 and "--policies: value 'plateau' is invalid; valid: none, median" in r.stderr
    r = command(*replay, "--plugins", "plateau_pruner", cwd=plugin_dir)
    assert r.returncode == 0, r.stderr
    assert "replayed 2 policies x 3 orders x 3 trials" in r.stdout
    rows = list(csv.DictReader((plugin_dir / "results" / "plateau_digits.compare.none.s0" / "replay.csv").open()))
    plateau = [row for row in rows if row["policy"] == "plateau"]
    assert len(plateau) == 3
    assert [row["pruned_trials"] for row in plateau] == [" ".join(expected)] * 3, expected
    assert all(row["pruned_trials"] == "" for row in rows if row["policy"] == "none")


def test_a_policy_is_one_registration_read_everywhere(plugin_dir, tmp_path):
    """The registration's flags are what the factory, the runner and compare read; a bad key or value for the
    policy reads as for any pruner."""
    import plateau_pruner  # noqa: F401  (registers "plateau")

    policy = sysprune.pruners.get_policy("plateau")
    assert (policy.judges_curves, policy.member, policy.needs_budgets, policy.plain) == (True, True, False, False)
    assert "plateau" in sysprune.pruners.policy_names()
    study = tmp_path / "s.toml"
    base = 'plugins = ["plateau_pruner"]\nmodel = "sklearn_sgd"\ndataset = "digits"\nsteps = 4\n'
    study.write_text(base + '[pruner]\npolicy = "plateau"\n')
    assert sysprune.load_spec(study).pruner.params == {"patience": 2, "min_delta": 0.01}  # the pruner's defaults
    study.write_text(base + '[pruner]\npolicy = "combined"\nmembers = ["budget", "plateau"]\n[budgets]\nwall_s = 9\n')
    assert sysprune.load_spec(study).pruner.params["plateau"] == {"patience": 2, "min_delta": 0.01}
    for table, message in (
        ("patience = 0", "pruner.patience: value 0 is invalid; valid: an integer >= 1"),
        ("window = 3", "pruner.window: unknown key; valid: patience, min_delta"),
    ):
        study.write_text(base + f'[pruner]\npolicy = "plateau"\n{table}\n')
        with pytest.raises(sysprune.exceptions.InvalidArgument) as e:
            sysprune.load_spec(study)
        assert str(e.value) == f"{study}: {message}"
    study.write_text(base + '[pruner]\npolicy = "plateau"\n[objective]\nmetric = ["val_accuracy", "infer_ms"]\n')
    with pytest.raises(sysprune.SpecError, match="policy 'plateau' uses plateau, which needs a single-objective"):
        sysprune.load_spec(study)
    with pytest.raises(sysprune.exceptions.InvalidArgument, match=r"^register_policy: name: value 'plateau' is inv"):
        sysprune.register_policy("plateau", optuna.pruners.NopPruner)  # the name is taken by other code
    with pytest.raises(sysprune.exceptions.InvalidArgument, match=r"^register_policy: name: value 'Bad Name' is inv"):
        sysprune.register_policy("Bad Name", optuna.pruners.NopPruner)
