"""Keras's ``keras.saving`` namespace: saving and loading models, and registering your own
classes so that configs and ``.keras`` files may name them.

``save_model``/``load_model`` are those of ``glassnet.models`` (the ``.keras`` format lives in
``glassnet/models/saving.py``); the registry is here.

>>> from glassnet.layers import Layer
>>> @register_keras_serializable(package="MyLayers")
... class Twice(Layer):
...     pass
>>> get_registered_name(Twice)
'MyLayers>Twice'
>>> get_custom_objects()["MyLayers>Twice"] is Twice
True
"""

from __future__ import annotations

from glassnet import activations, initializers, layers, losses, optimizers, regularizers
from glassnet.backend import (
    CUSTOM_OBJECTS,
    custom_object_scope,
    function_from_config,
    known_objects,
    registered_name,
    serialize_function,
)
from glassnet.models import load_model, save_model

__all__ = [
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "register_keras_serializable",
    "save_model",
    "serialize_keras_object",
]

# Keras's module of each kind of object, as a config names it, and how it is read back.
_MODULES = {
    "glassnet.regularizers": ("keras.regularizers", regularizers.get),
    "glassnet.initializers": ("keras.initializers", initializers.get),
    "glassnet.losses": ("keras.losses", losses.get),
    "glassnet.optimizers": ("keras.optimizers", optimizers.get),
}


def register_keras_serializable(package: str = "Custom", name: str | None = None):
    """A decorator for a class or a function: configs and files may name it as
    ``"package>Name"`` (a loss function given to ``compile``, a ``Lambda``'s function, a layer).

    Registering makes what you defined loadable from a file; a file still cannot bring code of
    its own (glassnet loads only classes and functions that exist in your program).
    """
    if not isinstance(package, str) or ">" in package:
        raise ValueError(f"Received package={package!r}. Expected a name without '>'.")

    def decorator(cls):
        if not callable(cls):
            raise TypeError(
                f"register_keras_serializable decorates classes and functions; received {cls!r}."
            )
        key = f"{package}>{name or cls.__name__}"
        if key in CUSTOM_OBJECTS and CUSTOM_OBJECTS[key] is not cls:
            raise ValueError(f"{key} has already been registered to {CUSTOM_OBJECTS[key]}.")
        CUSTOM_OBJECTS[key] = cls
        cls._registered_name = key
        return cls

    return decorator


def get_custom_objects() -> dict:
    """The registry itself (registered name → class), as Keras returns it."""
    return CUSTOM_OBJECTS


def get_registered_name(obj) -> str:
    """``"package>Name"`` for a registered class (or an instance), else its class name."""
    if callable(obj) and not isinstance(obj, type) and hasattr(obj, "__name__"):  # a function
        return registered_name(obj) or obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    return registered_name(cls) or cls.__name__


def get_registered_object(name: str, custom_objects: dict | None = None):
    """The class registered (or passed in ``custom_objects``) under ``name``, else None."""
    return (custom_objects or {}).get(name) or CUSTOM_OBJECTS.get(name)


def serialize_keras_object(obj):
    """Keras's config form of an object: ``{"module", "class_name", "config",
    "registered_name"}`` (a layer as ``layers.serialize`` writes it, a function by its name);
    numbers, strings, lists and dicts as they are, their items serialized."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(item) for item in obj]
    if isinstance(obj, dict):
        return {key: serialize_keras_object(value) for key, value in obj.items()}
    if isinstance(obj, layers.Layer):
        return layers.serialize(obj)
    if isinstance(obj, activations.ActivationFunction):
        return activations.serialize(obj)
    if callable(obj) and not hasattr(obj, "get_config"):
        return serialize_function(obj)
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r}: it has no get_config().")
    registered = registered_name(type(obj))
    where = type(obj).__module__
    module = next((keras_module for ours, (keras_module, _) in _MODULES.items()
                   if where == ours or where.startswith(ours + ".")), None)  # fmt: skip
    return {
        "module": None if registered else module,
        "class_name": type(obj).__name__,
        "config": obj.get_config(),
        "registered_name": registered,
    }


def deserialize_keras_object(config, custom_objects: dict | None = None):
    """The object a Keras config describes (the inverse of ``serialize_keras_object``): a
    registered or given class by its name, a function by its name (never code from a config),
    else the built-in of the module it names."""
    if isinstance(config, list):
        return [deserialize_keras_object(item, custom_objects) for item in config]
    if not isinstance(config, dict) or "class_name" not in config:
        return config
    if config["class_name"] in ("function", "__lambda__"):
        return function_from_config(config, custom_objects)
    known = known_objects(custom_objects)
    cls = known.get(config.get("registered_name") or "") or known.get(config["class_name"])
    if cls is not None:
        return cls.from_config(config.get("config") or {})
    if config.get("module") == "keras.layers":
        return layers.deserialize(config, custom_objects)
    readers = {module: read for module, read in _MODULES.values()}
    if config.get("module") in readers:
        return readers[config["module"]](config)
    raise ValueError(
        f"Could not deserialize {config['class_name']!r} (module {config.get('module')!r}): "
        "register the class with glassnet.saving.register_keras_serializable, or pass "
        "custom_objects."
    )
