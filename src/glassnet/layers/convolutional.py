"""Convolutional layers: ``Conv1D``, ``Conv2D``, ``Conv3D``, the transposed ones and
``ZeroPadding2D``, and the window arithmetic the pooling layers share.

A filter is a neuron that looks at one window of its input at a time. Its weights are one row of
W, and at every position it computes the deck's z = W·patch + b, a = σ(z) — the same weights at
every position. So a convolution is a Dense layer applied to every window:

- the windows are a strided *view* of the (padded) input: no copy, no loop over positions;
- laid side by side, one window per row, they are the matrix ``patches`` (rows, K), and
  z = patches · Wᵀ + b is one matrix product for every position of every sample;
- backward is the deck's recursion: ∂C/∂W = (∂C/∂z)ᵀ · patches (∂z/∂W is the stored input, as for
  Dense), and ∂C/∂patches = ∂C/∂z · W, each window's share added back where it was read;
- with the fused kernels on, these products run block by block: each thread takes its share of
  the samples, a few at a time, so that a block's rows of ``patches`` are multiplied while they
  are still in the core's cache (``Conv._in_blocks``). The rows and the products are the same;
  ∂C/∂W and ∂C/∂b are then sums of the blocks' sums, equal to float rounding;
- a relu convolution whose output only a max pooling reads may run with it as one step
  (``Conv.forward_pooled``, in training steps and predictions): each block's z is pooled while
  in the cache and only the pooled output is written. The numbers are the two layers', to
  float rounding.

Shapes, channels last (Keras's default): the input a_prev is (batch, height, width, c_in); a
filter (kh, kw) with strides (sh, sw) and dilation (dh, dw); K = kh·kw·c_in, the length of one
window; W (filters, K), one row per filter, as a Dense layer's W has one row per neuron;
rows = batch·oh·ow, one per position; z and a (batch, oh, ow, filters), one feature map per
filter. Keras's kernel (kh, kw, c_in, filters) is Wᵀ folded back; it appears only in
``to_keras``/``from_keras``. ``Conv1D`` is ``Conv2D`` on a height of 1; ``Conv3D`` is the same
with a depth axis in front, its windows kd × kh × kw × c_in.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

from numpy.lib.stride_tricks import as_strided

from glassnet import activations, initializers, kernels, regularizers
from glassnet.backend import (
    blas_threads_for,
    format_shape,
    num_threads,
    parallel_map,
    split_evenly,
    xp,
)
from glassnet.kernels import matmul
from glassnet.layers.base import Layer, Variable, refuse_unsupported, workspace
from glassnet.layers.core import add_bias_and_activate

__all__ = [
    "AXES",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "ZeroPadding2D",
    "crop",
    "pad",
    "side_pairs",
]


# ---- arguments, as Keras checks them -------------------------------------------------------------


def int_tuple(value, rank: int, name: str) -> tuple[int, ...]:
    """``value`` (an int or ``rank`` ints) as a tuple of ``rank`` positive ints, as Keras's
    ``standardize_tuple``."""
    items = (value,) * rank if isinstance(value, numbers.Integral) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != rank or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in items
    ):
        raise ValueError(
            f"The `{name}` argument must be a tuple of {rank} positive integers (or one "
            f"integer). Received: {name}={value!r}"
        )
    return tuple(int(v) for v in items)


def check_padding(padding, allow_causal: bool = False) -> str:
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    value = padding.lower() if isinstance(padding, str) else padding
    if value not in allowed:
        raise ValueError(
            f"The `padding` argument must be one of {', '.join(map(repr, allowed))}. "
            f"Received: padding={padding!r}"
        )
    return value


AXES = {1: "steps", 2: "rows, cols", 3: "depth, rows, cols"}
"""The spatial axes of a convolution's input by its rank, as error messages name them."""


def check_channels_last(data_format, layer: str) -> None:
    if data_format not in (None, "channels_last"):
        raise NotImplementedError(
            f"{layer}(data_format={data_format!r}) is not supported: glassnet works channels "
            "last, (batch, rows, cols, channels), Keras's default."
        )


# ---- windows: the geometry, the strided view and its adjoint ------------------------------------


def output_size(size, k: int, stride: int, dilation: int, padding: str):
    """(output size, padding before, padding after) along one axis, as Keras and TensorFlow
    compute them. "same" pads so that output = ⌈size/stride⌉, the extra zero at the end;
    "causal" pads only at the start, so that output t sees inputs ≤ t."""
    span = dilation * (k - 1) + 1  # how far one window reaches
    if size is None:
        return None, 0, 0
    if padding == "valid":
        return (size - span) // stride + 1, 0, 0
    if padding == "causal":
        return (size - 1) // stride + 1, span - 1, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


@dataclass(frozen=True)
class Windows:
    """Where the windows of an input lie: kernel size, strides, dilation, padding — one entry
    per spatial axis (2 for images; 3 for ``Conv3D``'s volumes)."""

    size: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str

    def out_shape(self, *sizes):
        """(output sizes, (before, after) padding per axis) for an input of these sizes:
        ((oh, ow), ((top, bottom), (left, right))) for an image of height × width."""
        found = [
            output_size(n, k, s, d, self.padding)
            for n, k, s, d in zip(sizes, self.size, self.strides, self.dilation)
        ]
        return tuple(out for out, *_ in found), tuple(tuple(pads) for _, *pads in found)

    def view(self, x, out):
        """The windows of x (batch, H, W, C) as a read-only view (batch, oh, ow, kh, kw, C):
        window (i, j) starts at row i·sh, column j·sw, and reads every dh-th row and dw-th
        column from there (and so along a third axis, for a volume)."""
        s_n, *s_axes, s_c = x.strides
        return as_strided(
            x,
            shape=(x.shape[0], *out, *self.size, x.shape[-1]),
            strides=(
                s_n,
                *(s * step for s, step in zip(s_axes, self.strides)),
                *(s * d for s, d in zip(s_axes, self.dilation)),
                s_c,
            ),
            writeable=False,
        )

    def scatter(self, d_windows, out):
        """The adjoint of ``view``: each window's gradient (batch, oh, ow, kh, kw, C) added
        back to the input positions it read, written to ``out`` (batch, H, W, C), which it
        returns. A position read by several windows receives the sum. The loop runs over the
        kh·kw offsets inside a window, never over positions or samples (the fused kernel makes
        the same sums in one pass, for images)."""
        rank = len(self.size)
        positions = d_windows.shape[1 : 1 + rank]
        if rank == 2 and use_kernels(d_windows):
            kernels.run_split("scatter_windows", (d_windows, out), *self.strides, *self.dilation)
            return out
        out[...] = 0
        every = (slice(None),)
        for offset in itertools.product(*(range(k) for k in self.size)):
            read = tuple(
                slice(o * d, o * d + (n - 1) * s + 1, s)
                for o, d, n, s in zip(offset, self.dilation, positions, self.strides)
            )
            out[every + read + every] += d_windows[every * (1 + rank) + offset]
        return out


BLOCK_BYTES = 1 << 20
"""About how much one block of samples spans of a convolution's working arrays (its windows side
by side and its z; see ``Conv._in_blocks``): within a core's 2 MiB L2 cache. On the Intel Xeon VM
(2 vCPUs), a W5 training step (keras-io's mnist_convnet, batch 128), ms: the whole batch in one
product 31.0, 29.1, 27.0 against 24.4, 23.9, 23.5 in blocks of 1 MiB (alternating processes);
blocks of 0.25, 0.5, 1, 2 and 4 MiB: 32.9 and 35.8, 27.5 and 23.8, 24.7 and 21.8, 21.6 and
22.6, 25.0 and 27.1 (two sweeps); in one process, alternating, 0.5, 1 and 2 MiB: 28.21, 27.69
and 27.53 (medians of six rounds): the same within the noise."""


def use_kernels(array) -> bool:
    """Whether the fused kernels take this array: they are on, and it holds float32 or float64."""
    return kernels.ENABLED and array.dtype in (xp.float32, xp.float64)


def side_pairs(value, name: str, rank: int) -> tuple:
    """Rows or columns to add or cut on each side, as Keras reads ``padding``/``cropping``: an int
    (every side), ``rank`` ints (both sides of each axis) or ``rank`` pairs ((top, bottom), …);
    for ``rank`` 1, one int or one pair (left, right)."""
    if isinstance(value, numbers.Integral):
        value = ((value, value),) * rank
    elif (
        rank == 1
        and len(tuple(value) if isinstance(value, (list, tuple)) else ()) == 2
        and all(isinstance(v, numbers.Integral) for v in value)
    ):
        value = (tuple(value),)
    try:
        pairs = [((p, p) if isinstance(p, numbers.Integral) else tuple(p)) for p in value]
    except TypeError:
        pairs = []
    if len(pairs) != rank or not all(
        len(p) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in p)
        for p in pairs
    ):
        shapes = (
            "an int or a tuple of 2 ints (left, right)"
            if rank == 1
            else "an int, a tuple of 2 ints (rows, cols) or a tuple of 2 tuples of 2 ints "
            "((top, bottom), (left, right))"
        )
        raise ValueError(f"`{name}` should be {shapes}. Received: {name}={value!r}")
    return tuple(tuple(int(v) for v in p) for p in pairs)


def pad(x, pads, value=0.0):
    """x (batch, H, W, C) with ``pads`` = ((top, bottom), (left, right)) rows and columns of
    ``value`` around it (one pair per spatial axis; x itself when there is nothing to add)."""
    if not any(before or after for before, after in pads):
        return x
    inner = x.shape[1:-1]
    grown = tuple(n + before + after for n, (before, after) in zip(inner, pads))
    out = xp.full((x.shape[0], *grown, x.shape[-1]), value, dtype=x.dtype)
    every = (slice(None),)
    out[every + tuple(slice(b, b + n) for n, (b, _) in zip(inner, pads)) + every] = x
    return out


def crop(dx, pads):
    """The inverse of ``pad`` for gradients: the part of dx that belongs to the input."""
    every = (slice(None),)
    kept = tuple(slice(b, n - a) for n, (b, a) in zip(dx.shape[1:-1], pads))
    return dx[every + kept + every]


# ---- the layers ----------------------------------------------------------------------------------


class Conv(Layer):
    """Base of ``Conv1D`` and ``Conv2D``: ``filters`` neurons, each looking at one window."""

    rank: ClassVar[int] = 2
    _keras_names: ClassVar[dict[str, str]] = {"W": "kernel", "b": "bias"}

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        kind = type(self).__name__
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters <= 0:
            raise ValueError(
                "Invalid value for argument `filters`. Expected a strictly positive value. "
                f"Received filters={filters!r}."
            )
        check_channels_last(data_format, kind)
        if groups != 1:
            raise NotImplementedError(f"{kind}(groups={groups!r}) is not supported by glassnet.")
        refuse_unsupported(
            kind,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = int_tuple(strides, self.rank, "strides")
        self.dilation_rate = int_tuple(dilation_rate, self.rank, "dilation_rate")
        self.padding = check_padding(padding, allow_causal=self.rank == 1)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.regularize(W=kernel_regularizer, b=bias_regularizer)
        # Conv1D is Conv2D on a height of 1: its windows are 1 × k.
        one = (1,) * (2 - self.rank)
        self.windows = Windows(
            one + self.kernel_size,
            one + self.strides,
            one + self.dilation_rate,
            "valid" if self.padding == "causal" else self.padding,
        )

    @property
    def kernel(self) -> Variable:
        """Keras's kernel, (*kernel_size, c_in, filters): a view of W."""
        return Variable(self, "W")

    @property
    def bias(self) -> Variable | None:
        return Variable(self, "b") if "b" in self.params else None

    # ---- building ------------------------------------------------------------------------------

    def _expected(self) -> str:
        return f"(batch, {AXES[self.rank]}, channels)"

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(self._rank_error(input_shape))
        self.c_in = input_shape[-1]
        if self.c_in is None:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} needs to know its number of input "
                f"channels; received inputs of shape {format_shape(input_shape)}."
            )
        self.compute_output_shape(input_shape)  # refuses a window larger than its input
        K = self._window_channels() * int(xp.prod(self.kernel_size))  # the length of one window
        self.add_weight((self._w_rows(), K), self.kernel_initializer, name="W")  # a row per filter
        if self.use_bias:
            self.add_weight((self.filters,), self.bias_initializer, name="b")
        super().build(input_shape)

    def _rank_error(self, shape) -> str:
        message = (
            f"{type(self).__name__} layer {self.name!r} expects inputs of shape "
            f"{self._expected()}; received {format_shape(shape)}."
        )
        if self.rank == 2 and len(shape) == 2 and shape[-1] is not None:
            side = round(shape[-1] ** 0.5)
            if side * side == shape[-1]:  # flat images, such as MNIST's 784 pixels
                message += (
                    f" Reshape flat images first: x.reshape(-1, {side}, {side}, 1), or start the "
                    f"model with layers.Reshape(({side}, {side}, 1))."
                )
        elif self.rank == 2 and len(shape) == 3:
            message += " Add a channel axis to grayscale images: x[..., None]."
        return message

    def _geometry(self, *sizes):
        """((oh, ow), ((top, bottom), (left, right))) for an input of height × width (a
        volume: three of each)."""
        if self.padding != "causal":
            return self.windows.out_shape(*sizes)
        _, width = sizes
        before = self.dilation_rate[0] * (self.kernel_size[0] - 1)  # zeros before the start only
        (oh, ow), _ = self.windows.out_shape(1, None if width is None else width + before)
        return (oh, ow), ((0, 0), (before, 0))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(self._rank_error(input_shape))
        sizes = (1, input_shape[1]) if self.rank == 1 else input_shape[1:-1]
        out, _ = self._geometry(*sizes)
        spatial = out[1:] if self.rank == 1 else out
        if any(s is not None and s <= 0 for s in spatial):
            span = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate))
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}: its window {span} (kernel_size "
                f"{self.kernel_size}, dilation_rate {self.dilation_rate}) is larger than its "
                f"{self.padding}-padded input {format_shape(input_shape)}, so there is no "
                "position to put it. Use a smaller kernel, padding='same', or a larger input."
            )
        return (input_shape[0], *spatial, self.filters)

    # ---- Keras's layout: kernel (*kernel_size, c_in, filters) = Wᵀ folded --------------------

    def _w_rows(self) -> int:
        """W's rows: one per filter (a transposed convolution: one per input channel)."""
        return self.filters

    def _window_channels(self) -> int:
        """The channels a window holds: the input's (a transposed convolution: the output's)."""
        return self.c_in

    def _positions(self) -> tuple:
        """Where the windows stand: the output's positions (a transposed one: the input's)."""
        return self.output_shape[1:-1]

    def to_keras(self, name, array):
        if name == "W":  # (rows, kh·kw·channels) → (kh, kw, channels, rows)
            return array.T.reshape(*self.kernel_size, self._window_channels(), self._w_rows())
        return array

    def from_keras(self, name, array):
        if name == "W":
            return array.reshape(-1, self._w_rows()).T
        return array

    def largest_product(self, batch_size: int) -> float:
        rows = batch_size * int(xp.prod([s or 1 for s in self._positions()]))
        return 2.0 * rows * self.params["W"].size

    # ---- the two passes ------------------------------------------------------------------------

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        n, out, per_sample, product = self._products(c, a_prev)
        z = c.z_rows = workspace(c, "z_rows", (n * per_sample, self.filters), a_prev.dtype)
        inference = getattr(c, "inference_only", False)
        # A prediction multiplies in one go: predict already cuts the batch into pieces
        # sized for the cache and shares them out (blocks of those made W5 1.2× slower).
        self._in_blocks(c.patches, per_sample,
                        lambda share, samples: product(samples, z[self._rows(samples, per_sample)]),
                        blocks=not inference)  # fmt: skip
        a = add_bias_and_activate(z, self.params.get("b"), self.activation)
        if xp.may_share_memory(a, z):  # z is the output too (linear): not the layer's to reuse
            del c.z_rows
        out_shape = (n, *(out[1:] if self.rank == 1 else out), self.filters)
        c.z, c.a = z.reshape(out_shape), a.reshape(out_shape)  # one feature map per filter
        return c.a

    @staticmethod
    def _rows(samples: slice, per_sample: int) -> slice:
        """The rows of ``patches`` (and of z) that hold these samples' windows."""
        return slice(samples.start * per_sample, samples.stop * per_sample)

    def _products(self, c, a_prev, pool_size=None):
        """What both forward passes start from: the windows of ``a_prev``, and ``c.patches``,
        the matrix they fill side by side (rows, K), one window per row. Returns the batch size,
        the output positions (oh, ow), the rows per sample, and ``product(samples, z)``, which
        copies these samples' windows into their rows of ``patches`` and multiplies them by Wᵀ
        into ``z`` (their rows, filters). With ``pool_size``, only the positions that the pools
        read: rows and columns past the last whole pool are left out."""
        x = self._as_images(a_prev)  # (batch, H, W, c_in); a Conv1D's H is 1
        W = self.params["W"]  # (filters, K)
        out, pads = self._geometry(*x.shape[1:-1])  # (oh, ow); a Conv3D's (od, oh, ow)
        if pool_size is not None:
            out = tuple(o // p * p for o, p in zip(out, pool_size))
        x = pad(x, pads)
        n = x.shape[0]
        c.a_prev, c.pads, c.padded_shape = a_prev, pads, x.shape
        windows = self.windows.view(x, out)  # (batch, oh, ow, kh, kw, c_in), a view
        per_sample = math.prod(out)  # rows of the matrix for one sample: its positions
        shape = (n * per_sample, W.shape[1])  # (rows, K): one window per row
        contiguous = windows.flags.c_contiguous  # 1×1 windows side by side: already that matrix
        # ∂z/∂W: the backward pass reads the windows
        c.patches = windows.reshape(shape) if contiguous else workspace(c, "patches", shape,
                                                                         x.dtype)  # fmt: skip

        def product(samples, z):
            patches = c.patches[self._rows(samples, per_sample)]
            if not contiguous:  # the windows side by side, one per row
                xp.copyto(patches.reshape(windows[samples].shape), windows[samples])
            return matmul(patches, W.T, out=z)  # (rows, K)·(K, filters) = (rows, filters)

        return n, out, per_sample, product

    def backward(self, dC_da, cache=None):
        # ∂C/∂z = σ′(z) ⊙ ∂C/∂a, at every position of every feature map
        c = self.cache_for(cache)
        c.dC_da = dC_da
        return self.backward_from_z(self.activation.backward(c.z, c.a, dC_da), cache)

    def backward_from_z(self, dC_dz, cache=None):
        """The rest of the backward pass, from ∂C/∂z (batch, oh, ow, filters): the products
        block by block (see ``_in_blocks``)."""
        c = self.cache_for(cache)
        c.dC_dz = dC_dz = dC_dz.reshape(c.z.shape)
        per_row = dC_dz.reshape(-1, self.filters)  # (rows, filters): one row per position
        out = (1, dC_dz.shape[1]) if self.rank == 1 else dC_dz.shape[1:-1]
        return self._backward_products(c, out, lambda share, rows, samples: per_row[rows])

    def _backward_products(self, c, out, dC_dz_rows):
        """∂C/∂W, ∂C/∂b and ∂C/∂(input) from ∂C/∂z, block by block (``_in_blocks``), where
        ``dC_dz_rows(share, rows, samples)`` gives a block's rows of ∂C/∂z (rows, filters); ``out``
        is the output positions (oh, ow)."""
        W = self.params["W"]
        c_in = c.padded_shape[-1]
        per_sample = math.prod(out)
        dtype = c.patches.dtype
        dx = xp.empty(c.padded_shape, dtype=dtype) if self.needs_input_gradient else None
        most = self._block_samples(c.patches, per_sample) * per_sample  # a block's rows, at most
        ones = xp.ones(most, dtype=dtype)
        dW, db = {}, {}  # each share's sums over its own samples, added up in share order

        def add(sums, share, part):
            sums[share] = part if share not in sums else xp.add(sums[share], part, out=part)

        def backward(share, samples):
            rows = self._rows(samples, per_sample)
            d_rows, patches = dC_dz_rows(share, rows, samples), c.patches[rows]
            # ∂C/∂W = Σ over positions of ∂C/∂z · patch: the stored windows are ∂z/∂W
            add(dW, share, matmul(d_rows.T, patches))  # (filters, rows)·(rows, K)
            if self.use_bias:  # ∂z/∂b = 1 at every position: the column sums, as 1ᵀ·∂C/∂z
                add(db, share, xp.matmul(ones[: len(d_rows)], d_rows))
            if dx is None:
                return
            # ∂C/∂(each window): (rows, filters)·(filters, K) = (rows, K), added back where read
            d_patches = workspace(c, f"d_patches_{share}", (most, W.shape[1]), dtype)
            d_patches = matmul(d_rows, W, out=d_patches[: len(d_rows)])
            d_windows = d_patches.reshape(samples.stop - samples.start, *out,
                                          *self.windows.size, c_in)  # fmt: skip
            self.windows.scatter(d_windows, dx[samples])

        self._in_blocks(c.patches, per_sample, backward)
        self.grads["W"][...] = sum(dW[share] for share in sorted(dW))
        if self.use_bias:
            self.grads["b"][...] = sum(db[share] for share in sorted(db))
        if dx is None:
            return None
        return crop(dx, c.pads).reshape(c.a_prev.shape)  # (batch, H, W, c_in)

    # ---- with the max pooling that reads the output, in one pass ------------------------------
    # A model's training steps and its predictions run a Conv2D with relu and the MaxPooling2D
    # after it (pools that tile: strides = pool size, "valid") as one step when nothing else
    # reads the convolution's output (``Graph._with_pooled_convolutions``): each block's z is
    # biased, pooled and relu'd while it is in the cache, and only the pooled output is
    # written — not z, a and the pooling's input (W5's first convolution: 11 MB each), nor,
    # backward, ∂C/∂a, the pooling's ∂C/∂(input) and ∂C/∂z. The numbers are the two layers':
    # the pooling and relu bit for bit (``kernels.bias_max_pool_relu``), the sums to float
    # rounding (the products leave out the positions no pool reads, and a first convolution's
    # ∂C/∂W is summed from the winners). What is not kept is what the glass box would show
    # between the two layers, so the steps it records run them one after the other.

    def pools_in_one_pass(self, pool) -> bool:
        """Whether ``forward_pooled`` can run ``pool`` (a layer reading this one's output): with
        the fused kernels on (``GLASSNET_KERNELS=numpy`` runs every layer on its own)."""
        windows = getattr(pool, "windows", None)
        return (
            kernels.ENABLED
            and self.rank == 2
            and not isinstance(self, ConvTranspose)
            and self.activation is activations.relu
            and getattr(pool, "reduce", None) == "max"
            and getattr(pool, "rank", None) == 2
            and windows is not None
            and windows.size == windows.strides
            and windows.padding == "valid"
            and math.prod(windows.size) <= 256  # the winner's offset, a uint8
        )

    def forward_pooled(self, a_prev, pool_size, training=False, cache=None):
        """Max pooling of ``forward``'s output over ``pool_size`` windows that tile it: the
        pooled relu(z), (batch, oh // ph, ow // pw, filters), computed block by block, z only
        where a pool reads it."""
        c = self.cache_for(cache)
        for name in ("z", "a", "z_rows", "dC_da", "dC_dz"):  # a step run layer by layer's
            c.__dict__.pop(name, None)
        # No pool reads W5's second convolution's last row and column (11 × 11 positions,
        # pools of 2 × 2): their products are left out, 17 % of the layer's.
        n, out, per_sample, product = self._products(c, a_prev, pool_size)
        (ph, pw), F, dtype = pool_size, self.filters, a_prev.dtype
        c.pool_size, c.out = pool_size, out
        c.pooled = xp.empty((n, out[0] // ph, out[1] // pw, F), dtype=dtype)
        c.winner = xp.empty(c.pooled.shape, dtype=xp.uint8)
        b = self.params["b"] if self.use_bias else xp.zeros(F, dtype=dtype)
        zero = dtype.type(0)
        most = self._block_samples(c.patches, per_sample) * per_sample

        def block(share, samples):
            z = workspace(c, f"z_block_{share}", (most, F), dtype)
            z = product(samples, z[: (samples.stop - samples.start) * per_sample])
            kernels.bias_max_pool_relu(z.reshape(-1, *out, F), b, c.pooled[samples],
                                       c.winner[samples], ph, pw, zero)  # fmt: skip

        # In blocks for predictions too (unlike ``forward``): z never leaves the cache here.
        # W5's predictions on the AMD EPYC VM, images a second at batch 1,000 / 10,000,
        # alternating in one process: 18,789 / 17,497 in blocks against 14,563 / 14,460.
        self._in_blocks(c.patches, per_sample, block)
        return c.pooled

    def backward_pooled(self, dC_dpooled, cache=None):
        """``forward_pooled``'s backward pass: each block's ∂C/∂z made from ∂C/∂(pooled output)
        (``kernels.max_pool_relu_backward``) and used at once; ∂C/∂(input) returned."""
        c = self.cache_for(cache)
        (ph, pw), out, F = c.pool_size, c.out, self.filters
        d = dC_dpooled.reshape(c.pooled.shape)
        zero = d.dtype.type(0)
        if not self.needs_input_gradient and c.patches.shape[1] <= self.WINNERS_ONLY:
            self._winners_weight_gradient(c, d, zero)
            return None
        most = self._block_samples(c.patches, math.prod(out)) * math.prod(out)

        def dC_dz_rows(share, rows, samples):  # in the block's z, not needed after the forward
            dC_dz = workspace(c, f"z_block_{share}", (most, F), d.dtype)[: rows.stop - rows.start]
            kernels.max_pool_relu_backward(d[samples], c.winner[samples], c.pooled[samples],
                                           dC_dz.reshape(-1, *out, F), ph, pw, zero)  # fmt: skip
            return dC_dz

        return self._backward_products(c, out, dC_dz_rows)

    WINNERS_ONLY = 16
    """Windows of at most this many numbers (a first convolution's 3×3 of one channel) make
    ∂C/∂W of a pooled convolution from the pools' winners
    (``kernels.max_pool_relu_weight_gradient``) when nothing needs ∂C/∂(input), instead of the
    products block by block. The backward pass of one batch of 128, pools of 2×2, on the AMD
    EPYC VM (2 vCPUs), ms, winners against products:
    K = 9 (28×28×1 images, 3×3 windows, 32 filters: W5's first) 1.48 against 3.39; K = 27
    (32×32×3, 3×3) 5.18 against 4.58; K = 75 (5×5) 13.01 against 6.87; K = 288 (13×13×32, 3×3,
    64 filters) 10.53 against 3.65. In W5's step: 16.60 against 17.98 ms."""

    def _winners_weight_gradient(self, c, d, zero) -> None:
        """∂C/∂W and ∂C/∂b from the pools' winners: each thread its share of the samples, the
        shares' sums added in order."""
        per_sample = math.prod(c.out)
        shares = split_evenly(len(d), num_threads())
        sums: list = [None] * len(shares)

        def share(item):
            k = item[1]
            samples = shares[k]
            dW_T = xp.zeros(self.grads["W"].shape[::-1], dtype=d.dtype)  # (K, filters)
            db = xp.zeros(self.filters, dtype=d.dtype)
            kernels.max_pool_relu_weight_gradient(
                d[samples], c.winner[samples], c.pooled[samples],
                c.patches[self._rows(samples, per_sample)], c.out[1], *c.pool_size, dW_T, db,
                zero,
            )  # fmt: skip
            sums[k] = dW_T.T, db

        parallel_map(share, [(d[samples], k) for k, samples in enumerate(shares)], 0)
        self.grads["W"][...] = sum(dW for dW, _ in sums)
        if self.use_bias:
            self.grads["b"][...] = sum(db for _, db in sums)

    def _block_samples(self, rows, per_sample: int, blocks: bool = True) -> int:
        """How many samples ``_in_blocks`` puts in a block: all of them, in one go, with the
        kernels off or ``blocks`` False."""
        n = len(rows) // per_sample
        if not (blocks and use_kernels(rows)):
            return n
        row_bytes = (self.params["W"].shape[1] + self.filters) * rows.itemsize
        return min(n, max(1, BLOCK_BYTES // (per_sample * row_bytes)))

    def _in_blocks(self, rows, per_sample: int, fn, blocks: bool = True) -> None:
        """``fn(share, samples)`` over the batch: with the fused kernels on, each thread takes a
        share of the samples and works through it in blocks of about ``BLOCK_BYTES`` (a block's
        windows side by side and its z stay in the core's cache from the copy to the product,
        and from one product to the next), each product on that thread alone; else (the kernels
        off, or ``blocks`` False) in one go, the whole batch and every thread in each product,
        as the deck writes it. ``rows`` is the (rows, filters) matrix the blocks cut,
        ``per_sample`` rows per sample."""
        n = len(rows) // per_sample
        size = self._block_samples(rows, per_sample, blocks)
        if size == n:
            fn(0, slice(0, n))
            return
        shares = split_evenly(n, num_threads())

        def run(item):
            share = shares[item[1]]
            for start in range(share.start, share.stop, size):
                fn(item[1], slice(start, min(start + size, share.stop)))

        pieces = [(rows[s.start * per_sample : s.stop * per_sample], i) for i, s in
                  enumerate(shares)]  # fmt: skip
        # One BLAS thread per share. MKL's products ask for it themselves (``blas_threads``);
        # NumPy's OpenBLAS must be told: two threads each calling it with two threads of its
        # own made a W5 step 167 ms instead of 15 (GLASSNET_BLAS=numpy, AMD EPYC VM).
        with blas_threads_for(0):
            parallel_map(run, pieces)

    def _as_images(self, a_prev):
        """The input as (batch, H, W, c_in), after checking its shape against the built layer."""
        if a_prev.ndim != self.rank + 2:
            raise ValueError(self._rank_error((None, *a_prev.shape[1:])))
        if a_prev.shape[-1] != self.c_in:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} was built for {self.c_in} input "
                f"channels (its kernel is {(*self.kernel_size, self.c_in, self.filters)}); "
                f"received inputs with {a_prev.shape[-1]} channels, shape {a_prev.shape}."
            )
        return a_prev[:, None] if self.rank == 1 else a_prev  # Conv1D: a height of 1

    # ---- configuration -------------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": list(self.dilation_rate),
            "groups": 1,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.regularizers.get("W")),
            "bias_regularizer": regularizers.serialize(self.regularizers.get("b")),
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        }


class Conv2D(Conv):
    """2-D convolution, as ``keras.layers.Conv2D``: ``filters`` neurons, each seeing a
    ``kernel_size`` window of the image at every position (channels last).

    Args:
        filters: Number of filters: neurons, and feature maps in the output.
        kernel_size: Window size, an int or (kh, kw).
        strides: Step between windows, an int or (sh, sw).
        padding: ``"valid"`` (windows inside the image only) or ``"same"`` (zeros around it
            so that the output is ⌈input/stride⌉ in size).
        dilation_rate: Spacing of the pixels one window reads (not with strides > 1).
        activation: Name or function; ``None`` means linear.
        use_bias, kernel_initializer, bias_initializer: as for ``Dense``.

    >>> import numpy as np
    >>> layer = Conv2D(1, 2, use_bias=False)
    >>> layer.build((None, 3, 3, 1))
    >>> layer.set_weights([np.ones((2, 2, 1, 1))])   # a filter that sums its window
    >>> layer(np.arange(9.0).reshape(1, 3, 3, 1))[0, :, :, 0]
    array([[ 8., 12.],
           [20., 24.]], dtype=float32)
    """

    rank = 2


class Conv1D(Conv):
    """1-D convolution over steps, as ``keras.layers.Conv1D``: inputs (batch, steps, channels).

    The arguments are ``Conv2D``'s, with ints for the sizes; ``padding`` may also be
    ``"causal"`` (zeros only before the start, so that output t sees inputs up to t).
    """

    rank = 1


class Conv3D(Conv):
    """3-D convolution, as ``keras.layers.Conv3D``: inputs (batch, depth, rows, cols, channels),
    a video's frames or a scan's slices. A filter is a neuron that sees a kd × kh × kw window
    through all the channels at every position — z = W·window + b, the deck's neuron, with the
    windows side by side one per row and one product for all of them, as ``Conv2D``.

    The arguments are ``Conv2D``'s, with three entries for the sizes (or one int for all three).
    """

    rank = 3


class ConvTranspose(Conv):
    """Base of ``Conv2DTranspose`` and ``Conv1DTranspose``: a convolution's backward pass used
    forward.

    A convolution sends ∂C/∂z back to its input as ∂C/∂(window) = ∂C/∂z · W, each window's share
    added back where it was read. This layer computes exactly that on its input: each input
    position's c_in numbers, times W, spread over a kh × kw window of the output, the windows
    ``strides`` apart, overlapping windows added — so a small map grows into a larger one (a
    decoder's upsampling). Its own backward pass is then the convolution's forward pass:
    ∂C/∂x = the windows of ∂C/∂z, times Wᵀ; ∂C/∂W = xᵀ · those windows.

    W here has one row per *input* channel, (c_in, kh·kw·filters): the convolution it is the
    backward pass of maps ``filters`` channels to c_in. Keras's kernel (kh, kw, filters, c_in) is
    Wᵀ folded back. The output length along each axis is Keras's: (n − 1)·stride + span with
    "valid" padding, n·stride with "same".
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, **kwargs):  # fmt: skip
        if output_padding is not None:
            raise NotImplementedError(
                f"{type(self).__name__}(output_padding={output_padding!r}) is not supported by "
                "glassnet yet."
            )
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         **kwargs)  # fmt: skip

    def _w_rows(self) -> int:
        return self.c_in

    def _window_channels(self) -> int:
        return self.filters

    def _positions(self) -> tuple:
        return self.input_shape[1:-1]

    def _grown(self, n, axis: int):
        """The output length along ``axis`` for an input of length n (Keras's formula)."""
        if n is None:
            return None
        k, s, d = self.windows.size[axis], self.windows.strides[axis], self.windows.dilation[axis]
        return n * s if self.padding == "same" else (n - 1) * s + d * (k - 1) + 1

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(self._rank_error(input_shape))
        height, width = (1, input_shape[1]) if self.rank == 1 else input_shape[1:3]
        spatial = (self._grown(width, 1),) if self.rank == 1 else (
            self._grown(height, 0), self._grown(width, 1))  # fmt: skip
        return (input_shape[0], *spatial, self.filters)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        x = self._as_images(a_prev)  # (batch, h, w, c_in)
        n, h, w, _ = x.shape
        out_h, out_w = self._grown(h, 0), self._grown(w, 1)
        (oh, ow), pads = self.windows.out_shape(out_h, out_w)  # the convolution's view of it
        if (oh, ow) != (h, w):
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}: an input of {h}×{w} does not give "
                f"a {out_h}×{out_w} output with kernel_size {self.kernel_size} and strides "
                f"{self.strides}."
            )
        (top, bottom), (left, right) = pads
        padded = (n, top + out_h + bottom, left + out_w + right, self.filters)
        c.a_prev, c.pads, c.padded_shape = a_prev, pads, padded
        rows = x.reshape(-1, self.c_in)  # one row per input position
        # Each position's window of the output: (rows, c_in)·(c_in, K) = (rows, K)
        kh, kw = self.windows.size
        d_windows = matmul(rows, self.params["W"]).reshape(n, h, w, kh, kw, self.filters)
        z = self.windows.scatter(d_windows, xp.empty(padded, dtype=d_windows.dtype))
        z = crop(z, pads)  # the windows added where they meet
        flat = xp.ascontiguousarray(z).reshape(-1, self.filters)
        a = add_bias_and_activate(flat, self.params.get("b"), self.activation)
        out_shape = (n, out_w, self.filters) if self.rank == 1 else (n, out_h, out_w, self.filters)
        c.z, c.a = flat.reshape(out_shape), a.reshape(out_shape)
        return c.a

    def backward_from_z(self, dC_dz, cache=None):
        """From ∂C/∂z: the convolution's forward pass on it."""
        c = self.cache_for(cache)
        c.dC_dz = dC_dz = dC_dz.reshape(c.z.shape)
        images = dC_dz[:, None] if self.rank == 1 else dC_dz
        padded = pad(images, c.pads)
        n, h, w = c.padded_shape[0], *self._as_images(c.a_prev).shape[1:3]
        windows = self.windows.view(padded, (h, w))  # (batch, h, w, kh, kw, filters)
        patches = xp.ascontiguousarray(windows).reshape(n * h * w, -1)  # (rows, K)
        if self.use_bias:  # ∂z/∂b = 1 at every output position
            self.grads["b"][...] = dC_dz.reshape(-1, self.filters).sum(axis=0)
        x_rows = self._as_images(c.a_prev).reshape(-1, self.c_in)  # (rows, c_in)
        matmul(x_rows.T, patches, out=self.grads["W"])  # ∂C/∂W = xᵀ · windows of ∂C/∂z
        if not self.needs_input_gradient:
            return None
        return matmul(patches, self.params["W"].T).reshape(c.a_prev.shape)  # windows · Wᵀ

    def get_config(self):
        config = super().get_config()
        config.pop("groups")
        return {**config, "output_padding": None}


class Conv2DTranspose(ConvTranspose):
    """A transposed 2-D convolution, as ``keras.layers.Conv2DTranspose``: the backward pass of a
    ``Conv2D`` used forward (see ``ConvTranspose``). With strides 2 it doubles rows and columns.

    >>> import numpy as np
    >>> layer = Conv2DTranspose(1, 2, strides=2, use_bias=False)
    >>> layer.build((None, 2, 2, 1))
    >>> layer.set_weights([np.ones((2, 2, 1, 1))])   # each pixel spread over a 2×2 block
    >>> layer(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1))[0, :, :, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]], dtype=float32)
    """

    rank = 2


class Conv1DTranspose(ConvTranspose):
    """A transposed 1-D convolution over steps, as ``keras.layers.Conv1DTranspose``."""

    rank = 1


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around each image, as ``keras.layers.ZeroPadding2D``.

    Args:
        padding: An int (the same on all four sides), (rows, cols) (symmetric), or
            ((top, bottom), (left, right)).
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        check_channels_last(data_format, "ZeroPadding2D")
        super().__init__(**kwargs)
        self.padding = side_pairs(padding, "padding", rank=2)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"ZeroPadding2D expects inputs of shape (batch, rows, cols, channels); "
                f"received {format_shape(input_shape)}."
            )
        (top, bottom), (left, right) = self.padding
        n, h, w, c = input_shape
        return (n, None if h is None else h + top + bottom,
                None if w is None else w + left + right, c)  # fmt: skip

    def forward(self, a_prev, training=False, cache=None):
        self.compute_output_shape(a_prev.shape)
        return pad(a_prev, self.padding)

    def backward(self, dC_da, cache=None):
        return crop(dC_da, self.padding)

    def get_config(self):
        return {
            **super().get_config(),
            "padding": [list(p) for p in self.padding],
            "data_format": "channels_last",
        }
