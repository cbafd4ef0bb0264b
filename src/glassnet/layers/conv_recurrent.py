"""Convolutional LSTMs: ``ConvLSTM1D``, ``ConvLSTM2D`` and ``ConvLSTM3D`` — the deck's CNN neuron
and its RNN neuron in one.

An LSTM's neurons see the whole input of a step and the whole of h_{t−1}; a convolutional LSTM's
see one window of each, at every position of a feature map, with the same weights everywhere. At
every step t and every position p:

    z_t,p = W_x·(window of x_t at p) + W_h·(window of h_{t−1} at p) + b

holding the four gates i, f, c, o side by side as an LSTM's z does, and then exactly the LSTM's
step: i, f, o = σ(z), g = tanh(z), c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t) — at each
position. So this *is* ``LSTM``, whose rows are not the batch's samples but every position of
every sample (batch·oh·ow of them), and whose inputs at each step are windows:

- what W_x multiplies at step t is the matrix of x_t's windows, one window per row, as a
  convolution lays them out (``layers.convolutional``): every step's at once, one product;
- what W_h multiplies is the matrix of h_{t−1}'s windows (``padding="same"``, stride 1, as
  Keras's recurrent convolution), one product a step;
- backward, the LSTM's recursion through time runs unchanged on the rows; only at the two
  products the rows become windows again: ∂C/∂x_t and ∂C/∂h_{t−1} are each window's share
  (∂C/∂z·W) added back where it was read, as a convolution's backward pass does it.

Shapes, channels last: x (batch, T, rows, cols, c_in) for ``ConvLSTM2D``, (batch, T, steps, c_in)
for ``ConvLSTM1D`` (a height of 1, as ``Conv1D``); W_x (4F, kh·kw·c_in), W_h (4F, kh·kw·F), b (4F,)
for F = ``filters``. Keras's kernel (kh, kw, c_in, 4F) and recurrent_kernel (kh, kw, F, 4F) are
W_xᵀ and W_hᵀ folded back, in ``to_keras``/``from_keras`` only.
"""

from __future__ import annotations

import math
from typing import ClassVar

from glassnet.backend import format_shape, xp
from glassnet.layers.base import Layer
from glassnet.layers.convolutional import (
    AXES,
    Windows,
    check_channels_last,
    check_padding,
    crop,
    int_tuple,
    output_size,
    pad,
)
from glassnet.layers.recurrent import LSTM

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]


class ConvLSTM(LSTM):
    """Base of ``ConvLSTM1D`` and ``ConvLSTM2D``: an ``LSTM`` at every position of a feature
    map, its two products convolutions."""

    rank: ClassVar[int] = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, **kwargs):  # fmt: skip
        kind = type(self).__name__
        check_channels_last(data_format, kind)
        super().__init__(filters, **kwargs)
        self.filters = self.units  # the LSTM's units: one per filter, at every position
        self.kernel_size = int_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = int_tuple(strides, self.rank, "strides")
        self.dilation_rate = int_tuple(dilation_rate, self.rank, "dilation_rate")
        self.padding = check_padding(padding)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        one = (1,) * (2 - self.rank)  # ConvLSTM1D: windows 1 × k on a height of 1
        self.windows = Windows(one + self.kernel_size, one + self.strides,
                               one + self.dilation_rate, self.padding)  # fmt: skip
        ones = (1,) * len(self.windows.size)  # h's windows: stride 1, "same", as Keras's
        self.recurrent_windows = Windows(one + self.kernel_size, ones, ones, "same")

    keras_cell = "conv_lstm_cell"

    # ---- shapes --------------------------------------------------------------------------------

    def _expected(self) -> str:
        return f"(batch, time, {AXES[self.rank]}, channels)"

    def _rank_error(self, shape) -> str:
        return (
            f"{type(self).__name__} layer {self.name!r} expects inputs of shape "
            f"{self._expected()}; received {format_shape(shape)}."
        )

    def _spatial_out(self, spatial):
        """The feature map's size (rows, cols) (ConvLSTM1D: (steps,)) for frames of ``spatial``."""
        w = self.windows
        size = (1, *spatial) if self.rank == 1 else tuple(spatial)
        out = tuple(None if n is None else output_size(n, k, s, d, self.padding)[0]
                    for n, k, s, d in zip(size, w.size, w.strides, w.dilation))  # fmt: skip
        return out[1:] if self.rank == 1 else out

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 3:
            raise ValueError(self._rank_error(input_shape))
        spatial = self._spatial_out(input_shape[2:-1])
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}: its window {self.kernel_size} "
                f"(dilation_rate {self.dilation_rate}) is larger than its {self.padding}-padded "
                f"frames {format_shape(input_shape[2:-1])}, so there is no position to put it. "
                "Use a smaller kernel, padding='same', or larger frames."
            )
        frame = (input_shape[0], *spatial, self.filters)
        out = (input_shape[0], input_shape[1], *spatial, self.filters) if (
            self.return_sequences) else frame  # fmt: skip
        return [out, frame, frame] if self.return_state else out

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 3:
            raise ValueError(self._rank_error(input_shape))
        c_in = input_shape[-1]
        if c_in is None:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} needs to know its number of input "
                f"channels; received inputs of shape {format_shape(input_shape)}."
            )
        self.compute_output_shape(input_shape)  # refuses a window larger than its frames
        window = int(xp.prod(self.kernel_size))
        rows = 4 * self.filters  # one row per filter and gate
        self.add_weight((rows, window * c_in), self.kernel_initializer, name="W_x")
        self.add_weight((rows, window * self.filters), self.recurrent_initializer, name="W_h")
        if self.use_bias:
            self.add_weight((rows,), self.bias_initializer, name="b")
            if self.unit_forget_bias:
                self.params["b"][self.filters : 2 * self.filters] += 1
        Layer.build(self, input_shape)  # the weights are a convolution's, not LSTM's (batch, n_in)

    def _check_state_shape(self, k: int, shape) -> None:
        if len(shape) != self.rank + 2 or shape[-1] != self.filters:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}: initial_state[{k}] must have shape "
                f"(batch, {AXES[self.rank]}, {self.filters}); received "
                f"{format_shape(tuple(shape))}."
            )

    def largest_product(self, batch_size: int) -> float:
        """The inputs' windows of every step times W_x, or one step's h windows times W_h."""
        steps = self.input_shape[1] or 1
        spatial = self._spatial_out(self.input_shape[2:-1])
        rows = batch_size * int(xp.prod([s or 1 for s in spatial]))
        return 2.0 * rows * max(self.params["W_h"].size, steps * self.params["W_x"].size)

    # ---- Keras's layout: kernel (*kernel_size, c_in, 4F) = W_xᵀ folded; recurrent_kernel too --

    def to_keras(self, name, array):
        if name in ("W_x", "W_h"):
            return array.T.reshape(*self.kernel_size, -1, array.shape[0])
        return array

    def from_keras(self, name, array):
        if name in ("W_x", "W_h"):
            return array.reshape(-1, array.shape[-1]).T
        return array

    # ---- the rows are positions: windows in, feature maps out ----------------------------------

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        x = a_prev[0] if isinstance(a_prev, (list, tuple)) else a_prev
        self._check_input(x)
        frames = (1, *x.shape[2:-1]) if self.rank == 1 else x.shape[2:-1]
        out, c.pads = self.windows.out_shape(*frames)
        c.grid = self._grid = (x.shape[0], *out)  # the rows: batch × oh × ow positions
        _, c.rec_pads = self.recurrent_windows.out_shape(*out)
        return super().forward(a_prev, training=training, cache=cache)

    def backward(self, dC_da, cache=None):
        self._grid = self.cache_for(cache).grid
        return super().backward(dC_da, cache=cache)

    def _fused(self, c, dtype) -> bool:
        return False  # the fused kernels multiply h_{t−1} itself, not its windows

    def _check_input(self, a_prev) -> None:
        if a_prev.ndim != self.rank + 3:
            raise ValueError(self._rank_error((None, *a_prev.shape[1:])))
        c_in = self.params["W_x"].shape[1] // int(xp.prod(self.kernel_size))
        if a_prev.shape[-1] != c_in:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} was built for {c_in} input channels "
                f"(its kernel is {(*self.kernel_size, c_in, 4 * self.filters)}); received "
                f"inputs with {a_prev.shape[-1]} channels, shape {a_prev.shape}."
            )

    def _rows(self, a_prev) -> int:
        n, *out = self._grid
        return n * math.prod(out)

    def _mask_rows(self, mask):
        """The mask (batch, T) row by row: each sample's for every one of its positions."""
        _, *out = self._grid
        return xp.repeat(mask, math.prod(out), axis=0)

    def _frames(self, x):
        """x (batch, T, …, c_in) as images, time first: (T·batch, H, W, c_in)."""
        n, T = x.shape[:2]
        images = xp.moveaxis(x, 1, 0).reshape(T * n, *x.shape[2:])
        return images[:, None] if self.rank == 1 else images

    def _step_inputs(self, x, out, c) -> None:
        """Every step's windows of x_t, one row per position: (T, batch·oh·ow, kh·kw·c_in)."""
        (n, *grid), T = self._grid, x.shape[1]
        images = pad(self._frames(x), c.pads)
        c.padded_shape, c.frames_shape = images.shape, x.shape
        windows = self.windows.view(images, grid)  # (T·batch, oh, ow, kh, kw, c_in)
        xp.copyto(out, windows.reshape(T, n * math.prod(grid), -1))

    def _step_inputs_backward(self, d_rows, c):
        """∂C/∂x: each window's ∂C/∂(window) added back where it was read, every step."""
        n, *grid = self._grid
        T, c_in = d_rows.shape[0], c.padded_shape[-1]
        d_windows = d_rows.reshape(T * n, *grid, *self.windows.size, c_in)
        dx = xp.empty(c.padded_shape, dtype=d_windows.dtype)  # (T·batch, H, W, c)
        dx = crop(self.windows.scatter(d_windows, dx), c.pads)
        dx = dx.reshape(T, n, *c.frames_shape[2:])
        return xp.moveaxis(dx, 0, 1)

    def _recurrent_input(self, h_prev, h_drop):
        """What W_h multiplies: the windows of h_{t−1} (dropped out as Keras drops it), one row
        per position, (batch·oh·ow, kh·kw·F)."""
        n, *grid = self._grid
        h = super()._recurrent_input(h_prev, h_drop).reshape(n, *grid, self.filters)
        _, pads = self.recurrent_windows.out_shape(*grid)
        windows = self.recurrent_windows.view(pad(h, pads), grid)
        return windows.reshape(n * math.prod(grid), -1)  # a copy: the windows overlap

    def _recurrent_input_backward(self, d_h_in, h_drop):
        """∂C/∂h_{t−1}: each window's share added back where it was read, then the dropout."""
        n, *grid = self._grid
        F = self.filters
        _, pads = self.recurrent_windows.out_shape(*grid)
        padded = (n, *(o + before + after for o, (before, after) in zip(grid, pads)), F)
        d_windows = d_h_in.reshape(n, *grid, *self.recurrent_windows.size, F)
        dh = self.recurrent_windows.scatter(d_windows, xp.empty(padded, dtype=d_windows.dtype))
        dh = crop(dh, pads)
        return super()._recurrent_input_backward(dh.reshape(n * math.prod(grid), F), h_drop)

    def _output(self, rows):
        """Rows (batch·oh·ow, [T,] F) as feature maps: (batch, [T,] oh, ow, F)."""
        n, *grid = self._grid
        spatial = grid[1:] if self.rank == 1 else grid
        maps = rows.reshape(n, *spatial, *rows.shape[1:])
        return xp.moveaxis(maps, self.rank + 1, 1) if rows.ndim == 3 else maps

    def _state_rows(self, state):
        """The inverse of ``_output``: feature maps (batch, [T,] …, F) as rows."""
        n, *grid = self._grid
        positions = n * math.prod(grid)
        if state.ndim == self.rank + 3:  # a sequence: time to the back of the positions
            return xp.moveaxis(state, 1, self.rank + 1).reshape(positions, -1, self.filters)
        return state.reshape(positions, self.filters)

    # ---- configuration -------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        del config["units"]
        return {
            **config,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": list(self.dilation_rate),
        }


class ConvLSTM2D(ConvLSTM):
    """2-D convolutional LSTM, as ``keras.layers.ConvLSTM2D``: a sequence of images in
    (batch, time, rows, cols, channels), each gate a ``Conv2D`` of x_t plus a ``Conv2D`` of
    h_{t−1}.

    Args:
        filters: Feature maps in h (and in c): the LSTM's units, at every position.
        kernel_size, strides, padding, dilation_rate: the input convolution's, as ``Conv2D``'s;
            the recurrent one is ``padding="same"``, stride 1, so h keeps its size.
        activation, recurrent_activation, use_bias, unit_forget_bias, initializers, dropout,
        recurrent_dropout, return_sequences, return_state, go_backwards: as ``LSTM``'s.
    """

    rank = 2


class ConvLSTM3D(ConvLSTM):
    """3-D convolutional LSTM, as ``keras.layers.ConvLSTM3D``: a sequence of volumes in
    (batch, time, depth, rows, cols, channels), each gate a ``Conv3D`` of x_t plus a ``Conv3D``
    of h_{t−1}; the arguments are ``ConvLSTM2D``'s, with three entries for the sizes.
    """

    rank = 3


class ConvLSTM1D(ConvLSTM):
    """1-D convolutional LSTM, as ``keras.layers.ConvLSTM1D``: a sequence of series in
    (batch, time, steps, channels); the arguments are ``ConvLSTM2D``'s, with ints for the sizes.
    """

    rank = 1
