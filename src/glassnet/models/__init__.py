"""Models, as ``keras.models``: ``Sequential`` and ``load_model``."""

from glassnet.models.saving import load_model
from glassnet.models.sequential import Sequential

__all__ = ["Sequential", "load_model"]
