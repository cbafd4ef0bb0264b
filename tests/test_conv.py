"""The CNN layers: backward passes against central differences over random shapes, forward passes
against plain loops over every position, Keras's kernel layout, and bad input."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import glassnet
from glassnet import layers
from tests.layer_checks import (
    check_layer,
    in_float64,
    reused_between_calls,
    trains_as_with_fresh_arrays,
)

# ---- a plain reference: loops over every position, TensorFlow's padding rule ---------------------


def _same_pads(size, k, s, d):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def conv2d_reference(x, kernel, bias, strides, padding, dilation):
    """Keras's Conv2D written as loops: kernel (kh, kw, c_in, filters)."""
    kh, kw, _, filters = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    if padding == "same":
        top, bottom = _same_pads(x.shape[1], kh, sh, dh)
        left, right = _same_pads(x.shape[2], kw, sw, dw)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, filters))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                for f in range(filters):
                    total = bias[f]
                    for u in range(kh):
                        for v in range(kw):
                            pixel = x[n, i * sh + u * dh, j * sw + v * dw, :]
                            total += pixel @ kernel[u, v, :, f]
                    out[n, i, j, f] = total
    return out


def pool2d_reference(x, pool, strides, padding, reduce):
    """Max or average pooling as loops; "same" windows use only the inputs they cover."""
    (ph, pw), (sh, sw) = pool, strides
    top = left = 0
    h, w = x.shape[1:3]
    if padding == "same":
        top, _ = _same_pads(h, ph, sh, 1)
        left, _ = _same_pads(w, pw, sw, 1)
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - top, j * sw - left
            window = x[:, max(r0, 0) : r0 + ph, max(c0, 0) : c0 + pw, :]
            out[:, i, j, :] = window.max(axis=(1, 2)) if reduce == "max" else window.mean((1, 2))
    return out


geometry = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 2),
        "height": st.integers(1, 7),
        "width": st.integers(1, 7),
        "c_in": st.integers(1, 3),
        "filters": st.integers(1, 3),
        "kernel": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "dilation": st.sampled_from([(1, 1), (2, 2), (1, 2)]),
        "padding": st.sampled_from(["valid", "same"]),
        "seed": st.integers(0, 2**16),
    }
)


def _conv_layer(g, activation=None, use_bias=True):
    # The weights from the example's seed too: hypothesis replays the same example.
    glassnet.utils.set_random_seed(g["seed"])
    strides = g["strides"] if g["dilation"] == (1, 1) else (1, 1)
    layer = layers.Conv2D(
        g["filters"], g["kernel"], strides=strides, padding=g["padding"],
        dilation_rate=g["dilation"], activation=activation, use_bias=use_bias,
        bias_initializer="random_normal",
    )  # fmt: skip
    span = [d * (k - 1) + 1 for k, d in zip(g["kernel"], g["dilation"])]
    if g["padding"] == "valid":
        assume(g["height"] >= span[0] and g["width"] >= span[1])
    layer.build((None, g["height"], g["width"], g["c_in"]))
    return layer, strides


# ---- Conv2D --------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(g=geometry, activation=st.sampled_from([None, "tanh", "sigmoid"]), use_bias=st.booleans())
@in_float64
def test_conv2d_gradients(g, activation, use_bias):
    rng = np.random.default_rng(g["seed"])
    layer, _ = _conv_layer(g, activation, use_bias)
    x = rng.normal(size=(g["batch"], g["height"], g["width"], g["c_in"]))
    check_layer(layer, x, rng)


@settings(max_examples=30)
@given(g=geometry)
@in_float64
def test_conv2d_forward_matches_plain_loops(g):
    rng = np.random.default_rng(g["seed"])
    layer, strides = _conv_layer(g)
    x = rng.normal(size=(g["batch"], g["height"], g["width"], g["c_in"]))
    kernel, bias = layer.get_weights()
    expected = conv2d_reference(x, kernel, bias, strides, g["padding"], g["dilation"])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    g=geometry,
    batch=st.integers(1, 9),
    activation=st.sampled_from([None, "relu", "tanh"]),
    float64=st.booleans(),
)
def test_blocks_of_samples_give_the_one_products_numbers(g, batch, activation, float64):
    """With the kernels on, a convolution multiplies block by block (each thread a share of the
    samples, a few at a time); with them off, as one product for the whole batch, the deck's
    form. Blocks of one sample here: z, a and ∂C/∂(input) agree row for row, ∂C/∂W and ∂C/∂b
    (sums of the blocks' sums) to float rounding."""
    from glassnet import kernels
    from glassnet.layers import convolutional

    if not kernels.ENABLED:
        pytest.skip("kernels are off (GLASSNET_KERNELS=numpy): only the one product runs")
    dtype = "float64" if float64 else "float32"
    tolerance = 1e-12 if float64 else 2e-5
    layer, _ = _conv_layer(g, activation)
    rng = np.random.default_rng(g["seed"])
    x = rng.normal(size=(batch, g["height"], g["width"], g["c_in"])).astype(dtype)
    weights = [w.astype(dtype) for w in layer.get_weights()]
    calls = []
    products = convolutional.matmul

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return products(*args, **kwargs)

    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(convolutional, "BLOCK_BYTES", 1)  # one sample a block
        patch.setattr(convolutional, "matmul", counted)
        for blocks in (True, False):
            patch.setattr(kernels, "ENABLED", blocks)
            glassnet.config.set_floatx(dtype)
            try:
                built, _ = _conv_layer(g, activation)
            finally:
                glassnet.config.set_floatx("float32")
            built.set_weights(weights)
            built.needs_input_gradient = True
            calls.clear()
            a = built.forward(x, training=True)
            forward_products = len(calls)
            dx = built.backward(np.random.default_rng(1).normal(size=a.shape).astype(dtype))
            results[blocks] = (built.z, a, dx, *built.grads.values())
            assert forward_products == (batch if blocks else 1)
    for got, expected in zip(results[True], results[False]):
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


def test_blocks_multiply_on_one_blas_thread_each(rng):
    """The threads' blocks run side by side, each product on one BLAS thread: MKL's products ask
    for one themselves (``backend.blas_threads``); NumPy's OpenBLAS is told so for the whole
    spread, and given its threads back after (two threads each calling a two-thread OpenBLAS
    made a W5 step 167 ms instead of 15, ``GLASSNET_BLAS=numpy``)."""
    from threadpoolctl import ThreadpoolController

    from glassnet import backend, kernels
    from glassnet.layers import convolutional

    if not kernels.ENABLED or backend.num_threads() < 2:
        pytest.skip("one thread, or the kernels off: the batch multiplies in one go")

    def blas_threads():  # NumPy's own BLAS's and MKL's (another library's are not ours)
        found = ThreadpoolController().select(user_api="blas").lib_controllers
        return [lib.num_threads for lib in found
                if "numpy" in lib.filepath or lib.internal_api == "mkl"]  # fmt: skip

    layer = layers.Conv2D(4, 3)
    layer.build((None, 6, 6, 2))
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    layer.forward(x, training=True)  # MKL loaded, where it is installed
    before = blas_threads()
    seen = []
    products = convolutional.matmul

    def watched(*args, **kwargs):
        seen.append((backend.blas_threads(), blas_threads()))
        return products(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(convolutional, "BLOCK_BYTES", 1)  # one sample a block, a share a thread
        patch.setattr(convolutional, "matmul", watched)
        layer.forward(x, training=True)
    assert len(seen) == 8
    assert all(asked == 1 and all(n == 1 for n in libraries) for asked, libraries in seen)
    assert blas_threads() == before


def test_conv2d_relu_gradients_off_the_kink(float64, rng):
    layer = layers.Conv2D(4, 3, padding="same", activation="relu", bias_initializer="ones")
    layer.build((None, 5, 6, 2))
    x = rng.normal(size=(2, 5, 6, 2))
    layer.forward(x)
    assert np.abs(layer.z).min() > 1e-5  # finite differences must not cross z = 0
    check_layer(layer, x, rng)


def test_keras_kernel_is_a_view_of_W(rng):
    """Keras's kernel (kh, kw, c_in, filters) is W (filters, K) folded: same memory."""
    layer = layers.Conv2D(5, (2, 3))
    layer.build((None, 8, 8, 4))
    W = layer.params["W"]
    assert W.shape == (5, 2 * 3 * 4)  # one row per filter: the deck's W
    assert layer.kernel.shape == (2, 3, 4, 5)
    assert np.shares_memory(np.asarray(layer.kernel), W)
    kernel = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    layer.set_weights([kernel, np.zeros(5)])
    assert np.array_equal(layer.get_weights()[0], kernel)
    # row f of W is filter f's window, in the order the window is read: (kh, kw, c_in)
    assert np.array_equal(W[3], kernel[..., 3].reshape(-1))
    layer.kernel.assign(np.ones((2, 3, 4, 5)))
    assert (W == 1).all()


def test_glorot_fans_are_keras_conv_fans():
    """The initializer draws in Keras's shape: fan_in = kh·kw·c_in, fan_out = kh·kw·filters."""
    glassnet.utils.set_random_seed(0)
    layer = layers.Conv2D(64, 3)
    layer.build((None, 12, 12, 32))
    limit = np.sqrt(6 / (9 * 32 + 9 * 64))
    W = layer.params["W"]
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.95 * limit


def test_conv1d_gradients_and_causal_padding(float64, rng):
    for padding in ("valid", "same", "causal"):
        for dilation in (1, 2):
            layer = layers.Conv1D(3, 3, padding=padding, dilation_rate=dilation,
                                  activation="tanh", bias_initializer="random_normal")  # fmt: skip
            layer.build((None, 9, 2))
            x = rng.normal(size=(2, 9, 2))
            out = layer(x)
            assert out.shape == ((2, 9 - 2 * dilation, 3) if padding == "valid" else (2, 9, 3))
            check_layer(layer, x, rng)
    # causal: output t sees inputs up to t only
    layer = layers.Conv1D(1, 3, padding="causal")
    layer.build((None, 6, 1))
    x = rng.normal(size=(1, 6, 1))
    changed = x.copy()
    changed[0, 4] += 1
    assert np.array_equal(layer(x)[0, :4], layer(changed)[0, :4])
    assert layers.Conv1D(2, 3).get_config()["kernel_size"] == [3]


def test_conv1d_forward_is_conv2d_on_one_row(float64, rng):
    one = layers.Conv1D(3, 2, strides=2)
    one.build((None, 7, 2))
    two = layers.Conv2D(3, (1, 2), strides=(1, 2))
    two.build((None, 1, 7, 2))
    kernel, bias = one.get_weights()
    two.set_weights([kernel[None], bias])
    x = rng.normal(size=(3, 7, 2))
    np.testing.assert_allclose(one(x), two(x[:, None])[:, 0])


# ---- Conv3D: the same neuron on a volume's windows -----------------------------------------------


def conv3d_reference(x, kernel, bias, strides, padding, dilation):
    """Keras's Conv3D written as loops: kernel (kd, kh, kw, c_in, filters)."""
    size = kernel.shape[:3]
    if padding == "same":
        x = np.pad(x, ((0, 0), *(_same_pads(n, k, s, d)
                                 for n, k, s, d in zip(x.shape[1:4], size, strides, dilation)),
                       (0, 0)))  # fmt: skip
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(x.shape[1:4], size, strides,
                                                              dilation)]  # fmt: skip
    z = np.zeros((x.shape[0], *out, kernel.shape[-1])) + bias
    for position in np.ndindex(*out):
        for offset in np.ndindex(*size):
            at = tuple(p * s + o * d for p, s, o, d in zip(position, strides, offset, dilation))
            z[(slice(None), *position)] += x[(slice(None), *at)] @ kernel[offset]
    return z


volumes = st.fixed_dictionaries(
    {
        "shape": st.tuples(*(st.integers(1, n) for n in (2, 5, 5, 5, 2))),  # (batch, d, h, w, c)
        "filters": st.integers(1, 3),
        "kernel": st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)),
        "strides": st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2)),
        "dilated": st.booleans(),
        "padding": st.sampled_from(["valid", "same"]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=25)
@given(g=volumes, activation=st.sampled_from([None, "tanh"]))
@in_float64
def test_conv3d_forward_is_the_loops_and_backward_the_finite_differences(g, activation):
    """A filter sees a kd × kh × kw window through every channel: z = W·window + b at each
    position, against plain loops; ∂C/∂x, ∂C/∂W and ∂C/∂b against central differences."""
    rng = np.random.default_rng(g["seed"])
    glassnet.utils.set_random_seed(g["seed"])
    dilation, strides = ((2, 1, 1), (1, 1, 1)) if g["dilated"] else ((1, 1, 1), g["strides"])
    span = [d * (k - 1) + 1 for k, d in zip(g["kernel"], dilation)]
    if g["padding"] == "valid":
        assume(all(n >= k for n, k in zip(g["shape"][1:4], span)))
    layer = layers.Conv3D(g["filters"], g["kernel"], strides=strides, padding=g["padding"],
                          dilation_rate=dilation, activation=activation,
                          bias_initializer="random_normal")  # fmt: skip
    layer.build((None, *g["shape"][1:]))
    x = rng.normal(size=g["shape"])
    kernel, bias = layer.get_weights()
    expected = conv3d_reference(x, kernel, bias, strides, g["padding"], dilation)
    layer.forward(x)
    np.testing.assert_allclose(layer.z, expected, rtol=1e-12, atol=1e-12)
    check_layer(layer, x, rng)


def test_conv3d_keras_layout_and_bad_input(rng):
    layer = layers.Conv3D(4, (3, 2, 1), padding="same")
    layer.build((None, 5, 6, 7, 2))
    assert layer.params["W"].shape == (4, 3 * 2 * 1 * 2)  # a row per filter, as Conv2D's
    assert layer.get_weights()[0].shape == (3, 2, 1, 2, 4)  # Keras's (kd, kh, kw, c_in, filters)
    assert layer.compute_output_shape((None, 5, 6, 7, 2)) == (None, 5, 6, 7, 4)
    assert layers.Conv3D.from_config(layer.get_config()).kernel_size == (3, 2, 1)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, depth, rows, cols, "):
        layer(rng.normal(size=(2, 6, 7, 2)))


# ---- pooling -------------------------------------------------------------------------------------

pools = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 2),
        "height": st.integers(1, 7),
        "width": st.integers(1, 7),
        "channels": st.integers(1, 3),
        "pool": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "strides": st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
        "padding": st.sampled_from(["valid", "same"]),
        "reduce": st.sampled_from(["max", "average"]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=60)
@given(p=pools)
@in_float64
def test_pooling_forward_and_gradients(p):
    if p["padding"] == "valid":
        assume(p["height"] >= p["pool"][0] and p["width"] >= p["pool"][1])
    kind = layers.MaxPooling2D if p["reduce"] == "max" else layers.AveragePooling2D
    layer = kind(p["pool"], strides=p["strides"], padding=p["padding"])
    layer.build((None, p["height"], p["width"], p["channels"]))
    rng = np.random.default_rng(p["seed"])
    x = rng.normal(size=(p["batch"], p["height"], p["width"], p["channels"]))
    strides = p["strides"] or p["pool"]
    expected = pool2d_reference(x, p["pool"], strides, p["padding"], p["reduce"])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)
    check_layer(layer, x, rng)


def test_max_pooling_sends_the_gradient_to_the_first_winner():
    x = np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1)
    layer = layers.MaxPooling2D()
    layer.build((None, 2, 2, 1))
    assert layer(x).item() == 3
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    assert dx[0, :, :, 0].tolist() == [[0, 1], [0, 0]]  # the first 3 in reading order


def test_one_dimensional_pooling(float64, rng):
    x = rng.normal(size=(2, 7, 3))
    for layer, expected in (
        (layers.MaxPooling1D(), x[:, :6].reshape(2, 3, 2, 3).max(axis=2)),
        (layers.AveragePooling1D(3, strides=2), np.stack([x[:, i : i + 3].mean(1)
                                                          for i in (0, 2, 4)], 1)),
    ):  # fmt: skip
        layer.build((None, 7, 3))
        np.testing.assert_allclose(layer(x), expected)
        check_layer(layer, x, rng)


@pytest.mark.parametrize(
    "kind, reduce",
    [
        (layers.GlobalMaxPooling2D, np.max),
        (layers.GlobalAveragePooling2D, np.mean),
        (layers.GlobalMaxPooling1D, np.max),
        (layers.GlobalAveragePooling1D, np.mean),
    ],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(float64, rng, kind, reduce, keepdims):
    shape = (3, 4, 5, 2) if kind.rank == 2 else (3, 6, 2)
    x = rng.normal(size=shape)
    layer = kind(keepdims=keepdims)
    layer.build((None, *shape[1:]))
    axes = tuple(range(1, len(shape) - 1))
    np.testing.assert_allclose(layer(x), reduce(x, axis=axes, keepdims=keepdims))
    assert layer(x).shape == layer.compute_output_shape((3, *shape[1:]))
    check_layer(layer, x, rng)


# ---- batch normalization -------------------------------------------------------------------------


@settings(max_examples=25)
@given(
    shape=st.sampled_from([(4, 3), (2, 3, 4, 2), (3, 5, 2), (2, 2, 2, 3)]),
    center=st.booleans(),
    scale=st.booleans(),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
)
@in_float64
def test_batch_normalization_gradients(shape, center, scale, training, seed):
    rng = np.random.default_rng(seed)
    layer = layers.BatchNormalization(center=center, scale=scale,
                                      gamma_initializer="random_normal",
                                      beta_initializer="random_normal")  # fmt: skip
    layer.build((None, *shape[1:]))
    x = rng.normal(size=shape) * 3 + 1
    check_layer(layer, x, rng, training=training)


def test_batch_normalization_training_and_inference(float64, rng):
    layer = layers.BatchNormalization()
    layer.build((None, 5, 5, 3))
    assert layer.get_config()["momentum"] == 0.99 and layer.get_config()["epsilon"] == 1e-3
    assert [v.name for v in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [v.name for v in layer.non_trainable_weights] == ["moving_mean", "moving_variance"]
    x = rng.normal(size=(8, 5, 5, 3)) * 2 + 3
    y = layer(x, training=True)
    # each channel standardized over the batch and the positions
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), x.var((0, 1, 2)) / (x.var((0, 1, 2)) + 1e-3))
    # the moving statistics took 1% of the batch's
    np.testing.assert_allclose(layer.params["moving_mean"], 0.01 * x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(layer.params["moving_variance"], 0.99 + 0.01 * x.var(axis=(0, 1, 2)))
    # inference uses the moving statistics, and changes nothing
    before = layer.params["moving_mean"].copy()
    mm, mv = layer.params["moving_mean"], layer.params["moving_variance"]
    np.testing.assert_allclose(layer(x), (x - mm) / np.sqrt(mv + 1e-3))
    assert np.array_equal(layer.params["moving_mean"], before)
    # a frozen layer uses them even while training (Keras 3)
    layer.trainable = False
    np.testing.assert_allclose(layer(x, training=True), (x - mm) / np.sqrt(mv + 1e-3))


# ---- shape layers and spatial dropout ------------------------------------------------------------


def test_zero_padding_reshape_and_spatial_dropout(float64, rng):
    x = rng.normal(size=(2, 3, 4, 2))
    padding = layers.ZeroPadding2D(((1, 2), (0, 1)))
    out = padding(x)
    assert out.shape == (2, 6, 5, 2) and np.array_equal(out[:, 1:4, :4], x)
    check_layer(padding, x, rng)
    assert layers.ZeroPadding2D(2).get_config()["padding"] == [[2, 2], [2, 2]]

    reshape = layers.Reshape((-1, 2))
    reshape.build((None, 3, 4, 2))
    assert reshape.compute_output_shape((None, 3, 4, 2)) == (None, 12, 2)
    check_layer(reshape, x, rng)

    drop = layers.SpatialDropout2D(0.5, seed=1)
    drop.build((None, 3, 4, 2))
    y = drop(x, training=True)
    kept = (y != 0).all(axis=(1, 2)) | (y == 0).all(axis=(1, 2))
    assert kept.all()  # whole feature maps are kept or dropped
    np.testing.assert_allclose(y[(y != 0)], 2 * x[(y != 0)])
    assert np.array_equal(drop(x), x)  # inference: unchanged


# ---- bad input, with messages that say what to do ------------------------------------------------


def test_flat_images_into_conv2d_say_to_reshape():
    model_input = glassnet.Input((784,))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, rows, cols, channels"
                       r"\); received \(None, 784\)\. Reshape flat images first: "
                       r"x\.reshape\(-1, 28, 28, 1\)"):  # fmt: skip
        layers.Conv2D(8, 3)(model_input)
    model = glassnet.Sequential([glassnet.Input((28, 28, 1)), layers.Conv2D(2, 3)])
    with pytest.raises(
        ValueError,
        match=r"\(5, 784\), but the model expects \(None, 28, 28, 1\)\. "
        r"The sizes agree: reshape each sample first, x\.reshape\(-1, 28, 28, 1\)",
    ):
        model.predict(np.zeros((5, 784)), verbose=0)
    with pytest.raises(
        ValueError, match=r"Add a channel axis to grayscale images: x\[\.\.\., None\]"
    ):
        layers.Conv2D(8, 3)(glassnet.Input((28, 28)))


def test_kernel_larger_than_its_padded_input():
    with pytest.raises(ValueError, match=r"its window \(5, 5\) .* is larger than its valid-padded "
                       r"input \(None, 4, 4, 1\)"):  # fmt: skip
        layers.Conv2D(1, 5)(glassnet.Input((4, 4, 1)))
    layers.Conv2D(1, 5, padding="same")(glassnet.Input((4, 4, 1)))  # zeros around make room
    with pytest.raises(ValueError, match=r"its pool \(3, 3\) is larger than its input"):
        layers.MaxPooling2D(3)(glassnet.Input((2, 2, 1)))


def test_channel_count_that_does_not_match_the_built_layer(rng):
    layer = layers.Conv2D(4, 3)
    layer.build((None, 8, 8, 3))
    with pytest.raises(ValueError, match=r"built for 3 input channels \(its kernel is "
                       r"\(3, 3, 3, 4\)\); received inputs with 1 channels"):  # fmt: skip
        layer(rng.normal(size=(2, 8, 8, 1)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: layers.Conv2D(0, 3), r"Expected a strictly positive value\. Received filters=0"),
        (lambda: layers.Conv2D(2, (3, 0)), r"kernel_size=\(3, 0\)"),
        (lambda: layers.Conv2D(2, 3, padding="full"), r"Received: padding='full'"),
        (lambda: layers.Conv2D(2, 3, padding="causal"), r"Received: padding='causal'"),
        (lambda: layers.Conv2D(2, 3, strides=2, dilation_rate=2), r"`strides > 1` not supported"),
        (lambda: layers.Conv2D(2, 3, data_format="channels_first"), r"channels last"),
        (lambda: layers.Conv2D(2, 3, groups=2), r"groups=2"),
        (lambda: layers.BatchNormalization(momentum=2), r"momentum=2"),
        (lambda: layers.Reshape((0, 2)), r"Expected positive sizes"),
        (lambda: layers.ZeroPadding2D((1, 2, 3)), r"padding=\(1, 2, 3\)"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make()


def test_reshape_refuses_a_different_size():
    with pytest.raises(ValueError, match=r"cannot reshape inputs of shape \(None, 10\)"):
        layers.Reshape((3, 3))(glassnet.Input((10,)))


# ---- inference in pieces -------------------------------------------------------------------------


def test_inference_in_pieces_gives_the_whole_batchs_numbers(rng, monkeypatch):
    """predict and evaluate cut a large batch into pieces sized for the cache and share them
    between threads; the predictions, the loss read from the output layer's z (case 1) and the
    metrics are the whole batch's."""
    glassnet.utils.set_random_seed(3)
    model = glassnet.Sequential([glassnet.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                                 layers.MaxPooling2D(), layers.Flatten(),
                                 layers.Dense(3, activation="softmax")])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(300, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 300)
    whole = model.predict(x, batch_size=300, verbose=0)
    loss, accuracy = model.evaluate(x, y, batch_size=300, verbose=0)
    monkeypatch.setattr(type(model), "INFERENCE_PIECE", 4 * 6 * 6 * 7)  # pieces of 7 images
    monkeypatch.setattr(type(model), "INFERENCE_ROWS", 1)
    np.testing.assert_allclose(model.predict(x, batch_size=300, verbose=0), whole, rtol=1e-6)
    loss_in_pieces, accuracy_in_pieces = model.evaluate(x, y, batch_size=300, verbose=0)
    assert loss_in_pieces == pytest.approx(loss, rel=1e-6)
    assert accuracy_in_pieces == accuracy


def test_inference_pieces_hold_at_least_inference_rows_samples(rng, monkeypatch):
    """A CNN's large first feature maps would make pieces of a few images each, and every piece
    costs each layer a call: a piece holds at least ``INFERENCE_ROWS`` samples."""
    model = glassnet.Sequential([glassnet.Input((28, 28, 1)), layers.Conv2D(32, 3),
                                 layers.Flatten(), layers.Dense(2)])  # fmt: skip
    model.compile(loss="mse")
    sizes = []
    run = type(model)._run

    def counted(self, xs, *args, **kwargs):
        sizes.append(len(xs[0]))
        return run(self, xs, *args, **kwargs)

    monkeypatch.setattr(type(model), "_run", counted)
    x = rng.normal(size=(1000, 28, 28, 1)).astype("float32")
    whole = model.predict(x, batch_size=1000, verbose=0)
    assert sum(sizes) == 1000 and 1 < len(sizes) <= 1000 // type(model).INFERENCE_ROWS
    sizes.clear()
    monkeypatch.setattr(type(model), "INFERENCE_ROWS", 1)  # the output's size alone decides
    # to float rounding: pieces of other row counts (OpenBLAS: 3e-6 relative on a 0.04)
    np.testing.assert_allclose(model.predict(x, batch_size=1000, verbose=0), whole, rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    assert sum(sizes) == 1000 and len(sizes) > 1000 // 64


@pytest.mark.parametrize("activation", ["relu", None])  # None: z is the output itself
@pytest.mark.parametrize("kernel_size", [3, 1])  # 1: the windows are the input, no copy
def test_working_arrays_are_reused_and_change_nothing(activation, kernel_size, monkeypatch):
    """A convolution keeps its working arrays (the windows side by side, z, ∂C/∂windows) from
    one batch to the next and trains to the same weights, bit for bit, as with new arrays for
    every batch; what it returned for one batch is not overwritten by the next."""
    from glassnet.layers import convolutional

    def make_model():
        return glassnet.Sequential([
            layers.Input((7, 7, 2)), layers.Conv2D(3, 2, activation="tanh"),
            layers.Conv2D(4, kernel_size, activation=activation), layers.Flatten(),
            layers.Dense(2),
        ])  # fmt: skip

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 7, 7, 2)), rng.normal(size=(40, 2))
    model = trains_as_with_fresh_arrays(make_model, convolutional, x, y, monkeypatch)
    x = np.random.default_rng(5).normal(size=(8, 6, 6, 3)).astype("float32")
    assert reused_between_calls(model.layers[1], x, ["patches", "z_rows"]) == (
        ["patches"] * (kernel_size == 3) + ["z_rows"] * (activation == "relu")
    )


# ---- transposed convolutions: a convolution's backward pass used forward -----------------------


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(1, 4),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same"]),
    channels=st.tuples(st.integers(1, 2), st.integers(1, 3)),
    activation=st.sampled_from([None, "tanh"]),
    seed=st.integers(0, 2**16),
)
@in_float64
def test_transposed_convolution_is_the_adjoint_of_the_convolution(
    size, kernel, stride, dilation, padding, channels, activation, seed
):
    """⟨conv(u), x⟩ = ⟨u, conv_transpose(x)⟩ for every u and x, with the kernel read both ways
    (Keras's (kh, kw, filters, c_in) for the transpose is the convolution's (kh, kw, c_in,
    filters) with filters ↔ c_in) — and its backward pass against central differences."""
    assume(stride == 1 or dilation == 1)
    rng = np.random.default_rng(seed)
    c_in, filters = channels
    layer = layers.Conv2DTranspose(filters, kernel, strides=stride, padding=padding,
                                   dilation_rate=dilation, use_bias=False)  # fmt: skip
    x = rng.normal(size=(2, size, size + 1, c_in))
    layer.build((None, *x.shape[1:]))
    y = layer(x)
    u = rng.normal(size=y.shape)
    K = layer.get_weights()[0]  # (kh, kw, filters, c_in): a Conv2D kernel from filters to c_in
    conv_u = conv2d_reference(u, K, np.zeros(c_in), (stride,) * 2, padding, (dilation,) * 2)
    assert conv_u.shape == x.shape
    np.testing.assert_allclose((conv_u * x).sum(), (u * y).sum(), rtol=1e-10)
    graded = layers.Conv2DTranspose(filters, kernel, strides=stride, padding=padding,
                                    dilation_rate=dilation, activation=activation,
                                    bias_initializer="random_normal")  # fmt: skip
    graded.build((None, *x.shape[1:]))
    check_layer(graded, x, rng)


def test_transposed_convolutions_by_hand_and_their_shapes(float64, rng):
    up = layers.Conv1DTranspose(1, 2, strides=2, use_bias=False)
    up.build((None, 3, 1))
    up.set_weights([np.array([1.0, 10.0]).reshape(2, 1, 1)])
    np.testing.assert_array_equal(up(np.array([[1.0, 2.0, 3.0]]).reshape(1, 3, 1))[0, :, 0],
                                  [1, 10, 2, 20, 3, 30])  # fmt: skip
    assert layers.Conv2DTranspose(4, 3, strides=2, padding="same").compute_output_shape(
        (None, 7, 7, 8)) == (None, 14, 14, 4)  # fmt: skip
    assert layers.Conv2DTranspose(4, 3, strides=2).compute_output_shape((None, None, 7, 8)) == (
        None, None, 15, 4)  # fmt: skip
    with pytest.raises(NotImplementedError, match=r"output_padding=1\) is not supported"):
        layers.Conv2DTranspose(2, 3, output_padding=1)
    model = glassnet.Sequential([glassnet.Input((4, 2)), layers.Conv1DTranspose(3, 3, strides=2,
                                 padding="same")])  # fmt: skip
    check_layer(model.layers[0], rng.normal(size=(2, 4, 2)), rng)
