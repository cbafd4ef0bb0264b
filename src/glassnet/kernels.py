"""Fused elementwise kernels, compiled with Numba (DESIGN.md §4).

Each kernel is one loop over one contiguous piece of a parameter, reading like its formula; the
optimizers call them on the pieces they already spread over the cores. NumPy would run the same
formula as several passes over memory, one per operation; a kernel makes one.

Every scalar arrives in the parameter's own float type and the operations run in the NumPy
formulas' order, without fast-math reassociation, so a kernel's result is bit for bit the NumPy
formula's (the tests check it). ``GLASSNET_KERNELS=numpy`` turns the kernels off and runs the
NumPy formulas instead, for comparison; so does a machine without Numba. Compiled code is cached
on disk, so only the first run after an install pays for compiling.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import os

from glassnet.backend import num_threads, parallel_map

__all__ = [
    "ENABLED",
    "adam",
    "bias_relu",
    "lstm_step_backward",
    "max_pool",
    "max_pool_backward",
    "relu_backward",
    "rmsprop",
    "run_split",
    "scatter_windows",
    "sgd",
    "sigmoid_backward",
    "tanh_backward",
]

ENABLED = os.environ.get("GLASSNET_KERNELS", "numba").lower() != "numpy" and (
    importlib.util.find_spec("numba") is not None
)
"""Whether the optimizers use these kernels (else their NumPy formulas)."""


def _compiled(fn):
    """``fn`` compiled by Numba on its first call: ``import glassnet`` does not load Numba (a
    quarter of a second), the first training step does; the machine code comes from the disk
    cache after the first run."""

    @functools.wraps(fn)
    def first_call(*args):
        import numba

        # nogil: the optimizers run pieces on several threads at once; error_model: x/0 gives
        # inf, as in NumPy, instead of an exception.
        compiled = numba.njit(nogil=True, cache=True, error_model="numpy")(fn)
        globals()[fn.__name__] = compiled  # later calls go straight to the compiled kernel
        return compiled(*args)

    first_call.python = fn  # the loop itself, uncompiled
    return first_call


def run_split(kernel: str, arrays, *scalars) -> None:
    """``kernel(*arrays, *scalars)`` with axis 0 of every array split between the threads (the
    samples of a batch, the rows of a matrix): for kernels whose rows are independent."""
    fn = globals()[kernel]
    n, threads = arrays[0].shape[0], num_threads()
    if hasattr(fn, "python") or threads == 1 or n == 1:  # not compiled yet: compile it once
        fn(*arrays, *scalars)
        return
    edges = [n * k // threads for k in range(threads + 1)]
    pieces = [tuple(a[lo:hi] for a in arrays) for lo, hi in itertools.pairwise(edges) if hi > lo]
    parallel_map(lambda piece: globals()[kernel](*piece, *scalars), pieces)


# Each option picks its own straight loop: a branch inside a loop stops the compiler from using
# the CPU's vector instructions (the RMSprop loop ran 8 times slower with its options inside).


@_compiled
def sgd(p, g, m, lr, momentum, nesterov, decay):
    """p ← p − η·λ·p; then p ← p − η·g, or with momentum μ: m ← μ·m − η·g and
    p ← p + m (Nesterov: p ← p + μ·m − η·g)."""
    if decay:
        for i in range(p.size):
            p[i] = p[i] - decay * p[i]
    if m.size == 0:
        for i in range(p.size):
            p[i] = p[i] - g[i] * lr
    elif nesterov:
        for i in range(p.size):
            step = g[i] * lr
            m[i] = m[i] * momentum - step
            p[i] = (p[i] - step) + m[i] * momentum
    else:
        for i in range(p.size):
            m[i] = m[i] * momentum - g[i] * lr
            p[i] = p[i] + m[i]


@_compiled
def rmsprop(p, g, v, s, g_mean, lr, rho, one_minus_rho, momentum, epsilon, decay):
    """v ← ρ·v + (1 − ρ)·g², step = η·g / √(v + ε) (centered: √(v − ḡ² + ε), ḡ ← ρ·ḡ + (1 − ρ)·g),
    with momentum s ← μ·s + step; p ← p − step (or s)."""
    if decay:
        for i in range(p.size):
            p[i] = p[i] - decay * p[i]
    if g_mean.size == 0 and s.size == 0:  # Keras's default
        for i in range(p.size):
            v[i] = v[i] * rho + (g[i] * g[i]) * one_minus_rho
            p[i] = p[i] - (g[i] / math.sqrt(v[i] + epsilon)) * lr
        return
    for i in range(p.size):
        v[i] = v[i] * rho + (g[i] * g[i]) * one_minus_rho
        if g_mean.size:
            g_mean[i] = g_mean[i] * rho + one_minus_rho * g[i]
            denominator = (v[i] - g_mean[i] * g_mean[i]) + epsilon
        else:
            denominator = v[i] + epsilon
        step = (g[i] / math.sqrt(denominator)) * lr
        if s.size:
            s[i] = s[i] * momentum + step
            step = s[i]
        p[i] = p[i] - step


@_compiled
def adam(p, g, m, v, v_hat, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay):
    """m ← m + (1 − β₁)·(g − m), v ← v + (1 − β₂)·(g² − v), p ← p − α·m / (√v + ε)
    (AMSGrad: v̂ ← max(v̂, v) and √v̂)."""
    if decay:
        for i in range(p.size):
            p[i] = p[i] - decay * p[i]
    if v_hat.size == 0:
        for i in range(p.size):
            m[i] = m[i] + (g[i] - m[i]) * one_minus_beta_1
            v[i] = v[i] + (g[i] * g[i] - v[i]) * one_minus_beta_2
            p[i] = p[i] - (m[i] / (math.sqrt(v[i]) + epsilon)) * alpha
        return
    for i in range(p.size):
        m[i] = m[i] + (g[i] - m[i]) * one_minus_beta_1
        v[i] = v[i] + (g[i] * g[i] - v[i]) * one_minus_beta_2
        v_hat[i] = max(v_hat[i], v[i])
        p[i] = p[i] - (m[i] / (math.sqrt(v_hat[i]) + epsilon)) * alpha


# ---- around the matrix products: bias and activation, and the activation's derivative ---------
# The constants 0 and 1 arrive in the arrays' float type: a Python 1 would make Numba compute in
# float64 and round differently from NumPy. (exp is not fused: Numba's differs from NumPy's in
# the last bit for many float32 values, so sigmoid and tanh themselves stay NumPy's.)


@_compiled
def bias_relu(z, a, b, zero):
    """z ← z + b and a = max(z, 0) in one pass; z and a are (rows, n), b is (n,). NaN stays NaN
    and −0 gives +0, as NumPy's maximum gives them."""
    rows, n = z.shape
    for r in range(rows):
        for j in range(n):
            x = z[r, j] + b[j]
            z[r, j] = x
            a[r, j] = x if x > zero else (x if x != x else zero)


@_compiled
def relu_backward(z, dC_da, dC_dz, zero, one):
    """∂C/∂z = ∂C/∂a · [z > 0] (slope 0 at the kink, as Keras and PyTorch); 1-D arrays."""
    for i in range(z.size):
        dC_dz[i] = dC_da[i] * (one if z[i] > zero else zero)


@_compiled
def sigmoid_backward(a, dC_da, dC_dz, one):
    """∂C/∂z = ∂C/∂a · a(1 − a), read from the stored output a; 1-D arrays."""
    for i in range(a.size):
        dC_dz[i] = dC_da[i] * (a[i] * (one - a[i]))


@_compiled
def tanh_backward(a, dC_da, dC_dz, one):
    """∂C/∂z = ∂C/∂a · (1 − a²), read from the stored output a; 1-D arrays."""
    for i in range(a.size):
        dC_dz[i] = dC_da[i] * (one - a[i] * a[i])


# ---- windows: pooling and the convolution's backward scatter ----------------------------------
# 4-D arrays, channels last: (batch, rows, cols, channels). The layers split the batch between
# threads. The pooling loops add in the order the NumPy formulas do (offset by offset inside the
# window, then window by window), so an input that several windows read gets the same sum, bit for
# bit; the convolution's scatter does not (see there).


@_compiled
def max_pool(x, a, winner, ph, pw, sh, sw):
    """a[n, i, j, c] = the largest x in window (i, j), and ``winner`` its offset u·pw + v in the
    window (the first, when several tie; NaN never wins after the first offset)."""
    N, oh, ow, C = a.shape
    for n in range(N):
        for i in range(oh):
            for j in range(ow):
                for c in range(C):
                    a[n, i, j, c] = x[n, i * sh, j * sw, c]
                    winner[n, i, j, c] = 0
                for u in range(ph):
                    for v in range(pw):
                        for c in range(C):
                            value = x[n, i * sh + u, j * sw + v, c]
                            if value > a[n, i, j, c]:
                                a[n, i, j, c] = value
                                winner[n, i, j, c] = u * pw + v


@_compiled
def max_pool_backward(d, winner, dx, ph, pw, sh, sw):
    """dx[winner of window (i, j)] += d[n, i, j, c]: each window's gradient to the input that
    won it, offset by offset; every other input gets 0."""
    N, oh, ow, C = d.shape
    for n in range(N):
        dx[n] = 0
        for u in range(ph):
            for v in range(pw):
                k = u * pw + v
                for i in range(oh):
                    for j in range(ow):
                        for c in range(C):
                            if winner[n, i, j, c] == k:
                                dx[n, i * sh + u, j * sw + v, c] += d[n, i, j, c]


@_compiled
def scatter_windows(d, dx, sh, sw, dh, dw):
    """dx[n, i·sh + u·dh, j·sw + v·dw, c] += d[n, i, j, u, v, c]: each window's gradient added
    back to the inputs it read (the adjoint of reading the windows); dx is zeroed first.

    Window by window, reading d in its memory order (four times faster than offset by offset):
    an input read by several windows sums the same terms as the NumPy formula in another order,
    so the two agree to float rounding, not bit for bit."""
    N, oh, ow, kh, kw, C = d.shape
    for n in range(N):
        dx[n] = 0
        for i in range(oh):
            for j in range(ow):
                for u in range(kh):
                    for v in range(kw):
                        row, col = i * sh + u * dh, j * sw + v * dw
                        for c in range(C):
                            dx[n, row, col, c] += d[n, i, j, u, v, c]


# ---- an LSTM cell's backward step ----------------------------------------------------------------
# (Its forward step stays NumPy's: sigmoid and tanh are exp and tanh, which NumPy runs in SIMD
# loops; Numba's scalar calls made a fused forward step four times slower, 54 ns an element.)


@_compiled
def lstm_step_backward(dh, dc_later, gates, c_prev, tanh_c, dz, dc_prev, one):
    """An LSTM step's backward pass: from ∂C/∂h_t and ∂C/∂c_t (what step t + 1 sent back) to
    ∂C/∂z (batch, 4u: gates i, f, c, o) and ∂C/∂c_{t−1}, from the stored gates, c_{t−1} and
    tanh(c_t); in the NumPy formulas' order of operations, so with their bits."""
    n, width = dz.shape
    u = width // 4
    for r in range(n):
        for j in range(u):
            i, f = gates[r, j], gates[r, u + j]
            g, o = gates[r, 2 * u + j], gates[r, 3 * u + j]
            t = tanh_c[r, j]
            dc = dc_later[r, j] + (dh[r, j] * o) * (one - t * t)  # c reaches C through h too
            dz[r, j] = (dc * g) * (i * (one - i))
            dz[r, u + j] = (dc * c_prev[r, j]) * (f * (one - f))
            dz[r, 2 * u + j] = (dc * i) * (one - g * g)
            dz[r, 3 * u + j] = (dh[r, j] * t) * (o * (one - o))
            dc_prev[r, j] = dc * f
