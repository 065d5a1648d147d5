"""Values the model rejects are refused up front: a search-space range, choice or fixed value outside a model's
declared bounds (built-in families and a plugin's) is one line, exit 2, nothing written — not a study whose every
trial fails."""

from __future__ import annotations

import pytest

import os
import sys

from sysprune.constraints import Integer, Real
from sysprune.models._space import CategoricalParam, FixedParam, FloatParam, IntParam
from sysprune.spec import load_spec
from sysprune.spec._search_space import check_bounds
from tests.test_cli import GOOD

BASE = GOOD.replace('width = {type = "int", low = 8, high = 32}\n', "")
CNN = BASE.replace('"torch_mlp"', '"torch_cnn"')
SGD = BASE.replace('"torch_mlp"', '"sklearn_sgd"')

OUT_OF_BOUNDS = {
    "dropout range above 0.99": (
        BASE,
        'dropout = {type = "float", low = 0.1, high = 1.5}',
        "search_space.dropout.high",
    ),
    "fixed dropout above 1": (BASE, "dropout = 2.0", "search_space.dropout: value 2.0"),
    "absurd learning rate": (BASE, "lr = 1e6", "search_space.lr: value 1000000.0"),
    "absurd width": (BASE, "width = 100000000", "search_space.width: value 100000000"),
    "width range to a billion": (BASE, 'width = {type = "int", low = 8, high = 1000000000}', "search_space.width.high"),
    "too many layers": (BASE, "n_layers = 1000", "search_space.n_layers"),
    "a batch size of two million among choices": (
        BASE,
        'batch_size = {type = "categorical", choices = [32, 2000000]}',
        "search_space.batch_size.choices[1]",
    ),
    "cnn: too many conv layers": (CNN, "n_conv = 100", "search_space.n_conv"),
    "sgd: an unknown loss": (SGD, 'loss = "hinge_squared"', "search_space.loss"),
    "sgd: batch size of a trillion": (SGD, "batch_size = 1000000000000", "search_space.batch_size"),
}


@pytest.mark.parametrize("base, entry, says", OUT_OF_BOUNDS.values(), ids=OUT_OF_BOUNDS.keys())
def test_a_value_the_model_rejects_is_refused_before_anything_runs(base, entry, says, tmp_path, cli):
    (tmp_path / "s.toml").write_text(base + entry + "\n")
    r = cli("run", "s.toml", "--storage", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert says in lines[0] and "is invalid; valid: " in lines[0] and "accepts no other" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # nothing written


def test_values_inside_the_bounds_are_accepted(tmp_path):
    (tmp_path / "s.toml").write_text(BASE + 'dropout = {type = "float", low = 0.0, high = 0.99}\nlr = 10.0\n')
    spec = load_spec(tmp_path / "s.toml")
    assert spec.search_space["dropout"].high == 0.99


def test_check_bounds_is_pure_and_names_the_end_that_leaves():
    bound = Real(0.0, 1.0)
    check_bounds(FloatParam(0.0, 1.0), bound, "f", "m")
    check_bounds(FloatParam(0.0, 5.0), None, "f", "m")  # no bound declared: anything of the right type
    with pytest.raises(Exception, match=r"f\.low: value -1"):
        check_bounds(FloatParam(-1.0, 0.5), bound, "f", "m")
    with pytest.raises(Exception, match=r"f\.choices\[2\]: value 7"):
        check_bounds(CategoricalParam((1, 2, 7)), Integer(1, 4), "f", "m")
    with pytest.raises(Exception, match=r"^f: value 9 .*\(m accepts no other\)"):
        check_bounds(FixedParam(9), Integer(1, 4), "f", "m")
    check_bounds(IntParam(1, 4), Integer(1, 4), "f", "m")


def test_a_plugins_bounds_are_checked_too(tmp_path, cli, monkeypatch):
    from sysprune.models import _registry

    # in this process (the in-process run) the plugin registers itself: keep it out of the registry other tests see
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))
    monkeypatch.setitem(sys.modules, "bounded_model", None)
    del sys.modules["bounded_model"]
    (tmp_path / "bounded_model.py").write_text(
        "import sysprune\n"
        "from sysprune.constraints import Real\n"
        "def create(params, data, *, seed):\n"
        "    raise AssertionError('never built: the study is refused first')\n"
        "sysprune.register_model('bounded_model', create, space={'lr': sysprune.FloatParam(0.01, 0.5, default=0.1)},\n"
        "                        bounds={'lr': Real(0.0, 1.0, low_open=True)})\n"
    )
    study = GOOD.replace('"torch_mlp"', '"bounded_model"').replace(
        'width = {type = "int", low = 8, high = 32}', 'lr = {type = "float", low = 0.1, high = 5.0}'
    )
    (tmp_path / "s.toml").write_text('plugins = ["bounded_model"]\n' + study)
    r = cli(
        "run",
        "s.toml",
        "--storage",
        f"sqlite:///{tmp_path / 'x.db'}",
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"},
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "search_space.lr.high: value 5" in lines[0] and "bounded_model accepts no other" in lines[0], lines[0]
    assert not (tmp_path / "x.db").exists()
