"""Pooling layers: ``MaxPooling1D/2D``, ``AveragePooling1D/2D`` and the global ones.

Pooling has no weights: it summarizes each window of each feature map by one number — its largest
value (max) or its mean (average) — so the maps get smaller while what they found is kept.

Backward, in the deck's terms, the gradient flows only where the forward pass looked: max
pooling's output *is* the largest input of its window, so ∂(output)/∂(input) is 1 for that input
and 0 for the others, and ∂C/∂(output) goes back to the one position that won (the first, when
several tie, as in PyTorch and TensorFlow); average pooling sends each input 1/count of it.

Shapes, channels last: a_prev (batch, H, W, C), a (batch, oh, ow, C); the 1-D layers see
(batch, steps, C) as a height of 1. The loops below run over the offsets inside one window
(ph·pw of them), never over positions or samples.
"""

from __future__ import annotations

from typing import ClassVar

from glassnet import kernels
from glassnet.backend import format_shape, xp
from glassnet.layers.base import Layer
from glassnet.layers.convolutional import (
    Windows,
    check_channels_last,
    check_padding,
    crop,
    int_tuple,
    pad,
    use_kernels,
)

__all__ = [
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "MaxPooling1D",
    "MaxPooling2D",
]


class Pooling(Layer):
    """Base of the windowed pooling layers: ``reduce`` is "max" or "average"."""

    rank: ClassVar[int] = 2
    reduce: ClassVar[str] = "max"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        check_channels_last(data_format, type(self).__name__)
        super().__init__(**kwargs)
        self.pool_size = int_tuple(pool_size, self.rank, "pool_size")
        self.strides = (
            self.pool_size if strides is None else int_tuple(strides, self.rank, "strides")
        )
        self.padding = check_padding(padding)
        one = (1,) * (2 - self.rank)
        self.windows = Windows(one + self.pool_size, one + self.strides, (1, 1), self.padding)

    def _expected(self) -> str:
        return "(batch, steps, channels)" if self.rank == 1 else "(batch, rows, cols, channels)"

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects inputs of shape "
                f"{self._expected()}; received {format_shape(input_shape)}."
            )
        height, width = (1, input_shape[1]) if self.rank == 1 else input_shape[1:3]
        (oh, ow), _ = self.windows.out_shape(height, width)
        spatial = (ow,) if self.rank == 1 else (oh, ow)
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}: its pool {self.pool_size} is larger "
                f"than its input {format_shape(input_shape)}. Use padding='same' or a smaller "
                "pool_size."
            )
        return (input_shape[0], *spatial, input_shape[-1])

    def _offsets(self, out):
        """For each offset (i, j) inside a window, the slices of the padded input that hold
        that offset of every window: view[:, rows, cols, :] is (batch, oh, ow, C)."""
        (oh, ow), (ph, pw), (sh, sw) = out, self.windows.size, self.windows.strides
        for i in range(ph):
            for j in range(pw):
                yield (slice(None), slice(i, i + (oh - 1) * sh + 1, sh),
                       slice(j, j + (ow - 1) * sw + 1, sw), slice(None))  # fmt: skip

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        self.compute_output_shape((None, *a_prev.shape[1:]))
        x = a_prev[:, None] if self.rank == 1 else a_prev  # (batch, H, W, C)
        out, pads = self.windows.out_shape(x.shape[1], x.shape[2])
        c.pads, c.out, c.input_shape = pads, out, a_prev.shape
        if self.reduce == "max":
            x = pad(x, pads, value=-xp.inf)  # padding never wins (TensorFlow's "same")
            a = self._max(x, out, c)
        else:
            x = pad(x, pads)
            a = self._average(x, pads, out, c)
        c.padded_shape = x.shape
        return a.reshape(x.shape[0], *(out[1:] if self.rank == 1 else out), x.shape[3])

    def _max(self, x, out, c):
        """The largest value of each window (batch, oh, ow, C), and in ``c.winner`` which offset
        u·pw + v of the window held it (the first, when several tie)."""
        (ph, pw), (sh, sw) = self.windows.size, self.windows.strides
        shape = (x.shape[0], *out, x.shape[3])
        offsets = xp.uint8 if ph * pw <= 256 else xp.uint16
        if use_kernels(x):  # one pass, the same numbers as the loop below
            a, c.winner = xp.empty(shape, dtype=x.dtype), xp.empty(shape, dtype=offsets)
            kernels.run_split("max_pool", (x, a, c.winner), ph, pw, sh, sw)
            return a
        c.winner = xp.zeros(shape, dtype=offsets)
        a = None
        for k, where in enumerate(self._offsets(out)):
            if a is None:
                a = x[where].copy()  # the first offset, so far the winner everywhere
                continue
            better = x[where] > a  # strictly: a tie stays with the first
            xp.copyto(a, x[where], where=better)
            c.winner[better] = k
        return a

    def _average(self, x, pads, out, c):
        """The mean of each window's inputs that are not padding (batch, oh, ow, C)."""
        a = xp.zeros((x.shape[0], *out, x.shape[3]), dtype=x.dtype)
        for where in self._offsets(out):
            a += x[where]
        c.count = self._count(x.shape, pads, out, x.dtype)
        a /= c.count
        return a

    def _count(self, padded_shape, pads, out, dtype):
        """How many real (not padding) inputs each window holds: (oh, ow, 1)."""
        if not any(sum(p) for p in pads):
            return dtype.type(self.windows.size[0] * self.windows.size[1])
        ones = pad(xp.ones((1, padded_shape[1] - sum(pads[0]),
                            padded_shape[2] - sum(pads[1]), 1), dtype=dtype), pads)  # fmt: skip
        count = xp.zeros((1, *out, 1), dtype=dtype)
        for where in self._offsets(out):
            count += ones[where]
        return count[0]

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        n, (oh, ow), C = dC_da.shape[0], c.out, dC_da.shape[-1]
        d = dC_da.reshape(n, oh, ow, C)
        if self.reduce == "max" and use_kernels(d):
            dx = xp.empty(c.padded_shape, dtype=dC_da.dtype)
            (ph, pw), (sh, sw) = self.windows.size, self.windows.strides
            kernels.run_split("max_pool_backward", (d, c.winner, dx), ph, pw, sh, sw)
            return crop(dx, c.pads).reshape(c.input_shape)
        dx = xp.zeros(c.padded_shape, dtype=dC_da.dtype)
        if self.reduce == "max":
            for k, where in enumerate(self._offsets(c.out)):
                dx[where] += d * (c.winner == k)  # only the winner of each window
        else:
            share = d / c.count  # each input of a window gets 1/count of its gradient
            for where in self._offsets(c.out):
                dx[where] += share
        return crop(dx, c.pads).reshape(c.input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "padding": self.padding,
            "strides": list(self.strides),
            "data_format": "channels_last",
        }


class MaxPooling2D(Pooling):
    """The largest value of each ``pool_size`` window, as ``keras.layers.MaxPooling2D``.

    >>> import numpy as np
    >>> MaxPooling2D()(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling2D(Pooling):
    """The mean of each ``pool_size`` window, as ``keras.layers.AveragePooling2D``; with
    ``padding="same"`` the windows at the edge average only the inputs they cover."""

    reduce = "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class MaxPooling1D(Pooling):
    """The largest value of each window of ``pool_size`` steps; inputs (batch, steps, C)."""

    rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling1D(Pooling):
    """The mean of each window of ``pool_size`` steps; inputs (batch, steps, C)."""

    rank = 1
    reduce = "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class GlobalPooling(Layer):
    """Base of the global pooling layers: one number per feature map (all positions at once)."""

    rank: ClassVar[int] = 2
    reduce: ClassVar[str] = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        check_channels_last(data_format, type(self).__name__)
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != self.rank + 2:
            expected = "(batch, steps, channels)" if self.rank == 1 else (
                "(batch, rows, cols, channels)")  # fmt: skip
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects inputs of shape {expected}; "
                f"received {format_shape(input_shape)}."
            )
        if self.keepdims:
            return (input_shape[0], *(1,) * self.rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        self.compute_output_shape(a_prev.shape)
        c.input_shape = a_prev.shape
        flat = a_prev.reshape(a_prev.shape[0], -1, a_prev.shape[-1])  # (batch, positions, C)
        if self.reduce == "max":
            c.winner = flat.argmax(axis=1)[:, None, :]  # (batch, 1, C): the first largest
            a = xp.take_along_axis(flat, c.winner, axis=1)[:, 0, :]
        else:
            a = flat.mean(axis=1)
        return a.reshape(self.compute_output_shape(a_prev.shape))  # (batch, C), or keepdims

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        n, C = c.input_shape[0], c.input_shape[-1]
        d = dC_da.reshape(n, 1, C)
        positions = int(xp.prod(c.input_shape[1:-1]))
        if self.reduce == "max":
            dx = xp.zeros((n, positions, C), dtype=dC_da.dtype)
            xp.put_along_axis(dx, c.winner, d, axis=1)  # all of it to the winner
        else:
            dx = xp.broadcast_to(d / dC_da.dtype.type(positions), (n, positions, C)).copy()
        return dx.reshape(c.input_shape)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


class GlobalMaxPooling2D(GlobalPooling):
    """The largest value of each feature map: (batch, H, W, C) → (batch, C)."""


class GlobalAveragePooling2D(GlobalPooling):
    """The mean of each feature map: (batch, H, W, C) → (batch, C)."""

    reduce = "average"


class GlobalMaxPooling1D(GlobalPooling):
    """The largest value of each channel over the steps: (batch, steps, C) → (batch, C)."""

    rank = 1


class GlobalAveragePooling1D(GlobalPooling):
    """The mean of each channel over the steps: (batch, steps, C) → (batch, C)."""

    rank = 1
    reduce = "average"
