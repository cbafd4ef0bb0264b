"""A tiny recurrent network unrolled in time, every number shown: ``glassnet explain --rnn``.

Two tanh units read three steps of one number each, and a linear neuron reads their last state:

    z_t = W_x·x_t + W_h·h_{t−1} + b,   h_t = tanh(z_t),   t = 1, 2, 3;   a = w·h_3 + c.

The forward pass lists each step's z_t and h_t, the backward pass each step's ∂C/∂h_t — what the
output sends back at the last step, then W_hᵀ·∂C/∂z_{t+1} — and ∂C/∂z_t; then the gradients of
W_x, W_h and b (sums over the steps) beside their finite differences. Every value is read from the
SimpleRNN layer's own caches after a real forward and backward pass (DESIGN.md §5).
"""

from __future__ import annotations

import numpy as np

from glassnet.glassbox.render import format_array, number
from glassnet.glassbox.trace import trace
from glassnet.i18n import _

__all__ = ["RNN_INPUT", "RNN_TARGET", "explain_rnn", "rnn_network"]

RNN_INPUT = np.array([[[1.0], [2.0], [-1.0]]])  # one sequence: 3 steps of 1 number
RNN_TARGET = np.array([[0.5]])


def rnn_network():
    """The unrolled example: SimpleRNN(2, tanh) over 3 steps, then Dense(1), mean squared error.

    Its weights, in the deck's layout (one row per unit): W_x = [[0.5], [−1]],
    W_h = [[0.8, −0.3], [0.4, 0.6]], b = [0.1, −0.2]; the output neuron w = [1, −2], c = 0.5.
    """
    from glassnet.layers import Dense, Input, SimpleRNN
    from glassnet.models import Sequential

    model = Sequential([Input(shape=(3, 1)), SimpleRNN(2), Dense(1)], name="unrolled_rnn")
    rnn, out = model.layers
    rnn.params["W_x"][...] = [[0.5], [-1.0]]
    rnn.params["W_h"][...] = [[0.8, -0.3], [0.4, 0.6]]
    rnn.params["b"][...] = [0.1, -0.2]
    out.params["W"][...] = [[1.0, -2.0]]
    out.params["b"][...] = [0.5]
    model.compile(optimizer="sgd", loss="mse")
    return model


def _v(a) -> str:
    return format_array(np.asarray(a, dtype=float).round(4), full=True).replace("\n", " ")


def explain_rnn(x=None, y=None, learning_rate: float = 0.05) -> str:
    """The tiny RNN's forward pass, loss and backpropagation through time, as text."""
    x = RNN_INPUT if x is None else np.asarray(x, dtype=float)
    y = RNN_TARGET if y is None else np.asarray(y, dtype=float)
    model = rnn_network()
    rnn, dense = model.layers
    out = model.forward(x.astype("float32"), training=True)
    C = model.backpropagate(y, out)
    W_x, W_h, b = (rnn.params[k] for k in ("W_x", "W_h", "b"))
    per_unit, from_loss = _("one row per unit"), _("from the loss")
    lines = [
        _("A recurrent layer unrolled: 2 tanh units read 3 steps, then one linear neuron."),
        "  z_t = W_x·x_t + W_h·h_{t−1} + b,  h_t = tanh(z_t),  a = w·h_3 + c,  C = (a − y)²",
        f"  W_x = {_v(W_x)}   W_h = {_v(W_h)}   b = {_v(b)}   ({per_unit})",
        f"  w = {_v(dense.params['W'])}   c = {_v(dense.params['b'])}",
        "",
        _("FORWARD — the same W_x, W_h and b at every step; h_0 = 0"),
    ]
    for t, s in enumerate(rnn.steps, start=1):
        lines.append(
            f"  t = {t}: x_{t} = {_v(x[0, t - 1])}   W_h·h_{t - 1} = {_v(W_h @ s.h_in[0])}   "
            f"z_{t} = {_v(s.z[0])}   h_{t} = tanh(z_{t}) = {_v(s.h[0])}"
        )
    lines += [
        f"  a = w·h_3 + c = {_v(out[0])}   y = {_v(y[0])}   C = {C:.6g}",
        "",
        _("BACKWARD THROUGH TIME — ∂C/∂h_t = (from the output at t) + W_hᵀ·∂C/∂z_{t+1}"),
        f"  ∂C/∂a = 2(a − y) = {_v(dense.dC_da[0])}   ({from_loss})",
    ]
    T = len(rnn.steps)
    for t in range(T, 0, -1):
        source = _("wᵀ·∂C/∂a (the output reads h_3)") if t == T else f"W_hᵀ·∂C/∂z_{t + 1}"
        lines.append(
            f"  t = {t}: ∂C/∂h_{t} = {source} = {_v(rnn.dC_dh[0, t - 1])}   "
            f"∂C/∂z_{t} = tanh′(z_{t}) ⊙ ∂C/∂h_{t} = {_v(rnn.dC_dz[0, t - 1])}"
        )
    checked = trace(model, x, y, learning_rate=learning_rate)  # its finite differences
    layer = checked.layers[0]
    lines += ["", _("GRADIENTS — each weight was used at every step: its gradient sums over them")]
    for name, formula in (("W_x", "Σ_t ∂C/∂z_t·x_tᵀ"), ("W_h", "Σ_t ∂C/∂z_t·h_{t−1}ᵀ"),
                          ("b", "Σ_t ∂C/∂z_t")):  # fmt: skip
        check = layer.numeric[name]
        finite = np.empty(rnn.grads[name].size)
        finite[check.indices] = check.finite
        finite = _v(finite.reshape(rnn.grads[name].shape))
        error = f"{number(check.error)} {'✓' if check.ok else '✗'}"
        lines.append(
            f"  ∂C/∂{name} = {formula} = {_v(rnn.grads[name])}   "
            + _("finite differences: {values}   (relative error {error})").format(
                values=finite, error=error
            )
        )
    lines += [
        "",
        _("UPDATE — W ← W − {lr}·∂C/∂W: the loss goes from {C} to {C_new}").format(
            lr=f"{learning_rate:g}", C=f"{checked.C:.6g}", C_new=f"{checked.C_new:.6g}"
        ),
    ]
    return "\n".join(lines)
