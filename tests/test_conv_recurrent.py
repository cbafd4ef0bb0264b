"""ConvLSTM1D and ConvLSTM2D: backpropagation through time and through the windows against
central differences, for every option; the layer as an LSTM at every position, checked by hand;
Keras's layouts and configs; bad input. (Keras's own numbers: the conv_lstm fixture in
test_keras_files.)"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet
from glassnet import layers
from tests.gradcheck import numerical_gradient, relative_error
from tests.layer_checks import check_layer, in_float64


@settings(max_examples=25, deadline=None)
@given(
    rank=st.sampled_from([1, 2, 3]),
    batch=st.integers(1, 2),
    steps=st.integers(1, 3),
    size=st.integers(3, 5),
    c_in=st.integers(1, 2),
    filters=st.integers(1, 2),
    kernel=st.integers(1, 3),
    strides=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same"]),
    return_sequences=st.booleans(),
    go_backwards=st.booleans(),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
@in_float64
def test_backpropagation_through_time_and_windows(rank, batch, steps, size, c_in, filters, kernel,
                                                  strides, padding, return_sequences,
                                                  go_backwards, use_bias, seed):  # fmt: skip
    rng = np.random.default_rng(seed)
    glassnet.utils.set_random_seed(seed)
    kind = {1: layers.ConvLSTM1D, 2: layers.ConvLSTM2D, 3: layers.ConvLSTM3D}[rank]
    if rank == 3:  # a volume: kept small, its windows are kernel³
        size, kernel = 3, min(kernel, 2)
    layer = kind(filters, kernel, strides=strides, padding=padding,
                 return_sequences=return_sequences, go_backwards=go_backwards, use_bias=use_bias,
                 bias_initializer="random_normal")  # fmt: skip
    frame = (size, size + 1, size)[:rank]
    layer.build((None, steps, *frame, c_in))
    check_layer(layer, rng.normal(size=(batch, steps, *frame, c_in)), rng, floor=1e-4)


def test_dilation_and_states_in_and_out_against_finite_differences(float64, rng):
    """C = Σ output ⊙ g₀ + Σ h_T ⊙ g₁ + Σ c_T ⊙ g₂, started from a given (h₀, c₀), with a
    dilated window: ∂C/∂x, ∂C/∂h₀, ∂C/∂c₀ and every weight's gradient."""
    layer = layers.ConvLSTM2D(2, 3, dilation_rate=2, padding="same", return_sequences=True,
                              return_state=True, bias_initializer="random_normal")  # fmt: skip
    layer.build((None, 3, 5, 4, 2))
    x = rng.normal(size=(2, 3, 5, 4, 2))
    initial = [rng.normal(size=(2, 5, 4, 2)) for _ in range(2)]
    outs = layer.forward([x, *initial])
    assert [o.shape for o in outs] == [(2, 3, 5, 4, 2), (2, 5, 4, 2), (2, 5, 4, 2)]
    weights = [rng.normal(size=o.shape) for o in outs]

    def C():
        return float(sum((o * w).sum() for o, w in zip(layer.forward([x, *initial]), weights)))

    dx, *d_initial = layer.backward(weights)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert relative_error(dx, numerical_gradient(C, x), floor=1e-4) < 1e-6
    for got, state in zip(d_initial, initial):
        assert relative_error(got, numerical_gradient(C, state), floor=1e-4) < 1e-6
    for name, p in layer.params.items():
        assert relative_error(grads[name], numerical_gradient(C, p), floor=1e-4) < 1e-6, name


def test_dropout_masks_hold_for_the_whole_sequence(float64, rng):
    layer = layers.ConvLSTM1D(2, 3, padding="same", dropout=0.3, recurrent_dropout=0.4,
                              return_sequences=True, seed=5)  # fmt: skip
    layer.build((None, 4, 6, 2))
    x = rng.normal(size=(2, 4, 6, 2))
    out = layer.forward(x, training=True)
    assert layer.x_drop.shape == (2, 1, 6, 2)  # one mask per sequence, over the whole frame
    assert layer.h_drop.shape == (2 * 6, 2)  # and on h_{t−1}, at every position
    masks = {layer.dropout: layer.x_drop, layer.recurrent_dropout: layer.h_drop}
    dC_da = rng.normal(size=out.shape)
    dx = layer.backward(dC_da)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer._dropout_mask = lambda shape, dtype, rate: masks[rate]

    def C():
        return float((layer.forward(x, training=True) * dC_da).sum())

    assert relative_error(dx, numerical_gradient(C, x)) < 1e-6
    for name, p in layer.params.items():
        assert relative_error(grads[name], numerical_gradient(C, p)) < 1e-6, name


@pytest.mark.parametrize("kind", [layers.ConvLSTM1D, layers.ConvLSTM2D, layers.ConvLSTM3D])
def test_a_masked_step_passes_the_state_on_at_every_position(kind, float64, rng):
    """A mask (batch, steps) holds for every position of a sample: its masked steps leave h and
    c as they were, so the last step's h is the last real step's; and backward agrees with
    finite differences through the skipped steps."""
    layer = kind(2, 3, padding="same", bias_initializer="random_normal")
    frame = (2, 4, 3)[-kind.rank :]
    layer.build((None, 4, *frame, 2))
    x = rng.normal(size=(2, 4, *frame, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
    out = layer(x, mask=mask)
    np.testing.assert_allclose(out[0], layer(x[:1, :2])[0], atol=1e-12)  # steps 3 and 4 skipped
    np.testing.assert_allclose(out[1], layer(x[1:])[0], atol=1e-12)
    layer.input_mask = mask
    weights = rng.normal(size=out.shape)
    layer.forward(x)
    dx = layer.backward(weights)
    grads = {k: g.copy() for k, g in layer.grads.items()}

    def C():
        return float((layer.forward(x) * weights).sum())

    assert np.all(dx[0, 2:] == 0)  # a skipped step's input reaches nothing
    assert relative_error(dx, numerical_gradient(C, x)) < 1e-6
    for name, p in layer.params.items():
        assert relative_error(grads[name], numerical_gradient(C, p)) < 1e-6, name


def test_a_one_by_one_window_is_an_lstm_at_every_position(float64, rng):
    """With a 1 × 1 window the windows are the positions themselves: the layer is an LSTM run
    on every pixel's sequence by itself, with the same weights."""
    conv = layers.ConvLSTM2D(3, 1, return_sequences=True)
    conv.build((None, 4, 2, 3, 2))
    lstm = layers.LSTM(3, return_sequences=True)
    lstm.build((None, 4, 2))
    lstm.set_weights([w.reshape(w.shape[-2:]) if w.ndim == 4 else w for w in conv.get_weights()])
    x = rng.normal(size=(2, 4, 2, 3, 2))
    pixels = x.transpose(0, 2, 3, 1, 4).reshape(2 * 2 * 3, 4, 2)  # one sequence per pixel
    expected = lstm(pixels).reshape(2, 2, 3, 4, 3).transpose(0, 3, 1, 2, 4)
    assert np.allclose(conv(x), expected, atol=1e-12)


def test_one_filter_over_two_steps_by_hand(float64):
    """ConvLSTM1D(1, kernel 2) on a series of 3, two steps, every weight 0.5 and b = 0 but the
    forget gate's 1: the deck's z = W·window + b, then the LSTM's gates, written out."""
    layer = layers.ConvLSTM1D(1, 2, padding="same", return_sequences=True)
    layer.build((None, 2, 3, 1))
    kernel, recurrent, bias = (np.full((2, 1, 4), 0.5), np.full((2, 1, 4), 0.5),
                               np.array([0.0, 1.0, 0.0, 0.0]))  # fmt: skip
    layer.set_weights([kernel, recurrent, bias])
    x = np.array([[[1.0], [2.0], [3.0]], [[0.0], [-1.0], [1.0]]])[None]  # (1, T=2, 3, 1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h, c = np.zeros(3), np.zeros(3)
    expected = []
    for t in range(2):
        xt = np.append(x[0, t, :, 0], 0.0)  # "same" with a window of 2: one zero after
        hp = np.append(h, 0.0)
        z = 0.5 * (xt[:-1] + xt[1:]) + 0.5 * (hp[:-1] + hp[1:])  # each gate's z, bias aside
        i, f, g, o = sig(z), sig(z + 1.0), np.tanh(z), sig(z)
        c = f * c + i * g
        h = o * np.tanh(c)
        expected.append(h.copy())
    assert np.allclose(layer(x)[0, :, :, 0], np.array(expected), atol=1e-12)


def test_keras_layouts_config_and_names():
    layer = layers.ConvLSTM2D(4, (3, 2), strides=(1, 2), padding="same", return_sequences=True)
    layer.build((None, 5, 8, 6, 3))
    kernel, recurrent, bias = layer.get_weights()
    assert kernel.shape == (3, 2, 3, 16) and recurrent.shape == (3, 2, 4, 16)
    assert bias.shape == (16,) and np.array_equal(bias[4:8], np.ones(4))  # unit_forget_bias
    assert layer.compute_output_shape((None, 5, 8, 6, 3)) == (None, 5, 8, 3, 4)
    config = layer.get_config()
    assert "units" not in config
    assert config["filters"] == 4 and config["kernel_size"] == [3, 2]
    assert config["strides"] == [1, 2] and config["recurrent_activation"] == "sigmoid"
    again = layers.ConvLSTM2D.from_config(config)
    again.build((None, 5, 8, 6, 3))
    again.set_weights(layer.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 5, 8, 6, 3)).astype("float32")
    assert np.array_equal(again(x), layer(x))
    assert layer.keras_cell == "conv_lstm_cell"  # where Keras keeps the variables in a file
    one = layers.ConvLSTM1D(2, 3, return_state=True)
    assert one.compute_output_shape((None, 4, 9, 2)) == [(None, 7, 2)] * 3


def test_a_sequence_model_trains_saves_and_reopens(tmp_path, rng):
    model = glassnet.Sequential([
        layers.Input((None, 6, 6, 1)),
        layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True),
        layers.BatchNormalization(),
        layers.ConvLSTM2D(2, 3, padding="same"),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(8, 4, 6, 6, 1)).astype("float32")
    y = (x[:, :, :3].mean(axis=(1, 2, 3, 4)) > 0).astype(int)
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "video.keras")
    again = glassnet.models.load_model(tmp_path / "video.keras")
    assert np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    longer = rng.normal(size=(2, 7, 6, 6, 1)).astype("float32")  # a free time axis
    assert model.predict(longer, verbose=0).shape == (2, 2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: layers.ConvLSTM2D(2, 3)(np.zeros((2, 4, 5, 5))),
         r"shape \(batch, time, rows, cols, channels\); received \(None, 4, 5, 5\)"),
        (lambda: layers.ConvLSTM1D(2, 3)(np.zeros((2, 4, 5))),
         r"expects inputs of shape \(batch, time, steps, channels\)"),
        (lambda: layers.ConvLSTM2D(2, 5)(np.zeros((1, 2, 3, 3, 1))),
         r"window \(5, 5\).*larger than its valid-padded frames \(3, 3\)"),
        (lambda: layers.ConvLSTM2D(2, 3, strides=2, dilation_rate=2),
         "`strides > 1` not supported in conjunction with `dilation_rate > 1`"),
        (lambda: layers.ConvLSTM2D(2, 3, data_format="channels_first"), "channels_first"),
        (lambda: layers.ConvLSTM2D(0, 3), "expected a positive integer, got 0"),
        (lambda: layers.ConvLSTM2D(2, 3, padding="causal"), "padding"),
        (lambda: layers.ConvLSTM2D(2, 3, stateful=True), r"stateful=True\) is not supported"),
    ],
)  # fmt: skip
def test_bad_arguments_and_inputs_say_what_is_wrong(make, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make()


def test_channels_and_states_that_do_not_fit_are_refused(rng):
    layer = layers.ConvLSTM2D(2, 3, padding="same")
    layer.build((None, 3, 5, 5, 2))
    with pytest.raises(ValueError, match=r"built for 2 input channels \(its kernel is "
                                         r"\(3, 3, 2, 8\)\); received inputs with 3"):  # fmt: skip
        layer(rng.normal(size=(1, 3, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"initial_state\[0\] must have shape \(batch, rows, "
                                         r"cols, 2\); received \(None, 5, 2\)"):  # fmt: skip
        layer(rng.normal(size=(1, 3, 5, 5, 2)), initial_state=[np.zeros((1, 5, 2))] * 2)


def test_the_glass_box_shows_an_lstm_at_every_position_and_checks_it(rng):
    from glassnet import glassbox
    from glassnet.glassbox.render import render_text

    model = glassnet.Sequential(
        [
            layers.Input((3, 5, 5, 1)),
            layers.ConvLSTM2D(2, 3, padding="same"),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = rng.normal(size=(2, 3, 5, 5, 1)), np.eye(3)[[0, 2]]
    report = glassbox.check_gradients(model, x, y)
    checked = {(name, tensor) for _, name, tensor, *_ in report.rows}
    assert report.ok and {("conv_lstm2d", t) for t in ("W_x", "W_h", "b")} <= checked
    text = render_text(glassbox.trace(model, x, y))
    assert "an LSTM at every position of the feature map" in text
    assert "read a 3×3 window at a time" in text and "o ⊙ tanh(c_t)" in text
    assert "(batch × positions, T, gates × filters)" in text
    assert "each window's share of W_hᵀ·∂C/∂z_{t+1}, added back where it was read" in text
    assert "{{" not in text and "σ′(z) = tanh′(z)" not in text  # its σ′ is inside the steps


def test_conv_lstm3d_in_the_glass_box(rng):
    """ConvLSTM3D is the same LSTM at every position of a volume: the trace says so with its
    2×2×2 window, and check_gradients finds every gradient right."""
    from glassnet import glassbox

    glassnet.utils.set_random_seed(0)
    model = glassnet.Sequential([layers.Input((2, 2, 3, 3, 1)),
                                 layers.ConvLSTM3D(2, 2, padding="same"), layers.Flatten(),
                                 layers.Dense(3, activation="softmax")])  # fmt: skip
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = rng.normal(size=(2, 2, 2, 3, 3, 1)), np.array([0, 2])
    assert glassbox.check_gradients(model, x, y).ok
    text = glassbox.trace(model, x, y).render(color=False)
    assert "read a 2×2×2 window at a time" in text and "✗" not in text
