"""Models, as ``keras.models``: ``Model`` (the functional API), ``Sequential``, ``load_model``,
``save_model``, ``model_from_json``, ``clone_model``."""

from glassnet.models.cloning import clone_model, model_from_config, model_from_json
from glassnet.models.model import Capture, Model
from glassnet.models.saving import load_model, save_model
from glassnet.models.sequential import Sequential

__all__ = [
    "Capture",
    "Model",
    "Sequential",
    "clone_model",
    "load_model",
    "model_from_config",
    "model_from_json",
    "save_model",
]
