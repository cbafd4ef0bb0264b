"""What a layer adds to C besides the output's loss: Ω(W) of a weight's regularizer
(``keras.regularizers``) and ``add_loss``. Each derivative against central differences, the whole
step's gradient against differences of the whole C, keras.io's guide's ``layer.losses`` rules,
training on added losses alone, and bad arguments. (Keras's own files with regularizers, both
ways: test_keras_files.py.)"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet as keras
from glassnet import layers, ops, regularizers
from tests.gradcheck import numerical_gradient, relative_error

PENALTIES = {
    "L1": regularizers.L1(0.03),
    "L2": regularizers.L2(0.05),
    "L1L2": regularizers.L1L2(l1=0.02, l2=0.04),
    "orthogonal rows": regularizers.OrthogonalRegularizer(0.1),
    "orthogonal columns": regularizers.OrthogonalRegularizer(0.1, mode="columns"),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
@settings(max_examples=15, deadline=None)
@given(rows=st.integers(2, 5), cols=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_each_regularizers_derivative_is_what_differences_give(name, rows, cols, seed):
    penalty = PENALTIES[name]
    w = np.random.default_rng(seed).normal(size=(rows, cols))
    w[np.abs(w) < 0.05] = 0.3  # |W| has a kink at 0
    numerical = numerical_gradient(lambda: float(ops.convert_to_numpy(penalty(w))), w)
    assert relative_error(penalty.gradient(w), numerical, floor=1e-4) < 1e-6


def test_the_penalties_are_the_formulas():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert float(regularizers.L1(0.1)(w)) == pytest.approx(0.35)
    assert float(regularizers.L2(0.1)(w)) == pytest.approx(0.525)
    assert float(regularizers.L1L2(0.1, 0.1)(w)) == pytest.approx(0.875)
    assert float(regularizers.OrthogonalRegularizer(1.0)(np.eye(3))) == pytest.approx(0.0)
    both = np.array(
        [[1.0, 0.0], [1.0, 0.0]]
    )  # the same direction twice: |cos| = 1 off the diagonal
    assert float(regularizers.OrthogonalRegularizer(1.0)(both)) == pytest.approx(1.0)


def test_a_regularizer_written_with_ops_gets_its_derivative_from_them():
    class Cubes(regularizers.Regularizer):
        def __call__(self, x):
            return 0.1 * ops.sum(x * x * x)

    def quartic(x):  # a plain function works as one too
        return ops.sum(ops.square(ops.square(x)))

    w = np.random.default_rng(0).normal(size=(3, 2))
    assert np.allclose(Cubes().gradient(w), 0.3 * w**2)
    assert np.allclose(regularizers.get(quartic).gradient(w), 4 * w**3)


def _whole_C_check(model, x, y, tolerance=1e-5):
    """Every trainable parameter's ∂C/∂W from one backward pass against central differences of
    C itself (the output's loss, the added losses and Ω together), in float64."""
    out = model.forward(x, training=True)
    model.backpropagate(y, out)
    for layer in model.leaf_layers():
        for owner in layer.owners_of_arrays():
            for key, w in owner.params.items():
                analytic = owner.grads[key].copy()

                def C():
                    return model.backpropagate(y, model.forward(x, training=True))

                numerical = numerical_gradient(C, w)
                assert relative_error(analytic, numerical, floor=1e-4) < tolerance, (
                    owner.name,
                    key,
                )


def test_a_step_with_regularized_weights_follows_the_whole_C():
    keras.config.set_floatx("float64")
    try:
        keras.utils.set_random_seed(0)
        R = regularizers
        model = keras.Sequential([
            keras.Input((5, 2)),
            layers.Conv1D(3, 2, kernel_regularizer=R.L1L2(0.01, 0.02), bias_regularizer="l2"),
            layers.SimpleRNN(3, recurrent_regularizer=R.L2(0.05), kernel_regularizer=R.L1(0.02)),
            layers.Dense(2, kernel_regularizer=R.OrthogonalRegularizer(0.1)),
        ])  # fmt: skip
        model.compile(optimizer="sgd", loss="mse")
        rng = np.random.default_rng(1)
        x, y = rng.normal(size=(4, 5, 2)), rng.normal(size=(4, 2))
        model.forward(x)  # builds
        for layer in model.layers:  # no bias at exactly 0: |b| has a kink there
            for key in layer.params:
                layer.params[key][...] += rng.normal(scale=0.1, size=layer.params[key].shape)
        _whole_C_check(model, x, y)
    finally:
        keras.config.set_floatx("float32")


class ActivityPenalty(layers.Layer):
    """keras.io's guide's layer: adds rate·mean(x) to C and passes x on."""

    def __init__(self, rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(ops.square(inputs)))
        return inputs


class Outer(layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(3, activation="tanh")
        self.penalty = ActivityPenalty(0.3)

    def call(self, inputs):
        return self.penalty(self.dense(inputs)) * 2.0


def test_a_step_with_added_losses_follows_the_whole_C_through_nested_layers():
    keras.config.set_floatx("float64")
    try:
        keras.utils.set_random_seed(2)
        inputs = keras.Input((4,))
        hidden = Outer()(layers.Dense(4, activation="sigmoid")(inputs))
        model = keras.Model(inputs, layers.Dense(2)(ActivityPenalty(0.5)(hidden)))
        model.compile(optimizer="sgd", loss="mse")
        rng = np.random.default_rng(3)
        x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
        _whole_C_check(model, x, y)
        out = model.forward(x, training=True)
        assert model.backpropagate(y, out) > model.loss_value(y, out)  # the added part is in C
    finally:
        keras.config.set_floatx("float32")


def test_evaluate_counts_the_added_losses_in_C_as_training_does():
    """Keras's evaluate reports C with the added losses (and Ω) in it: here the mean squared
    error plus 0.3·mean(h²) inside Outer plus 0.5·mean(h′²) — on the whole batch at once, even
    one large enough to be cut into pieces for the cores."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    hidden = Outer()(layers.Dense(64, activation="sigmoid", kernel_regularizer="l2")(inputs))
    model = keras.Model(inputs, layers.Dense(2)(ActivityPenalty(0.5)(hidden)))
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40000, 4)).astype("float32"), rng.normal(size=(40000, 2))
    out = model.forward(x, training=True)
    C = model.backpropagate(y, out)  # C of the training pass: output loss + added + Ω
    assert model.loss_value(y, out) + 0.01 < C
    got = model.evaluate(x, y, batch_size=40000, verbose=0)
    assert got == pytest.approx(C, rel=1e-5)


def test_the_glass_box_shows_each_term_of_C_and_the_whole_C_after_the_step():
    """C = mse(y, a) + Ω(W) + the added losses: the trace names each term with its value (they
    add up to C), checks every gradient of that whole C, and measures C after the step whole."""
    from glassnet import glassbox

    keras.utils.set_random_seed(5)
    inputs = keras.Input((4,))
    hidden = layers.Dense(3, activation="tanh", kernel_regularizer=regularizers.L2(0.1))(inputs)
    model = keras.Model(inputs, layers.Dense(2)(ActivityPenalty(0.5)(hidden)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    tr = glassbox.trace(model, x, y)
    W = model.layers[1].get_weights()[0]
    assert tr.penalty == pytest.approx(0.1 * np.square(W).sum(), rel=1e-5)
    h = np.tanh(x @ W + model.layers[1].get_weights()[1])
    assert tr.added == pytest.approx(0.5 * np.mean(h**2), rel=1e-4)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(tr.C, rel=1e-5)  # all three terms
    assert all(c.ok for lt in tr.layers for c in lt.numeric.values())
    assert tr.C_new < tr.C  # a step downhill on the whole C
    text = tr.render(color=False)
    assert "C = mean_squared_error(y, a) + Ω(W) + the added losses = " in text
    assert "Ω(W) = " in text and "the added losses = " in text


def test_layer_losses_follow_the_guides_rules():
    layer = Outer()
    assert layer.losses == []  # never called
    layer(np.ones((2, 3), dtype="float32"))
    assert len(layer.losses) == 1  # its inner layer's, from this call
    layer(np.ones((2, 3), dtype="float32"))
    assert len(layer.losses) == 1  # reset at each call
    dense = layers.Dense(2, kernel_regularizer=regularizers.L2(1e-3))
    dense(np.ones((1, 3), dtype="float32"))
    expected = 1e-3 * np.square(dense.params["W"]).sum()
    assert np.allclose(dense.losses, [expected])


def test_a_model_trains_on_the_losses_its_layers_add_with_no_loss_in_compile():
    class Pull(layers.Layer):  # pulls the output towards 3
        def call(self, inputs):
            self.add_loss(ops.mean(ops.square(inputs - 3.0)))
            return inputs

    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, Pull()(layers.Dense(1)(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    history = model.fit(x, np.zeros((32, 1)), epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.05 * history.history["loss"][0]
    assert np.allclose(model.predict(x, verbose=0), 3.0, atol=0.2)


def test_a_regularized_model_saves_and_loads_its_regularizers():
    model = keras.Sequential([
        keras.Input((3,)),
        layers.Dense(2, kernel_regularizer=regularizers.L1L2(0.01, 0.02), bias_regularizer="l1"),
    ])  # fmt: skip
    config = model.get_config()["layers"][-1]["config"]
    assert config["kernel_regularizer"] == {
        "module": "keras.regularizers",
        "class_name": "L1L2",
        "config": {"l1": 0.01, "l2": 0.02},
        "registered_name": None,
    }
    again = keras.Sequential.from_config(model.get_config())
    assert again.layers[0].regularizers["b"].get_config() == {"l1": 0.01}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: regularizers.get("l3"), ValueError, "l3"),
        (lambda: regularizers.L2(-1), ValueError, "Received l2=-1.0. Expected a non-negative"),
        (lambda: regularizers.L1("a"), ValueError, "Received l1=nan. Expected a non-negative"),
        (lambda: regularizers.get(3), ValueError, "Could not interpret regularizer identifier: 3"),
        (
            lambda: regularizers.OrthogonalRegularizer(mode="diagonal"),
            ValueError,
            "Received mode='diagonal'. Expected 'rows' or 'columns'",
        ),
        (
            lambda: regularizers.OrthogonalRegularizer()(np.ones((2, 2, 2))),
            ValueError,
            "OrthogonalRegularizer needs a 2-D weight; received shape (2, 2, 2)",
        ),
        (
            lambda: layers.Dense(2, kernel_regularizer=lambda w: ops.sum(w)).get_config(),
            NotImplementedError,
            "cannot be saved in a config; write it as a Regularizer subclass",
        ),
        (
            lambda: layers.Dense(2, activity_regularizer="l2"),
            NotImplementedError,
            "Dense(activity_regularizer=...) is not supported",
        ),
    ],
)
def test_bad_regularizers_say_what_is_wrong(call, error, message):
    with pytest.raises(error) as caught:
        call()
    assert message in str(caught.value)


class LogisticEndpoint(layers.Layer):
    """keras.io's training guide's endpoint: called on (targets, logits), it adds the loss."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def call(self, targets, logits, sample_weights=None):
        self.add_loss(self.loss_fn(targets, logits, sample_weights))
        return ops.softmax(logits)


def test_an_endpoint_layer_takes_two_tensors_adds_a_keras_loss_and_trains_without_targets():
    keras.config.set_floatx("float64")
    try:
        keras.utils.set_random_seed(4)
        inputs, targets = keras.Input((3,), name="inputs"), keras.Input((4,), name="targets")
        logits = layers.Dense(4)(inputs)
        model = keras.Model(
            [inputs, targets], LogisticEndpoint(name="predictions")(targets, logits)
        )
        model.compile(optimizer="adam")  # no loss: the endpoint adds it
        rng = np.random.default_rng(5)
        data = {"inputs": rng.normal(size=(6, 3)), "targets": rng.uniform(size=(6, 4))}
        xs = [data["inputs"], data["targets"]]
        _whole_C_check(model, xs, np.zeros((6, 1)))
        out = model.forward(xs, training=True)
        C = model.backpropagate(np.zeros((6, 1)), out)
        z = data["inputs"] @ model.layers[2].params["W"].T + model.layers[2].params["b"]
        y = data["targets"]  # Keras's binary cross-entropy from logits, by hand
        by_hand = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-abs(z))))
        assert abs(C - by_hand) < 1e-12
        history = model.fit(data, epochs=5, verbose=0)  # no y: nothing reads one
        assert history.history["loss"][-1] < history.history["loss"][0]
    finally:
        keras.config.set_floatx("float32")
    with pytest.raises(TypeError, match="pass training= and mask= by name"):
        layers.Dense(2)(np.ones((1, 2)), True)
