"""Weight initializers, with Keras's names, arguments and defaults.

An initializer is called with a Keras shape — for a Dense kernel that is (n_in, n_out) — and returns
an array of that shape; ``Dense`` stores its transpose as the deck's W (n_out, n_in). Randomness
comes from the initializer's own generator (``seed``, or the global seed).

>>> GlorotUniform(seed=0)((3, 2)).shape
(3, 2)
>>> Zeros()((2,))
array([0., 0.], dtype=float32)
"""

from __future__ import annotations

import inspect
import math

from glassnet.backend import floatx, lookup, make_rng, xp

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "Zeros",
    "compute_fans",
    "get",
    "serialize",
]


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a Keras-shaped kernel: (n_in, n_out), or (…, n_in, n_out) for convs."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """Base class: ``initializer(shape, dtype=None)`` returns a new array."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        # Newer Keras versions add keys (input_axes, output_axes) left at None: no meaning here.
        known = inspect.signature(cls).parameters
        unknown = {k: v for k, v in config.items() if k not in known}
        if any(v is not None for v in unknown.values()):
            raise ValueError(
                f"Initializer {cls.__name__} does not take {sorted(unknown)} (received {unknown})."
            )
        return cls(**{k: v for k, v in config.items() if k in known})


class Zeros(Initializer):
    """All zeros (Keras's default for biases)."""

    def __call__(self, shape, dtype=None):
        return xp.zeros(shape, dtype=dtype or floatx())


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return xp.ones(shape, dtype=dtype or floatx())


class Constant(Initializer):
    """Every entry equal to ``value``."""

    def __init__(self, value: float = 0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return xp.full(shape, self.value, dtype=dtype or floatx())

    def get_config(self) -> dict:
        return {"value": self.value}


class _RandomInitializer(Initializer):
    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._rng = make_rng(seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


class RandomUniform(_RandomInitializer):
    """Uniform on [minval, maxval) (Keras: −0.05 to 0.05)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        w = self._rng.uniform(self.minval, self.maxval, size=shape)
        return w.astype(dtype or floatx())

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(_RandomInitializer):
    """Normal with the given mean and standard deviation (Keras: 0 and 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        w = self._rng.normal(self.mean, self.stddev, size=shape)
        return w.astype(dtype or floatx())

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class _VarianceScaling(_RandomInitializer):
    """Variance ``scale / fan``; uniform on ±√(3·variance) or a normal truncated at 2σ."""

    scale = 1.0
    mode = "fan_in"
    distribution = "truncated_normal"

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(tuple(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            w = self._rng.uniform(-limit, limit, size=shape)
        else:
            # 0.8796… is the standard deviation of a unit normal truncated to [−2, 2].
            stddev = math.sqrt(variance) / 0.87962566103423978
            w = self._truncated_normal(shape, stddev)
        return w.astype(dtype or floatx())

    def _truncated_normal(self, shape, stddev):
        w = self._rng.normal(0.0, 1.0, size=shape)
        outside = xp.abs(w) > 2.0
        while outside.any():  # redraw the few values beyond 2σ
            w[outside] = self._rng.normal(0.0, 1.0, size=int(outside.sum()))
            outside = xp.abs(w) > 2.0
        return w * stddev


class GlorotUniform(_VarianceScaling):
    """Uniform on ±√(6 / (fan_in + fan_out)): Keras's default for kernels."""

    mode, distribution = "fan_avg", "uniform"


class GlorotNormal(_VarianceScaling):
    """Truncated normal with variance 2 / (fan_in + fan_out)."""

    mode = "fan_avg"


class HeNormal(_VarianceScaling):
    """Truncated normal with variance 2 / fan_in, suited to ReLU layers."""

    scale = 2.0


class HeUniform(_VarianceScaling):
    """Uniform on ±√(6 / fan_in)."""

    scale, distribution = 2.0, "uniform"


class LecunNormal(_VarianceScaling):
    """Truncated normal with variance 1 / fan_in."""


class LecunUniform(_VarianceScaling):
    """Uniform on ±√(3 / fan_in)."""

    distribution = "uniform"


class Orthogonal(_RandomInitializer):
    """A random orthogonal matrix (times ``gain``): Keras's default for recurrent kernels, so
    that h ← W_h·h neither grows nor shrinks a state at the start. Shapes of more than two axes
    are flattened to (all but the last, the last)."""

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) < 2:
            raise ValueError(
                f"An orthogonal matrix needs at least two axes; received shape={tuple(shape)}."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = xp.linalg.qr(a)
        q *= xp.sign(xp.diag(r))  # the sign convention that makes q uniformly distributed
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype or floatx())

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


_REGISTRY = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_uniform": RandomUniform,
    "random_normal": RandomNormal,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
}
_CLASS_NAMES = {cls.__name__: name for name, cls in _REGISTRY.items()}


def get(identifier) -> Initializer:
    """An initializer from a name, a Keras config dict, or an initializer (returned as is)."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):  # {"class_name": "GlorotUniform", "config": {...}}
        name = _CLASS_NAMES.get(identifier.get("class_name"), identifier.get("class_name"))
        return lookup("initializer", name, _REGISTRY).from_config(identifier.get("config") or {})
    return lookup("initializer", identifier, _REGISTRY)()


def serialize(initializer: Initializer) -> dict:
    """Keras's config form: ``{"module": …, "class_name": …, "config": …}``."""
    return {
        "module": "keras.initializers",
        "class_name": type(initializer).__name__,
        "config": initializer.get_config(),
        "registered_name": None,
    }
