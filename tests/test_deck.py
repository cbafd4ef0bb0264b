"""The deck's numbers as tests: the worked example, and one backpropagation step by hand."""

import numpy as np
import pytest

from glassnet.layers import Dense, Input
from glassnet.models import Sequential
from glassnet.optimizers import SGD
from tests.deck_numbers import DECK_B, DECK_W


# The deck's 2-2-2-2 sigmoid network: W has one row per neuron (the slides' orientation).
def deck_network():
    model = Sequential([Input(shape=(2,))] + [Dense(2, activation="sigmoid") for _ in range(3)])
    # Keras's kernel is Wᵀ: set_weights speaks Keras.
    model.set_weights([w for W, b in zip(DECK_W, DECK_B) for w in (W.T, b)])
    return model


def test_worked_example_forward_pass(float64):
    model = deck_network()
    captured = model.capture(np.array([[1.0, -1.0]]))
    z = [cache.z[0] for cache in captured.caches]
    a = [cache.a[0] for cache in captured.caches]
    np.testing.assert_allclose(z[0], [4, -2])
    np.testing.assert_allclose(a[0], [0.98, 0.12], atol=0.005)
    np.testing.assert_allclose(z[1], [1.84, -2.08], atol=0.01)
    np.testing.assert_allclose(a[1], [0.86, 0.11], atol=0.005)
    np.testing.assert_allclose(z[2], [0.48, 1.58], atol=0.02)
    np.testing.assert_allclose(a[2], [0.6177, 0.8291], atol=5e-5)


def test_worked_example_in_float32_too():
    out = deck_network().predict(np.array([[1.0, -1.0]]), verbose=0)
    np.testing.assert_allclose(out, [[0.6177, 0.8291]], atol=5e-5)


def test_one_backpropagation_step_by_hand(float64):
    """A 1-1-1 sigmoid network and MSE: every factor of the chain rule written out.

    x = 1, target y = 0. Layer 1: z1 = w1·x + b1, a1 = σ(z1). Layer 2: z2 = w2·a1 + b2, a2 = σ(z2).
    C = (a2 − y)², the mean over one sample and one output.
    """
    w1, b1, w2, b2, x, y, lr = 0.5, 0.1, -0.3, 0.2, 1.0, 0.0, 0.5
    sigma = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731

    # Forward pass: store every layer's output.
    z1 = w1 * x + b1
    a1 = sigma(z1)
    z2 = w2 * a1 + b2
    a2 = sigma(z2)
    # Backward pass, case 1 (output layer): ∂C/∂z2 = σ′(z2) · ∂C/∂a2, with ∂C/∂a2 = 2(a2 − y).
    dC_dz2 = a2 * (1 - a2) * 2 * (a2 - y)
    # Case 2 (the layer before): ∂C/∂z1 = σ′(z1) · w2 · ∂C/∂z2.
    dC_dz1 = a1 * (1 - a1) * w2 * dC_dz2
    # ∂C/∂w = ∂z/∂w · ∂C/∂z, and ∂z/∂w is the stored input of the layer: x for w1, a1 for w2.
    dC_dw2, dC_db2 = a1 * dC_dz2, dC_dz2
    dC_dw1, dC_db1 = x * dC_dz1, dC_dz1
    # Gradient descent: w ← w − learning_rate · ∂C/∂w.
    expected = [w1 - lr * dC_dw1, b1 - lr * dC_db1, w2 - lr * dC_dw2, b2 - lr * dC_db2]

    model = Sequential(
        [Input(shape=(1,)), Dense(1, activation="sigmoid"), Dense(1, activation="sigmoid")]
    )
    model.set_weights([np.array([[w1]]), np.array([b1]), np.array([[w2]]), np.array([b2])])
    model.compile(optimizer=SGD(learning_rate=lr), loss="mse")
    loss = model.train_on_batch(np.array([[x]]), np.array([[y]]))

    assert loss == pytest.approx((a2 - y) ** 2)
    first, second = model.layers
    assert second.dC_dz[0, 0] == pytest.approx(dC_dz2)
    assert first.dC_dz[0, 0] == pytest.approx(dC_dz1)
    got = [w.item() for w in model.get_weights()]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_softmax_cross_entropy_output_gradient_is_a_minus_y(float64):
    # The deck's case 1 for softmax outputs: ∂C/∂z = a − y (for one sample).
    model = Sequential([Input(shape=(2,)), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = np.array([[0.5, -1.0]]), np.array([[0.0, 1.0, 0.0]])
    out = model.predict(x, verbose=0)
    model.train_on_batch(x, y)
    np.testing.assert_allclose(model.layers[0].dC_dz, out - y)
