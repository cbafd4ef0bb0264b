"""The deck's worked example: a 2-2-2-2 sigmoid network and the input (1, −1).

>>> model = deck_network()
>>> model.predict(DECK_INPUT, verbose=0).round(4)
array([[0.6177, 0.8291]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from glassnet.layers import Dense, Input
from glassnet.models import Sequential

__all__ = ["DECK_B", "DECK_INPUT", "DECK_TARGET", "DECK_W", "deck_network"]

# W has one row per neuron, as on the slides.
DECK_W = (
    np.array([[1.0, -2.0], [-1.0, 1.0]]),
    np.array([[2.0, -1.0], [-2.0, -1.0]]),
    np.array([[3.0, -1.0], [-1.0, 4.0]]),
)
DECK_B = (np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([-2.0, 2.0]))
DECK_INPUT = np.array([[1.0, -1.0]])
DECK_TARGET = np.array([[0.0, 1.0]])  # the deck gives none; this one makes the loss readable


def deck_network(learning_rate: float = 0.5) -> Sequential:
    """The worked example's network, compiled for one step of plain gradient descent on MSE."""
    from glassnet.optimizers import SGD

    model = Sequential(
        [Input(shape=(2,))] + [Dense(2, activation="sigmoid") for _ in range(3)],
        name="deck_example",
    )
    model.set_weights([w for W, b in zip(DECK_W, DECK_B) for w in (W.T, b)])  # Keras: kernel = Wᵀ
    model.compile(optimizer=SGD(learning_rate=learning_rate), loss="mean_squared_error")
    return model
