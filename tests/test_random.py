"""glassnet.random (keras.random): Keras's three kinds of seed, the distributions drawn, dropout's
derivative against central differences, a layer that calls it inside fit, and bad arguments."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet as keras
from glassnet import layers, ops
from glassnet import random as gr
from tests.test_ops import check


def test_an_int_seed_draws_the_same_numbers_a_seed_generator_moves_on():
    assert np.array_equal(gr.normal((3, 4), seed=7), gr.normal((3, 4), seed=7))
    g = gr.SeedGenerator(7)
    first, second = gr.uniform((5,), seed=g), gr.uniform((5,), seed=g)
    assert not np.array_equal(first, second)
    again = gr.SeedGenerator(7)
    assert np.array_equal(gr.uniform((5,), seed=again), first)


def test_no_seed_draws_from_the_stream_set_random_seed_fixes():
    keras.utils.set_random_seed(3)
    a = [gr.normal((4,)), gr.randint((4,), 0, 10)]
    keras.utils.set_random_seed(3)
    b = [gr.normal((4,)), gr.randint((4,), 0, 10)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(gr.normal((4,)), a[0])  # the stream moved on


def test_the_distributions_have_their_moments_ranges_and_types():
    n = gr.normal((200_000,), mean=2.0, stddev=3.0, seed=0)
    assert n.dtype == np.float32 and abs(n.mean() - 2) < 0.03 and abs(n.std() - 3) < 0.03
    u = gr.uniform((100_000,), minval=-1.0, maxval=3.0, seed=0)
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.02
    t = gr.truncated_normal((100_000,), stddev=0.5, seed=0)
    assert np.abs(t).max() <= 1.0 and abs(t.std() - 0.5 * 0.8796) < 0.01  # σ of N cut at ±2σ
    r = gr.randint((10_000,), 3, 7, seed=0)
    assert r.dtype == np.int32 and set(np.unique(r)) == {3, 4, 5, 6}
    assert gr.normal((2,), dtype="float64", seed=0).dtype == np.float64


def test_shuffle_permutes_along_an_axis_and_categorical_follows_the_softmax():
    x = np.arange(12).reshape(4, 3)
    s = gr.shuffle(x, seed=1)
    assert sorted(map(tuple, s)) == sorted(map(tuple, x))  # rows kept whole
    draws = gr.categorical(np.log([[0.2, 0.8], [0.9, 0.1]]), 20_000, seed=0)
    assert draws.shape == (2, 20_000)
    assert abs(draws[0].mean() - 0.8) < 0.01 and abs(draws[1].mean() - 0.1) < 0.01


def test_dropout_keeps_the_expected_value_and_drops_whole_axes_by_noise_shape():
    x = np.ones((2000, 50), dtype=np.float32)
    z = gr.dropout(x, 0.3, seed=0)
    assert set(np.unique(z)) == {0.0, np.float32(1 / 0.7)}
    assert abs((z == 0).mean() - 0.3) < 0.01 and abs(z.mean() - 1) < 0.02
    columns = gr.dropout(np.ones((4, 6, 3)), 0.5, noise_shape=(4, 1, 3), seed=0)
    assert (columns == columns[:, :1, :]).all()  # one draw per (sample, channel), every step


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 4), cols=st.integers(1, 5), rate=st.floats(0, 0.9), seed=st.integers(0, 999)
)
def test_dropouts_derivative_is_the_mask_over_one_minus_rate(rows, cols, rate, seed):
    x = np.random.default_rng(seed).normal(size=(rows, cols))
    check(lambda t: gr.dropout(t, rate, seed=seed), x, seed=seed)


def test_a_layer_that_draws_its_noise_in_call_trains_and_is_quiet_in_inference():
    class Noisy(layers.Layer):
        def call(self, inputs, training=None):
            if training:
                return keras.random.dropout(inputs, rate=0.5)
            return inputs

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(8), Noisy(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gr.normal((2,), seed=-1), "Received seed=-1. Expected None, a non-negative"),
        (lambda: gr.normal((2,), seed="a"), "Received seed='a'"),
        (lambda: gr.dropout(np.ones(3), 1.0), "Received rate=1.0. Expected a number in [0, 1)"),
        (lambda: gr.dropout(np.ones(3), -0.1), "Received rate=-0.1. Expected a non-negative"),
        (lambda: gr.categorical(np.ones(3), 2), "categorical expects logits of shape (batch"),
    ],
)
def test_bad_arguments_say_what_was_expected(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert message in str(caught.value)


def test_ops_convert_to_tensor_keeps_a_recorded_variable_recorded():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, inputs):
            return inputs * ops.convert_to_tensor(self.w)

    layer = Scale()
    x = np.arange(6, dtype="float32").reshape(2, 3)
    layer(x)
    layer.forward(x)
    layer.backward(np.ones((2, 3), dtype="float32"))
    assert np.allclose(layer.grads["variable"], x.sum(axis=0))
