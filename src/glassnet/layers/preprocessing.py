"""Preprocessing layers: ``Rescaling`` and ``Normalization``, inside the model as in Keras.

Both are affine maps of their input, so their backward pass is one multiplication:

- ``Rescaling``: a = x·scale + offset, so ∂C/∂x = ∂C/∂a · scale;
- ``Normalization``: a = (x − mean) / σ with σ = max(√variance, ε), so ∂C/∂x = ∂C/∂a / σ.
  ``adapt(data)`` sets mean and variance from the data; they are weights (Keras saves them) but
  not trainable: fit leaves them alone.

>>> import numpy as np
>>> norm = Normalization()
>>> norm.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
>>> norm(np.array([[1.0, 20.0]]))
array([[0., 0.]], dtype=float32)
"""

from __future__ import annotations

import numbers

from glassnet.backend import epsilon, xp
from glassnet.layers.base import Layer

__all__ = ["Normalization", "Rescaling"]


class Rescaling(Layer):
    """a = x·scale + offset (``Rescaling(1 / 255)`` turns 0–255 pixels into 0–1)."""

    def __init__(self, scale, offset=0.0, **kwargs):
        for name, value in (("scale", scale), ("offset", offset)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Received {name}={value!r}. Expected a number.")
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, a_prev, training=False, cache=None):
        return a_prev * a_prev.dtype.type(self.scale) + a_prev.dtype.type(self.offset)

    def backward(self, dC_da, cache=None):
        return dC_da * dC_da.dtype.type(self.scale)  # ∂a/∂x = scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


def _checked(mean, variance, where: str = "") -> tuple:
    """``mean`` and ``variance`` as arrays, if they are finite numbers and no variance is
    negative (its square root divides every input)."""
    try:
        mean, variance = xp.asarray(mean, dtype=float), xp.asarray(variance, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}Normalization's mean and variance must be numbers; received mean={mean!r}, "
            f"variance={variance!r}."
        ) from None
    if not (xp.isfinite(mean).all() and xp.isfinite(variance).all()) or (variance < 0).any():
        raise ValueError(
            f"{where}Normalization needs a finite mean and a variance ≥ 0 (its square root divides "
            f"the input); received variance {variance.tolist()}."
        )
    return mean, variance


class Normalization(Layer):
    """a = (x − mean) / max(√variance, ε), per feature along ``axis`` (the last by default).

    Args:
        axis: The axis (or axes) that keep their own mean and variance; ``None`` for one mean
            and variance over everything.
        mean, variance: Given values instead of ``adapt``.
        invert: Undo a normalization instead: a = mean + x·σ.
    """

    _keras_dtypes = {"count": "int64"}  # noqa: RUF012 - Keras keeps the count as an integer

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        if (mean is None) != (variance is None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        super().__init__(**kwargs)
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        self.invert = bool(invert)
        self.given = None if mean is None else _checked(mean, variance)

    def build(self, input_shape):
        ndim = len(input_shape)
        keep = sorted(a % ndim for a in self.axis)
        if any(a == 0 for a in keep) or any(input_shape[a] is None for a in keep):
            raise ValueError(
                f"Normalization(axis={self.axis}) needs known sizes on the axes it keeps; "
                f"received inputs of shape {input_shape}."
            )
        self._reduce = tuple(a for a in range(ndim) if a not in keep)
        self._broadcast = tuple(1 if a in self._reduce else input_shape[a] for a in range(ndim))
        shape = tuple(input_shape[a] for a in keep)
        if self.given is None:
            self.add_weight(shape, "zeros", trainable=False, name="mean")
            self.add_weight(shape, "ones", trainable=False, name="variance")
            self.params["count"] = xp.zeros((), dtype=xp.int64)  # Keras's, kept for its files
            self.grads["count"] = xp.zeros((), dtype=xp.int64)
            self.non_trainable.add("count")
        super().build(input_shape)

    def set_keras_variables(self, values, source: str = "", names=None) -> None:
        values = list(values)
        if len(values) == 3:  # mean, variance, count: the statistics checked as given ones are
            _checked(values[0], values[1], f"{source}layer {self.name!r}: ")
        super().set_keras_variables(values, source, names)

    def adapt(self, data) -> None:
        """Set mean and variance to those of ``data`` (an array of samples)."""
        data = xp.asarray(data, dtype=xp.float64)
        if data.ndim == 0 or data.size == 0:
            raise ValueError("adapt() needs at least one sample.")
        if not self.built:
            self.build((None, *data.shape[1:]))
        self.params["mean"][...] = data.mean(axis=self._reduce)
        self.params["variance"][...] = data.var(axis=self._reduce)
        self.params["count"][...] = len(data)

    def _mean_sigma(self, dtype):
        mean, variance = self.given or (self.params["mean"], self.params["variance"])
        mean = xp.broadcast_to(mean, self._broadcast[1:]).astype(dtype)
        sigma = xp.maximum(xp.sqrt(xp.broadcast_to(variance, self._broadcast[1:])), epsilon())
        return mean, sigma.astype(dtype)

    def forward(self, a_prev, training=False, cache=None):
        mean, sigma = self._mean_sigma(a_prev.dtype)
        self.cache_for(cache).sigma = sigma  # (features…): ∂a/∂x
        return mean + a_prev * sigma if self.invert else (a_prev - mean) / sigma

    def backward(self, dC_da, cache=None):
        sigma = self.cache_for(cache).sigma
        return dC_da * sigma if self.invert else dC_da / sigma

    def keras_variables(self):
        return [p.astype(self._keras_dtypes.get(k, p.dtype)) for k, p in self.params.items()]

    def get_config(self):
        config = {**super().get_config(), "axis": list(self.axis) or None, "invert": self.invert}
        if self.given is not None:
            config.update(mean=self.given[0].tolist(), variance=self.given[1].tolist())
        else:
            config.update(mean=None, variance=None)
        return config
