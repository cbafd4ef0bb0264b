"""Each loss: value, derivative against central differences, the case-1 shortcut, bad targets."""

import numpy as np
import pytest

from glassnet import activations, losses
from glassnet.utils import to_categorical
from tests.gradcheck import numerical_gradient, relative_error


def _targets(name, rng, batch=5, k=4):
    labels = rng.integers(0, k, size=batch)
    if name == "sparse_categorical_crossentropy":
        return labels
    if name == "categorical_crossentropy":
        return to_categorical(labels, k)
    if name == "binary_crossentropy":
        return rng.integers(0, 2, size=(batch, k)).astype(float)
    return rng.normal(size=(batch, k))


NAMES = [
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
]


def test_mean_absolute_percentage_error_by_hand():
    """Keras's MAPE: 100 · mean(|a − y| / max(|y|, ε)); the metric gives the same number."""
    from glassnet import metrics

    y, a = np.array([[1.0, -2.0], [0.0, 4.0]]), np.array([[1.5, -1.0], [1e-9, 5.0]])
    by_hand = 100 * np.mean([[0.5, 0.5], [1e-9 / 1e-7, 0.25]], axis=-1)  # |y| = 0 → ε = 1e-7
    assert np.allclose(losses.mean_absolute_percentage_error(y, a), by_hand)
    assert losses.get("mape").C(y, a) == pytest.approx(by_hand.mean())
    metric = metrics.get("mape")
    metric.update_state(y, a)
    assert metric.result() == pytest.approx(by_hand.mean())


@pytest.mark.parametrize("name", NAMES)
def test_dC_da_matches_finite_differences(name, rng):
    loss = losses.get(name)
    y = _targets(name, rng)
    a = rng.uniform(0.05, 0.95, size=(5, 4))  # probabilities away from the clipping edges
    numeric = numerical_gradient(lambda: float(loss.C(y, a)), a)
    assert relative_error(loss.dC_da(y, a), numeric) < 1e-6


@pytest.mark.parametrize(
    "name", ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]
)
def test_case_1_shortcut_matches_finite_differences(name, rng):
    # The deck's case 1: with the matching output activation, ∂C/∂z = (a − y) / batch.
    loss = losses.get(name)
    y = _targets(name, rng)
    z = rng.normal(0, 3, size=(5, 4))
    a = loss.output_activation(z)
    numeric = numerical_gradient(lambda: float(loss.C_from_z(y, z)), z)
    assert relative_error(loss.dC_dz(y, a), numeric) < 1e-6
    # … and it is the chain rule through the activation, done by hand:
    chain = loss.output_activation.backward(z, a, loss.dC_da(y, a))
    assert relative_error(loss.dC_dz(y, a), chain) < 1e-6


@pytest.mark.parametrize(
    "name", ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]
)
def test_from_logits_gradient(name, rng):
    loss = losses.get(
        {"class_name": type(losses.get(name)).__name__, "config": {"from_logits": True}}
    )
    y = _targets(name, rng)
    z = rng.normal(0, 3, size=(5, 4))
    numeric = numerical_gradient(lambda: float(loss.C(y, z)), z)
    assert relative_error(loss.gradient(y, z), numeric) < 1e-6


def test_from_logits_is_stable_for_huge_logits():
    y = to_categorical([0, 1], 2)
    z = np.array([[1e4, -1e4], [1e4, -1e4]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        C = losses.CategoricalCrossentropy(from_logits=True)(y, z)
        dC_dz = losses.CategoricalCrossentropy().dC_dz(y, activations.softmax(z))
        bce = losses.BinaryCrossentropy(from_logits=True)(np.array([[0.0]]), np.array([[1e4]]))
    assert pytest.approx(1e4) == C  # first sample right (0), second wrong by 2e4: mean 1e4
    assert np.isfinite(dC_dz).all()
    assert bce == pytest.approx(1e4)


def test_values_by_hand():
    y, a = np.array([[0.0, 1.0]]), np.array([[0.2, 0.8]])
    assert losses.MeanSquaredError()(y, a) == pytest.approx((0.04 + 0.04) / 2)
    assert losses.CategoricalCrossentropy()(y, a) == pytest.approx(-np.log(0.8))
    assert losses.SparseCategoricalCrossentropy()(np.array([1]), a) == pytest.approx(-np.log(0.8))
    assert losses.BinaryCrossentropy()(y, a) == pytest.approx(-np.log(0.8))


def test_functions_return_one_value_per_sample(rng):
    y, a = to_categorical([0, 1, 2], 3), activations.softmax(rng.normal(size=(3, 3)))
    assert losses.categorical_crossentropy(y, a).shape == (3,)
    assert losses.mean_squared_error(y, a).shape == (3,)


def test_integer_labels_for_categorical_explain_the_fix():
    with pytest.raises(
        ValueError,
        match=r"one-hot targets of shape \(n, 10\); received class "
        r"labels of shape \(3,\)\. Use loss='sparse_categorical",
    ):
        losses.CategoricalCrossentropy().check_targets(np.array([1, 2, 3]), (None, 10))


def test_one_hot_for_sparse_explains_the_fix():
    with pytest.raises(ValueError, match="received one-hot targets of shape"):
        losses.SparseCategoricalCrossentropy().check_targets(np.eye(3), (None, 3))


def test_labels_out_of_range():
    with pytest.raises(
        ValueError,
        match=r"class labels \[10\] outside 0\.\.9: the model has 10 "
        "outputs",
    ):
        losses.SparseCategoricalCrossentropy().check_targets(np.array([1, 10, 3]), (None, 10))


def test_non_integer_labels():
    with pytest.raises(ValueError, match="needs integer class labels"):
        losses.SparseCategoricalCrossentropy().check_targets(np.array([0.5, 1.0]), (None, 3))


def test_binary_targets_outside_0_1():
    with pytest.raises(ValueError, match="between 0 and 1; received values from -1"):
        losses.BinaryCrossentropy().check_targets(np.array([[-1.0], [1.0]]), (None, 1))


def test_nan_targets():
    with pytest.raises(ValueError, match="targets y contain NaN"):
        losses.MeanSquaredError().check_targets(np.array([[np.nan]]), (None, 1))


def test_unknown_loss_name():
    with pytest.raises(
        ValueError,
        match=r"Unknown loss: 'categorical_crossentropyy'\. Did you "
        r"mean 'categorical_crossentropy'\?",
    ):
        losses.get("categorical_crossentropyy")
