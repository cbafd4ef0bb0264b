"""Central finite differences, in float64, for checking every backward pass."""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences: (f(x + ε) − f(x − ε)) / 2ε, one entry at a time.

    ``x`` is perturbed in place and restored, so ``f`` may read it by reference (a layer's W).
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> float:
    """max |a − b| / max(|a|, |b|), over the whole array (0 when both are 0).

    ``floor``: the smallest scale to divide by. Central differences carry about 1e-16·|C|/ε of
    rounding (1e-10·|C| at ε = 1e-6) whatever the gradient's size, so for a gradient that is
    itself tiny (a whole ∂C/∂x of 7e-6 was drawn once) the relative error measures that
    rounding, not the backward pass; a floor of 1e-4 keeps the check at 1e-6 meaningful."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), floor)
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)
