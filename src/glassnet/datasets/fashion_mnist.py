"""Fashion-MNIST: 70,000 28×28 greyscale images of clothing in 10 classes, as in Keras."""

from __future__ import annotations

from glassnet.datasets import _fetch

__all__ = ["CLASS_NAMES", "SPEC", "load_data"]

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

SPEC = _fetch.DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    sha256={  # the SHA-256 of Zalando's published files
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
    mirrors=(
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    keras_folder="fashion-mnist",
    class_names=CLASS_NAMES,
)


def load_data():
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (n, 28, 28), uint8 labels (n,)."""
    return _fetch.load(SPEC)
