"""Weight regularizers (``keras.regularizers``): a penalty on a parameter, added to C.

A regularizer turns a parameter W into a number Ω(W) that training adds to the cost,
C_total = C + Ω(W), so gradient descent also pulls W towards small values: each step adds ∂Ω/∂W
to ∂C/∂W. Each one below writes its derivative right under its penalty::

    L2:   Ω = λ·Σ W²        ∂Ω/∂W = 2λ·W       ("weight decay")
    L1:   Ω = λ·Σ |W|       ∂Ω/∂W = λ·sign(W)

They read W as Keras lays it out (a Dense kernel is Wᵀ), which matters only for
``OrthogonalRegularizer``. A regularizer of your own — a ``Regularizer`` subclass, or a plain
function — written with ``glassnet.ops`` gets its derivative from the ops it uses.

>>> w = np.array([[1.0, -2.0], [0.5, 0.0]])
>>> float(L2(0.1)(w)), L2(0.1).gradient(w)
(0.525, array([[ 0.2, -0.4],
       [ 0.1,  0. ]]))
"""

from __future__ import annotations

import numpy as np

from glassnet import ops
from glassnet.backend import lookup

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
]


def _factor(name: str, value) -> float:
    value = 0.0 if value is None else value
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"Received {name}={value!r}. Expected a non-negative number.")
    return value


class Regularizer:
    """Base class: ``regularizer(W)`` is the penalty Ω(W), ``gradient(W)`` is ∂Ω/∂W.

    A subclass that defines only ``__call__``, with ``glassnet.ops``, gets ``gradient`` from
    the ops it recorded (the deck's recursion over them)."""

    def __call__(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(self, x).")

    def gradient(self, x):
        """∂Ω/∂W at ``x``: here, by recording ``__call__`` on a tape and running it back."""
        return _recorded_gradient(self, x)

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must define get_config() to be saved.")

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)


def _recorded_gradient(penalty, x):
    with ops.Tape() as tape:
        leaf = tape.watch(np.asarray(x), "W")
        omega = penalty(leaf)
    if not isinstance(omega, ops.Tensor):  # it did not read W: no slope
        return np.zeros_like(np.asarray(x))
    return tape.gradients(ops.sum(omega), [leaf])[0]


class L1(Regularizer):
    """Ω = λ·Σ|W|; ∂Ω/∂W = λ·sign(W) (0 where W is 0)."""

    def __init__(self, l1=0.01):
        self.l1 = _factor("l1", l1)

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x))

    def gradient(self, x):
        return self.l1 * np.sign(x)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """Ω = λ·Σ W²; ∂Ω/∂W = 2λ·W."""

    def __init__(self, l2=0.01):
        self.l2 = _factor("l2", l2)

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(x))

    def gradient(self, x):
        return 2 * self.l2 * np.asarray(x)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class L1L2(Regularizer):
    """Ω = λ₁·Σ|W| + λ₂·Σ W²; ∂Ω/∂W = λ₁·sign(W) + 2λ₂·W (Keras's defaults: both 0)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor("l1", l1), _factor("l2", l2)

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x)) + self.l2 * ops.sum(ops.square(x))

    def gradient(self, x):
        return self.l1 * np.sign(x) + 2 * self.l2 * np.asarray(x)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns of a 2-D W towards being orthogonal: with
    the unit-length vectors as the rows of U, Ω = factor·Σ_{i≠j} |(U·Uᵀ)ᵢⱼ| / (n(n−1)), as
    Keras computes it; its derivative comes from the ops it is written with."""

    def __init__(self, factor=0.01, mode="rows"):
        if mode not in ("rows", "columns"):
            raise ValueError(f"Received mode={mode!r}. Expected 'rows' or 'columns'.")
        self.factor, self.mode = _factor("factor", factor), mode

    def __call__(self, x):
        if ops.ndim(x) != 2:
            raise ValueError(
                f"OrthogonalRegularizer needs a 2-D weight; received shape {ops.shape(x)}."
            )
        if self.mode == "columns":
            x = ops.transpose(x)
        u = x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=1, keepdims=True)), 1e-12)
        n = ops.shape(u)[0]
        products = ops.matmul(u, ops.transpose(u)) * (1.0 - np.eye(n, dtype=np.float32))
        return self.factor * ops.sum(ops.abs(products)) / max(n * (n - 1), 1)

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer
_REGISTRY = {"l1": L1, "l2": L2, "l1_l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}
_CLASSES = {cls.__name__: cls for cls in (L1, L2, L1L2, OrthogonalRegularizer)}


class _Function(Regularizer):
    """A plain function used as a regularizer (``kernel_regularizer=my_penalty``)."""

    def __init__(self, function):
        self.function = function

    def __call__(self, x):
        return self.function(x)

    def get_config(self) -> dict:
        raise NotImplementedError(
            f"The regularizer function {getattr(self.function, '__name__', self.function)!r} "
            "cannot be saved in a config; write it as a Regularizer subclass with get_config()."
        )


def get(identifier) -> Regularizer | None:
    """A regularizer from None, a name ("l1", "l2", "l1_l2"), a Keras config dict, a
    ``Regularizer`` (returned as is) or a function of W."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):  # {"class_name": "L2", "config": {"l2": 0.01}}
        name = identifier.get("class_name")
        cls = _CLASSES.get(name) or lookup("regularizer", name, _REGISTRY)
        return cls.from_config(identifier.get("config") or {})
    if isinstance(identifier, str):
        return lookup("regularizer", identifier, _REGISTRY)()
    if callable(identifier):
        return _Function(identifier)
    raise ValueError(
        f"Could not interpret regularizer identifier: {identifier!r}. Expected None, a name "
        "('l1', 'l2', 'l1_l2'), a config dict or a keras.regularizers.Regularizer."
    )


def serialize(regularizer: Regularizer | None) -> dict | None:
    """Keras's config form (``{"module": …, "class_name": …, "config": …}``), None for None."""
    if regularizer is None:
        return None
    return {
        "module": "keras.regularizers",
        "class_name": type(regularizer).__name__,
        "config": regularizer.get_config(),
        "registered_name": None,
    }
