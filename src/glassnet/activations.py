"""Activation functions a = σ(z), each with its derivative directly beside it.

Every activation is an ``ActivationFunction``: calling it computes a = σ(z); ``backward(z, a,
dC_da)`` returns ∂C/∂z, the deck's σ′(z) ⊙ ∂C/∂a. Elementwise activations get there through their
derivative ``prime(z, a)`` (which may read the stored output ``a``: σ′ = a(1 − a) for the sigmoid);
softmax mixes its inputs, so it supplies the Jacobian-vector product instead.

>>> import numpy as np
>>> sigmoid(np.array([4.0, -2.0])).round(4)
array([0.982 , 0.1192])
>>> sigmoid_prime(np.array([0.0]))
array([0.25])
>>> get("relu").name
'relu'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from glassnet import kernels, ops
from glassnet.backend import function_from_config, known_objects, lookup, serialize_function, xp

__all__ = [
    "ActivationFunction",
    "elu",
    "get",
    "leaky_relu",
    "linear",
    "names",
    "relu",
    "serialize",
    "sigmoid",
    "sigmoid_prime",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]


@dataclass(frozen=True)
class ActivationFunction:
    """An activation a = f(z) and how to push a gradient back through it.

    Attributes:
        name: Keras's name for it (``"relu"``, ``"softmax"``, …).
        f: z -> a, elementwise unless it is softmax.
        prime: (z, a) -> f′(z), elementwise; ``None`` for softmax.
        jvp: (a, dC_da) -> dC_dz for activations that are not elementwise.
    """

    name: str
    f: Callable
    prime: Callable | None = None
    jvp: Callable | None = None
    fused_backward: Callable | None = None  # (z, a, dC_da, dC_dz) in one pass, same bits
    function: Callable | None = None  # a function of your own, written with glassnet.ops

    def __call__(self, z):
        if isinstance(z, ops.Tensor):  # inside a recorded call(): the op, with its derivative
            if self.function is not None:
                return self.function(z)
            return z if self.name == "linear" else getattr(ops, self.name)(z)
        return self.f(z)

    def backward(self, z, a, dC_da):
        """∂C/∂z from ∂C/∂a: σ′(z) ⊙ ∂C/∂a (elementwise), or the Jacobian product (softmax);
        for a function of your own, the deck's recursion over the ops it recorded."""
        if self.function is not None:
            with ops.Tape() as tape:
                leaf = tape.watch(z, "z")
                out = self.function(leaf)
            return tape.gradients(out, [leaf], dC_da)[0] if isinstance(out, ops.Tensor) else (
                xp.zeros_like(z))  # fmt: skip
        if self.jvp is not None:
            return self.jvp(a, dC_da)
        if self.fused_backward is not None and _fusable(z, a, dC_da):
            dC_dz = xp.empty_like(dC_da)
            self.fused_backward(z, a, dC_da, dC_dz)  # one pass instead of two or three
            return dC_dz
        return dC_da * self.prime(z, a)

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


# ---- the functions and their derivatives, in pairs --------------------------------------------


def _linear(z):
    return z


def _linear_prime(z, a=None):
    return xp.ones_like(z)


def _sigmoid(z):
    # σ(z) = 1 / (1 + e^(−z)). Below z ≈ −88 (float32) e^(−z) overflows to inf, and
    # σ(z) = 1/inf = 0 is the right limit, so the overflow is no error. Nothing cancels:
    # σ(−20) = 2.06e−9 to full float32 precision, where (1 + tanh(z/2))/2 gives 0.
    with xp.errstate(over="ignore"):
        return 1.0 / (1.0 + xp.exp(-z))


def _sigmoid_prime(z, a=None):
    # σ′(z) = σ(z)(1 − σ(z)), read from the stored output a when the forward pass kept it.
    a = _sigmoid(z) if a is None else a
    return a * (1.0 - a)


def _tanh(z):
    return xp.tanh(z)


def _tanh_prime(z, a=None):
    a = xp.tanh(z) if a is None else a
    return 1.0 - a * a


def _relu(z):
    # max(z, 0), taken against a row of zeros: NumPy's maximum against a scalar 0 misses its
    # vector loop and is 2.5 times slower (measured at (128, 512) and (1000, 512)).
    z = xp.asarray(z)
    return xp.maximum(z, xp.zeros(z.shape[-1:], z.dtype))


def _relu_prime(z, a=None):
    # The kink at 0 gets slope 0, as in Keras and PyTorch.
    return (z > 0).astype(z.dtype)


def _leaky_relu(z, negative_slope=0.2):
    return xp.where(z > 0, z, negative_slope * z)


def _leaky_relu_prime(z, a=None, negative_slope=0.2):
    return xp.where(z > 0, 1.0, negative_slope).astype(z.dtype)


def _elu(z, alpha=1.0):
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, 0)))


def _elu_prime(z, a=None, alpha=1.0):
    # For z ≤ 0: d/dz α(eᶻ − 1) = αeᶻ = a + α.
    a = _elu(z, alpha) if a is None else a
    return xp.where(z > 0, 1.0, a + alpha).astype(z.dtype)


def _softplus(z):
    return xp.logaddexp(0, z)


def _softplus_prime(z, a=None):
    return _sigmoid(z)


def _swish(z):
    return z * _sigmoid(z)


def _swish_prime(z, a=None):
    # d/dz z·σ(z) = σ(z) + z·σ(z)(1 − σ(z))
    s = _sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _softmax(z):
    # Shift by the row maximum so that exp never overflows: softmax(z) = softmax(z − max z).
    e = xp.exp(z - z.max(axis=-1, keepdims=True))  # (batch, n)
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_jvp(a, dC_da):
    # ∂a_j/∂z_i = a_j(δ_ij − a_i), so ∂C/∂z_i = a_i (∂C/∂a_i − Σ_j a_j ∂C/∂a_j).
    return a * (dC_da - (dC_da * a).sum(axis=-1, keepdims=True))  # (batch, n)


linear = ActivationFunction("linear", _linear, _linear_prime)


def _fusable(*arrays) -> bool:
    """Whether the kernels can take these arrays: on, same shape and float type, contiguous."""
    first = arrays[0]
    return kernels.ENABLED and all(
        x.shape == first.shape and x.dtype == first.dtype and x.flags.c_contiguous
        for x in arrays
    ) and first.dtype in (xp.float32, xp.float64)  # fmt: skip


def _one(x):
    return x.dtype.type(1)


sigmoid = ActivationFunction(
    "sigmoid", _sigmoid, _sigmoid_prime,
    fused_backward=lambda z, a, d, out: kernels.run_split("sigmoid_backward", (
        a.reshape(-1), d.reshape(-1), out.reshape(-1)), _one(a)),
)  # fmt: skip
tanh = ActivationFunction(
    "tanh", _tanh, _tanh_prime,
    fused_backward=lambda z, a, d, out: kernels.run_split("tanh_backward", (
        a.reshape(-1), d.reshape(-1), out.reshape(-1)), _one(a)),
)  # fmt: skip
relu = ActivationFunction(
    "relu", _relu, _relu_prime,
    fused_backward=lambda z, a, d, out: kernels.run_split("relu_backward", (
        z.reshape(-1), d.reshape(-1), out.reshape(-1)), z.dtype.type(0), _one(z)),
)  # fmt: skip
leaky_relu = ActivationFunction("leaky_relu", _leaky_relu, _leaky_relu_prime)
elu = ActivationFunction("elu", _elu, _elu_prime)
softplus = ActivationFunction("softplus", _softplus, _softplus_prime)
swish = ActivationFunction("swish", _swish, _swish_prime)
softmax = ActivationFunction("softmax", _softmax, jvp=_softmax_jvp)

sigmoid_prime = _sigmoid_prime
"""σ′(z) = σ(z)(1 − σ(z)), the deck's name for the sigmoid's derivative."""

_REGISTRY = {
    fn.name: fn for fn in (linear, sigmoid, tanh, relu, leaky_relu, elu, softplus, swish, softmax)
}
_REGISTRY["silu"] = swish


def names() -> list[str]:
    """Every name ``get`` takes, sorted (the ``glassnet`` command's choices come from here)."""
    return sorted(_REGISTRY)


def get(identifier) -> ActivationFunction:
    """The activation named ``identifier`` (``None`` means linear), as ``keras.activations.get``;
    or a function of your own (written with ``glassnet.ops``, registered or in a
    ``custom_object_scope`` to be saved), whose derivative comes from the ops it uses."""
    if identifier is None:
        return linear
    if isinstance(identifier, ActivationFunction):
        return identifier
    if isinstance(identifier, str) and identifier not in _REGISTRY:
        known = known_objects().get(identifier)  # a registered function, by its name
        identifier = known if callable(known) else identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in ("function", "__lambda__"):
        identifier = function_from_config(identifier, what="activation")  # fmt: skip
    if callable(identifier) and not isinstance(identifier, type):
        return _of_function(identifier)
    return lookup("activation", identifier, _REGISTRY)


def _of_function(fn) -> ActivationFunction:
    def f(z):
        return xp.asarray(ops.convert_to_numpy(fn(z)))

    return ActivationFunction(getattr(fn, "__name__", "activation"), f, function=fn)


def serialize(activation: ActivationFunction):
    """The name under which ``get`` finds ``activation`` again (a function of your own: as
    Keras writes a function in a config)."""
    if activation.function is not None:
        return serialize_function(activation.function)
    return activation.name
