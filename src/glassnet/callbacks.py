"""Callbacks: everything optional in training, hooked into the one loop in ``Model.fit``.

The hooks and their names are Keras's: ``on_train_begin``, ``on_epoch_begin``,
``on_train_batch_begin``, ``on_train_batch_end``, ``on_epoch_end``, ``on_train_end``, and the
``on_test_*``/``on_predict_*`` pairs for ``evaluate`` and ``predict``. The progress bar and
``History`` are callbacks too.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import math
import os
import shutil
import socket
import struct
import sys
import threading
import time
import warnings

from glassnet import backend

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "Profiler",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]

_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class. Override the hooks you need; ``self.model`` is the model being trained."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Calls a hook on every callback in order; ``list.on_epoch_end(3, logs)`` and so on.

    Only callbacks that override a hook are called for it, so a hook nobody uses costs nothing
    per batch.
    """

    def __init__(self, callbacks, model=None, params=None):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"Expected callbacks to be glassnet.callbacks.Callback instances; received "
                    f"{cb!r} of type {type(cb).__name__}."
                )
            if model is not None:
                cb.set_model(model)
            if params is not None:
                cb.set_params(params)
        self._bound = {
            hook: [
                getattr(cb, hook)
                for cb in self.callbacks
                if hook in vars(cb) or getattr(type(cb), hook) is not getattr(Callback, hook)
            ]
            for hook in _HOOKS
        }

    def __getattr__(self, hook):
        if hook not in _HOOKS:
            raise AttributeError(hook)
        methods = self._bound[hook]

        def call(*args):
            for method in methods:
                method(*args)

        return call

    def wants(self, hook: str) -> bool:
        return bool(self._bound[hook])

    def may_stop_a_batch(self) -> bool:
        """Whether a callback that could set ``stop_training`` sees the batches (anything but the
        progress bar and History)."""
        return any(
            not isinstance(cb, (ProgbarLogger, History))
            for hook in ("on_train_batch_begin", "on_train_batch_end")
            for cb in (method.__self__ for method in self._bound[hook])
        )


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is the list of epoch losses."""

    def __init__(self):
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _format_metrics(logs: dict) -> str:
    parts = []
    for key in sorted(logs):
        value = logs[key]
        parts.append(
            f" - {key}: {value:.4f}"
            if abs(value) >= 1e-3 or value == 0
            else f" - {key}: {value:.4e}"
        )
    return "".join(parts)


def _format_time_per_step(seconds: float) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


class ProgbarLogger(Callback):
    """Keras's progress display.

    verbose=1: a live bar per epoch — ``123/469 ━━━━━━━━─────────── 2s 5ms/step - accuracy: …`` —
    redrawn in place on a terminal; anywhere else (a log file, CI, a notebook) only the finished
    line of each epoch is printed, so the output never fills with redraw characters.
    verbose=2: one line per epoch, ``469/469 - 2s - 5ms/step - accuracy: … - loss: …``.
    """

    width = 20
    interval = 0.05  # seconds between redraws

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._in_fit = False  # fit's validation passes show no bar of their own, as in Keras

    @property
    def _out(self):
        return self.stream or sys.stdout

    @property
    def _live(self) -> bool:
        isatty = getattr(self._out, "isatty", None)
        return bool(isatty and isatty())

    def on_train_begin(self, logs=None):
        self.epochs = self.params.get("epochs", 1)
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._begin(self.params.get("steps"))
        self._write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch + 1, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs or {})

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._begin(self.params.get("steps"))

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._update(batch + 1, logs or {})

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finish(logs or {})

    def on_predict_begin(self, logs=None):
        self._begin(self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch + 1, {})

    def on_predict_end(self, logs=None):
        self._finish({})

    # ---- drawing ------------------------------------------------------------------------------

    def _begin(self, steps):
        self.steps = steps
        self.seen = 0
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def _update(self, step, logs):
        self.seen = step
        if self.verbose != 1 or not self._live:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.interval and step < (self.steps or 0):
            return
        self.last_draw = now
        elapsed = now - self.start
        per_step = elapsed / step
        eta = per_step * ((self.steps or step) - step)
        self._write("\r" + self._line(step, _format_duration(eta), per_step, logs) + "\x1b[K")

    def _finish(self, logs):
        elapsed = time.perf_counter() - self.start
        step = self.seen or 0
        per_step = elapsed / step if step else 0.0
        if self.verbose == 2:
            line = (
                f"{step}/{self.steps or step} - {_format_duration(elapsed)} - "
                f"{_format_time_per_step(per_step)}{_format_metrics(logs)}"
            )
        else:
            line = self._line(step, _format_duration(elapsed), per_step, logs)
        self._write(("\r" if self._live else "") + line + ("\x1b[K" if self._live else "") + "\n")

    def _line(self, step, duration, per_step, logs):
        steps = self.steps or step
        digits = len(str(steps))
        filled = int(self.width * step / steps) if steps else self.width
        if self._live:
            bar = f"\x1b[32m{'━' * filled}\x1b[0m\x1b[2m{'━' * (self.width - filled)}\x1b[0m"
        else:
            bar = "━" * filled + "─" * (self.width - filled)
        return (
            f"{step:>{digits}}/{steps} {bar} {duration} "
            f"{_format_time_per_step(per_step)}{_format_metrics(logs)}"
        )

    def _write(self, text):
        if self.verbose:
            self._out.write(text)
            self._out.flush()


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: The logged quantity to watch (``"val_loss"`` by default).
        min_delta: The least change that counts as an improvement.
        patience: Epochs without improvement before stopping.
        mode: ``"min"``, ``"max"``, or ``"auto"`` (max for accuracies, min otherwise).
        baseline: A value the monitored quantity must beat.
        restore_best_weights: Put back the weights of the best epoch when stopping.
        start_from_epoch: Epochs to wait before watching at all.
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Received mode={mode!r}. Expected 'auto', 'min' or 'max'.")
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta) if mode == "max" else -abs(min_delta)

    def _improved(self, value, reference) -> bool:
        if reference is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > reference
        return value - self.min_delta < reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(sorted(logs or {}))}",
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose > 0:
                    print(
                        "Restoring model weights from the end of the best epoch: "
                        f"{self.best_epoch + 1}."
                    )
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after every epoch — or every ``save_freq`` batches —
    or only when ``monitor`` improves.

    ``filepath`` may hold fields filled from the epoch and the logs, e.g.
    ``"model-{epoch:02d}-{val_loss:.2f}.keras"`` (every few batches: the logs so far in the
    epoch, and ``{batch}``). Files are written atomically.
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__()
        every = isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0
        if save_freq != "epoch" and not every:
            raise ValueError(
                f"Received save_freq={save_freq!r}. Expected 'epoch' or a positive number of "
                "batches."
            )
        self.save_freq, self._batches, self._epoch = save_freq, 0, 0
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.best = initial_value_threshold

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1  # counted over epochs, as Keras counts them
        if self._batches % self.save_freq == 0:
            self._save(self._epoch, logs or {}, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs or {})

    def _save(self, epoch, logs, batch=None):
        fields = {**logs, "epoch": epoch + 1}
        if batch is not None:
            fields["batch"] = batch
        path = self.filepath.format(**fields)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                warnings.warn(
                    f"Can save best model only with {self.monitor} available; "
                    f"available: {','.join(sorted(logs))}. Skipping.",
                    stacklevel=2,
                )
                return
            better = self.best is None or (
                value > self.best if self.mode == "max" else value < self.best
            )
            if not better:
                if self.verbose > 0:
                    print(
                        f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}"
                    )
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to "
                    f"{value:.5f}, saving model to {path}"
                )
            self.best = value
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """At the start of each epoch, set η to ``schedule(epoch, η)`` (or ``schedule(epoch)``).

    The η in effect is logged as ``learning_rate``, as Keras logs it.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"Received schedule={schedule!r}. Expected a function of the epoch.")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        current = float(self.model.optimizer.learning_rate)
        try:
            lr = self.schedule(epoch, current)
        except TypeError:  # a schedule of the epoch alone
            lr = self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
            raise ValueError(
                f'The output of the "schedule" function should be a float. Got: {lr!r}'
            )
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """Multiply η by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    After a reduction it waits ``cooldown`` epochs before counting again, and η never goes
    below ``min_lr``. Keras's defaults: monitor="val_loss", factor=0.1, patience=10,
    min_delta=1e-4.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        **kwargs,
    ):
        super().__init__()
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to ReduceLROnPlateau: {kwargs}")
        if not 0 <= factor < 1:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}."
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Received mode={mode!r}. Expected 'auto', 'min' or 'max'.")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode

    def _better(self, value) -> bool:
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_train_begin(self, logs=None):
        self.best = -math.inf if self.mode == "max" else math.inf
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(sorted(logs))}.",
                stacklevel=2,
            )
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(value):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new}.")  # fmt: skip
                    self.cooldown_counter, self.wait = self.cooldown, 0


class BackupAndRestore(Callback):
    """Back up training at the end of every epoch; a run that was killed resumes from there.

    Each backup is the model with its optimizer state (a ``.keras`` file) and the state of every
    random generator training draws from (the batch order, each dropout layer), recorded in
    ``training_metadata.json``, written last and atomically. Started again with the same
    ``backup_dir``, ``fit`` restores all of it and continues with the next epoch, so a run killed
    at any moment ends with the same weights as one never interrupted. When training ends the
    backup is deleted (``delete_checkpoint``).
    """

    METADATA = "training_metadata.json"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):  # fmt: skip
        super().__init__()
        if save_freq != "epoch":
            raise NotImplementedError("BackupAndRestore supports save_freq='epoch' only.")
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint

    def on_train_begin(self, logs=None):
        path = os.path.join(self.backup_dir, self.METADATA)
        if not os.path.exists(path):
            return  # (under data-parallel training rank 0's restored state reaches every rank)
        with open(path) as f:
            metadata = json.load(f)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["model"]), optimizer=True)
        self.model.set_random_generator_states(
            metadata.get("generators_per_process") or [metadata["generators"]]
        )
        self.model.resume_from_epoch = int(metadata["epoch"]) + 1

    def on_epoch_end(self, epoch, logs=None):
        states = self.model.random_generator_states()  # every process's (each draws its own)
        if backend.process_index():
            return  # rank 0 writes the backup
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{epoch + 1}.keras"
        self.model.save(os.path.join(self.backup_dir, name))
        metadata = {"epoch": epoch, "model": name, "generators": states[0]}
        if len(states) > 1:
            metadata["generators_per_process"] = states
        path = os.path.join(self.backup_dir, self.METADATA)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(metadata, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # the backup now points at the new model file
        for old in os.listdir(self.backup_dir):
            if old.startswith("epoch-") and old.endswith(".keras") and old != name:
                os.remove(os.path.join(self.backup_dir, old))

    def on_train_end(self, logs=None):
        if (
            self.delete_checkpoint
            and not backend.process_index()
            and os.path.isdir(self.backup_dir)
        ):
            shutil.rmtree(self.backup_dir)


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file (``epoch`` first, then the sorted keys)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append

    def on_train_begin(self, logs=None):
        self.file = None
        if backend.process_index():
            return  # rank 0 writes the file
        exists = self.append and os.path.exists(self.filename)
        self.file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self.writer = None
        self.keys = None
        self.header_written = exists and os.path.getsize(self.filename) > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.file is None:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self.writer = csv.DictWriter(
                self.file, fieldnames=["epoch", *self.keys], delimiter=self.separator
            )
            if not self.header_written:
                self.writer.writeheader()
        self.writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: …)``."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if name not in _HOOKS:
                raise TypeError(
                    f"LambdaCallback got an unknown hook {name!r}. Valid hooks: "
                    f"{', '.join(_HOOKS)}."
                )
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


# ---- TensorBoard's event files -----------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # Castagnoli's polynomial
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc(data: bytes) -> int:
    """The masked CRC-32C a TFRecord puts after its length and its data."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    """One protobuf field: key, then (for length-delimited fields) length, then payload."""
    key = _varint(number << 3 | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


class _EventFile:
    """An append-only TensorBoard event file: ``Event`` protobufs in TFRecord framing."""

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(folder, f"{name}.{next(_EVENT_FILES)}.v2")
        self.file = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._write(_field(3, 2, b"brain.Event:2"))  # file_version: the first event

    def _write(self, body: bytes, step: int = 0) -> None:
        event = _field(1, 1, struct.pack("<d", time.time())) + _field(2, 0, _varint(step)) + body
        length = struct.pack("<Q", len(event))
        self.file.write(length + struct.pack("<I", _masked_crc(length)))
        self.file.write(event + struct.pack("<I", _masked_crc(event)))

    def scalars(self, values: dict, step: int) -> None:
        """Summary{value: [Value{tag, simple_value}, …]} at ``step``."""
        summary = b"".join(
            _field(1, 2, _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", value)))
            for tag, value in values.items()
        )
        self._write(_field(5, 2, summary), step)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


_EVENT_FILES = itertools.count()


class _NoFile:
    """Where a process other than rank 0 writes its TensorBoard logs: nowhere."""

    def scalars(self, values: dict, step: int) -> None:
        pass


class TensorBoard(Callback):
    """Write the logs as TensorBoard's event files: ``tensorboard --logdir logs`` shows them.

    As Keras: ``log_dir/train`` holds ``epoch_loss``, ``epoch_accuracy``, … per epoch and
    ``log_dir/validation`` the same for the validation data; with ``update_freq=N`` the training
    logs are also written every N batches (``batch_loss``, …). Written by glassnet itself (the
    TFRecord framing and a few protobuf fields): nothing more to install.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):  # fmt: skip
        super().__init__()
        if histogram_freq or embeddings_freq:
            raise NotImplementedError(
                "TensorBoard(histogram_freq=…, embeddings_freq=…) is not supported by glassnet "
                "yet: it writes the scalar logs."
            )
        if update_freq != "epoch" and not (
            isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0
        ):
            raise ValueError(
                f"Received update_freq={update_freq!r}. Expected 'epoch' or a positive integer."
            )
        self.log_dir, self.update_freq = os.fspath(log_dir), update_freq
        self._files: dict[str, _EventFile] = {}
        self._batches = 0

    def _file(self, which: str) -> _EventFile | _NoFile:
        if backend.process_index():
            return _NoFile()  # rank 0 writes the logs
        if which not in self._files:
            self._files[which] = _EventFile(os.path.join(self.log_dir, which))
        return self._files[which]

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.update_freq != "epoch" and self._batches % self.update_freq == 0 and logs:
            values = {f"batch_{k}": float(v) for k, v in logs.items()}
            self._file("train").scalars(values, self._batches)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {f"epoch_{k}": float(v) for k, v in logs.items() if not k.startswith("val_")}
        val = {f"epoch_{k[4:]}": float(v) for k, v in logs.items() if k.startswith("val_")}
        self._file("train").scalars(train, epoch)
        if val:
            self._file("validation").scalars(val, epoch)

    def on_train_end(self, logs=None):
        for f in self._files.values():
            f.close()
        self._files.clear()


class Profiler(Callback):
    """Where training time goes: per layer, the forward pass, the backward pass and the update.

    While training runs, each layer's ``forward`` and ``backward`` and the optimizer's per-parameter
    ``update`` are wrapped with a timer; when it ends they are put back, so a model trained
    without a Profiler pays nothing. ``report()`` gives milliseconds per training step and each
    part's share of the whole step (the rest is data handling, the loss and the metrics).
    Update times are summed over the threads that share the update, so they can add up to
    more than the wall-clock time of the optimizer step.

    Use it as ``model.fit(x, y, callbacks=[profiler])``, then ``print(profiler.report())``.
    """

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict[str, float]] = {}

    def on_train_begin(self, logs=None):
        self.rows = {
            layer.name: {"forward": 0.0, "backward": 0.0, "update": 0.0}
            for layer in self.model.layers
        }
        self.steps = 0
        self.total = 0.0
        self._in_step = False
        self._originals = []
        self.fused = self.model.fused_layers()
        for layer in self.model.layers:
            row = self.rows[layer.name]
            self._wrap(layer, "forward", row, "forward", busy=[])
            if hasattr(layer, "forward_pooled"):  # with the max pooling after it, as one step
                self._wrap(layer, "forward_pooled", row, "forward", busy=[])
            backward_busy = []  # Dense.backward calls backward_from_z: time the outer call only
            for phase in ("backward", "backward_from_z", "backward_pooled"):
                if hasattr(layer, phase):
                    self._wrap(layer, phase, row, "backward", busy=backward_busy)
        # Which layer a piece of a parameter belongs to, by where its numbers lie in memory (the
        # parameters are views into the model's one buffer, and a piece may be a slice of one).
        spans = sorted(
            (p.__array_interface__["data"][0], layer.name)
            for layer in self.model.layers
            for p in layer.params.values()
            if p.size
        )
        starts, names = [start for start, _ in spans], [name for _, name in spans]
        optimizer = self.model.optimizer
        update = optimizer.update

        lock = threading.Lock()  # the update runs on several threads at once

        def timed_update(p, g, state):
            start = time.perf_counter()
            update(p, g, state)
            seconds = time.perf_counter() - start
            owner = names[bisect.bisect_right(starts, p.__array_interface__["data"][0]) - 1]
            with lock:
                self.rows[owner]["update"] += seconds

        optimizer.update = timed_update
        self._originals.append((optimizer, "update"))
        self.optimizer_row = {"step": 0.0}
        self._wrap(optimizer, "apply", self.optimizer_row, "step", busy=[])

    def _wrap(self, obj, name, row, key, busy):
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            if busy or not self._in_step:  # validation's forward passes are not training time
                return original(*args, **kwargs)
            busy.append(True)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                row[key] += time.perf_counter() - start
                busy.pop()

        setattr(obj, name, timed)
        self._originals.append((obj, name))

    def on_train_batch_begin(self, batch, logs=None):
        self._in_step = True
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.total += time.perf_counter() - self._step_start
        self.steps += 1
        self._in_step = False

    def on_train_end(self, logs=None):
        for obj, name in self._originals:
            delattr(obj, name)  # the instance attribute goes; the class's method shows again
        self._originals = []

    def report(self) -> str:
        """A table of milliseconds per step, per layer and phase."""
        if not self.steps:
            return "No training steps were profiled."
        ms = 1e3 / self.steps
        lines = [f"{'layer':24} {'forward':>9} {'backward':>9} {'update':>9}   (ms per step)"]
        for name, row in self.rows.items():
            lines.append(
                f"{name:24} {row['forward'] * ms:9.3f} {row['backward'] * ms:9.3f} "
                f"{row['update'] * ms:9.3f}"
            )
        for conv, pool in self.fused:
            lines.append(f"({conv} and {pool} run as one step: both times are on {conv}'s line)")
        passes = sum(row["forward"] + row["backward"] for row in self.rows.values())
        step, update = self.total * ms, self.optimizer_row["step"] * ms
        rest = step - passes * ms - update
        lines.append(
            f"whole step {step:.3f} ms = forward and backward {passes * ms:.3f} + "
            f"optimizer {update:.3f} (wall clock, all threads) + the rest {rest:.3f} "
            "(batching, loss, metrics)"
        )
        if backend.BLAS_THREADS_SPIN:
            lines.append(
                "NumPy was imported before glassnet, so OpenBLAS's idle threads spin after each "
                "matrix product and the optimizer runs on one thread. Import glassnet first, or "
                "set OPENBLAS_THREAD_TIMEOUT=4 before Python starts (W1 steps: 5–12 % faster here)."
            )
        return "\n".join(lines)
