"""Helpers from ``keras.utils``: one-hot labels, seeding, and ``PyDataset`` (``Sequence``)."""

from __future__ import annotations

import numpy as np

from glassnet.backend import set_random_seed

__all__ = ["PyDataset", "Sequence", "set_random_seed", "to_categorical"]


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
