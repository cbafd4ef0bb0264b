"""Each layer's backward pass against central differences; shapes, weights and bad input."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from glassnet import activations
from glassnet.layers import Activation, Dense, Dropout, Flatten, Input
from tests.layer_checks import check_layer


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 5),
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    activation=st.sampled_from(sorted(activations._REGISTRY)),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_gradients(batch, n_in, n_out, activation, use_bias, seed):
    import glassnet

    glassnet.config.set_floatx("float64")
    try:
        rng = np.random.default_rng(seed)
        glassnet.utils.set_random_seed(seed)  # the weights too: hypothesis replays the same example
        layer = Dense(
            n_out, activation=activation, use_bias=use_bias, bias_initializer="random_normal"
        )
        layer.build((None, n_in))
        a_prev = rng.normal(size=(batch, n_in))
        if activation in ("relu", "leaky_relu", "elu"):  # stay off the kink at z = 0
            z = a_prev @ layer.params["W"].T + (layer.params["b"] if use_bias else 0)
            assume(np.abs(z).min() >= 1e-4)
        check_layer(layer, a_prev, rng)
    finally:
        glassnet.config.set_floatx("float32")


def test_dense_on_3d_inputs(float64, rng):
    layer = Dense(3, activation="tanh")
    layer.build((None, 2, 4))
    check_layer(layer, rng.normal(size=(2, 2, 4)), rng)


def test_activation_layer_gradients(float64, rng):
    check_layer(Activation("softmax"), rng.normal(size=(3, 4)), rng, params=False)


def test_dropout_gradients_and_scaling(float64, rng):
    layer = Dropout(0.5, seed=0)
    a_prev = rng.normal(size=(4, 6))
    out = layer.forward(a_prev, training=True)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 2 * a_prev[kept])  # scaled by 1 / (1 − rate)
    check_layer(layer, a_prev, rng, params=False)


def test_dropout_is_identity_at_inference(rng):
    x = rng.normal(size=(3, 3))
    assert Dropout(0.9).forward(x, training=False) is x


def test_dropout_mask_is_seeded(rng):
    x = np.ones((8, 8), dtype="float32")
    a = Dropout(0.5, seed=3).forward(x, training=True)
    b = Dropout(0.5, seed=3).forward(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert 0.3 < (a == 0).mean() < 0.7


def test_flatten_round_trip(rng):
    layer = Flatten()
    x = rng.normal(size=(2, 3, 4))
    assert layer.forward(x).shape == (2, 12)
    assert layer.backward(np.ones((2, 12))).shape == (2, 3, 4)
    assert layer.compute_output_shape((None, 28, 28)) == (None, 784)


def test_backward_does_not_mutate_inputs(float64, rng):
    layer = Dense(3, activation="relu")
    layer.build((None, 4))
    x = rng.normal(size=(5, 4))
    x_copy = x.copy()
    out = layer.forward(x, training=True)
    dC_da = rng.normal(size=out.shape)
    dC_da_copy = dC_da.copy()
    layer.backward(dC_da)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dC_da, dC_da_copy)


def test_keras_orientation_of_weights():
    layer = Dense(3)
    layer.build((None, 2))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (2, 3) and bias.shape == (3,)  # Keras: (n_in, n_out)
    assert layer.params["W"].shape == (3, 2)  # the deck: one row per neuron
    assert layer.params["W"].flags.c_contiguous
    new_kernel = np.arange(6, dtype="float32").reshape(2, 3)
    layer.set_weights([new_kernel, bias])
    np.testing.assert_array_equal(layer.params["W"], new_kernel.T)


def test_set_weights_rejects_wrong_shapes():
    layer = Dense(3)
    layer.build((None, 2))
    with pytest.raises(
        ValueError,
        match=r"weight W has shape \(2, 3\); received an array of "
        r"shape \(3, 2\)",
    ):
        layer.set_weights([np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"expects 2 weights \(\(2, 3\), \(3,\)\), but received 1"):
        layer.set_weights([np.zeros((2, 3))])


def test_shape_mismatch_is_explained_as_matrix_sizes():
    layer = Dense(2)
    layer.build((None, 2))
    with pytest.raises(
        ValueError,
        match=r"Input of shape \(1, 3\) does not fit layer 'dense' "
        r"\(Dense, 2 inputs → 2 units\).*\(1×3\)·\(2×2\): the "
        r"inner sizes 3 and 2 differ",
    ):
        layer(np.ones((1, 3)))


@pytest.mark.parametrize("units", [0, -1, 2.5, "ten", True])
def test_dense_units_must_be_positive_int(units):
    with pytest.raises(ValueError, match=f"expected a positive integer. Received: units={units!r}"):
        Dense(units)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2])
def test_dropout_rate_range(rate):
    with pytest.raises(ValueError, match=f"Received: rate={rate}"):
        Dropout(rate)


def test_unknown_keyword_argument():
    with pytest.raises(
        TypeError, match="Unrecognized keyword arguments passed to Dense: {'unit': 3}"
    ):
        Dense(3, unit=3)


def test_input_needs_a_shape():
    with pytest.raises(ValueError, match=r"Input needs a shape"):
        Input()
    with pytest.raises(ValueError, match=r"Expected a tuple of positive integers"):
        Input(shape=(0,))


def test_automatic_names_follow_keras():
    assert [Dense(1).name, Dense(1).name, Dropout(0.1).name] == ["dense", "dense_1", "dropout"]
