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
    assert m.result() == 0 or m.result() == [0.0, 0.0]


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
