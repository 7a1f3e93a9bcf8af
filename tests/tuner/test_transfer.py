"""Transfer learning: the deep-kernel GP (pretrain + MAP) and the transfer tuners."""

import warnings

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import spearmanr

from tiletune.errors import TuningError
from tiletune.tuner import ConfigSpace, XGBTuner
from tiletune.tuner.models.deep_gp import (
    DeepKernelGP,
    _Params,
    expected_improvement,
    gp_log_likelihood,
)
from tiletune.tuner.search.transfer import DeepGPCostModel, TransferTuner, TransferXGBModel

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


# -- transfer tuners on the synthetic conv landscape ------------------------------------------


def _inner_featurize(space):
    """Knob features without the outer split sizes (which depend on the shape): the inner
    tile sizes, unroll and annotations mean the same thing for every conv shape."""
    keep, pos = [], 0
    for knob in space.knobs.values():
        width = knob.feature_table().shape[1]
        keep += list(range(pos + (knob.kind == "split"), pos + width))
        pos += width
    return lambda indices: space.knob_features(indices)[:, keep]


HISTORY_SHAPES = [(128, 128, 28), (64, 64, 56), (256, 256, 14), (512, 512, 7)]


@pytest.fixture(scope="module")
def history():
    """300 measured random configs of each of four other conv shapes."""
    try:
        from conftest import Landscape, conv_template
    except ImportError:  # tests/tuner became a package
        from tests.tuner.conftest import Landscape, conv_template

    out = []
    for t, shape in enumerate(HISTORY_SHAPES):
        space = ConfigSpace.collect(conv_template, *shape)
        land = Landscape(space, shape[2])
        idx = space.sample(300, np.random.default_rng(t))
        y = np.array([r.throughput(land.flop) for r in land.measure(idx)])
        out.append((_inner_featurize(space)(idx), y / y.max()))
    return out


@pytest.fixture(scope="module")
def gp_model(history):
    return DeepGPCostModel(history, seed=0)


def _trials_to_reach(tuner, landscape, target, budget, batch_size=8):
    def stop_when_hit(t, indices, results):
        if t.best_cost <= target:
            t.stop("target reached")

    tuner.tune(landscape.measure, budget, flop=landscape.flop, batch_size=batch_size,
               callbacks=[stop_when_hit])
    return len(tuner.visited) if tuner.best_cost <= target else budget


def test_transfer_xgb_model_uses_then_forgets_the_base(history, landscape):
    model = TransferXGBModel(history, seed=0, plan_size=32)
    space = landscape.space
    idx = space.valid_indices()
    X = _inner_featurize(space)(idx)
    y = np.array([0.0 if landscape.fails(i) else 1 / landscape.cost(i) for i in idx])
    assert not model.fitted
    assert spearmanr(model.predict(X), y)[0] > 0.8            # the base model alone
    sub = np.random.default_rng(0).choice(len(idx), 16, replace=False)
    model.fit(X[sub], y[sub])
    assert model.fitted and model.discount == pytest.approx(2 ** (-16 / 64))
    assert spearmanr(model.predict(X), y)[0] > 0.8
    model.fit(np.repeat(X[sub], 20, axis=0), np.repeat(y[sub], 20))   # n = 320: base dropped
    assert model.discount == 0.0
    with pytest.raises(TuningError):
        model.fit(X[:, :3], y)


@pytest.mark.parametrize("method", ["xgb", "gp"])
def test_transfer_tuner_beats_xgb_from_scratch(method, history, gp_model, landscape,
                                               landscape_best):
    """Trials to reach 95% of the best, mean over 4 seeds: transfer from four other conv
    shapes needs far fewer than XGBTuner from scratch."""
    space = landscape.space
    featurize = _inner_featurize(space)
    target = landscape_best / 0.95
    seeds = range(4)
    scratch = [_trials_to_reach(XGBTuner(space, featurize, seed=s, plan_size=32), landscape,
                                target, 400) for s in seeds]
    model = gp_model if method == "gp" else None
    transfer = [_trials_to_reach(TransferTuner(space, history, featurize, seed=s,
                                               method=method, plan_size=32, model=model),
                                 landscape, target, 400) for s in seeds]
    assert np.mean(transfer) < 0.6 * np.mean(scratch), (transfer, scratch)


def test_transfer_tuner_tuning_set_and_errors(history, gp_model, landscape):
    space = landscape.space
    featurize = _inner_featurize(space)
    tuner = TransferTuner(space, history, featurize, seed=1, plan_size=32, model=gp_model)
    first = tuner.next_batch(8)
    assert first == tuner.tuning_set() and len(set(first)) == 8
    rated = gp_model.history_score(featurize(first))
    pool = space.sample(2000, np.random.default_rng(0))
    assert rated.min() >= np.quantile(gp_model.history_score(featurize(pool)), 0.7)
    assert not gp_model.fitted                                  # the tuner works on a copy
    tuner.update(first, landscape.measure(first), landscape.flop)
    assert tuner.model.fitted and tuner.plan
    base = TransferXGBModel(history, seed=0, plan_size=32)
    xgb_tuner = TransferTuner(space, history, featurize, method="xgb", plan_size=32, model=base)
    first = xgb_tuner.next_batch(8)                         # the base model's top configs
    scores = base.predict(featurize(space.valid_indices()))
    assert base.predict(featurize(first)).min() >= np.sort(scores)[-40]
    with pytest.raises(TuningError, match="needs a TransferXGBModel"):
        TransferTuner(space, history, featurize, method="xgb", model=gp_model)
    with pytest.raises(TuningError, match="feature space"):
        TransferTuner(space, history, seed=0, method="xgb")       # knob features: wrong width
    with pytest.raises(TuningError):
        TransferTuner(space, history, featurize, method="lasso")
    with pytest.raises(TuningError):
        TransferTuner(space, [(np.zeros((3, 2)), np.zeros(3))], featurize, method="xgb")


# -- shape descriptors and the registered transfer-xgb tuner (real conv2d_nchwc spaces) -----


def _conv_history(shapes, n=40):
    """Fake records of conv2d_nchwc workloads: throughput favours reg_n near 8 and big oc_bn."""
    from tiletune.tuner.measure.result import MeasureInput, MeasureResult
    from tiletune.tuner.records.store import make_record
    from tiletune.tuner.templates.task import Task

    recs = []
    for args in shapes:
        task = Task("conv2d_nchwc", args)
        idx = task.space.sample(n, np.random.default_rng(0))
        feats = task.space.knob_features(idx)
        for i, f in zip(idx, feats):
            cost = 1e-3 / (1.0 + f.sum() / 100.0)
            recs.append(make_record(MeasureInput(task.workload_key, i, task.space.get(i).to_json()),
                                    MeasureResult.success([cost]), template=task.name))
    return recs


def test_workload_descriptor_and_transfer_data():
    from tiletune.tuner.search.transfer import transfer_data, workload_descriptor
    from tiletune.tuner.session import TunerContext
    from tiletune.tuner.templates.task import Task

    task = Task("conv2d_nchwc", (1, 512, 7, 7, 512, 3, 3, 1, 1, "float32"))
    d = workload_descriptor(task)
    assert d.shape == (9,) and np.isclose(d[1], np.log2(513))
    hist = _conv_history([(1, 128, 28, 28, 256, 3, 3, 2, 1, "float32")], n=20)
    ctx = TunerContext(task, history=hist)
    f0, h0 = transfer_data(ctx, descriptors=False)
    f1, h1 = transfer_data(ctx, descriptors=True)
    assert h1[0][0].shape == (20, h0[0][0].shape[1] + 9)
    row = f1([0])
    assert np.allclose(row[0, -9:], d) and np.allclose(row[0, :-9], f0([0])[0])
    # the history rows carry the history workload's descriptor, not the new task's
    assert np.isclose(h1[0][0][0, -9 + 1], np.log2(129))


def test_registered_transfer_xgb_tunes_a_conv_layer():
    pytest.importorskip("xgboost")
    from tiletune.tuner.measure.result import MeasureResult
    from tiletune.tuner.session import TUNERS, TunerContext, make_tuner
    from tiletune.tuner.templates.task import Task

    assert TUNERS["transfer-xgb"].uses_history
    task = Task("conv2d_nchwc", (1, 512, 7, 7, 512, 3, 3, 1, 1, "float32"))
    hist = _conv_history([(1, 128, 28, 28, 256, 3, 3, 2, 1, "float32")], n=30)
    tuner = make_tuner("transfer-xgb", TunerContext(task, seed=1, n_trial=24, history=hist))

    def measure(indices):
        f = task.space.knob_features(indices)
        return [MeasureResult.success([1e-3 / (1.0 + r.sum() / 100.0)]) for r in f]

    tuner.tune(measure, 24, batch_size=8)
    assert len(tuner.xs) == 24 and len(set(tuner.xs)) == 24
