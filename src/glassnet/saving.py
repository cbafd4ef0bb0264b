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

from glassnet.backend import CUSTOM_OBJECTS
from glassnet.models import load_model, save_model

__all__ = [
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "register_keras_serializable",
    "save_model",
]


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
        return getattr(obj, "_registered_name", None) or obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    return getattr(cls, "_registered_name", None) or cls.__name__


def get_registered_object(name: str, custom_objects: dict | None = None):
    """The class registered (or passed in ``custom_objects``) under ``name``, else None."""
    return (custom_objects or {}).get(name) or CUSTOM_OBJECTS.get(name)
