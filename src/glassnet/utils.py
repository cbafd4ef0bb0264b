"""``keras.utils``: one-hot labels, padding sequences, windows over a time series, seeding,
``PyDataset`` (``Sequence``), ``plot_model`` and ``get_file``.

Keras's ``utils`` gathers helpers from every part of the library, so this module sits at the
bottom of glassnet's layering: ``to_categorical`` and ``pad_sequences`` are written here;
``PyDataset`` is ``glassnet.models.data``'s, ``plot_model`` is ``glassnet.plots``'s and
``get_file`` (found before fetched, as the datasets are) is ``glassnet.datasets``'s.
"""

from __future__ import annotations

import numpy as np

from glassnet.backend import set_random_seed
from glassnet.datasets._fetch import get_file
from glassnet.models.data import PyDataset, Sequence
from glassnet.plots import plot_model

__all__ = [
    "PyDataset",
    "Sequence",
    "get_file",
    "pad_sequences",
    "plot_model",
    "set_random_seed",
    "timeseries_dataset_from_array",
    "to_categorical",
]


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer class labels: shape (n,) becomes (n, num_classes).

    >>> to_categorical([0, 2, 1], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    labels = np.asarray(x)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    whole = np.issubdtype(labels.dtype, np.integer) or np.all(np.equal(np.mod(labels, 1), 0))
    if labels.size and not whole:
        raise ValueError(
            "to_categorical expects integer class labels; received values that are not "
            f"whole numbers (dtype {labels.dtype}), e.g. {labels.ravel()[:3].tolist()}."
        )
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"Class labels must be >= 0; received a label {int(labels.min())}.")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise ValueError(
            f"Received a label {int(labels.max())} with num_classes={num_classes}. "
            f"Expected labels in 0..{num_classes - 1}; raise num_classes or fix the labels."
        )
    one_hot = np.zeros((*labels.shape, num_classes), dtype="float64")
    np.put_along_axis(one_hot, labels[..., None], 1.0, axis=-1)
    return one_hot


def pad_sequences(
    sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0
) -> np.ndarray:
    """Sequences of different lengths as one array (n, maxlen), as Keras's ``pad_sequences``.

    Shorter ones are filled with ``value`` before (``padding="pre"``) or after ("post"); longer
    ones lose their start (``truncating="pre"``) or end ("post").

    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [0, 4]], dtype=int32)
    """
    for name, choice in (("padding", padding), ("truncating", truncating)):
        if choice not in ("pre", "post"):
            raise ValueError(f'{name} type "{choice}" not understood: expected "pre" or "post".')
    try:
        rows = [np.asarray(s) for s in sequences]
    except TypeError:
        raise TypeError("pad_sequences expects a list of sequences (lists or arrays).") from None
    if any(r.ndim == 0 for r in rows):
        raise ValueError("pad_sequences expects a list of sequences; an entry is a single number.")
    lengths = [len(r) for r in rows]
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    sample = next((r.shape[1:] for r in rows if len(r)), ())
    out = np.full((len(rows), maxlen, *sample), value, dtype=dtype)
    for i, r in enumerate(rows):
        if not len(r) or maxlen == 0:
            continue
        kept = r[-maxlen:] if truncating == "pre" else r[:maxlen]
        if kept.shape[1:] != sample:
            raise ValueError(
                f"Shape of sample {kept.shape[1:]} of sequence at position {i} is different "
                f"from expected shape {sample}."
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, maxlen - len(kept) :] = kept
    return out


class EagerArray(np.ndarray):
    """A NumPy array with ``.numpy()``, as Keras's eager tensors have: the batches of
    ``timeseries_dataset_from_array``, on which keras-io's scripts call ``inputs.numpy()``.
    Everything else is NumPy's."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


class TimeseriesDataset(PyDataset):
    """Windows over a time series, in batches: what ``timeseries_dataset_from_array`` returns.

    Batch k holds the windows whose starts are ``starts[k·batch_size : (k + 1)·batch_size]``;
    window i is ``data[start + i + j·sampling_rate]`` for j = 0 … sequence_length − 1, and its
    target ``targets[start + i]``. Windows are cut when a batch is asked for, so the data is
    never copied whole.
    """

    def __init__(self, data, targets, starts, offsets, batch_size, shuffle_seed):
        super().__init__()
        self.data, self.targets, self.offsets = data, targets, offsets
        self.starts, self.batch_size = starts, batch_size
        self._rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
        if self._rng is not None:
            self._rng.shuffle(self.starts)

    def __len__(self) -> int:
        return -(-len(self.starts) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of a dataset of {len(self)} batches")
        starts = self.starts[index * self.batch_size : (index + 1) * self.batch_size]
        windows = self.data[starts[:, None] + self.offsets].view(EagerArray)  # (batch, length, …)
        return windows if self.targets is None else (windows, self.targets[starts].view(EagerArray))

    def take(self, count: int):
        """The first ``count`` batches, as ``tf.data``'s ``take``: ``for x, y in ds.take(1)``."""
        return (self[i] for i in range(min(int(count), len(self))))

    def on_epoch_end(self) -> None:
        if self._rng is not None:  # a new order of the windows for every epoch
            self._rng.shuffle(self.starts)


def timeseries_dataset_from_array(
    data, targets, sequence_length, sequence_stride=1, sampling_rate=1, batch_size=128,
    shuffle=False, seed=None, start_index=None, end_index=None,
) -> TimeseriesDataset:  # fmt: skip
    """Batches of sliding windows over a time series, as Keras's function of that name.

    ``data`` has time on axis 0; window i starts at ``start_index + i·sequence_stride`` and takes
    ``sequence_length`` steps ``sampling_rate`` apart; ``targets[start]`` is the target of the
    window starting at ``start`` (None: batches of windows only). With ``shuffle`` the windows
    come in a seeded random order, a new one every epoch. The result is a ``PyDataset`` that
    ``fit``, ``evaluate`` and ``predict`` take; ``batch_size=None`` gives one window at a time.

    >>> import numpy as np
    >>> ds = timeseries_dataset_from_array(np.arange(10), None, sequence_length=3, batch_size=4)
    >>> len(ds), ds[0].tolist()
    (2, [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    """
    data = np.asarray(data)
    n = len(data)
    start_index = 0 if start_index is None else int(start_index)
    end_index = n if end_index is None else int(end_index)
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride),
                        ("sequence_length", sequence_length)):  # fmt: skip
        if int(value) <= 0:
            raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
    if not 0 <= start_index < n:
        raise ValueError(
            f"`start_index` must be 0 or more and lower than the length of the data. "
            f"Received: start_index={start_index}, for data of length {n}"
        )
    if not start_index < end_index <= n:
        raise ValueError(
            f"`end_index` must be higher than `start_index` and at most the length of the data. "
            f"Received: start_index={start_index}, end_index={end_index}, data of length {n}"
        )
    count = end_index - start_index - (int(sequence_length) - 1) * int(sampling_rate)
    if targets is not None:
        targets = np.asarray(targets)
        count = min(count, len(targets) - start_index)
    if count <= 0:
        raise ValueError(
            f"No window of {sequence_length} steps {sampling_rate} apart fits in data[{start_index}"
            f":{end_index}] ({end_index - start_index} steps)."
        )
    starts = start_index + np.arange(0, count, int(sequence_stride))
    offsets = np.arange(int(sequence_length)) * int(sampling_rate)
    if batch_size is None:
        batch_size = 1
    elif int(batch_size) <= 0:
        raise ValueError(f"`batch_size` must be higher than 0. Received: batch_size={batch_size}")
    shuffle_seed = (np.random.randint(10**6) if seed is None else seed) if shuffle else None
    return TimeseriesDataset(data, targets, starts, offsets, int(batch_size), shuffle_seed)
