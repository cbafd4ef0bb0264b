"""MNIST: 70,000 handwritten digits, 28×28 greyscale, as ``keras.datasets.mnist``."""

from __future__ import annotations

from glassnet.datasets import _fetch

__all__ = ["SPEC", "load_data"]

SPEC = _fetch.DatasetSpec(
    name="mnist",
    title="MNIST",
    sha256={  # the published SHA-256 of the original files
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    keras_npz="mnist.npz",
)


def load_data(path="mnist.npz"):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (n, 28, 28), uint8 labels (n,).

    Found before fetched: see ``glassnet.datasets._fetch`` for the places looked at.
    ``path`` is accepted for Keras compatibility (Keras's cache file name).
    """
    return _fetch.load(SPEC)
