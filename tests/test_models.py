"""Sequential: whole-model gradient checks, the Keras API, weights, bad input."""

import re

import numpy as np
import pytest

import glassnet
from glassnet import callbacks
from glassnet.layers import Activation, Dense, Dropout, Flatten, Input
from glassnet.models import Sequential
from glassnet.utils import to_categorical
from tests.gradcheck import numerical_gradient, relative_error
from tests.small_models import small_model, small_problem

# ---- whole models against finite differences ---------------------------------------------------


@pytest.mark.parametrize(
    "loss, head",
    [
        ("categorical_crossentropy", Dense(4, activation="softmax")),  # case 1 shortcut
        ("sparse_categorical_crossentropy", Dense(4)),  # from_logits below
        ("binary_crossentropy", Dense(4, activation="sigmoid")),  # case 1 shortcut
        ("mean_squared_error", Dense(4, activation="tanh")),  # the general path
        ("categorical_crossentropy", Activation("softmax")),  # softmax as its own layer
    ],
)
def test_whole_model_gradients(loss, head, float64, rng):
    if isinstance(head, Dense):
        head = Dense(head.units, activation=head.activation)  # rebuilt under float64
    from_logits = loss == "sparse_categorical_crossentropy"
    model = Sequential(
        [
            Input(shape=(3, 2)),
            Flatten(),
            Dense(5, activation="tanh"),
            Dense(4 if isinstance(head, Activation) else 6, activation="sigmoid"),
            head,
        ]
    )
    lossfn = glassnet.losses.get(loss)
    lossfn.from_logits = from_logits
    model.compile(optimizer="sgd", loss=lossfn)
    x = rng.normal(size=(7, 3, 2))
    labels = rng.integers(0, 4, size=7)
    y = {
        "sparse_categorical_crossentropy": labels,
        "binary_crossentropy": rng.integers(0, 2, size=(7, 4)).astype(float),
        "mean_squared_error": rng.normal(size=(7, 4)),
    }.get(loss, to_categorical(labels, 4))
    y = model.check_data(x, y)[1][0]

    model.backpropagate(y, model.forward(x, training=True))
    analytic = [g.copy() for layer in model.layers for g in layer.grads.values()]
    params = [p for layer in model.layers for p in layer.params.values()]

    def C():
        return model.loss_value(y, model.forward(x))

    for p, g in zip(params, analytic):
        assert relative_error(g, numerical_gradient(C, p)) < 1e-6


def test_fused_path_is_used_for_softmax_cross_entropy():
    model = Sequential([Input(shape=(2,)), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    assert model.case_1()
    model.compile(loss="mse")
    assert not model.case_1()


# ---- the Keras API -------------------------------------------------------------------------------


def test_fit_returns_history_with_keras_keys(rng):
    x, y = small_problem(rng)
    history = small_model().fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x, y))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1, 2]
    assert all(len(v) == 3 for v in history.history.values())


def test_validation_split_takes_the_last_samples(rng):
    x, y = small_problem(rng, n=100)
    model = small_model()
    seen = []
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=10,
        verbose=0,
        validation_split=0.2,
        callbacks=[
            callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
        ],
    )
    assert len(seen) == 8  # 80 training samples in batches of 10
    assert "val_loss" in model.history.history


def test_initial_epoch(rng):
    x, y = small_problem(rng)
    history = small_model().fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]


def test_evaluate_predict_and_batches(rng):
    x, y = small_problem(rng, n=50)
    model = small_model()
    loss, acc = model.evaluate(x, y, verbose=0)
    assert 0 <= acc <= 1 and loss > 0
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "accuracy"}
    full = model.predict(x, verbose=0)
    assert full.shape == (50, 2) and full.dtype == np.float32
    np.testing.assert_allclose(model.predict(x, batch_size=7, verbose=0), full, rtol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x), full, rtol=1e-6)
    np.testing.assert_allclose(full.sum(axis=1), 1, rtol=1e-5)


def test_train_and_test_on_batch(rng):
    x, y = small_problem(rng, n=16)
    model = small_model()
    loss, acc = model.train_on_batch(x, y)
    assert loss > 0 and 0 <= acc <= 1
    assert model.optimizer.iterations == 1
    assert len(model.test_on_batch(x, y)) == 2


def test_loss_only_evaluate_returns_a_float(rng):
    model = Sequential([Input(shape=(4,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(8, 4))
    assert isinstance(model.evaluate(x, x[:, :1], verbose=0), float)


def test_model_builds_from_first_data(rng):
    model = Sequential([Dense(3, activation="relu"), Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(rng.normal(size=(10, 5)), rng.normal(size=(10, 2)), verbose=0)
    assert model.input_shape == (None, 5)
    assert model.count_params() == 5 * 3 + 3 + 3 * 2 + 2


def test_input_shape_keyword_builds_immediately():
    model = Sequential([Dense(4, input_shape=(3,)), Dense(1)])
    assert model.built and model.count_params() == 3 * 4 + 4 + 5


def test_weights_and_trainable(rng):
    model = small_model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 8), (8,), (8, 2), (2,)]
    model.set_weights([np.zeros_like(w) for w in weights])
    assert all((w == 0).all() for w in model.get_weights())
    assert len(model.trainable_weights) == 4
    x, y = small_problem(rng)
    model.fit(x, y, verbose=0)  # train once with every layer trainable, then freeze one
    model.set_weights([np.zeros_like(w) for w in weights])
    model.layers[0].trainable = False
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    assert (model.layers[0].get_weights()[0] == 0).all()  # frozen
    assert len(model.trainable_weights) == 2


def test_summary_matches_keras_layout():
    model = Sequential(
        [
            Input(shape=(784,)),
            Dense(512, activation="relu"),
            Dropout(0.2),
            Dense(10, activation="softmax"),
        ]
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert lines[0] == 'Model: "sequential"'
    assert re.search(r"│ dense \(Dense\) +│ \(None, 512\) +│ +401,920 │", text)
    assert re.search(r"│ dropout \(Dropout\) +│ \(None, 512\) +│ +0 │", text)
    assert " Total params: 407,050 (1.55 MB)" in lines
    assert " Non-trainable params: 0 (0.00 B)" in lines


def test_summary_of_unbuilt_model():
    lines = []
    Sequential([Dense(2, name="d")], name="later").summary(print_fn=lines.append)
    assert lines == [  # what Keras 3 prints for the same model
        'Model: "later"',
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
        "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
        "│ d (Dense)                       │ ?                      │   0 (unbuilt) │",
        "└─────────────────────────────────┴────────────────────────┴───────────────┘",
        " Total params: 0 (0.00 B)",
        " Trainable params: 0 (0.00 B)",
        " Non-trainable params: 0 (0.00 B)",
    ]


# ---- bad input --------------------------------------------------------------------------------


def test_fit_before_compile():
    model = Sequential([Input(shape=(2,)), Dense(1)])
    with pytest.raises(RuntimeError, match=r"You must call compile\(\) before fit\(\)"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)))


def test_a_model_with_no_loss_anywhere_says_so_when_it_trains():
    model = Sequential([Input(shape=(2,)), Dense(1)])
    model.compile(optimizer="sgd")  # Keras takes no loss: the layers may add theirs
    with pytest.raises(ValueError) as caught:
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)
    assert "No loss to compute: pass a loss to compile(), e.g. loss='categorical_crossentropy'" in (
        str(caught.value)
    )
    assert "or add one in a layer's call() with self.add_loss(...)" in str(caught.value)


def test_wrong_input_shape_names_both_shapes(rng):
    model = small_model()
    with pytest.raises(
        ValueError,
        match=r"Input x has shape \(3, 5\), but the model expects "
        r"\(None, 4\)\..*\(3×5\)·\(4×8\): the inner sizes 5 and "
        r"4 differ",
    ):
        model.predict(rng.normal(size=(3, 5)))


def test_unflattened_images_get_a_hint():
    model = Sequential([Input(shape=(784,)), Dense(10)])
    with pytest.raises(ValueError, match=r"Flatten each sample first: x.reshape\(len\(x\), 784\)"):
        model.predict(np.zeros((2, 28, 28)))


def test_x_and_y_lengths_differ(rng):
    x, y = small_problem(rng)
    with pytest.raises(ValueError, match="received x with 64 and y with 63"):
        small_model().fit(x, y[:-1], verbose=0)


def test_empty_dataset():
    with pytest.raises(ValueError, match=r"Received an empty dataset: x has shape \(0, 4\)"):
        small_model().fit(np.zeros((0, 4)), np.zeros(0, dtype=int), verbose=0)


@pytest.mark.parametrize("batch_size", [0, -5, 2.5])
def test_batch_size_must_be_positive(batch_size, rng):
    x, y = small_problem(rng)
    with pytest.raises(ValueError, match=f"Received batch_size={batch_size}. Expected a positive"):
        small_model().fit(x, y, batch_size=batch_size, verbose=0)


def test_nan_in_input(rng):
    x, y = small_problem(rng)
    x[3, 1] = np.nan
    x[5, 0] = np.inf
    with pytest.raises(ValueError, match="x contains NaN or infinity in 2 sample"):
        small_model().fit(x, y, verbose=0)


def test_huge_but_finite_input_is_accepted(rng):
    x, y = small_problem(rng)
    x = x.astype(np.float32)
    x[:, 0] = 3e38  # finite, though their sum overflows
    model = small_model()
    with np.errstate(over="ignore", invalid="ignore"):  # the network itself may overflow
        assert model.predict(x, verbose=0).shape == (len(x), 2)


def test_labels_out_of_range_in_fit(rng):
    x, y = small_problem(rng)
    y[0] = 7
    with pytest.raises(ValueError, match=r"class labels \[7\] outside 0\.\.1"):
        small_model().fit(x, y, verbose=0)


def test_non_numeric_input():
    with pytest.raises(TypeError, match="x holds strings, but the model's input takes numbers"):
        small_model().predict(np.array([["a", "b", "c", "d"]]))
    with pytest.raises(TypeError, match="x must hold numbers; received an array of dtype complex"):
        small_model().predict(np.ones((1, 4), dtype=complex))


def test_unknown_metric_name():
    with pytest.raises(ValueError, match=r"Unknown metric: 'acuracy'\. Did you mean 'accuracy'\?"):
        small_model().compile(loss="mse", metrics=["acuracy"])


def test_only_layers_can_be_added():
    with pytest.raises(TypeError, match="Only glassnet layers can be added"):
        Sequential().add("dense")


def test_accuracy_resolves_like_keras(rng):
    x, y = small_problem(rng)
    out = np.zeros((1, 3))

    def resolved(y_true, y_pred):
        return type(glassnet.metrics.get("accuracy", y_true=y_true, y_pred=y_pred)).__name__

    assert resolved(y, out) == "SparseCategoricalAccuracy"
    assert resolved(to_categorical(y), out) == "CategoricalAccuracy"
    assert resolved(y[:, None], np.zeros((1, 1))) == "BinaryAccuracy"


def test_weights_are_keras_variables_that_write_through(rng):
    model = Sequential([Input((3,)), Dense(2, name="d")])
    model.compile(optimizer="sgd", loss="mse")
    kernel = model.layers[0].kernel
    assert (kernel.name, kernel.path, kernel.shape, kernel.dtype, kernel.trainable) == (
        "kernel", "d/kernel", (3, 2), "float32", True)  # fmt: skip
    assert [v.name for v in model.weights] == ["kernel", "bias"]
    np.testing.assert_array_equal(np.asarray(kernel), model.get_weights()[0])
    snapshot = kernel.numpy()
    kernel.assign(np.ones((3, 2)))
    assert not np.array_equal(snapshot, kernel.numpy())  # numpy() was a copy
    np.testing.assert_array_equal(model.layers[0].params["W"], np.ones((2, 3)))  # W = kernelᵀ
    np.testing.assert_allclose(model.predict(np.ones((1, 3)), verbose=0), [[3.0, 3.0]])
    model.layers[0].bias.assign_add([1.0, -1.0])
    np.testing.assert_allclose(model.predict(np.ones((1, 3)), verbose=0), [[4.0, 2.0]])
    model.train_on_batch(np.ones((1, 3)), np.zeros((1, 2)))  # the optimizer sees the assigned W
    assert (kernel.numpy() < 1).all()
    assert float((kernel + 1)[0, 0]) == float(kernel.numpy()[0, 0] + 1)
    with pytest.raises(ValueError, match=r"Cannot assign a value of shape \(2, 3\) to d/kernel"):
        kernel.assign(np.ones((2, 3)))


def test_guide_idioms_feature_extraction_and_functions_as_losses_and_metrics(rng):
    # From keras.io's Sequential guide: a model of every layer's output.
    model = Sequential([Input((5,)), Dense(4, activation="relu"), Dense(3), Dense(2)])
    extractor = glassnet.Model(
        inputs=model.inputs, outputs=[layer.output for layer in model.layers]
    )
    features = extractor(np.ones((1, 5)))
    assert [f.shape for f in features] == [(1, 4), (1, 3), (1, 2)]
    assert model.layers[1].input is model.layers[0].output
    # Losses and metrics given as functions, as keras.io's guides do.
    model.compile(
        optimizer="sgd",
        loss=glassnet.losses.mean_squared_error,
        metrics=[glassnet.metrics.binary_accuracy, lambda y, a: np.abs(y - a).max(-1)],
    )
    assert type(model.output_losses[0]).__name__ == "MeanSquaredError"
    logs = model.evaluate(np.ones((4, 5)), np.zeros((4, 2)), verbose=0, return_dict=True)
    assert set(logs) == {"loss", "binary_accuracy", "<lambda>"}
    model.compile(optimizer="sgd", loss=lambda y, a: ((y - a) ** 2).mean(-1))  # recorded ops
    assert model.evaluate(np.ones((4, 5)), np.zeros((4, 2)), verbose=0) == pytest.approx(
        float((model.predict(np.ones((4, 5)), verbose=0) ** 2).mean()), rel=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="has 2 inbound nodes"):
        shared = Dense(2)
        x = Input((2,))
        shared(shared(x)).node.layer.output  # noqa: B018 - the property raises
