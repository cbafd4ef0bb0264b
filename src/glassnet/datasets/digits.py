"""The UCI handwritten digits (1,797 images, 8×8) that ship inside scikit-learn.

glassnet's offline fallback: when MNIST can be neither found nor downloaded, ``glassnet train``
trains on these instead, which every glassnet installation has (scikit-learn is a dependency of
the command-line tool).
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_data"]


def load_data(test_fraction: float = 0.2):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (n, 8, 8) scaled to 0–255.

    The split is fixed (the last ``test_fraction`` of the data is the test set), so results are
    comparable between runs.
    """
    from sklearn.datasets import load_digits  # imported here: the library needs NumPy only

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0–16 grey levels → 0–255
    labels = digits.target.astype(np.uint8)
    n_test = int(len(images) * test_fraction)
    return (images[:-n_test], labels[:-n_test]), (images[-n_test:], labels[-n_test:])
