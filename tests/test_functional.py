"""The functional API: graphs of layers, trained by the deck's recursion on a graph.

Every gradient of every graph here is checked against central differences in float64: branches
that meet again (the deck's sum ∂C/∂z = σ′(z)·(w3·∂C/∂z′ + w4·∂C/∂z″)), a layer shared by two
branches, each merge layer, a model used as a layer, two inputs and two outputs with loss weights.
"""

import threading

import numpy as np
import pytest

import glassnet
from glassnet import glassbox
from glassnet.layers import (
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dropout,
    Flatten,
    Input,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)
from glassnet.models import Model, Sequential
from tests.gradcheck import numerical_gradient, relative_error


def check_model_gradients(model, x, y, tolerance=1e-6):
    """Backpropagation against central differences for every parameter of ``model``."""
    xs, ys = model.check_data(x, y)
    feed = xs if len(xs) > 1 else xs[0]
    model.backpropagate(ys, model.forward(feed, training=True))
    pairs = model.trainable_pairs()
    analytic = [g.copy() for _, g in pairs]

    def C():
        return model.loss_value(ys, model.forward(feed))

    for (p, _), g in zip(pairs, analytic):
        assert relative_error(g, numerical_gradient(C, p)) < tolerance


MERGES = [Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate]


@pytest.mark.parametrize("merge", MERGES, ids=lambda cls: cls.__name__)
def test_each_merge_layer_backpropagates_to_both_branches(float64, rng, merge):
    x = Input(shape=(3,))
    left, right = Dense(4, activation="tanh")(x), Dense(4, activation="sigmoid")(x)
    out = Dense(2, activation="softmax")(merge()([left, right]))
    model = Model(x, out)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    check_model_gradients(model, rng.normal(size=(5, 3)), np.eye(2)[rng.integers(0, 2, 5)])


def test_a_tensor_read_by_two_layers_gets_the_sum_of_both_gradients(float64, rng):
    # The deck's picture: one hidden neuron feeding two; its ∂C/∂z sums what both send back.
    x = Input(shape=(2,))
    h = Dense(3, activation="sigmoid")(x)
    out = Add()([Dense(2)(h), Dense(2, activation="tanh")(h)])
    model = Model(x, out)
    model.compile(optimizer="sgd", loss="mse")
    check_model_gradients(model, rng.normal(size=(4, 2)), rng.normal(size=(4, 2)))


def test_a_shared_layer_sums_its_gradients_over_its_calls(float64, rng):
    a, b = Input(shape=(3,)), Input(shape=(3,))
    shared = Dense(4, activation="tanh")
    out = Dense(1, activation="sigmoid")(Concatenate()([shared(a), shared(b), shared(a)]))
    model = Model([a, b], out)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = [rng.normal(size=(6, 3)), rng.normal(size=(6, 3))]
    check_model_gradients(model, x, rng.integers(0, 2, (6, 1)).astype(float))
    assert sum(node.layer is shared for node in model.nodes) == 3


def test_a_model_used_as_a_layer(float64, rng):
    inner = Sequential([Input(shape=(4,)), Dense(3, activation="relu"), Dense(3)], name="inner")
    x = Input(shape=(4,))
    out = Dense(2, activation="softmax")(Concatenate()([inner(x), x]))
    model = Model(x, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    check_model_gradients(model, rng.normal(size=(5, 4)) + 0.3, rng.integers(0, 2, 5))
    assert len(model.get_weights()) == 6  # the inner model's four, then the head's two


def test_two_outputs_with_loss_weights(float64, rng):
    x = Input(shape=(3,))
    h = Dense(4, activation="tanh")(x)
    cls, value = Dense(3, activation="softmax", name="cls")(h), Dense(1, name="value")(h)
    model = Model(x, {"cls": cls, "value": value})
    model.compile(
        optimizer="sgd",
        loss={"cls": "sparse_categorical_crossentropy", "value": "mse"},
        loss_weights={"cls": 1.0, "value": 0.25},
        metrics={"cls": ["accuracy"]},
    )
    xs, y = rng.normal(size=(8, 3)), {"cls": rng.integers(0, 3, 8), "value": rng.normal(size=8)}
    check_model_gradients(model, xs, y)
    history = model.fit(xs, y, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "cls_loss", "value_loss", "cls_accuracy"}
    loss, cls_loss, value_loss = (history.history[k][-1] for k in ("loss", "cls_loss",
                                                                    "value_loss"))  # fmt: skip
    assert loss == pytest.approx(cls_loss + 0.25 * value_loss, rel=1e-6)
    pred = model.predict(xs, verbose=0)
    assert set(pred) == {"cls", "value"} and pred["value"].shape == (8, 1)


def test_trace_and_check_gradients_work_on_a_graph(rng):
    x = Input(shape=(3,))
    h = Dense(4, activation="sigmoid")(x)
    out = Dense(2, activation="softmax")(Add()([Dense(4)(h), Dense(4, activation="tanh")(h)]))
    model = Model(x, out)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = rng.normal(size=(3, 3)), np.eye(2)[[0, 1, 1]]
    report = glassbox.check_gradients(model, x, y)
    assert report.ok and len(report.rows) == 8
    tr = glassbox.trace(model, x, y)
    assert [lt.kind for lt in tr.layers] == ["Dense", "Dense", "Dense", "Add", "Dense"]
    assert tr.case_1 and "layer 5" in tr.render()


def test_summary_shows_what_each_layer_is_connected_to():
    a, b = Input(shape=(3,), name="a"), Input(shape=(3,), name="b")
    out = Dense(1, name="out")(Add(name="sum")([Dense(2, name="d")(a), Dense(2, name="e")(b)]))
    lines = []
    Model([a, b], out, name="two").summary(print_fn=lines.append)
    table = "\n".join(lines)
    assert "Connected to" in table
    assert "sum (Add)" in table and "d[0][0], e[0][0]" in table
    assert " Total params: 19 (76.00 B)" in lines


def test_keras_layer_order_is_deepest_first():
    a, b = Input(shape=(2,), name="a"), Input(shape=(2,), name="b")
    out = Dense(1, name="out")(Add(name="add")([Dense(2, name="deep")(Dense(2, name="first")(a)),
                                                Dense(2, name="short")(b)]))  # fmt: skip
    names = [layer.name for layer in Model([a, b], out).layers]
    assert names == ["a", "first", "b", "deep", "short", "add", "out"]


def test_graph_errors_say_what_is_wrong():
    a, b = Input(shape=(3,), name="a"), Input(shape=(3,), name="b")
    out = Dense(2)(Add()([a, b]))
    with pytest.raises(ValueError, match="disconnected: it reads from input 'b'"):
        Model(a, out)
    with pytest.raises(TypeError, match="Model inputs must be symbolic tensors"):
        Model(np.zeros((1, 3)), out)
    with pytest.raises(ValueError, match="Add needs inputs of one shape"):
        Add()([a, Input(shape=(4,))])
    with pytest.raises(ValueError, match="takes one input; received a list of 2"):
        Dense(2)([a, b])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        Add()([a])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        Subtract()([a, b, a])
    with pytest.raises(ValueError, match="except for the concatenation axis"):
        Concatenate(axis=1)([Input(shape=(2, 3)), Input(shape=(2, 4))])


# ---- samples with an extra axis: (batch, steps, features) ------------------------------------


@pytest.mark.parametrize(
    "head,loss",
    [
        ("softmax layer", "categorical_crossentropy"),
        ("softmax", "categorical_crossentropy"),
        ("softmax", "sparse_categorical_crossentropy"),
        ("sigmoid", "binary_crossentropy"),
        (None, "mse"),
    ],
)
def test_steps_axis_gradients(float64, rng, head, loss):
    # Keras averages a loss over batch and steps: ∂C/∂z divides by batch · steps rows.
    last = [Dense(4), Activation("softmax")] if head == "softmax layer" else [Dense(4, head)]
    model = Sequential([Input((5, 3)), Dense(6, activation="tanh"), *last])
    model.compile(optimizer="sgd", loss=loss)
    labels = rng.integers(0, 4, (7, 5))
    y = {
        "categorical_crossentropy": np.eye(4)[labels],
        "sparse_categorical_crossentropy": labels,
        "binary_crossentropy": rng.integers(0, 2, (7, 5, 4)).astype(float),
        "mse": rng.normal(size=(7, 5, 4)),
    }[loss]
    check_model_gradients(model, rng.normal(size=(7, 5, 3)), y)
    assert glassbox.check_gradients(model, rng.normal(size=(2, 5, 3)), y[:2]).ok


# ---- predicting while another thread trains ---------------------------------------------------


def test_predict_in_one_thread_while_another_fits(rng):
    glassnet.utils.set_random_seed(3)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype(int)

    def trained(with_predictions):
        glassnet.utils.set_random_seed(3)
        model = Sequential([Input((8,)), Dense(16, activation="relu"), Dropout(0.1),
                            Dense(2, activation="softmax")])  # fmt: skip
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        stop, seen, errors = threading.Event(), [], []

        def predict_all_the_time():
            while not stop.is_set():
                try:
                    for batch in (1, 7, 64):  # sizes unlike the training batch
                        seen.append(model.predict(x[:batch], batch_size=batch, verbose=0).shape)
                except Exception as exc:  # pragma: no cover - the failure this test looks for
                    errors.append(exc)

        worker = threading.Thread(target=predict_all_the_time) if with_predictions else None
        if worker:
            worker.start()
        try:
            model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        finally:
            stop.set()
            if worker:
                worker.join()
        assert not errors
        return model.get_weights(), len(seen)

    alone, _ = trained(False)
    together, predictions = trained(True)
    assert predictions > 10
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)  # training did not notice the predictions


def test_two_fits_at_once_are_refused(rng):
    model = Sequential([Input((2,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model._training_lock.acquire()  # as if another thread were inside fit
    try:
        with pytest.raises(RuntimeError, match="already training in another thread"):
            model.fit(np.zeros((4, 2)), np.zeros(4), verbose=0)
    finally:
        model._training_lock.release()


def test_flatten_then_dense_in_a_graph(rng):
    x = Input(shape=(2, 3))
    model = Model(x, Dense(2)(Flatten()(x)))
    assert model.predict(rng.normal(size=(4, 2, 3)), verbose=0).shape == (4, 2)


def test_trace_shows_a_graph_with_two_inputs_and_two_outputs(rng):
    a, b = Input(shape=(3,), name="a"), Input(shape=(2,), name="b")
    h = Dense(4, activation="sigmoid", name="h")(a)
    joined = Concatenate()([Dense(3, activation="tanh")(h), Dense(3)(h), b])
    cls, value = Dense(2, activation="softmax")(joined), Dense(1)(h)
    model = Model([a, b], [cls, value])
    model.compile(optimizer="sgd", loss=["categorical_crossentropy", "mse"], loss_weights=[1, 0.5])
    x = [rng.normal(size=(3, 3)), rng.normal(size=(3, 2))]
    y = [np.eye(2)[[0, 1, 1]], rng.normal(size=(3, 1))]
    assert glassbox.check_gradients(model, x, y).ok
    text = glassbox.trace(model, x, y).render()
    assert "x[1]" in text and "y[1]" in text
    assert "categorical_crossentropy + 0.5·mean_squared_error" in text
    assert "feeds layers 2, 3, 6" in text  # h is read by both branches and the second output
    assert "the input a" not in text and "the input x[0]" in text


def test_the_trace_follows_the_graph_not_the_numbering(rng):
    # upper → add → out: upper's ∂C/∂a is what the Add (layer 4) sent back, not layer 3's.
    x = Input(shape=(2,))
    h = Dense(1, activation="sigmoid")(x)
    upper, lower = Dense(2, activation="sigmoid")(h), Dense(2, activation="sigmoid")(h)
    model = Model(x, Dense(2, activation="sigmoid")(Add()([upper, lower])))
    model.compile(optimizer="sgd", loss="mse")
    text = glassbox.trace(model, np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]])).render()
    for number in (2, 3):
        assert (
            f"layer {number} (dense_{number - 1}) — case 2: ∂C/∂z = σ′(z) ⊙ ∂C/∂a, ∂C/∂a as "
            "layer 4 (Add) sent it back" in text
        )
    assert "its output feeds layers 2, 3" in text


def test_a_very_deep_model_builds_and_runs():
    x = Input(shape=(2,))
    t = x
    for _ in range(3000):  # deeper than Python's recursion limit
        t = Activation("linear")(t)
    model = Model(x, t)
    assert len(model.layers) == 3001
    np.testing.assert_array_equal(model.predict(np.ones((1, 2)), verbose=0), [[1.0, 1.0]])
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Model"):
        Model(x, t, nmae="typo")


def test_a_model_gives_its_own_input_and_output_as_keras():
    """keras-io's lstm_seq2seq rebuilds its encoder from ``model.input[0]`` and a layer's
    ``output`` after loading: a model's input is its own, a list where it has several."""
    a, b = Input(shape=(3,), name="a"), Input(shape=(2,), name="b")
    out = Dense(1)(Concatenate()([a, b]))
    model = Model([a, b], out)
    assert model.input == [a, b] and model.output is out
    single = Model(a, Dense(2)(a))
    assert single.input is a and single.output is single.outputs[0]
    encoder = Model(model.input[0], model.layers[0].output)  # a piece of it, as keras-io does
    assert encoder.input is a


def test_a_trailing_axis_of_one_is_added_or_dropped_as_keras_does():
    """keras-io's siamese network feeds (n, 28, 28) images to Input((28, 28, 1))."""
    glassnet.utils.set_random_seed(0)
    model = Sequential([Input(shape=(6, 6, 1)), glassnet.layers.Conv2D(2, 3),
                        glassnet.layers.Flatten(), Dense(1)])  # fmt: skip
    x = np.random.default_rng(0).normal(size=(4, 6, 6)).astype("float32")
    expected = model.predict(x[..., None], verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    np.testing.assert_array_equal(model.predict(x[..., None, None], verbose=0), expected)
    with pytest.raises(ValueError, match=r"Input x has shape \(4, 6\), but the model expects"):
        model.predict(x[:, 0], verbose=0)  # two axes short: no guess


def test_a_model_called_twice_sums_its_layers_gradients():
    """A siamese network: one tower model on both inputs. Its layers' ∂C/∂W are the sum over the
    two calls (the second call's used to overwrite the first's), checked against central
    differences of C entry by entry, through a merge layer and through a Lambda."""
    glassnet.config.set_floatx("float64")
    try:
        rng = np.random.default_rng(0)
        xa, xb = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
        y = np.array([[1.0], [0], [1], [0], [1], [0]])
        for merge in ("subtract", "lambda"):
            glassnet.utils.set_random_seed(0)
            inner = Input(shape=(4,))
            tower = Model(inner, Dense(3, activation="tanh")(inner))
            a, b = Input(shape=(4,)), Input(shape=(4,))
            if merge == "subtract":
                joined = glassnet.layers.Subtract()([tower(a), tower(b)])
            else:
                joined = glassnet.layers.Lambda(lambda v: glassnet.ops.sum(
                    glassnet.ops.square(v[0] - v[1]), axis=1, keepdims=True))(
                    [tower(a), tower(b)])  # fmt: skip
            model = Model([a, b], Dense(1, activation="sigmoid")(joined))
            model.compile(loss="mse", optimizer=glassnet.optimizers.SGD(1.0))
            start = [w.copy() for w in model.get_weights()]

            def loss(weights, model=model):
                model.set_weights(weights)
                return model.evaluate([xa, xb], y, verbose=0)

            numeric = []
            for i, w in enumerate(start):
                flat = np.zeros(w.size)
                for k in range(w.size):
                    plus = [v.copy() for v in start]
                    minus = [v.copy() for v in start]
                    plus[i].flat[k] += 1e-6
                    minus[i].flat[k] -= 1e-6
                    flat[k] = (loss(plus) - loss(minus)) / 2e-6
                numeric.append(flat.reshape(w.shape))
            model.set_weights(start)
            model.train_on_batch([xa, xb], y)  # SGD at rate 1: the step is −∂C/∂W
            for before, after, slope in zip(start, model.get_weights(), numeric):
                np.testing.assert_allclose(before - after, slope, rtol=1e-5, atol=1e-8)
    finally:
        glassnet.config.set_floatx("float32")


class _DoubledSlope(Dense):
    """A Dense layer whose ∂C/∂W comes out twice too large: a derivative written wrong."""

    def backward_from_z(self, dC_dz, cache=None):
        dC_dx = super().backward_from_z(dC_dz, cache)
        self.grads["W"] *= 2
        return dC_dx


def test_check_gradients_opens_nested_models_and_catches_a_wrong_slope_inside(rng):
    """A tower called twice (a siamese pair) inside a model, with a model nested in the tower:
    every weight inside is checked under its path; a wrong derivative two models deep fails."""

    def build(head):
        inner = Input(shape=(4,))
        core = Model(inner, head(inner), name="core")
        t_in = Input(shape=(4,))
        tower = Model(t_in, Dense(3, activation="tanh")(core(t_in)), name="tower")
        a, b = Input(shape=(4,)), Input(shape=(4,))
        model = Model([a, b], Dense(1)(glassnet.layers.Subtract()([tower(a), tower(b)])))
        model.compile(loss="mse", optimizer="sgd")
        return model

    x = [rng.normal(size=(3, 4)), rng.normal(size=(3, 4))]
    report = glassbox.check_gradients(build(Dense(5, activation="tanh")), x, np.ones((3, 1)))
    names = [row[1] for row in report.rows]
    assert {"tower/core/dense", "tower/dense"} <= {n.rsplit("_", 1)[0] for n in names}
    assert report.ok and len(report.rows) == 2 + 4  # the last Dense's W, b; two inside, W, b
    assert "all gradients agree" in str(report)
    broken = glassbox.check_gradients(build(_DoubledSlope(5)), x, np.ones((3, 1)))
    bad = [row for row in broken.rows if row[-1] > broken.tolerance]
    assert not broken.ok and [(row[1].split("/")[:2], row[2]) for row in bad] == [
        (["tower", "core"], "W")
    ]
