"""Recurrent layers: ``SimpleRNN``, ``LSTM`` and ``GRU`` — the deck's neuron used again at every
time step, with the same weights.

A recurrent layer reads a sequence x_1 … x_T a step at a time and keeps a state h. At each step its
neurons see the step's input and their own previous output:

    z_t = W_x·x_t + W_h·h_{t−1} + b,    h_t = σ(z_t)          (SimpleRNN)

with one row of W_x and of W_h per unit, as a Dense layer's W has one row per neuron. The inputs'
share, W_x·x_t + b, is one matrix product for every step at once; only W_h·h_{t−1} waits for the
step before. LSTM and GRU compute several such z at once — their gates — stacked in W's rows.

The forward pass keeps every step's values (the deck: the forward pass stores the outputs).
Backpropagation through time is the deck's case 2 run back along the steps as well as down the
layers:

    ∂C/∂h_t = (what the output at t sends back) + W_hᵀ·∂C/∂z_{t+1},   for t = T, T−1, …, 1,

and each weight's gradient is the sum over the steps of ∂C/∂z_t times what it multiplied.

``return_state=True`` also returns the final state (h; an LSTM's c too), and
``layer(x, initial_state=[h0])`` starts from a given state instead of zeros — an encoder's final
state, say. Backward, what reads the final state adds to ∂C/∂h_T before the recursion starts, and
the recursion's last ∂C/∂h_0 is the gradient sent back to the initial state.

Shapes, batch first as in Keras: x (batch, T, n_in); W_x (G·u, n_in); W_h (G·u, u); b (G·u,),
for GRU (2, 3u): the inputs' bias and the recurrent one; h_t (batch, u); z_t (batch, G·u), with
G = 1 (SimpleRNN), 4 (LSTM: gates i, f, c, o) or 3 (GRU: z, r, h). Keras's ``kernel`` is W_xᵀ
and its ``recurrent_kernel`` W_hᵀ: they appear only at the weights and file boundary.
"""

from __future__ import annotations

import numbers
from types import SimpleNamespace
from typing import ClassVar

from glassnet import activations, initializers, kernels, regularizers
from glassnet.backend import (
    blas_threads_for,
    make_rng,
    num_threads,
    parallel_map,
    snake_case,
    split_evenly,
    unique_name,
    xp,
)
from glassnet.kernels import matmul
from glassnet.layers.base import (
    KerasTensor,
    Layer,
    Variable,
    _symbolic,
    format_shape,
    refuse_unsupported,
    workspace,
)

__all__ = [
    "GRU",
    "LSTM",
    "Cell",
    "GRUCell",
    "LSTMCell",
    "Recurrent",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
]


class Recurrent(Layer):
    """Base of the recurrent layers: the loop over time, forward and back; each subclass writes
    one step (``step``: it writes the step's z into ``s.z``, the slot it is given, and keeps in
    ``s`` what its backward pass reads) and, right under it, that step's backward pass
    (``step_backward``: from
    ∂C/∂(state at t) to ∂C/∂z_t — its inputs' share and its recurrent share, which differ only in
    a GRU — and ∂C/∂(state at t − 1))."""

    gates: ClassVar[int] = 1
    _keras_transposed = ("W_x", "W_h")
    _keras_names: ClassVar[dict[str, str]] = {
        "W_x": "kernel",
        "W_h": "recurrent_kernel",
        "b": "bias",
    }

    # Keras's recurrent arguments, each checked or refused by name (regularizers, constraints,
    # stateful): the length is the list of them.
    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        kind = type(self).__name__
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(
                "Received an invalid value for argument `units`, expected a positive integer, "
                f"got {units!r}."
            )
        refuse_unsupported(
            kind,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
        )
        if stateful:
            raise NotImplementedError(
                f"{kind}(stateful=True) is not supported by glassnet yet: every batch starts "
                "from a zero state, or from the initial_state it is given."
            )
        for arg, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
                raise ValueError(f"Received {arg}={value!r}. Expected a float in [0, 1).")
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.regularize(W_x=kernel_regularizer, W_h=recurrent_regularizer, b=bias_regularizer)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed, self._rng = seed, make_rng(seed)
        self.return_sequences, self.go_backwards = bool(return_sequences), bool(go_backwards)
        self.return_state = bool(return_state)  # also return the final state(s): h (and c)
        self.unroll = bool(unroll)  # accepted for Keras's sake: the loop is the same either way
        self.zero_output_for_mask = bool(zero_output_for_mask)  # kept for the config

    @property
    def keras_cell(self) -> str | None:
        """Keras's name for the cell that holds this layer's variables (``lstm_cell``, …); None
        inside ``RNN(StackedRNNCells)``, whose cells Keras keeps under their own paths."""
        return None if self._in_stack else f"{snake_case(type(self).__name__)}_cell"

    _in_stack = False

    @property
    def kernel(self) -> Variable:
        return Variable(self, "W_x")

    @property
    def recurrent_kernel(self) -> Variable:
        return Variable(self, "W_h")

    @property
    def bias(self) -> Variable | None:
        return Variable(self, "b") if "b" in self.params else None

    # ---- building ------------------------------------------------------------------------------

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(self._rank_error(input_shape))
        n_in = input_shape[-1]
        if n_in is None:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} needs the number of features per "
                f"step; received inputs of shape {format_shape(input_shape)}."
            )
        rows = self.gates * self.units  # one row per unit and gate
        self.add_weight((rows, n_in), self.kernel_initializer, name="W_x")
        self.add_weight((rows, self.units), self.recurrent_initializer, name="W_h")
        if self.use_bias:
            self.add_weight(self._bias_shape(), self.bias_initializer, name="b")
        super().build(input_shape)

    def largest_product(self, batch_size: int) -> float:
        """The recurrent product W_h·h_{t−1}, or the inputs' share of every step at once."""
        steps = self.input_shape[1] or 1
        return 2.0 * batch_size * max(self.params["W_h"].size, steps * self.params["W_x"].size)

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _rank_error(self, shape) -> str:
        message = (
            f"{type(self).__name__} layer {self.name!r} expects inputs of shape "
            f"(batch, steps, features); received {format_shape(shape)}."
        )
        if len(shape) == 2:
            message += (
                " A batch of single sequences of numbers needs a feature axis: x[..., None]; "
                "word ids go through an Embedding layer first."
            )
        return message

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(self._rank_error(tuple(input_shape)))
        if self.return_sequences:
            out = (input_shape[0], input_shape[1], self.units)
        else:
            out = (input_shape[0], self.units)
        if self.return_state:  # the output, then each final state (h; an LSTM's c too)
            return [out] + [(input_shape[0], self.units)] * self._state_count
        return out

    # ---- calls with an initial state -----------------------------------------------------------

    def __call__(self, inputs, training: bool = False, initial_state=None, mask=None):
        """As Keras's RNN call: ``layer(x)``, or ``layer(x, initial_state=[h0])`` (an LSTM:
        ``[h0, c0]``) to start from a state other than zeros — an encoder's final state, say.
        ``mask`` (batch, steps), on arrays or inside a ``call``: the steps to skip."""
        if mask is not None and _symbolic(inputs):
            raise NotImplementedError(
                f"In the functional API, {type(self).__name__} takes its mask from the layers "
                "before it (Embedding with mask_zero=True, Masking), not as an argument."
            )
        if initial_state is None:
            return super().__call__(inputs, training=training, mask=mask)
        many = isinstance(initial_state, (list, tuple))
        states = list(initial_state) if many else [initial_state]
        if len(states) != self._state_count:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} carries {self._state_count} "
                f"state{'s' if self._state_count > 1 else ''} ("
                f"{'h and c' if self._state_count == 2 else 'h'}); initial_state has "
                f"{len(states)}."
            )
        if _symbolic([inputs, *states]):
            for k, t in enumerate(states):
                if isinstance(t, KerasTensor):
                    self._check_state_shape(k, t.shape)
            return self._call_symbolic(inputs, states)
        xs = [xp.asarray(a, dtype=self.compute_dtype) for a in (inputs, *states)]
        if not self.built:
            self.build((None, *xs[0].shape[1:]))
        self.input_mask = None if mask is None else xp.asarray(mask, dtype=bool)
        return self.forward(xs, training=training)

    def _check_state_shape(self, k: int, shape) -> None:
        if len(shape) != 2 or shape[-1] != self.units:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}: initial_state[{k}] must have shape "
                f"(batch, {self.units}); received {format_shape(tuple(shape))}."
            )

    # ---- the loop over time --------------------------------------------------------------------

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        initial = None
        if isinstance(a_prev, (list, tuple)):  # called with an initial state
            a_prev, initial = a_prev[0], list(a_prev[1:])
            for k, h0 in enumerate(initial):
                self._check_state_shape(k, (None, *h0.shape[1:]))
        c.initial = initial is not None
        self._check_input(a_prev)
        W_x = self.params["W_x"]
        T, n_in = a_prev.shape[1], W_x.shape[1]
        x = a_prev[:, ::-1] if self.go_backwards else a_prev  # go_backwards: from the last step
        c.a_prev = a_prev
        rows = self._rows(a_prev)  # the batch's rows, each a unit's neighbours: n (n·positions)
        # Dropout as Keras has it: one mask per sequence, the same at every step.
        c.x_drop, c.h_drop = (
            self._dropout_mask(shape, x.dtype, rate) if training and rate else None
            for shape, rate in (((x.shape[0], 1, *x.shape[2:]), self.dropout),
                                ((rows, self.units), self.recurrent_dropout))
        )  # fmt: skip
        keep = not getattr(c, "inference_only", False)  # a prediction keeps no step's values
        # Masked steps (padding, from Embedding(mask_zero=True) or Masking) change nothing:
        # the state goes through them as it was.
        mask = getattr(c, "input_mask", None)
        c.real = (
            None if mask is None else self._mask_rows(mask[:, ::-1] if self.go_backwards else mask)
        )
        # Time first from here on, so that each step's rows lie together: (T, rows, n_in), and
        # with a bias, a last input that is always 1, whose weight is b: (T, rows, n_in + 1)
        c.x_steps = self._steps_array(c, (T, rows, n_in + self.use_bias), x.dtype, keep)
        self._step_inputs(x if c.x_drop is None else x * c.x_drop, c.x_steps[..., :n_in], c)
        W = W_x
        if self.use_bias:
            c.x_steps[..., n_in] = 1
            W = xp.concatenate([W_x, self._input_bias()[:, None]], axis=1)  # (G·u, n_in + 1)
        c.W_in = W
        zx = c.zx = self._input_share(c, keep)  # (T, rows, G·u), or None: made step by step
        state = (
            [xp.zeros((rows, self.units), dtype=x.dtype) for _ in range(self._state_count)]
            if initial is None
            else [self._state_rows(xp.asarray(h0, dtype=x.dtype)) for h0 in initial]
        )
        hs, state = self._forward_steps(zx, state, c, keep)
        c.a = self._output(hs if self.return_sequences else hs[:, -1])
        if self.return_state:  # the final state: what the last real step left
            return [c.a, *(self._output(s) for s in state)]
        return c.a

    def _steps_array(self, c, shape, dtype, keep):
        """The array of what W_x (and b) multiply at each step, (T, rows, n_in + 1)."""
        c.hx = None  # (an LSTM's fused training keeps h_{t−1} beside x_t, in one array)
        return workspace(c, "x_steps", shape, dtype)

    def _input_share(self, c, keep):
        """The inputs' share of every step's z at once: (T·rows, n_in + 1)·(n_in + 1, G·u),
        as (T, rows, G·u)."""
        T, rows, _ = c.x_steps.shape
        zx = workspace(c, "zx", (T, rows, c.W_in.shape[0]), c.x_steps.dtype)
        matmul(c.x_steps.reshape(T * rows, -1), c.W_in.T, out=zx.reshape(T * rows, -1))
        return zx

    # The input's shape and its layout in rows: for a Dense-like recurrence, (batch, T, n_in),
    # a row per sample; a convolutional one (ConvLSTM) overrides these with a row per position.

    def _check_input(self, a_prev) -> None:
        if a_prev.ndim != 3:
            raise ValueError(self._rank_error((None, *a_prev.shape[1:])))
        n_in = self.params["W_x"].shape[1]
        if a_prev.shape[-1] != n_in:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} was built for {n_in} features per "
                f"step; received inputs of shape {a_prev.shape}."
            )

    def _rows(self, a_prev) -> int:
        """The rows W_x and W_h multiply at each step: one per sample."""
        return a_prev.shape[0]

    def _mask_rows(self, mask):
        """The mask (batch, T) row by row: here a row is a sample."""
        return mask

    def _step_inputs(self, x, out, c) -> None:
        """Writes what W_x multiplies at every step into ``out`` (T, rows, n_in): x, time first."""
        out[...] = x.transpose(1, 0, 2)

    def _step_inputs_backward(self, d_rows, c):
        """∂C/∂x (batch, T, n_in) from ∂C/∂(what W_x multiplied) (T, rows, n_in)."""
        return d_rows.transpose(1, 0, 2)

    def _output(self, rows):
        """An output or a final state in the layer's shape, from its rows (rows, [T,] u)."""
        return rows

    def _state_rows(self, state):
        """The inverse of ``_output`` for a state, or a gradient of one: its rows."""
        return state

    def _forward_steps(self, zx, state, c, keep):
        """The recurrence, one ``step`` after another: every step's h (batch, T, u), and the
        state after the last step."""
        T, n, width = zx.shape
        c.steps, hs = [], xp.empty((n, T, self.units), dtype=zx.dtype)
        # Every step's z, written in place by the steps: (T, batch, G·u), one step after another
        zs = c.zs = workspace(c, "zs", (T, n, width), zx.dtype) if keep else None
        for t in range(T):  # the recurrence: each step needs the one before
            s = SimpleNamespace(z=zs[t] if keep else xp.empty((n, width), dtype=zx.dtype))
            new = self.step(zx[t], state, s, c.h_drop)
            if c.real is not None:
                real = c.real[:, t, None]  # (batch, 1)
                new = [xp.where(real, after, before) for after, before in zip(new, state)]
            state = new
            if keep:
                c.steps.append(s)  # one cache per step, for the way back through time
            hs[:, t] = state[0]
            if c.real is not None and self.zero_output_for_mask:
                hs[:, t] *= c.real[:, t, None]
        if keep:
            c.z = zs.transpose(1, 0, 2)  # (batch, T, G·u), a view: every step's z
        return hs, state

    _state_count = 1  # h; an LSTM also carries its cell state c

    def _input_bias(self):
        return self.params["b"]

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        W_x = self.params["W_x"]
        T, n, n_in = (*c.x_steps.shape[:2], W_x.shape[1])  # n: the rows
        # With return_state, ∂C/∂(output) and ∂C/∂(each final state); None where nothing reads it
        from_state = [None] * self._state_count
        if self.return_state:
            dC_da, *from_state = dC_da
            if dC_da is None:
                dC_da = xp.zeros_like(c.a)
        dC_da = self._state_rows(dC_da)
        # ∂C/∂(the state after the last step): what reads the final states sends back
        later = [
            xp.zeros((n, self.units), dtype=dC_da.dtype) if d is None
            else self._state_rows(d.astype(dC_da.dtype))
            for d in from_state
        ]  # fmt: skip
        rows = W_x.shape[0]
        # ∂C/∂(the inputs' share of z_t), in the array that held that share (not read again)
        dzx = c.zx = workspace(c, "zx", (T, n, rows), dC_da.dtype)
        drec, h_in, later = self._backward_steps(dC_da, later, c, dzx)
        c.dC_dz = dzx.transpose(1, 0, 2)  # (batch, T, G·u), a view, for the glass box
        flat = dzx.reshape(T * n, rows)  # (T·batch, G·u)
        if c.hx is not None:  # h_{t−1} and x_t side by side, and z_t all one product's (LSTM)
            dW = matmul(flat.T, c.hx.reshape(T * n, -1))  # Σ_t ∂C/∂z_t·[h_{t−1}, x_t, 1]
            self.grads["W_h"][...] = dW[:, : self.units]
            dW = dW[:, self.units :]
        else:
            # Every step used the same W_h: its gradient sums ∂C/∂z_t·h_{t−1} over the steps,
            # one product for all of them (from t = 2 when h_0 = 0).
            first, width = (0 if c.initial else 1), h_in.shape[-1]
            matmul(drec[first:].reshape((T - first) * n, rows).T,
                   h_in[first:].reshape((T - first) * n, width), out=self.grads["W_h"])  # fmt: skip
            self._recurrent_bias_grad(drec)
            # Σ_t ∂C/∂z_t·x_t, and for b: Σ_t ∂C/∂z_t·1
            dW = matmul(flat.T, c.x_steps.reshape(T * n, -1))
        self.grads["W_x"][...] = dW[:, :n_in]
        if self.use_bias:
            self._input_bias_grad()[...] = dW[:, n_in]
        dx = None
        if self.needs_input_gradient:
            dx = matmul(flat, W_x).reshape(T, n, n_in)  # W_xᵀ·∂C/∂z_t
            dx = self._step_inputs_backward(dx, c)
            if c.x_drop is not None:
                dx *= c.x_drop
            dx = dx[:, ::-1] if self.go_backwards else dx
        if c.initial:  # ∂C/∂(initial state): what the first step sends back
            return [dx, *(self._output(d) for d in later)]
        return dx

    def _backward_steps(self, dC_da, later, c, dzx):
        """Back through time, one ``step_backward`` after another, from ∂C/∂(output) and
        ``later`` (∂C/∂(state after the last step)). Fills ``dzx``, ∂C/∂(the inputs' share of
        each z_t), (T, batch, G·u); returns ∂C/∂(the recurrent share of each z_t) in the same
        layout, what W_h multiplied at each step (T, batch, u), and ∂C/∂(initial state)."""
        T, n, rows = dzx.shape
        # What the outputs send back to each step's h: every step's, or only the last one's.
        if self.return_sequences:
            from_output = dC_da
        else:
            from_output = xp.zeros((n, T, self.units), dtype=dC_da.dtype)
            from_output[:, -1] = dC_da
        drec = c.drec = workspace(c, "drec", (T, n, rows), dC_da.dtype)  # ∂C/∂(recurrent share)
        h_in = xp.stack([s.h_in for s in c.steps])  # (T, batch, u): what W_h multiplied
        c.dC_dh = workspace(c, "dC_dh", (n, T, self.units), dC_da.dtype)  # for the glass box
        if c.real is not None and self.zero_output_for_mask:
            from_output = from_output * c.real[:, :, None]  # a masked step's output was 0
        for t in range(T - 1, -1, -1):  # back through time: t = T … 1
            later[0] = later[0] + from_output[:, t]  # ∂C/∂h_t: from the output and from t + 1
            c.dC_dh[:, t] = later[0]
            dzx[t], drec[t], earlier = self.step_backward(later, c.steps[t], c.h_drop)
            if c.real is not None:  # a masked step passed the state on untouched: so back
                real = c.real[:, t, None]
                dzx[t] *= real
                drec[t] *= real
                earlier = [xp.where(real, e, g) for e, g in zip(earlier, later)]
            later = earlier
        return drec, h_in, later

    def _recurrent_bias_grad(self, drec) -> None:
        """Only GRU has a recurrent bias of its own."""

    def _input_bias_grad(self):
        return self.grads["b"]

    def _dropout_mask(self, shape, dtype, rate):
        """0 with probability ``rate``, else 1/(1 − rate): drawn once per sequence."""
        keep = self._rng.random(shape) >= rate
        return keep * dtype.type(1 / (1 - rate))

    def _recurrent_input(self, h_prev, h_drop):
        """What W_h multiplies: h_{t−1}, dropped out as Keras drops it (recurrent_dropout)."""
        return h_prev if h_drop is None else h_prev * h_drop

    def _recurrent_input_backward(self, d_h_in, h_drop):
        """∂C/∂h_{t−1} from ∂C/∂(what W_h multiplied), W_hᵀ·∂C/∂z_t."""
        return d_h_in if h_drop is None else d_h_in * h_drop

    # ---- configuration -------------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.regularizers.get("W_x")),
            "recurrent_regularizer": regularizers.serialize(self.regularizers.get("W_h")),
            "bias_regularizer": regularizers.serialize(self.regularizers.get("b")),
            "activity_regularizer": None,
            "kernel_constraint": None,
            "recurrent_constraint": None,
            "bias_constraint": None,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": False,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }


class SimpleRNN(Recurrent):
    """h_t = σ(W_x·x_t + W_h·h_{t−1} + b): a Dense layer that also reads its own last output.

    Args:
        units: Number of units (the size of h).
        activation: σ, tanh by default.
        return_sequences: Return every step's h (batch, T, units), not only the last.
        go_backwards: Read the sequence from its end (and return the outputs in that order).
        dropout, recurrent_dropout: Keras's: one mask per sequence on the inputs, and on the
            h_{t−1} that W_h multiplies.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer: as Keras's.
    """

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, activation=activation, **kwargs)

    def step(self, zx, state, s, h_drop):
        """One step forward: z = (W_x·x_t + b) + W_h·h_{t−1}, h_t = σ(z)."""
        s.h_in = self._recurrent_input(state[0], h_drop)  # (batch, u)
        matmul(s.h_in, self.params["W_h"].T, out=s.z)  # (batch, u): W_h·h_{t−1} …
        s.z += zx  # … + (W_x·x_t + b)
        s.h = self.activation(s.z)
        return [s.h]

    def step_backward(self, later, s, h_drop):
        """∂C/∂h_t → ∂C/∂z_t (the inputs' and the recurrent share alike), and ∂C/∂h_{t−1}."""
        dz = self.activation.backward(s.z, s.h, later[0])  # σ′(z_t) ⊙ ∂C/∂h_t
        dh_prev = matmul(dz, self.params["W_h"])  # W_hᵀ·∂C/∂z_t: the deck's case 2, back one step
        return dz, dz, [self._recurrent_input_backward(dh_prev, h_drop)]


class LSTM(Recurrent):
    """Long short-term memory: a cell state c carried from step to step, changed only through
    gates, so that a gradient can travel back many steps without vanishing.

        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)    (input, forget, output gates)
        g = tanh(z_c),  c_t = f ⊙ c_{t−1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

    where z = W_x·x_t + W_h·h_{t−1} + b holds the four gates' rows in Keras's order i, f, c, o.

    Args:
        units, activation (tanh), recurrent_activation (sigmoid), return_sequences,
        go_backwards, dropout, recurrent_dropout, initializers: as ``SimpleRNN``.
        unit_forget_bias: Start the forget gate's bias at 1 (Keras's default), so the cell
            remembers from the start.
    """

    gates = 4
    _state_count = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):  # fmt: skip
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)  # fmt: skip
        self.unit_forget_bias = bool(unit_forget_bias)

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_bias and self.unit_forget_bias:
            u = self.units
            self.params["b"][u : 2 * u] += 1  # Keras: the initializer's values, 1 for f

    # ---- the whole sequence in fused kernels (float32, Keras's activations) ----------------
    # The same formulas as ``step`` and ``step_backward`` below, each step's elementwise work one
    # kernel (kernels.lstm_step, kernels.lstm_step_backward) beside its matrix product, every
    # step's values in arrays made once for the sequence. The rows of the batch are independent,
    # so the batch is cut in one piece per core, each running the whole recurrence with one
    # BLAS thread: a (128, 128)·(128, 512) product gains little from BLAS's second thread, two
    # halves side by side gain almost twice.

    def _fused(self, c, dtype) -> bool:
        """Whether this sequence runs in the fused kernels."""
        return (
            kernels.ENABLED
            and dtype == xp.float32
            and self.activation is activations.tanh
            and self.recurrent_activation is activations.sigmoid
            and c.real is None
            and c.h_drop is None
        )

    def _steps_array(self, c, shape, dtype, keep):
        """In the fused kernels a step's z is one product, [W_h | W_x | b] times [h_{t−1}, x_t,
        1]; training keeps every step's [h_{t−1}, x_t, 1] in one array (T, rows, u + n_in + 1),
        whose x_t part this returns, so that ∂C/∂[W_h | W_x | b] is one product more after the
        steps. The inputs' share for every step at once, (T·rows, n_in + 1)·(n_in + 1, 4u),
        and its gradient have only n_in + 1 columns on one side (29 for MNIST's rows), where
        BLAS runs at a fraction of its rate: at W6's shapes they took 0.87 and 1.28 ms a batch
        on both cores, the steps' longer products 0.59 ms more and the joined gradient 0.77 ms
        more (NumPy's BLAS; MKL's: 0.58 and 1.77 against 0.46 and 1.19)."""
        if not (keep and self._fused(c, dtype)):
            return super()._steps_array(c, shape, dtype, keep)
        T, rows, width = shape
        c.hx = workspace(c, "hx", (T, rows, self.units + width), dtype)
        return c.hx[..., self.units :]  # x_t and 1, beside h_{t−1}

    def _input_share(self, c, keep):
        """None in the fused kernels: each step's product makes its input share itself."""
        if self._fused(c, c.x_steps.dtype):
            return None
        return super()._input_share(c, keep)

    def _forward_steps(self, zx, state, c, keep):
        dtype = c.x_steps.dtype
        c.fused = self._fused(c, dtype)
        if not c.fused:
            return super()._forward_steps(zx, state, c, keep)
        T, n, n_x = c.x_steps.shape
        u, width = self.units, c.W_in.shape[0]
        steps = T if keep else 1  # a prediction keeps no step's values: one slot, reused
        c.zs, c.gate_values = (workspace(c, name, (steps, n, width), dtype)
                               for name in ("zs", "gate_values"))  # fmt: skip
        c.tanh_c = workspace(c, "tanh_c", (steps, n, u), dtype)
        c.hs = xp.empty((T + 1, n, u), dtype=dtype)  # h_0 … h_T
        c.cs = xp.empty((T + 1 if keep else 2, n, u), dtype=dtype)  # c_0 … c_T
        c.hs[0], c.cs[0] = state
        # [W_h | W_x | b]ᵀ, laid out as BLAS reads it fastest (20 % faster than the view)
        W_T = xp.ascontiguousarray(xp.concatenate([self.params["W_h"], c.W_in], axis=1).T)
        if keep:
            c.hx[0, :, :u] = c.hs[0]

        def rows(piece) -> None:
            r = piece[1]  # these rows of the batch
            # A prediction keeps one step's [h_{t−1}, x_t, 1] at a time, in one slot per thread:
            # every step's at once would be T times larger than the cache (17.6 MB for a batch
            # of 1,000 rows of MNIST).
            joint = None if keep else xp.empty((c.hs[0, r].shape[0], u + n_x), dtype=dtype)
            for t in range(T):
                k, c_prev, c_now = (t, t, t + 1) if keep else (0, t % 2, (t + 1) % 2)
                if not keep:
                    joint[:, :u], joint[:, u:] = c.hs[t, r], c.x_steps[t, r]
                matmul(c.hx[t, r] if keep else joint, W_T, out=c.zs[k, r])  # z_t, all of it
                kernels.lstm_step(c.zs[k, r], c.cs[c_prev, r], c.gate_values[k, r],
                                  c.cs[c_now, r], c.tanh_c[k, r], c.hs[t + 1, r])  # fmt: skip
                if keep and t + 1 < T:
                    c.hx[t + 1, r, :u] = c.hs[t + 1, r]  # beside x_{t+1}

        self._by_rows(rows, c.x_steps, kernels.lstm_step)
        if keep:
            c.z = c.zs.transpose(1, 0, 2)  # (batch, T, 4u), a view: every step's z
        return c.hs[1:].transpose(1, 0, 2), [c.hs[T], c.cs[T if keep else T % 2]]

    def _backward_steps(self, dC_da, later, c, dz):
        if not c.fused:
            return super()._backward_steps(dC_da, later, c, dz)
        T, n, _ = dz.shape
        # ∂C/∂h and ∂C/∂c after the last step, updated in place by the kernels as they go back
        if self.return_sequences:  # what the output at t sends back to h_t, time first
            from_output = xp.ascontiguousarray(dC_da.transpose(1, 0, 2))
            dh_later = later[0].copy()
        else:  # only h_T reaches the output: start the recursion with it
            from_output = xp.zeros((1, n, self.units), dtype=dC_da.dtype)
            dh_later = later[0] + dC_da
        dc = later[1].copy()
        dC_dh = c.dC_dh_steps = workspace(c, "dC_dh_steps", (T, n, self.units), dC_da.dtype)
        one, W_h = dz.dtype.type(1), self.params["W_h"]

        def rows(piece) -> None:
            r = piece[1]  # these rows of the batch
            for t in range(T - 1, -1, -1):
                out = from_output[t if self.return_sequences else 0, r]
                kernels.lstm_step_backward(dh_later[r], out, dc[r], c.gate_values[t, r],
                                           c.cs[t, r], c.tanh_c[t, r], dz[t, r], dC_dh[t, r],
                                           one)  # fmt: skip
                if t or c.initial:  # ∂C/∂h_0 only for a given initial state
                    matmul(dz[t, r], W_h, out=dh_later[r])  # W_hᵀ·∂C/∂z_t

        self._by_rows(rows, dz, kernels.lstm_step_backward)
        c.dC_dh = dC_dh.transpose(1, 0, 2)  # (batch, T, u), a view
        return dz, c.hs[:T], [dh_later, dc]  # the recurrent share of z_t is all of z_t here

    @staticmethod
    def _by_rows(rows, steps, kernel) -> None:
        """``rows((…, slice of the batch))`` on one piece of the batch per thread, with one
        BLAS thread each; ``steps`` is (T, batch, …). While ``kernel`` is not compiled, one
        piece: the first call compiles it."""
        n = steps.shape[1]
        if num_threads() == 1 or n == 1 or hasattr(kernel, "python"):
            rows((steps, slice(0, n)))
            return
        pieces = [(steps[:, r], r) for r in split_evenly(n, num_threads())]
        with blas_threads_for(0):
            parallel_map(rows, pieces, 0)

    def step(self, zx, state, s, h_drop):
        """One step forward: the four gates, the new cell state c_t, the output h_t."""
        u, sig, act = self.units, self.recurrent_activation, self.activation
        h_prev, s.c_prev = state
        s.h_in = self._recurrent_input(h_prev, h_drop)
        matmul(s.h_in, self.params["W_h"].T, out=s.z)  # (batch, 4u): gates i, f, c, o
        s.z += zx
        s.gates = xp.empty_like(s.z)  # i, f, g, o side by side, as z
        s.gates[:, : 2 * u] = sig(s.z[:, : 2 * u])  # i, f
        s.gates[:, 2 * u : 3 * u] = act(s.z[:, 2 * u : 3 * u])  # g, the candidate
        s.gates[:, 3 * u :] = sig(s.z[:, 3 * u :])  # o
        i, f, g, o = (s.gates[:, k * u : (k + 1) * u] for k in range(4))
        s.c = f * s.c_prev + i * g
        s.tanh_c = act(s.c)
        return [o * s.tanh_c, s.c]

    def step_backward(self, later, s, h_drop):
        """∂C/∂h_t and ∂C/∂c_t (from step t + 1) → ∂C/∂z_t, and both for step t − 1."""
        u, sig, act = self.units, self.recurrent_activation, self.activation
        dh, dc_later = later
        i, f, g, o = (s.gates[:, k * u : (k + 1) * u] for k in range(4))
        dz = xp.empty_like(s.z)
        do = dh * s.tanh_c  # h = o ⊙ tanh(c)
        dc = dc_later + act.backward(s.c, s.tanh_c, dh * o)  # c reaches C directly and via h
        dz[:, :u] = sig.backward(s.z[:, :u], i, dc * g)  # c = f ⊙ c_prev + i ⊙ g
        dz[:, u : 2 * u] = sig.backward(s.z[:, u : 2 * u], f, dc * s.c_prev)
        dz[:, 2 * u : 3 * u] = act.backward(s.z[:, 2 * u : 3 * u], g, dc * i)
        dz[:, 3 * u :] = sig.backward(s.z[:, 3 * u :], o, do)
        dc_prev = dc * f
        dh_prev = self._recurrent_input_backward(matmul(dz, self.params["W_h"]), h_drop)
        return dz, dz, [dh_prev, dc_prev]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }


class GRU(Recurrent):
    """Gated recurrent unit (Keras's default ``reset_after=True``):

        z = sigmoid(x_z + r_z),  r = sigmoid(x_r + r_r)         (update and reset gates)
        h̃ = tanh(x_h + r ⊙ r_h),  h_t = z ⊙ h_{t−1} + (1 − z) ⊙ h̃

    with x_· = W_x·x_t + b_x (the inputs' share) and r_· = W_h·h_{t−1} + b_h (the recurrent
    share), each split into the gates z, r, h; b is (2, 3u): b_x, then b_h.
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):  # fmt: skip
        if not reset_after:
            raise NotImplementedError(
                "GRU(reset_after=False) is not supported by glassnet: Keras 3's default, "
                "reset_after=True, is."
            )
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)  # fmt: skip

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _input_bias(self):
        return self.params["b"][0]

    def _input_bias_grad(self):
        return self.grads["b"][0]

    def _recurrent_bias_grad(self, drec):
        if self.use_bias:
            drec.sum(axis=(0, 1), out=self.grads["b"][1])  # ∂C/∂b_h: the recurrent share's

    def step(self, zx, state, s, h_drop):
        """One step forward: the update and reset gates, the candidate h̃, the new h."""
        u, sig, act = self.units, self.recurrent_activation, self.activation
        s.h_prev = state[0]
        s.h_in = self._recurrent_input(s.h_prev, h_drop)
        rec = matmul(s.h_in, self.params["W_h"].T)  # (batch, 3u)
        if self.use_bias:
            rec += self.params["b"][1]
        s.rec_h = rec[:, 2 * u :]
        s.z[...] = zx  # (batch, 3u): the gates' z, the recurrent share added below
        s.z[:, : 2 * u] += rec[:, : 2 * u]
        s.update, s.reset = sig(s.z[:, :u]), sig(s.z[:, u : 2 * u])
        s.z[:, 2 * u :] += s.reset * s.rec_h  # the candidate's z: x_h + r ⊙ r_h
        s.candidate = act(s.z[:, 2 * u :])
        return [s.update * s.h_prev + (1 - s.update) * s.candidate]

    def step_backward(self, later, s, h_drop):
        """∂C/∂h_t → ∂C/∂(each gate's z), inputs' and recurrent share, and ∂C/∂h_{t−1}."""
        u, sig, act = self.units, self.recurrent_activation, self.activation
        dh = later[0]
        d_candidate = act.backward(s.z[:, 2 * u :], s.candidate, dh * (1 - s.update))
        dzx = xp.empty_like(s.z)  # ∂C/∂(the inputs' share of z), gate by gate
        dzx[:, :u] = sig.backward(s.z[:, :u], s.update, dh * (s.h_prev - s.candidate))
        dzx[:, u : 2 * u] = sig.backward(s.z[:, u : 2 * u], s.reset, d_candidate * s.rec_h)
        dzx[:, 2 * u :] = d_candidate
        drec = dzx.copy()  # ∂C/∂(the recurrent share): the same, but r ⊙ r_h for the candidate
        drec[:, 2 * u :] *= s.reset
        dh_prev = self._recurrent_input_backward(matmul(drec, self.params["W_h"]), h_drop)
        return dzx, drec, [dh_prev + dh * s.update]  # h_t = z ⊙ h_{t−1} + …: directly too

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "reset_after": True,
        }


# ---- keras.layers.RNN(cell): the same layers, given as a cell and the loop around it ---------


class Cell:
    """One step of a recurrent layer, as Keras's ``SimpleRNNCell``, ``LSTMCell`` and
    ``GRUCell``: what ``RNN(cell)`` runs at every time step. glassnet's recurrent layers already
    are the cell and its loop in one (each step's forward and backward pass written out in
    ``step`` and ``step_backward``), so a cell here holds the cell's arguments, and ``RNN``
    turns it into that layer: ``RNN(LSTMCell(64))`` computes what ``LSTM(64)`` does, with the
    same weights, saved where Keras saves them (``layers/rnn/cell/vars``)."""

    layer: ClassVar[type]  # the recurrent layer this cell is the step of

    def __init__(self, units, name=None, trainable=True, dtype=None, **arguments):
        if arguments.get("seed") is None:  # Keras's configs write seed: None
            arguments.pop("seed", None)
        self.layer(units, name="cell_check", **arguments)  # checks every argument, as Keras
        self.units, self.arguments = units, arguments
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable, self.dtype = trainable, dtype

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f"Calling a {type(self).__name__} on its own is not supported by glassnet: give it "
            f"to layers.RNN, which runs it over the steps (or use layers.{self.layer.__name__})."
        )

    def get_config(self) -> dict:
        made = self.layer(self.units, **self.arguments).get_config()
        loop = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                "zero_output_for_mask", "activity_regularizer", "reset_after")  # fmt: skip
        config = {k: v for k, v in made.items() if k not in loop}
        return {**config, "name": self.name, "trainable": self.trainable,
                "dtype": made["dtype"] if self.dtype is None else self.dtype}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict) -> Cell:
        return cls(**{k: v for k, v in config.items() if v is not None or k == "seed"})


class SimpleRNNCell(Cell):
    """The step of ``SimpleRNN``: h_t = σ(W_x·x_t + W_h·h_{t−1} + b)."""

    layer = SimpleRNN


class LSTMCell(Cell):
    """The step of ``LSTM``: its four gates and the cell state."""

    layer = LSTM


class GRUCell(Cell):
    """The step of ``GRU``: its update and reset gates and the candidate h̃."""

    layer = GRU

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": True}


class StackedRNNCells:
    """Cells run one after the other at every step, as ``keras.layers.StackedRNNCells``: the
    first cell's output is the second's input, and so on. ``RNN(StackedRNNCells([a, b]))`` (or
    ``RNN([a, b])``) is the layers of those cells stacked, each returning its sequence to the
    next."""

    def __init__(self, cells, name=None, trainable=True, dtype=None):
        cells = list(cells)
        if not cells or not all(isinstance(c, Cell) for c in cells):
            raise ValueError(
                "StackedRNNCells needs a list of SimpleRNNCell, LSTMCell or GRUCell; received "
                f"{cells!r}."
            )
        self.cells = cells
        self.name = name or unique_name("stacked_rnn_cells")
        self.trainable, self.dtype = trainable, dtype

    def get_config(self) -> dict:
        cells = [{"module": "keras.layers", "class_name": type(c).__name__,
                  "config": c.get_config(), "registered_name": None}
                 for c in self.cells]  # fmt: skip
        return {"name": self.name, "trainable": self.trainable,
                "dtype": self.cells[0].get_config()["dtype"], "cells": cells}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict) -> StackedRNNCells:
        classes = {c.__name__: c for c in (SimpleRNNCell, LSTMCell, GRUCell)}
        cells = []
        for entry in config.get("cells") or []:
            name = entry.get("class_name") if isinstance(entry, dict) else None
            if name not in classes:
                raise ValueError(
                    f"StackedRNNCells' cell {name!r} is not one glassnet has: "
                    f"{', '.join(sorted(classes))}."
                )
            cells.append(classes[name].from_config(dict(entry.get("config") or {})))
        return cls(cells, name=config.get("name"), trainable=config.get("trainable", True))
