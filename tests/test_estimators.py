"""The scikit-learn compatible estimators: ``check_estimator``, scikit-learn's meanings (penalty,
stopping rule, adaptive rate, binary output), partial_fit's optimizer state, dtypes, pickling,
Pipeline/GridSearchCV/clone, and the fallback base class when scikit-learn is missing.

scikit-learn is a test-only dependency: the tests that need it are skipped without it.
"""
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastmlp import MLPClassifier, MLPRegressor, _kernels, estimators, reference

try:
    import sklearn
    from sklearn import neural_network
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.estimator_checks import parametrize_with_checks
except ImportError:
    sklearn = None
needs_sklearn = pytest.mark.skipif(sklearn is None, reason="scikit-learn is not installed")

SMALL = dict(hidden_layer_sizes=(8,), max_iter=100, learning_rate_init=0.01, random_state=0)


@pytest.fixture
def blobs():
    """Three well separated classes in 4 dimensions, 150 rows."""
    rng = np.random.default_rng(0)
    centers = 3 * rng.standard_normal((3, 4))
    y = np.repeat(np.arange(3), 50)
    return centers[y] + rng.standard_normal((150, 4)), y


def quietly(estimator, *args, **kwargs):
    """``estimator.fit(*args)`` without the ConvergenceWarning of a deliberately short run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(*args, **kwargs)


if sklearn is not None:
    @pytest.mark.filterwarnings("ignore:Stochastic Optimizer")   # short runs on purpose
    # The Poisson regressor gets more epochs: check_regressors_train asks for R² > 0.5 on the training
    # data, which an exp output reaches more slowly (scikit-learn's own: 0.49 after 100 epochs).
    @parametrize_with_checks([MLPClassifier(**SMALL), MLPRegressor(**SMALL),
                              MLPRegressor(loss="poisson", **{**SMALL, "max_iter": 500})])
    def test_passes_check_estimator(estimator, check):
        check(estimator)


# -- scikit-learn's meanings ----------------------------------------------------------------------

@needs_sklearn
@pytest.mark.parametrize("kind", ["regression", "poisson", "binary", "multiclass"])
def test_cost_and_gradients_are_sklearns(kind):
    """Same weights, same batch: our cost and gradients (l2 = alpha / batch_size) are
    scikit-learn's ``_backprop`` (its private loss-and-gradient function) to rounding."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    y = {"regression": X[:, 0] - X[:, 1], "poisson": rng.poisson(np.exp(X[:, 0] / 2)), "binary": X[:, 0] > 0,
         "multiclass": np.digitize(X[:, 0], [-0.5, 0.5])}[kind]
    options = dict(hidden_layer_sizes=(6, 3), activation="tanh", alpha=0.7, batch_size=40, max_iter=2, random_state=0)
    if kind == "poisson":
        options["loss"] = "poisson"
    regression = kind in ("regression", "poisson")
    ours = quietly(MLPRegressor(**options) if regression else MLPClassifier(**options), X, y)
    theirs = quietly(neural_network.MLPRegressor(**options) if regression
                     else neural_network.MLPClassifier(**options), X, y)
    assert ours.model_.l2 == 0.7 / 40
    assert [w.shape for w in ours.coefs_] == [w.shape for w in theirs.coefs_]   # binary: one logistic output
    assert ours.out_activation_ == theirs.out_activation_
    theirs.coefs_, theirs.intercepts_ = [w.copy() for w in ours.coefs_], [b.copy() for b in ours.intercepts_]
    Y = y.reshape(-1, 1).astype(float) if regression else theirs._label_binarizer.transform(y)
    coef_grads, intercept_grads = [np.empty_like(w) for w in ours.coefs_], [np.empty_like(b) for b in ours.intercepts_]
    loss, coef_grads, intercept_grads = theirs._backprop(X, Y, None, [X, None, None, None], [None] * 3,
                                                         coef_grads, intercept_grads)
    weight_grads, bias_grads = ours.model_.backprop(X, Y if kind != "multiclass" else y)
    assert ours.model_.cost(X, Y if kind != "multiclass" else y) == pytest.approx(loss, rel=1e-12)
    for ours_grad, their_grad in zip(weight_grads + bias_grads, coef_grads + intercept_grads):
        assert_allclose(ours_grad, their_grad, rtol=1e-10, atol=1e-13)


@needs_sklearn
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_multi_output_loss_is_reported_as_sklearns_mean_over_outputs(solver):
    """scikit-learn's squared error is also averaged over the outputs: loss_ is on that scale."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 5))
    Y = np.c_[X[:, 0] - X[:, 1], 2 * X[:, 2], X[:, 3] ** 2]
    options = dict(hidden_layer_sizes=(6,), activation="tanh", alpha=0.0, batch_size=40, max_iter=1, shuffle=False,
                   solver=solver, learning_rate_init=0.01, random_state=0, warm_start=True)
    ours = quietly(MLPRegressor(**options), X, Y)
    start = [p.copy() for p in ours.coefs_ + ours.intercepts_]
    quietly(ours, X, Y)   # one full batch (sgd) or one iteration (lbfgs) from ``start``
    # sgd: the epoch's loss is its one batch's, before its step; lbfgs: the loss after the iteration
    at = start if solver == "sgd" else ours.coefs_ + ours.intercepts_
    theirs = quietly(neural_network.MLPRegressor(**options), X, Y)
    theirs.coefs_, theirs.intercepts_ = at[:2], at[2:]
    grads = [np.empty_like(p) for p in start]
    their_loss = theirs._backprop(X, Y, None, [X, None, None], [None] * 2, grads[:2], grads[2:])[0]
    assert ours.loss_ == pytest.approx(their_loss, rel=1e-12)
    assert ours.model_.history["loss"][-1] == pytest.approx(3 * ours.loss_, rel=1e-12)   # fit's own: the sum


@needs_sklearn
@pytest.mark.parametrize("backend", [_kernels.Network, reference.Network], ids=["compiled", "numpy"])
@pytest.mark.parametrize("epsilon_hat", [True, False])
def test_adam_with_epsilon_hat_takes_sklearns_steps(backend, epsilon_hat):
    """Fed the same gradients, scikit-learn's AdamOptimizer and our Adam with epsilon_hat (as the
    estimators use it) take the same steps; without it they differ (ε large enough to matter)."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    rng = np.random.default_rng(0)
    sizes, activations = (4, 6, 3), ["tanh", "softmax"]
    weights = [rng.standard_normal((a, b)) * 0.5 for a, b in zip(sizes, sizes[1:])]
    biases = [rng.standard_normal(b) * 0.1 for b in sizes[1:]]
    X, Y = rng.standard_normal((10, 4)), np.eye(3)[rng.integers(0, 3, 10)]
    network = backend([w.copy() for w in weights], [b.copy() for b in biases], activations, "log_loss", 10,
                      optimizer="adam", beta1=0.8, beta2=0.95, epsilon=0.05, epsilon_hat=epsilon_hat)
    network.bind(X, Y, np.arange(10, dtype=np.int64))
    theirs = [w.copy() for w in weights] + [b.copy() for b in biases]
    optimizer = AdamOptimizer(theirs, learning_rate_init=0.01, beta_1=0.8, beta_2=0.95, epsilon=0.05)
    gradients_at_theirs = reference.Network(theirs[:2], theirs[2:], activations, "log_loss", 10)   # shares them
    for _ in range(6):
        gradients_at_theirs.backprop(X, Y)
        optimizer.update_params(theirs, gradients_at_theirs.weight_grads + gradients_at_theirs.bias_grads)
        network.train_batch(0, 10, 0.01)
    same = all(np.allclose(mine, want, rtol=1e-10, atol=1e-13)
               for mine, want in zip(network.weights + network.biases, theirs))
    assert same == epsilon_hat


@needs_sklearn
def test_the_estimators_adam_is_sklearns(blobs):
    X, y = blobs
    clf = quietly(MLPClassifier(**SMALL), X, y)   # solver="adam" by default, as in scikit-learn
    assert clf.model_.optimizer_state["config"]["epsilon_hat"] is True


@needs_sklearn
def test_accuracy_close_to_sklearns_mlp():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=600, n_features=10, n_informative=6, n_classes=3, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    train, test = slice(0, 450), slice(450, None)
    scores = [quietly(estimator((32,), random_state=0), X[train], y[train]).score(X[test], y[test])
              for estimator in (MLPClassifier, neural_network.MLPClassifier)]
    assert scores[0] > 0.75
    assert abs(scores[0] - scores[1]) < 0.05, scores


@needs_sklearn
def test_early_stopping_scores_the_held_out_rows_with_their_sample_weights(blobs, monkeypatch):
    # As scikit-learn does: the validation score is weighted by the held-out rows' sample weights.
    import fastmlp.estimators
    X, y = blobs
    weights = np.arange(1.0, 151.0)
    seen = []

    def recording_fit(*args, validation_data=None, **kwargs):
        seen.append(validation_data)
        return real_fit(*args, validation_data=validation_data, **kwargs)

    real_fit = fastmlp.estimators.fit_rows   # early stopping trains on the rows it keeps
    monkeypatch.setattr(fastmlp.estimators, "fit_rows", recording_fit)
    model = quietly(MLPClassifier(early_stopping=True, **SMALL), X, y, sample_weight=weights)
    X_val, Y_val, W_val = seen[0]
    held = [int(np.flatnonzero((X == row).all(axis=1))[0]) for row in X_val]
    assert_array_equal(W_val, weights[held])
    best = model.model_.history["best_epoch"]
    assert model.validation_scores_[best - 1] == pytest.approx(model.score(X[held], y[held], sample_weight=weights[held]))


@needs_sklearn
@pytest.mark.parametrize("early_stopping", [False, True])
def test_stopping_rule_is_sklearns(blobs, early_stopping):
    # With tol this large no epoch counts as an improvement: both stop after n_iter_no_change + 2 epochs.
    X, y = blobs
    options = dict(hidden_layer_sizes=(4,), tol=1e9, n_iter_no_change=3, early_stopping=early_stopping, random_state=0)
    ours, theirs = MLPClassifier(**options).fit(X, y), neural_network.MLPClassifier(**options).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5
    assert len(ours.loss_curve_) == 5 and ours.t_ == 5 * (len(X) - 15 * early_stopping)
    if early_stopping:
        assert len(ours.validation_scores_) == 5 and ours.best_loss_ is None
        assert ours.best_validation_score_ == max(ours.validation_scores_)
        # fit kept the weights of the best epoch (its own record says which)
        assert ours.model_.history["best_epoch"] == np.argmax(ours.validation_scores_) + 1
    else:
        assert ours.best_loss_ == min(ours.loss_curve_) and ours.validation_scores_ is None


@needs_sklearn
def test_invscaling_counts_samples_across_warm_started_fits_as_sklearn(blobs):
    """A warm-started fit starts a fresh optimizer at learning_rate_init, then steps by
    learning_rate_init / (t + 1)^power_t with t counting every sample since the first fit."""
    X, y = blobs
    options = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.1,
                   power_t=0.5, max_iter=3, warm_start=True, random_state=0)
    ours, theirs = MLPClassifier(**options), neural_network.MLPClassifier(**options)
    for _ in range(2):
        quietly(ours, X, y), quietly(theirs, X, y)
    rates = ours.model_.history["learning_rate"]   # the second fit's epochs
    assert rates == pytest.approx([0.1, 0.1 / (4 * 150 + 1) ** 0.5, 0.1 / (5 * 150 + 1) ** 0.5], rel=1e-12)
    assert ours.t_ == theirs.t_ == 6 * 150
    assert ours._learning_rate == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)


@needs_sklearn
def test_adaptive_rate_divides_by_5_until_below_1e_6(blobs):
    # A cut every time the rule fires (every 2 epochs once it has fired), 8 cuts take 0.1 to
    # 0.1 / 5⁸ = 2.56e-7 <= 1e-6, and the ninth firing stops: 19 epochs, as in scikit-learn.
    X, y = blobs
    options = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                   tol=1e9, n_iter_no_change=1, random_state=0)
    ours, theirs = MLPClassifier(**options).fit(X, y), neural_network.MLPClassifier(**options).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 19
    assert ours.model_.history["learning_rate"][-1] == pytest.approx(0.1 / 5 ** 8)
    assert theirs._optimizer.learning_rate == pytest.approx(0.1 / 5 ** 8)


@needs_sklearn
def test_convergence_warning_at_max_iter(blobs):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier((4,), max_iter=2).fit(*blobs)


@pytest.mark.parametrize("activation", ["logistic", "relu"])
def test_initial_weights_are_drawn_as_sklearn_draws_them(blobs, monkeypatch, activation):
    """scikit-learn's _init_coef: Glorot uniform (factor 2 for logistic, else 6), a layer's weights
    then its biases, layer by layer, from check_random_state(random_state)."""
    import fastmlp.estimators
    X, y = blobs
    seen = []

    def recording_fit(*args, weights=None, biases=None, **kwargs):
        seen.append(([w.copy() for w in weights], [b.copy() for b in biases]))
        return real_fit(*args, weights=weights, biases=biases, **kwargs)

    real_fit = fastmlp.estimators.fit
    monkeypatch.setattr(fastmlp.estimators, "fit", recording_fit)
    shared = np.random.RandomState(5)
    for random_state in (7, np.random.RandomState(7), shared, shared):
        quietly(MLPClassifier((6, 5), activation, max_iter=1, random_state=random_state), X, y)
    expected = []
    for draw in (np.random.RandomState(7), np.random.RandomState(7), np.random.RandomState(5)):
        for n_in, n_out in zip((4, 6, 5), (6, 5, 3)):
            bound = np.sqrt((2.0 if activation == "logistic" else 6.0) / (n_in + n_out))
            expected += [draw.uniform(-bound, bound, (n_in, n_out)), draw.uniform(-bound, bound, n_out)]
    drawn = [p for weights, biases in seen for pair in zip(weights, biases) for p in pair]
    assert len(drawn) == 4 * 6
    for mine, want in zip(drawn[:12], expected[:12]):   # an int seed, then a fresh RandomState(7)
        assert_array_equal(mine, want)
    # a RandomState is used as it is: the first fit draws from it as scikit-learn would, the second
    # fit draws on from where the first left it (after its seed for the shuffles)
    for mine, want in zip(drawn[12:18], expected[12:18]):
        assert_array_equal(mine, want)
    assert not np.array_equal(drawn[18], drawn[12])


@needs_sklearn
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_lbfgs_from_the_same_random_state_takes_sklearns_steps(activation):
    """Same initial weights and the same cost: full-batch L-BFGS ends where scikit-learn's does,
    and both warn when max_fun cuts them off (all but the linear network, which converges first)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = X[:, 0] - 2 * X[:, 1] + 0.3 * rng.standard_normal(120)
    options = dict(solver="lbfgs", hidden_layer_sizes=(7,), activation=activation, max_fun=15, tol=0.0, random_state=3)
    fitted, warned = [], []
    for estimator in (MLPRegressor, neural_network.MLPRegressor):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fitted.append(estimator(**options).fit(X, y))
        warned.append([issubclass(warning.category, ConvergenceWarning) for warning in caught].count(True))
    ours, theirs = fitted
    assert warned == [int(activation != "identity")] * 2
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for mine, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(mine, want, rtol=1e-8, atol=1e-10)


def test_divergence_raises_sklearns_value_error():
    import fastmlp
    from fastmlp.exceptions import DivergenceError
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))   # scikit-learn's test_nonfinite_params
    assert fastmlp.DivergenceError is DivergenceError
    assert issubclass(DivergenceError, FloatingPointError) and issubclass(DivergenceError, ValueError)
    with pytest.raises(DivergenceError, match=r"^Solver produced non-finite parameter weights\. The input data may "
                                              r"contain large values and need to be preprocessed\. \(training diverged"):
        quietly(MLPRegressor(), X, rng.standard_normal(10))


@pytest.fixture
def diverging():
    """A regression that SGD with learning rate 0.3 drives to infinity within 10 epochs."""
    rng = np.random.default_rng(0)
    centers = 3 * rng.standard_normal((3, 4))
    y = np.repeat(np.arange(3), 50)
    X = centers[y] + rng.standard_normal((150, 4))
    return X, y.astype(float), dict(hidden_layer_sizes=(16,), activation="identity", solver="sgd",
                                    learning_rate_init=0.3, max_iter=30, random_state=0)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_with_early_stopping_stops_at_the_best_epoch(diverging):
    # scikit-learn's issue 29504: no error; the diverged epoch is recorded with nan
    X, y, options = diverging
    with pytest.warns(estimators.ConvergenceWarning, match=r"Training diverged in epoch \d+ .*best validation score"):
        reg = MLPRegressor(early_stopping=True, **options).fit(X, y)
    assert 1 < reg.n_iter_ < 30 and len(reg.loss_curve_) == len(reg.validation_scores_) == reg.n_iter_
    assert np.isnan(reg.validation_scores_[-1]) and isinstance(reg.validation_scores_[-1], float)
    assert np.isnan(reg.loss_) and np.isnan(reg.loss_curve_[-1])
    assert np.isfinite(reg.predict(X)).all()
    # the weights are those of the best epoch: a run that ends there has them too
    best = int(np.nanargmax(reg.validation_scores_)) + 1
    assert reg.best_validation_score_ == reg.validation_scores_[best - 1]
    short = quietly(MLPRegressor(early_stopping=True, **dict(options, max_iter=best)), X, y)
    for mine, want in zip(reg.coefs_ + reg.intercepts_, short.coefs_ + short.intercepts_):
        assert_array_equal(mine, want)
    with pytest.raises(ValueError, match="non-finite parameter weights"):   # without early stopping
        quietly(MLPRegressor(**options), X, y)


@pytest.mark.parametrize("y, names", [([3, 3, 3, 3, 3, 3, 7], "['True'] (labels [7])"),
                                      ([3, 7, 7, 7, 7, 7, 7], "['False'] (labels [3])"),
                                      (["a", "a", "b", "b", "c", "c", "d"], "['d'] (labels ['d'])")])
def test_early_stopping_refuses_a_class_of_one_member(y, names):
    """scikit-learn's train_test_split error for a stratified split, the classes named as in its
    binarized y for two classes ('True' / 'False'), then by their labels."""
    X = np.arange(14.0).reshape(7, 2)
    with pytest.raises(ValueError, match=r"The least populated classes in y have only 1 member, which is too few\. "
                                         r".*Classes with too few members are: " + re.escape(names)):
        MLPClassifier(early_stopping=True).fit(X, y)
    quietly(MLPClassifier(**SMALL), X, y)   # without early stopping: no split, no error


# -- classification outputs -----------------------------------------------------------------------

def test_binary_has_one_logistic_output_and_two_probability_columns(blobs):
    X, y = blobs
    labels = np.where(y == 0, "cat", "dog")
    clf = quietly(MLPClassifier(**SMALL), X, labels)
    proba = clf.predict_proba(X)
    assert clf.coefs_[-1].shape == (8, 1) and clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    assert_array_equal(clf.classes_, ["cat", "dog"])
    assert proba.shape == (150, 2)
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.score(X, labels) > 0.9   # scikit-learn, from the same initial weights: 0.927


def test_multiclass_has_softmax_outputs(blobs):
    X, y = blobs
    clf = quietly(MLPClassifier(**SMALL), X, y + 10)
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3 and clf.n_layers_ == 3
    assert_array_equal(clf.classes_, [10, 11, 12])
    assert_allclose(clf.predict_proba(X).sum(axis=1), 1, rtol=1e-12)
    assert clf.score(X, y + 10) > 0.95


def test_multilabel_has_a_logistic_output_per_label(blobs):
    X, y = blobs
    Y = np.stack([y == 0, y == 1, X[:, 0] > 0], axis=1).astype(int)
    clf = quietly(MLPClassifier(**SMALL), X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.predict(X).shape == clf.predict_proba(X).shape == (150, 3)
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.score(X, Y) > 0.7   # exact match of all three labels


def test_class_weight_is_a_sample_weight_per_class(blobs):
    X, y = blobs
    weighted = quietly(MLPClassifier(**SMALL, class_weight={1: 3.0}), X, y)
    by_sample = quietly(MLPClassifier(**SMALL), X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    assert_array_equal(weighted.coefs_[0], by_sample.coefs_[0])
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight={7: 2.0}).fit(X, y)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_one_class_is_accepted_and_always_predicted(blobs, early_stopping):
    # As scikit-learn: one logistic output trained towards 0; that class is always predicted.
    X, _ = blobs
    y = np.full(len(X), "only")
    clf = quietly(MLPClassifier(**SMALL, early_stopping=early_stopping), X, y)
    assert_array_equal(clf.classes_, ["only"])
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic" and clf.coefs_[-1].shape == (8, 1)
    assert_array_equal(clf.predict(X), y)
    assert_array_equal(clf.predict_proba(X), np.ones((len(X), 1)))
    assert clf.score(X, y) == 1.0
    if early_stopping:   # every epoch scores 1 (as scikit-learn's accuracy): the rule stops after 12
        assert clf.validation_scores_ == [1.0] * 12 and clf.n_iter_ == 12
    else:
        assert clf.loss_curve_[-1] < clf.loss_curve_[0]   # the output learns its 0
    partial = MLPClassifier(**SMALL).partial_fit(X, y, classes=["only"])
    assert_array_equal(partial.predict(X[:3]), y[:3])


# -- partial_fit and warm_start -------------------------------------------------------------------

def test_partial_fit_keeps_adams_state(blobs):
    # Three calls of one epoch are one fit of three epochs, step for step; restarting Adam
    # (a warm start each epoch, as scikit-learn's fit does) is not.
    X, y = blobs
    options = dict(hidden_layer_sizes=(8,), max_iter=3, shuffle=False, learning_rate_init=0.01, random_state=0)
    whole = quietly(MLPClassifier(**options), X, y)
    chunked, restarted = MLPClassifier(**options), MLPClassifier(**dict(options, warm_start=True, max_iter=1))
    for _ in range(3):
        chunked.partial_fit(X, y, classes=[0, 1, 2])
        quietly(restarted, X, y)
    assert_allclose(chunked.coefs_[0], whole.coefs_[0], rtol=1e-12)
    assert_allclose(chunked.loss_curve_, whole.loss_curve_, rtol=1e-12)
    assert chunked.n_iter_ == 1 and chunked.t_ == whole.t_ == 3 * len(X)
    assert chunked.model_.optimizer_state["step_count"] == 3
    assert not np.allclose(restarted.coefs_[0], whole.coefs_[0], rtol=1e-6)
    assert len(restarted.loss_curve_) == 3   # warm starts extend the curve


def test_partial_fit_classes(blobs):
    X, y = blobs
    clf = MLPClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])   # a chunk without class 2
    assert clf.predict_proba(X).shape == (150, 3)
    clf.partial_fit(X[y == 2], y[y == 2])
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X, y + 1)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_warm_start_continues_from_the_weights(blobs):
    X, y = blobs
    clf = quietly(MLPClassifier(**dict(SMALL, max_iter=5, warm_start=True)), X, y)
    first_curve = list(clf.loss_curve_)
    quietly(clf, X, y)
    assert clf.loss_curve_[:5] == first_curve and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[5] < first_curve[0]
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y < 2], y[y < 2])


def test_lbfgs_is_full_batch_and_has_no_partial_fit(blobs):
    pytest.importorskip("scipy")
    X, y = blobs
    reg = quietly(MLPRegressor((8,), solver="lbfgs", alpha=0.3, max_iter=200, random_state=0), X, X[:, 0] * X[:, 1])
    assert reg.model_.l2 == 0.3 / len(X)
    assert reg.score(X, X[:, 0] * X[:, 1]) > 0.9 and reg.n_iter_ == len(reg.loss_curve_)
    assert not hasattr(reg, "partial_fit") and hasattr(MLPRegressor(), "partial_fit")


@needs_sklearn
@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor])
def test_every_scikit_learn_parameter_is_accepted(estimator):
    theirs = getattr(neural_network, estimator.__name__)().get_params()
    ours = estimator().get_params()
    assert set(theirs) <= set(ours)
    assert {name: ours[name] for name in theirs} == theirs    # with scikit-learn's defaults


def test_poisson_regressor_fits_counts_through_an_exp_output():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 3))
    rate = np.exp(0.8 * X[:, 0] - 0.5 * X[:, 1])
    y = rng.poisson(rate)                                # integer counts are targets, not labels
    reg = quietly(MLPRegressor((8,), "tanh", loss="poisson", learning_rate_init=0.01, random_state=0, max_iter=60), X, y)
    assert reg.out_activation_ == "exp" and reg.model_.layer_activations[-1] == "exp"
    predicted = reg.predict(X)
    assert predicted.shape == (600,) and (predicted > 0).all()
    # mean deviance well below that of the best constant prediction, the mean count
    deviance = lambda mean: np.mean(mean - y + np.where(y > 0, y * np.log(np.maximum(y, 1) / mean), 0))
    assert deviance(predicted) < 0.6 * deviance(np.full(len(y), y.mean()))
    assert reg.loss_ == pytest.approx(reg.loss_curve_[-1]) and reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_regressor_losses_are_checked(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="loss must be 'squared_error' or 'poisson', got 'huber'"):
        MLPRegressor(loss="huber", **SMALL).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"y must be >= 0 for loss 'poisson'.*minimum of -"):
        MLPRegressor(loss="poisson", **SMALL).fit(X, X[:, 0])
    reg = quietly(MLPRegressor(loss="poisson", warm_start=True, **SMALL), X, np.abs(X[:, 0]))
    with pytest.raises(ValueError, match="does not match the fitted model's loss"):
        reg.set_params(loss="squared_error").fit(X, np.abs(X[:, 0]))


@needs_sklearn
def test_lbfgs_stops_at_max_fun_evaluations_and_says_so(blobs):
    pytest.importorskip("scipy")
    X, y = blobs
    options = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0)
    with pytest.warns(ConvergenceWarning, match="increase max_iter or max_fun"):
        cut = MLPClassifier(max_fun=6, **options).fit(X, y)
    whole = quietly(MLPClassifier(**options), X, y)
    assert cut.n_iter_ <= 6 < whole.n_iter_
    assert cut.model_.history["limit_reached"] == cut.n_iter_
    with pytest.raises(ValueError, match="max_fun"):
        MLPClassifier(max_fun=0, **options).fit(X, y)


def test_fastmlp_extras_reach_fit(blobs):
    X, y = blobs
    plain, regularised = (quietly(MLPClassifier(**SMALL, **extra), X, y) for extra in ({}, {"l1": 0.01, "dropout": 0.3}))
    assert regularised.model_.l1 == 0.01
    assert np.abs(regularised.coefs_[0]).sum() < np.abs(plain.coefs_[0]).sum()


# -- dtypes, pickling, scikit-learn tools ---------------------------------------------------------

@pytest.mark.parametrize("X_dtype, dtype, expected", [
    (np.float32, None, np.float32), (np.float64, None, np.float64), (np.int64, None, np.float64),
    (np.float64, "float32", np.float32), (np.float32, "float64", np.float64)])
def test_float32_stays_float32(blobs, X_dtype, dtype, expected):
    X, y = blobs
    X = X.astype(X_dtype)
    clf = quietly(MLPClassifier(**SMALL, dtype=dtype), X, y)
    reg = quietly(MLPRegressor(**SMALL, dtype=dtype), X, y.astype(float))
    assert {w.dtype for w in clf.coefs_ + clf.intercepts_ + reg.coefs_} == {np.dtype(expected)}
    assert clf.predict_proba(X).dtype == expected and reg.predict(X).dtype == expected


def test_pickle_and_joblib_round_trip(blobs, tmp_path):
    joblib = pytest.importorskip("joblib")
    X, y = blobs
    clf = quietly(MLPClassifier(**SMALL), X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    for loaded in (pickle.loads(pickle.dumps(clf)), joblib.load(tmp_path / "clf.joblib"),
                   joblib.load(tmp_path / "clf.joblib", mmap_mode="r")):   # read-only arrays
        assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        assert loaded.get_params() == clf.get_params()


@needs_sklearn
def test_pipeline_grid_search_and_clone(blobs):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = blobs
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(**SMALL))
    search = GridSearchCV(pipeline, {"mlpclassifier__alpha": [1e-4, 1.0], "mlpclassifier__hidden_layer_sizes": [(2,), (8,)]},
                          cv=3)
    quietly(search, X, y)
    assert search.best_score_ > 0.9
    assert search.best_estimator_[-1].hidden_layer_sizes in ((2,), (8,))
    fitted = search.best_estimator_[-1]
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "model_")
    assert_array_equal(quietly(copy, X, y).predict_proba(X), quietly(clone(fitted), X, y).predict_proba(X))


def test_feature_names_from_a_dataframe(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = quietly(MLPClassifier(**SMALL), frame, y)
    assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])


def test_verbose_prints_each_epoch(blobs, capsys):
    quietly(MLPClassifier((4,), max_iter=2, verbose=True), *blobs)
    assert capsys.readouterr().out.startswith("Iteration 1, loss = ")


@pytest.mark.parametrize("parameters, name", [
    ({"activation": "sigmoid"}, "activation"), ({"solver": "newton"}, "solver"), ({"alpha": -1.0}, "alpha"),
    ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes"), ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": "step"}, "learning_rate"), ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"beta_1": 1.0}, "beta_1"), ({"max_iter": 0}, "max_iter"), ({"dtype": "int32"}, "dtype"),
    ({"early_stopping": True, "validation_fraction": 0.0}, "validation"), ({"momentum": 2.0}, "momentum"),
    ({"random_state": "seed"}, "random_state")])
def test_invalid_parameters_are_named(blobs, parameters, name):
    with pytest.raises((ValueError, TypeError), match=name):
        MLPClassifier(**parameters).fit(*blobs)


def test_without_sklearn_the_fallback_base_class_works():
    script = """
import sys
sys.modules["sklearn"] = None   # import sklearn raises ImportError
import numpy as np
from fastmlp import MLPClassifier, MLPRegressor, _kernels, reference
X = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
clf = MLPClassifier((8,), max_iter=50, learning_rate_init=0.05, random_state=0)
assert repr(clf) == "MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05, max_iter=50, random_state=0)"
assert clf.set_params(alpha=0.1).get_params()["alpha"] == 0.1
assert clf.fit(X, X[:, 0] > 0).score(X, X[:, 0] > 0) > 0.9
assert clf.predict_proba(X).dtype == np.float32
reg = MLPRegressor((8,), batch_size=10, random_state=0).fit(X, 2 * X[:, 0])
assert reg.score(X, 2 * X[:, 0]) > 0.9, reg.score(X, 2 * X[:, 0])
try:
    clf.predict(X[:, :2])
except ValueError as error:
    assert "features" in str(error)
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                          timeout=600)   # only a guard against a hang
    assert done.stdout.strip() == "ok", done.stderr
