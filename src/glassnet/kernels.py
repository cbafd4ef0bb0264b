"""Fused elementwise kernels, compiled with Numba (DESIGN.md §4).

Each kernel is one loop over one contiguous piece of an array, reading like its formula; the
callers spread the pieces over the cores. NumPy would run the same formula as several passes over
memory, one per operation; a kernel makes one.

Every scalar arrives in the array's own float type and the operations run in the NumPy formulas'
order, without fast-math reassociation, so a kernel's result is bit for bit the NumPy formula's
(the tests check it) — but for the kernels that compute sigmoid and tanh themselves (the LSTM's
forward step), which are within 2.5 ulp of them instead (see there), and for a pooled
convolution's ∂C/∂W from the winners, the same sums in another order. ``GLASSNET_KERNELS=numpy``
turns the kernels off and runs the NumPy formulas instead, for comparison; so does a machine
without Numba. Compiled code is cached on disk, so only the first run after an install pays for
compiling.

``matmul`` is the layers' matrix product: Intel's MKL, called from compiled code, where the
``mkl`` extra is installed (``backend.mkl``), NumPy's own BLAS otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import threading

import numpy as np

from glassnet.backend import (
    blas_threads,
    mkl,
    num_threads,
    parallel_map,
    split_evenly,
    worth_sharing,
)

__all__ = [
    "ENABLED",
    "adam",
    "bias_max_pool_relu",
    "bias_relu",
    "lstm_step",
    "lstm_step_backward",
    "matmul",
    "max_pool",
    "max_pool_backward",
    "max_pool_relu_backward",
    "max_pool_relu_weight_gradient",
    "relu_backward",
    "rmsprop",
    "run_split",
    "scatter_windows",
    "sgd",
    "sigmoid32",
    "sigmoid_backward",
    "tanh32",
    "tanh_backward",
]

ENABLED = os.environ.get("GLASSNET_KERNELS", "numba").lower() != "numpy" and (
    importlib.util.find_spec("numba") is not None
)
"""Whether the optimizers use these kernels (else their NumPy formulas)."""


def _compiled(fn=None, **options):
    """``fn`` compiled by Numba on its first call: ``import glassnet`` does not load Numba (a
    quarter of a second), the first training step does; the machine code comes from the disk
    cache after the first run. ``options`` go to ``numba.njit``."""
    if fn is None:
        return functools.partial(_compiled, **options)

    @functools.wraps(fn)
    def first_call(*args):
        compiled = _njit(fn, **options)
        globals()[fn.__name__] = compiled  # later calls go straight to the compiled kernel
        return compiled(*args)

    first_call.python = fn  # the loop itself, uncompiled
    return first_call


def _njit(fn, **options):
    import numba

    _compile_scalar_functions()
    # nogil: the optimizers run pieces on several threads at once; error_model: x/0 gives
    # inf, as in NumPy, instead of an exception (and lets the compiler vectorize a division);
    # no_cfunc_wrapper: the kernels are called from Python only (7 % less compiling).
    return numba.njit(
        nogil=True, cache=True, error_model="numpy", no_cfunc_wrapper=True, **options
    )(fn)


_SCALAR_FUNCTIONS: list = []  # the small functions the kernels call (compiled inline)
_COMPILING = threading.RLock()  # threads that start compiling at once (glassnet serve's requests)


def _scalar(fn):
    """A function of one value for the kernels to call: compiled once, then inlined by LLVM
    into each kernel that calls it (``forceinline``), so that the kernel's loop still
    vectorizes. Inlining in Numba's own IR instead (``inline="always"``) gives the same machine
    code but types and lowers the function again at every call: the LSTM step compiled in
    0.66 s that way, 0.53 s this way."""
    _SCALAR_FUNCTIONS.append(fn)
    return fn


def _compile_scalar_functions() -> None:
    """Each ``_scalar`` function compiled, once: a thread that comes while another compiles
    waits for it (the second used to compile what the first had already put in its place)."""
    with _COMPILING:
        if "_float32_from_bits" not in globals():
            _compile_scalar_functions_now()


def _compile_scalar_functions_now() -> None:
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def _float32_from_bits(typingctx, bits):
        """The float32 whose 32 bits are the int32 ``bits`` (a reinterpretation, no arithmetic)."""

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.FloatType())

        return types.float32(types.int32), codegen

    globals()["_float32_from_bits"] = _float32_from_bits
    for fn in _SCALAR_FUNCTIONS:
        globals()[fn.__name__] = _njit(fn, forceinline=True, no_cpython_wrapper=True)


def run_split(kernel: str, arrays, *scalars) -> None:
    """``kernel(*arrays, *scalars)`` with axis 0 of every array split between the threads (the
    samples of a batch, the rows of a matrix): for kernels whose rows are independent."""
    fn = globals()[kernel]
    n = arrays[0].shape[0]
    # Not compiled yet (compile it once), or too little work to share: one call, no pieces.
    if hasattr(fn, "python") or n == 1 or not worth_sharing(arrays[0].size):
        fn(*arrays, *scalars)
        return
    pieces = [tuple(a[rows] for a in arrays) for rows in split_evenly(n, num_threads())]
    parallel_map(lambda piece: globals()[kernel](*piece, *scalars), pieces)


# The optimizers' running averages (momentum, the squared gradient's average) of a weight whose
# gradient stays 0 — an MNIST pixel that is almost never ink — decay towards 0 and pass through
# the subnormal floats (below 1.2e-38 in float32), where every operation takes x86 a microcode
# assist of a hundred cycles or more: Adam's update of a 784-128 layer after one epoch of MNIST,
# 2.4 % of its m subnormal, took 259 µs instead of 53. Each average that falls below the
# smallest normal float is set to 0 instead (``_normal_or_zero``), in the kernels and in the NumPy
# formulas alike (TensorFlow runs its kernels with the CPU's flush-to-zero mode on, which does
# this to every subnormal result); what that changes in a step is below 1e-38 of a learning rate.


@_scalar
def _normal_or_zero(x, tiny, zero):
    """x, or 0 when |x| is below ``tiny``, the smallest normal float (NaN and ±∞ stay)."""
    return zero if abs(x) < tiny else x


# Each option picks its own straight loop: a branch inside a loop stops the compiler from using
# the CPU's vector instructions (the RMSprop loop ran 8 times slower with its options inside).


@_compiled
def sgd(p, g, m, lr, momentum, nesterov, decay, tiny, zero):
    """p ← p − η·λ·p; then p ← p − η·g, or with momentum μ: m ← μ·m − η·g and
    p ← p + m (Nesterov: p ← p + μ·m − η·g); m flushed to 0 below ``tiny``."""
    if decay:
        for i in range(p.size):
            p[i] = p[i] - decay * p[i]
    if m.size == 0:
        for i in range(p.size):
            p[i] = p[i] - g[i] * lr
    elif nesterov:
        for i in range(p.size):
            step = g[i] * lr
            m[i] = _normal_or_zero(m[i] * momentum - step, tiny, zero)
            p[i] = (p[i] - step) + m[i] * momentum
    else:
        for i in range(p.size):
            m[i] = _normal_or_zero(m[i] * momentum - g[i] * lr, tiny, zero)
            p[i] = p[i] + m[i]


@_compiled
def rmsprop(p, g, v, s, g_mean, lr, rho, one_minus_rho, momentum, epsilon, decay, tiny, zero):
    """v ← ρ·v + (1 − ρ)·g², step = η·g / √(v + ε) (centered: √(v − ḡ² + ε), ḡ ← ρ·ḡ + (1 − ρ)·g),
    with momentum s ← μ·s + step; p ← p − step (or s). v, ḡ and s flushed to 0 below ``tiny``."""
    if decay:
        for i in range(p.size):
            p[i] = p[i] - decay * p[i]
    if g_mean.size == 0 and s.size == 0:  # Keras's default
        for i in range(p.size):
            v[i] = _normal_or_zero(v[i] * rho + (g[i] * g[i]) * one_minus_rho, tiny, zero)
            p[i] = p[i] - (g[i] / math.sqrt(v[i] + epsilon)) * lr
        return
    for i in range(p.size):
        v[i] = _normal_or_zero(v[i] * rho + (g[i] * g[i]) * one_minus_rho, tiny, zero)
        if g_mean.size:
            g_mean[i] = _normal_or_zero(g_mean[i] * rho + one_minus_rho * g[i], tiny, zero)
            denominator = (v[i] - g_mean[i] * g_mean[i]) + epsilon
        else:
            denominator = v[i] + epsilon
        step = (g[i] / math.sqrt(denominator)) * lr
        if s.size:
            s[i] = _normal_or_zero(s[i] * momentum + step, tiny, zero)
            step = s[i]
        p[i] = p[i] - step


@_compiled
def adam(p, g, m, v, v_hat, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, tiny, zero):
    """m ← m + (1 − β₁)·(g − m), v ← v + (1 − β₂)·(g² − v), p ← p − α·m / (√v + ε)
    (AMSGrad: v̂ ← max(v̂, v) and √v̂); m and v flushed to 0 below ``tiny``."""
    if decay:
        for i in range(p.size):
            p[i] = p[i] - decay * p[i]
    if v_hat.size == 0:
        for i in range(p.size):
            m[i] = _normal_or_zero(m[i] + (g[i] - m[i]) * one_minus_beta_1, tiny, zero)
            v[i] = _normal_or_zero(v[i] + (g[i] * g[i] - v[i]) * one_minus_beta_2, tiny, zero)
            p[i] = p[i] - (m[i] / (math.sqrt(v[i]) + epsilon)) * alpha
        return
    for i in range(p.size):
        m[i] = _normal_or_zero(m[i] + (g[i] - m[i]) * one_minus_beta_1, tiny, zero)
        v[i] = _normal_or_zero(v[i] + (g[i] * g[i] - v[i]) * one_minus_beta_2, tiny, zero)
        v_hat[i] = max(v_hat[i], v[i])
        p[i] = p[i] - (m[i] / (math.sqrt(v_hat[i]) + epsilon)) * alpha


# ---- the matrix products: NumPy's BLAS, or Intel's MKL ----------------------------------------

# CBLAS's flags: matrices in C's order; a matrix as it lies, or its transpose
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def matmul(a, b, out=None):
    """a·b for the layers' matrix products: MKL's gemm where ``backend.mkl()`` has loaded it
    and a and b are float matrices of one type that it can read where they lie; NumPy's
    ``matmul`` otherwise, with the same result (to rounding: the two libraries add in their own
    orders). MKL reads a matrix whose rows or whose columns are contiguous — a transposed view
    (Wᵀ) as it is, with no copy — and uses ``backend.blas_threads()`` threads."""
    if mkl() is not None and _float_matrices(a, b, out):
        c = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype) if out is None else out
        if _mkl_gemm(a.dtype.char)(a, b, c, blas_threads()):
            return c
    return np.matmul(a, b, out=out)


def _float_matrices(a, b, out) -> bool:
    """Whether a, b (and out) are 2-D arrays of one float type: what ``_mkl_plan`` takes."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2:
        return False
    if a.dtype != b.dtype or a.dtype.char not in "fd":
        return False
    return out is None or (type(out) is np.ndarray and out.ndim == 2 and out.dtype == a.dtype)


def _mkl_plan(a, b, c):
    """(trans_a, ld_a, trans_b, ld_b, ld_c) for c = a·b in gemm, all 0 where gemm cannot take
    them as they lie: shapes that do not match, an empty one, a stride other than a row's or a
    column's, an output whose rows are not contiguous, or one that overlaps an operand (NumPy
    copies the operand first; gemm would read what it has just written). Compiled: checked in
    Python, these took 4.4 µs a product, longer than a small product itself."""
    m, k = a.shape
    n = b.shape[1]
    cannot = (0, 0, 0, 0, 0)
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != n or m == 0 or n == 0 or k == 0:
        return cannot
    trans_a, ld_a = _layout(a)
    trans_b, ld_b = _layout(b)
    trans_c, ld_c = _layout(c)
    if trans_a == 0 or trans_b == 0 or trans_c != _NO_TRANS or _overlap(a, c) or _overlap(b, c):
        return cannot
    return (trans_a, ld_a, trans_b, ld_b, ld_c)


@_scalar
def _layout(x):
    """(CBLAS transpose flag, leading dimension) of a 2-D array: rows contiguous (as it lies)
    or columns contiguous (the transpose of what lies in memory); (0, 0) for any other."""
    rows, cols = x.shape
    size = x.itemsize
    row_step, col_step = x.strides
    if col_step == size and row_step % size == 0:
        ld = row_step // size if rows > 1 else cols  # one row: any stride; BLAS asks ld ≥ cols
        return (_NO_TRANS, ld) if ld >= max(cols, 1) else (0, 0)
    if row_step == size and col_step % size == 0:
        ld = col_step // size if cols > 1 else rows
        return (_TRANS, ld) if ld >= max(rows, 1) else (0, 0)
    return (0, 0)


@_scalar
def _overlap(x, y) -> bool:
    """Whether the memory spans of two arrays with positive strides meet."""
    x_start, y_start = x.ctypes.data, y.ctypes.data
    x_end = x_start + (x.shape[0] - 1) * x.strides[0] + (x.shape[1] - 1) * x.strides[1]
    y_end = y_start + (y.shape[0] - 1) * y.strides[0] + (y.shape[1] - 1) * y.strides[1]
    return x_start < y_end + y.itemsize and y_start < x_end + x.itemsize


@functools.cache
def _compiled_plan():
    """``_mkl_plan``, compiled once, for matrices of any strides (Numba would compile it again
    for each mix of C-ordered, Fortran-ordered and strided operands); its helpers are
    ``_scalar`` functions, compiled inline."""
    import numba

    _compile_scalar_functions()
    read = [_matrix(t, readonly=True) for t in (numba.float32, numba.float64)]
    return numba.njit([numba.types.UniTuple(numba.intp, 5)(m, m, m) for m in read],
                      nogil=True, cache=True)(_mkl_plan)  # fmt: skip


def _matrix(dtype, readonly: bool = False):
    """Numba's type of a 2-D array of any strides: one compiled function takes every layout,
    and a read-only type takes writable arrays too."""
    import numba

    return numba.types.Array(dtype, 2, "A", readonly=readonly)


@functools.cache
def _mkl_gemm(char: str):
    """MKL's sgemm ("f") or dgemm ("d") behind a compiled call that plans the layouts
    (``_mkl_plan``), sets this thread's thread count and multiplies, or returns False where
    gemm cannot take the operands. Through ctypes from Python a call cost 6.6 µs, from Numba
    1.2 (NumPy's own matmul, 1.8); an LSTM step makes several. Not cached on disk: the compiled
    code holds the library's addresses in this process."""
    import numba

    plan = _compiled_plan()
    library = mkl()
    gemm = library.cblas_sgemm if char == "f" else library.cblas_dgemm
    set_threads = library.MKL_Set_Num_Threads_Local  # this thread's count, no one else's
    one, zero = (np.float32(1), np.float32(0)) if char == "f" else (1.0, 0.0)

    def product(a, b, c, threads):
        trans_a, ld_a, trans_b, ld_b, ld_c = plan(a, b, c)
        if trans_a == 0:
            return False
        set_threads(threads)
        m, k, n = a.shape[0], a.shape[1], b.shape[1]
        gemm(_ROW_MAJOR, trans_a, trans_b, m, n, k, one, a.ctypes.data, ld_a, b.ctypes.data,
             ld_b, zero, c.ctypes.data, ld_c)  # fmt: skip
        return True

    dtype = numba.float32 if char == "f" else numba.float64
    read, write = _matrix(dtype, readonly=True), _matrix(dtype)
    return numba.njit(numba.boolean(read, read, write, numba.intp), nogil=True)(product)


# ---- around the matrix products: bias and activation, and the activation's derivative ---------
# The constants 0 and 1 arrive in the arrays' float type: a Python 1 would make Numba compute in
# float64 and round differently from NumPy.


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
def bias_max_pool_relu(z, b, a, winner, ph, pw, zero):
    """A convolution's z + b, max pooled and then relu'd in one pass: a[n, i, j, c] =
    max(0, the largest z[·, c] + b[c] of window (i, j)), and ``winner`` its offset u·pw + v in
    the window. z is (samples, oh, ow, C), one block of a convolution's rows; the windows tile
    it (strides = pool size, "valid": rows and columns past the last whole window are not
    read). relu commutes with the max, so a and the winner that gets ∂C/∂a are those of
    ``bias_relu`` followed by ``max_pool``, bit for bit: where the largest z + b is not above 0,
    a is 0 and no input of the window gets a gradient, whichever of them the winner names."""
    N, qh, qw, C = a.shape
    for n in range(N):
        for i in range(qh):
            for j in range(qw):
                for c in range(C):
                    a[n, i, j, c] = z[n, i * ph, j * pw, c] + b[c]
                    winner[n, i, j, c] = 0
                for u in range(ph):
                    for v in range(pw):
                        if u == 0 and v == 0:
                            continue
                        for c in range(C):
                            value = z[n, i * ph + u, j * pw + v, c] + b[c]
                            if value > a[n, i, j, c]:
                                a[n, i, j, c] = value
                                winner[n, i, j, c] = u * pw + v
                for c in range(C):
                    x = a[n, i, j, c]
                    a[n, i, j, c] = x if x > zero else (x if x != x else zero)


@_compiled
def max_pool_relu_backward(d, winner, a, dC_dz, ph, pw, zero):
    """∂C/∂z of a block of a convolution from ∂C/∂a of its pooled output (``bias_max_pool_relu``):
    d[n, i, j, c] goes to the window's winner where a > 0 (relu′ = 1 there), and every other z
    gets 0. dC_dz is (samples, oh, ow, C), d, winner and a (samples, qh, qw, C)."""
    N, qh, qw, C = d.shape
    dC_dz[...] = zero
    for n in range(N):
        for i in range(qh):
            for j in range(qw):
                for c in range(C):
                    if a[n, i, j, c] > zero:
                        k = winner[n, i, j, c]
                        dC_dz[n, i * ph + k // pw, j * pw + k % pw, c] = d[n, i, j, c]


@_compiled
def max_pool_relu_weight_gradient(d, winner, a, patches, ow, ph, pw, dW_T, db, zero):
    """∂C/∂W and ∂C/∂b of a convolution from ∂C/∂a of its pooled output (``bias_max_pool_relu``),
    added to dW_T (K, filters) — ∂C/∂W transposed — and db (filters,): for each window,
    ∂C/∂z is d[n, i, j, c] at the position that won it for filter c where a > 0, and 0 at the
    window's other positions, times that position's row of ``patches`` (samples·oh·ow, K; the
    samples of d). One window at a time, so that its few rows and its ∂C/∂z stay in registers,
    where the matrix product ∂C/∂zᵀ·patches reads every position of a feature map that is
    mostly zeros. The same sums in another order: equal to float rounding."""
    N, qh, qw, C = d.shape
    K = patches.shape[1]
    oh = patches.shape[0] // (N * ow)
    g = np.empty(C, dtype=d.dtype)  # this window's ∂C/∂z at its winners
    for n in range(N):
        for i in range(qh):
            for j in range(qw):
                for c in range(C):
                    g[c] = d[n, i, j, c] if a[n, i, j, c] > zero else zero
                    db[c] += g[c]
                for u in range(ph):
                    for v in range(pw):
                        k = u * pw + v
                        r = (n * oh + i * ph + u) * ow + j * pw + v
                        for t in range(K):
                            x = patches[r, t]
                            for c in range(C):
                                dW_T[t, c] += (g[c] if winner[n, i, j, c] == k else zero) * x


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


# ---- e^x, sigmoid and tanh as arithmetic the compiler vectorizes (float32) ----------------------
# Numba calls the C library's expf one value at a time: a fused LSTM step took 54 ns an element
# that way, four times NumPy's SIMD passes. These are the textbook construction instead, in
# operations the compiler turns into vector instructions (0.3 ns an element for e^x here):
#
#     e^x = 2^n · e^r,  n = round(x / ln 2),  r = x − n·ln 2 ∈ [−ln 2 / 2, ln 2 / 2],
#
# with e^r − 1 = r + r²·p(r), p of degree 4 fitted by least squares to (e^r − 1 − r)/r² on that
# interval, weighted for the relative error of e^r (tests/test_kernels.py refits it); ln 2 split
# in two parts so that n·ln 2 is exact (Cody and Waite); 2^n built from its bits. Against
# float64 on 400,001 points across each range, in float32 ulps at the exact value: sigmoid
# within 2.3 (NumPy's float32 formula 1/(1 + e^−z): 3.3), tanh within 2.1 (NumPy's own tanhf:
# 1.4); the tests hold them to 2.5. float32 only: float64 keeps NumPy's functions.

_FIT = (0.49999989, 0.16666518, 0.04166953, 0.00836892, 0.00137514)  # p's coefficients
_P0, _P1, _P2, _P3, _P4 = (np.float32(c) for c in _FIT)
_LOG2_E = np.float32(1.4426950408889634)
_LN2_HIGH = np.float32(0.693359375)  # 9 significant bits: n·_LN2_HIGH is exact for |n| < 2^15
_LN2_LOW = np.float32(-2.12194440e-4)  # ln 2 − _LN2_HIGH
_EXP_LOWEST, _EXP_HIGHEST = np.float32(-87.0), np.float32(87.0)  # see _exp_parts
_TANH_ONE = np.float32(9.0)  # tanh(x) rounds to 1 in float32 from x = 9.01 on
_HALF, _ONE, _TWO, _ZERO = np.float32(0.5), np.float32(1.0), np.float32(2.0), np.float32(0.0)


@_scalar
def _exp_parts(x):
    """e^x as (2^n, e^r − 1), so that e^x − 1 keeps its precision for small x: (2^n − 1) +
    2^n·(e^r − 1), where n = 0 for |x| < 0.35. Beyond ±87, x is clamped, so that neither
    2^n·e^r nor 1/(1 + e^x) is ever a subnormal number, which x86 computes with slowly (an
    LSTM step took 70 µs instead of 35 once its gates saturated): σ(z) is then 1.6e−38 for
    z < −87, not smaller, and 1 for z > 87 as before."""
    x = min(max(x, _EXP_LOWEST), _EXP_HIGHEST)
    n = np.floor(x * _LOG2_E + _HALF)
    r = (x - n * _LN2_HIGH) - n * _LN2_LOW
    p = (((_P4 * r + _P3) * r + _P2) * r + _P1) * r + _P0
    two_to_n = _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))  # noqa: F821
    return two_to_n, (p * r) * r + r


@_scalar
def _sigmoid32(z):
    """σ(z) = 1 / (1 + e^(−z)); NaN stays NaN."""
    two_to_n, e_r_minus_1 = _exp_parts(-z)
    a = _ONE / (_ONE + two_to_n * (e_r_minus_1 + _ONE))  # never subnormal: slow on x86
    return a if z == z else z


@_scalar
def _tanh32(z):
    """tanh(|z|) = (e^(2|z|) − 1) / (e^(2|z|) + 1), the sign of z put back; NaN stays NaN."""
    two_to_n, e_r_minus_1 = _exp_parts(_TWO * min(abs(z), _TANH_ONE))
    e_minus_1 = (two_to_n - _ONE) + two_to_n * e_r_minus_1
    a = e_minus_1 / (e_minus_1 + _TWO)
    a = a if z >= _ZERO else -a
    return a if z == z else z


# The kernels below that compute sigmoid and tanh do not promise NumPy's bits, so the compiler may
# fuse a·b + c into one instruction with one rounding ("contract"): the LSTM step runs 20 % faster.
_CONTRACT = {"fastmath": {"contract"}}


@_compiled(**_CONTRACT)
def sigmoid32(z, a):
    """a = σ(z), 1-D float32 arrays (for the tests)."""
    for k in range(z.size):
        a[k] = _sigmoid32(z[k])


@_compiled(**_CONTRACT)
def tanh32(z, a):
    """a = tanh(z), 1-D float32 arrays (for the tests)."""
    for k in range(z.size):
        a[k] = _tanh32(z[k])


# ---- an LSTM cell's step, forward and back -------------------------------------------------------
# One row of the batch at a time, each gate's loop over contiguous values, so that the compiler
# vectorizes it. The layer runs the rows of a batch in pieces on several threads. Each gate is a
# slice of its own, indexed from 0: with an index such as u + j, the compiler cannot prove it
# non-negative (u is width // 4) and keeps Python's wraparound of negative indices. The forward
# step then moved its values one lane at a time (gather and scatter instructions; a test checks
# the machine code for them); the backward step had its vector loop compiled but ran the scalar
# one (by every sign, its run-time check that the arrays do not overlap failed). They were
# 1.7–1.9 and 2.3–2.5 times slower (python benchmarks/kernels.py).


@_compiled(**_CONTRACT)
def lstm_step(z, c_prev, gates, c, tanh_c, h):
    """One LSTM step after its matrix product, float32: from z = W_h·h_{t−1} + W_x·x_t + b,
    the gates i, f, g, o = σ(z_i), σ(z_f), tanh(z_c), σ(z_o), the cell state
    c = f ⊙ c_{t−1} + i ⊙ g, tanh(c) and h = o ⊙ tanh(c). z, gates: (batch, 4u)."""
    n, width = z.shape
    u = width // 4
    for r in range(n):
        zr, gr = z[r], gates[r]
        z_if, z_c, z_o = zr[: 2 * u], zr[2 * u : 3 * u], zr[3 * u :]
        g_if, i, f, g, o = gr[: 2 * u], gr[:u], gr[u : 2 * u], gr[2 * u : 3 * u], gr[3 * u :]
        for k in range(2 * u):  # i, f
            g_if[k] = _sigmoid32(z_if[k])
        for j in range(u):  # g, the candidate
            g[j] = _tanh32(z_c[j])
        for j in range(u):  # o
            o[j] = _sigmoid32(z_o[j])
        c_prev_r, c_r, tanh_c_r, h_r = c_prev[r], c[r], tanh_c[r], h[r]
        for j in range(u):
            c_j = f[j] * c_prev_r[j] + i[j] * g[j]
            c_r[j] = c_j
            tanh_c_j = _tanh32(c_j)
            tanh_c_r[j] = tanh_c_j
            h_r[j] = o[j] * tanh_c_j


@_compiled
def lstm_step_backward(dh_later, dh_output, dc, gates, c_prev, tanh_c, dz, dh, one):
    """An LSTM step's backward pass: ∂C/∂h_t = what step t + 1 sent back (``dh_later``) + what
    the output at t sent (``dh_output``), written to ``dh``; from it and ∂C/∂c_t (``dc``, turned
    into ∂C/∂c_{t−1} in place) to ∂C/∂z (batch, 4u: gates i, f, c, o), from the stored gates,
    c_{t−1} and tanh(c_t); in the NumPy formulas' order of operations, so with their bits."""
    n, width = dz.shape
    u = width // 4
    for r in range(n):
        gr, dz_r, dc_r, c_prev_r, tanh_c_r = gates[r], dz[r], dc[r], c_prev[r], tanh_c[r]
        dh_later_r, dh_output_r, dh_r = dh_later[r], dh_output[r], dh[r]
        g_i, g_f, g_g, g_o = gr[:u], gr[u : 2 * u], gr[2 * u : 3 * u], gr[3 * u :]
        dz_i, dz_f, dz_g, dz_o = dz_r[:u], dz_r[u : 2 * u], dz_r[2 * u : 3 * u], dz_r[3 * u :]
        for j in range(u):
            i, f, g, o = g_i[j], g_f[j], g_g[j], g_o[j]
            t = tanh_c_r[j]
            dh_j = dh_later_r[j] + dh_output_r[j]
            dh_r[j] = dh_j
            dc_j = dc_r[j] + (dh_j * o) * (one - t * t)  # c reaches C through h too
            dz_i[j] = (dc_j * g) * (i * (one - i))
            dz_f[j] = (dc_j * c_prev_r[j]) * (f * (one - f))
            dz_g[j] = (dc_j * i) * (one - g * g)
            dz_o[j] = (dh_j * t) * (o * (one - o))
            dc_r[j] = dc_j * f
