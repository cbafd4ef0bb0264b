"""Models, as ``keras.models``: ``Model`` (the functional API), ``Sequential``, ``load_model``."""

from glassnet.models.model import Capture, Model
from glassnet.models.saving import load_model, save_model
from glassnet.models.sequential import Sequential

__all__ = ["Capture", "Model", "Sequential", "load_model", "save_model"]
