"""Sequential: whole-model gradient checks, the Keras API, callbacks, progress, bad input."""

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import glassnet
from glassnet import callbacks
from glassnet.layers import Activation, Dense, Dropout, Flatten, Input
from glassnet.models import Sequential
from glassnet.utils import to_categorical
from tests.gradcheck import numerical_gradient, relative_error

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


def small_problem(rng, n=64):
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, y


def small_model():
    model = Sequential(
        [
            Input(shape=(4,)),
            Dense(8, activation="relu"),
            Dropout(0.1),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


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


# ---- callbacks ---------------------------------------------------------------------------------


def test_hooks_are_called_in_keras_order(rng):
    events = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_train_batch_end(self, batch, logs=None):
            events.append(f"batch_end {batch} {sorted(logs)}")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    x, y = small_problem(rng, n=20)
    small_model().fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[Recorder()])
    assert events == [
        "train_begin",
        "epoch_begin 0",
        "batch_end 0 ['accuracy', 'loss']",
        "batch_end 1 ['accuracy', 'loss']",
        "epoch_end 0 ['accuracy', 'loss']",
        "train_end",
    ]


def test_early_stopping_restores_best_weights(rng):
    x, y = small_problem(rng)
    model = small_model()
    values = iter([1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    snapshots = {}

    class FakeValLoss(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)
            snapshots[epoch] = self.model.get_weights()

    stopper = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[FakeValLoss(), stopper])
    assert history.epoch == [0, 1, 2, 3] and stopper.stopped_epoch == 3
    for got, best in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(got, best)


def test_early_stopping_warns_about_missing_metric(rng):
    x, y = small_problem(rng)
    with pytest.warns(
        UserWarning, match="`val_los` which is not available. Available metrics are: accuracy,loss"
    ):
        small_model().fit(
            x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_los")]
        )


def test_model_checkpoint_best_only(rng, tmp_path):
    x, y = small_problem(rng)
    path = tmp_path / "best.keras"
    cb = callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    small_model().fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert path.exists()
    restored = glassnet.models.load_model(path)
    assert restored.count_params() == 4 * 8 + 8 + 8 * 2 + 2


def test_csv_logger(rng, tmp_path):
    x, y = small_problem(rng)
    path = tmp_path / "log.csv"
    small_model().fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,loss" and len(lines) == 3


def test_terminate_on_nan(rng, capsys):
    model = Sequential([Input(shape=(4,)), Dense(1)])
    model.compile(optimizer=glassnet.optimizers.SGD(learning_rate=1e30), loss="mse")
    x = rng.normal(size=(64, 4)) * 1e10
    with np.errstate(all="ignore"):
        history = model.fit(
            x, x[:, :1], epochs=3, batch_size=8, verbose=0, callbacks=[callbacks.TerminateOnNaN()]
        )
    assert len(history.epoch) == 1
    assert "Invalid loss, terminating training" in capsys.readouterr().out


def test_callbacks_must_be_callbacks(rng):
    x, y = small_problem(rng)
    with pytest.raises(
        TypeError,
        match="Expected callbacks to be glassnet.callbacks.Callback instances; received 'oops'",
    ):
        small_model().fit(x, y, verbose=0, callbacks=["oops"])


# ---- progress output -----------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def fit_with_progress(rng, stream, verbose):
    x, y = small_problem(rng, n=40)
    small_model().fit(
        x,
        y,
        epochs=2,
        batch_size=10,
        verbose=0,
        validation_data=(x, y),
        callbacks=[callbacks.ProgbarLogger(verbose=verbose, stream=stream)],
    )
    return stream.getvalue()


def test_progress_in_a_log_has_no_redraw_characters(rng):
    out = fit_with_progress(rng, io.StringIO(), verbose=1)
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2"
    assert re.fullmatch(
        r"4/4 ━{20} \d+s \d+(ms|us)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4} "
        r"- val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}",
        lines[1],
    )
    assert len(lines) == 4


def test_progress_on_a_terminal_redraws(rng):
    out = fit_with_progress(rng, FakeTerminal(), verbose=1)
    assert "\r" in out and "Epoch 2/2" in out


def test_verbose_2_prints_one_line_per_epoch(rng):
    lines = fit_with_progress(rng, io.StringIO(), verbose=2).splitlines()
    assert re.fullmatch(
        r"4/4 - \d+s - \d+(ms|us)/step - accuracy: .* - val_loss: \d\.\d{4}", lines[1]
    )


# ---- bad input --------------------------------------------------------------------------------


def test_fit_before_compile():
    model = Sequential([Input(shape=(2,)), Dense(1)])
    with pytest.raises(RuntimeError, match=r"You must call compile\(\) before fit\(\)"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)))


def test_compile_needs_a_loss():
    with pytest.raises(ValueError, match="compile\\(\\) needs a loss"):
        Sequential([Dense(1)]).compile(optimizer="sgd")


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
    with pytest.raises(TypeError, match="x must hold numbers; received an array of dtype <U1"):
        small_model().predict(np.array([["a", "b", "c", "d"]]))


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


def test_profiler_accounts_for_each_layer_and_restores_methods(rng):
    x, y = small_problem(rng, n=64)
    model = small_model()
    profiler = callbacks.Profiler()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[profiler])
    assert profiler.steps == 8
    report = profiler.report().splitlines()
    assert report[0].split()[:4] == ["layer", "forward", "backward", "update"]
    assert [line.split()[0] for line in report[1:4]] == ["dense", "dropout", "dense_1"]
    assert profiler.rows["dense"]["update"] > 0 and profiler.rows["dropout"]["update"] == 0
    assert all(row["forward"] > 0 and row["backward"] > 0 for row in profiler.rows.values())
    # Nothing stays wrapped: the next fit runs the layers' own methods.
    assert "forward" not in vars(model.layers[0]) and "update" not in vars(model.optimizer)


def test_profiler_leaves_validation_out_of_the_training_steps(rng, monkeypatch):
    """Validation runs the layers' forward passes too, between the steps: not training time."""
    x, y = small_problem(rng, n=64)
    model = small_model()
    profiler = callbacks.Profiler()
    clock = iter(range(10**6))  # each reading of the clock one second later
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: float(next(clock)))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y),
              callbacks=[profiler])  # fmt: skip
    passes = sum(row["forward"] + row["backward"] for row in profiler.rows.values())
    assert passes <= profiler.total  # the steps' time holds the passes' time, nothing more
    assert profiler.rows["dense"]["forward"] == profiler.steps  # one timed forward per step


@pytest.mark.parametrize("spinning", [False, True])
def test_profiler_says_when_blas_threads_spin(rng, monkeypatch, spinning):
    monkeypatch.setattr(glassnet.backend, "BLAS_THREADS_SPIN", spinning)
    x, y = small_problem(rng, n=32)
    profiler = callbacks.Profiler()
    small_model().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[profiler])
    hint = "NumPy was imported before glassnet, so OpenBLAS's idle threads spin"
    assert (hint in profiler.report()) is spinning


@pytest.mark.parametrize(
    ("imports", "env", "spin", "threads"),
    [
        ("import glassnet", {}, False, "cpus"),
        # OpenBLAS loaded before glassnet could ask: it is asked to read its environment again
        ("import numpy, glassnet", {}, False, "cpus"),
        ("import numpy, glassnet", {"OPENBLAS_THREAD_TIMEOUT": "4"}, False, "cpus"),
        ("import numpy, glassnet", {"GLASSNET_NUM_THREADS": "3"}, False, 3),  # the user decides
    ],
)
def test_own_threads_follow_the_import_order(imports, env, spin, threads):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_THREAD_TIMEOUT", "GLASSNET_NUM_THREADS")
    }
    code = f"{imports}; b = glassnet.backend; print(b.BLAS_THREADS_SPIN, b.num_threads())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert out == [str(spin), str(cpus if threads == "cpus" else threads)]


SPIN_CHECK = """
import time, numpy
{import_glassnet}
a = numpy.ones((512, 512), numpy.float32)
a @ a  # OpenBLAS's workers join in, then spin or sleep
cpu = time.process_time()
time.sleep(0.2)
print(time.process_time() - cpu)
"""


@pytest.mark.skipif(
    (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) < 2,
    reason="one CPU: OpenBLAS starts no worker threads",
)
def test_blas_threads_sleep_after_a_product_though_numpy_came_first():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "GLASSNET"))}

    def cpu_while_asleep(import_glassnet: str) -> float:
        code = SPIN_CHECK.format(import_glassnet=import_glassnet)
        run = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                             text=True, check=True)  # fmt: skip
        return float(run.stdout)

    assert cpu_while_asleep("") > 0.03  # NumPy alone: a worker spins on for about 0.1 s
    assert cpu_while_asleep("import glassnet") < 0.02  # told to sleep after a short spin


def test_blas_threads_are_left_alone_where_openblas_cannot_restart_them(monkeypatch):
    class Library:  # a BLAS build without the functions that restart OpenBLAS's threads
        pass

    monkeypatch.setattr(glassnet.backend.ctypes, "CDLL", lambda path: Library())
    assert glassnet.backend.restart_blas_threads() is False


def test_every_hook_and_its_logs_as_keras_calls_them():
    # The sequence real Keras 3 produced for the same calls (tests/fixtures/keras/hooks.json).
    import json
    from pathlib import Path

    keras = json.loads((Path(__file__).parent / "fixtures/keras/hooks.json").read_text())
    calls = []

    class Recorder(callbacks.Callback):
        pass

    def record(name):
        def hook(self, *args):
            logs = args[-1] if args and not isinstance(args[-1], int) else "missing"
            calls.append([name, None if logs is None else sorted(logs)])

        return hook

    for name in {c[0] for c in keras["calls"]}:
        setattr(Recorder, name, record(name))
    model = Sequential([Input((3,)), Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.zeros((4, 3), "float32"), np.array([0, 1, 0, 1])
    history = model.fit(x, y, batch_size=2, epochs=2, validation_data=(x, y),
                        callbacks=[Recorder()], verbose=0)  # fmt: skip
    model.evaluate(x, y, batch_size=2, callbacks=[Recorder()], verbose=0)
    model.predict(x, batch_size=2, callbacks=[Recorder()], verbose=0)
    assert calls == keras["calls"]
    assert history.params == keras["history_params"]


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
    assert type(model.losses[0]).__name__ == "MeanSquaredError"
    logs = model.evaluate(np.ones((4, 5)), np.zeros((4, 2)), verbose=0, return_dict=True)
    assert set(logs) == {"loss", "binary_accuracy", "<lambda>"}
    with pytest.raises(TypeError, match="subclasses glassnet.losses.Loss with per_sample"):
        model.compile(optimizer="sgd", loss=lambda y, a: ((y - a) ** 2).mean(-1))
    with pytest.raises(ValueError, match="has 2 inbound nodes"):
        shared = Dense(2)
        x = Input((2,))
        shared(shared(x)).node.layer.output  # noqa: B018 - the property raises
