"""Where ``fit``, ``evaluate`` and ``predict`` get their batches: arrays sliced into batches, or
batches made by a ``PyDataset`` or a Python generator. Every batch is checked as arrays are (shapes
against the model, targets against the loss), so a bad batch from a generator gets the same
message a bad array would.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np

from glassnet.backend import floatx
from glassnet.models.checks import as_input

__all__ = ["ArrayBatches", "GeneratedBatches", "PyDataset", "Sequence", "is_batch_source"]


class PyDataset:
    """Batches made by your code, as ``keras.utils.PyDataset``: give ``__len__`` (batches per
    epoch) and ``__getitem__(index)`` returning ``(x, y)`` or ``(x, y, sample_weight)`` for one
    batch; ``on_epoch_end`` runs after every epoch (reshuffle there if you like).

    >>> import numpy as np
    >>> class Halves(PyDataset):
    ...     def __len__(self):
    ...         return 2
    ...     def __getitem__(self, i):
    ...         return np.full((3, 1), i, "float32"), np.full((3, 1), i, "float32")
    >>> len(Halves()), Halves()[1][0].shape
    (2, (3, 1))
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        # Batches are made in the training thread, one at a time: workers are accepted for
        # Keras compatibility and not used.
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self) -> int:
        raise NotImplementedError("A PyDataset defines __len__: the number of batches.")

    def __getitem__(self, index):
        raise NotImplementedError("A PyDataset defines __getitem__(index): one batch.")

    def on_epoch_end(self) -> None:
        """Called after every epoch."""

    @property
    def num_batches(self) -> int:
        return len(self)


Sequence = PyDataset  # Keras 2's name


def is_batch_source(data) -> bool:
    """Whether ``data`` makes its own batches: a PyDataset, a generator, an iterator, or a
    collection of batches iterated afresh each epoch (a ``tf.data.Dataset``, a PyTorch
    ``DataLoader``: their tensors are read as arrays, neither framework is needed here)."""
    return (
        isinstance(data, PyDataset)
        or inspect.isgenerator(data)
        or (hasattr(data, "__next__") and not hasattr(data, "shape"))
        or _batch_collection(data)
    )


def _batch_collection(data) -> bool:
    """An iterable of batches that is not itself data (an array, a list, a dict, a table)."""
    plain = (list, tuple, dict, str, bytes, np.ndarray)
    return (hasattr(data, "__iter__") and not hasattr(data, "__next__")
            and not isinstance(data, plain) and not hasattr(data, "shape"))  # fmt: skip


def _shared(part, batch):
    """This process's rows of ``batch`` (x, y, weights lists) and (its rows, the batch's)."""
    xb, yb, swb = batch
    rows = len(xb[0])
    mine = part(rows)

    def cut(arrays):
        return None if arrays is None else [a[mine] for a in arrays]

    return (cut(xb), cut(yb), cut(swb)), (mine.stop - mine.start, rows)


class ArrayBatches:
    """Batches sliced from checked arrays, in a new random order each epoch if ``shuffle``.

    Under data-parallel training ``part`` (``DataParallel.share``) picks this process's rows of
    each batch, and ``rows`` holds (its rows, the batch's rows) of the batch last given.
    """

    def __init__(self, xs, ys, sws, batch_size, shuffle=False, rng=None, dtype=None):
        self.xs, self.ys, self.sws = xs, ys, sws
        self.dtype = dtype or floatx()  # the model's float type
        self.batch_size, self.shuffle, self.rng = batch_size, shuffle, rng
        self.n = len(xs[0])
        self.steps = math.ceil(self.n / batch_size)
        self.part, self.rows = None, None

    def targets(self):
        return self.ys

    def epoch(self):
        """(x batch, y batch, weights batch) for one pass; only the batch is converted."""
        order = self.rng.permutation(self.n) if self.shuffle else None
        dtype = self.dtype
        for start in range(0, self.n, self.batch_size):
            end = min(start + self.batch_size, self.n)
            if self.part is not None:  # this process's share, cut before converting
                mine = self.part(end - start)
                self.rows = (mine.stop - mine.start, end - start)
                start, end = start + mine.start, start + mine.stop
            idx = slice(start, end) if order is None else order[start:end]
            xb = [as_input(a[idx], dtype) for a in self.xs]
            yb = None if self.ys is None else [a[idx] for a in self.ys]
            swb = None if self.sws is None else [w[idx] for w in self.sws]
            yield xb, yb, swb


class GeneratedBatches:
    """Batches from a ``PyDataset`` (``steps`` defaults to its length) or from an iterator of
    ``(x, y)`` / ``(x, y, sample_weight)`` tuples (``steps`` per epoch, or until it ends)."""

    def __init__(self, model, data, steps=None, what="x", targets=True):
        self.model, self.what, self.with_targets = model, what, targets
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0
        ):
            raise ValueError(f"Received steps={steps!r}. Expected a positive integer or None.")
        if isinstance(data, PyDataset):
            self.dataset, self.iterator = data, None
            self.steps = steps or len(data)
        else:
            self.dataset, self.iterator = None, iter(data)
            self.steps = steps
        # a tf.data.Dataset, a DataLoader: each epoch runs over it again (a generator: once)
        self.collection = data if _batch_collection(data) else None
        self.exhausted = False
        self.started = False  # whether an epoch has drawn from it yet
        self._first_targets = None
        self._peeked = None
        self.part, self.rows = None, None  # as ArrayBatches's

    def _raw(self, index):
        if self.dataset is not None:
            return self.dataset[index]
        return next(self.iterator)

    def _check(self, raw):
        if (
            isinstance(raw, (tuple, list))
            and len(raw) in (1, 2, 3)
            and not (len(self.model.inputs) > 1 and not isinstance(raw, tuple))
        ):
            x, y, sw = (*raw, None, None)[:3]
        else:
            x, y, sw = raw, None, None
        if self.with_targets and y is None:
            raise ValueError(
                f"Each batch of {self.what} must be a tuple (x, y) or (x, y, sample_weight) to "
                "train or evaluate on; received a batch without targets."
            )
        xs, ys = self.model.check_data(x, y if self.with_targets else None, self.what)
        sws = self.model.sample_weights_for(sw, None, ys) if ys is not None else None
        return [as_input(a, self.model.compute_dtype) for a in xs], ys, sws

    def targets(self):
        """The first batch's targets (metrics are chosen from their shapes), drawn once."""
        if not self.started and self._peeked is None:
            self._peeked = self._check(self._raw(0))
            self._first_targets = self._peeked[1]
        return self._first_targets

    def epoch(self):
        if self.collection is not None and self._peeked is None and self.started:
            self.iterator = iter(self.collection)  # a new pass (a reshuffle, for a DataLoader)
        self.started = True
        step = 0
        while self.steps is None or step < self.steps:
            if self._peeked is not None:
                batch, self._peeked = self._peeked, None
            else:
                try:
                    batch = self._check(self._raw(step))
                except StopIteration:
                    if self.steps is not None or step == 0:
                        self.exhausted = True
                        warnings.warn(
                            "Your input ran out of data; interrupting training. Make sure "
                            "that your dataset or generator can generate at least "
                            "`steps_per_epoch * epochs` batches.",
                            stacklevel=3,
                        )
                    break
            if self.part is not None:  # every process draws the same batch and takes its rows
                batch, self.rows = _shared(self.part, batch)
            yield batch
            step += 1
        if self.dataset is not None:
            self.dataset.on_epoch_end()
