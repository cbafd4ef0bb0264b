"""``keras.preprocessing.sequence``: ``pad_sequences``, the very function ``glassnet.utils``
has."""

from glassnet.utils import pad_sequences

__all__ = ["pad_sequences"]
