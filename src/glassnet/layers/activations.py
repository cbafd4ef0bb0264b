"""Activation layers with options, as ``keras.layers.ReLU``, ``LeakyReLU``, ``ELU``, ``Softmax``
and ``PReLU``: a = σ(z), where z is the layer's input, and ∂C/∂z = σ′(z) ⊙ ∂C/∂a right under it.

``Activation("relu")`` covers the plain functions; these layers carry the options Keras gives
them (a ceiling, a slope below zero, a softmax over another axis) and, in ``PReLU``, a slope that
is learned like a weight.

>>> import numpy as np
>>> ReLU(max_value=1.0)(np.array([[-3.0, 0.5, 2.0]]))
array([[0. , 0.5, 1. ]], dtype=float32)
>>> LeakyReLU(negative_slope=0.5)(np.array([[-2.0, 3.0]]))
array([[-1.,  3.]], dtype=float32)
"""

from __future__ import annotations

import numbers
from typing import ClassVar

from glassnet import activations, initializers
from glassnet.backend import xp
from glassnet.layers.base import Layer

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]


def _number(value, what: str, low=None, allow_none=False):
    """``value`` as a float, or a clear error naming the argument."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise ValueError(f"Received {what}={value!r}. Expected a number.")
    if low is not None and value < low:
        raise ValueError(f"Received {what}={value!r}. Expected a number ≥ {low}.")
    return float(value)


def _options(layer: Layer, **defaults) -> str:
    """The options that differ from Keras's defaults, as the glass box names the function."""
    given = [f"{k}={getattr(layer, k):g}" for k, v in defaults.items()
             if getattr(layer, k) is not None and getattr(layer, k) != v]  # fmt: skip
    return f"[{', '.join(given)}]" if given else ""


class _Elementwise(Layer):
    """a = f(z) entry by entry; ∂C/∂z = f′(z) ⊙ ∂C/∂a. Subclasses give ``f`` and ``prime``."""

    @property
    def activation(self) -> activations.ActivationFunction:
        """The function with this layer's options, named as the glass box shows it."""
        return activations.ActivationFunction(self.function_name(), self.f, self.prime)

    def function_name(self) -> str:
        raise NotImplementedError

    def f(self, z):
        raise NotImplementedError

    def prime(self, z, a):
        raise NotImplementedError

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        c.z = a_prev  # z is this layer's input
        c.a = self.f(a_prev).astype(a_prev.dtype, copy=False)
        return c.a

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        c.dC_da = dC_da
        c.dC_dz = dC_da * self.prime(c.z, c.a)
        return c.dC_dz


class ReLU(_Elementwise):
    """a = z above ``threshold`` (capped at ``max_value``), ``negative_slope``·(z − threshold)
    at or below it; with the defaults, max(z, 0).

    f′ is 1 between the threshold and the cap, ``negative_slope`` at or below the threshold and
    0 at or above the cap (the kink at the threshold gets the lower slope, as Keras's does).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _number(max_value, "max_value", low=0, allow_none=True)
        self.negative_slope = _number(negative_slope, "negative_slope", low=0)
        self.threshold = _number(threshold, "threshold")

    def function_name(self):
        return "relu" + _options(self, max_value=None, negative_slope=0.0, threshold=0.0)

    def f(self, z):
        below = self.negative_slope * (z - self.threshold) if self.negative_slope else 0.0
        a = xp.where(z > self.threshold, z, below)  # 0, not −0, below a plain ReLU's kink
        return a if self.max_value is None else xp.minimum(a, self.max_value)

    def prime(self, z, a):
        slope = xp.where(z > self.threshold, 1.0, self.negative_slope)
        if self.max_value is not None:
            slope = xp.where(z >= self.max_value, 0.0, slope)
        return slope.astype(z.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(_Elementwise):
    """a = z for z > 0, ``negative_slope``·z otherwise (Keras's default slope: 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name for it
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _number(negative_slope, "negative_slope", low=0)

    def function_name(self):
        return f"leaky_relu[negative_slope={self.negative_slope:g}]"

    def f(self, z):
        return activations.leaky_relu.f(z, self.negative_slope)

    def prime(self, z, a):
        return activations.leaky_relu.prime(z, a, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """a = z for z > 0, α(eᶻ − 1) otherwise; f′ = 1, or αeᶻ = a + α."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _number(alpha, "alpha")

    def function_name(self):
        return "elu" + _options(self, alpha=1.0)

    def f(self, z):
        return activations.elu.f(z, self.alpha)

    def prime(self, z, a):
        return activations.elu.prime(z, a, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """a = e^z / Σ e^z along ``axis``; ∂C/∂z = a ⊙ (∂C/∂a − Σ a ⊙ ∂C/∂a) along the same axis."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"Received axis={axis!r}. Expected an integer axis (-1: the last).")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape) or self.axis in (
            0,
            -len(input_shape),
        ):
            raise ValueError(
                f"Softmax(axis={self.axis}) needs an axis of the samples, 1 … "
                f"{len(input_shape) - 1} or −1 … −{len(input_shape) - 1}, for inputs of "
                f"{len(input_shape)} axes."
            )
        return tuple(input_shape)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        self.compute_output_shape(a_prev.shape)
        c.z = a_prev
        moved = xp.moveaxis(a_prev, self.axis, -1)  # the deck's softmax runs over the last axis
        c.a = xp.moveaxis(activations.softmax(moved), -1, self.axis)
        return c.a

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        c.dC_da = dC_da
        a, g = xp.moveaxis(c.a, self.axis, -1), xp.moveaxis(dC_da, self.axis, -1)
        c.dC_dz = xp.moveaxis(activations.softmax.backward(None, a, g), -1, self.axis)
        return c.dC_dz

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """a = z for z > 0, α ⊙ z otherwise, with α learned: one slope per input entry, or one per
    group along ``shared_axes`` (Keras's ``alpha``, starting at 0: a ReLU).

    ∂C/∂z = ∂C/∂a where z > 0, α ⊙ ∂C/∂a elsewhere; ∂C/∂α = Σ ∂C/∂a ⊙ min(z, 0) over the batch
    and the shared axes — a weight's gradient, summed over what shares it, like a filter's.
    """

    _keras_names: ClassVar[dict[str, str]] = {"alpha": "alpha"}

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):  # fmt: skip
        for option, value in (("alpha_regularizer", alpha_regularizer),
                              ("alpha_constraint", alpha_constraint)):  # fmt: skip
            if value is not None:
                raise NotImplementedError(f"PReLU({option}=...) is not supported by glassnet yet.")
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        if shared_axes is None:
            shared = ()
        elif isinstance(shared_axes, numbers.Integral):
            shared = (int(shared_axes),)
        else:
            shared = tuple(shared_axes)
        if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
                   for d in shared):  # fmt: skip
            raise ValueError(
                f"Received shared_axes={shared_axes!r}. Expected axes of a sample, counted "
                "from 1 (axis 0 is the batch)."
            )
        self.shared_axes = tuple(int(d) for d in shared)

    @property
    def activation(self) -> activations.ActivationFunction:
        """max(z, 0) + α ⊙ min(z, 0) with this layer's α, named as the glass box shows it."""
        alpha = self.params["alpha"]
        return activations.ActivationFunction(
            "prelu[α]",
            lambda z: xp.where(z > 0, z, alpha * z),
            lambda z, a=None: xp.where(z > 0, 1.0, alpha).astype(z.dtype),
        )

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for d in self.shared_axes:
            if d > len(shape):
                raise ValueError(
                    f"PReLU(shared_axes={list(self.shared_axes)}) names axis {d}, but its "
                    f"inputs have {len(input_shape)} axes."
                )
            shape[d - 1] = 1
        if None in shape:
            raise ValueError(
                f"PReLU needs every axis of its inputs known, or shared; received "
                f"{tuple(input_shape)} with shared_axes={list(self.shared_axes)}."
            )
        self.add_weight(shape, self.alpha_initializer, name="alpha")
        super().build(input_shape)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        c.z = a_prev
        c.a = self.activation(a_prev)
        return c.a

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        c.dC_da = dC_da
        summed = (0, *self.shared_axes)  # the batch, and the axes that share one α
        self.grads["alpha"][...] = (dC_da * xp.minimum(c.z, 0)).sum(axis=summed, keepdims=True)[0]
        c.dC_dz = dC_da * self.activation.prime(c.z)
        return c.dC_dz

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": None,
            "alpha_constraint": None,
            "shared_axes": list(self.shared_axes) or None,
        }
