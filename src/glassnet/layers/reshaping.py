"""Layers that move numbers without computing new ones: ``RepeatVector``, ``UpSampling1D/2D`` and
``Cropping1D/2D``, as ``keras.layers``.

No neuron here: each output is a copy of one input. So backward is bookkeeping too — every input
gets the sum of ∂C/∂a over the outputs copied from it (a vector repeated n times gets the sum of
n gradients, as a tensor read twice does in the deck's recursion), and a cropped-away input gets 0.

Shapes: RepeatVector (batch, d) → (batch, n, d); the 1-D layers (batch, steps, channels); the 2-D
layers (batch, rows, cols, channels), channels last.

>>> import numpy as np
>>> RepeatVector(3)(np.array([[1.0, 2.0]]))[0]
array([[1., 2.],
       [1., 2.],
       [1., 2.]], dtype=float32)
>>> UpSampling1D(2)(np.array([[[1.0], [2.0]]]))[0, :, 0]
array([1., 1., 2., 2.], dtype=float32)
"""

from __future__ import annotations

import numbers

from glassnet.backend import format_shape, xp
from glassnet.layers.base import Layer
from glassnet.layers.convolutional import check_channels_last, crop, int_tuple, pad, side_pairs

__all__ = ["Cropping1D", "Cropping2D", "RepeatVector", "UpSampling1D", "UpSampling2D"]


def _check_rank(layer: Layer, input_shape, rank: int, axes: str) -> None:
    if len(input_shape) != rank:
        raise ValueError(
            f"{type(layer).__name__} expects inputs of shape {axes}; received "
            f"{format_shape(input_shape)}."
        )


def _times(d, k):
    return None if d is None else d * k


class RepeatVector(Layer):
    """Repeats each sample's vector ``n`` times: (batch, d) → (batch, n, d).

    Backward: ∂C/∂x = Σ over the n copies of ∂C/∂a, (batch, d).
    """

    def __init__(self, n, **kwargs):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"Received n={n!r}. Expected a positive integer: how many copies.")
        super().__init__(**kwargs)
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape, 2, "(batch, features)")
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, a_prev, training=False, cache=None):
        self.compute_output_shape(a_prev.shape)
        return xp.repeat(a_prev[:, None, :], self.n, axis=1)

    def backward(self, dC_da, cache=None):
        return dC_da.sum(axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class UpSampling1D(Layer):
    """Repeats each step ``size`` times along the steps: (batch, t, c) → (batch, t·size, c).

    Backward: each step gets the sum of ∂C/∂a over its ``size`` copies.
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        (self.size,) = int_tuple(size, 1, "size")

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape, 3, "(batch, steps, channels)")
        n, t, c = input_shape
        return (n, _times(t, self.size), c)

    def forward(self, a_prev, training=False, cache=None):
        self.compute_output_shape(a_prev.shape)
        return xp.repeat(a_prev, self.size, axis=1)

    def backward(self, dC_da, cache=None):
        n, t, c = dC_da.shape
        return dC_da.reshape(n, t // self.size, self.size, c).sum(axis=2)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(Layer):
    """Repeats each row ``size[0]`` times and each column ``size[1]`` times (nearest-neighbour
    upsampling): (batch, h, w, c) → (batch, h·sh, w·sw, c).

    Backward: each pixel gets the sum of ∂C/∂a over its sh × sw block of copies — the backward
    pass of an sh × sw sum pooling.
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        check_channels_last(data_format, "UpSampling2D")
        if interpolation != "nearest":
            raise NotImplementedError(
                f"UpSampling2D(interpolation={interpolation!r}) is not supported by glassnet "
                "yet; 'nearest' (Keras's default) is."
            )
        super().__init__(**kwargs)
        self.size = int_tuple(size, 2, "size")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape, 4, "(batch, rows, cols, channels)")
        n, h, w, c = input_shape
        return (n, _times(h, self.size[0]), _times(w, self.size[1]), c)

    def forward(self, a_prev, training=False, cache=None):
        self.compute_output_shape(a_prev.shape)
        sh, sw = self.size
        return xp.repeat(xp.repeat(a_prev, sh, axis=1), sw, axis=2)

    def backward(self, dC_da, cache=None):
        n, h, w, c = dC_da.shape
        sh, sw = self.size
        return dC_da.reshape(n, h // sh, sh, w // sw, sw, c).sum(axis=(2, 4))

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "data_format": "channels_last",
            "interpolation": self.interpolation,
        }


class Cropping2D(Layer):
    """Cuts rows and columns off each image's edges: ((top, bottom), (left, right)).

    Backward: the gradient in the middle, zeros where the edges were cut (those inputs did not
    reach C).
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        check_channels_last(data_format, type(self).__name__)
        super().__init__(**kwargs)
        self.cropping = side_pairs(cropping, "cropping", rank=2)

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape, 4, "(batch, rows, cols, channels)")
        n, h, w, c = input_shape
        kept = [None if d is None else d - a - b for d, (a, b) in zip((h, w), self.cropping)]
        if any(k is not None and k <= 0 for k in kept):
            raise ValueError(
                f"{type(self).__name__}(cropping={[list(p) for p in self.cropping]}) cuts "
                f"everything off inputs of shape {format_shape(input_shape)}."
            )
        return (n, *kept, c)

    def forward(self, a_prev, training=False, cache=None):
        self.compute_output_shape(a_prev.shape)
        return crop(a_prev, self.cropping)

    def backward(self, dC_da, cache=None):
        return pad(dC_da, self.cropping)

    def get_config(self):
        return {
            **super().get_config(),
            "cropping": [list(p) for p in self.cropping],
            "data_format": "channels_last",
        }


class Cropping1D(Layer):
    """Cuts steps off each sequence's ends: (left, right), or one int for both.

    Backward: the gradient of the kept steps, zeros for the cut ones.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        (self.cropping,) = side_pairs(cropping, "cropping", rank=1)

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape, 3, "(batch, steps, channels)")
        n, t, c = input_shape
        kept = None if t is None else t - sum(self.cropping)
        if kept is not None and kept <= 0:
            raise ValueError(
                f"Cropping1D(cropping={list(self.cropping)}) cuts every step off inputs of "
                f"shape {format_shape(input_shape)}."
            )
        return (n, kept, c)

    def forward(self, a_prev, training=False, cache=None):
        self.compute_output_shape(a_prev.shape)
        return crop(a_prev[:, None], ((0, 0), self.cropping))[:, 0]  # 2-D, of height 1

    def backward(self, dC_da, cache=None):
        return pad(dC_da[:, None], ((0, 0), self.cropping))[:, 0]

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}
