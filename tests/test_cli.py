"""Bad input through the real command line: one line naming file/field/value, exit 2, no database written."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests._cli import run_command as sysprune
from tests._require import missing

REPO = Path(__file__).resolve().parents[1]
GOOD = """
model = "torch_mlp"
steps = 2
n_trials = 2
[dataset]
name = "digits"
[search_space]
width = {type = "int", low = 8, high = 32}
"""


BAD_CASES = {
    "unknown model": (GOOD.replace('"torch_mlp"', '"xgboost"'), "model: unknown model 'xgboost'; valid: torch_mlp"),
    "unknown dataset": (GOOD.replace('"digits"', '"cifar10"'), "dataset.name: unknown dataset 'cifar10'"),
    "unknown metric in objective": (
        GOOD + '[objective]\nmetric = "f1"\n',
        "objective.metric: value 'f1' is invalid; valid: val_accuracy",
    ),
    "unknown metric in budgets": (GOOD + "[budgets]\nram = 5\n", "budgets.ram: unknown system metric; valid: wall_s"),
    "learning metric in budgets": (
        GOOD + "[budgets]\nval_accuracy = 0.5\n",
        "budgets.val_accuracy: val_accuracy is a learning metric, not a system metric (a curve policy such as",
    ),
    "unknown top-level key": ("n_trial = 3\n" + GOOD, "n_trial: unknown key; valid: name, description, model"),
    "unknown nested key": (
        GOOD.replace('name = "digits"', 'name = "digits"\nsplit = 0.3'),
        "dataset.split: unknown key; valid: name, subsample, val_fraction, test_fraction",
    ),
    "inverted range": (
        GOOD.replace("low = 8, high = 32", "low = 32, high = 8"),
        "search_space.width: value low=32 high=8 is invalid; valid: low < high",
    ),
    "empty range": (
        GOOD.replace("low = 8, high = 32", "low = 8, high = 8"),
        "search_space.width: value low=8 high=8 is",
    ),
    "negative budget": (
        GOOD + "[budgets]\ninfer_ms = -1.0\n",
        "budgets.infer_ms: value -1.0 is invalid; valid: a finite number >= 0",
    ),
    "unknown parameter": (GOOD + "depth = 3\n", "search_space.depth: unknown parameter for model torch_mlp"),
    "unknown pruner policy": (
        GOOD + '[pruner]\npolicy = "sometimes"\n',
        "pruner.policy: value 'sometimes' is invalid; valid: none, median, ",
    ),
    "image model on tabular data": (
        GOOD.replace('"torch_mlp"', '"torch_cnn"')
        .replace('"digits"', '"pmlb:iris"')
        .replace('width = {type = "int", low = 8, high = 32}', ""),
        "dataset.name: model torch_cnn needs image data; pmlb:iris is tabular",
    ),
    "invalid toml": ("model = \n", "invalid TOML"),
    # issue 10, "Why" point 9: each of these used to write to the database, or end in a traceback
    "inf in a range bound": (
        GOOD.replace('width = {type = "int", low = 8, high = 32}', 'lr = {type = "float", low = 1e-4, high = inf}'),
        "search_space.lr.high: value inf is invalid; valid: a finite number",
    ),
    "nan in a range bound": (
        GOOD.replace('width = {type = "int", low = 8, high = 32}', 'lr = {type = "float", low = nan, high = 0.1}'),
        "search_space.lr.low: value nan is invalid; valid: a finite number",
    ),
    "inf budget": (
        GOOD + "[budgets]\nwall_s = inf\n",
        "budgets.wall_s: value inf is invalid; valid: a finite number >= 0",
    ),
    "nan cap": (
        GOOD + "[trial]\nmax_rss_mb = nan\n",
        "trial.max_rss_mb: value nan is invalid; valid: a finite number > 0",
    ),
    "unknown pmlb name": (
        GOOD.replace('"digits"', '"pmlb:no_such_set"'),
        "dataset.name: unknown dataset 'pmlb:no_such_set': not a PMLB classification dataset; valid:",
    ),
    "pmlb regression set": (
        GOOD.replace('"digits"', '"pmlb:1027_ESL"'),
        "dataset.name: unknown dataset 'pmlb:1027_ESL': a regression dataset; valid:",
    ),
    "fixed parameter of the wrong type": (
        GOOD + 'n_layers = "three"\n',
        "search_space.n_layers: value 'three' is invalid; valid: an integer >= 1 "
        "(torch_mlp declares n_layers as int[1, 3])",
    ),
    "fixed parameter out of range": (
        GOOD + "batch_size = 0\n",
        "search_space.batch_size: value 0 is invalid; valid: an integer >= 1",
    ),
    "range of the wrong type": (
        GOOD + 'n_layers = {type = "float", low = 1.0, high = 3.0}\n',
        "search_space.n_layers.type: value 'float' is invalid; valid: int, categorical",
    ),
    "categorical of mixed types": (
        GOOD + 'batch_size = {type = "categorical", choices = [1, true]}\n',
        "search_space.batch_size.choices: value [1, True] is invalid; valid: choices of one type",
    ),
    "warm-up as long as the study": (
        GOOD + '[pruner]\npolicy = "median"\nn_warmup_steps = 2\n',
        "pruner.n_warmup_steps: value 2 is invalid (the pruner could never act: the study "
        "has steps = 2); valid: an integer in [0, 1]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_study_file_gives_one_line_and_exit_2(case, tmp_path, cli):
    text, expected = BAD_CASES[case]
    f = tmp_path / "bad.toml"
    f.write_text(text)
    db = tmp_path / "out" / "study.db"
    r = cli("run", str(f), "--storage", f"sqlite:///{db}")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"sysprune: error: {f}: ")
    assert expected in lines[0]
    assert "Traceback" not in r.stderr
    assert not db.exists() and not db.parent.exists()


def test_missing_file(tmp_path, cli):
    r = cli("run", str(tmp_path / "nope.toml"), "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 2
    assert r.stderr.strip() == f"sysprune: error: {tmp_path / 'nope.toml'}: study file not found"
    assert not (tmp_path / "x.db").exists()


#: The download the loaders try goes to a closed local port, so "not available offline" holds on a connected machine
#: too (and no test reaches the network).
NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}


@pytest.mark.slow  # as a command only: in this process the proxy would stay in urllib's opener
@pytest.mark.parametrize("dataset", ["pmlb:adult", "mnist"])
def test_dataset_not_available_offline(tmp_path, dataset):
    f = tmp_path / "s.toml"
    f.write_text(GOOD.replace('"digits"', f'"{dataset}"'))
    empty = tmp_path / "empty-data"
    empty.mkdir()
    r = sysprune(
        "run",
        str(f),
        "--storage",
        f"sqlite:///{tmp_path / 'x.db'}",
        env={"SYSPRUNE_DATA_DIR": str(empty), "SYSPRUNE_CACHE_DIR": str(tmp_path / "cache"), **NO_NETWORK},
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sysprune: error: "), r.stderr
    assert dataset.split(":")[-1] in lines[0] and str(empty) in lines[0]
    assert not (tmp_path / "x.db").exists()


def test_bad_override_is_one_line(tmp_path, cli):
    f = tmp_path / "s.toml"
    f.write_text(GOOD)
    r = cli("run", str(f), "--n-trials", "0", "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 2
    assert r.stderr.strip() == "sysprune: error: --n-trials: value 0 is invalid; valid: an integer >= 1"
    assert not (tmp_path / "x.db").exists()


def test_library_errors_name_the_argument_and_the_command_line_its_flag():
    from sysprune.spec import InvalidArgument, parse_spec
    from sysprune.study._runner import run_study
    from sysprune.cli import error_line

    spec = parse_spec({"model": "torch_mlp", "dataset": "digits"})
    with pytest.raises(InvalidArgument, match=r"^seed: value -3 is invalid; valid: an integer >= 0$") as e:
        run_study(spec, storage_url="sqlite:///never-written.db", seed=-3)
    assert error_line(e.value) == "--seed: value -3 is invalid; valid: an integer >= 0"
    assert not Path("never-written.db").exists()


def test_studies_lists_the_shipped_files(cli):
    r = cli("studies")
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.strip().splitlines()
    assert header.split()[:4] == ["study", "model", "dataset", "steps"]
    names = {row.split()[0] for row in rows}
    assert "digits_mlp" in names
    assert names == {p.stem for p in (REPO / "studies").glob("*.toml")}


def test_every_subcommand_has_help_with_an_example(cli):
    top = cli("--help")
    assert top.returncode == 0
    for cmd in ("run", "studies", "metrics", "dashboard"):
        r = cli(cmd, "--help")
        assert r.returncode == 0, cmd
        assert "example" in r.stdout and f"sysprune {cmd}" in r.stdout, cmd


@pytest.mark.parametrize("target", ["study", "study-digits_mlp", "study-mlp_mnist"])
def test_make_has_a_target_per_study_file(target):
    r = subprocess.run(["make", "-n", target], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    name = "digits_mlp" if target == "study" else target.removeprefix("study-")
    assert f"sysprune run studies/{name}.toml" in r.stdout


def test_make_help_lists_every_study():
    r = subprocess.run(["make", "help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0
    for p in (REPO / "studies").glob("*.toml"):
        assert f"study-{p.stem}" in r.stdout


@pytest.mark.parametrize(
    "url, expected",
    [
        ("nonsense", "--storage 'nonsense': not an SQLAlchemy URL"),
        (
            "postgresql+psycopg2://u:secret@127.0.0.1:1/db",
            "--storage 'postgresql+psycopg2://u:***@127.0.0.1:1/db': cannot open the database",
        ),
        (
            "sqlite:////proc/no-such-dir/x.db",
            "--storage 'sqlite:////proc/no-such-dir/x.db': the folder /proc/no-such-dir does not exist; create it",
        ),
        (
            "postgresql+psycopg2://u:secret@127.0.0.1:notaport/db",
            "--storage 'postgresql+psycopg2://u:***@127.0.0.1:notaport/db': not an SQLAlchemy URL",
        ),
        ("postgresql+psycopg2//u:secret@127.0.0.1/db", "--storage 'postgresql+psycopg2//u:***@127.0.0.1/db': not an"),
    ],
)
def test_bad_storage_is_one_line_without_the_password(url, expected, cli):
    r = cli("run", "studies/digits_mlp.toml", "--storage", url)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sysprune: error: " + expected), r.stderr
    assert "secret" not in r.stderr


def console_script(name: str) -> str:
    """The console script ``name`` in the scripts folder of the environment running the tests (any venv or install)."""
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.is_file():
        missing(f"no {name} console script in {path.parent} (pip install -e . installs it)")
    return str(path)


@pytest.mark.slow
def test_a_model_module_of_your_own_in_the_current_folder(tmp_path):
    """model = "package.module" names a plugin following the model contract, importable from where sysprune runs."""
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "__init__.py").write_text("")
    (tmp_path / "plug" / "my_model.py").write_text(
        (REPO / "tests" / "workloads" / "alloc.py").read_text().replace('"tests.workloads.alloc"', '"plug.my_model"')
    )
    (tmp_path / "s.toml").write_text('model = "plug.my_model"\nsteps = 2\nn_trials = 2\n[dataset]\nname = "digits"\n')
    r = subprocess.run(
        [
            console_script("sysprune"),
            "run",
            "s.toml",
            "--storage",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "2 trials (2 complete, 0 pruned, 0 failed)" in r.stdout


# ----------------------------------------------------------------------------------------- failures with a reason

DIVERGE = """
model = "tests.workloads.diverge"
n_trials = 1
[dataset]
name = "digits"
[search_space]
"""


def _trials(url: str, name: str = "s"):
    import optuna

    return optuna.load_study(study_name=name, storage=url).trials


@pytest.mark.slow
def test_a_nan_objective_fails_the_trial_saying_at_which_step(tmp_path):
    from optuna.trial import TrialState

    from sysprune import load_step_metrics

    f = tmp_path / "s.toml"
    f.write_text("steps = 4\n" + DIVERGE + "nan_at = 2\n")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    r = sysprune("run", str(f), "--storage", url, "--no-publish")
    assert r.returncode == 0, r.stderr
    (t,) = _trials(url)
    assert t.state == TrialState.FAIL
    assert t.user_attrs["error"] == "objective metric 'val_accuracy' was NaN at step 2"
    assert "was NaN at step 2" in r.stderr  # the progress line says why
    assert list(load_step_metrics(url, "s").step) == [-1, 0, 1, 2]  # what it measured is kept (-1: pre-training)


@pytest.mark.slow
def test_ctrl_c_fails_the_running_trial_saying_it_was_interrupted(tmp_path):
    import signal
    import time

    from optuna.trial import TrialState

    f = tmp_path / "s.toml"
    f.write_text("steps = 200\n" + DIVERGE + "step_s = 0.1\n")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    p = subprocess.Popen(
        [sys.executable, "-m", "sysprune.cli", "run", str(f), "--storage", url, "--no-publish"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # until the trial has reported a step: it is inside the step loop
            time.sleep(0.5)
            try:
                trials = _trials(url)
            except Exception:  # the database or the study does not exist yet
                continue
            if trials and trials[0].intermediate_values:
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "interrupted; the study is kept" in err and "Traceback" not in err
    (t,) = _trials(url)
    assert t.state == TrialState.FAIL
    assert t.user_attrs["error"].startswith("interrupted (SIGINT) during step "), t.user_attrs


@pytest.mark.slow
def test_a_closed_stdout_ends_quietly(tmp_path):
    """`sysprune run ... | head -1`: the run ends without a BrokenPipe traceback, status 141 as a shell reports."""
    f = tmp_path / "s.toml"
    f.write_text("steps = 2\n" + DIVERGE)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    cmd = (
        f"'{sys.executable}' -m sysprune.cli run '{f}' --storage '{url}' --no-publish | head -1; "
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.stdout.startswith("starting s: tests.workloads.diverge") and len(r.stdout.splitlines()) == 1
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr and "Exception ignored" not in r.stderr
    assert "status=141" in r.stderr, r.stderr


@pytest.mark.slow
def test_resuming_a_changed_study_is_one_line_and_a_safe_change_is_accepted(tmp_path):
    """Through the command line: --seed and an edited categorical are refused (no Optuna traceback, no FAIL trial),
    --n-trials adds trials."""
    from optuna.trial import TrialState

    f = tmp_path / "s.toml"
    text = "steps = 1\n" + DIVERGE + 'nan_at = {type = "categorical", choices = [-1, -2]}\n'
    f.write_text(text)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert sysprune("run", str(f), "--storage", url, "--no-publish", "--quiet").returncode == 0
    r = sysprune("run", str(f), "--storage", url, "--seed", "7")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"sysprune: error: study 's' in {url} was defined differently: seed 0 -> 7; to start a new study, give "
        "another --study-name"
    ]
    f.write_text(text.replace("[-1, -2]", "[-1, -3]"))
    r = sysprune("run", str(f), "--storage", url, "--n-trials", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "search_space.nan_at.choices [-1, -2] -> [-1, -3]" in r.stderr and len(r.stderr.splitlines()) == 1
    assert [t.state for t in _trials(url)] == [TrialState.COMPLETE]
    f.write_text(text)
    r = sysprune("run", str(f), "--storage", url, "--n-trials", "1", "--quiet", "--no-publish")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("resuming s: ")
    assert [t.state for t in _trials(url)] == [TrialState.COMPLETE] * 2


def _one_message_errors() -> list[type[BaseException]]:
    from sysprune import exceptions as ex

    custom = (ex.StudyMismatch, ex.CapExceeded, ex.InvalidArgument)  # their own constructors: tested below
    classes = [getattr(ex, n) for n in ex.__all__]
    return [c for c in classes if issubclass(c, ex.SyspruneError) and c not in custom]


@pytest.mark.parametrize("cls", _one_message_errors(), ids=lambda c: c.__name__)
def test_every_sysprune_error_is_one_line_and_exit_2(cls, monkeypatch, capsys):
    """The command catches SyspruneError once: any of them, raised by any command, is one line and exit 2."""
    import signal

    import optuna

    from sysprune import _logging, cli

    def fail(args):
        raise cls(f"something about {cls.__name__}\nsecond line")

    fail.__doc__ = cli._cmd_metrics.__doc__  # a subcommand's help is its handler's docstring
    monkeypatch.setattr(cli, "_cmd_metrics", fail)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the current folder on it
    saved = signal.getsignal(signal.SIGTERM), optuna.logging.get_verbosity(), _logging.get_verbosity()
    interrupt = signal.getsignal(signal.SIGINT)
    try:
        assert cli.main(["metrics"]) == 2
    finally:  # main() sets these up for the command's process: put them back for the tests after this one
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, saved[0])
        optuna.logging.set_verbosity(saved[1])
        _logging.disable_default_handler()
        _logging.set_verbosity(saved[2])
    assert capsys.readouterr().err == f"sysprune: error: something about {cls.__name__}\n"


def test_an_invalid_value_is_named_by_its_flag_only_when_it_is_a_library_argument():
    from sysprune.cli import error_line
    from sysprune.exceptions import InvalidArgument

    argument = InvalidArgument("seed", -1, "an integer >= 0")
    assert error_line(argument) == "--seed: value -1 is invalid; valid: an integer >= 0"
    in_a_file = argument.within("s.toml")  # a study file's field "seed" is not the flag
    assert error_line(in_a_file) == "s.toml: seed: value -1 is invalid; valid: an integer >= 0"


def test_an_unknown_policy_is_one_line_and_writes_nothing(tmp_path, cli):
    db = tmp_path / "p.db"
    r = cli("run", str(REPO / "studies" / "digits_mlp.toml"), "--policy", "nonee", "--storage", f"sqlite:///{db}")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "sysprune: error: --policy: value 'nonee' is invalid; valid: none, median, hyperband, budget, curve, combined, "
        "threshold, plain, precheck"
    )
    assert not db.exists()


@pytest.mark.slow
def test_policy_records_the_study_under_another_policy_as_its_own_study(tmp_path):
    import optuna

    from sysprune._attrs import STUDY_PRUNER

    f = tmp_path / "s.toml"
    f.write_text("steps = 2\n" + DIVERGE + '[pruner]\npolicy = "median"\n')
    url = f"sqlite:///{tmp_path / 'x.db'}"
    r = sysprune("run", str(f), "--policy", "none", "--storage", url, "--no-publish")
    assert r.returncode == 0, r.stderr
    assert "pruner none" in r.stdout and "(study 's.none')" in r.stdout
    study = optuna.load_study(study_name="s.none", storage=url)
    assert study.user_attrs[STUDY_PRUNER]["policy"] == "none" and len(study.trials) == 1
    listed = sysprune("studies", "--storage", url)
    assert listed.stdout.splitlines()[2].split()[0] == "s.none" and " none " in listed.stdout
    # The file's own policy changes nothing: the file's study name.
    named = sysprune("run", str(f), "--policy", "median", "--storage", url, "--no-publish", "--study-name", "m")
    assert named.returncode == 0 and "pruner median" in named.stdout and "(study 'm')" in named.stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("digits_mlp", "digits_mlp: study file not found; did you mean studies/digits_mlp.toml?"),
        (
            "studies/digits_mpl.toml",
            "studies/digits_mpl.toml: study file not found; did you mean studies/digits_mlp.toml?",
        ),
        ("nothing_like_it.toml", "nothing_like_it.toml: study file not found"),
    ],
)
def test_a_study_file_not_found_names_the_closest_one(given, expected, cli):
    r = cli("run", given, cwd=REPO)
    assert r.returncode == 2 and r.stderr.strip() == f"sysprune: error: {expected}", r.stderr


def test_a_bad_option_value_is_one_line_without_the_usage_block(cli):
    r = cli("run", "studies/digits_mlp.toml", "--n-trials", "2.5")
    assert r.returncode == 2 and "usage:" not in r.stderr
    assert r.stderr == (
        "sysprune run: error: argument --n-trials: invalid int value: '2.5' (see 'sysprune run --help')\n"
    )


def test_help_never_breaks_a_policy_name(cli):
    from sysprune.pruners import policy_names

    r = cli("compare", "--help", env={"COLUMNS": "80"})
    words = set(r.stdout.replace(",", " ").replace(")", " ").split())
    assert set(policy_names()) <= words, r.stdout


@pytest.mark.parametrize("cmd", ["run", "worker", "studies", "compare", "replay", "report", "trials", "best"])
def test_help_fits_an_80_column_terminal(cmd, cli):
    r = cli(cmd, "--help", env={"COLUMNS": "80"})
    text = r.stdout.split("example")[0]  # the examples are shown as written
    long = [line for line in text.splitlines() if len(line) > 80 and " " in line.strip()]
    assert r.returncode == 0 and not long, long
