"""The training loop (``fit``: one loop, a phase comment for each part, everything optional a
callback), and ``evaluate``, ``predict`` and the one-batch methods, as Keras's ``Trainer``."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from glassnet import distribution
from glassnet import metrics as metrics_module
from glassnet.backend import (
    blas_threads_for,
    xp,
)
from glassnet.callbacks import History
from glassnet.layers import (
    Cache,
)
from glassnet.layers.base import collecting_added_losses
from glassnet.models.checks import _check_batch_size, _check_verbose, as_input
from glassnet.models.data import ArrayBatches, GeneratedBatches, is_batch_source

__all__ = ["Trainer"]


@dataclass(frozen=True)
class Validation:
    """fit's validation arguments, as Keras names them without the ``validation_`` prefix."""

    split: float
    data: object
    batch_size: int | None
    freq: int
    steps: int | None


class Trainer:
    """fit, evaluate, predict: the loops over batches, on the step protocol."""

    # ---- training ---------------------------------------------------------------------------

    # Keras's 17 arguments, each checked where a user's mistake would otherwise surface late;
    # the loop itself is _fit and _epochs.
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ) -> History:
        """Train for ``epochs`` passes over (x, y); return a ``History``.

        Each step: forward on a batch (storing outputs), backward from the loss (case 1 at the
        output layer, then the recursion), one optimizer update of every W and b.
        """
        self._require_compiled("fit")
        if y is None and not is_batch_source(x):
            y = self._no_targets(x)
        batch_size = _check_batch_size(batch_size)
        for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"Received {name}={value!r}. Expected a non-negative integer.")
        verbose = _check_verbose(verbose)
        if (
            isinstance(validation_split, bool)
            or not isinstance(validation_split, numbers.Real)
            or not 0 <= validation_split < 1
        ):
            raise ValueError(
                f"Received validation_split={validation_split!r}. Expected a float in [0, 1)."
            )
        if not self._training_lock.acquire(blocking=False):
            raise RuntimeError(
                f"Model {self.name!r} is already training in another thread; one fit at a time. "
                "(Predicting while it trains is fine.)"
            )
        try:
            return self._fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                validation=Validation(
                    split=validation_split,
                    data=validation_data,
                    batch_size=validation_batch_size,
                    freq=validation_freq,
                    steps=validation_steps,
                ),
                steps_per_epoch=steps_per_epoch,
                shuffle=shuffle,
                initial_epoch=initial_epoch,
                weights=(sample_weight, class_weight),
            )
        finally:
            self._training_lock.release()

    def _split_validation(self, xs, ys, sws, validation_split, validation_data):
        """(xs, ys, sws, x_val, y_val, sw_val): given validation data (with or without sample
        weights), or the last fraction of x."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, weights)."
                )
            x_val, y_val = self.check_data(validation_data[0], validation_data[1], "x_val")
            given = validation_data[2] if len(validation_data) == 3 else None
            return xs, ys, sws, x_val, y_val, self.sample_weights_for(given, None, y_val)
        if not validation_split:
            return xs, ys, sws, None, None, None
        n = len(xs[0])
        n_val = int(n * validation_split)
        if n_val == 0 or n_val == n:
            raise ValueError(
                f"validation_split={validation_split} of {n} samples leaves "
                "an empty training or validation set."
            )
        head, tail = slice(None, -n_val), slice(-n_val, None)

        def cut(arrays, part):
            return None if arrays is None else [a[part] for a in arrays]

        return (cut(xs, head), cut(ys, head), cut(sws, head),
                cut(xs, tail), cut(ys, tail), cut(sws, tail))  # fmt: skip

    def sample_weights_for(self, sample_weight, class_weight, ys) -> list | None:
        """Per-output sample weights for the whole data, checked: ``sample_weight`` (one array
        per output, or one for all), or ``class_weight`` turned into a weight per sample."""
        if sample_weight is not None and class_weight is not None:
            raise ValueError(
                "You cannot use `class_weight` and `sample_weight` at the same time: fold the "
                "class weights into the sample weights."
            )
        if class_weight is not None:
            return [self._class_weights(class_weight, ys)]
        sws = self._as_weights(sample_weight)
        if sws is None:
            return None
        checked = []
        for w, y in zip(sws, ys):
            w = xp.asarray(w, dtype=xp.float64)
            if w.ndim == 0 or len(w) != len(y) or w.ndim > y.ndim:
                raise ValueError(
                    f"sample_weight must hold one weight per sample, shape ({len(y)},); "
                    f"received shape {w.shape}."
                )
            if not xp.isfinite(w).all():
                raise ValueError("sample_weight contains NaN or infinity.")
            checked.append(w)
        return checked

    def _class_weights(self, class_weight, ys):
        if len(self.outputs) > 1:
            raise ValueError("`class_weight` is only supported for models with a single output.")
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"class_weight must be a dict {{class: weight}}; received {class_weight!r}."
            )
        y = ys[0]
        k = self.outputs[0].shape[-1]
        if y.ndim == len(self.outputs[0].shape) and k > 1:  # one-hot rows
            labels = y.argmax(axis=-1)
        else:  # integer labels, or 0/1 targets of one unit
            labels = xp.rint(y).astype(xp.intp).reshape(len(y), -1)[:, 0]
        table = xp.ones(max(int(labels.max()) + 1, k, *(int(c) + 1 for c in class_weight)))
        for c, weight in class_weight.items():
            table[int(c)] = float(weight)
        return table[labels]

    def _fit(self, x, y, *, batch_size, epochs, verbose, callbacks, validation, shuffle,
             initial_epoch, weights, steps_per_epoch):  # fmt: skip
        train, val, validation_freq = self._fit_sources(
            x, y, batch_size, shuffle, weights, validation, steps_per_epoch
        )

        dist = distribution.active()  # None on one process
        if dist is not None:  # each process takes its share of every batch
            for source in (train, val):
                if source is not None:
                    source.part = dist.share

        # ---- callbacks and metrics ----
        cbs = self._make_callbacks(
            callbacks,
            verbose,
            history=True,
            params={"verbose": verbose, "epochs": epochs, "steps": train.steps},
        )
        train_metrics = self._make_metrics(train.targets())
        trackers = self._loss_trackers()
        batch_logs_wanted = cbs.wants("on_train_batch_end")
        watch_batches = False  # whether stop_training set inside an epoch must be agreed on
        if dist is not None:  # every process makes the same collective calls, or all would wait
            batch_logs_wanted = dist.any(batch_logs_wanted)
            watch_batches = dist.any(cbs.may_stop_a_batch())
            dist.separate_streams(self)
            dist.prepare(self)  # gradient buffers the ranks of a machine share
        self.pack_parameters()  # a no-op unless a layer's arrays moved (shared with a model)
        pairs = self.trainable_pairs()
        if len(self.optimizer.state) != len(pairs):  # its state and kernels, before the clock runs
            self.optimizer.build([p for p, _ in pairs])
        self.stop_training = False

        cbs.on_train_begin({})
        if dist is not None:  # rank 0's weights, state, batch order (and restored backup)
            dist.synchronize(self)
        if self.resume_from_epoch is not None:  # a backup was restored: go on from there
            initial_epoch, self.resume_from_epoch = self.resume_from_epoch, None
        with blas_threads_for(self._largest_product(batch_size)):
            logs = self._epochs(train, val, validation_freq, cbs, trackers, train_metrics,
                                (batch_logs_wanted, watch_batches), initial_epoch, epochs,
                                dist)  # fmt: skip
        cbs.on_train_end(logs)
        return self.history

    def _largest_product(self, batch_size: int) -> float:
        """Floating-point operations of the largest matrix product in a training step."""
        rows = batch_size or 32
        return max((layer.largest_product(rows) for layer in self.leaf_layers()), default=0.0)

    def _epochs(self, train, val, validation_freq, cbs, trackers, train_metrics,
                batch_hooks, initial_epoch, epochs, dist) -> dict:  # fmt: skip
        """The training loop proper: epochs of batches, each epoch ending with validation.
        Under data-parallel training (``dist``) every process runs it in step with the others:
        the same batches (its share of each), the same logs, the same decision to stop."""
        batch_logs_wanted, watch_batches = batch_hooks
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch, {})
            for t in trackers:
                t.reset_state()
            for m in (m for ms in train_metrics for m in ms):
                m.reset_state()

            # ---- one pass over the training data, a batch at a time ----
            step = -1
            for step, (xb, yb, swb) in enumerate(train.epoch()):
                cbs.on_train_batch_begin(step, {})
                share = None if dist is None else train.rows
                C, out = self.train_step(xb if len(xb) > 1 else xb[0], yb, sample_weight=swb,
                                         share=share)  # fmt: skip
                if share is None or share[0]:  # (a process may have no rows of a last batch)
                    self.last_batch = (xb[0] if len(xb) == 1 else xb,
                                       yb[0] if len(yb) == 1 else yb, C)  # fmt: skip
                    self._track(trackers, train_metrics, yb, self._as_outputs(out), C,
                                len(xb[0]), sws=swb)  # fmt: skip
                if batch_logs_wanted:
                    cbs.on_train_batch_end(step, self._logs(trackers, train_metrics, dist))
                if watch_batches:
                    self.stop_training = dist.any(self.stop_training)
                if self.stop_training:
                    break
            if getattr(train, "exhausted", False):  # a generator that ran dry ends training
                self.stop_training = True
                if step < 0:
                    break  # no batch at all this epoch: nothing to log

            # ---- end of the epoch: validation, logs, callbacks ----
            logs = self._logs(trackers, train_metrics, dist)
            if dist is not None:
                dist.average_statistics(self)
            if val is not None and (epoch + 1) % validation_freq == 0:
                cbs.on_test_begin({})  # the test hooks run in fit's validation, as in Keras
                val_logs = self._evaluate_source(val, cbs, dist)
                cbs.on_test_end(dict(val_logs))
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if dist is not None:
                self.stop_training = dist.any(self.stop_training)
            if self.stop_training:
                break
        return logs

    def _fit_sources(self, x, y, batch_size, shuffle, weights, validation, steps_per_epoch):
        """The training batches and the validation batches (or None) that fit will use."""
        if is_batch_source(x):
            if y is not None or weights != (None, None) or validation.split:
                raise ValueError(
                    "When x is a PyDataset or a generator, its batches carry the targets (and "
                    "sample weights): do not pass y, sample_weight, class_weight or "
                    "validation_split."
                )
            train = GeneratedBatches(self, x, steps_per_epoch)
            x_val = y_val = sw_val = None
        else:
            if steps_per_epoch is not None:
                raise NotImplementedError(
                    "steps_per_epoch with arrays is not supported by glassnet; it is for "
                    "PyDatasets and generators."
                )
            xs, ys = self.check_data(x, y)
            sws = self.sample_weights_for(*weights, ys)
            given = None if is_batch_source(validation.data) else validation.data
            xs, ys, sws, x_val, y_val, sw_val = self._split_validation(
                xs, ys, sws, validation.split, given
            )
            train = ArrayBatches(xs, ys, sws, batch_size, shuffle, self._rng, self.compute_dtype)
        if is_batch_source(validation.data):
            val = GeneratedBatches(self, validation.data, validation.steps, "validation_data")
        elif x_val is not None:
            rows = validation.batch_size or batch_size
            val = ArrayBatches(x_val, y_val, sw_val, rows, dtype=self.compute_dtype)
        else:
            val = None
        return train, val, validation.freq

    def _loss_trackers(self) -> list:
        trackers = [metrics_module.Mean(name="loss")]
        if len(self.outputs) > 1:
            trackers += [metrics_module.Mean(name=f"{n}_loss") for n in self.output_names]
        return trackers

    def _track(self, trackers, metrics, ys, outs, C, n, caches=None, sws=None) -> None:
        """Add one batch to the loss trackers (each batch weighs its size, as in Keras) and to
        the metrics (which, as Keras's ``metrics``, see no sample weights)."""
        trackers[0].update_state(C, n)
        if len(trackers) > 1:
            caches = self._training_caches if caches is None else caches
            terms = self._loss_terms(ys, outs, caches, sws)
            for t, c in zip(trackers[1:], terms):
                t.update_state(c, n)
        for ms, y, out in zip(metrics, ys, outs):
            for m in ms:
                m.update_state(y, out)

    def _logs(self, trackers, metrics, dist=None) -> dict:
        """The losses and metrics so far; under data-parallel training (``dist``), over every
        process's share: their totals and counts summed, then divided."""
        if dist is not None:
            merged = dist.merged([*trackers, *(m for ms in metrics for m in ms)])
            trackers, rest = merged[: len(trackers)], iter(merged[len(trackers) :])
            metrics = [[next(rest) for _ in ms] for ms in metrics]
        logs = {t.name: t.result() for t in trackers}
        for out_name, ms in zip(self.output_names, metrics):
            for m in ms:
                value = m.result()  # a number, a list (several thresholds), or a variable
                if not isinstance(value, (float, list)):
                    value = float(value) if xp.ndim(value) == 0 else xp.asarray(value).tolist()
                logs[m.name if len(self.outputs) == 1 else f"{out_name}_{m.name}"] = value
        return logs

    def _evaluate_source(self, source, cbs=None, dist=None) -> dict:
        """Loss and metrics over a source of batches, in inference mode (caches of its own);
        under data-parallel training each process evaluates its share of every batch."""
        metrics = self._make_metrics(source.targets())
        trackers = self._loss_trackers()
        caches = {id(node): Cache() for node in self._nodes}
        # A layer written with call may add a loss, which C counts as Keras's evaluate does: on
        # the whole batch, so the batch is not cut into pieces for the threads.
        whole = any(layer.records() for layer in self.leaf_layers())
        for step, (xb, yb, swb) in enumerate(source.epoch()):
            if cbs is not None:
                cbs.on_test_batch_begin(step, {})
            if len(xb[0]):
                with collecting_added_losses() as added:  # C has what add_loss was given too
                    outs = self._infer(xb, caches, whole)
                C = self._loss_total(yb, outs, caches, swb) + self._sum_of(added)
                self._track(trackers, metrics, yb, outs, C, len(xb[0]), caches, swb)
            if cbs is not None:
                cbs.on_test_batch_end(step, self._logs(trackers, metrics))
        return self._logs(trackers, metrics, dist)

    def _eval_source(self, x, y, sample_weight, batch_size, steps):
        if is_batch_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    "When x is a PyDataset or a generator, its batches carry the targets: do "
                    "not pass y or sample_weight."
                )
            return GeneratedBatches(self, x, steps)
        xs, ys = self.check_data(x, y)
        sws = self.sample_weights_for(sample_weight, None, ys)
        return ArrayBatches(xs, ys, sws, batch_size, dtype=self.compute_dtype)

    # ---- evaluation and prediction ----------------------------------------------------------

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The loss (and metrics) on (x, y): a float, a list ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size)
        verbose = _check_verbose(verbose)
        source = self._eval_source(x, y, sample_weight, batch_size, steps)
        dist = distribution.active()
        if dist is not None:
            source.part = dist.share
        cbs = self._make_callbacks(
            callbacks, verbose, params={"verbose": verbose, "epochs": 1, "steps": source.steps}
        )
        cbs.on_test_begin({})
        logs = self._evaluate_source(source, cbs, dist)
        cbs.on_test_end(logs)
        return self._format_result(logs, return_dict)

    @staticmethod
    def _format_result(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, computed in batches; an array of shape (n, *output_shape).

        Predictions keep their values in caches of their own, so ``predict`` may run in one
        thread while ``fit`` trains the same model in another.
        """
        batch_size = _check_batch_size(batch_size)
        verbose = _check_verbose(verbose)
        if is_batch_source(x):
            source = GeneratedBatches(self, x, steps, targets=False)
        else:
            source = ArrayBatches(
                self.check_data(x)[0], None, None, batch_size, dtype=self.compute_dtype
            )
        cbs = self._make_callbacks(
            callbacks, verbose, params={"verbose": verbose, "epochs": 1, "steps": source.steps}
        )
        caches = {id(node): Cache() for node in self._nodes}
        parts = [[] for _ in self.outputs]  # each output's batches, joined at the end
        cbs.on_predict_begin({})
        for step, (xb, _, _) in enumerate(source.epoch()):
            cbs.on_predict_batch_begin(step, {})
            batch_outs = self._infer(xb, caches)
            for part, value in zip(parts, batch_outs):
                part.append(value)  # a new array each batch: layers keep no output buffers
            cbs.on_predict_batch_end(step, {"outputs": self._structure(batch_outs)})
        cbs.on_predict_end({})
        if not parts[0]:
            raise ValueError("predict() received no batches: the generator made none.")
        return self._structure([xp.concatenate(part) for part in parts])

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns that batch's loss (and metrics). Under
        data-parallel training every process passes the same batch and takes its share."""
        self._require_compiled("train_on_batch")
        xs, ys = self.check_data(x, y)
        sws = self.sample_weights_for(sample_weight, class_weight, ys)
        dist, share = distribution.active(), None
        if dist is not None:
            mine = dist.share(len(xs[0]))
            share = (mine.stop - mine.start, len(xs[0]))
            xs, ys = [a[mine] for a in xs], [a[mine] for a in ys]
            sws = None if sws is None else [w[mine] for w in sws]
        with self._training_lock:
            self.pack_parameters()
            if dist is not None:
                dist.prepare(self)
            xb = [as_input(a, self.compute_dtype) for a in xs]
            C, out = self.train_step(xb if len(xb) > 1 else xb[0], ys, sample_weight=sws,
                                     share=share)  # fmt: skip
        metrics = self._make_metrics(ys)
        trackers = self._loss_trackers()
        if len(xb[0]):
            self._track(trackers, metrics, ys, self._as_outputs(out), C, len(xb[0]), sws=sws)
        return self._format_result(self._logs(trackers, metrics, dist), return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        self._require_compiled("test_on_batch")
        xs, ys = self.check_data(x, y)
        sws = self.sample_weights_for(sample_weight, None, ys)
        source = ArrayBatches(xs, ys, sws, len(xs[0]), dtype=self.compute_dtype)
        return self._format_result(self._evaluate_source(source), return_dict)

    def predict_on_batch(self, x):
        """Model outputs for one batch."""
        return self(x, training=False)
