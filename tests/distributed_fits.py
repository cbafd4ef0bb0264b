"""The fits that tests/test_distribution.py compares: run alone they train on one process; started
by ``mpiexec -n 2 python -m mpi4py tests/distributed_fits.py OUT CASE …`` every rank trains its
share under ``DataParallel`` and writes what it ended with to OUT/CASE.rank<r>.npz (weights) and
OUT/CASE.rank<r>.json (the history's logs).

Cases: mlp, cnn, lstm (global batch 32 on 203 samples: a last batch of 11 rows), ragged (193
samples: the last batch has one row, so rank 1 has none), weights (sample_weight), validation
(validation_split and EarlyStopping), files (every file-writing callback and save, in OUT/files),
added (a layer that adds a loss, the mean of its output's squares, to C with add_loss, in the
model and in a model nested in it, and an L2 regularizer), backup (BackupAndRestore with
dropout; ``--kill-at E`` kills rank 1 in epoch E), raise (rank 1 raises in epoch 2), kill (rank
1 kills itself in epoch 2), batches (train_on_batch over 203 samples in order), trace
(glassbox.trace of one step on 7 samples, written by rank 0 to OUT/trace.txt and
OUT/trace.json).

``--shared-from BYTES`` sets ``distribution.SHARED_FROM``: these models' gradient buffers are
1–2 KB, below the size from which fit sums from shared memory, so the tests pass 0 to take that
path with them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import glassnet
from glassnet import callbacks, glassbox, layers, ops

SAMPLES = {"ragged": 193}
BATCH = 32


def data(case: str):
    """Random inputs shaped for the case's model, and labels a small model can learn."""
    rng = np.random.default_rng(1)
    n = SAMPLES.get(case, 203)
    shape = {"cnn": (8, 8, 1), "lstm": (5, 4)}.get(case, (12,))
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = (x.reshape(n, -1)[:, :3].argmax(axis=1)).astype("int64")
    return x, y


class Penalized(layers.Layer):
    """Its input unchanged; adds 0.1 × the mean of its squares to C, as Keras's add_loss."""

    def call(self, x):
        self.add_loss(0.1 * ops.mean(ops.square(x)))
        return x


def build(case: str) -> glassnet.Model:
    glassnet.utils.set_random_seed(0)
    if case == "cnn":
        body = [layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                layers.MaxPooling2D(2), layers.Flatten()]  # fmt: skip
    elif case == "lstm":
        body = [layers.Input((5, 4)), layers.LSTM(6)]
    else:
        body = [layers.Input((12,)), layers.Dense(16, activation="relu")]
        if case == "added":  # the penalty once in the model, once inside a nested one
            inner = layers.Input((16,))
            nested = glassnet.Model(inner, Penalized()(layers.Dense(16)(inner)), name="nested")
            body = [layers.Input((12,)), layers.Dense(16, kernel_regularizer="l2"), Penalized(),
                    nested, layers.Activation("relu")]  # fmt: skip
        if case == "backup":
            body.append(layers.Dropout(0.3))
    model = glassnet.Sequential([*body, layers.Dense(3, activation="softmax")])
    model.compile(optimizer=glassnet.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    return model


class Fail(callbacks.Callback):
    """On rank 1, in epoch ``epoch``: raise, or die as a killed process does."""

    def __init__(self, how: str, epoch: int):
        super().__init__()
        self.how, self.epoch = how, epoch

    def on_train_batch_end(self, batch, logs=None):
        if glassnet.backend.process_index() != 1 or self.current != self.epoch or batch != 2:
            return
        if self.how == "raise":
            raise ValueError("rank 1 gives up on purpose")
        os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch


def fit(case: str, out: Path, kill_at: int | None = None):
    """Train the case's model; return it and its history."""
    x, y = data(case)
    model = build(case)
    kwargs: dict = {"batch_size": BATCH, "epochs": 3, "verbose": 0}
    if case == "weights":
        kwargs["sample_weight"] = np.linspace(0.2, 2.0, len(y))
    if case == "validation":
        kwargs.update(validation_split=0.25, epochs=6, callbacks=[
            callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=0.1)])  # fmt: skip
    if case == "files":
        folder = out / "files"
        folder.mkdir(exist_ok=True)  # CSVLogger, as Keras's, writes into a folder that exists
        kwargs["callbacks"] = [
            callbacks.ModelCheckpoint(str(folder / "best.keras")),
            callbacks.CSVLogger(str(folder / "log.csv")),
            callbacks.TensorBoard(str(folder / "tb")),
            callbacks.BackupAndRestore(str(folder / "backup"), delete_checkpoint=False),
        ]
    if case == "backup":
        kwargs.update(epochs=4, callbacks=[callbacks.BackupAndRestore(str(out / "backup"))])
        if kill_at is not None:
            kwargs["callbacks"].append(Fail("kill", kill_at))
    if case in ("raise", "kill"):
        kwargs["callbacks"] = [Fail(case, 1)]
    if case == "batches":  # train_on_batch: every rank passes the batch, each takes its share
        logs = [model.train_on_batch(x[i : i + BATCH], y[i : i + BATCH], return_dict=True)
                for i in range(0, len(x), BATCH)]  # fmt: skip
        history = callbacks.History()
        history.history = {k: [log[k] for log in logs] for k in logs[0]}
        return model, history
    history = model.fit(x, y, **kwargs)
    if case == "files":
        model.save(out / "files" / "final.keras")
    return model, history


def write(case: str, out: Path, model, history) -> None:
    rank = glassnet.backend.process_index()
    np.savez(out / f"{case}.rank{rank}.npz", *model.get_weights())
    (out / f"{case}.rank{rank}.json").write_text(json.dumps(history.history))
    dist = glassnet.distribution.distribution()
    shared = all(dist.shares(g) for _, g in model.pack_parameters())  # still, after training
    (out / f"{case}.rank{rank}.shared").write_text(str(shared))


def main(argv: list[str]) -> int:
    out, cases = Path(argv[0]), argv[1:]
    options = {}
    for option in ("--kill-at", "--shared-from"):
        if option in cases:
            i = cases.index(option)
            options[option], cases = int(cases[i + 1]), cases[:i] + cases[i + 2 :]
    kill_at = options.get("--kill-at")
    from glassnet import distribution

    distribution.SHARED_FROM = options.get("--shared-from", distribution.SHARED_FROM)
    distribution.set_distribution(distribution.DataParallel())
    if "trace" in cases:  # the glass box on a split step: every rank traces, rank 0 writes
        x, y = data("mlp")
        tr = glassbox.trace(build("mlp"), x[:7], y[:7])
        if glassnet.backend.process_index() == 0:
            (out / "trace.txt").write_text(tr.render())
            with glassnet.i18n.speaking(glassnet.i18n.normalize("zh-TW")):
                (out / "trace.zh-TW.txt").write_text(tr.render())
            (out / "trace.json").write_text(tr.to_json())
        cases.remove("trace")
    for case in cases:
        model, history = fit(case, out, kill_at)
        write(case, out, model, history)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
