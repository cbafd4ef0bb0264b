"""Layers, as ``keras.layers``: ``Input``, ``Dense``, ``Activation``, ``Dropout``, ``Flatten``."""

from __future__ import annotations

from glassnet.backend import lookup
from glassnet.layers.base import Input, InputLayer, Layer
from glassnet.layers.core import Activation, Dense, Dropout, Flatten

__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "deserialize",
    "serialize",
]

_CLASSES = {cls.__name__.lower(): cls for cls in (Activation, Dense, Dropout, Flatten, InputLayer)}


def serialize(layer: Layer) -> dict:
    """Keras 3's config form of a layer: module, class name, config (and build config)."""
    entry = {
        "module": "keras.layers",
        "class_name": type(layer).__name__,
        "config": layer.get_config(),
        "registered_name": None,
    }
    if layer.built and not isinstance(layer, InputLayer):
        entry["build_config"] = {"input_shape": list(layer.input_shape)}
    return entry


def deserialize(entry: dict) -> Layer:
    """The layer described by ``serialize``'s dict (or Keras's, for the layers glassnet has)."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"Expected a layer config dict with a 'class_name'; received {entry!r}.")
    cls = lookup("layer class", entry["class_name"], _CLASSES)
    config = dict(entry.get("config") or {})
    layer = cls.from_config(config)
    build = entry.get("build_config")
    if build and not layer.built:
        layer.build(tuple(build["input_shape"]))
    return layer
