"""``keras.random``: random arrays, and dropout with its derivative.

Every draw comes from a NumPy ``Generator``. ``seed`` picks it as Keras's does: an int draws the
same numbers on every call (a stateless seed); a ``SeedGenerator`` moves on with each draw;
nothing at all (``None``) uses one generator for the whole process, which
``keras.utils.set_random_seed`` sets, so a seeded script draws the same numbers on every run.

What is drawn has no derivative — nothing went in. ``dropout`` has one: it is
``ops.multiply(x, m / (1 − rate))`` with a mask ``m`` of 0s and 1s, so inside a recorded ``call``
∂C/∂x = ∂C/∂z · m / (1 − rate), the derivative ``ops.multiply`` writes out.

>>> normal((2,), seed=3).round(4), normal((2,), seed=3).round(4)       # a stateless seed
(array([ 2.0409, -2.5557], dtype=float32), array([ 2.0409, -2.5557], dtype=float32))
>>> g = SeedGenerator(3); bool((normal((2,), seed=g) != normal((2,), seed=g)).all())
True
"""

from __future__ import annotations

import numbers

import numpy as np

from glassnet import backend, ops

__all__ = [
    "SeedGenerator",
    "categorical",
    "dropout",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]


class SeedGenerator:
    """A generator that moves on with each draw (Keras's ``keras.random.SeedGenerator``)."""

    def __init__(self, seed=None, name=None, **kwargs):
        self.name = name or "seed_generator"
        self._rng = backend.make_rng(seed)

    def next(self) -> np.random.Generator:
        """The generator the next draw uses (the same object, moved on by each draw)."""
        return self._rng


_DEFAULT: tuple = (None, None)  # (the global seed sequence it came from, the generator)


def _rng(seed) -> np.random.Generator:
    """The generator for one draw: ``seed`` read as Keras reads it (see the module's text)."""
    global _DEFAULT
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        source = backend.global_seed_sequence()
        if _DEFAULT[1] is None or _DEFAULT[0] is not source:
            _DEFAULT = (source, backend.make_rng())
        return _DEFAULT[1]
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(
        f"Received seed={seed!r}. Expected None, a non-negative integer or a "
        "keras.random.SeedGenerator."
    )


def _shape(shape) -> tuple:
    return tuple(int(d) for d in ((shape,) if isinstance(shape, numbers.Integral) else shape))


def _float_type(dtype):
    return np.dtype(backend.floatx() if dtype is None else dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Draws from N(mean, stddev²)."""
    draw = _rng(seed).normal(mean, stddev, _shape(shape))
    return draw.astype(_float_type(dtype))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Draws from U[minval, maxval)."""
    draw = _rng(seed).uniform(minval, maxval, _shape(shape))
    return draw.astype(_float_type(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Draws from N(mean, stddev²), each one beyond two standard deviations drawn again."""
    rng, size = _rng(seed), _shape(shape)
    draw = rng.standard_normal(size)
    outside = np.abs(draw) > 2
    while outside.any():
        draw[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(draw) > 2
    return (mean + stddev * draw).astype(_float_type(dtype))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers drawn evenly from [minval, maxval)."""
    return _rng(seed).integers(minval, maxval, _shape(shape)).astype(dtype)


def shuffle(x, axis=0, seed=None):
    """``x`` with its slices along ``axis`` in a random order, each kept whole (a copy; no
    derivative)."""
    x = np.asarray(ops.convert_to_numpy(x))
    return np.take(x, _rng(seed).permutation(x.shape[axis]), axis=axis)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """For each row of ``logits`` (batch, classes), ``num_samples`` classes drawn with
    probabilities softmax(row)."""
    z = np.asarray(ops.convert_to_numpy(logits), dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"categorical expects logits of shape (batch, classes); got {z.shape}.")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = _rng(seed).random((z.shape[0], int(num_samples), 1))
    return (u > cumulative[:, None, :]).sum(axis=2).clip(0, z.shape[1] - 1).astype(dtype)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """z = x ⊙ m / (1 − rate): each entry kept (m = 1) with probability 1 − rate, the kept ones
    scaled so that z's expected value is x. ``noise_shape`` draws one mask entry for a whole
    axis where it says 1 (the mask broadcast over it). ∂C/∂x = ∂C/∂z ⊙ m / (1 − rate)."""
    rate = backend.check_positive("rate", rate, allow_zero=True)
    if rate >= 1:
        raise ValueError(f"Received rate={rate!r}. Expected a number in [0, 1).")
    value = ops.convert_to_numpy(inputs)
    shape = value.shape if noise_shape is None else tuple(
        value.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))  # fmt: skip
    keep = _rng(seed).random(shape) >= rate
    scale = keep / (1.0 - rate)
    return ops.multiply(inputs, scale.astype(value.dtype if value.dtype.kind == "f" else None))
