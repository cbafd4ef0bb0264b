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

import json
import math
import numbers
import textwrap
import threading
from dataclasses import dataclass

from glassnet import losses as losses_module
from glassnet import metrics as metrics_module
from glassnet import optimizers as optimizers_module
from glassnet.backend import (
    blas_threads_for,
    did_you_mean,
    floatx,
    format_shape,
    make_rng,
    num_threads,
    parallel_map,
    unique_name,
    xp,
)
from glassnet.callbacks import CallbackList, History, ProgbarLogger
from glassnet.layers import (
    LAYER_CLASSES,
    Cache,
    InputLayer,
    KerasTensor,
    Layer,
    Node,
    register,
    serialize,
)
from glassnet.models.data import ArrayBatches, GeneratedBatches, is_batch_source

__all__ = ["Capture", "Model"]


# ---- checks on what users pass ----------------------------------------------------------------


def _check_batch_size(batch_size):
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size <= 0
    ):
        raise ValueError(f"Received batch_size={batch_size!r}. Expected a positive integer.")
    return int(batch_size)


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"Received verbose={verbose!r}. Expected 'auto', 0, 1 or 2.")
    return int(verbose)


def _as_array(data, what: str):
    if data is None:
        raise ValueError(f"Received {what}=None. Expected an array of samples.")
    try:
        arr = xp.asarray(data)
    except ValueError:
        raise ValueError(
            f"{what} could not be made into one array: its samples have different shapes "
            "(a ragged list?). Give every sample the same shape, e.g. with "
            "glassnet.utils.pad_sequences for sequences."
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers; received an array of dtype {arr.dtype}.")
    if arr.ndim == 0:
        raise ValueError(f"{what} must be an array of samples; received a scalar.")
    if len(arr) == 0:
        raise ValueError(f"Received an empty dataset: {what} has shape {arr.shape}, 0 samples.")
    # A sum propagates NaN and ±inf: one pass, no temporary the size of the data. A sum can
    # also overflow on finite data, so only then are the samples counted one by one.
    with xp.errstate(over="ignore"):
        total = arr.sum() if arr.dtype.kind == "f" else 0
    if not xp.isfinite(total):
        bad = int((~xp.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
        if bad:
            raise ValueError(
                f"{what} contains NaN or infinity in {bad} sample(s); clean or impute them first."
            )
    return arr


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return ""  # unreachable


def _per_output(value, names: list[str], what: str) -> list:
    """One entry per output from a single value, a list in output order, or a dict by name."""
    if isinstance(value, dict):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(
                f"{what} names outputs {sorted(unknown)}, but the model's outputs are {names}."
            )
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)) and (len(names) > 1 or what in ("loss", "loss_weights")):
        if len(value) != len(names):
            raise ValueError(
                f"The model has {len(names)} outputs ({', '.join(names)}); received {len(value)} "
                f"entries for {what}."
            )
        return list(value)
    return [value] * len(names)


_FLAGS_SET_BY = None
"""(model, its needs_input_gradient) that last set the layers' needs_input_gradient flags: a layer
shared by two models gets them again from whichever model trains it."""


@dataclass
class Capture:
    """What one forward pass computed at every call of a layer, inputs left out: ``caches[i]``
    holds the ``a_prev``, ``z``, ``a``, … that node i stored, ``outputs[i]`` its output."""

    nodes: list[Node]
    caches: list[Cache]
    outputs: list

    def of(self, layer_name: str) -> Cache:
        """The cache of the first call of the layer called ``layer_name``."""
        for node, cache in zip(self.nodes, self.caches):
            if node.layer.name == layer_name:
                return cache
        raise KeyError(layer_name)


class Model(Layer):
    """A model from inputs to outputs, as ``keras.Model`` with the functional API.

    >>> from glassnet.layers import Add, Dense, Input
    >>> x = Input(shape=(4,))
    >>> h = Dense(3, activation="relu")(x)
    >>> out = Dense(2, activation="softmax")(Add()([h, Dense(3)(x)]))
    >>> model = Model(inputs=x, outputs=out)
    >>> model.count_params(), model.output_shape
    (38, (None, 2))
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        if inputs is None and outputs is None and type(self).call is not Layer.call:
            raise NotImplementedError(
                f"{type(self).__name__} subclasses Model and defines call(): glassnet cannot "
                "differentiate call() automatically. Build the same network with the functional "
                "API instead — x = Input(shape=...); y = Dense(...)(x); Model(inputs=x, outputs=y)"
                " — or as a Sequential."
            )
        super().__init__(name=name or unique_name(self._default_name()), trainable=trainable)
        self.needs_input_gradient = False  # until another model uses this one as a layer
        self.optimizer = None
        self.loss = None
        self.losses: list = []
        self.loss_weights: list[float] = []
        self.compiled = False
        self._metric_specs: list[list] = []
        self.stop_training = False
        self.history: History | None = None
        self.last_batch = None  # (x, y, C) of the latest training step, for callbacks
        # The glass box sets this on its copy: every node then keeps the ∂C/∂(output) it
        # received and the ∂C/∂(input) it sent back (as dC_da, dC_dx on its cache).
        self.record_backward = False
        self.resume_from_epoch = None  # set by BackupAndRestore when a backup was restored
        self._rng = make_rng()
        self._pairs = None  # (W, ∂C/∂W) pairs the optimizer updates, made on first use
        self._training_lock = threading.Lock()
        self.inputs: list[KerasTensor] = []
        self.outputs: list[KerasTensor] = []
        self._nodes: list[Node] = []
        self._layer_order: list[Layer] = []
        self._output_structure = "single"
        self._plan: list = []  # the forward pass's steps, see _init_graph
        self._case_1_flags = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    def _default_name(self) -> str:
        return "functional" if type(self) is Model else self.__class__.__name__.lower()

    # ---- the graph ----------------------------------------------------------------------------

    def _init_graph(self, inputs, outputs) -> None:
        """Collect the nodes between ``inputs`` and ``outputs`` in an order that runs."""
        if isinstance(inputs, dict):
            inputs = list(inputs.values())
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if isinstance(outputs, dict):
            self._output_structure = "dict"
            outputs = list(outputs.values())
        elif isinstance(outputs, (list, tuple)):
            self._output_structure = "list"
        self.outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for what, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f"Model {what} must be symbolic tensors from Input(...) and layer calls; "
                        f"received {t!r}. Example: x = Input(shape=(784,)); "
                        "y = Dense(10)(x); Model(inputs=x, outputs=y)."
                    )
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(
                    f"Model inputs must come straight from Input(...); {t.name!r} is the output "
                    f"of a {type(t.node.layer).__name__} layer."
                )
        order, visiting, done = [], set(), set()
        input_nodes = {id(t.node) for t in self.inputs}
        first_seen: dict[int, int] = {}  # layer -> when the search first met it (Keras's order)

        def enter(node):
            if id(node) in visiting:  # pragma: no cover - symbolic calls cannot make a cycle
                raise ValueError("The layers form a cycle; a model must be acyclic.")
            visiting.add(id(node))
            first_seen.setdefault(id(node.layer), len(first_seen))
            if isinstance(node.layer, InputLayer) and id(node) not in input_nodes:
                raise ValueError(
                    f"The graph is disconnected: it reads from input {node.layer.name!r}, which "
                    f"is not among the model's inputs ({', '.join(t.name for t in self.inputs)})."
                )

        def visit(root):  # depth first, a node after every node it reads from; no recursion,
            if id(root) in done:  # so a model may be thousands of layers deep
                return
            enter(root)
            stack = [[root, 0]]  # (node, how many of its inputs were visited)
            while stack:
                node, i = stack[-1]
                if i < len(node.inputs):
                    stack[-1][1] += 1
                    child = node.inputs[i].node
                    if id(child) not in done:
                        enter(child)
                        stack.append([child, 0])
                    continue
                stack.pop()
                visiting.discard(id(node))
                done.add(id(node))
                order.append(node)

        for t in self.outputs:
            visit(t.node)
        for t in self.inputs:
            if id(t.node) not in done:
                order.insert(0, t.node)  # an input no output depends on still takes data
                first_seen[id(t.node.layer)] = -1
        self._layer_order = self._keras_layer_order(order, first_seen)
        names = [layer.name for layer in self._layer_order]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(
                f"All layers in a model need unique names; {sorted(duplicates)} appear twice."
            )
        self._nodes = order
        self._consumers: dict[int, int] = {}
        for node in order:
            for t in node.inputs:
                self._consumers[id(t)] = self._consumers.get(id(t), 0) + 1
        calls: dict[int, int] = {}
        for node in order:
            calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
        # A layer called once keeps its values on itself; a shared layer gets a cache per call.
        self._training_caches = {
            id(node): None if calls[id(node.layer)] == 1 else Cache() for node in order
        }
        self._shared = {id(node.layer) for node in order if calls[id(node.layer)] > 1}
        # What each step of the forward pass reads and writes, worked out once per graph.
        self._plan = [
            (node, node.layer, node.many, [id(t) for t in node.inputs],
             [id(t) for t in node.outputs])
            for node in order
            if not isinstance(node.layer, InputLayer)
        ]  # fmt: skip
        self._input_keys = [id(t) for t in self.inputs]
        # For inference: after step i, the tensors no later step reads (outputs are kept).
        kept, last_read = {id(t) for t in self.outputs}, {}
        for i, (_, _, _, reads, _) in enumerate(self._plan):
            for k in reads:
                last_read[k] = i
        self._done_after = [
            [k for k in reads if last_read[k] == i and k not in kept]
            for i, (_, _, _, reads, _) in enumerate(self._plan)
        ]
        # Numbers per sample in the largest layer output: how inference cuts a batch in pieces.
        self._largest_output = max(
            (math.prod(node.output.shape[1:]) for node, *_ in self._plan
             if None not in node.output.shape[1:]),
            default=0,
        )  # fmt: skip
        self._case_1_flags = None  # per output, once the losses are known
        global _FLAGS_SET_BY
        _FLAGS_SET_BY = None  # a new graph: its layers' flags must be set again
        self.input_shape = (
            self.inputs[0].shape if len(self.inputs) == 1 else [t.shape for t in self.inputs]
        )
        self.output_shape = (
            self.outputs[0].shape if len(self.outputs) == 1 else [t.shape for t in self.outputs]
        )
        self.built = True
        self._pairs = None

    @staticmethod
    def _keras_layer_order(order: list[Node], first_seen: dict[int, int]) -> list[Layer]:
        """The layers as Keras lists them — and so names them in its weight files: deepest
        first (a node's depth is the longest path from it to an output), then in the order the
        search from the outputs first met them."""
        producer = {id(t): node for node in order for t in node.outputs}
        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        for node in reversed(order):
            depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = node_depth[id(node)] = depth
            for t in node.inputs:
                parent = producer.get(id(t))
                if parent is not None:
                    node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
        layers = Model._unique_layers(order)
        return sorted(layers, key=lambda layer: (-layer_depth[id(layer)], first_seen[id(layer)]))

    @staticmethod
    def _unique_layers(nodes) -> list[Layer]:
        seen, layers = set(), []
        for node in nodes:
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers.append(node.layer)
        return layers

    @property
    def layers(self) -> list[Layer]:
        """The layers, input layers included, in Keras's order (deepest first)."""
        return list(self._layer_order)

    @property
    def nodes(self) -> list[Node]:
        """The calls of layers in the order the forward pass runs them."""
        return list(self._nodes)

    def layer_classes(self) -> dict[str, type]:
        """The class of every layer, nested models and their layers included, by class name:
        what rebuilding this model from its config needs (a user's own layers among them)."""
        classes = {}
        for layer in self.layers:
            classes[type(layer).__name__] = type(layer)
            if isinstance(layer, Model):
                classes.update(layer.layer_classes())
        return classes

    def leaf_layers(self) -> list[Layer]:
        """Every layer that holds numbers, nested models opened up."""
        out = []
        for layer in self.layers:
            out.extend(layer.leaf_layers() if isinstance(layer, Model) else [layer])
        return out

    @property
    def output_names(self) -> list[str]:
        return [t.node.layer.name for t in self.outputs]

    @property
    def input_names(self) -> list[str]:
        return [t.node.layer.name for t in self.inputs]

    def get_layer(self, name=None, index=None) -> Layer:
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Received index={index}, but the model has only {len(layers)} layers."
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in layers]
        raise ValueError(
            f"No such layer: {name!r}.{did_you_mean(str(name), names)} "
            f"Existing layers are: {names}."
        )

    # ---- the forward pass ---------------------------------------------------------------------

    def _run(self, xs: list, training: bool, caches: dict, keep: bool = True) -> dict:
        """Run every node on the input arrays ``xs``; returns the value of every tensor.

        With ``keep=False`` (predict, evaluate: nothing will go backward) each layer's cache is
        emptied as soon as it has run and each value as soon as no later layer reads it, so that
        the memory a batch needs is one layer's, not the whole model's; only the outputs and
        their layers' caches (which the loss reads) are returned.
        """
        values = {id(t): x for t, x in zip(self.inputs, xs)}
        outputs = {id(t) for t in self.outputs}
        masks: dict = {}  # tensor → (batch, steps): which steps are real (Embedding, Masking)
        for step, (node, layer, many, reads, writes) in enumerate(self._plan):
            cache = caches[id(node)]
            if not keep:
                cache.inference_only = True  # a layer may skip keeping what backward reads
            # The mask of the (first) input: merge layers take none; an initial state has none.
            mask = None if many and not node.states else masks.get(reads[0])
            (layer if cache is None else cache).input_mask = mask  # a recurrent layer reads it
            a_prev = [values[k] for k in reads] if many else values[reads[0]]
            result = layer.forward(a_prev, training=training, cache=cache)
            outs = result if node.several else (result,)
            for k, out in zip(writes, outs):
                values[k] = out
            out_mask = layer.compute_mask(a_prev, outs[0], mask)
            if out_mask is not None:
                masks[writes[0]] = out_mask  # a recurrent layer's final states have none
            if not keep:
                if outputs.isdisjoint(writes):
                    vars(cache).clear()  # what backward would have read: patches, z, a, …
                for k in self._done_after[step]:
                    del values[k]
        return values

    # Inference runs in pieces whose largest layer output holds about this many numbers: small
    # enough to stay in a core's cache from one layer to the next; the pieces are shared out
    # between the threads, each running whole pieces with one BLAS thread.
    INFERENCE_PIECE = 1 << 19

    def _infer(self, xs: list, caches: dict) -> list:
        """The outputs for the batch ``xs`` in inference mode, computed in pieces sized for the
        cache; the output layers' caches then hold z for the whole batch (the loss reads it)."""
        n = len(xs[0])
        pieces = -(-n * self._largest_output // self.INFERENCE_PIECE)
        if pieces < 2 * num_threads():  # too little to share: all threads on the whole batch
            values = self._run(xs, False, caches, keep=False)
            return [values[id(t)] for t in self.outputs]
        rows = -(-n // pieces)
        starts = range(0, n, rows)
        done: list = [None] * len(starts)

        def piece(item) -> None:
            k = item[1]
            own = {id(node): Cache() for node in self._nodes}  # each thread its own values
            values = self._run([x[starts[k] : starts[k] + rows] for x in xs], False, own, False)
            done[k] = [
                (values[id(t)], getattr(self.cache_of(t.node, own), "z", None))
                for t in self.outputs
            ]

        with blas_threads_for(0):  # one BLAS thread per piece: the pieces use the cores
            parallel_map(piece, [(xs[0][s : s + rows], k) for k, s in enumerate(starts)], 0)
        outs = []
        for i, t in enumerate(self.outputs):
            outs.append(xp.concatenate([d[i][0] for d in done]))
            if done[0][i][1] is not None:
                self.cache_of(t.node, caches).z = xp.concatenate([d[i][1] for d in done])
        return outs

    def _as_inputs(self, x) -> list:
        if isinstance(x, dict):
            return [x[name] for name in self.input_names]
        return list(x) if isinstance(x, (list, tuple)) else [x]

    def _structure(self, outs: list):
        if self._output_structure == "single" and len(outs) == 1:
            return outs[0]
        if self._output_structure == "dict":
            return dict(zip(self.output_names, outs))
        return outs

    def forward(self, x, training: bool = False, cache=None):
        """The forward pass: every layer computes its output and stores what backward needs.

        With no ``cache`` the values stay in the layers (a shared layer's in one cache per call):
        the training pass. A model used as a layer inside another gets a cache of its own.
        """
        caches = self._caches_for(cache)
        values = self._run(self._as_inputs(x), training, caches)
        outs = [values[id(t)] for t in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def _caches_for(self, cache) -> dict:
        if cache is None:
            return self._training_caches
        if not hasattr(cache, "nodes"):
            cache.nodes = {id(node): Cache() for node in self._nodes}
        return cache.nodes

    def capture(self, x, training: bool = False) -> Capture:
        """Every node's values for the batch ``x``, in fresh caches (inference by default).

        Nothing is stored in the layers, so this is safe while another thread trains the model.
        """
        xs = [xp.asarray(a, dtype=self.compute_dtype) for a in self.check_data(x)[0]]
        caches = {id(node): Cache() for node in self._nodes}
        values = self._run(xs, training, caches)
        nodes = [node for node in self._nodes if not isinstance(node.layer, InputLayer)]
        return Capture(
            nodes=nodes,
            caches=[caches[id(node)] for node in nodes],
            outputs=[values[id(node.output)] for node in nodes],
        )

    # ---- the backward pass --------------------------------------------------------------------

    def _set_gradient_flags(self) -> None:
        """Who needs ∂C/∂(input): every layer, but those fed only by the data itself."""
        global _FLAGS_SET_BY
        if (id(self), self.needs_input_gradient) == _FLAGS_SET_BY:
            return  # this model set them last, for the same place: nothing changed
        _FLAGS_SET_BY = (id(self), self.needs_input_gradient)
        model_inputs = {id(t) for t in self.inputs}
        needs: dict[int, bool] = {}
        for node in self._nodes:
            fed_by_data = all(id(t) in model_inputs for t in node.inputs)
            need = self.needs_input_gradient or not fed_by_data
            needs[id(node.layer)] = needs.get(id(node.layer), False) or need
        for node in self._nodes:
            node.layer.needs_input_gradient = needs[id(node.layer)]

    def _backward_graph(self, dC_douts: dict, dC_dz_at: dict, caches: dict) -> dict:
        """The deck's recursion on the graph, from the outputs back to the inputs.

        ``dC_douts`` maps an output tensor to ∂C/∂(it); ``dC_dz_at`` maps an output node to its
        ∂C/∂z (case 1). Each node turns ∂C/∂(its output) into ∂C/∂(its inputs); a tensor read by
        several nodes receives the sum. A shared layer's parameter gradients are summed over its
        calls. Returns ∂C/∂(tensor) for the model's inputs.
        """
        self._set_gradient_flags()
        grads = dict(dC_douts)
        shared_sums: dict[int, dict] = {}
        skip = () if self.needs_input_gradient else self._input_keys  # nobody needs ∂C/∂x
        for node, layer, many, reads, writes in reversed(self._plan):
            cache = caches[id(node)]
            dC_dz = dC_dz_at.get(id(node)) if dC_dz_at else None
            if dC_dz is not None:  # case 1: the loss gave ∂C/∂z directly
                dC_din = layer.backward_from_z(dC_dz, cache)
            else:
                parts = [grads.pop(k, None) for k in writes]  # None: nothing reads that one
                if all(part is None for part in parts):
                    continue  # nothing downstream of this node reaches the loss
                dC_din = layer.backward(parts if node.several else parts[0], cache)
            if id(layer) in self._shared:  # sum ∂C/∂W over the calls of a shared layer
                previous = shared_sums.get(id(layer))
                if previous is not None:
                    for k, g in layer.grads.items():
                        g += previous[k]
                shared_sums[id(layer)] = {k: g.copy() for k, g in layer.grads.items()}
            if self.record_backward:
                kept = self.cache_of(node, caches)
                kept.dC_da = parts[0] if dC_dz is None and len(parts) == 1 else None
                kept.dC_dx = dC_din
            if dC_din is None:
                continue
            for key, part in zip(reads, dC_din) if many else ((reads[0], dC_din),):
                if key in skip or part is None:
                    continue
                # The deck's sum: a tensor read by two layers gets what both send back.
                grads[key] = part if key not in grads else grads[key] + part
        return {key: grads.get(key) for key in self._input_keys}

    def backward(self, dC_da, cache=None):
        """As a layer inside another model: ∂C/∂(inputs) from ∂C/∂(outputs)."""
        parts = dC_da if len(self.outputs) > 1 else [dC_da]
        caches = self._caches_for(cache)
        grads = self._backward_graph({id(t): g for t, g in zip(self.outputs, parts)}, {}, caches)
        ins = [grads[id(t)] for t in self.inputs]
        return ins[0] if len(ins) == 1 else ins

    def case_1(self, index: int = 0) -> bool:
        """Whether output ``index`` uses the deck's case 1: its softmax (or sigmoid) layer meets
        the matching cross-entropy, so the loss gives ∂C/∂z = (a − y)/rows directly."""
        if self._case_1_flags is None:
            self._case_1_flags = [self._uses_case_1(i) for i in range(len(self.outputs))]
        return self._case_1_flags[index]

    def _uses_case_1(self, index: int) -> bool:
        loss, tensor = self.losses[index], self.outputs[index]
        layer = tensor.node.layer
        return (
            loss is not None
            and not loss.from_logits
            and loss.output_activation is not None
            and getattr(layer, "activation", None) is loss.output_activation
            and hasattr(layer, "backward_from_z")
            and id(layer) not in self._shared
            and self._consumers.get(id(tensor), 0) == 0
        )

    def _loss_terms(self, ys: list, outs: list, caches: dict, sws=None) -> list[float]:
        """C of each output (before loss_weights; with sample weights ``sws`` if given), from z
        where case 1 applies (stable for any logits)."""
        terms = []
        for i, (loss, y, out) in enumerate(zip(self.losses, ys, outs)):
            w = None if sws is None else sws[i]
            if loss is None:
                terms.append(0.0)
            elif self.case_1(i):
                z = self.cache_of(self.outputs[i].node, caches).z  # (rows, k)
                terms.append(float(loss.C_from_z(y, z.reshape(out.shape), w)))
            else:
                terms.append(float(loss.C(y, out, w)))
        return terms

    def cache_of(self, node: Node, caches: dict | None = None):
        """Where ``node`` stored its values in the training pass (or in ``caches``)."""
        cache = (self._training_caches if caches is None else caches)[id(node)]
        return node.layer if cache is None else cache

    def loss_value(self, y, out, sample_weight=None) -> float:
        """C = Σ weight·C_output for targets ``y`` after the training ``forward`` gave ``out``."""
        sws = self._as_weights(sample_weight)
        return self._loss_total(
            self._as_targets(y), self._as_outputs(out), self._training_caches, sws
        )

    def _loss_total(self, ys: list, outs: list, caches: dict, sws=None) -> float:
        terms = self._loss_terms(ys, outs, caches, sws)
        return float(sum(w * c for w, c in zip(self.loss_weights, terms)))

    def backpropagate(self, y, out, sample_weight=None) -> float:
        """The backward pass for targets ``y``: returns C and leaves every layer's gradients set.

        At each output: case 1 (∂C/∂z from the loss) where it applies, else ∂C/∂a = the loss's
        derivative; then the recursion through every earlier node. With ``sample_weight``,
        C = mean(wᵢ·Cᵢ), so each sample's row of ∂C/∂a (or ∂C/∂z) is scaled by its wᵢ.
        """
        ys, outs = self._as_targets(y), self._as_outputs(out)
        sws = self._as_weights(sample_weight)
        dC_douts, dC_dz_at = {}, {}
        for i, (loss, weight, y_i, out_i) in enumerate(
            zip(self.losses, self.loss_weights, ys, outs)
        ):
            if loss is None:
                continue
            tensor = self.outputs[i]
            g = loss.dC_dz(y_i, out_i) if self.case_1(i) else loss.gradient(y_i, out_i)
            if sws is not None and sws[i] is not None:  # one weight per row of ∂C/∂a
                g = g * losses_module.weights_like(sws[i], out_i[..., 0])[..., None]
            if weight != 1:
                g = g * weight
            if self.case_1(i):  # out_i is the output layer's a
                dC_dz_at[id(tensor.node)] = g
            else:
                dC_douts[id(tensor)] = g
        C = self._loss_total(ys, outs, self._training_caches, sws)
        self._backward_graph(dC_douts, dC_dz_at, self._training_caches)
        return C

    def _as_weights(self, sample_weight):
        """Sample weights per output, or None: one array (one output), a list or a dict."""
        if sample_weight is None:
            return None
        if isinstance(sample_weight, dict):
            return _per_output(sample_weight, self.output_names, "sample_weight")
        if isinstance(sample_weight, (list, tuple)) and len(self.outputs) > 1:
            return list(sample_weight)
        if isinstance(sample_weight, list) and len(sample_weight) == 1:
            return sample_weight
        return [sample_weight] * len(self.outputs)

    def _as_outputs(self, out) -> list:
        return list(out) if len(self.outputs) > 1 else [out]

    def _as_targets(self, y) -> list:
        if len(self.outputs) == 1:
            return [y[0] if isinstance(y, list) and len(y) == 1 else y]
        return list(y)

    def trainable_pairs(self) -> list:
        """(parameter, gradient) pairs that the optimizer updates, in Keras's variable order."""
        if self._pairs is None:
            self._pairs = [
                (layer.params[k], layer.grads[k])
                for layer in self.leaf_layers()
                if layer.trainable and self.trainable
                for k in layer.params
                if k not in layer.non_trainable
            ]
        return self._pairs

    def train_step(self, x, y, training: bool = True, sample_weight=None):
        """One step of gradient descent: forward, backpropagate, update every parameter.

        Returns (C, out). ``training=False`` keeps dropout off (the glass box uses it).
        """
        out = self.forward(x, training=training)
        C = self.backpropagate(y, out, sample_weight)
        self.optimizer.apply(self.trainable_pairs())
        return C, out

    # ---- building and compiling ----------------------------------------------------------------

    def build(self, input_shape=None) -> None:
        if not self.built:
            raise ValueError(
                "A functional model is built from its inputs and outputs: "
                "Model(inputs=x, outputs=y)."
            )

    @property
    def compute_dtype(self) -> str:
        """The float type the model computes in: its layers' (``floatx()`` until it has any)."""
        for layer in self.layers:
            if not isinstance(layer, InputLayer):
                return layer.compute_dtype
        return floatx()

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        """Choose the optimizer, the loss(es) and the metrics, by name or as objects.

        With several outputs, ``loss``, ``loss_weights`` and ``metrics`` may be lists in output
        order or dicts by output name; a single loss applies to every output.
        """
        if weighted_metrics is not None:
            raise NotImplementedError("weighted_metrics is not supported by glassnet yet.")
        if loss is None:
            raise ValueError(
                "compile() needs a loss, e.g. loss='categorical_crossentropy'. Valid names: "
                f"{', '.join(sorted(losses_module.NAMES))}."
            )
        self.optimizer = optimizers_module.get(optimizer)
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics}
        if isinstance(loss, dict) and "class_name" in loss:  # one loss, as Keras's config
            loss = losses_module.get(loss)
        self._compile_args["loss"] = loss
        self.loss = loss if isinstance(loss, (list, dict)) else losses_module.get(loss)
        self._metric_specs = []
        self.compiled = True
        if self.built:
            self._resolve_compile()
        self._pairs = None  # which layers are trainable may have changed: Keras recompiles too

    def _resolve_compile(self) -> None:
        """Per-output losses, weights and metrics, once the outputs are known."""
        self._case_1_flags = None
        args, names = self._compile_args, self.output_names
        self.losses = [
            None if spec is None else losses_module.get(spec)
            for spec in _per_output(args["loss"], names, "loss")
        ]
        for loss in self.losses:  # training takes C as the mean, Keras's default reduction
            if loss is not None and loss.reduction not in ("sum_over_batch_size", "mean"):
                raise NotImplementedError(
                    f"Training with {loss.name}(reduction={loss.reduction!r}) is not supported "
                    "by glassnet: compile with the default reduction, 'sum_over_batch_size' "
                    "(the loss objects themselves still reduce any way when called)."
                )
        weights = args["loss_weights"]
        self.loss_weights = [
            1.0 if w is None else float(w)
            for w in _per_output(1.0 if weights is None else weights, names, "loss_weights")
        ]
        metrics = args["metrics"]
        if (
            metrics is None
            or isinstance(metrics, (str, metrics_module.Metric))
            or callable(metrics)
        ):
            metrics = [] if metrics is None else [metrics]
        if isinstance(metrics, dict) or (
            len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) for m in metrics)
        ):
            per = _per_output(metrics, names, "metrics")
        elif isinstance(metrics, (list, tuple)):
            per = [list(metrics)] * len(names)
        else:
            raise TypeError(f"Expected metrics to be a list; received {metrics!r}.")
        self._metric_specs = [
            []
            if m is None
            else ([m] if isinstance(m, (str, metrics_module.Metric)) or callable(m) else list(m))
            for m in per
        ]
        for specs in self._metric_specs:  # fail now, not at fit time, for an unknown name
            for m in specs:
                if isinstance(m, str):
                    metrics_module.get(m, y_true=xp.zeros(1), y_pred=xp.zeros((1, 2)))

    @property
    def metrics_names(self) -> list[str]:
        names = ["loss"]
        if len(self.outputs) > 1:
            names += [f"{n}_loss" for n in self.output_names]
        for out_name, specs in zip(self.output_names, self._metric_specs):
            for m in specs:
                name = metrics_module.name_of(m)
                names.append(name if len(self.outputs) == 1 else f"{out_name}_{name}")
        return names

    def _make_metrics(self, ys) -> list[list]:
        """The metrics for one loop, each starting from nothing (a metric object given to
        compile is reused, and reset, as Keras resets it before every fit, evaluate, …)."""
        made = []
        for specs, y, t in zip(self._metric_specs, ys, self.outputs):
            y_pred = xp.empty((1, *t.shape[1:]))
            made.append([metrics_module.get(m, y_true=y, y_pred=y_pred) for m in specs])
        for m in (m for ms in made for m in ms):
            m.reset_state()
        return made

    # ---- data checks ------------------------------------------------------------------------

    def check_data(self, x, y=None, what: str = "x"):
        """Check x (and y) against the model and each other; lists of arrays, one per input
        (output). Builds a model that was waiting for its input shape."""
        xs = self._input_list(x, what)
        if not self.built:
            self.build((None, *xs[0].shape[1:]))
        for i, (arr, t) in enumerate(zip(xs, self.inputs)):
            self._check_input_shape(arr, t, f"{what}[{i}]" if len(xs) > 1 else what)
        n = len(xs[0])
        if any(len(arr) != n for arr in xs):
            raise ValueError(
                f"All inputs must hold the same number of samples; received {[len(a) for a in xs]}."
            )
        if y is None:
            return xs, None
        ys = self._target_list(y)
        checked = []
        for arr, loss, t in zip(ys, self.losses, self.outputs):
            if len(arr) != n:
                raise ValueError(
                    f"x and y must hold the same number of samples; received x with {n} and "
                    f"y with {len(arr)}."
                )
            if loss is not None:
                arr = loss.check_targets(arr, t.shape)
                if arr.dtype.kind == "f":  # float targets in the model's float type
                    arr = arr.astype(self.compute_dtype, copy=False)
            checked.append(arr)
        return xs, checked

    def _input_list(self, x, what) -> list:
        if x is None:
            raise ValueError(f"Received {what}=None. Expected an array of samples.")
        if isinstance(x, dict):
            missing = [name for name in self.input_names if name not in x]
            if missing:
                raise ValueError(
                    f"{what} is a dict without the model input(s) {missing}; its keys are "
                    f"{sorted(map(str, x))}."
                )
            x = [x[name] for name in self.input_names]
        elif isinstance(x, (list, tuple)) and len(self.inputs) > 1:
            if len(x) != len(self.inputs):
                raise ValueError(
                    f"The model has {len(self.inputs)} inputs ({', '.join(self.input_names)}); "
                    f"received a list of {len(x)} arrays."
                )
        else:
            x = [x]
        return [_as_array(arr, what) for arr in x]

    def _target_list(self, y) -> list:
        n_out = len(self.outputs)
        if isinstance(y, dict):
            y = _per_output(y, self.output_names, "y")
        elif n_out > 1:
            if not isinstance(y, (list, tuple)) or len(y) != n_out:
                raise ValueError(
                    f"The model has {n_out} outputs ({', '.join(self.output_names)}); y must be a "
                    f"list of {n_out} arrays or a dict by output name."
                )
        else:
            y = [y]
        out = []
        for arr in y:
            if arr is None:
                raise ValueError("Received y=None. Expected the targets, one per sample.")
            try:
                arr = xp.asarray(arr)
            except ValueError:
                raise ValueError(
                    "y could not be made into one array: its entries have different shapes."
                ) from None
            if arr.ndim == 0:
                raise ValueError(
                    "y must be an array of targets, one per sample; received a scalar."
                )
            out.append(arr)
        return out

    def _check_input_shape(self, x, tensor, what) -> None:
        expected = tensor.shape
        if x.shape[1:] == tuple(expected[1:]) or (
            len(x.shape) == len(expected)
            and all(e is None or e == s for e, s in zip(expected[1:], x.shape[1:]))
        ):
            return
        hint = ""
        if len(expected) == 2 and x.ndim > 2 and math.prod(x.shape[1:]) == expected[1]:
            hint = (
                f" Flatten each sample first: x.reshape(len(x), {expected[1]}), "
                "or start the model with a Flatten layer."
            )
        elif len(expected) > 2 and math.prod(x.shape[1:]) == math.prod(expected[1:]):
            shape = ", ".join(str(d) for d in expected[1:])
            hint = (
                f" The sizes agree: reshape each sample first, x.reshape(-1, {shape}), or start "
                f"the model with layers.Reshape(({shape}))."
            )
        detail = ""
        first = next((n.layer for n in self._nodes if tensor in n.inputs), None)
        if hasattr(first, "_shape_error") and len(expected) == x.ndim:
            detail = " " + first._shape_error(x.shape)
        raise ValueError(
            f"Input {what} has shape {x.shape}, but the model expects "
            f"{format_shape(expected)}.{hint}{detail}"
        )

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(
                f"You must call compile() before {method}(): e.g. model.compile("
                "optimizer='rmsprop', loss='categorical_crossentropy', metrics=['accuracy'])."
            )

    def _make_callbacks(self, callbacks, verbose, params, history=False):
        callbacks = list(callbacks or [])
        if verbose and not any(isinstance(cb, ProgbarLogger) for cb in callbacks):
            callbacks.insert(0, ProgbarLogger(verbose=verbose))
        if history:
            self.history = History()
            callbacks.append(self.history)
        return CallbackList(callbacks, model=self, params=params)

    # ---- training ---------------------------------------------------------------------------

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ) -> History:
        """Train for ``epochs`` passes over (x, y); return a ``History``.

        Each step: forward on a batch (storing outputs), backward from the loss (case 1 at the
        output layer, then the recursion), one optimizer update of every W and b.
        """
        self._require_compiled("fit")
        if y is None and not is_batch_source(x):
            raise ValueError(
                "Received y=None. Expected the targets, one per sample of x: model.fit(x, y, ...)."
            )
        batch_size = _check_batch_size(batch_size)
        for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"Received {name}={value!r}. Expected a non-negative integer.")
        verbose = _check_verbose(verbose)
        if (
            isinstance(validation_split, bool)
            or not isinstance(validation_split, numbers.Real)
            or not 0 <= validation_split < 1
        ):
            raise ValueError(
                f"Received validation_split={validation_split!r}. Expected a float in [0, 1)."
            )
        if not self._training_lock.acquire(blocking=False):
            raise RuntimeError(
                f"Model {self.name!r} is already training in another thread; one fit at a time. "
                "(Predicting while it trains is fine.)"
            )
        try:
            return self._fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                validation=(
                    validation_split,
                    validation_data,
                    validation_batch_size,
                    validation_freq,
                    validation_steps,
                ),
                steps_per_epoch=steps_per_epoch,
                shuffle=shuffle,
                initial_epoch=initial_epoch,
                weights=(sample_weight, class_weight),
            )
        finally:
            self._training_lock.release()

    def _split_validation(self, xs, ys, sws, validation_split, validation_data):
        """(xs, ys, sws, x_val, y_val, sw_val): given validation data (with or without sample
        weights), or the last fraction of x."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, weights)."
                )
            x_val, y_val = self.check_data(validation_data[0], validation_data[1], "x_val")
            given = validation_data[2] if len(validation_data) == 3 else None
            return xs, ys, sws, x_val, y_val, self._weights_for_data(given, None, y_val)
        if not validation_split:
            return xs, ys, sws, None, None, None
        n = len(xs[0])
        n_val = int(n * validation_split)
        if n_val == 0 or n_val == n:
            raise ValueError(
                f"validation_split={validation_split} of {n} samples leaves "
                "an empty training or validation set."
            )
        head, tail = slice(None, -n_val), slice(-n_val, None)

        def cut(arrays, part):
            return None if arrays is None else [a[part] for a in arrays]

        return (cut(xs, head), cut(ys, head), cut(sws, head),
                cut(xs, tail), cut(ys, tail), cut(sws, tail))  # fmt: skip

    def _weights_for_data(self, sample_weight, class_weight, ys) -> list | None:
        """Per-output sample weights for the whole data, checked: ``sample_weight`` (one array
        per output, or one for all), or ``class_weight`` turned into a weight per sample."""
        if sample_weight is not None and class_weight is not None:
            raise ValueError(
                "You cannot use `class_weight` and `sample_weight` at the same time: fold the "
                "class weights into the sample weights."
            )
        if class_weight is not None:
            return [self._class_weights(class_weight, ys)]
        sws = self._as_weights(sample_weight)
        if sws is None:
            return None
        checked = []
        for w, y in zip(sws, ys):
            w = xp.asarray(w, dtype=xp.float64)
            if w.ndim == 0 or len(w) != len(y) or w.ndim > y.ndim:
                raise ValueError(
                    f"sample_weight must hold one weight per sample, shape ({len(y)},); "
                    f"received shape {w.shape}."
                )
            if not xp.isfinite(w).all():
                raise ValueError("sample_weight contains NaN or infinity.")
            checked.append(w)
        return checked

    def _class_weights(self, class_weight, ys):
        if len(self.outputs) > 1:
            raise ValueError("`class_weight` is only supported for models with a single output.")
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"class_weight must be a dict {{class: weight}}; received {class_weight!r}."
            )
        y = ys[0]
        k = self.outputs[0].shape[-1]
        if y.ndim == len(self.outputs[0].shape) and k > 1:  # one-hot rows
            labels = y.argmax(axis=-1)
        else:  # integer labels, or 0/1 targets of one unit
            labels = xp.rint(y).astype(xp.intp).reshape(len(y), -1)[:, 0]
        table = xp.ones(max(int(labels.max()) + 1, k, *(int(c) + 1 for c in class_weight)))
        for c, weight in class_weight.items():
            table[int(c)] = float(weight)
        return table[labels]

    def _fit(self, x, y, *, batch_size, epochs, verbose, callbacks, validation, shuffle,
             initial_epoch, weights, steps_per_epoch):  # fmt: skip
        train, val, validation_freq = self._fit_sources(
            x, y, batch_size, shuffle, weights, validation, steps_per_epoch
        )

        # ---- callbacks and metrics ----
        cbs = self._make_callbacks(
            callbacks,
            verbose,
            history=True,
            params={"verbose": verbose, "epochs": epochs, "steps": train.steps},
        )
        train_metrics = self._make_metrics(train.targets())
        trackers = self._loss_trackers()
        batch_logs_wanted = cbs.wants("on_train_batch_end")
        pairs = self.trainable_pairs()
        if len(self.optimizer.state) != len(pairs):  # its state and kernels, before the clock runs
            self.optimizer.build([p for p, _ in pairs])
        self.stop_training = False

        cbs.on_train_begin({})
        if self.resume_from_epoch is not None:  # a backup was restored: go on from there
            initial_epoch, self.resume_from_epoch = self.resume_from_epoch, None
        with blas_threads_for(self._largest_product(batch_size)):
            logs = self._epochs(train, val, validation_freq, cbs, trackers, train_metrics,
                                batch_logs_wanted, initial_epoch, epochs)  # fmt: skip
        cbs.on_train_end(logs)
        return self.history

    def _largest_product(self, batch_size: int) -> float:
        """Floating-point operations of the largest matrix product in a training step."""
        rows = batch_size or 32
        return max((layer.largest_product(rows) for layer in self.leaf_layers()), default=0.0)

    def _epochs(self, train, val, validation_freq, cbs, trackers, train_metrics,
                batch_logs_wanted, initial_epoch, epochs) -> dict:  # fmt: skip
        """The training loop proper: epochs of batches, each epoch ending with validation."""
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch, {})
            for t in trackers:
                t.reset_state()
            for m in (m for ms in train_metrics for m in ms):
                m.reset_state()

            # ---- one pass over the training data, a batch at a time ----
            step = -1
            for step, (xb, yb, swb) in enumerate(train.epoch()):
                cbs.on_train_batch_begin(step, {})
                C, out = self.train_step(xb if len(xb) > 1 else xb[0], yb, sample_weight=swb)
                self.last_batch = (xb[0] if len(xb) == 1 else xb, yb[0] if len(yb) == 1 else yb, C)
                self._track(trackers, train_metrics, yb, self._as_outputs(out), C, len(xb[0]),
                            sws=swb)  # fmt: skip
                if batch_logs_wanted:
                    cbs.on_train_batch_end(step, self._logs(trackers, train_metrics))
                if self.stop_training:
                    break
            if getattr(train, "exhausted", False):  # a generator that ran dry ends training
                self.stop_training = True
                if step < 0:
                    break  # no batch at all this epoch: nothing to log

            # ---- end of the epoch: validation, logs, callbacks ----
            logs = self._logs(trackers, train_metrics)
            if val is not None and (epoch + 1) % validation_freq == 0:
                cbs.on_test_begin({})  # the test hooks run in fit's validation, as in Keras
                val_logs = self._evaluate_source(val, cbs)
                cbs.on_test_end(dict(val_logs))
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return logs

    def _fit_sources(self, x, y, batch_size, shuffle, weights, validation, steps_per_epoch):
        """The training batches and the validation batches (or None) that fit will use."""
        validation_split, validation_data, validation_batch_size, freq, val_steps = validation
        if is_batch_source(x):
            if y is not None or weights != (None, None) or validation_split:
                raise ValueError(
                    "When x is a PyDataset or a generator, its batches carry the targets (and "
                    "sample weights): do not pass y, sample_weight, class_weight or "
                    "validation_split."
                )
            train = GeneratedBatches(self, x, steps_per_epoch)
            x_val = y_val = sw_val = None
        else:
            if steps_per_epoch is not None:
                raise NotImplementedError(
                    "steps_per_epoch with arrays is not supported by glassnet; it is for "
                    "PyDatasets and generators."
                )
            xs, ys = self.check_data(x, y)
            sws = self._weights_for_data(*weights, ys)
            given = None if is_batch_source(validation_data) else validation_data
            xs, ys, sws, x_val, y_val, sw_val = self._split_validation(
                xs, ys, sws, validation_split, given
            )
            train = ArrayBatches(xs, ys, sws, batch_size, shuffle, self._rng, self.compute_dtype)
        if is_batch_source(validation_data):
            val = GeneratedBatches(self, validation_data, val_steps, "validation_data")
        elif x_val is not None:
            val = ArrayBatches(
                x_val, y_val, sw_val, validation_batch_size or batch_size, dtype=self.compute_dtype
            )
        else:
            val = None
        return train, val, freq

    def _loss_trackers(self) -> list:
        trackers = [metrics_module.Mean(name="loss")]
        if len(self.outputs) > 1:
            trackers += [metrics_module.Mean(name=f"{n}_loss") for n in self.output_names]
        return trackers

    def _track(self, trackers, metrics, ys, outs, C, n, caches=None, sws=None) -> None:
        """Add one batch to the loss trackers (each batch weighs its size, as in Keras) and to
        the metrics (which, as Keras's ``metrics``, see no sample weights)."""
        trackers[0].update_state(C, n)
        if len(trackers) > 1:
            caches = self._training_caches if caches is None else caches
            terms = self._loss_terms(ys, outs, caches, sws)
            for t, c in zip(trackers[1:], terms):
                t.update_state(c, n)
        for ms, y, out in zip(metrics, ys, outs):
            for m in ms:
                m.update_state(y, out)

    def _logs(self, trackers, metrics) -> dict:
        logs = {t.name: t.result() for t in trackers}
        for out_name, ms in zip(self.output_names, metrics):
            for m in ms:
                value = m.result()  # a number, a list (several thresholds), or a variable
                if not isinstance(value, (float, list)):
                    value = float(value) if xp.ndim(value) == 0 else xp.asarray(value).tolist()
                logs[m.name if len(self.outputs) == 1 else f"{out_name}_{m.name}"] = value
        return logs

    def _evaluate_source(self, source, cbs=None) -> dict:
        """Loss and metrics over a source of batches, in inference mode (caches of its own)."""
        metrics = self._make_metrics(source.targets())
        trackers = self._loss_trackers()
        caches = {id(node): Cache() for node in self._nodes}
        for step, (xb, yb, swb) in enumerate(source.epoch()):
            if cbs is not None:
                cbs.on_test_batch_begin(step, {})
            outs = self._infer(xb, caches)
            C = self._loss_total(yb, outs, caches, swb)
            self._track(trackers, metrics, yb, outs, C, len(xb[0]), caches, swb)
            if cbs is not None:
                cbs.on_test_batch_end(step, self._logs(trackers, metrics))
        return self._logs(trackers, metrics)

    def _eval_source(self, x, y, sample_weight, batch_size, steps):
        if is_batch_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    "When x is a PyDataset or a generator, its batches carry the targets: do "
                    "not pass y or sample_weight."
                )
            return GeneratedBatches(self, x, steps)
        xs, ys = self.check_data(x, y)
        sws = self._weights_for_data(sample_weight, None, ys)
        return ArrayBatches(xs, ys, sws, batch_size, dtype=self.compute_dtype)

    # ---- evaluation and prediction ----------------------------------------------------------

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The loss (and metrics) on (x, y): a float, a list ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size)
        verbose = _check_verbose(verbose)
        source = self._eval_source(x, y, sample_weight, batch_size, steps)
        cbs = self._make_callbacks(
            callbacks, verbose, params={"verbose": verbose, "epochs": 1, "steps": source.steps}
        )
        cbs.on_test_begin({})
        logs = self._evaluate_source(source, cbs)
        cbs.on_test_end(logs)
        return self._format_result(logs, return_dict)

    @staticmethod
    def _format_result(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, computed in batches; an array of shape (n, *output_shape).

        Predictions keep their values in caches of their own, so ``predict`` may run in one
        thread while ``fit`` trains the same model in another.
        """
        batch_size = _check_batch_size(batch_size)
        verbose = _check_verbose(verbose)
        if is_batch_source(x):
            source = GeneratedBatches(self, x, steps, targets=False)
        else:
            source = ArrayBatches(
                self.check_data(x)[0], None, None, batch_size, dtype=self.compute_dtype
            )
        cbs = self._make_callbacks(
            callbacks, verbose, params={"verbose": verbose, "epochs": 1, "steps": source.steps}
        )
        caches = {id(node): Cache() for node in self._nodes}
        parts = [[] for _ in self.outputs]  # each output's batches, joined at the end
        cbs.on_predict_begin({})
        for step, (xb, _, _) in enumerate(source.epoch()):
            cbs.on_predict_batch_begin(step, {})
            batch_outs = self._infer(xb, caches)
            for part, value in zip(parts, batch_outs):
                part.append(value)  # a new array each batch: layers keep no output buffers
            cbs.on_predict_batch_end(step, {"outputs": self._structure(batch_outs)})
        cbs.on_predict_end({})
        if not parts[0]:
            raise ValueError("predict() received no batches: the generator made none.")
        return self._structure([xp.concatenate(part) for part in parts])

    def __call__(self, x, training=False):
        if isinstance(x, KerasTensor) or (
            isinstance(x, (list, tuple)) and any(isinstance(t, KerasTensor) for t in x)
        ):
            return self._call_symbolic(x)
        xs, _ = self.check_data(x)
        caches = {id(node): Cache() for node in self._nodes}
        values = self._run([xp.asarray(a, dtype=self.compute_dtype) for a in xs], training, caches)
        return self._structure([values[id(t)] for t in self.outputs])

    @property
    def _takes_list(self) -> bool:
        return len(self.inputs) > 1

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns that batch's loss (and metrics)."""
        self._require_compiled("train_on_batch")
        xs, ys = self.check_data(x, y)
        sws = self._weights_for_data(sample_weight, class_weight, ys)
        with self._training_lock:
            xb = [xp.asarray(a, dtype=self.compute_dtype) for a in xs]
            C, out = self.train_step(xb if len(xb) > 1 else xb[0], ys, sample_weight=sws)
        metrics = self._make_metrics(ys)
        trackers = self._loss_trackers()
        self._track(trackers, metrics, ys, self._as_outputs(out), C, len(xb[0]), sws=sws)
        return self._format_result(self._logs(trackers, metrics), return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        self._require_compiled("test_on_batch")
        xs, ys = self.check_data(x, y)
        sws = self._weights_for_data(sample_weight, None, ys)
        source = ArrayBatches(xs, ys, sws, len(xs[0]), dtype=self.compute_dtype)
        return self._format_result(self._evaluate_source(source), return_dict)

    def predict_on_batch(self, x):
        """Model outputs for one batch."""
        return self(x, training=False)

    # ---- weights ------------------------------------------------------------------------------

    def get_weights(self) -> list:
        """All parameters, layer by layer, in Keras's orientation."""
        return [w for layer in self.leaf_layers() for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Set all parameters from a list like ``get_weights`` returns."""
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"set_weights expects a list of arrays; received {weights!r}.")
        weights = list(weights)
        layers = self.leaf_layers()
        expected = sum(len(layer.params) for layer in layers)
        if len(weights) != expected:
            raise ValueError(f"The model has {expected} weight arrays; received {len(weights)}.")
        i = 0
        for layer in layers:
            layer.set_weights(weights[i : i + len(layer.params)])
            i += len(layer.params)

    @property
    def weights(self) -> list:
        """Every parameter as a Keras variable (a view), layer by layer."""
        return [v for layer in self.leaf_layers() for v in layer.weights]

    @property
    def trainable_weights(self) -> list:
        if not self.trainable:
            return []
        return [v for layer in self.leaf_layers() for v in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        if not self.trainable:
            return self.weights
        return [v for layer in self.leaf_layers() for v in layer.non_trainable_weights]

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                "This model has not yet been built: call build() or fit() first, "
                "or start it with an Input(shape=...)."
            )
        return sum(layer.count_params() for layer in self.leaf_layers())

    # ---- summary ------------------------------------------------------------------------------

    def _sequential_like(self) -> bool:
        return (
            all(len(node.inputs) <= 1 for node in self._nodes)
            and all(count <= 1 for count in self._consumers.values())
            and len(self.outputs) == 1
            and not self._shared
        )

    def _summary_rows(self) -> list[tuple]:
        rows, listed = [], {id(layer) for layer in self.layers}
        for node in self._nodes:
            layer = node.layer
            if id(layer) not in listed:
                continue  # Sequential lists no input layer
            connected = ", ".join(
                f"{t.node.layer.name}[{self._node_index(t.node)}][{t.index}]" for t in node.inputs
            )
            shape = [t.shape for t in node.outputs] if node.several else node.output.shape
            rows.append(
                (
                    f"{layer.name} ({type(layer).__name__})",
                    "[" + ", ".join(map(format_shape, shape)) + "]"
                    if node.several
                    else format_shape(shape),
                    f"{layer.count_params():,}",
                    connected or "-",
                )
            )
        return rows

    def _node_index(self, node: Node) -> int:
        return [n for n in self._nodes if n.layer is node.layer].index(node)

    def summary(
        self,
        line_length=None,
        positions=None,
        print_fn=None,
        expand_nested=False,
        show_trainable=False,
        layer_range=None,
    ) -> None:
        """Print Keras's table: each layer, its output shape and parameter count, then totals;
        for a model with branches, also what each layer is connected to."""
        print_fn = print_fn or print
        if self.built:
            connected = not self._sequential_like()
            rows = self._summary_rows()
        else:  # Keras lists the layers still waiting for their input shape
            connected = False
            rows = [
                (f"{layer.name} ({type(layer).__name__})", "?", "0 (unbuilt)", "")
                for layer in self.layers
            ]
        if not connected:
            rows = [row[:3] for row in rows]
        widths = (33, 24, 15)
        if connected:
            widths = (30, 22, 11, max(26, 2 + max(len(row[3]) for row in rows)))
        header = ("Layer (type)", "Output Shape", "Param #", "Connected to")[: len(widths)]

        def line(left, mid, right, fill):
            return left + mid.join(fill * w for w in widths) + right

        def row(cells, bar) -> list[str]:
            """The cells side by side; one too long for its column wraps, as in Keras."""
            wrapped = [textwrap.wrap(str(cell), w - 2) or [""] for cell, w in zip(cells, widths)]
            out = []
            for depth in range(max(len(parts) for parts in wrapped)):
                parts = []
                for k, (lines_k, w) in enumerate(zip(wrapped, widths)):
                    cell = lines_k[depth] if depth < len(lines_k) else ""
                    parts.append(f" {cell:>{w - 2}} " if k == 2 else f" {cell:<{w - 2}} ")
                out.append(bar + bar.join(parts) + bar)
            return out

        lines = [
            f'Model: "{self.name}"',
            line("┏", "┳", "┓", "━"),
            *row(header, "┃"),
            line("┡", "╇", "┩", "━"),
        ]
        for i, cells in enumerate(rows):
            lines.extend(row(cells, "│"))
            lines.append(
                line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─")
            )
        total = self.count_params() if self.built else 0
        trainable = sum(int(p.size) for p, _ in self.trainable_pairs()) if self.built else 0
        itemsize = xp.dtype(self.compute_dtype).itemsize
        for label, count in (
            ("Total", total),
            ("Trainable", trainable),
            ("Non-trainable", total - trainable),
        ):
            lines.append(f" {label} params: {count:,} ({_readable_size(count * itemsize)})")
        for text in lines:
            print_fn(text)

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
        """Keras's functional config: every layer with the nodes that call it."""
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
        """Rebuild a functional model from Keras's config: layers first, then their calls."""
        from glassnet.models.functional import functional_from_config

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
    _keras_class = ("keras.src.models.functional", "Functional", "Functional")

    def keras_config(self) -> dict:
        """This model as Keras writes it at the top of ``config.json`` (no compile settings)."""
        module, class_name, registered = self._keras_class
        return {
            "module": module,
            "class_name": class_name,
            "config": self.get_config(),
            "registered_name": registered,
            "build_config": {"input_shape": self._build_input_shape()},
        }

    def _build_input_shape(self):
        return None  # Keras writes null for functional models: the inputs say it all

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, {len(self.layers)} layers>"


def serialize_model_or_layer(layer: Layer) -> dict:
    """A layer's config entry; a model inside a model is written as Keras writes one."""
    return layer.keras_config() if isinstance(layer, Model) else serialize(layer)


register(Model)
LAYER_CLASSES["Functional"] = Model  # what Keras calls a model made with the functional API
