"""A model from its config: ``model_from_config``, ``model_from_json``, ``clone_model``.

A config is data (Keras's JSON form of the architecture); rebuilding from it creates layers of the
classes it names — glassnet's, the ones registered with ``register_keras_serializable``, or those
passed in ``custom_objects`` — and nothing else.
"""

from __future__ import annotations

import json

from glassnet.layers import LAYER_CLASSES
from glassnet.models.model import Model

__all__ = ["clone_model", "model_from_config", "model_from_json"]


def model_from_config(config: dict, custom_objects: dict | None = None) -> Model:
    """The model a Keras config describes (``{"class_name": "Sequential", "config": …}``)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(
            "Expected a model config: a dict with 'class_name' and 'config', as "
            "model.to_json() or model.keras_config() gives."
        )
    classes = {**LAYER_CLASSES, **(custom_objects or {})}
    name = config.get("registered_name") or config.get("class_name")
    cls = classes.get(name) or classes.get(config.get("class_name"))
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        models = sorted(k for k, v in LAYER_CLASSES.items() if issubclass(v, Model))
        raise ValueError(f"Unknown model class {name!r}; glassnet builds: {', '.join(models)}.")
    return cls.from_config(config["config"], custom_objects=custom_objects)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """The model ``model.to_json()`` described, with new weights, as Keras's."""
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model_from_json needs the JSON that to_json() writes ({exc}).") from None
    return model_from_config(config, custom_objects)


def clone_model(model: Model, input_tensors=None, clone_function=None) -> Model:
    """A new model with the same architecture and freshly initialized weights, as Keras's."""
    if input_tensors is not None or clone_function is not None:
        raise NotImplementedError(
            "clone_model(input_tensors=…, clone_function=…) is not supported by glassnet yet."
        )
    return type(model).from_config(model.get_config(), custom_objects=model.layer_classes())
