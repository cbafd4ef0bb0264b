"""A model from its config: ``model_from_config``, ``model_from_json``, ``clone_model``.

A config is data (Keras's JSON form of the architecture); rebuilding from it creates layers of the
classes it names — glassnet's, the ones registered with ``register_keras_serializable``, or those
passed in ``custom_objects`` — and nothing else.
"""

from __future__ import annotations

import json

from glassnet.layers import LAYER_CLASSES, known_custom_objects
from glassnet.models.model import Model

__all__ = ["clone_model", "model_class", "model_from_config", "model_from_json"]


def model_from_config(config: dict, custom_objects: dict | None = None) -> Model:
    """The model a Keras config describes (``{"class_name": "Sequential", "config": …}``); a
    subclassed model is made from its arguments and built on the shape its ``build_config``
    records, as Keras builds it."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(
            "Expected a model config: a dict with 'class_name' and 'config', as "
            "model.to_json() or model.keras_config() gives."
        )
    model = model_class(config, custom_objects).from_config(
        config["config"], custom_objects=custom_objects
    )
    if model.subclassed():
        _build_from_config(model, config.get("build_config"))
    return model


def model_class(config: dict, custom_objects: dict | None = None) -> type[Model]:
    """The class a model config names: by its registered name ("package>Name") first, then by
    class name, among glassnet's, the registered ones and ``custom_objects``."""
    classes = {**LAYER_CLASSES, **known_custom_objects(), **(custom_objects or {})}
    names = [config.get("registered_name"), config.get("class_name")]
    found = [classes[k] for k in names if isinstance(k, str) and k in classes]
    if not (found and isinstance(found[0], type) and issubclass(found[0], Model)):
        models = ", ".join(sorted(k for k, v in LAYER_CLASSES.items() if issubclass(v, Model)))
        raise ValueError(
            f"Unknown model class {config.get('class_name')!r}: glassnet builds {models}, and a "
            "model class of your own that is registered "
            "(@glassnet.saving.register_keras_serializable()) or given in custom_objects."
        )
    return found[0]


def _build_from_config(model: Model, build_config) -> None:
    """Build a subclassed model on the shape of the data it was first called on (any batch
    size), as Keras's ``build_config`` records it."""
    shape = build_config.get("input_shape") if isinstance(build_config, dict) else None
    if not (isinstance(shape, list) and shape and all(
            d is None or (type(d) is int and d > 0) for d in shape)):  # fmt: skip
        raise ValueError(
            f"the subclassed model {type(model).__name__} has no input shape to be built on "
            f"(build_config {build_config!r}); glassnet builds one from one array's shape."
        )
    model.build((None, *shape[1:]))


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
