"""Transfer learning: the deep-kernel GP (pretrain + MAP) and the transfer tuners."""

import warnings

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import spearmanr

from tiletune.tuner.deep_gp import DeepKernelGP, _Params, expected_improvement, gp_log_likelihood

# -- a family of related tasks: f_t(x) = a_t g(A x + c_t) + b_t, x in 8 dims ---------------


def _task_family(seed, n_tasks=5, d=8):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(2, d)) / np.sqrt(d)

    def g(u):
        return np.sin(2 * u[:, 0]) + u[:, 1] ** 2

    tasks = []
    for t in range(n_tasks):
        a, b = rng.uniform(0.5, 2), rng.uniform(-1, 1)
        tasks.append(lambda X, a=a, b=b, t=t: a * g(X @ A.T + 0.1 * t) + b)
    return rng, tasks


def test_lml_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    layout = _Params(5, 7, 3)
    p = rng.normal(0, 0.5, layout.size)
    X, y = rng.normal(size=(12, 5)), rng.normal(size=12)
    grad = gp_log_likelihood(p, layout, X, y)[1]
    num = approx_fprime(p, lambda q: gp_log_likelihood(q, layout, X, y)[0], 1e-6)
    assert np.abs(grad - num).max() < 1e-4 * max(1.0, np.abs(num).max())


@pytest.mark.parametrize("seed", [0, 1])
def test_pretrained_map_beats_gp_from_scratch(seed):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    rng, tasks = _task_family(seed)
    history = []
    for f in tasks[:4]:
        X = rng.uniform(-2, 2, (100, 8))
        history.append((X, f(X)))
    X_new = rng.uniform(-2, 2, (10, 8))
    y_new = tasks[4](X_new)
    X_test = rng.uniform(-2, 2, (400, 8))
    y_test = tasks[4](X_test)

    transfer = DeepKernelGP(seed=seed).pretrain(history).fit(X_new, y_new)
    scratch = DeepKernelGP(seed=seed).fit(X_new, y_new)
    kernel = ConstantKernel() * RBF(np.ones(8)) + WhiteKernel()
    plain = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # length scales at their bounds
        plain.fit(X_new, y_new)

    def quality(pred):
        rmse = np.sqrt(np.mean((pred - y_test) ** 2)) / y_test.std()
        return spearmanr(pred, y_test)[0], rmse

    rho_t, rmse_t = quality(transfer.predict(X_test))
    for other in (scratch.predict(X_test), plain.predict(X_test)):
        rho_o, rmse_o = quality(other)
        assert rho_t > 0.75 and rho_t > rho_o + 0.4
        assert rmse_t < 0.7 * rmse_o


def test_gp_posterior_interpolates_and_is_uncertain_far_away():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (30, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1]
    gp = DeepKernelGP(hidden=8, out_dim=2, seed=0, max_iter=100).fit(X, y)
    mean, std = gp.predict(X, return_std=True)
    assert np.abs(mean - y).max() < 0.1 * y.std()
    far_std = gp.predict(X + 20.0, return_std=True)[1]
    assert far_std.min() > 5 * std.max()
    assert gp.embed(X).shape == (30, 2)


def test_expected_improvement():
    ei = expected_improvement(np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0]), best=1.0)
    assert ei[1] > ei[0] > 0 and ei[2] == pytest.approx(0.0, abs=1e-9)
