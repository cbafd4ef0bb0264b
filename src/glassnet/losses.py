"""Loss functions C(y, a) and their derivatives, with Keras's names and ``from_logits`` option.

The functions (``categorical_crossentropy(y_true, y_pred)``, …) return one loss per sample, as in
Keras. The classes average them over the batch — C is the batch mean — and know the derivative:
``dC_da(y, a)`` for the general case, and for the cross-entropies ``dC_dz(y, a)``, the deck's case 1
shortcut. A softmax output a = softmax(z) followed by cross-entropy has ∂C/∂z = (a − y) / batch: the
softmax Jacobian and the 1/a of the logarithm cancel, so the model skips both. The 1/batch factor
of the mean lives here, in these derivatives, and nowhere else.

>>> import numpy as np
>>> y, a = np.array([[0.0, 1.0]]), np.array([[0.2, 0.8]])
>>> float(CategoricalCrossentropy()(y, a)) == float(-np.log(0.8))
True
>>> MeanSquaredError().dC_da(y, a)
array([[ 0.2, -0.2]])
"""

from __future__ import annotations

from glassnet import activations, ops
from glassnet.backend import (
    CUSTOM_OBJECTS,
    epsilon,
    fits,
    floatx,
    format_shape,
    function_from_config,
    lookup,
    serialize_function,
    xp,
)

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "get",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "sparse_categorical_crossentropy",
    "weights_like",
]


# ---- per-sample losses, as Keras's functions ----------------------------------------------------


def _log_softmax(z):
    # log softmax(z) = z − max − log Σ exp(z − max): finite even for logits of ±1e4. The sum is
    # 1 (the largest term) + t; log1p(t) keeps t's digits where log(1 + t) would round them
    # away, so a confident answer's C ≈ t is exact to the last bits, not to ±1e-16 (float64) or
    # ±6e-8 (float32): the glass box's C and its finite differences rest on it.
    shifted = z - z.max(axis=-1, keepdims=True)  # (batch, k), the largest entry 0
    e = xp.exp(shifted)  # (batch, k)
    largest = shifted == 0  # (batch, k): one True per row, or more for a tie
    ties = largest.sum(axis=-1, keepdims=True).astype(e.dtype) - 1  # (batch, 1), mostly 0
    t = xp.where(largest, 0, e).sum(axis=-1, keepdims=True) + ties  # (batch, 1)
    return shifted - xp.log1p(t)


def mean_squared_error(y_true, y_pred):
    """mean over the last axis of (a − y)²; shape (batch,)."""
    return xp.mean(xp.square(y_pred - y_true), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """mean over the last axis of |a − y|; shape (batch,)."""
    return xp.mean(xp.abs(y_pred - y_true), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """100 · mean over the last axis of |a − y| / |y| (|y| at least ε, as Keras); (batch,)."""
    return 100.0 * xp.mean(xp.abs(y_pred - y_true) / _percent_base(y_true), axis=-1)


def _percent_base(y_true):
    return xp.maximum(xp.abs(y_true), epsilon())


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """−mean(y·log a + (1 − y)·log(1 − a)) over the last axis; shape (batch,)."""
    if from_logits:
        z = y_pred  # log(1 + e^(−|z|)) + max(z, 0) − z·y, the stable form
        return xp.mean(xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z))), axis=-1)
    a = xp.clip(y_pred, epsilon(), 1 - epsilon())
    return -xp.mean(y_true * xp.log(a) + (1 - y_true) * xp.log(1 - a), axis=-1)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """−Σ y·log a over the classes, for one-hot (or probability) targets y; shape (batch,)."""
    if from_logits:
        return -(y_true * _log_softmax(y_pred)).sum(axis=-1)
    a = y_pred / y_pred.sum(axis=-1, keepdims=True)  # Keras renormalises probabilities
    return -(y_true * xp.log(xp.clip(a, epsilon(), 1 - epsilon()))).sum(axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """−log a[label] for integer labels; shape (batch,)."""
    labels = _as_labels(y_true)  # (rows,)
    k = y_pred.shape[-1]
    if from_logits:
        log_a = _log_softmax(y_pred)
    else:
        a = y_pred / y_pred.sum(axis=-1, keepdims=True)
        log_a = xp.log(xp.clip(a, epsilon(), 1 - epsilon()))
    if y_pred.ndim == 2:
        return -log_a[xp.arange(len(labels)), labels]  # (batch,)
    picked = log_a.reshape(-1, k)[xp.arange(len(labels)), labels]  # (rows,)
    return -picked.reshape(y_pred.shape[:-1])


def _as_labels(y):
    return xp.asarray(y).reshape(-1).astype(xp.intp, copy=False)


def rows(a) -> int:
    """How many per-sample losses C averages: every position but the class axis.

    (batch, k) outputs give batch rows; (batch, steps, k) outputs give batch · steps, as Keras
    averages a loss over every axis but the last.
    """
    return a.size // a.shape[-1] if a.ndim > 1 else a.size


def weights_like(sample_weight, values):
    """Per-sample weights broadcast to the per-sample losses: (batch,) weights for (batch,) or
    (batch, steps) values; (batch, 1) weights as (batch,)."""
    w = xp.asarray(sample_weight, dtype=values.dtype if values.dtype.kind == "f" else float)
    if w.ndim == values.ndim + 1 and w.shape[-1] == 1:
        w = w.reshape(w.shape[:-1])
    while w.ndim < values.ndim:
        w = w[..., None]
    try:
        return xp.broadcast_to(w, values.shape)
    except ValueError:
        raise ValueError(
            f"sample_weight of shape {xp.shape(sample_weight)} does not fit per-sample losses "
            f"of shape {values.shape}: give one weight per sample."
        ) from None


def _weighted_mean(values, sample_weight):
    """mean(w · l): Keras's "sum_over_batch_size", Σ wᵢ·lᵢ / n (n counts every value)."""
    if sample_weight is None:
        return values.mean()
    return (values * weights_like(sample_weight, values)).mean()


def _categorical_dC_da(y, a):
    # C = −Σ y·log(a / Σa): ∂C/∂a_i = (−y_i / a_i + Σ_j y_j / Σ_j a_j) / rows
    a = xp.clip(a, epsilon(), None)
    return (-y / a + y.sum(axis=-1, keepdims=True) / a.sum(axis=-1, keepdims=True)) / rows(a)


def _one_hot(labels, shape, dtype):
    """One-hot rows for flat ``labels``, shaped ``shape`` (the outputs' shape)."""
    y = xp.zeros((labels.shape[0], shape[-1]), dtype=dtype)
    y[xp.arange(labels.shape[0]), labels] = 1
    return y.reshape(shape)


# ---- the classes: C as the batch mean, and its derivative ----------------------------------------


class Loss:
    """C = the mean over the batch of a per-sample loss, and ∂C/∂(model output).

    Attributes:
        output_activation: The output activation whose derivative this loss cancels (the deck's
            case 1), or ``None``.
    """

    output_activation: activations.ActivationFunction | None = None
    name = "loss"

    REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)

    def __init__(
        self,
        from_logits=False,
        name=None,
        reduction="sum_over_batch_size",
        dtype=None,
        label_smoothing=0.0,
        axis=-1,
    ):
        if label_smoothing or axis != -1:
            raise NotImplementedError(
                f"{type(self).__name__}(label_smoothing={label_smoothing}, axis={axis}) is not "
                "supported by glassnet yet: the classes run along the last axis, unsmoothed."
            )
        if reduction not in self.REDUCTIONS:
            raise ValueError(
                f"Received reduction={reduction!r}. Expected one of "
                f"{', '.join(repr(r) for r in self.REDUCTIONS)}; Keras's default, "
                "'sum_over_batch_size', is the mean."
            )
        self.from_logits = from_logits
        self.name = name or type(self).name
        self.reduction = reduction

    def call(self, y_true, y_pred):
        """Keras's way to write a loss: the loss of each sample, with ``glassnet.ops``; its
        derivative then comes from the ops it records (see ``dC_da``)."""
        raise NotImplementedError(
            f"{type(self).__name__} needs call(y_true, y_pred) written with glassnet.ops, as "
            "Keras's, or per_sample(y, a) with its derivative dC_da(y, a) written out. See "
            "'Your own layer, and your own loss' in the README."
        )

    def _written_with_call(self) -> bool:
        return type(self).call is not Loss.call

    def per_sample(self, y, out):
        """The loss of each sample: ``call``'s values, for a loss written Keras's way."""
        if not self._written_with_call():
            self.call(y, out)  # says what is missing
        return xp.asarray(ops.convert_to_numpy(self.call(y, out)), dtype=float)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss of a batch, reduced as ``reduction`` says, as ``keras.losses.Loss``:
        Σ wᵢ·lᵢ / n by default; Σ wᵢ·lᵢ for "sum"; Σ wᵢ·lᵢ / Σ wᵢ for "mean_with_sample_weight";
        every wᵢ·lᵢ for "none"."""
        if isinstance(y_pred, ops.Tensor):  # inside a layer's call(): one recorded step
            return self._recorded(y_true, y_pred, sample_weight)
        y_pred = xp.asarray(y_pred, dtype=float)
        values = self.per_sample(self.check_targets(y_true, y_pred.shape), y_pred)
        w = None if sample_weight is None else weights_like(sample_weight, values)
        weighted = values if w is None else values * w
        if self.reduction in ("none", None):
            return weighted
        total = float(weighted.sum())
        if self.reduction == "sum":
            return total
        divisor = w.sum() if self.reduction == "mean_with_sample_weight" and w is not None else (
            values.size)  # fmt: skip
        return total / divisor if divisor else 0.0

    def _recorded(self, y_true, y_pred, sample_weight):
        """C of a batch inside a recorded call (a layer that adds it with add_loss): one step,
        C = the batch mean, whose backward is this loss's own ∂C/∂(output)."""
        if sample_weight is not None or self.reduction not in ("sum_over_batch_size", "mean"):
            raise NotImplementedError(
                f"Inside a layer's call, {type(self).__name__} takes no sample_weight and the "
                "mean as its reduction, for now."
            )
        out = ops.convert_to_numpy(y_pred)
        y = self.check_targets(ops.convert_to_numpy(y_true), out.shape)
        C = xp.asarray(self.C(y, out), dtype=out.dtype)
        return ops.record(self.name, C, (y_pred,), lambda g: (g * self.gradient(y, out),))

    def C(self, y, out, sample_weight=None):
        """The batch mean of the (weighted) per-sample loss of the model output ``out``."""
        return _weighted_mean(self.per_sample(y, out), sample_weight)

    def gradient(self, y, out):
        """∂C/∂out for the model output ``out`` (logits when ``from_logits``)."""
        if self.from_logits and not self._written_with_call():
            return self.dC_dz(y, self.output_activation(out))
        return self.dC_da(y, out)

    def dC_da(self, y, a):
        """∂C/∂a for a loss written with ``call``: the deck's recursion over the ops it recorded
        on a (the model's output), each op's derivative written out in ``glassnet.ops``; C is
        the mean of its values (Keras's "sum_over_batch_size")."""
        if not self._written_with_call():
            self.call(y, a)  # says what is missing
        with ops.Tape() as tape:
            a_leaf = tape.watch(a, "a")  # the deck's a: the model's output
            values = self.call(tape.watch(y, "y"), a_leaf)  # y named, for the glass box
        if not isinstance(values, ops.Tensor):  # C does not depend on the output
            return xp.zeros_like(a)
        size = max(int(values.size), 1)
        (dC_da,) = tape.gradients(values, [a_leaf], xp.full(values.shape, 1.0 / size))
        self.tape = tape  # the last step's ops, for the glass box
        return dC_da.astype(a.dtype, copy=False)

    def C_from_z(self, y, z, sample_weight=None):
        """C computed from the output layer's z, stably (used with the case-1 shortcut)."""
        return _weighted_mean(self.per_sample_from_logits(y, z), sample_weight)

    def check_targets(self, y, output_shape):
        """``y`` as the array this loss computes with; a clear error if it cannot fit."""
        if self._written_with_call():
            return _numeric_targets(y, output_shape)
        y = xp.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"Targets must be numbers; received an array of dtype {y.dtype}.")
        if y.dtype.kind == "f" and not xp.isfinite(y).all():
            raise ValueError("The targets y contain NaN or infinity; every label must be finite.")
        if output_shape[-1] == 1 and fits(y.shape[1:], output_shape[1:-1]):
            y = y.reshape(*y.shape, 1)  # (n,) targets for a single output unit
        if not fits(y.shape[1:], output_shape[1:]):
            raise ValueError(
                f"{self.name} needs targets shaped like the model output, "
                f"{format_shape(('n', *output_shape[1:]))}; received targets of shape {y.shape}."
            )
        return y.astype(floatx(), copy=False)  # float64 targets would drag the math to float64

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """C = mean((a − y)²) over the batch and the outputs; ∂C/∂a = 2(a − y) / (batch · k)."""

    name = "mean_squared_error"

    def per_sample(self, y, out):
        return mean_squared_error(y, out)

    def gradient(self, y, out):
        return self.dC_da(y, out)

    def dC_da(self, y, a):
        return (2.0 / a.size) * (a - y)  # a.size = batch · k


class MeanAbsoluteError(Loss):
    """C = mean(|a − y|); ∂C/∂a = sign(a − y) / (batch · k)."""

    name = "mean_absolute_error"

    def per_sample(self, y, out):
        return mean_absolute_error(y, out)

    def gradient(self, y, out):
        return self.dC_da(y, out)

    def dC_da(self, y, a):
        return xp.sign(a - y) / a.size


class MeanAbsolutePercentageError(Loss):
    """C = 100 · mean(|a − y| / |y|); ∂C/∂a = 100 · sign(a − y) / (|y| · batch · k)."""

    name = "mean_absolute_percentage_error"

    def per_sample(self, y, out):
        return mean_absolute_percentage_error(y, out)

    def gradient(self, y, out):
        return self.dC_da(y, out)

    def dC_da(self, y, a):
        return 100.0 * xp.sign(a - y) / (_percent_base(y) * a.size)


class BinaryCrossentropy(Loss):
    """C = −mean(y·log a + (1 − y)·log(1 − a)); after a sigmoid, ∂C/∂z = (a − y) / (batch·k)."""

    name = "binary_crossentropy"
    output_activation = activations.sigmoid

    def per_sample(self, y, out):
        return binary_crossentropy(y, out, from_logits=self.from_logits)

    def per_sample_from_logits(self, y, z):
        return binary_crossentropy(y, z, from_logits=True)

    def dC_da(self, y, a):
        a = xp.clip(a, epsilon(), 1 - epsilon())
        return (a - y) / (a * (1 - a)) / a.size  # the mean runs over rows and outputs

    def dC_dz(self, y, a):
        return (a - y) / a.size

    def check_targets(self, y, output_shape):
        y = super().check_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                "binary_crossentropy needs targets between 0 and 1; received values from "
                f"{y.min()} to {y.max()}."
            )
        return y


class CategoricalCrossentropy(Loss):
    """C = −mean over the batch of Σ y·log a, for one-hot targets.

    With a softmax output (or ``from_logits=True``) the model uses ∂C/∂z = (a − y) / batch.
    """

    name = "categorical_crossentropy"
    output_activation = activations.softmax

    def per_sample(self, y, out):
        return categorical_crossentropy(y, out, from_logits=self.from_logits)

    def per_sample_from_logits(self, y, z):
        return categorical_crossentropy(y, z, from_logits=True)

    def dC_da(self, y, a):
        return _categorical_dC_da(y, a)

    def dC_dz(self, y, a):
        return (a - y) / rows(a)  # (…, k); each row of y sums to 1

    def check_targets(self, y, output_shape):
        y_array = xp.asarray(y)
        k = output_shape[-1]
        if y_array.ndim == len(output_shape) - 1 or (
            y_array.ndim == 2 and y_array.shape[1] == 1 and k > 1
        ):
            raise ValueError(
                f"categorical_crossentropy needs one-hot targets of shape (n, {k}); received "
                f"class labels of shape {y_array.shape}. Use "
                "loss='sparse_categorical_crossentropy', or one-hot encode them with "
                f"glassnet.utils.to_categorical(y, {k})."
            )
        y = super().check_targets(y_array, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):  # else C can go negative and training diverges
            raise ValueError(
                "categorical_crossentropy needs targets between 0 and 1 (one-hot rows, or "
                f"probabilities); received values from {y.min()} to {y.max()}."
            )
        return y


class SparseCategoricalCrossentropy(Loss):
    """C = −mean over the batch of log a[label], for integer class labels 0 … k − 1.

    With a softmax output (or ``from_logits=True``) the model uses ∂C/∂z = (a − onehot(y)) / batch.
    """

    name = "sparse_categorical_crossentropy"
    output_activation = activations.softmax

    def per_sample(self, y, out):
        return sparse_categorical_crossentropy(y, out, from_logits=self.from_logits)

    def per_sample_from_logits(self, y, z):
        return sparse_categorical_crossentropy(y, z, from_logits=True)

    def dC_da(self, y, a):
        one_hot = _one_hot(_as_labels(y), a.shape, a.dtype)
        return _categorical_dC_da(one_hot, a)

    def dC_dz(self, y, a):
        n = rows(a)
        dC_dz = a / n  # (…, k)
        flat = dC_dz.reshape(n, a.shape[-1])  # a view: (rows, k)
        flat[xp.arange(n), _as_labels(y)] -= 1 / n
        return dC_dz

    def check_targets(self, y, output_shape):
        y = xp.asarray(y)
        k = output_shape[-1]
        if len(output_shape) == 2 and y.ndim == 2 and y.shape[1] == k and k > 1:
            raise ValueError(
                f"sparse_categorical_crossentropy needs integer class labels of shape (n,); "
                f"received one-hot targets of shape {y.shape}. Use "
                "loss='categorical_crossentropy', or pass y.argmax(axis=1)."
            )
        label_shape = tuple(output_shape[1:-1])  # (n,) labels for (n, k) outputs, and so on
        if not (fits(y.shape[1:], label_shape) or fits(y.shape[1:], (*label_shape, 1))):
            wanted = format_shape(("n", *label_shape))
            raise ValueError(
                f"sparse_categorical_crossentropy needs integer labels of shape {wanted} for "
                f"outputs of shape {format_shape(('n', *output_shape[1:]))}; received {y.shape}."
            )
        labels = y.reshape(-1)
        if labels.dtype.kind == "f":
            if not xp.isfinite(labels).all() or not (labels == xp.round(labels)).all():
                raise ValueError(
                    "sparse_categorical_crossentropy needs integer class labels; received "
                    f"non-integer values such as {labels[labels != xp.round(labels)][:3]}."
                )
        elif labels.dtype.kind not in "biu":
            raise TypeError(f"Class labels must be integers; received dtype {labels.dtype}.")
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            bad = labels[(labels < 0) | (labels >= k)][:3]
            raise ValueError(
                f"Received class labels {bad.astype(int).tolist()} outside 0..{k - 1}: the model "
                f"has {k} outputs. Check the labels, or give the last layer more units."
            )
        return labels.astype(xp.intp).reshape(y.shape)  # as given: metrics see what Keras's do


def _numeric_targets(y, output_shape):
    """For a loss written with ops: numbers, one per sample (the function decides what fits);
    (n,) targets for a single output unit become (n, 1), as Keras brings both to one rank."""
    y = xp.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"Targets must be numbers; received an array of dtype {y.dtype}.")
    if y.dtype.kind == "f" and not xp.isfinite(y).all():
        raise ValueError("The targets y contain NaN or infinity; every label must be finite.")
    if y.ndim == len(output_shape) - 1 and output_shape[-1] == 1:
        y = y[..., None]
    return y.astype(floatx(), copy=False) if y.dtype.kind == "f" else y


class LossFunctionWrapper(Loss):
    """A loss written as a function of (y_true, y_pred) with ``glassnet.ops``, as Keras takes
    one (``compile(loss=my_loss)``): C is the mean of the values it returns (Keras's
    "sum_over_batch_size"), and ∂C/∂a comes from the deck's recursion over the ops it recorded
    on y_pred, each op's derivative written out in ``glassnet.ops``.

    >>> import numpy as np
    >>> from glassnet import ops
    >>> loss = LossFunctionWrapper(lambda y, a: ops.mean(ops.square(a - y), axis=-1))
    >>> loss.dC_da(np.zeros((2, 1)), np.array([[1.0], [3.0]]))  # 2(a − y)/2 rows
    array([[1.],
           [3.]])
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn, self.kwargs = fn, kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, "fn": serialize_function(self.fn)}


_REGISTRY = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_CLASSES = {cls.__name__.lower(): cls for cls in set(_REGISTRY.values())}
NAMES = tuple(sorted(name for name in _REGISTRY if len(name) > 3))
"""The loss names ``compile`` accepts (besides the short ``mse``, ``mae`` and ``mape``)."""


def get(identifier) -> Loss:
    """A loss from a name (``"categorical_crossentropy"``, ``"mse"``, …), a config, a class, an
    instance, or one of this module's functions (``losses.mean_squared_error``)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and not isinstance(identifier, (str, dict)):
        for name, cls in _REGISTRY.items():
            if globals().get(name) is identifier:
                return cls()
        return LossFunctionWrapper(identifier)  # a function of (y_true, y_pred) with ops
    if isinstance(identifier, dict) and identifier.get("class_name") in ("function", "__lambda__"):
        return LossFunctionWrapper(function_from_config(identifier, what="loss function"))
    if isinstance(identifier, dict) and identifier.get("class_name") == "LossFunctionWrapper":
        config = dict(identifier.get("config") or {})
        fn = function_from_config(config.pop("fn", None), what="loss function")
        return LossFunctionWrapper(fn, **{k: v for k, v in config.items() if k != "dtype"})
    if isinstance(identifier, dict):  # Keras config: {"class_name": ..., "config": {...}}
        registered = CUSTOM_OBJECTS.get(identifier.get("registered_name") or "")
        if isinstance(registered, type) and issubclass(registered, Loss):
            return registered(**(identifier.get("config") or {}))
        cls = lookup("loss", identifier.get("class_name", ""), _CLASSES)
        config = {k: v for k, v in (identifier.get("config") or {}).items() if k != "dtype"}
        return cls(**config)
    return lookup("loss", identifier, _REGISTRY)()
