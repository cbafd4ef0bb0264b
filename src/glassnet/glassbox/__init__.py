"""The glass box: every number of a forward and backward pass, shown and checked.

- ``trace(model, x, y)``: one gradient-descent step as plain data, in the deck's notation; prints
  as text, shows as HTML in Jupyter, saves as JSON.
- ``TraceRecorder(every=N)``: a ``fit`` callback recording the real training steps.
- ``check_gradients(model, x, y)``: backpropagation against finite differences, per weight tensor.
- ``deck_network()``: the deck's 2-2-2-2 sigmoid network with its weights.
- ``explain_rnn()``: a tiny recurrent network unrolled over three steps, every number shown.
"""

from glassnet.glassbox.deck import DECK_INPUT, DECK_TARGET, deck_network
from glassnet.glassbox.gradcheck import GradientReport, check_gradients
from glassnet.glassbox.trace import (
    TOLERANCE,
    Check,
    LayerTrace,
    Split,
    Trace,
    TraceRecorder,
    relative_error,
    target_for_label,
    trace,
)
from glassnet.glassbox.unrolled import explain_rnn, rnn_network

__all__ = [
    "DECK_INPUT",
    "DECK_TARGET",
    "TOLERANCE",
    "Check",
    "GradientReport",
    "LayerTrace",
    "Split",
    "Trace",
    "TraceRecorder",
    "check_gradients",
    "deck_network",
    "explain_rnn",
    "relative_error",
    "rnn_network",
    "target_for_label",
    "trace",
]
