"""sysprune.measure: the runner's metric names and sensible values for a torch and a scikit-learn model; the probe
code it shares with the trial process (latency with its confidence interval, size, model memory)."""

from __future__ import annotations

import math
import pickle
import time
from fractions import Fraction

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier

import sysprune
from sysprune.metrics._dryrun import METRICS as DRY_RUN_METRICS
from sysprune.metrics._interval import median_interval
from sysprune.metrics._measure import latency_ms, model_mem_mb, model_size, probe_model
from sysprune.metrics._registry import METRICS
from tests._require import require

torch = require("torch", "torch")

#: Every system metric of the vocabulary: what the runner records for a trial besides its learning curve (and its
#: dry run's predictions, which only the runner's trial process makes).
RUNNER_SYSTEM_METRICS = {name for name, m in METRICS.items() if m.kind != "learning"} - set(DRY_RUN_METRICS)
STRUCTURAL = {"n_params", "model_bytes", "infer_ms", "infer_ms_lo", "infer_ms_hi", "model_mem_mb"}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_torch_model_gets_the_runners_metric_names_and_sane_values(digits):
    X, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    n = sum(p.numel() for p in net.parameters())
    with sysprune.measure(model=net, batch=X[:128], optimizer=opt) as m:
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(net(torch.as_tensor(X)), torch.as_tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        ballast = np.ones(100 * 2**20 // 8)  # 100 MiB touched: the peak must show it
        del ballast
        _spin(0.05)
    metrics = m.metrics
    assert set(metrics) == RUNNER_SYSTEM_METRICS
    assert metrics["n_params"] == n
    assert metrics["model_bytes"] > 4 * n  # float32 weights plus torch.save's framing
    # parameters + gradients + AdamW's two moments, float32
    assert metrics["model_mem_mb"] == pytest.approx(4 * 4 * n / 2**20)
    assert 0 < metrics["infer_ms_lo"] <= metrics["infer_ms"] <= metrics["infer_ms_hi"] < 50
    assert metrics["cpu_s"] >= 0.03 and metrics["wall_s"] >= 0.05
    assert metrics["cpu_s"] < 60 and metrics["wall_s"] < 600  # since the measurer was created, not the process
    assert metrics["peak_rss_delta_mb"] >= 95 and metrics["peak_rss_mb"] >= metrics["rss_mb"] > 0
    assert metrics["energy_j"] is None and metrics["gpu_mem_mb"] is None  # no counter, no GPU: missing, not 0
    assert net.training  # the probe put the module back in training mode


def test_scikit_learn_estimator_sizes_match_the_runners_trainer(digits):
    X, y = digits
    est = SGDClassifier(random_state=0)
    m = sysprune.measure(model=est, batch=X[:64])
    before = m.sample()
    assert {k: before[k] for k in STRUCTURAL} == dict.fromkeys(STRUCTURAL)  # not fitted: missing, never 0
    est.partial_fit(X, y, classes=np.arange(10))
    after = m.sample()
    assert set(after) == RUNNER_SYSTEM_METRICS
    assert after["n_params"] == est.coef_.size + est.intercept_.size == 650  # as sklearn_sgd's Trainer counts
    assert after["model_bytes"] == len(pickle.dumps(est))
    assert after["model_mem_mb"] == pytest.approx((est.coef_.nbytes + est.intercept_.nbytes) / 2**20)
    assert 0 < after["infer_ms_lo"] <= after["infer_ms"] <= after["infer_ms_hi"] < 50


def test_cumulative_times_leave_the_probes_out_and_structural_is_optional(digits):
    X, _ = digits
    net = torch.nn.Linear(64, 10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # no intra-op pool spin-waiting after the probe: the CPU after it is the spin's alone
    try:
        m = sysprune.measure(model=net, batch=X[:256], repeats=50)
        first = m.sample()  # a probe with 50 timed passes
        _spin(0.05)
        second = m.sample(structural=False)
    finally:
        torch.set_num_threads(threads)
    assert not STRUCTURAL & set(second)
    assert second["cpu_s"] - first["cpu_s"] >= 0.03  # 50 ms spun; psutil counts CPU time in 10 ms ticks
    # the spin's 50 ms of wall time at least (process CPU may exceed wall: other threads of this test process count)
    assert second["wall_s"] - first["wall_s"] >= 0.045


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"repeats": 0}, ValueError, "repeats must be an integer >= 1"),
        ({"model": "resnet"}, TypeError, "model must be a torch.nn.Module or a scikit-learn estimator"),
        ({"model": torch.nn.Linear(2, 2), "batch": np.zeros((0, 2))}, ValueError, "batch must hold at least one"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        sysprune.measure(**kwargs)


def test_median_interval_uses_the_order_statistics():
    assert median_interval([5.0, 1.0, 4.0, 2.0, 3.0]) == (1.0, 5.0, pytest.approx(0.9375))  # 5 repeats: min, max
    lo, hi, cov = median_interval(range(1, 21))  # P(B <= 5) = 0.0207 for B ~ Bin(20, 1/2): x(6), x(15), 95.86 %
    assert (lo, hi, round(cov, 4)) == (6.0, 15.0, 0.9586)
    assert median_interval([7.0]) == (7.0, 7.0, 0.0)
    with pytest.raises(ValueError, match=r"^median_interval: samples: value \[\] is invalid; valid: a non-empty list"):
        median_interval([])
    with pytest.raises(ValueError, match="confidence"):
        median_interval([1.0, 2.0], confidence=1.0)


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_median_interval_picks_the_pair_exact_binomial_arithmetic_picks(confidence):
    """The running integer sum chooses the same order statistics as exact rational arithmetic (and scipy's binomial
    CDF, which it replaced to keep scipy out of the trial process), for every sample size up to 200."""
    from scipy.special import bdtr

    for n in range(1, 201):
        exact = [1 - 2 * Fraction(sum(math.comb(n, i) for i in range(j)), 2**n) for j in range(1, max(n // 2, 1) + 1)]
        j = max(sum(c >= Fraction(confidence).limit_denominator(1000) for c in exact), 1)
        lo, hi, cov = median_interval(range(n), confidence)
        assert (lo, hi) == (j - 1, n - j), n
        assert cov == pytest.approx(float(exact[j - 1]), rel=1e-12, abs=1e-15), n
        assert cov == pytest.approx(1 - 2 * bdtr(j - 1, n, 0.5), rel=1e-9, abs=1e-12), n


def test_latency_is_per_sample_and_brackets_its_median():
    calls = []

    def infer(X):
        calls.append(len(X))
        time.sleep(0.002)

    lat = latency_ms(infer, np.zeros((100, 3)), repeats=5)
    assert calls == [100] * 6  # one warm-up, five timed
    assert 0.02 <= lat["infer_ms"] < 1.0  # >= 2 ms per call / 100 samples
    assert lat["infer_ms_lo"] <= lat["infer_ms"] <= lat["infer_ms_hi"]


def test_torch_model_memory_before_the_first_step_equals_after():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 2))
    for opt_cls, kw in (
        (torch.optim.AdamW, {}),
        (torch.optim.SGD, {"momentum": 0.9}),
        (torch.optim.Adam, {"amsgrad": True}),
    ):
        opt = opt_cls(net.parameters(), lr=0.1, **kw)
        before = model_mem_mb(net, opt)
        net(torch.randn(4, 8)).sum().backward()
        opt.step()
        assert model_mem_mb(net, opt) == pytest.approx(before), opt_cls.__name__
        opt.zero_grad(set_to_none=True)
    assert model_mem_mb(net, torch.optim.LBFGS(net.parameters())) is None  # state unknown before its first step


def test_probe_model_without_a_batch_has_no_latency():
    out = probe_model(torch.nn.Linear(3, 2), None, 3)
    assert out["n_params"] == 8 and out["infer_ms"] is None
    with pytest.raises(TypeError, match="model must be"):
        model_size(object())


def test_a_plain_objective_rejects_a_configuration_before_training(digits):
    """measure + report(trial, PRETRAIN_STEP, None, ...) + should_prune: the whole pre-training integration."""
    import optuna

    X, y = digits
    trained: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        width = trial.suggest_categorical("width", [4, 256])
        net = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))
        meter = sysprune.measure(model=net, batch=X[:64])
        sysprune.report(trial, sysprune.PRETRAIN_STEP, None, meter.sample())
        if sysprune.should_prune(trial):
            raise optuna.TrialPruned()
        trained.append(width)
        sysprune.report(trial, 0, 0.5, meter.sample())
        return 0.5

    study = optuna.create_study(
        direction="maximize", pruner=sysprune.ResourceBudgetPruner({"n_params": 1000}, max_steps=1)
    )
    study.enqueue_trial({"width": 256})
    study.enqueue_trial({"width": 4})
    study.optimize(objective, n_trials=2)
    big, small = study.trials
    assert big.state == optuna.trial.TrialState.PRUNED and big.intermediate_values == {}
    assert big.user_attrs["prune_detail"]["step"] == -1 and big.user_attrs["prune_detail"]["metric"] == "n_params"
    assert small.state == optuna.trial.TrialState.COMPLETE
    assert trained == [4]  # the big one never trained
