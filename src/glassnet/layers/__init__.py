"""Layers, as ``keras.layers``.

Core: ``Input``, ``Dense``, ``Activation``, ``Dropout``, ``SpatialDropout2D``, ``Flatten``,
``Reshape``, ``Lambda``; the activation layers with options (``ReLU``, ``LeakyReLU``, ``ELU``,
``Softmax``, ``PReLU``); copying and cutting (``RepeatVector``, ``UpSampling1D/2D``,
``Cropping1D/2D``). Convolutional: ``Conv1D``, ``Conv2D``, ``Conv3D``, the transposes
``Conv1DTranspose`` and ``Conv2DTranspose``, ``ZeroPadding2D``, the pooling layers
(``MaxPooling1D/2D``, ``AveragePooling1D/2D``, ``GlobalMaxPooling1D/2D``,
``GlobalAveragePooling1D/2D``) and ``BatchNormalization``. Merging: ``Add``, ``Subtract``,
``Multiply``, ``Average``, ``Maximum``, ``Minimum``, ``Concatenate``, and their functional forms
(``add``, ``concatenate``, …). Recurrent: ``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN`` with
``SimpleRNNCell``/``LSTMCell``/``GRUCell`` or ``StackedRNNCells``, the convolutional
``ConvLSTM1D``/``ConvLSTM2D``/``ConvLSTM3D``, the wrappers ``Bidirectional`` and
``TimeDistributed``, and ``Embedding`` for word ids. Preprocessing: ``Rescaling``,
``Normalization``; vocabularies: ``StringLookup``, ``IntegerLookup``, ``TextVectorization``.
"""

from __future__ import annotations

import inspect

from glassnet.backend import known_objects, registered_name
from glassnet.layers.activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from glassnet.layers.base import Cache, Input, InputLayer, KerasTensor, Layer, Node
from glassnet.layers.conv_recurrent import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from glassnet.layers.convolutional import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    ZeroPadding2D,
)
from glassnet.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Lambda,
    Masking,
    Reshape,
    SpatialDropout2D,
)
from glassnet.layers.embedding import Embedding
from glassnet.layers.lookup import IntegerLookup, StringLookup, TextVectorization
from glassnet.layers.merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from glassnet.layers.normalization import BatchNormalization
from glassnet.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from glassnet.layers.preprocessing import Normalization, Rescaling
from glassnet.layers.recurrent import (
    GRU,
    LSTM,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
    StackedRNNCells,
)
from glassnet.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    RepeatVector,
    UpSampling1D,
    UpSampling2D,
)
from glassnet.layers.wrappers import RNN, Bidirectional, TimeDistributed

__all__ = [
    "ELU",
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "BatchNormalization",
    "Bidirectional",
    "Cache",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Cropping1D",
    "Cropping2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "IntegerLookup",
    "KerasTensor",
    "LSTMCell",
    "Lambda",
    "Layer",
    "LeakyReLU",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Node",
    "Normalization",
    "PReLU",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SimpleRNN",
    "SimpleRNNCell",
    "Softmax",
    "SpatialDropout2D",
    "StackedRNNCells",
    "StringLookup",
    "Subtract",
    "TextVectorization",
    "TimeDistributed",
    "UpSampling1D",
    "UpSampling2D",
    "ZeroPadding2D",
    "add",
    "average",
    "concatenate",
    "deserialize",
    "maximum",
    "minimum",
    "multiply",
    "register",
    "serialize",
    "subtract",
]

LAYER_CLASSES: dict[str, type] = {}
"""Every layer class a config may name, by class name: the built-in ones and those registered."""


def register(cls: type) -> type:
    """Make a layer class (or a model class) loadable from a config by its class name."""
    LAYER_CLASSES[cls.__name__] = cls
    return cls


for _cls in (
    Activation,
    Add,
    Average,
    AveragePooling1D,
    AveragePooling2D,
    BatchNormalization,
    Bidirectional,
    Concatenate,
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    ConvLSTM1D,
    ConvLSTM2D,
    ConvLSTM3D,
    Cropping1D,
    Cropping2D,
    Dense,
    Dropout,
    ELU,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GRU,
    InputLayer,
    IntegerLookup,
    Lambda,
    LeakyReLU,
    LSTM,
    Masking,
    Maximum,
    MaxPooling1D,
    MaxPooling2D,
    Minimum,
    Multiply,
    Normalization,
    PReLU,
    ReLU,
    RepeatVector,
    Rescaling,
    Reshape,
    RNN,
    SimpleRNN,
    Softmax,
    SpatialDropout2D,
    StringLookup,
    Subtract,
    TextVectorization,
    TimeDistributed,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding2D,
):
    register(_cls)


def known_custom_objects() -> dict:
    """The registered classes, by registered name ("package>Name") and by class name."""
    known = known_objects()
    return {**{cls.__name__: cls for cls in known.values() if isinstance(cls, type)}, **known}


def serialize(layer: Layer) -> dict:
    """Keras 3's config form of a layer: module, class name, config (and build config)."""
    registered = registered_name(type(layer))  # a user's registered layer
    entry = {
        "module": None if registered else "keras.layers",
        "class_name": type(layer).__name__,
        "config": layer.get_config(),
        "registered_name": registered,
    }
    if layer.built and not isinstance(layer, InputLayer):
        shape = layer.input_shape
        entry["build_config"] = {
            "input_shape": [list(s) for s in shape] if isinstance(shape, list) else list(shape)
        }
    return entry


def deserialize(entry: dict, custom_objects: dict | None = None) -> Layer:
    """The layer described by ``serialize``'s dict (or Keras's, for the layers glassnet has)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ValueError(f"Expected a layer config dict with a 'class_name'; received {entry!r}.")
    classes = {**LAYER_CLASSES, **known_custom_objects(), **(custom_objects or {})}
    name = entry["class_name"]
    if isinstance(entry.get("registered_name"), str) and entry["registered_name"] in classes:
        name = entry["registered_name"]
    if name not in classes:
        known = ", ".join(sorted(LAYER_CLASSES))
        raise ValueError(f"unknown layer {name!r} in config.json; glassnet has: {known}.")
    config = entry.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"The config of layer {name!r} must be a dict; received {config!r}.")
    from_config = classes[name].from_config
    takes = inspect.signature(from_config).parameters  # a Lambda looks up its function
    layer = (from_config(dict(config), custom_objects=custom_objects) if "custom_objects" in takes
             else from_config(dict(config)))  # fmt: skip
    build = entry.get("build_config")
    if build and not layer.built and build.get("input_shape") is not None:
        shape = build["input_shape"]
        nested = bool(shape) and isinstance(shape[0], (list, tuple))
        layer.build([tuple(s) for s in shape] if nested else tuple(shape))
    return layer
