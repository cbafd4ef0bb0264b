"""Keras code written with keras.ops runs with only the imports changed: a Layer with build,
add_weight and call, a Lambda, a loss function. Their backward passes are the recursion over the
recorded ops; each is checked against finite differences and against glassnet's own hand-written
layers and losses computing the same function; saving follows Keras (functions by name, never
code from a file)."""

import json
import zipfile

import numpy as np
import pytest

import glassnet
import glassnet as keras
from glassnet import glassbox, layers, ops, saving
from tests.gradcheck import numerical_gradient, relative_error


class Linear(keras.layers.Layer):
    """keras.io, "Making new layers and models via subclassing", verbatim but for the import."""

    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


class ComputeSum(keras.layers.Layer):
    """The same guide: a non-trainable weight updated in call."""

    def __init__(self, input_dim):
        super().__init__()
        self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

    def call(self, inputs):
        self.total.assign_add(ops.sum(inputs, axis=0))
        return self.total


def custom_mean_squared_error(y_true, y_pred):
    """keras.io, "Training & evaluation with the built-in methods"."""
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


@pytest.fixture
def data(rng):
    x = rng.normal(size=(24, 5)).astype("float32")
    return x, (x[:, :3] * 2 - 1).astype("float32")


def test_the_guides_layers_run_as_written():
    x = ops.ones((2, 2))
    linear_layer = Linear(4)
    y = linear_layer(x)
    assert y.shape == (2, 4) and len(linear_layer.weights) == 2
    np.testing.assert_allclose(y, x @ linear_layer.w.numpy() + linear_layer.b.numpy(), rtol=1e-6)
    my_sum = ComputeSum(2)
    my_sum(x)
    np.testing.assert_array_equal(my_sum(x), [4.0, 4.0])
    assert len(my_sum.weights) == 1 and not my_sum.weights[0].trainable


def test_a_layer_with_call_trains_as_the_same_dense_layer_does(data):
    """The recorded backward pass against the hand-written one: Linear with Dense's weights
    gives the same output, the same gradients and so the same weights after training."""
    x, y = data
    keras.utils.set_random_seed(1)
    ours = keras.Sequential([keras.Input((5,)), Linear(3)])
    dense = keras.Sequential([keras.Input((5,)), layers.Dense(3)])
    dense.set_weights(ours.get_weights())  # Keras's kernel layout (n_in, n_out) on both
    for model in (ours, dense):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), dense.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_check_gradients_and_the_trace_show_a_call_layer_op_by_op(float64, rng):
    inputs = keras.Input((3,))
    factor = np.ones(4)  # read from around the lambda: the in-memory copy still finds it
    hidden = layers.Lambda(lambda t: ops.tanh(t) * 2)(Linear(4)(inputs))
    hidden = layers.Lambda(lambda t: t * factor)(hidden)
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(hidden))
    model.compile("sgd", "categorical_crossentropy")
    x, y = rng.normal(size=(4, 3)), np.eye(2)[[0, 1, 1, 0]]
    report = glassbox.check_gradients(model, x, y)
    assert [row[2] for row in report.rows][:2] == ["variable", "variable_1"]
    assert all(row[5] < 1e-6 for row in report.rows)
    text = glassbox.trace(model, x, y).render()
    for line in ("t1 = matmul(x, variable)", "t2 = add(t1, variable_1)", "t1 = tanh(x)",
                 "t2 = multiply(t1, 2)", "∂C/∂t1", "back through matmul"):  # fmt: skip
        assert line in text
    assert "✗" not in text and text.count("✓") == 4


def test_a_loss_function_trains_as_the_built_in_loss_does(data):
    x, y = data
    weights = None
    for loss in (custom_mean_squared_error, "mean_squared_error"):
        keras.utils.set_random_seed(2)
        model = keras.Sequential([keras.Input((5,)), layers.Dense(8, activation="tanh"),
                                  layers.Dense(3)])  # fmt: skip
        model.compile(optimizer="adam", loss=loss)
        history = model.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0).history
        if weights is None:
            weights, first = model.get_weights(), history["loss"]
        else:
            np.testing.assert_allclose(history["loss"], first, rtol=1e-5)
            for a, b in zip(weights, model.get_weights(), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_loss_function_with_sample_weights_and_labels_of_another_shape(float64, rng):
    """A loss of integer labels against probabilities, weighted: its ∂C/∂a checked."""

    def picked(y_true, y_pred):  # −log of the probability of the labelled class
        labels = ops.one_hot(ops.cast(y_true, "int32"), 3)
        return -ops.log(ops.sum(labels * y_pred, axis=-1))

    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", loss=picked)
    x, labels = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    report = glassbox.check_gradients(model, x, labels)
    assert all(row[5] < 1e-6 for row in report.rows)
    reference = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    reference.compile("sgd", loss="sparse_categorical_crossentropy")
    reference.set_weights(model.get_weights())
    w = rng.random(6)
    assert model.evaluate(x, labels, sample_weight=w, verbose=0) == pytest.approx(
        reference.evaluate(x, labels, sample_weight=w, verbose=0), rel=1e-6)  # fmt: skip


def test_a_loss_function_is_saved_by_name_and_found_again(tmp_path, data):
    x, y = data
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3)])
    model.compile("adam", loss=custom_mean_squared_error)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        loss = json.loads(zf.read("config.json"))["compile_config"]["loss"]
    assert loss["class_name"] == "function" and loss["config"] == "custom_mean_squared_error"
    with pytest.raises(ValueError, match=r"Unknown loss function 'custom_mean_squared_error': "
                                         r"register it with glassnet\.saving"):  # fmt: skip
        keras.models.load_model(tmp_path / "m.keras")
    known = {"custom_mean_squared_error": custom_mean_squared_error}
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects=known)
    assert loaded.output_losses[0].fn is custom_mean_squared_error


def test_lambda_functions_are_saved_by_name_and_code_is_never_loaded(tmp_path, rng):
    @saving.register_keras_serializable(package="Tests")
    def doubled(x):
        return x * 2

    try:
        inputs = keras.Input((3,))
        named = keras.Model(inputs, layers.Dense(2)(layers.Lambda(doubled)(inputs)))
        named.save(tmp_path / "named.keras")
        x = rng.normal(size=(4, 3)).astype("float32")
        loaded = keras.models.load_model(tmp_path / "named.keras")
        np.testing.assert_allclose(loaded.predict(x, verbose=0), named.predict(x, verbose=0))
    finally:
        saving.get_custom_objects().pop("Tests>doubled", None)
    anonymous = keras.Model(inputs, layers.Lambda(lambda t: ops.square(t) + 1)(inputs))
    anonymous.save(tmp_path / "anonymous.keras")  # written as Keras writes a lambda: its code
    with zipfile.ZipFile(tmp_path / "anonymous.keras") as zf:
        entry = json.loads(zf.read("config.json"))["config"]["layers"][1]["config"]["function"]
    assert entry["class_name"] == "__lambda__" and entry["config"]["code"]
    with pytest.raises(ValueError, match="glassnet never runs code from a file"):
        keras.models.load_model(tmp_path / "anonymous.keras")
    copy = keras.models.clone_model(anonymous)  # in memory, the very function
    np.testing.assert_allclose(copy.predict(x, verbose=0), x**2 + 1, rtol=1e-6)


def test_a_layer_without_get_config_is_saved_with_its_arguments(tmp_path, rng):
    model = keras.Sequential([keras.Input((5,)), Linear(units=3)])
    assert model.layers[0].get_config()["units"] == 3
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Linear": Linear})
    x = rng.normal(size=(2, 5)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    class Holds(keras.layers.Layer):
        def __init__(self, table):
            super().__init__()
            self.table = table

        def call(self, inputs):
            return inputs

    with pytest.raises(NotImplementedError, match=r"not plain data \(\['table'\]\); define get_"):
        Holds(np.ones(3)).get_config()


def test_free_axes_and_output_shapes_are_found_by_running_call():
    inputs = keras.Input((None, 4))
    out = layers.Lambda(lambda t: ops.concatenate([t, t], axis=1)[:, :, :2])(inputs)
    assert out.shape == (None, None, 2)
    assert layers.Lambda(lambda t: ops.sum(t, axis=-1), output_shape=(7,))(inputs).shape == (
        None, 7)  # fmt: skip


def test_what_a_call_layer_may_not_do_says_so(rng):
    class ToNumpy(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],))

        def call(self, inputs):
            return inputs * np.asarray(self.w)

    class Named(keras.layers.Layer):
        def call(self, inputs):
            return {"a": inputs, "b": inputs}

    model = keras.Sequential([keras.Input((3,)), ToNumpy()])
    with pytest.raises(TypeError, match=r"went into a NumPy function inside call\(\)"):
        model.compile("sgd", "mse") or model.fit(rng.normal(size=(2, 3)), np.ones((2, 3)),
                                                 verbose=0)  # fmt: skip
    with pytest.raises(NotImplementedError, match="returned a dict: a layer written with call"):
        Named()(np.ones((1, 2)))
    with pytest.raises(NotImplementedError, match=r"add_weight\(constraint=...\) is not"):
        keras.layers.Layer().add_weight(shape=(2,), constraint="non_neg")
    with pytest.raises(ValueError, match="already has a weight named 'w'"):
        layer = keras.layers.Layer()
        layer.add_weight(shape=(1,), name="w")
        layer.add_weight(shape=(1,), name="w")
    with pytest.raises(NotImplementedError, match=r"must define forward.*or Keras's call\(\)"):
        keras.layers.Layer()(np.ones((1, 2)))
    assert glassnet.layers.Lambda(ops.relu)(np.array([[-1.0, 2.0]])).tolist() == [[0.0, 2.0]]


KERAS_SIDE = """
import sys, numpy as np, keras
from keras import ops
@keras.saving.register_keras_serializable(package="Tests")
def doubled(x):
    return x * 2
@keras.saving.register_keras_serializable(package="Tests")
def my_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)
m = keras.models.load_model(sys.argv[1] + "/ours.keras")
x, y = np.load(sys.argv[1] + "/x.npy"), np.load(sys.argv[1] + "/y.npy")
print(float(np.abs(m.predict(x, verbose=0) - np.load(sys.argv[1] + "/pred.npy")).max()),
      float(m.evaluate(x, y, verbose=0)))
"""


@pytest.mark.skipif(
    not __import__("tests.test_keras_files", fromlist=["keras_available"]).keras_available(),
    reason="real Keras 3 is not installed (pip install -e '.[bench]')",
)
def test_real_keras_opens_a_lambda_and_a_loss_function_by_their_registered_names(tmp_path, rng):
    import os
    import subprocess
    import sys

    @saving.register_keras_serializable(package="Tests")
    def doubled(x):
        return x * 2

    @saving.register_keras_serializable(package="Tests")
    def my_mse(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    try:
        inputs = keras.Input((3,))
        hidden = layers.Lambda(doubled)(layers.Dense(4, activation="tanh")(inputs))
        model = keras.Model(inputs, layers.Dense(2)(hidden))
        model.compile("adam", my_mse)
        x, y = rng.normal(size=(8, 3)).astype("float32"), np.ones((8, 2), "float32")
        model.fit(x, y, epochs=2, verbose=0)
        model.save(tmp_path / "ours.keras")
        for name, array in (("x", x), ("y", y), ("pred", model.predict(x, verbose=0))):
            np.save(tmp_path / f"{name}.npy", array)
        ours = model.evaluate(x, y, verbose=0)
    finally:
        saving.get_custom_objects().pop("Tests>doubled", None)
        saving.get_custom_objects().pop("Tests>my_mse", None)
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    run = subprocess.run([sys.executable, "-c", KERAS_SIDE, str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    prediction_gap, theirs = (float(v) for v in run.stdout.split()[-2:])
    assert prediction_gap < 1e-5 and theirs == pytest.approx(ours, rel=1e-5)


class MLPBlock(keras.layers.Layer):
    """keras.io, "Making new layers and models via subclassing": layers inside a layer."""

    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(1)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = keras.ops.relu(x)
        x = self.linear_2(x)
        x = keras.ops.relu(x)
        return self.linear_3(x)


class TwoLayers(keras.Model):
    """The subclassing API: layers as attributes, call() with a training flag."""

    def __init__(self, hidden=8):
        super().__init__()
        self.hidden = hidden
        self.dense1 = layers.Dense(hidden, activation="relu")
        self.dropout = layers.Dropout(0.5)
        self.dense2 = layers.Dense(3, activation="softmax")

    def call(self, inputs, training=False):
        x = self.dense1(inputs)
        if training and self.dropout.rate:
            x = self.dropout(x, training=training)
        return self.dense2(x)


def test_layers_inside_a_layer_lend_it_their_weights_and_their_backward_passes(float64, rng):
    mlp = MLPBlock()
    assert mlp(ops.ones(shape=(3, 64))).shape == (3, 1)
    assert len(mlp.weights) == 6 and len(mlp.trainable_weights) == 6  # the guide's numbers
    assert mlp.weights[:2] == [mlp.linear_1.w, mlp.linear_1.b]  # the very variables

    class Twice(keras.layers.Layer):  # one Dense called twice: its ∂C/∂W is the sum of both
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3, activation="tanh")

        def call(self, x):  # keras.activations on a recorded tensor are the ops
            return self.dense(self.dense(x)) + keras.activations.sigmoid(ops.square(x))

    inputs = keras.Input((3,))
    model = keras.Model(inputs, layers.Dense(2)(Twice()(inputs)))
    model.compile("sgd", "mse")
    report = glassbox.check_gradients(model, rng.normal(size=(4, 3)), rng.normal(size=(4, 2)))
    assert [row[2] for row in report.rows][:2] == ["dense/W", "dense/b"]
    assert all(row[5] < 1e-6 for row in report.rows)


def test_a_subclassed_model_trains_as_the_same_sequential_does(rng):
    x, y = rng.normal(size=(40, 5)).astype("float32"), rng.integers(0, 3, 40)
    ours = TwoLayers()
    ours.dropout.rate = 0.0  # the reference has none: the same arithmetic, step for step
    ours.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])  # fmt: skip
    ours.build((None, 5))
    reference = keras.Sequential([keras.Input((5,)), layers.Dense(8, activation="relu"),
                                  layers.Dense(3, activation="softmax")])  # fmt: skip
    reference.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    reference.set_weights(ours.get_weights())
    history = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert set(history) == {"loss", "accuracy"}
    for a, b in zip(ours.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0),
                               rtol=1e-5)  # fmt: skip


def test_a_subclassed_model_with_dropout_its_files_and_its_config(tmp_path, rng):
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)  # labels the inputs decide: learnable
    keras.utils.set_random_seed(0)
    model = TwoLayers(hidden=6)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert model.get_config()["hidden"] == 6
    model.save_weights(tmp_path / "two.weights.h5")
    again = TwoLayers.from_config(model.get_config())
    again.build((None, 5))
    again.load_weights(tmp_path / "two.weights.h5")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save(tmp_path / "two.keras")  # as Keras writes it: the class by name, not its code
    with pytest.raises(ValueError, match=r"class 'TwoLayers'.*register_keras_serializable.*"
                                         r"custom_objects"):  # fmt: skip
        keras.models.load_model(tmp_path / "two.keras")
    loaded = keras.models.load_model(
        tmp_path / "two.keras", custom_objects={"TwoLayers": TwoLayers}
    )
    assert type(loaded) is TwoLayers and loaded.hidden == 6 and loaded.name == model.name
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.dropout.rate = loaded.dropout.rate = 0.0  # random masks aside, Adam goes on alike
    model.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_subclass_of_a_registered_model_is_saved_as_itself_not_its_parent(tmp_path, rng):
    """Registration names one class: its subclass is found by its own name (as in Keras), not
    made again as the parent it would otherwise inherit the registered name of."""
    parent = keras.saving.register_keras_serializable(package="tests")(
        type("RegisteredParent", (TwoLayers,), {})
    )
    child = type("UnregisteredChild", (parent,), {})
    model = child(hidden=4)
    model.build((None, 5))
    model.save(tmp_path / "child.keras")
    assert model.keras_config()["registered_name"] == "UnregisteredChild"
    assert keras.saving.get_registered_name(child) == "UnregisteredChild"
    with pytest.raises(ValueError, match=r"Unknown model class 'UnregisteredChild'"):
        keras.models.load_model(tmp_path / "child.keras")
    loaded = keras.models.load_model(tmp_path / "child.keras",
                                     custom_objects={"UnregisteredChild": child})  # fmt: skip
    x = rng.normal(size=(3, 5)).astype("float32")
    assert type(loaded) is child
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_train_step_of_ones_own_is_refused_with_what_to_write_instead(rng):
    class CustomStep(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):  # Keras's hook, written with a backend's autodiff
            raise AssertionError("never reached")

    model = CustomStep()
    model.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match=r"overrides train_step\(self, data\).*call\(\)"):
        model.fit(rng.normal(size=(4, 2)), np.ones((4, 1)), verbose=0)


class Split(layers.Layer):
    """A call that gives two outputs, as the guide's VAE encoder gives (z_mean, z_log_var, z)."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, inputs):
        h = ops.matmul(inputs, self.w)
        return h, ops.sum(h * h, axis=1, keepdims=True)


class UsesSplit(layers.Layer):
    def __init__(self):
        super().__init__()
        self.split = Split()

    def call(self, inputs):
        h, s = self.split(inputs)
        return ops.tanh(h) * s


def test_a_call_that_gives_a_tuple_works_on_arrays_inside_a_call_and_in_a_graph(float64, rng):
    x = rng.normal(size=(4, 5))
    first, second = Split()(x)  # on arrays: the tuple call gave
    assert first.shape == (4, 3) and second.shape == (4, 1)
    outer = UsesSplit()  # inside another call: one recorded step, each output sliced out of it
    dC_da = rng.normal(size=(4, 3))
    outer(x)
    outer.forward(x)
    dx = outer.backward(dC_da)
    grads = {k: g.copy() for k, g in outer.grads.items()}

    def C():
        return float((outer.forward(x) * dC_da).sum())

    assert relative_error(dx, numerical_gradient(C, x)) < 1e-6
    assert (
        relative_error(
            grads["split/variable"], numerical_gradient(C, outer.split.params["variable"])
        )
        < 1e-6
    )
    inputs = keras.Input((5,))  # in the functional API: a node with two outputs
    split = Split()
    h, s = split(inputs)
    model = keras.Model(inputs, [h, s])
    model.compile("sgd", ["mse", "mse"])
    targets = [rng.normal(size=(4, 3)), rng.normal(size=(4, 1))]
    out = model.forward(x, training=True)
    model.backpropagate(targets, out)
    analytic = split.grads["variable"].copy()
    numerical = numerical_gradient(
        lambda: model.loss_value(targets, model.forward(x)), split.params["variable"]
    )
    assert relative_error(analytic, numerical) < 1e-6


class MaskedMean(layers.Layer):
    """A call that reads the mask, Keras's way: the mean over the real steps only."""

    def call(self, inputs, mask=None):
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return ops.sum(inputs * weights, axis=1) / ops.sum(weights, axis=1)


class DropFirstStep(layers.Layer):
    """A layer with its own compute_mask, in Keras's signature: the steps and the mask shift."""

    def call(self, inputs):
        return inputs[:, 1:, :]

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[:, 1:]


def test_masks_reach_a_call_that_reads_them_and_a_compute_mask_of_ones_own(float64, rng):
    ids = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]])
    inputs = keras.Input((None,), dtype="int32")
    embedded = layers.Embedding(10, 3, mask_zero=True)(inputs)
    model = keras.Model(inputs, MaskedMean()(DropFirstStep()(embedded)))
    table = model.layers[1].params["embeddings"]
    want = np.stack([table[[1, 4]].mean(axis=0), table[[7, 1, 8, 2]].mean(axis=0)])
    assert np.allclose(model.predict(ids, verbose=0), want)  # padding and step 0 left out
    model.compile("sgd", "mse")
    y = rng.normal(size=(2, 3))
    model.backpropagate(y, model.forward(ids, training=True))
    analytic = model.layers[1].grads["embeddings"].copy()
    table = model.layers[1].params["embeddings"]  # training moved it into one flat buffer
    numerical = numerical_gradient(lambda: model.loss_value(y, model.forward(ids)), table)
    assert relative_error(analytic, numerical) < 1e-6
    assert not analytic[0].any() and not analytic[3].any()  # padding and step 0 get nothing


def test_a_recurrent_layer_takes_a_mask_on_arrays_and_inside_a_call(rng):
    class Encoder(layers.Layer):  # keras.io's masking guide's MyLayer
        def __init__(self):
            super().__init__()
            self.embedding = layers.Embedding(20, 4, mask_zero=True)
            self.lstm = layers.LSTM(3)

        def call(self, inputs):
            x = self.embedding(inputs)
            return self.lstm(x, mask=self.embedding.compute_mask(inputs))

    ids = np.array([[5, 6, 0, 0], [1, 2, 3, 4]])
    encoder = Encoder()
    inside = encoder(ids)
    vectors = encoder.embedding(ids)
    on_arrays = encoder.lstm(vectors, mask=ids != 0)
    short = encoder.lstm(vectors[:1, :2])  # the padded sample, without its padding
    assert np.allclose(inside, on_arrays) and np.allclose(on_arrays[0], short[0], atol=1e-6)
    with pytest.raises(NotImplementedError) as caught:
        encoder.lstm(keras.Input((4, 4)), mask=np.ones((1, 4), bool))
    assert "In the functional API, LSTM takes its mask from the layers before it" in str(
        caught.value
    )


def test_a_model_called_inside_a_layers_call_lends_it_its_weights(float64, rng):
    """keras.io's functional guide mixes styles: a functional model kept by a layer written with
    call(). The model is one recorded step; the layer adopts its weights (classifier/…/W)."""
    inputs = keras.Input((None, 4))
    head = keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling1D()(inputs)))

    class Recurrent(layers.Layer):
        def __init__(self):
            super().__init__()
            self.projection = layers.Dense(4, activation="tanh")
            self.classifier = head

        def call(self, inputs):
            steps = [self.projection(inputs[:, t, :]) for t in range(inputs.shape[1])]
            return self.classifier(ops.stack(steps, axis=1)) * 2.0

    model = keras.Sequential([keras.Input((3, 2)), Recurrent()])
    model.compile("sgd", "mse")
    x, y = rng.normal(size=(5, 3, 2)), rng.normal(size=(5, 1))
    model.backpropagate(y, model.forward(x, training=True))
    layer = model.layers[0]
    dense = head.layers[-1]
    assert {"classifier/" + dense.name + "/W", "projection/W"} <= set(layer.params)
    for key, w in layer.params.items():
        analytic = layer.grads[key].copy()
        numerical = numerical_gradient(lambda: model.loss_value(y, model.forward(x)), w)
        assert relative_error(analytic, numerical) < 1e-6, key
    before = dense.params["W"].copy()
    model.fit(x, y, epochs=2, verbose=0)
    assert not np.allclose(dense.params["W"], before)  # fit trains the model inside too


def cubed(x):
    return x * x * x


def test_an_activation_of_ones_own_trains_saves_and_loads_in_a_scope(float64, rng, tmp_path):
    """Dense(activation=a function written with ops): σ′ from the ops it records; saved by its
    name, found again through custom_objects or a custom_object_scope."""
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, activation=cubed)])
    model.compile("sgd", "mse")
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    dense = model.layers[0]
    assert np.allclose(
        model.predict(x, verbose=0), (x @ dense.params["W"].T + dense.params["b"]) ** 3
    )
    model.backpropagate(y, model.forward(x, training=True))
    analytic = dense.grads["W"].copy()
    W = dense.params["W"]
    assert (
        relative_error(
            analytic, numerical_gradient(lambda: model.loss_value(y, model.forward(x)), W)
        )
        < 1e-6
    )
    assert dense.get_config()["activation"]["config"] == "cubed"  # by its name, as Keras writes it
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="Unknown activation 'cubed'"):
        keras.models.load_model(tmp_path / "m.keras")
    with saving.custom_object_scope({"cubed": cubed}):
        loaded = keras.models.load_model(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", custom_objects={"cubed": cubed})
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_serialize_keras_object_writes_keras_s_form_and_reads_it_back():
    reg = keras.regularizers.L1L2(l1=1e-5, l2=1e-4)
    config = saving.serialize_keras_object(reg)
    assert config == {"module": "keras.regularizers", "class_name": "L1L2",
                      "config": {"l1": 1e-5, "l2": 1e-4}, "registered_name": None}  # fmt: skip
    assert saving.deserialize_keras_object(config).get_config() == reg.get_config()
    dense = saving.deserialize_keras_object(saving.serialize_keras_object(layers.Dense(3)))
    assert isinstance(dense, layers.Dense) and dense.units == 3
    assert (
        saving.serialize_keras_object(keras.optimizers.Adam(0.01))["module"] == "keras.optimizers"
    )
    with pytest.raises(ValueError, match="Could not deserialize 'Mystery'"):
        saving.deserialize_keras_object({"module": None, "class_name": "Mystery", "config": {}})


def test_a_layer_whose_get_config_leaves_out_its_name_keeps_the_graphs(tmp_path):
    class Scale(layers.Layer):  # the saving guide's CustomLayer: get_config has no name
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {"factor": self.factor}

    inputs = keras.Input((2,))
    model = keras.Model(inputs, layers.Dense(1)(Scale(0.5)(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Scale": Scale})
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_what_a_layer_returns_on_arrays_answers_numpy_and_carries_its_mask():
    """keras.io's masking guide: the mask rides on what Embedding returns, the next layer called
    on it reads it, a layer's own compute_mask splits it; symbolically too."""

    class TemporalSplit(layers.Layer):
        def call(self, inputs):
            return ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None if mask is None else ops.split(mask, 2, axis=1)

    padded = keras.utils.pad_sequences([[711, 632, 71], [73, 8, 3215, 55]], padding="post")
    embedded = layers.Embedding(5000, 4, mask_zero=True)(padded)
    assert embedded._keras_mask.tolist() == [[True, True, True, False], [True] * 4]
    assert isinstance(embedded.numpy(), np.ndarray) and type(embedded.numpy()) is np.ndarray
    first, second = TemporalSplit()(embedded)
    assert first._keras_mask.tolist() == [[True, True], [True, True]]
    assert second._keras_mask.tolist() == [[True, False], [True, True]]
    lstm = layers.LSTM(3)
    assert np.allclose(lstm(embedded), lstm(np.asarray(embedded), mask=padded != 0))
    inputs = keras.Input((None,), dtype="int32")
    x = layers.Embedding(10, 4, mask_zero=True)(inputs)
    assert x._keras_mask is not None and x._keras_mask.shape == (None, None)
    assert layers.Dense(2)(x)._keras_mask is not None  # (batch, steps, …) kept: passed on
    assert layers.LSTM(2)(x)._keras_mask is None  # the last output only: the mask ends
    assert layers.Embedding(10, 4)(inputs)._keras_mask is None
