"""``keras.preprocessing``, for the scripts that import from there: ``sequence.pad_sequences``
is ``glassnet.utils.pad_sequences``."""

from glassnet.preprocessing import sequence

__all__ = ["sequence"]
