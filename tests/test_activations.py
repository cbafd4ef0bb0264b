"""Each activation's derivative against central differences, and known values."""

import numpy as np
import pytest

from glassnet import activations
from tests.gradcheck import numerical_gradient, relative_error

ALL = sorted(activations._REGISTRY)


@pytest.mark.parametrize("name", ALL)
def test_backward_matches_finite_differences(name, rng):
    fn = activations.get(name)
    z = rng.normal(0, 2, size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kink of relu-like functions
    dC_da = rng.normal(size=z.shape)  # a random upstream gradient: C = Σ a ⊙ dC_da

    numeric = numerical_gradient(lambda: float((fn(z) * dC_da).sum()), z)
    analytic = fn.backward(z, fn(z), dC_da)
    assert relative_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("name", ALL)
def test_backward_leaves_inputs_unchanged(name, rng):
    fn = activations.get(name)
    z = rng.normal(size=(3, 4))
    a = fn(z)
    dC_da = rng.normal(size=z.shape)
    copies = z.copy(), a.copy(), dC_da.copy()
    fn.backward(z, a, dC_da)
    for before, after in zip(copies, (z, a, dC_da)):
        np.testing.assert_array_equal(before, after)


def test_sigmoid_values_from_the_deck():
    # Layer 1 of the worked example: z = (4, −2) gives a = (0.98, 0.12).
    np.testing.assert_allclose(
        activations.sigmoid(np.array([4.0, -2.0])), [0.98201, 0.11920], atol=1e-5
    )
    assert activations.sigmoid_prime(np.array([0.0]))[0] == 0.25


def test_sigmoid_and_softmax_do_not_overflow():
    z = np.array([[-1e4, 0.0, 1e4]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_array_equal(activations.sigmoid(z), [[0.0, 0.5, 1.0]])
        np.testing.assert_array_equal(activations.softmax(z), [[0.0, 0.0, 1.0]])


def test_sigmoid_keeps_its_relative_precision_in_the_tails():
    z = np.linspace(-80, 30, 221)
    exact = 1 / (1 + np.exp(-z))  # float64
    got = activations.sigmoid(z.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=1e-6)  # no cancellation: σ(−20) ≈ 2.06e−9, not 0


def test_softmax_rows_sum_to_one(rng):
    a = activations.softmax(rng.normal(size=(6, 10)))
    np.testing.assert_allclose(a.sum(axis=1), 1.0)


def test_keras_defaults():
    z = np.array([-1.0, 2.0])
    np.testing.assert_allclose(activations.leaky_relu(z), [-0.2, 2.0])  # negative_slope=0.2
    np.testing.assert_allclose(activations.elu(z), [np.expm1(-1.0), 2.0])  # alpha=1
    assert activations.get(None) is activations.linear


def test_unknown_name_lists_valid_ones_and_suggests():
    with pytest.raises(
        ValueError,
        match=r"Unknown activation: 'sigmod'\. Did you mean 'sigmoid'\?"
        r" Valid names: elu, leaky_relu, linear",
    ):
        activations.get("sigmod")
