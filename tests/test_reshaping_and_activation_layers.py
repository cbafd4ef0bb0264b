"""RepeatVector, UpSampling1D/2D, Cropping1D/2D, the activation layers with options (ReLU,
LeakyReLU, ELU, Softmax, PReLU) and the functional merge helpers: backward against central
differences for random shapes and options, values worked by hand and from Keras's documentation,
bad arguments. Their forward passes and files against real Keras are in ``test_keras_files``
(the ``reshaped`` fixture both ways)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet
from glassnet import glassbox, layers
from tests.layer_checks import check_layer, in_float64


def build(layer, x):
    layer.build((None, *x.shape[1:]))
    return layer


# ---- backward against central differences ------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(
        ["RepeatVector", "UpSampling1D", "UpSampling2D", "Cropping1D", "Cropping2D"]
    ),
    batch=st.integers(1, 3),
    a=st.integers(1, 3),
    b=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
@in_float64
def test_copying_and_cutting_layers_pass_gradients_back(kind, batch, a, b, seed):
    rng = np.random.default_rng(seed)
    if kind == "RepeatVector":
        layer, x = layers.RepeatVector(a + 1), rng.normal(size=(batch, b + 1))
    elif kind == "UpSampling1D":
        layer, x = layers.UpSampling1D(a), rng.normal(size=(batch, b + 1, 2))
    elif kind == "UpSampling2D":
        layer, x = layers.UpSampling2D((a, b)), rng.normal(size=(batch, 3, 2, 2))
    elif kind == "Cropping1D":
        layer, x = layers.Cropping1D((a - 1, b)), rng.normal(size=(batch, a + b + 2, 2))
    else:
        layer = layers.Cropping2D(((a, 0), (1, b - 1)))
        x = rng.normal(size=(batch, a + 2, b + 3, 2))
    check_layer(build(layer, x), x, rng)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU"]),
    batch=st.integers(1, 3),
    option=st.floats(0.05, 0.9),
    flag=st.booleans(),
    seed=st.integers(0, 2**16),
)
@in_float64
def test_activation_layers_pass_gradients_back(kind, batch, option, flag, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, 3, 4))
    x[np.abs(x) < 0.02] += 0.05  # finite differences need every entry off the kinks
    if kind == "ReLU":
        layer = layers.ReLU(max_value=1.0 if flag else None, negative_slope=option,
                            threshold=0.3 * option)  # fmt: skip
        x[np.abs(x - 0.3 * option) < 0.02] += 0.05
        x[np.abs(x - 1.0) < 0.02] += 0.05
    elif kind == "LeakyReLU":
        layer = layers.LeakyReLU(negative_slope=option)
    elif kind == "ELU":
        layer = layers.ELU(alpha=option)
    elif kind == "Softmax":
        layer = layers.Softmax(axis=1 if flag else -1)
    else:
        layer = layers.PReLU(alpha_initializer="random_uniform",
                             shared_axes=[1] if flag else None)  # fmt: skip
    check_layer(build(layer, x), x, rng)


def test_a_shared_prelu_slope_gets_the_sum_of_what_shares_it():
    """The deck's chain rule, by hand: a = α·z below zero, so ∂C/∂α = Σ ∂C/∂a · z over the
    entries with z < 0 that share it."""
    layer = build(layers.PReLU(alpha_initializer="zeros", shared_axes=[1]), np.zeros((1, 2, 2)))
    assert layer.params["alpha"].shape == (1, 2)
    z = np.array([[[-1.0, 2.0], [-3.0, -4.0]]])
    a = layer.forward(z)
    np.testing.assert_array_equal(a, [[[0, 2], [0, 0]]])  # α = 0 starts as a ReLU
    dC_dz = layer.backward(np.array([[[1.0, 1.0], [2.0, 0.5]]]))
    np.testing.assert_allclose(layer.grads["alpha"], [[1 * -1 + 2 * -3, 0.5 * -4]])  # [[-7, -2]]
    np.testing.assert_array_equal(dC_dz, [[[0, 1], [0, 0]]])


# ---- values by hand, and Keras's documented examples -------------------------------------------


def test_relu_options_as_keras_documents_them():
    x = np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]])
    cases = [({}, [0, 0, 0, 5, 10]), ({"negative_slope": 0.5}, [-5, -2.5, 0, 5, 10]),
             ({"max_value": 5.0}, [0, 0, 0, 5, 5]), ({"threshold": 5.0}, [0, 0, 0, 0, 10]),
             ({"max_value": 10, "negative_slope": 0.5}, [-5, -2.5, 0, 5, 10])]  # fmt: skip
    for options, expected in cases:
        np.testing.assert_array_equal(layers.ReLU(**options)(x), [expected])
    assert layers.LeakyReLU().negative_slope == 0.3  # Keras 3's default
    np.testing.assert_allclose(layers.ELU()(np.array([[-1.0, 2.0]])), [[np.expm1(-1), 2]],
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(layers.Softmax(axis=1)(np.zeros((1, 2, 3))), np.full((1, 2, 3), 0.5))


def test_copying_and_cutting_by_hand():
    x = np.arange(6, dtype="float32").reshape(1, 3, 2)  # one sequence: 3 steps of 2 channels
    np.testing.assert_array_equal(layers.UpSampling1D(2)(x)[0, :, 0], [0, 0, 2, 2, 4, 4])
    np.testing.assert_array_equal(layers.Cropping1D((1, 0))(x)[0], [[2, 3], [4, 5]])
    image = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(layers.UpSampling2D((1, 2))(image)[0, :, :, 0],
                                  [[0, 0, 1, 1], [2, 2, 3, 3]])  # fmt: skip
    np.testing.assert_array_equal(layers.Cropping2D(((1, 0), (0, 1)))(image)[0, :, :, 0], [[2]])
    up = build(layers.UpSampling2D(2), image)
    up.forward(image)  # every pixel was copied 4 times, so it gets 4 gradients' sum
    back = up.backward(np.ones((1, 4, 4, 1)))
    np.testing.assert_array_equal(back[0, :, :, 0], np.full((2, 2), 4))
    repeat = build(layers.RepeatVector(3), np.zeros((1, 2)))
    np.testing.assert_array_equal(repeat.backward(np.ones((1, 3, 2))), [[3, 3]])


def test_shapes_follow_keras_with_free_axes():
    assert layers.RepeatVector(4).compute_output_shape((None, 7)) == (None, 4, 7)
    assert layers.UpSampling1D(3).compute_output_shape((None, None, 2)) == (None, None, 2)
    assert layers.UpSampling2D((2, 3)).compute_output_shape((None, 4, 5, 1)) == (None, 8, 15, 1)
    assert layers.Cropping2D(1).compute_output_shape((None, 5, 6, 3)) == (None, 3, 4, 3)
    assert layers.Cropping1D(2).compute_output_shape((None, None, 3)) == (None, None, 3)


def test_functional_merge_helpers_build_the_layers():
    a, b = glassnet.Input((3,)), glassnet.Input((3,))
    helpers = [(layers.add, layers.Add), (layers.subtract, layers.Subtract),
               (layers.multiply, layers.Multiply), (layers.average, layers.Average),
               (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum)]  # fmt: skip
    for helper, cls in helpers:
        out = helper([a, b], name=f"{cls.__name__.lower()}_helper")
        assert type(out.node.layer) is cls and out.node.layer.name.endswith("_helper")
    joined = layers.concatenate([a, b], axis=1)
    assert joined.shape == (None, 6) and type(joined.node.layer) is layers.Concatenate
    model = glassnet.Model([a, b], layers.add([a, b]))
    np.testing.assert_array_equal(model.predict([np.ones((1, 3)), np.ones((1, 3))], verbose=0),
                                  np.full((1, 3), 2))  # fmt: skip


def test_layers_round_trip_their_configs():
    made = [layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5), layers.LeakyReLU(0.2),
            layers.ELU(0.5), layers.Softmax(axis=1), layers.PReLU(shared_axes=[1, 2]),
            layers.RepeatVector(3), layers.UpSampling1D(4), layers.UpSampling2D((1, 3)),
            layers.Cropping1D((2, 1)), layers.Cropping2D(((1, 2), (3, 4)))]  # fmt: skip
    for layer in made:
        again = layers.deserialize(layers.serialize(layer))
        assert type(again) is type(layer) and again.get_config() == layer.get_config()
    assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1  # Keras 2's name


# ---- bad arguments and inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: layers.RepeatVector(0), r"Received n=0\. Expected a positive integer"),
        (lambda: layers.UpSampling1D(0), r"`size` argument must be a tuple of 1 positive"),
        (lambda: layers.UpSampling2D(interpolation="bilinear"), r"'nearest' \(Keras's default\)"),
        (lambda: layers.Cropping1D((1, -1)), r"`cropping` should be an int or a tuple of 2 ints"),
        (lambda: layers.Cropping2D("x"), r"`cropping` should be an int, a tuple of 2 ints"),
        (lambda: layers.ReLU(negative_slope=-1), r"negative_slope=-1\. Expected a number ≥ 0"),
        (lambda: layers.ELU(alpha="big"), r"alpha='big'\. Expected a number"),
        (lambda: layers.Softmax(axis=1.5), r"Expected an integer axis"),
        (lambda: layers.PReLU(shared_axes=[0]), r"counted from 1 \(axis 0 is the batch\)"),
        (lambda: layers.PReLU(alpha_regularizer="l2"), r"alpha_regularizer=\.\.\.\) is not"),
    ],
)
def test_bad_arguments_say_what_is_expected(make, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make()


def test_bad_inputs_name_the_shape():
    with pytest.raises(ValueError, match=r"RepeatVector expects inputs of shape \(batch, "):
        layers.RepeatVector(2)(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"cuts everything off inputs of shape \(None, 2, 5, 1\)"):
        layers.Cropping2D(1)(glassnet.Input((2, 5, 1)))
    with pytest.raises(ValueError, match=r"cuts every step off"):
        layers.Cropping1D(2)(glassnet.Input((4, 1)))
    with pytest.raises(ValueError, match=r"Softmax\(axis=0\) needs an axis of the samples"):
        layers.Softmax(axis=0)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"PReLU\(shared_axes=\[3\]\) names axis 3"):
        layers.PReLU(shared_axes=[3])(glassnet.Input((4,)))
    with pytest.raises(ValueError, match=r"PReLU needs every axis of its inputs known"):
        layers.PReLU()(glassnet.Input((None, 4)))


def test_the_glass_box_names_each_function_with_its_options_and_checks_alpha():
    rng = np.random.default_rng(1)
    inputs = glassnet.Input((4,))
    h = layers.RepeatVector(2)(inputs)
    h = layers.SimpleRNN(3)(h)
    h = layers.PReLU(alpha_initializer=glassnet.initializers.Constant(0.25))(h)
    h = layers.LeakyReLU(negative_slope=0.1)(h)
    model = glassnet.Model(inputs, layers.Dense(2, activation="softmax")(h))
    model.compile("sgd", "categorical_crossentropy")
    text = glassbox.trace(model, rng.normal(size=(3, 4)), np.eye(2)[[0, 1, 0]]).render()
    assert "a = leaky_relu[negative_slope=0.1](z)" in text and "a = prelu[α](z)" in text
    assert "∂C/∂alpha" in text and "✗" not in text
