"""Targets, sample weights and class weights as Keras takes them, against Keras's own numbers."""

from pathlib import Path

import numpy as np
import pytest

from glassnet import losses
from glassnet.layers import Dense, Input
from glassnet.models import Sequential
from glassnet.optimizers import SGD
from tests.gradcheck import numerical_gradient, relative_error

KERAS = np.load(Path(__file__).parent / "fixtures" / "keras" / "weighted.npz")


def keras_model(case):
    model = Sequential([Input((4,)), Dense(5, activation="tanh"), Dense(3, activation="softmax")])
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    model.set_weights([KERAS[f"{case}_start_{i}"] for i in range(4)])
    return model


@pytest.mark.parametrize("case", ["sample", "class"])
def test_one_weighted_step_matches_keras(case):
    model = keras_model(case)
    kwargs = (
        {"sample_weight": KERAS["sw"]}
        if case == "sample"
        else {"class_weight": {0: 0.5, 1: 2.0, 2: 1.0}}
    )
    loss = model.train_on_batch(KERAS["x"], KERAS["y"], **kwargs)
    assert loss == pytest.approx(float(KERAS[f"{case}_loss"]), rel=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, KERAS[f"{case}_after_{i}"], atol=1e-6)
    if case == "sample":
        evaluated = model.evaluate(KERAS["x"], KERAS["y"], sample_weight=KERAS["sw"], verbose=0)
        assert evaluated == pytest.approx(float(KERAS["evaluate"]), rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none",
                                       "mean_with_sample_weight"])  # fmt: skip
def test_loss_objects_reduce_as_keras(reduction):
    loss = losses.MeanSquaredError(reduction=reduction)
    ours = loss(KERAS["yt"], KERAS["yp"], sample_weight=KERAS["sw"])
    np.testing.assert_allclose(ours, KERAS[f"mse_{reduction}"], rtol=1e-5)


def test_weighted_gradients_equal_finite_differences(float64, rng):
    model = Sequential([Input((3,)), Dense(4, activation="tanh"), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = rng.normal(size=(6, 3)), np.eye(3)[rng.integers(0, 3, 6)]
    w = rng.random(6)
    model.backpropagate(y, model.forward(x, training=True), sample_weight=w)
    for p, g in [(p, g.copy()) for p, g in model.trainable_pairs()]:
        numeric = numerical_gradient(lambda: model.loss_value(y, model.forward(x), w), p)
        assert relative_error(g, numeric) < 1e-6


def test_fit_with_weights_and_validation_weights(rng):
    model = Sequential([Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)  # (n,) targets for one unit
    w = rng.random(40)
    zero = model.fit(x, y, sample_weight=np.zeros(40), epochs=1, verbose=0)
    assert zero.history["loss"] == [0.0]  # weights of zero: nothing to learn from
    history = model.fit(x, y, sample_weight=w, validation_data=(x, y, w), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    split = model.fit(x, y, sample_weight=w, validation_split=0.25, epochs=1, verbose=0)
    assert "val_loss" in split.history


def test_bad_weights_say_what_is_wrong(rng):
    model = Sequential([Input((3,)), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(5,\); received shape"):
        model.fit(x, y, sample_weight=np.ones(4), verbose=0)
    with pytest.raises(ValueError, match="cannot use `class_weight` and `sample_weight`"):
        model.fit(x, y, sample_weight=np.ones(5), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.fit(x, y, sample_weight=np.full(5, np.nan), verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(x, y, class_weight=[1, 2], verbose=0)


def test_targets_as_keras_takes_them(rng):
    regression = Sequential([Input((2,)), Dense(1)])
    regression.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(8, 2))
    regression.fit(x, rng.normal(size=8), verbose=0)  # (n,) targets for one output unit
    sparse = Sequential([Input((2,)), Dense(3, activation="softmax")])
    sparse.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    sparse.fit(x, rng.integers(0, 3, (8, 1)), verbose=0)  # (n, 1) labels


def test_training_with_another_reduction_is_refused_not_ignored():
    model = Sequential([Input((2,)), Dense(1)])
    with pytest.raises(NotImplementedError, match=r"reduction='sum'\) is not supported"):
        model.compile(optimizer="sgd", loss=losses.MeanSquaredError(reduction="sum"))
