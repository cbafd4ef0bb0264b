"""The deck's worked example, its numbers copied from the slides (not from glassnet): the
oracle that the deck's tests and the glass box's compare with."""

import numpy as np

DECK_W = [
    np.array([[1.0, -2.0], [-1.0, 1.0]]),
    np.array([[2.0, -1.0], [-2.0, -1.0]]),
    np.array([[3.0, -1.0], [-1.0, 4.0]]),
]
DECK_B = [np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([-2.0, 2.0])]
