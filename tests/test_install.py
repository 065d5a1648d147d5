"""sysprune as a library: the core works without the heavy extras, and the packaging metadata is what the docs say.

The "without" tests run in a fresh interpreter whose import system refuses every extra's modules (torch,
torchvision, pmlb, optuna_dashboard, ray, psycopg2: a meta-path finder raising ImportError, installed by a
``sitecustomize`` on PYTHONPATH so that the fork server and the trial processes refuse them too), as if only
``pip install sysprune`` had been run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "torchvision", "pmlb", "optuna_dashboard", "ray", "psycopg2")

_SITECUSTOMIZE = f"""
import sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, _Refuse())
"""


def env_without_extras(tmp_path: Path) -> dict[str, str]:
    """The environment of a process (and of every process it starts) that cannot import the extras."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def run_without_extras(tmp_path: Path, code: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter without the extras; return its stdout (fail on a non-zero exit)."""
    env = env_without_extras(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_blocker_blocks(tmp_path):
    out = run_without_extras(
        tmp_path,
        f"""
        for name in {BLOCKED!r}:
            try:
                __import__(name)
            except ImportError:
                print("refused", name)
    """,
    )
    assert out.split("\n")[:-1] == [f"refused {m}" for m in BLOCKED]


def test_import_sysprune_and_the_pruners_work_without_the_extras(tmp_path):
    out = run_without_extras(
        tmp_path,
        """
        import sys
        import optuna
        import sysprune
        import sysprune.trial._preload  # what the fork server imports

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(direction="maximize", pruner=sysprune.ResourceBudgetPruner({"infer_ms": 1.0}))

        def objective(trial):
            latency = trial.suggest_categorical("latency", [0.5, 2.0])
            for step in range(3):
                sysprune.report(trial, step, 0.1 * step, {"infer_ms": latency})
                if sysprune.should_prune(trial):
                    raise optuna.TrialPruned()
            return 1.0

        study.enqueue_trial({"latency": 0.5})
        study.enqueue_trial({"latency": 2.0})
        study.optimize(objective, n_trials=2)
        print([t.state.name for t in study.trials])
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "pmlb", "optuna_dashboard")))
    """,
    )
    assert out.splitlines() == ["['COMPLETE', 'PRUNED']", "[]"]


def test_a_model_or_dataset_named_without_its_extra_is_one_line_naming_the_extra(tmp_path):
    out = run_without_extras(
        tmp_path,
        """
        from pathlib import Path
        import sysprune

        for model, dataset in (("torch_mlp", "digits"), ("sklearn_sgd", "mnist"), ("sklearn_sgd", "pmlb:adult")):
            Path("s.toml").write_text(f'model = "{model}"\\ndataset = "{dataset}"\\n')
            try:
                sysprune.load_spec("s.toml")
            except sysprune.SpecError as e:
                print(e)
        Path("s.toml").write_text('model = "sklearn_sgd"\\ndataset = "digits"\\n')
        print(sysprune.load_spec("s.toml").model)
    """,
    )
    assert out.splitlines() == [
        "s.toml: model: model 'torch_mlp' needs torch, which is not installed; install sysprune[torch] "
        "(pip install 'sysprune[torch]')",
        "s.toml: dataset.name: dataset 'mnist' needs torchvision, which is not installed; install sysprune[torch] "
        "(pip install 'sysprune[torch]')",
        "s.toml: dataset.name: dataset 'pmlb:adult' needs pmlb, which is not installed; install sysprune[pmlb] "
        "(pip install 'sysprune[pmlb]')",
        "sklearn_sgd",
    ]


@pytest.mark.slow
def test_a_study_runs_without_torch(tmp_path):
    """The scikit-learn model on the bundled digits: worker, fork server and trial processes all without torch."""
    out = run_without_extras(
        tmp_path,
        """
        import sys
        from pathlib import Path
        import sysprune

        Path("s.toml").write_text('model = "sklearn_sgd"\\ndataset = "digits"\\nsteps = 2\\nn_trials = 2\\n')
        result = sysprune.run_study(sysprune.load_spec("s.toml"), storage_url="sqlite:///s.db", cache_dir="arrays")
        print([t.state.name for t in result.study.trials])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """,
    )
    assert out.splitlines() == ["['COMPLETE', 'COMPLETE']", "[]"]


def test_the_test_suite_collects_without_the_extras(tmp_path):
    """A test module that needs a missing extra is skipped, saying which and how to install it; collection never
    aborts (locally: under CI, where every extra is installed, a missing one fails instead)."""
    env = {k: v for k, v in env_without_extras(tmp_path).items() if k != "CI"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-rs", str(ROOT / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " error" not in proc.stdout.splitlines()[-1], proc.stdout[-3000:]
    assert (
        "tests/test_measure.py:" in proc.stdout
        and "torch is not installed (pip install 'sysprune[torch]')" in proc.stdout
    )
    assert "optuna_dashboard is not installed (pip install 'sysprune[dashboard]')" in proc.stdout


# ---------------------------------------------------------------------------------------------------------------
# Packaging metadata


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_dependencies_are_ranges_with_the_tested_versions_as_floors(project):
    assert project["requires-python"] == ">=3.11"
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _constraints()
    for req in requirements:
        assert "==" not in req and ">=" in req, f"{req!r}: a range with the tested version as its floor"
        floor = re.search(r">=([^,; ]+)", req).group(1)
        assert pins[_name(req)] == floor, f"{req!r}: floor {floor} is not the tested (locked) {pins[_name(req)]}"


def test_extras_split_the_heavy_parts(project):
    extras = {name: {_name(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    assert {"torch", "dashboard", "pmlb", "postgres", "dev"} <= set(extras)
    assert extras["torch"] == {"torch", "torchvision"}
    assert extras["dashboard"] == {"optuna-dashboard"}
    assert extras["pmlb"] == {"pmlb"}
    assert "psycopg2-binary" in extras["postgres"]
    assert {"pytest", "ruff", "mypy"} <= extras["dev"]
    core = {_name(r) for r in project["dependencies"]}
    assert not core & {"torch", "torchvision", "pmlb", "optuna-dashboard", "psycopg2-binary"}


def test_the_lock_pins_the_torch_pair_and_make_installs_with_it():
    pins = _constraints()
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
    makefile = (ROOT / "Makefile").read_text()
    install = " ".join(makefile.replace("\\\n", " ").split())  # the recipe's continued lines as one
    assert "pip install --progress-bar off -c constraints.txt -e '.[torch,dashboard,pmlb,postgres,ray,results,lightning,optunahub,dev]'" in install  # fmt: skip
    assert re.search(r"^\$\(VENV\)/\.installed: pyproject\.toml constraints\.txt$", makefile, re.M)


def test_the_package_says_it_is_typed():
    assert (ROOT / "sysprune" / "py.typed").is_file()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["sysprune"]
