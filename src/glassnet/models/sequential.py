"""``Sequential``: a ``Model`` whose layers form a chain, each reading the one before.

It is only a way of building a ``Model``: ``add`` appends a layer, and once the input shape is
known (from an ``Input``, a layer's ``input_shape``, ``build`` or the first data) the chain is
called on a symbolic input, giving the same graph ``Model(inputs, outputs)`` would.
"""

from __future__ import annotations

from glassnet.layers import InputLayer, KerasTensor, Layer, deserialize, register
from glassnet.models.model import Model, serialize_model_or_layer

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``.

    >>> from glassnet.layers import Dense, Input
    >>> model = Sequential([Input(shape=(2,)), Dense(3, activation="relu"), Dense(1)])
    >>> model.count_params()
    13
    >>> model.output_shape
    (None, 1)
    """

    keras_class = ("keras", "Sequential", None)

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._stack: list[Layer] = []
        self._input: KerasTensor | None = None
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential expects a list of layers; received {layers!r}.")
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        """The layers, without the input layer (as Keras lists them)."""
        return list(self._stack)

    def add(self, layer) -> None:
        """Append a layer; an ``Input`` first fixes the input shape and builds the model."""
        if isinstance(layer, InputLayer):
            layer = layer.output
        if isinstance(layer, KerasTensor):
            if (
                self._stack
                or self._input is not None
                or not isinstance(layer.node.layer, InputLayer)
            ):
                raise ValueError("An Input can only be the first entry of a Sequential model.")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Only glassnet layers can be added to a Sequential model; received {layer!r} "
                f"of type {type(layer).__name__}."
            )
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(f"All layers in a model need unique names; {layer.name!r} is taken.")
        if not self._stack and self._input is None and layer.requested_input_shape:
            self._input = InputLayer(shape=layer.requested_input_shape).output
        self._stack.append(layer)
        self.built = False
        if self._input is not None:
            self._chain()

    def pop(self) -> Layer:
        if not self._stack:
            raise ValueError("There are no layers in the model to pop.")
        layer = self._stack.pop()
        self.built = False
        if self._stack and self._input is not None:
            self._chain()
        return layer

    def build(self, input_shape=None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is None:
            if self._input is None:
                raise ValueError("build() needs an input_shape, e.g. model.build((None, 784)).")
            input_shape = self._input.shape
        shape = tuple(input_shape)
        if self._input is None or self._input.shape[1:] != shape[1:]:
            self._input = InputLayer(batch_shape=shape).output
        if not self._stack:
            raise ValueError("The model has no layers; add some with model.add(...).")
        self._chain()

    def _chain(self) -> None:
        """Call the layers one after the other on the input: the model's graph."""
        for node in self._nodes:  # the previous chain's calls are gone: one node per layer
            if node in node.layer.inbound_nodes and node.inputs:
                node.layer.inbound_nodes.remove(node)
        t = self._input
        for i, layer in enumerate(self._stack, start=1):
            try:
                t = layer(t)
            except ValueError as exc:
                message = f"Layer {i} ({layer.name!r}) cannot follow the one before: {exc}"
                raise ValueError(message) from None
            if isinstance(t, list):
                layer.inbound_nodes.pop()
                self._stack.remove(layer)
                raise ValueError(
                    f"All layers in a Sequential model should have a single output tensor; "
                    f"layer {i} ({layer.name!r}) has {len(t)} (return_state=True). Use the "
                    "functional API: output, *states = layer(x)."
                )
        self._init_graph(self._input, t)
        if self.compiled:
            self._resolve_compile()

    @property
    def input_layer(self) -> InputLayer | None:
        return None if self._input is None else self._input.node.layer

    def _build_input_shape(self):
        return None if self._input is None else list(self._input.shape)

    def get_config(self) -> dict:
        layers = [serialize_model_or_layer(layer) for layer in self._stack]
        if self._input is not None:
            layers.insert(0, serialize_model_or_layer(self.input_layer))
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": "float32",
            "layers": layers,
        }
        if self._input is not None:
            config["build_input_shape"] = list(self._input.shape)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> Sequential:
        if not isinstance(config, dict) or not isinstance(config.get("layers", []), list):
            raise ValueError("The model config cannot be read: it has no list of layers.")
        layers = [deserialize(entry, custom_objects) for entry in config.get("layers", [])]
        model = cls(layers, name=config.get("name"), trainable=config.get("trainable", True))
        shape = config.get("build_input_shape")
        if not model.built and shape is not None:
            model.build(tuple(shape))
        return model


register(Sequential)
