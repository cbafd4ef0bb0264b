"""``keras.utils``: one-hot labels, padding sequences, seeding, ``PyDataset`` (``Sequence``) and
``plot_model``.

Keras's ``utils`` gathers helpers from every part of the library, so this module sits at the
bottom of glassnet's layering: ``to_categorical`` and ``pad_sequences`` are written here;
``PyDataset`` is ``glassnet.models.data``'s and ``plot_model`` is ``glassnet.plots``'s.
"""

from __future__ import annotations

import numpy as np

from glassnet.backend import set_random_seed
from glassnet.models.data import PyDataset, Sequence
from glassnet.plots import plot_model

__all__ = [
    "PyDataset",
    "Sequence",
    "pad_sequences",
    "plot_model",
    "set_random_seed",
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
