"""Metrics: numbers reported during training that the optimizer does not follow.

A ``Metric`` accumulates over batches (``update_state``), reports a running value (``result``) and
starts over (``reset_state``), as in Keras. ``"accuracy"`` resolves the way Keras resolves it, from
the shapes of the targets and the outputs.

>>> import numpy as np
>>> m = get("accuracy", y_true=np.array([1, 0]), y_pred=np.zeros((2, 3)))
>>> type(m).__name__, m.name
('SparseCategoricalAccuracy', 'accuracy')
>>> m.update_state(np.array([1, 0]), np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]]))
>>> m.result()
0.5
"""

from __future__ import annotations

from glassnet.backend import lookup, xp

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "sparse_categorical_accuracy",
]


def categorical_accuracy(y_true, y_pred):
    """1.0 where the largest output is the one-hot target's class, else 0.0; shape (batch,)."""
    return (xp.argmax(y_pred, axis=-1) == xp.argmax(y_true, axis=-1)).astype(y_pred.dtype)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the largest output is at the integer label, else 0.0; shape (batch,)."""
    labels = xp.asarray(y_true).reshape(-1)
    return (xp.argmax(y_pred, axis=-1) == labels).astype(y_pred.dtype)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over the last axis of [a > threshold] == y; shape (batch,)."""
    return ((y_pred > threshold) == (y_true > 0.5)).mean(axis=-1, dtype=y_pred.dtype)


class Metric:
    """A value averaged over every sample seen since the last ``reset_state``."""

    def __init__(self, name=None, dtype=None):
        self.name = name or _snake_name(type(self).__name__)
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0

    def per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self.per_sample(y_true, y_pred)
        self.total += float(values.sum())
        self.count += int(values.size)

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def get_config(self) -> dict:
        return {"name": self.name}


class Mean(Metric):
    """The weighted mean of the values given to ``update_state(value, sample_weight)``."""

    def update_state(self, value, sample_weight=1) -> None:
        self.total += float(value) * sample_weight
        self.count += sample_weight


class Accuracy(Metric):
    """How often predictions equal targets exactly."""

    def per_sample(self, y_true, y_pred):
        return (xp.asarray(y_true) == y_pred).astype(float).reshape(len(y_pred), -1).mean(-1)


class CategoricalAccuracy(Metric):
    def per_sample(self, y_true, y_pred):
        return categorical_accuracy(y_true, y_pred)


class SparseCategoricalAccuracy(Metric):
    def per_sample(self, y_true, y_pred):
        return sparse_categorical_accuracy(y_true, y_pred)


class BinaryAccuracy(Metric):
    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(name, dtype)

    def per_sample(self, y_true, y_pred):
        return binary_accuracy(xp.asarray(y_true).reshape(y_pred.shape), y_pred, self.threshold)


class MeanSquaredError(Metric):
    def per_sample(self, y_true, y_pred):
        return xp.mean(xp.square(y_pred - xp.asarray(y_true).reshape(y_pred.shape)), axis=-1)


class MeanAbsoluteError(Metric):
    def per_sample(self, y_true, y_pred):
        return xp.mean(xp.abs(y_pred - xp.asarray(y_true).reshape(y_pred.shape)), axis=-1)


def _snake_name(class_name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in class_name).lstrip("_")


_REGISTRY = {
    "accuracy": None,
    "acc": None,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
}


def get(identifier, y_true=None, y_pred=None) -> Metric:
    """A metric from a name or an instance; ``"accuracy"`` is resolved from the data's shapes.

    As in Keras: one output unit means binary accuracy; targets with one axis fewer than the
    outputs (or a last axis of 1) mean integer labels; otherwise one-hot targets.
    """
    if isinstance(identifier, Metric):
        return identifier
    cls = lookup("metric", identifier, _REGISTRY)
    if cls is None:  # "accuracy": which one depends on the data
        if y_pred is None or y_true is None:
            raise ValueError("Resolving 'accuracy' needs the shapes of the targets and outputs.")
        y_rank, out_rank = xp.ndim(y_true), len(y_pred.shape)
        if y_pred.shape[-1] == 1:
            cls = BinaryAccuracy
        elif y_rank < out_rank or xp.shape(y_true)[-1] == 1:
            cls = SparseCategoricalAccuracy
        else:
            cls = CategoricalAccuracy
    return cls(name=identifier)
