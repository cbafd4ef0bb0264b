"""Merge layers: several tensors in, one out — where the branches of a functional model meet.

Each takes a list of same-shaped inputs a₁ … aₙ (``Concatenate`` joins them along an axis
instead) and, in the backward pass, hands each input its share of ∂C/∂out:

| layer | out | ∂C/∂aᵢ |
| --- | --- | --- |
| Add | Σ aᵢ | ∂C/∂out |
| Subtract | a₁ − a₂ | ±∂C/∂out |
| Multiply | Π aᵢ | ∂C/∂out · Π_{j≠i} aⱼ |
| Average | (Σ aᵢ) / n | ∂C/∂out / n |
| Maximum, Minimum | the largest (smallest) aᵢ per element | ∂C/∂out where aᵢ won, else 0 |
| Concatenate | [a₁, a₂, …] along ``axis`` | the slice of ∂C/∂out that aᵢ filled |

Where an input also feeds another layer, the model adds what both send back (DESIGN.md §1).

>>> import numpy as np
>>> Add()([np.array([[1.0, 2.0]]), np.array([[10.0, 20.0]])])
array([[11., 22.]], dtype=float32)
"""

from __future__ import annotations

import numbers

from glassnet.backend import format_shape, xp
from glassnet.layers.base import Layer

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]


class Merge(Layer):
    """Base of the merge layers: checks the inputs and keeps them for the backward pass."""

    _takes_list = True
    _exactly: int | None = None  # Subtract takes exactly two

    def build(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(
                f"A {type(self).__name__} layer should be called on a list of at least 2 "
                f"inputs. Received: input_shape={input_shape}"
            )
        if self._exactly is not None and len(input_shape) != self._exactly:
            raise ValueError(
                f"A {type(self).__name__} layer should be called on exactly "
                f"{self._exactly} inputs. Received {len(input_shape)}."
            )
        self._check_shapes(input_shape)
        self.input_shape = [tuple(s) for s in input_shape]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _check_shapes(self, shapes) -> None:
        samples = {tuple(s[1:]) for s in shapes}
        if len(samples) > 1:
            raise ValueError(
                f"{type(self).__name__} needs inputs of one shape; received "
                f"{', '.join(format_shape(s) for s in shapes)}."
            )

    def _check_built_for(self, shape) -> None:
        self._check_shapes(shape if isinstance(shape, list) else [shape])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def forward(self, inputs, training=False, cache=None):
        self._check_shapes([x.shape for x in inputs])
        c = self.cache_for(cache)
        c.inputs = inputs
        c.a = self.merge(inputs)
        return c.a

    def backward(self, dC_da, cache=None):
        return self.split(self.cache_for(cache), dC_da)

    def merge(self, inputs):
        raise NotImplementedError

    def split(self, c, dC_da) -> list:
        raise NotImplementedError


class Add(Merge):
    """out = a₁ + a₂ + …; each input gets ∂C/∂out unchanged."""

    def merge(self, inputs):
        out = inputs[0] + inputs[1]
        for x in inputs[2:]:
            out += x
        return out

    def split(self, c, dC_da):
        return [dC_da] * len(c.inputs)


class Subtract(Merge):
    """out = a₁ − a₂; ∂C/∂a₁ = ∂C/∂out, ∂C/∂a₂ = −∂C/∂out."""

    _exactly = 2

    def merge(self, inputs):
        return inputs[0] - inputs[1]

    def split(self, c, dC_da):
        return [dC_da, -dC_da]


class Multiply(Merge):
    """out = a₁ ⊙ a₂ ⊙ …; ∂C/∂aᵢ = ∂C/∂out ⊙ (the product of the other inputs)."""

    def merge(self, inputs):
        out = inputs[0] * inputs[1]
        for x in inputs[2:]:
            out *= x
        return out

    def split(self, c, dC_da):
        grads = []
        for i in range(len(c.inputs)):
            g = dC_da.copy()
            for j, x in enumerate(c.inputs):
                if j != i:
                    g *= x
            grads.append(g)
        return grads


class Average(Merge):
    """out = (a₁ + … + aₙ) / n; each input gets ∂C/∂out / n."""

    def merge(self, inputs):
        out = inputs[0] + inputs[1]
        for x in inputs[2:]:
            out += x
        return out / len(inputs)

    def split(self, c, dC_da):
        return [dC_da / len(c.inputs)] * len(c.inputs)


class Maximum(Merge):
    """out = the largest input, element by element; ∂C/∂out goes to the input that won.

    On a tie the first input wins (it alone gets the gradient), so the gradients still add up
    to ∂C/∂out.
    """

    _ufunc, _pick = xp.maximum, staticmethod(xp.argmax)

    def merge(self, inputs):
        return self._ufunc.reduce(inputs)  # stacks the inputs: (n, batch, …) → (batch, …)

    def split(self, c, dC_da):
        winner = self._pick(xp.stack(c.inputs), axis=0)  # (batch, …): index of the winning input
        return [xp.where(winner == i, dC_da, 0).astype(dC_da.dtype) for i in range(len(c.inputs))]


class Minimum(Maximum):
    """out = the smallest input, element by element; ∂C/∂out goes to the input that won."""

    _ufunc, _pick = xp.minimum, staticmethod(xp.argmin)


class Concatenate(Merge):
    """out = the inputs joined along ``axis`` (the last by default); each input gets its slice.

    Args:
        axis: The axis to join along; the other axes must match.
    """

    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"Received axis={axis!r}. Expected an integer.")
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _axis(self, ndim: int) -> int:
        if not -ndim < self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(
                f"Concatenate(axis={self.axis}) cannot join inputs of rank {ndim}: the axis must "
                "be one of the sample axes (not the batch axis 0)."
            )
        return self.axis % ndim

    def _check_shapes(self, shapes) -> None:
        axis = self._axis(len(shapes[0]))
        others = {tuple(d for k, d in enumerate(s) if k not in (0, axis)) for s in shapes}
        if len({len(s) for s in shapes}) > 1 or len(others) > 1:
            raise ValueError(
                "A Concatenate layer requires inputs with matching shapes except for the "
                f"concatenation axis {self.axis}. Received: "
                f"{', '.join(format_shape(s) for s in shapes)}."
            )

    def compute_output_shape(self, input_shape):
        axis = self._axis(len(input_shape[0]))
        sizes = [s[axis] for s in input_shape]
        out = list(input_shape[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def merge(self, inputs):
        return xp.concatenate(inputs, axis=self._axis(inputs[0].ndim))

    def split(self, c, dC_da):
        axis = self._axis(dC_da.ndim)
        bounds = xp.cumsum([x.shape[axis] for x in c.inputs])[:-1]
        return xp.split(dC_da, bounds, axis=axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# ---- the functional forms, as keras.layers.add(...) --------------------------------------------


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: the entrywise sum of the inputs."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``: the first input minus the second."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``: the entrywise product of the inputs."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``: the entrywise mean of the inputs."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``: the entrywise largest of the inputs."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``: the entrywise smallest of the inputs."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``: the inputs side by side along ``axis``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
