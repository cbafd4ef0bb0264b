"""Datasets, as ``keras.datasets``: ``mnist``, ``fashion_mnist``, ``cifar10``, ``imdb`` (and
``digits``, the offline fallback). Found before fetched; see ``glassnet.datasets._fetch``.

This package imports nothing else from glassnet.
"""

from glassnet.datasets import cifar10, digits, fashion_mnist, imdb, mnist
from glassnet.datasets._fetch import DatasetUnavailableError

__all__ = ["DatasetUnavailableError", "cifar10", "digits", "fashion_mnist", "imdb", "mnist"]
