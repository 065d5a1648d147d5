"""Datasets: names, directories, stratified deterministic splits, train-only preprocessing, the array cache, and
the real offline loaders (marked ``data``)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from sysprune.datasets import _prepare, _registry as _dataset_registry
from sysprune.datasets import (
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    Dataset,
    check_dataset_name,
    dataset_kind,
    load,
    open_prepared,
    prepare,
    read_meta,
    resolve_cache_dir,
    resolve_data_dir,
    stratified_order,
)
from sysprune.exceptions import DatasetUnavailable

SPLITS = ("train", "val", "test")


def _assert_well_formed(ds: Dataset, *, kind: str, input_shape: tuple[int, ...], n_classes: int) -> None:
    assert (ds.kind, ds.input_shape, ds.n_classes) == (kind, input_shape, n_classes)
    for s in SPLITS:
        X, y = getattr(ds, f"X_{s}"), getattr(ds, f"y_{s}")
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert X.shape == (len(y), *input_shape)
        assert y.min() >= 0 and y.max() < n_classes
        assert np.isfinite(X).all()


def _assert_stratified(meta: dict, tolerance: int = 2) -> None:
    """Every split holds each class within ``tolerance`` rows of its share of the split."""
    counts = {s: np.array(meta["class_counts"][s]) for s in SPLITS}
    total = sum(counts.values())
    share = total / total.sum()
    for s in SPLITS:
        expected = share * counts[s].sum()
        assert np.all(np.abs(counts[s] - expected) <= tolerance), (s, counts[s], expected)


# ---------------------------------------------------------------------------------------------------------------
# Names and directories (no data)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("digits", "image"),
        ("mnist", "image"),
        ("fashion_mnist", "image"),
        ("pmlb:adult", "tabular"),
        ("pmlb:connect_4", "tabular"),
        ("pmlb:any_name_here", "tabular"),
        ("pmlb:GAMETES_Epistasis_2_Way_20atts_0.1H_EDM_1_1", "tabular"),
        ("pmlb:a+b-c", "tabular"),
    ],
)
def test_valid_names_and_kinds(name, kind):
    assert check_dataset_name(name) == name
    assert dataset_kind(name) == kind


@pytest.mark.parametrize("bad", ["cifar10", "MNIST", "pmlb:", "pmlb:a b", "pmlb:../x", "pmlb:..", "", 3, None])
def test_invalid_names_are_rejected_naming_the_value(bad):
    with pytest.raises(ValueError) as e:
        check_dataset_name(bad)
    assert repr(bad) in str(e.value)
    with pytest.raises(ValueError):
        dataset_kind(bad)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'; valid: digits, mnist, fashion_mnist, or pmlb:"):
        check_dataset_name("cifar10")


def test_name_checks_import_neither_torch_nor_pmlb():
    code = (
        "import sys; import sysprune.datasets as d; before = set(sys.modules)\n"
        "d.check_dataset_name('pmlb:adult'); d.dataset_kind('mnist'); d.dataset_kind('pmlb:letter')\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.split('.')[0] in ('torch', 'torchvision', 'pmlb', 'sklearn')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_directories_argument_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert resolve_data_dir() == tmp_path / "home/.cache/sysprune/data"
    assert resolve_cache_dir() == tmp_path / "home/.cache/sysprune/arrays"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env-data"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    assert resolve_data_dir() == tmp_path / "env-data"
    assert resolve_cache_dir() == tmp_path / "env-cache"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_cache_dir(str(tmp_path / "arg2")) == tmp_path / "arg2"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"seed": 0, "subsample": 5}, "subsample must be None or an integer >= 10, got 5"),
        ({"seed": 0, "val_fraction": 0.0}, r"val_fraction must be a number in \(0, 1\), got 0.0"),
        ({"seed": 0, "test_fraction": 1.2}, r"test_fraction must be a number in \(0, 1\), got 1.2"),
        ({"seed": 0, "val_fraction": 0.5, "test_fraction": 0.5}, "must be < 1, got 0.5 \\+ 0.5"),
        ({"seed": 0, "subsample": 10, "val_fraction": 0.01}, "too few rows \\(10\\)"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        prepare("digits", cache_dir=tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Splitting


def test_stratified_order_every_prefix_is_stratified():
    y = np.repeat(np.arange(3), [100, 300, 600])
    order = stratified_order(y, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(1000))
    for k in (10, 57, 250, 999):
        counts = np.bincount(y[order[:k]], minlength=3)
        assert np.all(np.abs(counts - k * np.array([0.1, 0.3, 0.6])) <= 1), (k, counts)
    assert not np.array_equal(order, stratified_order(y, np.random.default_rng(1)))
    assert np.array_equal(order, stratified_order(y, np.random.default_rng(0)))


# ---------------------------------------------------------------------------------------------------------------
# digits: bundled with scikit-learn, so these run everywhere


def test_digits_needs_no_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "does-not-exist"))
    ds = load("digits", seed=0, cache_dir=tmp_path / "cache")
    _assert_well_formed(ds, kind="image", input_shape=(1, 8, 8), n_classes=10)
    meta = read_meta(tmp_path / "cache" / next(p.name for p in (tmp_path / "cache").iterdir()))
    assert meta["sizes"] == {"train": 1797 - 2 * 359, "val": 359, "test": 359}  # round(0.2 * 1797) = 359
    assert meta["classes"] == list(range(10))
    _assert_stratified(meta)
    assert not (tmp_path / "does-not-exist").exists()


def test_digits_images_normalised_with_training_statistics_only(cache_dir):
    from sklearn.datasets import load_digits

    path = prepare("digits", seed=3, cache_dir=cache_dir)
    ds, meta = open_prepared(path), read_meta(path)
    prep = meta["preprocessing"]
    assert prep["method"] == "normalize" and prep["scale"] == 16.0
    raw = {s: (getattr(ds, f"X_{s}") * prep["std"] + prep["mean"]) * 16.0 for s in SPLITS}
    # the inverse transform gives back the original integer pixels: the transform is exactly (x/16 - mean)/std
    for s in SPLITS:
        assert np.abs(raw[s] - np.round(raw[s])).max() < 1e-3
    train_pixels = np.round(raw["train"]) / 16.0
    assert prep["mean"] == pytest.approx(train_pixels.mean(), rel=1e-6)
    assert prep["std"] == pytest.approx(train_pixels.std(), rel=1e-6)
    assert prep["mean"] != pytest.approx(load_digits().images.mean() / 16.0, rel=1e-4)  # not all rows
    assert float(ds.X_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(ds.X_train.std()) == pytest.approx(1.0, abs=1e-5)
    # every split's rows are real digits rows, and no row appears in two splits
    all_rows = {r.tobytes() for r in load_digits().images.astype(np.uint8)}
    split_rows = {s: [r.tobytes() for r in np.round(raw[s]).astype(np.uint8).reshape(-1, 8, 8)] for s in SPLITS}
    assert all(set(rows) <= all_rows for rows in split_rows.values())
    assert sum(len(v) for v in split_rows.values()) == 1797


def test_split_is_deterministic_per_seed(tmp_path):
    a = load("digits", seed=7, cache_dir=tmp_path / "a")
    b = load("digits", seed=7, cache_dir=tmp_path / "b")
    c = load("digits", seed=8, cache_dir=tmp_path / "a")
    for s in SPLITS:
        assert np.array_equal(getattr(a, f"X_{s}"), getattr(b, f"X_{s}"))
        assert np.array_equal(getattr(a, f"y_{s}"), getattr(b, f"y_{s}"))
    assert not np.array_equal(a.y_train, c.y_train)
    assert not np.array_equal(a.X_test, c.X_test)


def test_subsample_is_stratified_and_sized(tmp_path):
    path = prepare("digits", seed=0, subsample=500, val_fraction=0.1, test_fraction=0.3, cache_dir=tmp_path)
    meta = read_meta(path)
    assert meta["sizes"] == {"train": 300, "val": 50, "test": 150}
    assert meta["subsample"] == 500 and meta["val_fraction"] == 0.1 and meta["test_fraction"] == 0.3
    _assert_stratified(meta)
    assert all(c >= 28 for c in meta["class_counts"]["train"])  # ~30 per class, stratified
    # a subsample larger than the dataset uses every row
    assert sum(read_meta(prepare("digits", seed=0, subsample=10**6, cache_dir=tmp_path))["sizes"].values()) == 1797


def test_open_prepared_memory_maps_read_only_arrays(cache_dir):
    ds = open_prepared(prepare("digits", seed=0, cache_dir=cache_dir))
    for s in SPLITS:
        for v in "Xy":
            array = getattr(ds, f"{v}_{s}")
            assert isinstance(array, np.memmap) and not array.flags.writeable


def test_open_prepared_rejects_a_folder_without_meta(tmp_path):
    with pytest.raises(FileNotFoundError, match="no meta.json"):
        open_prepared(tmp_path)


def test_cache_folder_is_keyed_by_arguments_and_reused(tmp_path):
    p1 = prepare("digits", seed=0, cache_dir=tmp_path)
    stamp = (p1 / "X_train.npy").stat().st_mtime_ns
    assert prepare("digits", seed=0, cache_dir=tmp_path) == p1
    assert (p1 / "X_train.npy").stat().st_mtime_ns == stamp  # not rewritten
    others = {
        prepare("digits", seed=1, cache_dir=tmp_path),
        prepare("digits", seed=0, subsample=900, cache_dir=tmp_path),
        prepare("digits", seed=0, val_fraction=0.25, cache_dir=tmp_path),
        prepare("digits", seed=0, test_fraction=0.25, cache_dir=tmp_path),
    }
    assert len(others) == 4 and p1 not in others
    assert all(p.parent == tmp_path and p.name.startswith("digits-") for p in others)
    meta = json.loads((p1 / "meta.json").read_text())
    assert meta["format"] == _prepare.FORMAT_VERSION and meta["name"] == "digits" and meta["seed"] == 0


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    assert prepare("digits", seed=0).parent == tmp_path / "env-cache"


def test_concurrent_writers_all_succeed_and_leave_no_temp_folders(tmp_path):
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: prepare("digits", seed=5, cache_dir=tmp_path), range(4)))
    assert len(set(paths)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [paths[0].name]
    assert open_prepared(paths[0]).X_train.shape == (1079, 1, 8, 8)


def test_losing_the_rename_race_keeps_the_winner(tmp_path):
    target = prepare("digits", seed=0, cache_dir=tmp_path)
    before = (target / "y_train.npy").read_bytes()
    _prepare._write_atomically(tmp_path, target, {"y_train": np.zeros(3, np.int64)}, {"name": "loser"})
    assert (target / "y_train.npy").read_bytes() == before
    assert read_meta(target)["name"] == "digits"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ---------------------------------------------------------------------------------------------------------------
# Real data (shared/data)


def _idx_images(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.uint8, offset=16).reshape(-1, 28, 28)


@pytest.mark.data
def test_mnist_test_rows_come_from_the_official_test_split(data_dir, cache_dir):
    path = prepare("mnist", seed=0, subsample=2000, data_dir=data_dir, cache_dir=cache_dir)
    ds, meta = open_prepared(path), read_meta(path)
    _assert_well_formed(ds, kind="image", input_shape=(1, 28, 28), n_classes=10)
    assert meta["sizes"] == {"train": 1200, "val": 400, "test": 400}
    _assert_stratified(meta)
    prep = meta["preprocessing"]
    assert prep["scale"] == 255.0 and prep["mean"] == pytest.approx(0.1307, abs=0.01)
    raw = {
        s: np.round((getattr(ds, f"X_{s}")[:, 0] * prep["std"] + prep["mean"]) * 255).astype(np.uint8) for s in SPLITS
    }
    official_train = {r.tobytes() for r in _idx_images(data_dir / "MNIST/raw/train-images-idx3-ubyte")}
    official_test = {r.tobytes() for r in _idx_images(data_dir / "MNIST/raw/t10k-images-idx3-ubyte")}
    assert all(r.tobytes() in official_test for r in raw["test"])
    assert all(r.tobytes() in official_train for r in raw["train"])
    assert all(r.tobytes() in official_train for r in raw["val"])
    train_pixels = raw["train"].astype(np.float64) / 255
    assert prep["mean"] == pytest.approx(train_pixels.mean(), rel=1e-6)
    assert prep["std"] == pytest.approx(train_pixels.std(), rel=1e-6)


@pytest.mark.data
def test_fashion_mnist_is_balanced_and_deterministic(data_dir, tmp_path):
    kwargs = dict(seed=1, subsample=3000, data_dir=data_dir)
    a = load("fashion_mnist", cache_dir=tmp_path / "a", **kwargs)
    b = load("fashion_mnist", cache_dir=tmp_path / "b", **kwargs)
    c = load("fashion_mnist", cache_dir=tmp_path / "a", **{**kwargs, "seed": 2})
    _assert_well_formed(a, kind="image", input_shape=(1, 28, 28), n_classes=10)
    assert [len(a.y_train), len(a.y_val), len(a.y_test)] == [1800, 600, 600]
    for y, n in ((a.y_train, 180), (a.y_val, 60), (a.y_test, 60)):
        assert np.bincount(y, minlength=10).tolist() == [n] * 10  # 6000/1000 per class: exactly even
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.X_train, c.X_train)


@pytest.mark.data
def test_pmlb_iris_standardised_with_training_rows_only(data_dir, cache_dir):
    import pmlb

    with warnings.catch_warnings():  # pmlb 1.0.1 on pandas 3: a deprecation warning
        warnings.simplefilter("ignore")
        X_raw, _ = pmlb.fetch_data("iris", return_X_y=True, local_cache_dir=str(data_dir / "pmlb"))
    path = prepare("pmlb:iris", seed=0, data_dir=data_dir, cache_dir=cache_dir)
    ds, meta = open_prepared(path), read_meta(path)
    _assert_well_formed(ds, kind="tabular", input_shape=(4,), n_classes=3)
    assert meta["sizes"] == {"train": 90, "val": 30, "test": 30}
    assert meta["class_counts"]["test"] == [10, 10, 10]
    mean, std = np.array(meta["preprocessing"]["mean"]), np.array(meta["preprocessing"]["std"])
    train_raw = ds.X_train.astype(np.float64) * std + mean
    # each recovered row is a row of the raw data, and the statistics are those of exactly these rows
    assert all(np.abs(X_raw - row).sum(axis=1).min() < 1e-4 for row in train_raw)
    exact = X_raw[[np.abs(X_raw - row).sum(axis=1).argmin() for row in train_raw]]
    assert np.allclose(mean, exact.mean(axis=0)) and np.allclose(std, exact.std(axis=0))
    assert not np.allclose(mean, X_raw.mean(axis=0), rtol=1e-3)
    assert np.allclose(ds.X_train.mean(axis=0), 0, atol=1e-5) and np.allclose(ds.X_train.std(axis=0), 1, atol=1e-5)
    assert not np.allclose(ds.X_val.mean(axis=0), 0, atol=1e-3)


@pytest.mark.data
@pytest.mark.parametrize(
    "name, n_features, n_classes, classes",
    [
        ("letter", 16, 26, list(range(1, 27))),
        ("adult", 14, 2, [0, 1]),
        ("connect_4", 42, 3, [0, 1, 2]),
        ("shuttle", 9, 7, [1, 2, 3, 4, 5, 6, 7]),
    ],
)
def test_pmlb_sets_load_remapped_and_stratified(name, n_features, n_classes, classes, data_dir, cache_dir):
    path = prepare(f"pmlb:{name}", seed=0, subsample=2600, data_dir=data_dir, cache_dir=cache_dir)
    ds, meta = open_prepared(path), read_meta(path)
    _assert_well_formed(ds, kind="tabular", input_shape=(n_features,), n_classes=n_classes)
    assert meta["classes"] == classes  # original labels, in the order of 0..K-1
    assert meta["sizes"] == {"train": 1560, "val": 520, "test": 520}
    _assert_stratified(meta)
    assert np.allclose(ds.X_train.mean(axis=0), 0, atol=1e-4)


@pytest.mark.data
def test_pmlb_subsample_keeps_the_class_shares_of_the_full_data(data_dir, cache_dir):
    meta = read_meta(prepare("pmlb:adult", seed=0, subsample=2600, data_dir=data_dir, cache_dir=cache_dir))
    counts = np.array(meta["class_counts"]["train"]) + meta["class_counts"]["val"] + meta["class_counts"]["test"]
    assert np.all(np.abs(counts - 2600 * np.array([11687, 37155]) / 48842) <= 2)


@pytest.mark.data
def test_unknown_pmlb_name_is_a_value_error_naming_it(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'pmlb:no_such_set': not a PMLB classification dataset"):
        prepare("pmlb:no_such_set", seed=0, data_dir=data_dir, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"'pmlb:1027_ESL': a regression dataset"):
        prepare("pmlb:1027_ESL", seed=0, data_dir=data_dir, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"cached in .*: adult, breast_cancer_wisconsin, connect_4"):
        prepare("pmlb:no_such_set", seed=0, data_dir=data_dir, cache_dir=tmp_path)


@pytest.mark.data
@pytest.mark.parametrize(
    "name, where", [("pmlb:mushroom", "pmlb"), ("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw")]
)
def test_missing_dataset_offline_is_one_line_unavailable(name, where, tmp_path, capfd):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetUnavailable) as e:
        prepare(name, seed=0, data_dir=empty, cache_dir=tmp_path / "cache")
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"dataset {name!r} is not in {empty / where} and could not be downloaded (no network: ")
    assert message.endswith(f"set {DATA_DIR_ENV} to a directory that holds it")
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert isinstance(e.value, ValueError)
    assert capfd.readouterr() == ("", "")  # the loaders' download chatter is swallowed
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_unknown_name_with_an_empty_data_dir_still_lists_examples(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown dataset 'pmlb:zzz'.*\(e\.g\. adult, connect_4, iris, letter, mushroom, \.\.\.\)$"
    ):
        prepare("pmlb:zzz", seed=0, data_dir=tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "error, reason",
    [
        (PermissionError(13, "Permission denied"), "the directory is not writable: [Errno 13] Permission denied"),
        (OSError(30, "Read-only file system"), "the directory is not writable: [Errno 30] Read-only file system"),
        (
            RuntimeError(
                "Error downloading x.gz:\nTried https://a/, got:\n<urlopen error [Errno -2] Name or service "
                "not known>\n"
            ),
            "no network: name or service not known",
        ),
        (OSError("Network is unreachable"), "no network: network is unreachable"),
        (ValueError("checksum\nmismatch"), "ValueError: checksum mismatch"),
    ],
)
def test_unavailable_reason_is_short_and_one_line(error, reason):
    message = str(_dataset_registry.unavailable("mnist", Path("/d/MNIST/raw"), error))
    assert message == (
        f"dataset 'mnist' is not in /d/MNIST/raw and could not be downloaded ({reason}); download it on a machine "
        f"with network access or set {DATA_DIR_ENV} to a directory that holds it"
    )


# ---------------------------------------------------------------------------------------------------------------
# The registry: datasets of one's own (the public side is tests/test_extend.py)


@pytest.fixture
def registry():
    """Registrations made by a test are undone afterwards."""
    saved = dict(_dataset_registry._SOURCES)
    yield _dataset_registry.register_dataset
    _dataset_registry._SOURCES.clear()
    _dataset_registry._SOURCES.update(saved)


def _rows(n: int, n_features: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)) * 5 + 2, np.repeat(["a", "b"], n // 2)


def test_a_family_loader_gets_the_full_name_and_members_are_checked(registry, tmp_path):
    asked = []

    def loader(name, data_dir):
        asked.append((name, data_dir))
        return _rows(40)

    registry("toyfam:", loader, kind="tabular", description="toy rows")
    assert _dataset_registry.dataset_kind("toyfam:x1") == "tabular"
    assert "toyfam:<name>" in _dataset_registry.dataset_names()
    with pytest.raises(ValueError, match=r"invalid dataset name 'toyfam:\.\./x': expected toyfam:<name>"):
        check_dataset_name("toyfam:../x")
    with pytest.raises(
        ValueError,
        match=r"unknown dataset 'cifar10'; valid: .*, or pmlb:<name> \(.*\), toyfam:<name> "
        r"\(toy rows\)",
    ):
        check_dataset_name("cifar10")
    ds = load("toyfam:x1", seed=0, cache_dir=tmp_path / "c", data_dir=tmp_path / "d")
    assert asked == [("toyfam:x1", tmp_path / "d")]
    assert read_meta(prepare("toyfam:x1", seed=0, cache_dir=tmp_path / "c"))["classes"] == ["a", "b"]
    _assert_well_formed(ds, kind="tabular", input_shape=(3,), n_classes=2)
    assert abs(float(ds.X_train.mean())) < 1e-6  # standardised with the training rows


def test_an_official_test_split_is_kept(registry, tmp_path):
    X_tr, y_tr = _rows(60, seed=1)
    X_te = np.full((20, 3), 7.0)  # recognisable rows
    registry("toysplit", lambda name, data_dir: ((X_tr, y_tr), (X_te, np.repeat(["a", "b"], 10))), kind="tabular")
    meta = read_meta(prepare("toysplit", seed=0, cache_dir=tmp_path, test_fraction=0.2))
    ds = open_prepared(prepare("toysplit", seed=0, cache_dir=tmp_path, test_fraction=0.2))
    assert meta["sizes"] == {"train": 44, "val": 16, "test": 16}  # train: what the 60 official rows leave
    assert np.ptp(ds.X_test, axis=0).max() == 0  # every test row is one of the official (identical) test rows


def test_images_with_channels_keep_them_and_pixel_max_scales(registry, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 1024, size=(50, 3, 4, 4)).astype(np.float32)
    registry("toyrgb", lambda name, data_dir: (X, np.arange(50) % 2), kind="image", pixel_max=1023.0)
    path = prepare("toyrgb", seed=0, cache_dir=tmp_path)
    _assert_well_formed(open_prepared(path), kind="image", input_shape=(3, 4, 4), n_classes=2)
    assert read_meta(path)["preprocessing"]["scale"] == 1023.0


def test_a_version_is_part_of_the_cache_key_and_builtins_have_none(registry, tmp_path):
    registry("toyv", lambda name, data_dir: _rows(40), kind="tabular", version="1")
    first = prepare("toyv", seed=0, cache_dir=tmp_path)
    registry("toyv", lambda name, data_dir: _rows(40), kind="tabular", version="2")  # same code origin: re-register
    second = prepare("toyv", seed=0, cache_dir=tmp_path)
    assert first != second and read_meta(second)["version"] == "2"
    assert "version" not in read_meta(prepare("digits", seed=0, cache_dir=tmp_path))
