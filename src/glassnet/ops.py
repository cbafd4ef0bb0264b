"""``keras.ops`` for making and inspecting arrays: NumPy's functions under Keras's names.

keras.io's guides build their inputs with it (``x = ops.ones((3, 3)); y = model(x)``), so those
scripts run once ``keras`` is replaced by ``glassnet``. These functions compute values; nothing
here is differentiated. A layer of your own defines its derivative in ``backward`` (see
``glassnet.layers.Layer``), so a Keras layer whose ``call`` uses ``keras.ops`` still needs
rewriting the glassnet way.

>>> ones((2, 3)).dtype, convert_to_numpy(ones((1,)) + 1)
(dtype('float32'), array([2.], dtype=float32))
"""

from __future__ import annotations

import numpy as np

from glassnet.backend import floatx

__all__ = [
    "abs",
    "add",
    "arange",
    "argmax",
    "argmin",
    "cast",
    "clip",
    "concatenate",
    "convert_to_numpy",
    "convert_to_tensor",
    "divide",
    "equal",
    "exp",
    "expand_dims",
    "full",
    "greater",
    "less",
    "log",
    "logical_and",
    "logical_not",
    "logical_or",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "multiply",
    "not_equal",
    "ones",
    "ones_like",
    "reshape",
    "shape",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "subtract",
    "sum",
    "tanh",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]  # fmt: skip


def _dtype(dtype):
    return floatx() if dtype is None else dtype


def ones(shape, dtype=None):
    return np.ones(shape, dtype=_dtype(dtype))


def zeros(shape, dtype=None):
    return np.zeros(shape, dtype=_dtype(dtype))


def full(shape, fill_value, dtype=None):
    return np.full(shape, fill_value, dtype=_dtype(dtype))


def ones_like(x, dtype=None):
    return np.ones_like(x, dtype=dtype)


def zeros_like(x, dtype=None):
    return np.zeros_like(x, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None):
    return np.arange(start, stop, step, dtype=dtype)


def convert_to_tensor(x, dtype=None, sparse=None):
    """An array; floats become ``floatx()`` unless ``dtype`` says otherwise, as in Keras."""
    array = np.asarray(x)
    if dtype is None and array.dtype.kind == "f":
        dtype = floatx()
    return array if dtype is None else array.astype(dtype, copy=False)


def convert_to_numpy(x):
    return np.asarray(x)


def cast(x, dtype):
    return np.asarray(x).astype(dtype)


def shape(x):
    return tuple(np.shape(x))


# Elementwise math and reductions: NumPy's own, with Keras's argument names where they differ.
abs = np.abs
exp, log, sqrt, square, tanh = np.exp, np.log, np.sqrt, np.square, np.tanh
maximum, minimum, where, matmul, clip = np.maximum, np.minimum, np.where, np.matmul, np.clip
reshape, transpose, expand_dims, squeeze = np.reshape, np.transpose, np.expand_dims, np.squeeze
argmax, argmin = np.argmax, np.argmin
add, subtract, multiply, divide = np.add, np.subtract, np.multiply, np.divide
equal, not_equal, greater, less = np.equal, np.not_equal, np.greater, np.less
logical_and, logical_or, logical_not = np.logical_and, np.logical_or, np.logical_not


def concatenate(xs, axis=0):
    return np.concatenate(xs, axis=axis)


def stack(xs, axis=0):
    return np.stack(xs, axis=axis)


def mean(x, axis=None, keepdims=False):
    return np.mean(x, axis=axis, keepdims=keepdims)


def sum(x, axis=None, keepdims=False):
    return np.sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False, initial=None):
    return np.max(x, axis=axis, keepdims=keepdims, **({} if initial is None else
                                                       {"initial": initial}))  # fmt: skip


def min(x, axis=None, keepdims=False, initial=None):
    return np.min(x, axis=axis, keepdims=keepdims, **({} if initial is None else
                                                       {"initial": initial}))  # fmt: skip
