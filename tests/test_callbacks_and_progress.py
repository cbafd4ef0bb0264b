"""fit's callbacks in Keras's order, the ones that decide and write, and the progress bar."""

import io
import re

import numpy as np
import pytest

import glassnet
from glassnet import callbacks
from glassnet.layers import Dense, Input
from glassnet.models import Sequential
from tests.small_models import small_model, small_problem

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
