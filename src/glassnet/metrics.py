"""Metrics: numbers reported during training that the optimizer does not follow.

A ``Metric`` accumulates over batches (``update_state(y_true, y_pred, sample_weight)``), reports a
running value (``result``) and starts over (``reset_state``), as in Keras, with Keras's names,
defaults and results. ``"accuracy"`` resolves the way Keras resolves it, from the shapes of the
targets and the outputs.

Most metrics are a weighted mean of a value per sample: total += Σ wᵢ·vᵢ, count += Σ wᵢ (every
wᵢ = 1 when no ``sample_weight`` is given), result = total / count. ``Precision``, ``Recall`` and
``AUC`` count true and false positives and negatives at thresholds instead.

>>> import numpy as np
>>> m = get("accuracy", y_true=np.array([1, 0]), y_pred=np.zeros((2, 3)))
>>> type(m).__name__, m.name
('SparseCategoricalAccuracy', 'accuracy')
>>> m.update_state(np.array([[2], [1]]), np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0]]),
...                sample_weight=np.array([0.7, 0.3]))
>>> round(m.result(), 4)        # only the second sample is right, and it weighs 0.3
0.3
"""

from __future__ import annotations

import math

from glassnet.backend import epsilon, lookup, snake_case, xp
from glassnet.losses import mean_absolute_percentage_error, weights_like

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "MetricVariable",
    "Precision",
    "PrecisionAtRecall",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]


# ---- values per sample, as Keras's functions ----------------------------------------------------


def _labels(y_true, y_pred):
    """Integer labels shaped like y_pred without its class axis."""
    y = xp.asarray(y_true)
    if y.ndim == y_pred.ndim:  # (n, 1) labels for (n, k) outputs
        y = y.reshape(y.shape[:-1])
    return y.astype(xp.intp, copy=False)


def categorical_accuracy(y_true, y_pred):
    """1.0 where the largest output is the one-hot target's class, else 0.0; shape (batch,)."""
    return (xp.argmax(y_pred, axis=-1) == xp.argmax(y_true, axis=-1)).astype(y_pred.dtype)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the largest output is at the integer label, else 0.0; shape (batch,)."""
    return (xp.argmax(y_pred, axis=-1) == _labels(y_true, y_pred)).astype(y_pred.dtype)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over the last axis of [ (a > threshold) == y ]; shape (batch,)."""
    y_true = xp.asarray(y_true).reshape(y_pred.shape)
    return ((y_pred > threshold) == y_true).mean(axis=-1, dtype=y_pred.dtype)


def _in_top_k(scores, target_scores, k):
    """Whether each target's score is among the k largest of its row (ties count as in)."""
    kth = -xp.partition(-scores, k - 1, axis=-1)[..., k - 1] if k < scores.shape[-1] else None
    return xp.ones(target_scores.shape, bool) if kth is None else target_scores >= kth


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot target's class is among the k largest outputs; shape (batch,)."""
    labels = xp.argmax(y_true, axis=-1)
    target = xp.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0]
    return _in_top_k(y_pred, target, k).astype(y_pred.dtype)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label is among the k largest outputs; shape (batch,)."""
    labels = _labels(y_true, y_pred)
    target = xp.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0]
    return _in_top_k(y_pred, target, k).astype(y_pred.dtype)


def _squared_error(y_true, y_pred):
    return xp.mean(xp.square(y_pred - xp.asarray(y_true).reshape(y_pred.shape)), axis=-1)


def _absolute_error(y_true, y_pred):
    return xp.mean(xp.abs(y_pred - xp.asarray(y_true).reshape(y_pred.shape)), axis=-1)


# ---- the classes --------------------------------------------------------------------------------


class Metric:
    """A value averaged over every sample seen since the last ``reset_state``: subclasses give
    ``per_sample(y_true, y_pred)``."""

    STATE = ("total", "count")  # the running sums _start sets (data-parallel fit adds them up)

    def __init__(self, name=None, dtype=None):
        self.name = name or snake_case(type(self).__name__)
        self.dtype = dtype
        self._start()  # not reset_state(): a subclass's may need variables made after this

    def _start(self) -> None:
        """The state of a metric that has seen nothing."""
        self.total = 0.0
        self.count = 0.0

    def reset_state(self) -> None:
        self._start()

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum",
                     name=None) -> MetricVariable:  # fmt: skip
        """A variable for a metric of your own, as Keras's ``Metric.add_variable``."""
        if initializer not in ("zeros", "ones"):
            raise ValueError(f"Received initializer={initializer!r}. Expected 'zeros' or 'ones'.")
        fill = xp.zeros if initializer == "zeros" else xp.ones
        return MetricVariable(fill(shape, dtype=dtype or "float32"), name or "variable")

    def per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = xp.asarray(y_pred)
        self._add(self.per_sample(y_true, y_pred), sample_weight)

    def _add(self, values, sample_weight) -> None:
        if isinstance(values, (int, float)) and isinstance(sample_weight, (int, float, type(None))):
            weight = 1 if sample_weight is None else sample_weight  # one number: no arrays
            self.total += values * weight
            self.count += weight
            return
        values = xp.asarray(values)
        if sample_weight is None:
            self.total += float(values.sum(dtype=xp.float64))
            self.count += values.size
        else:
            w = weights_like(sample_weight, values)
            self.total += float((values * w).sum())
            self.count += float(w.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        """Update with one batch and return the result, as Keras's metrics do."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class MetricVariable:
    """A metric's own state, as Keras's metric variables: ``assign``, ``assign_add``, ``numpy``,
    and usable as a number or an array."""

    def __init__(self, value, name: str):
        self.value, self.name = value, name

    def assign(self, value):
        self.value[...] = value
        return self

    def assign_add(self, delta):
        self.value[...] = self.value + xp.asarray(delta)
        return self

    def assign_sub(self, delta):
        self.value[...] = self.value - xp.asarray(delta)
        return self

    def numpy(self):
        return self.value.copy()

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name}={self.value.tolist()}>"


class Mean(Metric):
    """The (weighted) mean of the values given to ``update_state(values, sample_weight)``."""

    def update_state(self, values, sample_weight=None) -> None:
        self._add(values, sample_weight)


class Sum(Metric):
    """The (weighted) sum of the values given to ``update_state(values, sample_weight)``."""

    def update_state(self, values, sample_weight=None) -> None:
        self._add(values, sample_weight)

    def result(self) -> float:
        return self.total


class Accuracy(Metric):
    """How often predictions equal targets exactly."""

    def per_sample(self, y_true, y_pred):
        y_true = xp.asarray(y_true).reshape(y_pred.shape)
        return (y_true == y_pred).reshape(len(y_pred), -1).mean(-1)


class CategoricalAccuracy(Metric):
    """How often the largest output is the one-hot target's class."""

    def per_sample(self, y_true, y_pred):
        return categorical_accuracy(y_true, y_pred)


class SparseCategoricalAccuracy(Metric):
    """How often the largest output is at the integer label."""

    def per_sample(self, y_true, y_pred):
        return sparse_categorical_accuracy(y_true, y_pred)


class BinaryAccuracy(Metric):
    """How often (output > threshold) equals the 0/1 target."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(name, dtype)

    def per_sample(self, y_true, y_pred):
        return binary_accuracy(y_true, y_pred, self.threshold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class TopKCategoricalAccuracy(Metric):
    """How often the one-hot target's class is among the ``k`` largest outputs."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        self.k = k
        super().__init__(name, dtype)

    def per_sample(self, y_true, y_pred):
        return top_k_categorical_accuracy(y_true, y_pred, self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """How often the integer label is among the ``k`` largest outputs."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(k, name, dtype)

    def per_sample(self, y_true, y_pred):
        return sparse_top_k_categorical_accuracy(y_true, y_pred, self.k)


class MeanSquaredError(Metric):
    """The mean over samples of mean((a − y)²) over the last axis."""

    def per_sample(self, y_true, y_pred):
        return _squared_error(y_true, y_pred)


class MeanAbsoluteError(Metric):
    """The mean over samples of mean(|a − y|) over the last axis."""

    def per_sample(self, y_true, y_pred):
        return _absolute_error(y_true, y_pred)


class MeanAbsolutePercentageError(Metric):
    """The mean over samples of 100 · mean(|a − y| / |y|) over the last axis."""

    def per_sample(self, y_true, y_pred):
        y_true = xp.asarray(y_true).reshape(y_pred.shape)
        return mean_absolute_percentage_error(y_true, y_pred)


class RootMeanSquaredError(Metric):
    """√(mean of (a − y)² over every entry seen), as Keras computes it."""

    def per_sample(self, y_true, y_pred):
        return xp.square(y_pred - xp.asarray(y_true).reshape(y_pred.shape))

    def result(self) -> float:
        return math.sqrt(super().result())


# ---- counting at thresholds ---------------------------------------------------------------------


class _ConfusionCounts(Metric):
    """True/false positives/negatives at each threshold: a prediction counts as positive where it
    is strictly greater than the threshold; every entry is one decision (all labels flattened)."""

    def __init__(self, thresholds, top_k=None, class_id=None, name=None, dtype=None):
        self.thresholds = xp.asarray(thresholds, dtype=xp.float64).reshape(-1)
        if not (self.thresholds == xp.sort(self.thresholds)).all():
            raise ValueError(
                f"Received thresholds={thresholds}. Expected them in increasing order."
            )
        self.top_k, self.class_id = top_k, class_id
        super().__init__(name, dtype)

    STATE = ("true_positives", "false_positives", "true_negatives", "false_negatives")

    def _start(self) -> None:
        n = len(self.thresholds)
        self.true_positives, self.false_positives = xp.zeros(n), xp.zeros(n)
        self.true_negatives, self.false_negatives = xp.zeros(n), xp.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = xp.asarray(y_pred, dtype=xp.float64)
        y_true = xp.asarray(y_true).reshape(y_pred.shape) != 0
        w = xp.ones(y_pred.shape) if sample_weight is None else weights_like(sample_weight,
                                                                               y_pred)  # fmt: skip
        if self.top_k is not None:  # only the k largest outputs of a row can be positive
            kth = -xp.partition(-y_pred, self.top_k - 1, axis=-1)[..., self.top_k - 1 : self.top_k]
            y_pred = xp.where(y_pred >= kth, y_pred, -xp.inf)
        if self.class_id is not None:
            y_true, y_pred, w = y_true[..., self.class_id], y_pred[..., self.class_id], w[
                ..., self.class_id]  # fmt: skip
        y_true, y_pred, w = y_true.reshape(-1), y_pred.reshape(-1), w.reshape(-1)
        # How many thresholds each prediction exceeds: it is positive at thresholds 0 … k − 1.
        exceeded = xp.searchsorted(self.thresholds, y_pred, side="left")
        n = len(self.thresholds)

        def positives(mask):  # weight of the entries in mask that are positive at each threshold
            per_k = xp.bincount(exceeded[mask], weights=w[mask], minlength=n + 1)
            return per_k[::-1].cumsum()[::-1][1:]  # Σ over k > i

        tp, fp = positives(y_true), positives(~y_true)
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += w[y_true].sum() - tp
        self.true_negatives += w[~y_true].sum() - fp

    def _per_threshold(self, values):
        return float(values[0]) if len(values) == 1 else [float(v) for v in values]


def _divide(a, b):
    """a / b, 0 where b is 0 (Keras's divide_no_nan)."""
    return xp.divide(a, b, out=xp.zeros_like(a, dtype=xp.float64), where=b != 0)


class _Count(_ConfusionCounts):
    """One of the four counts, at threshold 0.5 unless ``thresholds`` (one or a list) says."""

    count = ""  # the _ConfusionCounts attribute this metric reports

    def __init__(self, thresholds=None, name=None, dtype=None):
        self._thresholds_given = thresholds
        super().__init__(0.5 if thresholds is None else thresholds, name=name, dtype=dtype)

    def result(self):
        return self._per_threshold(getattr(self, self.count))

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self._thresholds_given}


class TruePositives(_Count):
    """The (weighted) count of entries labelled positive and predicted above the threshold."""

    count = "true_positives"


class FalsePositives(_Count):
    """The (weighted) count of entries labelled negative yet predicted above the threshold."""

    count = "false_positives"


class TrueNegatives(_Count):
    """The (weighted) count of entries labelled negative and predicted at or below the threshold."""

    count = "true_negatives"


class FalseNegatives(_Count):
    """The (weighted) count of entries labelled positive yet predicted at or below the threshold."""

    count = "false_negatives"


class Precision(_ConfusionCounts):
    """TP / (TP + FP): of the predictions called positive, how many are. Threshold 0.5 unless
    ``thresholds`` (one or a list; a list gives a list of results) says otherwise."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision", dtype=None):
        default = -1e-7 if top_k is not None else 0.5  # with top_k, the top k are positive
        super().__init__(default if thresholds is None else thresholds, top_k, class_id, name,
                         dtype)  # fmt: skip

    def result(self):
        tp, fp = self.true_positives, self.false_positives
        return self._per_threshold(_divide(tp, tp + fp))


class Recall(Precision):
    """TP / (TP + FN): of the positives, how many were called positive."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall", dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self):
        tp, fn = self.true_positives, self.false_negatives
        return self._per_threshold(_divide(tp, tp + fn))


class _BestUnderConstraint(_ConfusionCounts):
    """Counts at ``num_thresholds`` thresholds evenly spaced over [0, 1]; the result is the best
    of one rate among the thresholds where another reaches its target (0 where none does)."""

    def __init__(self, value, what, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0 <= value <= 1:
            raise ValueError(f"Argument `{what}` must be in the range [0, 1]. Received: {value}")
        if num_thresholds <= 0:
            raise ValueError(
                "Argument `num_thresholds` must be an integer > 0. "
                f"Received: num_thresholds={num_thresholds}"
            )
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        thresholds = [0.5] if num_thresholds == 1 else [0.0, *inner, 1.0]
        self.num_thresholds, self._what, self._value = num_thresholds, what, float(value)
        super().__init__(thresholds, class_id=class_id, name=name, dtype=dtype)

    def _rates(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        return _divide(tp, tp + fn), _divide(tp, tp + fp)  # recall, precision

    @staticmethod
    def _best(constrained, target, dependent) -> float:
        feasible = constrained >= target
        return float(dependent[feasible].max()) if feasible.any() else 0.0

    def get_config(self) -> dict:
        return {**super().get_config(), self._what: self._value,
                "num_thresholds": self.num_thresholds, "class_id": self.class_id}  # fmt: skip


class PrecisionAtRecall(_BestUnderConstraint):
    """The best precision at any threshold whose recall is at least ``recall``."""

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, "recall", num_thresholds, class_id, name, dtype)

    def result(self) -> float:
        recall, precision = self._rates()
        return self._best(recall, self._value, precision)


class RecallAtPrecision(_BestUnderConstraint):
    """The best recall at any threshold whose precision is at least ``precision``."""

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, "precision", num_thresholds, class_id, name, dtype)

    def result(self) -> float:
        recall, precision = self._rates()
        return self._best(precision, self._value, recall)


class FBetaScore(Metric):
    """F_β = (1 + β²)·precision·recall / (β²·precision + recall), per class, for one-hot or
    multi-label targets (batch, classes). A prediction is positive above ``threshold``, or —
    with none — where it is its row's largest. ``average``: None (one score per class),
    "micro" (from counts summed over the classes), "macro" (their mean) or "weighted" (by each
    class's share of the positives)."""

    STATE = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                "Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', "
                f"'weighted'}}. Received: average={average}"
            )
        if not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: {beta}")
        if threshold is not None and not 0 < threshold <= 1:
            raise ValueError(
                "Invalid `threshold` argument value. It should be a Python float in the range "
                f"]0, 1]. Received: threshold={threshold}"
            )
        self.average, self.beta, self.threshold = average, float(beta), threshold
        super().__init__(name, dtype)

    def _start(self) -> None:
        self.true_positives = self.false_positives = self.false_negatives = 0.0
        self.intermediate_weights = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = xp.asarray(y_pred, dtype=xp.float64)
        y_true = xp.asarray(y_true, dtype=xp.float64).reshape(y_pred.shape)
        if self.threshold is None:  # the largest of each row (and not 0)
            called = (y_pred >= y_pred.max(axis=-1, keepdims=True)) & (xp.abs(y_pred) > 1e-9)
        else:
            called = y_pred > self.threshold
        called = called.astype(xp.float64)
        w = 1.0 if sample_weight is None else xp.asarray(sample_weight, xp.float64).reshape(-1, 1)
        axis = None if self.average == "micro" else 0

        def total(values):
            return (values * w).sum(axis=axis)

        self.true_positives = self.true_positives + total(called * y_true)
        self.false_positives = self.false_positives + total(called * (1 - y_true))
        self.false_negatives = self.false_negatives + total((1 - called) * y_true)
        self.intermediate_weights = self.intermediate_weights + total(y_true)

    def result(self):
        tp, fp, fn = (xp.asarray(v, xp.float64) for v in (self.true_positives,
                      self.false_positives, self.false_negatives))  # fmt: skip
        e, b2 = epsilon(), self.beta**2
        precision, recall = tp / (tp + fp + e), tp / (tp + fn + e)
        score = (1 + b2) * precision * recall / (b2 * precision + recall + e)
        if self.average == "weighted":
            weights = xp.asarray(self.intermediate_weights, xp.float64)
            return float((score * weights / (weights.sum() + e)).sum())
        if self.average is not None:
            return float(score.mean())
        return [float(v) for v in xp.atleast_1d(score)]

    def get_config(self) -> dict:
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}  # fmt: skip


class F1Score(FBetaScore):
    """F₁ = 2·precision·recall / (precision + recall): ``FBetaScore`` with β = 1."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["beta"]
        return config


class AUC(_ConfusionCounts):
    """The area under the ROC curve (true-positive rate against false-positive rate) or the PR
    curve (precision against recall), summed over ``num_thresholds`` thresholds as Keras sums it
    (trapezoids; for PR, Davis & Goadrich's interpolation)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name="auc", dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):  # fmt: skip
        if curve not in ("ROC", "PR"):
            raise ValueError(f"Received curve={curve!r}. Expected 'ROC' or 'PR'.")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f"Received summation_method={summation_method!r}. Expected 'interpolation', "
                "'minoring' or 'majoring'."
            )
        if multi_label or label_weights is not None:
            raise NotImplementedError("AUC(multi_label=True) is not supported by glassnet yet.")
        if thresholds is None:
            if num_thresholds <= 1:
                raise ValueError(
                    "Argument `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds}"
                )
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        else:
            inner = list(thresholds)
        self.curve, self.summation_method, self.from_logits = curve, summation_method, from_logits
        self.num_thresholds = len(inner) + 2
        super().__init__([0.0 - epsilon(), *inner, 1.0 + epsilon()], name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = xp.asarray(y_pred, dtype=xp.float64)
        if self.from_logits:
            y_pred = 1 / (1 + xp.exp(-y_pred))
        super().update_state(y_true, y_pred, sample_weight)

    def result(self) -> float:
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            slope = _divide(dtp, xp.maximum(p[:-1] - p[1:], 0))
            intercept = tp[1:] - slope * p[1:]
            both = (p[:-1] > 0) & (p[1:] > 0)
            ratio = xp.where(both, _divide(p[:-1], xp.maximum(p[1:], 0)), 1.0)
            increments = _divide(slope * (dtp + intercept * xp.log(ratio)),
                                 xp.maximum(tp[1:] + fn[1:], 0))  # fmt: skip
            return float(increments.sum())
        recall = _divide(tp, tp + fn)
        x, y = (
            (_divide(fp, fp + tn), recall)
            if self.curve == "ROC"
            else (recall, _divide(tp, tp + fp))
        )
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = xp.minimum(y[:-1], y[1:])
        else:
            heights = xp.maximum(y[:-1], y[1:])
        return float(((x[:-1] - x[1:]) * heights).sum())


_REGISTRY = {
    "accuracy": None,
    "acc": None,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "root_mean_squared_error": RootMeanSquaredError,
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
}


class MeanMetricWrapper(Metric):
    """The mean of ``fn(y_true, y_pred)``, a value per sample: any function can be a metric."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self.fn, self.kwargs = fn, kwargs
        super().__init__(name or getattr(fn, "__name__", "metric"), dtype)

    def per_sample(self, y_true, y_pred):
        return xp.asarray(self.fn(y_true, y_pred, **self.kwargs))


_FUNCTIONS = {
    binary_accuracy: "binary_accuracy",
    categorical_accuracy: "categorical_accuracy",
    sparse_categorical_accuracy: "sparse_categorical_accuracy",
    top_k_categorical_accuracy: "top_k_categorical_accuracy",
    sparse_top_k_categorical_accuracy: "sparse_top_k_categorical_accuracy",
}


def name_of(spec) -> str:
    """The name a metric is logged under: its string, its ``name``, or its function's name."""
    if isinstance(spec, str):
        return spec
    return getattr(spec, "name", None) or getattr(spec, "__name__", "metric")


def get(identifier, y_true=None, y_pred=None) -> Metric:
    """A metric from a name, a class, an instance or a function of (y_true, y_pred);
    ``"accuracy"`` is resolved from the data's shapes.

    As in Keras: one output unit means binary accuracy; targets with one axis fewer than the
    outputs (or a last axis of 1) mean integer labels; otherwise one-hot targets.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not isinstance(identifier, str):
        if identifier in _FUNCTIONS:
            return _REGISTRY[_FUNCTIONS[identifier]]()
        return MeanMetricWrapper(identifier)
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
