"""Datasets, as ``keras.datasets``: ``mnist``, ``fashion_mnist``, ``imdb`` (and ``digits``, the
offline fallback). Found before fetched; see ``glassnet.datasets._fetch``.

This package imports nothing else from glassnet.
"""

from glassnet.datasets import digits, fashion_mnist, imdb, mnist
from glassnet.datasets._fetch import DatasetUnavailableError

__all__ = ["DatasetUnavailableError", "digits", "fashion_mnist", "imdb", "mnist"]
