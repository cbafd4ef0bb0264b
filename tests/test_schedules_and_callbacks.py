"""Learning-rate schedules against Keras's own values; LearningRateScheduler, ReduceLROnPlateau
worked by hand; BackupAndRestore across a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet
from glassnet.callbacks import BackupAndRestore, LearningRateScheduler, ReduceLROnPlateau
from glassnet.layers import Dense, Input
from glassnet.models import Sequential, load_model
from glassnet.optimizers import SGD, schedules

KERAS_VALUES = json.loads(
    (Path(__file__).parent / "fixtures" / "keras" / "schedules.json").read_text()
)


@pytest.mark.parametrize("name", sorted(KERAS_VALUES))
def test_each_schedule_gives_keras_values(name):
    schedule = schedules.deserialize(KERAS_VALUES[name]["config"])
    ours = [schedule(step) for step in range(30)]
    np.testing.assert_allclose(ours, KERAS_VALUES[name]["values"], rtol=1e-6)
    assert schedules.serialize(schedule)["config"] == schedule.get_config()


def test_the_optimizer_takes_eta_from_the_schedule_at_each_step():
    # w ← w − η(t)·g with g = 1: the steps are η(0), η(1), η(2) = 0.1, 0.05, 0.025.
    w, g = np.array([1.0]), np.array([1.0])
    opt = SGD(learning_rate=schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5))
    for expected in (0.9, 0.85, 0.825):
        opt.apply([(w, g)])
        assert w[0] == pytest.approx(expected)
    with pytest.raises(TypeError, match="follows a schedule"):
        opt.learning_rate = 0.3


def test_a_schedule_is_saved_and_resumes(tmp_path, rng):
    model = Sequential([Input((3,)), Dense(2)])
    model.compile(optimizer=SGD(schedules.InverseTimeDecay(0.1, 2, 1.0), momentum=0.5), loss="mse")
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = load_model(tmp_path / "m.keras")
    assert isinstance(restored.optimizer.schedule, schedules.InverseTimeDecay)
    for m in (model, restored):
        m.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_zero_is_accepted_as_in_keras():
    assert SGD(learning_rate=0.0).learning_rate == 0.0
    with pytest.raises(ValueError, match=r"Received learning_rate=-1. Expected a non-negative"):
        SGD(learning_rate=-1)


def test_learning_rate_scheduler_sets_eta_each_epoch(rng):
    model = Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer=SGD(0.1), loss="mse")
    seen = []
    history = model.fit(
        rng.normal(size=(8, 3)), rng.normal(size=8), epochs=3, verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch, lr: lr / 2),
                   glassnet.callbacks.LambdaCallback(
                       on_epoch_begin=lambda e, logs: seen.append(model.optimizer.learning_rate))],
    )  # fmt: skip
    assert seen == [0.05, 0.025, 0.0125]
    assert history.history["learning_rate"] == [0.05, 0.025, 0.0125]
    with pytest.raises(ValueError, match='output of the "schedule" function should be a float'):
        model.fit(np.zeros((2, 3)), np.zeros(2), verbose=0,
                  callbacks=[LearningRateScheduler(lambda epoch: "fast")])  # fmt: skip


class FakeModel:
    def __init__(self, lr):
        self.optimizer = SGD(lr)


def test_reduce_lr_on_plateau_by_hand():
    # patience 2, factor 0.5, cooldown 1, min_lr 0.02; the loss stalls after epoch 1.
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, cooldown=1, min_lr=0.02)
    cb.set_model(FakeModel(0.1))
    cb.on_train_begin()
    rates = []
    for epoch, loss in enumerate([1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]):
        logs = {"loss": loss}
        cb.on_epoch_end(epoch, logs)
        rates.append(round(cb.model.optimizer.learning_rate, 6))
    # Epochs 2 and 3 do not improve on 0.5: η halves at epoch 3. Epoch 4 is the cooldown (its
    # counter reaches 0 there, so it already counts as a stalled epoch, as in Keras); η halves
    # again at epoch 5, and at epoch 7 would reach 0.0125 but stops at min_lr.
    assert rates == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02]
    with pytest.raises(ValueError, match="does not support a factor >= 1.0"):
        ReduceLROnPlateau(factor=1.5)


BACKUP_SCRIPT = """
import os, signal, sys
import numpy as np
import glassnet
from glassnet.callbacks import BackupAndRestore, LambdaCallback
from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential

backup, kill_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
glassnet.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 5)).astype("float32"), rng.integers(0, 3, 96)
model = Sequential([Input((5,)), Dense(16, activation="relu"), Dropout(0.3),
                    Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
steps = []

def maybe_die(batch, logs):
    steps.append(batch)
    if len(steps) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # mid-epoch, as a crash or an OOM killer would

model.fit(x, y, batch_size=16, epochs=4, verbose=0,
          callbacks=[BackupAndRestore(backup), LambdaCallback(on_train_batch_end=maybe_die)])
np.savez(out, *model.get_weights())
"""


def test_backup_and_restore_survives_sigkill_mid_epoch(tmp_path):
    def run(backup, kill_at, out):
        return subprocess.run(
            [sys.executable, "-c", BACKUP_SCRIPT, str(backup), str(kill_at), str(out)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    never = run(tmp_path / "b1", 0, tmp_path / "never.npz")
    assert never.returncode == 0, never.stderr
    killed = run(tmp_path / "b2", 15, tmp_path / "killed.npz")  # 6 steps an epoch: epoch 3
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "b2" / "training_metadata.json").exists()
    resumed = run(tmp_path / "b2", 0, tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert not (tmp_path / "b2").exists()  # deleted once training ended
    a, b = np.load(tmp_path / "never.npz"), np.load(tmp_path / "resumed.npz")
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert os.path.exists(tmp_path / "killed.npz") is False
    with pytest.raises(NotImplementedError, match="save_freq='epoch' only"):
        BackupAndRestore(tmp_path, save_freq=10)


def test_model_checkpoint_every_few_batches_names_its_files_from_the_logs(tmp_path, rng):
    from glassnet.callbacks import ModelCheckpoint
    from glassnet.models import load_model

    model = Sequential([Input(shape=(3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.normal(size=(48, 3)), rng.normal(size=(48, 1))  # 6 batches of 8 an epoch
    every_four = ModelCheckpoint(str(tmp_path / "m-{epoch}-{batch}-{loss:.2f}.keras"), save_freq=4)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[every_four], verbose=0)
    saved = sorted(p.name.split("-")[:3] for p in tmp_path.glob("*.keras"))
    assert saved == [["m", "1", "3"], ["m", "2", "1"], ["m", "2", "5"]]  # batches 4, 8, 12
    assert load_model(next(tmp_path.glob("m-2-5-*.keras"))).count_params() == 4
    for bad in (0, -3, 2.5, "batch"):
        with pytest.raises(ValueError, match="Expected 'epoch' or a positive number of batches"):
            ModelCheckpoint("m.keras", save_freq=bad)
