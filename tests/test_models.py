"""Model families: the registry, real short training runs, determinism, sizes, inference, losses."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

from sysprune.datasets import Dataset, load
from sysprune.exceptions import InvalidArgument
from sysprune.models._space import CategoricalParam, FixedParam, FloatParam, IntParam
from sysprune.models import get_model, model_names
from sysprune.models.sklearn_sgd import surrogate_loss

#: Parameters that learn fast on small data (a few steps), per family.
FAST = {
    "torch_mlp": {"n_layers": 1, "width": 64, "lr": 3e-3, "batch_size": 32, "dropout": 0.0},
    "torch_cnn": {"n_conv": 2, "channels": 8, "fc_width": 32, "lr": 3e-3, "batch_size": 32},
    "sklearn_sgd": {"loss": "log_loss", "alpha": 1e-3, "learning_rate": "invscaling", "eta0": 0.01, "batch_size": 64},
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Pin torch and BLAS to one thread, as the trial process does (tiny batches crawl with contended threads)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "array-cache"


@pytest.fixture(scope="module")
def digits(arrays) -> Dataset:
    return load("digits", seed=0, cache_dir=arrays)


def _run(model: str, params: dict, data: Dataset, *, seed: int = 0, steps: int = 3) -> list[dict]:
    trainer = get_model(model).create(params, data, seed=seed)
    return [{**trainer.train_step(s), **trainer.evaluate()} for s in range(steps)]


def _tabular(n: int = 200, n_features: int = 5, n_classes: int = 2, seed: int = 0) -> Dataset:
    """A small separable tabular problem (labels from the sign pattern of two features)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0) * (n_classes > 2)).astype(np.int64) % n_classes
    cut = n // 2
    return Dataset("toy", "tabular", (n_features,), n_classes, X[:cut], y[:cut], X[cut:], y[cut:], X[cut:], y[cut:])


# ---------------------------------------------------------------------------------------------------------------
# Registry


@pytest.mark.parametrize("name", model_names())
def test_registered_family_and_defaults_inside_space(name):
    family = get_model(name)
    assert family.name == name
    assert family.inputs and family.inputs <= {"tabular", "image"}
    for key, param in family.space.items():
        value = param.default
        if isinstance(param, CategoricalParam):
            assert value in param.choices, key
        elif isinstance(param, (IntParam, FloatParam)):
            assert param.low <= value <= param.high and param.low < param.high, key
        else:
            assert isinstance(param, FixedParam), key


def test_inputs_per_family():
    assert get_model("torch_mlp").inputs == {"tabular", "image"}
    assert get_model("torch_cnn").inputs == {"image"}
    assert get_model("sklearn_sgd").inputs == {"tabular", "image"}
    assert get_model("torch_mlp").requires == ("torch",) and get_model("sklearn_sgd").requires == ("sklearn",)


def test_model_modules_import_neither_torch_nor_sklearn():
    code = (
        "import sys; import sysprune.models as m; before = set(sys.modules)\n"
        "spaces = [m.get_model(n).space for n in m.model_names()]\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(x for x in new if x.split('.')[0] in ('torch', 'sklearn', 'torchvision')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", model_names())
def test_unknown_parameter_is_rejected_naming_it(name, digits):
    with pytest.raises(ValueError, match=rf"^{name}: colour: unknown key; valid: "):
        get_model(name).create({"colour": 1}, digits, seed=0)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("torch_mlp", {"width": 0}, "torch_mlp: width: value 0 is invalid; valid: an integer in [1, 65536]"),
        (
            "torch_mlp",
            {"dropout": 1.5},
            "torch_mlp: dropout: value 1.5 is invalid; valid: a finite number in [0, 0.99]",
        ),
        ("torch_cnn", {"kernel_size": 4}, "torch_cnn: kernel_size: value 4 is invalid; valid: 1, 3, 5, 7"),
        (
            "sklearn_sgd",
            {"loss": "squared"},
            "sklearn_sgd: loss: value 'squared' is invalid; valid: hinge, log_loss, modified_huber",
        ),
        ("sklearn_sgd", {"alpha": -1.0}, "sklearn_sgd: alpha: value -1.0 is invalid; valid: a finite number > 0"),
    ],
)
def test_bad_parameter_values_are_rejected(name, params, message, digits):
    with pytest.raises(InvalidArgument) as e:
        get_model(name).create(params, digits, seed=0)
    assert str(e.value) == message


def test_cnn_rejects_tabular_data():
    with pytest.raises(ValueError, match="model torch_cnn needs image data; toy is tabular"):
        get_model("torch_cnn").create({}, _tabular(), seed=0)


# ---------------------------------------------------------------------------------------------------------------
# Training on digits (bundled): every family


@pytest.mark.parametrize("name", model_names())
def test_learns_digits_and_is_deterministic(name, digits):
    first = _run(name, FAST[name], digits, seed=0)
    again = _run(name, FAST[name], digits, seed=0)
    other = _run(name, FAST[name], digits, seed=1)
    assert first == again  # bitwise identical metrics for the same seed
    assert [r["train_loss"] for r in first] != [r["train_loss"] for r in other]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in first)
    assert first[-1]["val_accuracy"] > 0.8  # chance is 0.1
    assert first[-1]["train_loss"] < first[0]["train_loss"]
    assert first[-1]["val_loss"] < first[0]["val_loss"]


@pytest.mark.parametrize("name", model_names())
def test_infer_and_evaluate_do_not_disturb_training(name, digits):
    a = get_model(name).create(FAST[name], digits, seed=0)
    b = get_model(name).create(FAST[name], digits, seed=0)
    a.train_step(0)
    b.train_step(0)
    preds = a.infer(digits.X_val[:50])
    assert preds.shape == (50,) and preds.min() >= 0 and preds.max() < 10
    assert np.array_equal(preds, a.infer(np.array(digits.X_val[:50])))  # memmap or plain array alike
    assert np.mean(preds == digits.y_val[:50]) > 0.5
    assert a.evaluate() == a.evaluate() == b.evaluate()
    assert a.train_step(1) == b.train_step(1)
    if hasattr(a, "net"):
        assert a.net.training  # train mode restored after infer/evaluate


def test_interleaved_torch_trainers_match_sequential_ones(digits):
    params = {**FAST["torch_mlp"], "dropout": 0.3}
    solo = _run("torch_mlp", params, digits, seed=4, steps=2)
    x = get_model("torch_mlp").create(params, digits, seed=4)
    y = get_model("torch_mlp").create(params, digits, seed=9)
    interleaved = []
    for s in range(2):
        y.train_step(s)
        interleaved.append({**x.train_step(s), **x.evaluate()})
    assert interleaved == solo  # dropout draws come from each trainer's own RNG state


def test_infer_predicts_argmax_of_the_network(digits):
    import torch

    trainer = get_model("torch_cnn").create(FAST["torch_cnn"], digits, seed=0)
    trainer.train_step(0)
    trainer.net.eval()
    with torch.no_grad():
        expected = trainer.net(torch.from_numpy(np.array(digits.X_test[:64]))).argmax(1).numpy()
    trainer.net.train()
    assert np.array_equal(trainer.infer(digits.X_test[:64]), expected)


def test_gpu_memory_is_missing_on_cpu_and_measured_on_a_gpu(digits):
    """Either branch, never a skip: a torch model measures its peak CUDA memory where CUDA is available (its weights
    are there already); every other model, and every model on a machine without a GPU, reports it missing."""
    import torch

    for name in model_names():
        measured = get_model(name).create({}, digits, seed=0).gpu_mem_mb()
        if torch.cuda.is_available() and name.startswith("torch_"):
            assert measured is not None and measured > 0, name
        else:
            assert measured is None, name


# ---------------------------------------------------------------------------------------------------------------
# Sizes


def test_mlp_size_is_exact_and_grows_with_width(digits):
    small = get_model("torch_mlp").create({"n_layers": 1, "width": 32}, digits, seed=0).size()
    assert small["n_params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert small["n_params"] * 4 < small["model_bytes"] < small["n_params"] * 4 + 4096
    wide = get_model("torch_mlp").create({"n_layers": 1, "width": 256}, digits, seed=0).size()
    deep = get_model("torch_mlp").create({"n_layers": 3, "width": 32}, digits, seed=0).size()
    assert wide["n_params"] == 64 * 256 + 256 + 256 * 10 + 10
    assert deep["n_params"] == small["n_params"] + 2 * (32 * 32 + 32)
    assert wide["model_bytes"] > deep["model_bytes"] > small["model_bytes"]


def test_cnn_size_is_exact_and_grows_with_channels(digits):
    cnn = get_model("torch_cnn")
    small = cnn.create({"n_conv": 1, "channels": 4, "kernel_size": 3, "fc_width": 16}, digits, seed=0).size()
    # conv 1->4 (3x3) + bias; pooled 4x4x4 -> 16; 16 -> 10
    assert small["n_params"] == (4 * 9 + 4) + (64 * 16 + 16) + (16 * 10 + 10)
    wide = cnn.create({"n_conv": 1, "channels": 16, "kernel_size": 3, "fc_width": 16}, digits, seed=0).size()
    assert wide["n_params"] == (16 * 9 + 16) + (256 * 16 + 16) + (16 * 10 + 10)
    assert wide["model_bytes"] > small["model_bytes"] > small["n_params"] * 4


@pytest.mark.parametrize("n_conv, kernel_size", [(1, 3), (2, 5), (3, 3), (3, 5)])
@pytest.mark.parametrize("side", [8, 28])
def test_cnn_builds_for_8x8_and_28x28_images(n_conv, kernel_size, side):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1, side, side)).astype(np.float32)
    y = np.arange(40) % 4
    data = Dataset("img", "image", (1, side, side), 4, X, y, X[:8], y[:8], X[:8], y[:8])
    trainer = get_model("torch_cnn").create({"n_conv": n_conv, "kernel_size": kernel_size, "channels": 4}, data, seed=0)
    assert math.isfinite(trainer.train_step(0)["train_loss"])
    assert trainer.infer(X[:5]).shape == (5,)
    final = {8: 8 >> n_conv, 28: 28 >> n_conv}[side]  # one 2x2 pool per block: 8->4->2->1, 28->14->7->3
    assert type(trainer.net[3 * n_conv]).__name__ == "Flatten"  # conv, ReLU, pool per block
    assert trainer.net[3 * n_conv + 1].in_features == 4 * final * final


def test_sgd_size_counts_coefficients_and_pickles(digits):
    trainer = get_model("sklearn_sgd").create({}, digits, seed=0)
    assert trainer.size()["n_params"] == 0  # not fitted yet
    trainer.train_step(0)
    size = trainer.size()
    assert size["n_params"] == 64 * 10 + 10
    assert size["model_bytes"] == len(pickle.dumps(trainer.model))
    binary = get_model("sklearn_sgd").create({}, _tabular(n_features=5), seed=0)
    binary.train_step(0)
    assert binary.size()["n_params"] == 5 + 1


# ---------------------------------------------------------------------------------------------------------------
# scikit-learn losses


def test_sgd_hinge_has_no_validation_loss(digits):
    results = _run("sklearn_sgd", {"loss": "hinge"}, digits, steps=2)
    assert all(r["val_loss"] is None for r in results)
    assert results[-1]["val_accuracy"] > 0.8
    assert all(math.isfinite(r["train_loss"]) for r in results)


@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_sgd_probabilistic_losses_report_log_loss(loss, digits):
    trainer = get_model("sklearn_sgd").create({"loss": loss}, digits, seed=0)
    trainer.train_step(0)
    result = trainer.evaluate()
    proba = trainer.model.predict_proba(np.asarray(digits.X_val).reshape(len(digits.X_val), -1))
    expected = -np.mean(np.log(np.clip(proba[np.arange(len(proba)), digits.y_val], 1e-15, 1)))
    assert result["val_loss"] == pytest.approx(expected, rel=1e-9)


def test_surrogate_losses_match_their_definitions():
    scores = np.array([2.0, 0.5, -0.5, -3.0])
    y = np.array([1, 1, 0, 1])  # signed margins z = 2.0, 0.5, 0.5, -3.0
    assert surrogate_loss("hinge", scores, y, 2) == pytest.approx((0 + 0.5 + 0.5 + 4.0) / 4)
    expected_log = np.mean(np.log1p(np.exp(-np.array([2.0, 0.5, 0.5, -3.0]))))
    assert surrogate_loss("log_loss", scores, y, 2) == pytest.approx(expected_log)
    assert surrogate_loss("modified_huber", scores, y, 2) == pytest.approx((0 + 0.25 + 0.25 + 12.0) / 4)
    multi = np.array([[1.0, -1.0, 0.0]])  # class 0 true: margins 1, 1, 0
    assert surrogate_loss("hinge", multi, np.array([0]), 3) == pytest.approx(1 / 3)


def test_sgd_train_loss_on_a_single_batch_split():
    data = _tabular(n=40)  # 20 training rows, one batch of 64
    result = get_model("sklearn_sgd").create({"batch_size": 64}, data, seed=0).train_step(0)
    assert math.isfinite(result["train_loss"]) and result["train_loss"] > 0


# ---------------------------------------------------------------------------------------------------------------
# Real data (shared/data): short runs on MNIST / Fashion-MNIST and PMLB sets


@pytest.fixture(scope="module")
def mnist(data_dir, arrays) -> Dataset:
    return load("mnist", seed=0, subsample=2500, data_dir=data_dir, cache_dir=arrays)


@pytest.mark.data
@pytest.mark.parametrize("name, floor", [("torch_mlp", 0.8), ("torch_cnn", 0.8), ("sklearn_sgd", 0.8)])
def test_mnist_subsample_learns(name, floor, mnist):
    results = _run(name, FAST[name], mnist, steps=2)
    assert results[-1]["val_accuracy"] > floor  # chance is 0.1
    assert all(math.isfinite(r["train_loss"]) for r in results)
    trainer = get_model(name).create(FAST[name], mnist, seed=0)
    trainer.train_step(0)
    assert trainer.infer(mnist.X_val[:256]).shape == (256,)


@pytest.mark.data
def test_fashion_mnist_cnn_learns(data_dir, arrays):
    data = load("fashion_mnist", seed=0, subsample=2500, data_dir=data_dir, cache_dir=arrays)
    results = _run("torch_cnn", FAST["torch_cnn"], data, steps=2)
    assert results[-1]["val_accuracy"] > 0.65  # chance is 0.1


@pytest.mark.data
@pytest.mark.parametrize(
    "dataset, subsample, name, floor",
    [
        ("letter", 5000, "torch_mlp", 0.5),  # 26 classes: chance ~0.04
        ("letter", 5000, "sklearn_sgd", 0.4),
        ("adult", 4000, "torch_mlp", 0.8),  # majority class 0.76
        ("adult", 4000, "sklearn_sgd", 0.78),
    ],
)
def test_pmlb_subsamples_learn_and_repeat(dataset, subsample, name, floor, data_dir, arrays):
    data = load(f"pmlb:{dataset}", seed=0, subsample=subsample, data_dir=data_dir, cache_dir=arrays)
    results = _run(name, FAST[name], data, steps=3)
    assert results[-1]["val_accuracy"] > floor
    assert results == _run(name, FAST[name], data, steps=3)
    assert all(math.isfinite(r["train_loss"]) for r in results)


# ---------------------------------------------------------------------------------------------------------------
# The registry (models of one's own: tests/test_extend.py)


@pytest.fixture
def registry():
    """Registrations made by a test are undone afterwards."""
    from sysprune.models import _registry

    saved = dict(_registry._MODELS)
    yield _registry
    _registry._MODELS.clear()
    _registry._MODELS.update(saved)


def test_a_parameter_left_out_without_a_default_is_named(registry, digits):
    from sysprune.models._space import fill_params

    space = {"a": IntParam(1, 3, default=2), "b": FloatParam(0.0, 1.0)}
    assert fill_params({"b": 0.5}, space, "m") == {"a": 2, "b": 0.5}
    with pytest.raises(
        ValueError, match=r"^m: b: missing \(its search space has no default\); valid: a value in float\[0, 1\]$"
    ):
        fill_params({}, space, "m")


def test_a_missing_optional_dependency_names_what_to_install(registry):
    registry.register_model(
        "needs_stuff", lambda params, data, *, seed: None, space={}, requires=("torch", "no_such_module_xyz")
    )
    with pytest.raises(
        ValueError,
        match=r"^model 'needs_stuff' needs no_such_module_xyz, which is not installed; "
        r"install no_such_module_xyz \(pip install no_such_module_xyz\)$",
    ):
        get_model("needs_stuff")


def test_a_module_with_the_old_contract_is_registered_under_its_path(registry, tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tiny.py").write_text(
        "from sysprune import IntParam\n"
        "NAME = 'tiny'\nINPUTS = frozenset({'tabular'})\nSPACE = {'k': IntParam(1, 3, default=1)}\n"
        "def create(params, data, *, seed):\n    return ('trainer', params['k'], seed)\n"
    )
    (pkg / "broken.py").write_text("NAME = 'broken'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    family = get_model("mypkg.tiny")
    assert (family.name, family.inputs, set(family.space)) == ("mypkg.tiny", {"tabular"}, {"k"})
    assert family.create({"k": 2}, None, seed=7) == ("trainer", 2, 7)
    assert "mypkg.tiny" in model_names()
    with pytest.raises(ValueError, match=r"model module 'mypkg\.broken' lacks INPUTS, SPACE, create"):
        get_model("mypkg.broken")
    with pytest.raises(ValueError, match=r"model module 'mypkg\.absent' cannot be imported"):
        get_model("mypkg.absent")
    for name in ("mypkg", "mypkg.tiny", "mypkg.broken"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("batches", [1, 4, 10_000])
def test_a_dry_run_is_the_start_of_step_0_and_leaves_the_trained_model_unchanged(name, batches, digits):
    params = {**FAST[name], **({"dropout": 0.3} if name == "torch_mlp" else {})}  # dropout: the RNG stream too
    plain = _run(name, params, digits, seed=3, steps=2)
    t = get_model(name).create(params, digits, seed=3)
    dry = t.dry_run(batches)
    per_step = math.ceil(len(digits.y_train) / params["batch_size"])
    assert dry.batches_per_step == per_step
    assert len(dry.batch_cpu_s) == len(dry.batch_wall_s) == min(batches, per_step)
    assert all(c >= 0 for c in dry.batch_cpu_s) and all(w > 0 for w in dry.batch_wall_s)
    assert dry.eval_wall_s > 0 and 0 < dry.eval_share <= 1
    with_dry = [{**t.train_step(s), **t.evaluate()} for s in range(2)]
    assert with_dry == plain  # bitwise: the same batches in the same order, the same dropout draws
    again = get_model(name).create(params, digits, seed=3)
    again.dry_run(1)
    with pytest.raises(RuntimeError, match="begun already"):
        again.dry_run(1)
