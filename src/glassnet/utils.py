"""Helpers from ``keras.utils``: one-hot labels and seeding."""

from __future__ import annotations

import numpy as np

from glassnet.backend import set_random_seed

__all__ = ["set_random_seed", "to_categorical"]


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
