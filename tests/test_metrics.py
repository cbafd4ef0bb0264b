"""Metrics against Keras's own results (fixtures made by real Keras) and scikit-learn's."""

import json
from pathlib import Path

import numpy as np
import pytest

from glassnet import metrics
from glassnet.layers import Dense, Input
from glassnet.models import Sequential

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
RECORDED = json.loads((FIXTURES / "metrics.json").read_text())
CASES, KERAS = RECORDED["cases"], RECORDED["results"]  # name -> (class, arguments, data)
DATA = np.load(FIXTURES / "metrics_data.npz")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", CASES)
def test_each_metric_gives_keras_result(name, weighted):
    cls, kwargs, kind = CASES[name]
    y, p, w = DATA[f"{kind}_0"], DATA[f"{kind}_1"], DATA["weights_0"]
    m = getattr(metrics, cls)(**kwargs)
    for part in (slice(0, 25), slice(25, None)):  # two batches, accumulated
        m.update_state(y[part], p[part], sample_weight=w[part] if weighted else None)
    expected = KERAS[f"{name}{'_weighted' if weighted else ''}"]
    np.testing.assert_allclose(m.result(), expected, rtol=1e-5, atol=1e-6)
    m.reset_state()
    assert not np.any(m.result())  # 0, or a 0 for each threshold or class


def test_keras_names_and_defaults():
    assert [m().name for m in (metrics.BinaryAccuracy, metrics.AUC, metrics.Precision,
                               metrics.TopKCategoricalAccuracy, metrics.RootMeanSquaredError,
                               metrics.Mean, metrics.Sum)] == [
        "binary_accuracy", "auc", "precision", "top_k_categorical_accuracy",
        "root_mean_squared_error", "mean", "sum"]  # fmt: skip
    assert metrics.TopKCategoricalAccuracy().k == 5
    assert metrics.AUC().num_thresholds == 200 and metrics.AUC().curve == "ROC"


def test_against_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    y, p, w = DATA["binary_0"][:, 0], DATA["binary_1"][:, 0], DATA["weights_0"]
    pred = (p > 0.5).astype(int)
    for cls, reference in ((metrics.Precision, sk.precision_score),
                           (metrics.Recall, sk.recall_score)):  # fmt: skip
        m = cls()
        m.update_state(y, p, sample_weight=w)
        assert m.result() == pytest.approx(reference(y, pred, sample_weight=w), rel=1e-6)
    auc = metrics.AUC(num_thresholds=2000)
    auc.update_state(y, p, sample_weight=w)
    assert auc.result() == pytest.approx(sk.roc_auc_score(y, p, sample_weight=w), abs=2e-3)
    rmse = metrics.RootMeanSquaredError()
    rmse.update_state(DATA["regression_0"], DATA["regression_1"])
    expected = np.sqrt(sk.mean_squared_error(DATA["regression_0"], DATA["regression_1"]))
    assert rmse.result() == pytest.approx(expected, rel=1e-6)
    acc = metrics.SparseCategoricalAccuracy()
    acc.update_state(DATA["sparse_0"], DATA["sparse_1"], sample_weight=w)
    assert acc.result() == pytest.approx(sk.accuracy_score(
        DATA["sparse_0"][:, 0], DATA["sparse_1"].argmax(1), sample_weight=w), rel=1e-6)  # fmt: skip


def test_mean_and_sum_weight_their_values():
    mean, total = metrics.Mean(), metrics.Sum()
    for m in (mean, total):
        m.update_state([1.0, 2.0, 3.0], sample_weight=[1.0, 0.0, 1.0])
    assert mean.result() == 2.0 and total.result() == 4.0


def test_compile_with_metric_objects_and_names(rng):
    model = Sequential([Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(
        optimizer="sgd",
        loss="binary_crossentropy",
        metrics=["accuracy", metrics.AUC(), "precision", metrics.Recall(name="rec")],
    )
    x, y = rng.normal(size=(32, 3)), rng.integers(0, 2, 32)  # (n,) targets for one unit
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy", "auc", "precision", "rec"}
    assert 0 <= logs["auc"] <= 1


def test_a_metric_written_as_keras_guide_writes_it(rng):
    # keras.io, "Training & evaluation with the built-in methods": a custom metric with ops.
    import glassnet as keras
    from glassnet import ops

    class CategoricalTruePositives(keras.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            values = ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"), "float32")
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=[CategoricalTruePositives()])  # fmt: skip
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 3, (40, 1))  # labels as the guide has them
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    counts = history.history["categorical_true_positives"]
    hits = (model.predict(x, verbose=0).argmax(1) == y[:, 0]).sum()
    assert all(0 <= c <= 40 for c in counts) and isinstance(counts[0], float)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["categorical_true_positives"] == hits


def test_a_keras_style_loss_with_call_is_differentiated_op_by_op(rng):
    """keras.io's CustomMSE: a Loss subclass with call() written with ops trains; its ∂C/∂a
    comes from the ops it recorded. One with neither call nor per_sample says what it needs."""
    from glassnet import losses, ops
    from tests.gradcheck import numerical_gradient, relative_error

    class CustomMSE(losses.Loss):
        def __init__(self, regularization_factor=0.1, name="custom_mse"):
            super().__init__(name=name)
            self.regularization_factor = regularization_factor

        def call(self, y_true, y_pred):
            mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
            reg = ops.mean(ops.square(0.5 - y_pred), axis=-1)
            return mse + reg * self.regularization_factor

    loss = CustomMSE()
    y, a = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    by_hand = ((y - a) ** 2).mean(axis=-1) + 0.1 * ((0.5 - a) ** 2).mean(axis=-1)
    assert loss(y, a) == pytest.approx(by_hand.mean())
    numeric = numerical_gradient(lambda: float(loss.C(y, a)), a)
    assert relative_error(loss.dC_da(y, a), numeric) < 1e-6
    model = Sequential([Input((3,)), Dense(3)])
    model.compile("adam", loss=loss)
    history = model.fit(a, y, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    class Nothing(losses.Loss):
        pass

    with pytest.raises(NotImplementedError, match="needs call\\(y_true, y_pred\\) written"):
        Nothing()(np.zeros((2, 1)), np.ones((2, 1)))


def test_f_scores_and_rates_under_a_constraint_in_fit_and_their_bad_arguments(rng):
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy",
                  metrics=[metrics.F1Score(average="macro"), metrics.F1Score(name="f1_each"),
                           metrics.PrecisionAtRecall(0.5), metrics.TruePositives()])  # fmt: skip
    x, y = rng.normal(size=(30, 4)), np.eye(3)[rng.integers(0, 3, 30)]
    logs = model.fit(x, y, epochs=2, verbose=0).history
    assert {"f1_score", "f1_each", "precision_at_recall", "true_positives"} <= set(logs)
    assert len(logs["f1_each"][0]) == 3 and 0 <= logs["f1_score"][-1] <= 1
    for make, message in [
        (lambda: metrics.F1Score(average="median"), "Invalid `average` argument value"),
        (lambda: metrics.FBetaScore(beta=0), r"It should be > 0\. Received: 0"),
        (lambda: metrics.F1Score(threshold=2), r"in the range \]0, 1\]"),
        (lambda: metrics.PrecisionAtRecall(1.5), r"`recall` must be in the range \[0, 1\]"),
        (lambda: metrics.RecallAtPrecision(0.5, num_thresholds=0), "`num_thresholds` must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            make()
