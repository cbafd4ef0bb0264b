"""``BatchNormalization``, as ``keras.layers.BatchNormalization``.

Each feature (a Dense neuron, or a conv filter's whole feature map) is standardized with the
batch's own mean μ and variance σ² while training, then scaled and shifted by learned γ and β:

    x̂ = (x − μ) / √(σ² + ε),   y = γ·x̂ + β.

While training it also keeps running averages of μ and σ² (``moving_mean``, ``moving_variance``:
non-trainable weights, updated as m ← momentum·m + (1 − momentum)·μ); at inference it uses those
instead of the batch's, so a prediction does not depend on the other samples in its batch.

Backward in training mode goes through μ and σ² too, since each depends on every input:
with m the number of values per feature, ∂C/∂x = γ/(m·√(σ²+ε)) · (m·∂C/∂y − Σ∂C/∂y − x̂·Σ(∂C/∂y·x̂)).
"""

from __future__ import annotations

import numbers
from typing import ClassVar

from glassnet import initializers
from glassnet.backend import format_shape, xp
from glassnet.layers.base import Layer, refuse_unsupported

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """Standardize each feature over the batch, then scale by γ and shift by β.

    Args:
        axis: The feature axis (the channels: -1, channels last).
        momentum: How much of the running averages each batch keeps (Keras's 0.99).
        epsilon: Added to σ² before the square root (Keras's 1e-3).
        center, scale: Whether to learn β and γ.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: How the four start (zeros, ones, zeros, ones).

    ``layer.trainable = False`` makes it use the moving statistics even in training, as Keras 3.
    """

    _statistics: ClassVar[tuple[str, str]] = ("moving_mean", "moving_variance")

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        renorm=False,
        renorm_clipping=None,
        renorm_momentum=0.99,
        synchronized=False,
        **kwargs,
    ):
        refuse_unsupported(
            "BatchNormalization",
            beta_regularizer=beta_regularizer,
            gamma_regularizer=gamma_regularizer,
            beta_constraint=beta_constraint,
            gamma_constraint=gamma_constraint,
            renorm_clipping=renorm_clipping,
        )
        if renorm or synchronized:
            raise NotImplementedError(
                "BatchNormalization(renorm=True) and (synchronized=True) are not supported."
            )
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise NotImplementedError(
                f"BatchNormalization(axis={axis!r}): glassnet normalizes along one axis (an int)."
            )
        for name, value, low, high in (("momentum", momentum, 0, 1), ("epsilon", epsilon, 0, None)):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not (low <= value and (high is None or value <= high))
            ):
                bound = f"between {low} and {high}" if high is not None else "positive"
                raise ValueError(f"Received {name}={value!r}. Expected a number {bound}.")
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(
                f"BatchNormalization layer {self.name!r}: axis={self.axis} is not a feature "
                f"axis of inputs {format_shape(input_shape)}."
            )
        self.feature_axis = self.axis % ndim
        features = input_shape[self.feature_axis]
        if features is None:
            raise ValueError(
                f"BatchNormalization layer {self.name!r} needs the size of axis {self.axis}; "
                f"received inputs {format_shape(input_shape)}."
            )
        if self.scale:
            self.add_weight((features,), self.gamma_initializer, name="gamma")
        if self.center:
            self.add_weight((features,), self.beta_initializer, name="beta")
        self.add_weight((features,), self.moving_mean_initializer, trainable=False,
                        name="moving_mean")  # fmt: skip
        self.add_weight((features,), self.moving_variance_initializer, trainable=False,
                        name="moving_variance")  # fmt: skip
        super().build(input_shape)

    def _broadcast(self, v, ndim):
        """(features,) → a shape that broadcasts along the feature axis."""
        shape = [1] * ndim
        shape[self.feature_axis] = v.shape[0]
        return v.reshape(shape)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        if a_prev.ndim != len(self.input_shape) or (
            a_prev.shape[self.feature_axis] != self.input_shape[self.feature_axis]
        ):
            raise ValueError(
                f"BatchNormalization layer {self.name!r} was built for inputs "
                f"{format_shape(self.input_shape)}; received shape {a_prev.shape}."
            )
        axes = tuple(i for i in range(a_prev.ndim) if i != self.feature_axis)
        c.batch_statistics = training and self.trainable
        if c.batch_statistics:
            mean, variance = a_prev.mean(axis=axes), a_prev.var(axis=axes)  # μ, σ² (biased)
            keep = self.momentum
            for name, value in zip(self._statistics, (mean, variance)):
                moving = self.params[name]
                moving *= keep
                moving += (1 - keep) * value  # the running averages inference will use
        else:
            mean, variance = (self.params[name] for name in self._statistics)
        dtype = a_prev.dtype
        c.inv_std = (1 / xp.sqrt(variance.astype(dtype) + dtype.type(self.epsilon))).astype(dtype)
        n = a_prev.ndim
        c.x_hat = (a_prev - self._broadcast(mean.astype(dtype), n)) * self._broadcast(c.inv_std, n)
        y = c.x_hat
        if self.scale:
            y = y * self._broadcast(self.params["gamma"], n)
        if self.center:
            y = y + self._broadcast(self.params["beta"], n)
        return y if y is not c.x_hat else y.copy()

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        n = dC_da.ndim
        axes = tuple(i for i in range(n) if i != self.feature_axis)
        d_sum = dC_da.sum(axis=axes)  # Σ ∂C/∂y per feature
        d_x_hat_sum = (dC_da * c.x_hat).sum(axis=axes)  # Σ ∂C/∂y · x̂
        if self.center:
            self.grads["beta"][...] = d_sum  # ∂y/∂β = 1
        if self.scale:
            self.grads["gamma"][...] = d_x_hat_sum  # ∂y/∂γ = x̂
        gamma = self.params["gamma"] if self.scale else xp.ones_like(c.inv_std)
        g = self._broadcast(gamma * c.inv_std, n)  # ∂y/∂x when μ and σ² are held
        if not c.batch_statistics:
            return dC_da * g
        m = dC_da.size // d_sum.size  # values per feature
        return (g / m) * (
            m * dC_da - self._broadcast(d_sum, n) - c.x_hat * self._broadcast(d_x_hat_sum, n)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": None,
            "gamma_regularizer": None,
            "beta_constraint": None,
            "gamma_constraint": None,
            "synchronized": False,
            "renorm": False,
            "renorm_clipping": None,
            "renorm_momentum": 0.99,
        }
