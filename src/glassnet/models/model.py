"""``Model``: a network of layers, trained by the deck's forward and backward passes.

A model is a directed acyclic graph of *nodes* — calls of layers on tensors — from its inputs to
its outputs (``Sequential`` is the chain). The forward pass runs the nodes in order, each layer
storing what its backward step needs. The backward pass starts at the outputs (the deck's case 1:
for softmax with cross-entropy ∂C/∂z = (a − y) / rows comes straight from the loss) and recurses
through the nodes in reverse (case 2). Where a tensor feeds two layers it receives the sum of what
both send back — the deck's ∂C/∂z = σ′(z)·(w3·∂C/∂z′ + w4·∂C/∂z″). Then the optimizer steps every
parameter. ``fit`` is the one training loop; everything optional in it is a callback.

The step protocol, which the glass box, saving, plots, the CLI and the web page use:

- ``forward(x, training)``: the training forward pass (values kept in the layers);
- ``backpropagate(y, out)``: C, with every layer's gradients filled;
- ``loss_value(y, out)``: C alone;
- ``train_step(x, y)``: forward, backpropagate, one optimizer update;
- ``capture(x)``: every layer's values for ``x`` in caches of their own, safe to call from any
  thread while another one trains.
"""

from __future__ import annotations

import inspect
import json
import threading

from glassnet import distribution, ops
from glassnet.backend import (
    make_rng,
    process_count,
    process_index,
    registered_name,
    snake_case,
    unique_name,
)
from glassnet.callbacks import History
from glassnet.layers import (
    LAYER_CLASSES,
    Cache,
    Input,
    InputLayer,
    KerasTensor,
    Layer,
    Node,
    register,
    serialize,
)
from glassnet.layers.base import tracked_layers
from glassnet.models.checks import as_input
from glassnet.models.compiling import Compiling
from glassnet.models.graph import Capture, Graph
from glassnet.models.steps import Steps
from glassnet.models.summary import Summary
from glassnet.models.trainer import Trainer

__all__ = ["Capture", "Model", "ModelCall"]


class Model(Trainer, Compiling, Steps, Summary, Graph, Layer):
    """A model from inputs to outputs, as ``keras.Model`` with the functional API.

    >>> from glassnet.layers import Add, Dense, Input
    >>> x = Input(shape=(4,))
    >>> h = Dense(3, activation="relu")(x)
    >>> out = Dense(2, activation="softmax")(Add()([h, Dense(3)(x)]))
    >>> model = Model(inputs=x, outputs=out)
    >>> model.count_params(), model.output_shape
    (38, (None, 2))
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, dtype=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        super().__init__(
            name=name or unique_name(self._default_name()), trainable=trainable, dtype=dtype
        )
        self.needs_input_gradient = False  # until another model uses this one as a layer
        self.optimizer = None
        self.loss = None
        self.output_losses: list = []  # compile's loss per output; `losses`: add_loss's, as Keras
        self.loss_weights: list[float] = []
        self.compiled = False
        self._metric_specs: list[list] = []
        self.stop_training = False
        self.history: History | None = None
        self.last_batch = None  # (x, y, C) of the latest training step, for callbacks
        # The glass box sets this for the steps it shows: every layer then runs on its own (no
        # pooled convolutions, see Graph.fused_layers), and every node keeps the ∂C/∂(output) it
        # received and the ∂C/∂(input) it sent back (as dC_da, dC_dx on its cache).
        self.record_layers = False
        self.resume_from_epoch = None  # set by BackupAndRestore when a backup was restored
        self._rng = make_rng()
        self._pairs = None  # (W, ∂C/∂W) pairs the optimizer updates, made on first use
        self._buffers = None  # {float type: (parameters, gradients)}, see pack_parameters
        self._training_lock = threading.Lock()
        self.inputs: list[KerasTensor] = []
        self.outputs: list[KerasTensor] = []
        self._nodes: list[Node] = []
        self._layer_order: list[Layer] = []
        self._output_structure = "single"
        self._plan: list = []  # the forward pass's steps, see _init_graph
        self._fused_plan: list = []  # the same, with pooled convolutions as one step
        self._case_1_flags = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    # ---- a subclassed Model: call() written with layers and glassnet.ops ---------------------

    def subclassed(self) -> bool:
        """Whether this is a ``Model`` subclass with its own ``call`` (Keras's subclassing API)."""
        return type(self).call is not Layer.call

    def build(self, input_shape=None) -> None:
        """A subclassed model is built on its first data: one node, ``ModelCall``, runs its
        ``call`` with every op and every layer call recorded, so that its backward pass is the
        deck's recursion over them (see ``glassnet.ops``)."""
        if not self.subclassed() or self.built:
            return super().build(input_shape)
        if input_shape is None:
            raise ValueError(
                f"{type(self).__name__} is built from its first data, or build(shape)."
            )
        inputs = Input(batch_shape=tuple(input_shape))
        self._init_graph(inputs, ModelCall(self)(inputs))
        if self.compiled:  # compiled before its first data, as Keras code does
            self._resolve_compile()

    def _default_name(self) -> str:
        return "functional" if type(self) is Model else snake_case(type(self).__name__)

    def random_generators(self) -> dict:
        """Every ``np.random.Generator`` fit draws from, by a stable name: the model's (the
        order of the batches) and each layer's that has one (dropout's masks), for
        ``BackupAndRestore`` to save and restore."""
        found = {"model": self._rng}
        for layer in self.leaf_layers():
            if hasattr(layer, "_rng"):
                found[f"layer:{layer.name}"] = layer._rng
        return found

    def random_generator_states(self) -> list[dict]:
        """The state of every generator in ``random_generators()``, one dict per process in rank
        order (under data-parallel training each draws its own dropout masks)."""
        own = {k: rng.bit_generator.state for k, rng in self.random_generators().items()}
        dist = distribution.active()
        return [own] if dist is None else dist.gather(own)

    def set_random_generator_states(self, states: list[dict]) -> None:
        """Put back states that ``random_generator_states`` gave: this process's, where there is
        one per process, else the first."""
        own = states[process_index()] if len(states) == process_count() else states[0]
        for name, rng in self.random_generators().items():
            if name in own:
                rng.bit_generator.state = own[name]

    def __call__(self, x, training=None):
        if isinstance(x, KerasTensor) or (
            isinstance(x, (list, tuple)) and any(isinstance(t, KerasTensor) for t in x)
        ):
            return self._call_symbolic(x)
        items = x if isinstance(x, (list, tuple)) else [x]
        if ops.recording() is not None and any(isinstance(t, ops.Tensor) for t in items):
            # inside a layer's call(): one recorded step, whose backward is this graph's
            self.needs_input_gradient = True  # the call's earlier steps need ∂C/∂(its input)
            inside = getattr(ops.recording(), "training", False)
            return self._call_recorded(x, inside if training is None else training)
        xs, _ = self.check_data(x)
        caches = {id(node): Cache() for node in self._nodes}
        values = self._run([as_input(a, self.compute_dtype) for a in xs], bool(training), caches)
        return self._structure([values[id(t)] for t in self.outputs])

    # ---- configuration and saving -------------------------------------------------------------

    def _tensor_config(self, t: KerasTensor) -> dict:
        return {
            "class_name": "__keras_tensor__",
            "config": {
                "shape": list(t.shape),
                "dtype": t.dtype,
                "keras_history": [t.node.layer.name, self._node_index(t.node), t.index],
            },
        }

    def get_config(self) -> dict:
        """Keras's functional config: every layer with the nodes that call it (a subclassed
        model's: the arguments it was made with)."""
        if self.subclassed():
            return self.made_with({"name": self.name, "trainable": self.trainable})
        layers = []
        for layer in self.layers:
            entry = serialize_model_or_layer(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = []
            for node in self._nodes:
                if node.layer is not layer or isinstance(layer, InputLayer):
                    continue
                tensors = [self._tensor_config(t) for t in node.inputs]
                if node.states:  # a recurrent layer's initial state, as Keras writes it
                    call = {"args": tensors[:1], "kwargs": {"initial_state": tensors[1:]}}
                else:
                    call = {"args": [tensors] if node.many else tensors, "kwargs": {}}
                entry["inbound_nodes"].append(call)
            layers.append(entry)

        def ends(tensors):
            triples = [[t.node.layer.name, self._node_index(t.node), t.index] for t in tensors]
            return triples[0] if len(triples) == 1 else triples

        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers,
            "input_layers": ends(self.inputs),
            "output_layers": ends(self.outputs),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        """Rebuild a functional model from Keras's config: layers first, then their calls (a
        subclassed model: made again with its arguments, built on its first data)."""
        from glassnet.models.functional import functional_from_config

        if cls.call is not Layer.call:
            return Layer.from_config.__func__(cls, config)
        return functional_from_config(cls, config, custom_objects)

    def save(self, filepath, overwrite=True) -> None:
        """Save architecture, weights, optimizer state and compile settings to a ``.keras`` file."""
        from glassnet.models import saving  # saving reads and writes models: import it at use

        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True) -> None:
        """Save the weights alone, to a ``.weights.h5`` file in Keras's layout."""
        from glassnet.models import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False, optimizer=False) -> None:
        """Load weights saved by ``save_weights`` (or the weights inside a ``.keras`` file).

        ``optimizer=True`` (glassnet's) also restores the optimizer's state from a ``.keras``
        file, so that training goes on exactly where it stopped.
        """
        from glassnet.models import saving

        if skip_mismatch:
            raise NotImplementedError("load_weights(skip_mismatch=True) is not supported.")
        saving.load_weights(self, filepath, optimizer=optimizer)

    def to_json(self, **kwargs) -> str:
        """The architecture as Keras's JSON (no weights): ``models.model_from_json`` reads it."""
        return json.dumps(self.keras_config(), **kwargs)

    # (module, class name, registered name) at the top of Keras's config.json
    # (module, class name, registered name) as Keras writes this kind of model in its files
    keras_class = ("keras.src.models.functional", "Functional", "Functional")

    def keras_config(self) -> dict:
        """This model as Keras writes it at the top of ``config.json`` (no compile settings);
        a subclassed model by its own class, found again by its registered name."""
        module, class_name, registered = self.keras_class
        if self.subclassed():  # Keras writes no module for a class of your own
            class_name = type(self).__name__
            module, registered = None, registered_name(type(self)) or class_name
        return {
            "module": module,
            "class_name": class_name,
            "config": self.get_config(),
            "registered_name": registered,
            "build_config": {"input_shape": self._build_input_shape()},
        }

    def _build_input_shape(self):
        if self.subclassed():  # built on its first data: the shape of that data, as Keras's
            return list(self.inputs[0].shape)
        return None  # Keras writes null for functional models: the inputs say it all

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, {len(self.layers)} layers>"


def serialize_model_or_layer(layer: Layer) -> dict:
    """A layer's config entry; a model inside a model is written as Keras writes one."""
    return layer.keras_config() if isinstance(layer, Model) else serialize(layer)


register(Model)
LAYER_CLASSES["Functional"] = Model  # what Keras calls a model made with the functional API


class ModelCall(Layer):
    """A subclassed ``Model``'s ``call`` as the one layer of its graph: recorded op by op, each
    layer it calls one step (see ``Layer._call_recorded``), and the layers it keeps as
    attributes lending it their parameters, as a layer written with ``call`` does."""

    def __init__(self, model: Model):
        super().__init__(name=f"{model.name}_call")
        self.model = model

    def call(self, inputs, training=False):
        takes = inspect.signature(self.model.call).parameters
        return self.model.call(inputs, training=training) if "training" in takes else (
            self.model.call(inputs))  # fmt: skip

    def sublayers(self) -> list[tuple[str, Layer]]:
        return tracked_layers(self.model)

    def get_config(self) -> dict:
        raise NotImplementedError(
            f"{self.model.name}'s call() has no config of its own: the model is made again "
            "from its arguments."
        )
