"""A Conv2D with relu and the MaxPooling2D after it, run as one step (``Conv.forward_pooled``):
the same numbers as the two layers one after the other, on random shapes and on ties; its
gradients against finite differences; which pairs a model runs that way; and what the glass box
and the profiler see of them."""

import importlib.util

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import glassnet
from glassnet import kernels, layers
from glassnet.layers import convolutional
from tests.gradcheck import numerical_gradient, relative_error

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="Numba is not installed: no fused kernels"
)
kernels_on = pytest.mark.skipif(
    not kernels.ENABLED, reason="kernels are off (GLASSNET_KERNELS=numpy): every layer runs alone"
)


def _pair(filters, kernel, strides, padding, pool, c_in, size, use_bias, dtype, seed, integers):
    """A relu Conv2D and a MaxPooling2D, built in ``dtype``: random weights, or small integers
    (``integers``), whose products tie often — inside a window, at 0 and across it."""
    glassnet.config.set_floatx(dtype)
    try:
        glassnet.utils.set_random_seed(seed)
        conv = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation="relu",
                             use_bias=use_bias, bias_initializer="random_normal")  # fmt: skip
        conv.build((None, *size, c_in))
        pool_layer = layers.MaxPooling2D(pool)
        pool_layer.build(conv.compute_output_shape((None, *size, c_in)))
    finally:
        glassnet.config.set_floatx("float32")
    if integers:
        rng = np.random.default_rng(seed)
        conv.set_weights([rng.integers(-1, 2, size=w.shape) for w in conv.get_weights()])
    return conv, pool_layer


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 9),
    size=st.tuples(st.integers(2, 11), st.integers(2, 11)),
    c_in=st.integers(1, 4),
    filters=st.integers(1, 6),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.sampled_from([(1, 1), (2, 1), (2, 2)]),
    padding=st.sampled_from(["valid", "same"]),
    pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    use_bias=st.booleans(),
    input_gradient=st.booleans(),
    small_blocks=st.booleans(),
    integers=st.booleans(),
    float64=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pooled_convolution_gives_the_two_layers_numbers(
    batch, size, c_in, filters, kernel, strides, padding, pool, use_bias, input_gradient,
    small_blocks, integers, float64, seed,
):  # fmt: skip
    """The pooled output, ∂C/∂(input), ∂C/∂W and ∂C/∂b of the two layers: bit for bit where the
    numbers are small integers (every order of the sums gives the same bits; ties everywhere),
    to float rounding otherwise — the pooled step multiplies only the positions the pools read,
    so its products have other row counts, and ∂C/∂W from the winners alone (windows of at most
    ``WINNERS_ONLY`` numbers, no ∂C/∂(input) wanted) is summed in another order."""
    dtype = "float64" if float64 else "float32"
    if padding == "valid":
        assume(size[0] >= kernel[0] and size[1] >= kernel[1])
    out = layers.Conv2D(1, kernel, strides, padding).compute_output_shape((None, *size, c_in))
    assume(out[1] >= pool[0] and out[2] >= pool[1])
    made = [_pair(filters, kernel, strides, padding, pool, c_in, size, use_bias, dtype, seed,
                  integers) for _ in range(2)]  # fmt: skip
    (conv, pool_layer), (fused, _) = made
    assert conv.pools_in_one_pass(pool_layer)
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, size=(batch, *size, c_in)) if integers
         else rng.normal(size=(batch, *size, c_in))).astype(dtype)  # fmt: skip
    pooled = pool_layer.compute_output_shape(conv.compute_output_shape((batch, *size, c_in)))
    d = (rng.integers(-3, 4, size=pooled) if integers else rng.normal(size=pooled)).astype(dtype)
    with pytest.MonkeyPatch.context() as patch:
        if small_blocks:
            patch.setattr(convolutional, "BLOCK_BYTES", 1)  # one sample a block
        conv.needs_input_gradient = fused.needs_input_gradient = input_gradient
        a = pool_layer.forward(conv.forward(x, training=True), training=True)
        dx = conv.backward(pool_layer.backward(d))
        got = fused.forward_pooled(x, pool, training=True)
        got_dx = fused.backward_pooled(d)
    assert got.dtype == a.dtype == dtype
    assert (got_dx is None) == (dx is None) == (not input_gradient)
    tolerance = 0 if integers else 1e-12 if float64 else 2e-5
    pairs = [("a", got, a), ("dx", got_dx, dx)] + [
        (name, fused.grads[name], conv.grads[name]) for name in conv.grads
    ]
    for name, value, expected in pairs:
        if expected is not None:
            np.testing.assert_allclose(value, expected, rtol=tolerance, atol=tolerance,
                                       err_msg=name)  # fmt: skip


def test_pooled_convolution_keeps_nan_and_the_first_winner():
    """NaN in z: a window whose first position is NaN pools to NaN, as ``max_pool`` gives it; a
    later NaN never wins. A tie goes to the first position; a window whose largest z is not
    above 0 pools to 0 and sends no gradient back."""
    conv, pool = _pair(1, 1, 1, "valid", 2, 1, (2, 4), False, "float32", 0, False)
    conv.set_weights([np.ones((1, 1, 1, 1))])  # z = x
    fused, _ = _pair(1, 1, 1, "valid", 2, 1, (2, 4), False, "float32", 0, False)
    fused.set_weights(conv.get_weights())
    x = np.array([[[np.nan, 1, 3, 2], [5, 0, 3, np.nan]]], "float32")[..., None]
    expected = pool.forward(conv.forward(x, training=True), training=True)
    got = fused.forward_pooled(x, (2, 2), training=True)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[0, 0, 0, 0]) and got[0, 0, 1, 0] == 3
    d = np.ones_like(got)
    conv.needs_input_gradient = fused.needs_input_gradient = True
    np.testing.assert_array_equal(fused.backward_pooled(d), conv.backward(pool.backward(d)))
    ties = -np.abs(np.arange(8, dtype="float32")).reshape(1, 2, 4, 1)  # every z ≤ 0
    ties[0, 0, 2:] = 3.0  # the right-hand window: a tie at 3
    fused.forward_pooled(ties, (2, 2), training=True)
    dx = fused.backward_pooled(d)
    assert dx[0, :, :2].sum() == 0  # a window pooled to 0: no gradient
    assert dx[0, 0, 2, 0] == 1 and dx[0, 0, 3, 0] == 0  # the tie: the first position only


@pytest.mark.parametrize("input_gradient", [True, False])
def test_pooled_convolution_gradients(float64, rng, input_gradient):
    """``backward_pooled`` against central differences of C = Σ forward_pooled(x) ⊙ d, away from
    relu's kink and from ties inside a window; with ∂C/∂(input) wanted (the products), and
    without (the first convolution's winners alone)."""
    conv = layers.Conv2D(3, 3, padding="same", activation="relu", bias_initializer="ones")
    conv.build((None, 6, 5, 1))
    conv.needs_input_gradient = input_gradient
    x = rng.normal(size=(2, 6, 5, 1))
    conv.forward(x, training=True)
    z = conv.z[:, :6, :4].reshape(2, 3, 2, 2, 2, 3)  # (sample, i, u, j, v, filter)
    windows = np.sort(z.transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 2, 3, 4), axis=-1)
    assert np.all(windows[..., -1] - windows[..., -2] > 1e-4)  # no tie near
    assert np.all(np.abs(conv.z) > 1e-4)  # and no kink
    d = rng.normal(size=(2, 3, 2, 3))

    def C():
        return float((conv.forward_pooled(x, (2, 2), training=True) * d).sum())

    C()
    dx = conv.backward_pooled(d)
    grads = {name: g.copy() for name, g in conv.grads.items()}
    for name, p in conv.params.items():
        assert relative_error(grads[name], numerical_gradient(C, p)) < 1e-6, name
    if input_gradient:
        assert relative_error(dx, numerical_gradient(C, x)) < 1e-6
    else:
        assert dx is None


# ---- which pairs a model runs as one step --------------------------------------------------------


def _convnet(**conv_options):
    inputs = glassnet.Input((12, 12, 1))
    h = layers.Conv2D(4, 3, activation="relu", **conv_options)(inputs)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Conv2D(6, 3, activation="relu")(h)
    h = layers.MaxPooling2D()(h)
    outputs = layers.Dense(3, activation="softmax")(layers.Flatten()(h))
    return glassnet.Model(inputs, outputs)


@kernels_on
def test_a_model_runs_each_convolution_with_the_max_pooling_after_it():
    pairs = [("conv2d", "max_pooling2d"), ("conv2d_1", "max_pooling2d_1")]
    assert _convnet().fused_layers() == pairs


@kernels_on
@pytest.mark.parametrize(
    "why", ["tanh", "average", "overlapping", "same", "read twice", "model output", "shared"]
)
def test_the_pairs_that_stay_two_steps(why):
    """Only relu (it commutes with max), pools that tile ("valid", strides = pool size), and a
    convolution output that the pooling alone reads, from layers called once."""
    inputs = glassnet.Input((8, 8, 2))
    conv = layers.Conv2D(3, 3, activation="tanh" if why == "tanh" else "relu")
    h = conv(inputs)
    pool = {
        "average": layers.AveragePooling2D(2),
        "overlapping": layers.MaxPooling2D(2, strides=1),
        "same": layers.MaxPooling2D(4, padding="same"),
    }.get(why, layers.MaxPooling2D(2))
    out = layers.Flatten()(pool(h))
    outputs = [out]
    if why == "read twice":
        outputs.append(layers.Flatten()(h))
    elif why == "model output":
        outputs.append(h)
    elif why == "shared":  # both layers called twice
        outputs.append(layers.Flatten()(pool(conv(inputs))))
    model = glassnet.Model(inputs, outputs)
    assert model.fused_layers() == []


@kernels_on
def test_training_and_predictions_pooled_equal_layer_by_layer():
    """Steps that run the pairs as one give the weights that steps running every layer on its
    own (``record_layers``, what the glass box's recorded steps do) give, to float rounding
    (the first convolution's ∂C/∂W is summed in another order); predictions likewise."""
    rng = np.random.default_rng(0)
    x = rng.random((96, 12, 12, 1)).astype("float32")
    y = rng.integers(0, 3, 96)
    weights = []
    for record in (False, True):
        glassnet.utils.set_random_seed(1)
        model = _convnet()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.record_layers = record
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for got, expected in zip(*weights):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # predict runs the pairs as one; calling the model runs every layer on its own
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x), rtol=1e-6, atol=1e-7)


@kernels_on
def test_the_glass_box_records_every_layer_of_a_pooled_convolution():
    """``TraceRecorder``'s steps run layer by layer, so the trace shows the convolution's z, a,
    ∂C/∂a and ∂C/∂z, and the ∂C/∂(input) the pooling sent back; the steps between run the pairs
    as one again."""
    from glassnet.glassbox import TraceRecorder

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 12, 12, 1)).astype("float32"), rng.integers(0, 3, 64)
    model = _convnet()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    plans = []
    step = model.train_step
    model.train_step = lambda *a, **k: (plans.append(model.record_layers), step(*a, **k))[1]
    recorder = TraceRecorder(every=2)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[recorder])
    assert plans == [True, False, True, False]
    assert model.record_layers is False
    conv = recorder.traces[0][2].layers[0]
    assert conv.name == "conv2d" and conv.z is not None and conv.a is not None
    assert conv.dC_dz is not None and conv.dC_dz.shape == conv.z.shape
    pool = recorder.traces[0][2].layers[1]
    assert pool.dC_dx.shape == conv.a.shape  # ∂C/∂(its input): the convolution's ∂C/∂a
    np.testing.assert_array_equal(pool.dC_dx, conv.dC_da)


@kernels_on
def test_the_profiler_says_which_layers_ran_as_one():
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 12, 12, 1)).astype("float32"), rng.integers(0, 3, 32)
    model = _convnet()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    profiler = glassnet.callbacks.Profiler()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[profiler])
    report = profiler.report()
    assert "(conv2d and max_pooling2d run as one step: both times are on conv2d's line)" in report
    conv_line = next(line for line in report.splitlines() if line.startswith("conv2d "))
    assert float(conv_line.split()[1]) > 0  # the pooled forward pass is timed on its line


def test_with_the_kernels_off_a_pair_runs_as_its_two_layers(monkeypatch):
    """``GLASSNET_KERNELS=numpy`` plans no pair (``fused_layers`` is empty); and a model planned
    with the kernels on runs its pairs as the two layers, the deck's form, if they are turned off
    afterwards: the same weights as every layer on its own, bit for bit, and the convolution's
    z and a kept."""
    monkeypatch.setattr(kernels, "ENABLED", False)
    assert _convnet().fused_layers() == []
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 12, 12, 1)).astype("float32"), rng.integers(0, 3, 64)
    weights = []
    for record in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", True)
        glassnet.utils.set_random_seed(1)
        model = _convnet()
        assert model.fused_layers()
        monkeypatch.setattr(kernels, "ENABLED", False)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.record_layers = record
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        weights.append(model.get_weights())
        conv = next(layer for layer in model.layers if isinstance(layer, layers.Conv2D))
        assert conv.z.shape == (16, 10, 10, 4)
    for got, expected in zip(*weights):
        np.testing.assert_array_equal(got, expected)
