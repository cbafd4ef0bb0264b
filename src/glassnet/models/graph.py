"""The graph of a model: its nodes from inputs to outputs, the forward pass over them and
the backward recursion back (the deck's case 2, a tensor read twice getting the sum), its
layers and weights. It knows nothing of losses, optimizers or training."""

from __future__ import annotations

import math
from dataclasses import dataclass

from glassnet.backend import (
    blas_threads_for,
    did_you_mean,
    function_key,
    num_threads,
    parallel_map,
    serialize_function,
    xp,
)
from glassnet.layers import (
    Cache,
    InputLayer,
    KerasTensor,
    Layer,
    Node,
)
from glassnet.layers.base import collecting_added_losses
from glassnet.layers.convolutional import use_kernels
from glassnet.models.checks import as_input

__all__ = ["Capture", "Graph"]


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


class PooledConvolution:
    """A convolution and the max pooling that alone reads its output, as one step of the passes
    (``Conv.forward_pooled``): the step reads the convolution's input and writes the pooling's
    output; its values are kept where the convolution keeps its own. With the fused kernels
    off (``GLASSNET_KERNELS=numpy``, or no Numba), the two layers one after the other."""

    def __init__(self, conv: Layer, pool: Layer):
        self.conv, self.pool, self.name = conv, pool, conv.name

    def forward(self, a_prev, training=False, cache=None):
        c = self.conv.cache_for(cache)
        c.pool_cache = None if use_kernels(a_prev) else Cache()
        if c.pool_cache is None:
            return self.conv.forward_pooled(a_prev, self.pool.pool_size, training, cache)
        a = self.conv.forward(a_prev, training, cache)
        return self.pool.forward(a, training, c.pool_cache)

    def backward(self, dC_da, cache=None):
        pool_cache = self.conv.cache_for(cache).pool_cache
        if pool_cache is None:
            return self.conv.backward_pooled(dC_da, cache)
        return self.conv.backward(self.pool.backward(dC_da, pool_cache), cache)

    def cache_for(self, cache):
        return self.conv.cache_for(cache)

    def output_mask(self, a_prev, a, mask):
        return None  # images carry no mask


class Graph:
    """A model's graph: ``Model`` builds it in ``_init_graph`` from its inputs and outputs."""

    # ---- the graph ----------------------------------------------------------------------------

    def _init_graph(self, inputs, outputs) -> None:
        """Collect the nodes between ``inputs`` and ``outputs`` in an order that runs, and plan
        the passes over them."""
        self._set_ends(inputs, outputs)
        order, first_seen = self._run_order()
        self._layer_order = self._keras_layer_order(order, first_seen)
        names = [layer.name for layer in self._layer_order]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(
                f"All layers in a model need unique names; {sorted(duplicates)} appear twice."
            )
        self._nodes = order
        self._plan_passes(order)
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
        self._regularized: list | None = None  # made on first use (Steps.regularization)
        self._added_in_forward: list = []  # what add_loss was given in the last forward pass

    @property
    def input(self):
        """The model's symbolic input, a list where it has several (Keras's ``model.input``): a
        functional model's own, else those of the one call that made it a layer."""
        if self.inputs:
            return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)
        return Layer.input.fget(self)

    @property
    def output(self):
        """The model's symbolic output, a list where it has several (Keras's ``model.output``)."""
        if self.outputs:
            return self.outputs[0] if len(self.outputs) == 1 else list(self.outputs)
        return Layer.output.fget(self)

    def _set_ends(self, inputs, outputs) -> None:
        """The model's input and output tensors (and whether outputs come as a list or dict),
        each checked."""
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

    def _run_order(self) -> tuple[list, dict]:
        """The nodes from the inputs to the outputs, each after every node it reads from, and
        when the search first met each layer (Keras lists layers in that order)."""
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
        return order, first_seen

    def _plan_passes(self, order: list) -> None:
        """What the passes need, worked out once per graph: who reads each tensor, where each
        call keeps its values, each forward step's reads and writes, what inference may free."""
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
        self._fused_plan = self._with_pooled_convolutions(self._plan)
        self._done_after = {id(p): self._freed_after(p) for p in (self._plan, self._fused_plan)}
        # (the same list twice where no convolution pools in one pass)
        self._training_plan = self._plan  # the plan of the last training pass, for backward
        # Numbers per sample in the largest layer output: how inference cuts a batch in pieces.
        self._largest_output = max(
            (math.prod(node.output.shape[1:]) for node, *_ in self._plan
             if None not in node.output.shape[1:]),
            default=0,
        )  # fmt: skip
        self._case_1_flags = None  # per output, once the losses are known

    def _freed_after(self, plan: list) -> list[list[int]]:
        """For inference: after step i of ``plan``, the tensors no later step reads (the
        outputs are kept)."""
        kept, last_read = {id(t) for t in self.outputs}, {}
        for i, (_, _, _, reads, _) in enumerate(plan):
            for k in reads:
                last_read[k] = i
        return [
            [k for k in reads if last_read[k] == i and k not in kept]
            for i, (_, _, _, reads, _) in enumerate(plan)
        ]

    def _with_pooled_convolutions(self, plan: list) -> list:
        """``plan`` with each convolution that can run the max pooling after it in one pass
        (``Conv.pools_in_one_pass``) made one step with it: where that pooling alone reads the
        convolution's output, neither layer is shared, and the output is not a model output.
        The step stands where the convolution stood; the pooling reads nothing else, so it may
        run there."""
        outputs = {id(t) for t in self.outputs}
        made_by = {writes[0]: i for i, (*_, writes) in enumerate(plan) if len(writes) == 1}
        pooled: dict[int, int] = {}  # step of a convolution → step of its pooling
        for j, (_, pool, many, reads, _) in enumerate(plan):
            i = made_by.get(reads[0]) if not many and len(reads) == 1 else None
            if i is None or reads[0] in outputs or self._consumers.get(reads[0]) != 1:
                continue
            conv = plan[i][1]
            if {id(conv), id(pool)} & self._shared or not hasattr(conv, "pools_in_one_pass"):
                continue
            if conv.pools_in_one_pass(pool):
                pooled[i] = j
        if not pooled:
            return plan
        fused, pool_steps = [], set(pooled.values())
        for i, (node, layer, many, reads, writes) in enumerate(plan):
            if i in pool_steps:
                continue  # run with its convolution
            if i in pooled:
                layer, writes = PooledConvolution(layer, plan[pooled[i]][1]), plan[pooled[i]][4]
            fused.append((node, layer, many, reads, writes))
        return fused

    def fused_layers(self) -> list[tuple[str, str]]:
        """The (convolution, max pooling) pairs that training steps and predictions run as one
        step, by layer name (``Conv.forward_pooled``)."""
        return [(layer.conv.name, layer.pool.name) for _, layer, *_ in self._fused_plan
                if isinstance(layer, PooledConvolution)]  # fmt: skip

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
        layers = Graph._unique_layers(order)
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
        what rebuilding this model from its config needs (a user's own layers among them) —
        and each ``Lambda``'s function by what its config says (a copy made in memory gets the
        very function; a file's code is never run)."""
        classes = {}
        for layer in self.layers:
            classes[type(layer).__name__] = type(layer)
            if isinstance(layer, Graph):
                classes.update(layer.layer_classes())
            function = getattr(layer, "function", None)
            if callable(function):
                classes[function_key(serialize_function(function))] = function
        return classes

    @property
    def losses(self) -> list:
        """Keras's ``model.losses``: each layer's (``Layer.losses``), in layer order — what
        ``add_loss`` was given in the last call, then Ω(W) of each regularized weight."""
        return [value for layer in self.layers for value in layer.losses]

    def sublayers(self) -> list[tuple[str, Layer]]:
        """Its layers by name: what a layer whose ``call`` uses this model adopts as its own
        parameters (``classifier/dense/W``), as it adopts those of any layer it keeps."""
        return [(layer.name, layer) for layer in self.layers if not isinstance(layer, InputLayer)]

    def owners_of_arrays(self) -> list[Layer]:
        """The layers whose arrays these are: its layers' (a model holds none of its own)."""
        return [owner for _, layer in self.sublayers() for owner in layer.owners_of_arrays()]

    def leaf_layers(self) -> list[Layer]:
        """Every layer that holds numbers, nested models opened up."""
        out = []
        for layer in self.layers:
            out.extend(layer.leaf_layers() if isinstance(layer, Graph) else [layer])
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

    def _run(self, xs: list, training: bool, caches: dict, keep: bool = True,
             plan: list | None = None) -> dict:  # fmt: skip
        """Run every node on the input arrays ``xs``; returns the value of every tensor.

        With ``keep=False`` (predict, evaluate: nothing will go backward) each layer's cache is
        emptied as soon as it has run and each value as soon as no later layer reads it, so that
        the memory a batch needs is one layer's, not the whole model's; only the outputs and
        their layers' caches (which the loss reads) are returned. ``plan`` is the steps to run:
        every layer on its own (``_plan``, the default) or with pooled convolutions
        (``_fused_plan``).
        """
        plan = self._plan if plan is None else plan
        done_after = self._done_after[id(plan)]
        values = {id(t): x for t, x in zip(self.inputs, xs)}
        outputs = {id(t) for t in self.outputs}
        masks: dict = {}  # tensor → (batch, steps): which steps are real (Embedding, Masking)
        for step, (node, layer, many, reads, writes) in enumerate(plan):
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
            out_mask = layer.output_mask(a_prev, outs[0], mask)
            if isinstance(out_mask, (list, tuple)):  # one per output (a call that splits)
                masks.update({k: m for k, m in zip(writes, out_mask) if m is not None})
            elif out_mask is not None:
                masks[writes[0]] = out_mask  # a recurrent layer's final states have none
            if not keep:
                if outputs.isdisjoint(writes):
                    vars(cache).clear()  # what backward would have read: patches, z, a, …
                for k in done_after[step]:
                    del values[k]
        return values

    # Inference runs in pieces whose largest layer output holds about this many numbers: small
    # enough to stay in a core's cache from one layer to the next; the pieces are shared out
    # between the threads, each running whole pieces with one BLAS thread. A piece holds at
    # least INFERENCE_ROWS samples, though: each costs every layer a call of its own, and a
    # CNN's first feature maps (W5: 21,632 numbers a sample) made pieces of 24 images.
    INFERENCE_PIECE = 1 << 19
    INFERENCE_ROWS = 64

    def _infer(self, xs: list, caches: dict, whole: bool = False) -> list:
        """The outputs for the batch ``xs`` in inference mode, computed in pieces sized for the
        cache (or ``whole``, in this thread); the output layers' caches then hold z for the
        whole batch (the loss reads it)."""
        n = len(xs[0])
        pieces = -(-n * self._largest_output // self.INFERENCE_PIECE)
        pieces = min(pieces, n // self.INFERENCE_ROWS)
        if whole or pieces < 2 * num_threads():  # too little to share: all threads on it whole
            values = self._run(xs, False, caches, False, self._fused_plan)
            return [values[id(t)] for t in self.outputs]
        rows = -(-n // pieces)
        starts = range(0, n, rows)
        done: list = [None] * len(starts)

        def piece(item) -> None:
            k = item[1]
            own = {id(node): Cache() for node in self._nodes}  # each thread its own values
            part = [x[starts[k] : starts[k] + rows] for x in xs]
            values = self._run(part, False, own, False, self._fused_plan)
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

    def forward(self, x, training: bool = False, cache=None, fuse: bool = False):
        """The forward pass: every layer computes its output and stores what backward needs.

        With no ``cache`` the values stay in the layers (a shared layer's in one cache per call):
        the training pass. A model used as a layer inside another gets a cache of its own.
        ``fuse`` (a training step that nobody inspects) runs each pooled convolution as one
        step (``fused_layers``), keeping neither the convolution's z and a nor the pooling's
        input; the backward pass that follows runs the same steps back.
        """
        caches = self._caches_for(cache)
        plan = self._fused_plan if fuse and cache is None else self._plan
        if cache is None:
            self._training_plan = plan
        with collecting_added_losses() as added:  # the loss adds them to C
            values = self._run(self._as_inputs(x), training, caches, plan=plan)
        self._added_in_forward = added
        self.cache_for(cache).adds_loss = bool(added)  # as a layer: C reads it through them
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
        xs = [as_input(a, self.compute_dtype) for a in self.check_data(x)[0]]
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
        plan = self._training_plan if caches is self._training_caches else self._plan
        for node, layer, many, reads, writes in reversed(plan):
            cache = caches[id(node)]
            dC_dz = dC_dz_at.get(id(node)) if dC_dz_at else None
            if dC_dz is not None:  # case 1: the loss gave ∂C/∂z directly
                dC_din = layer.backward_from_z(dC_dz, cache)
            else:
                parts = [grads.pop(k, None) for k in writes]  # None: nothing reads that one
                if all(part is None for part in parts):
                    if not getattr(layer.cache_for(cache), "adds_loss", False):
                        continue  # nothing downstream of this node reaches the loss
                    parts = [None] * len(writes)  # C reads it only through a loss it added
                dC_din = layer.backward(parts if node.several else parts[0], cache)
            if id(layer) in self._shared:  # sum ∂C/∂W over the calls of a shared layer
                # (a model called twice, a siamese network's tower: its layers' ∂C/∂W)
                owners = layer.leaf_layers() if isinstance(layer, Graph) else [layer]
                for owner in owners:
                    previous = shared_sums.get(id(owner))
                    if previous is not None:
                        for k, g in owner.grads.items():
                            g += previous[k]
                    shared_sums[id(owner)] = {k: g.copy() for k, g in owner.grads.items()}
            if self.record_layers:
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
        given = {id(t): g for t, g in zip(self.outputs, parts) if g is not None}
        grads = self._backward_graph(given, {}, caches)
        ins = [grads[id(t)] for t in self.inputs]
        return ins[0] if len(ins) == 1 else ins

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

    def pack_parameters(self, gradients=None) -> list[tuple]:
        """One contiguous parameter buffer and one gradient buffer per float type, holding every
        float parameter of the model and its ∂C/∂·; each layer's ``params`` and ``grads`` become
        views into them. Returns [(parameters, gradients)], one pair per float type.

        So a whole step's gradients are one array (one exchange under data-parallel training)
        while the layers, the glass box, the files and the optimizers still see per-layer arrays.
        The values are copied in once; packing again is free while every array is still the
        view it was made (a layer shared with another model moves to whichever packed it last).
        ``gradients(n, dtype)``, if given, makes the gradient buffers instead of ``xp.zeros``
        and packs anew (data-parallel training puts them in memory its processes share).
        """
        owned = [
            (layer, name)
            for leaf in self.leaf_layers()
            for layer in leaf.owners_of_arrays()
            for name, p in layer.params.items()
            if p.dtype.kind == "f"
        ]
        if (
            gradients is None
            and self._buffers is not None
            and all(self._in_buffers(lr, name) for lr, name in owned)
        ):
            return list(self._buffers.values())
        gradients = gradients or xp.zeros
        sizes: dict[str, int] = {}
        for layer, name in owned:
            key = layer.params[name].dtype.str
            sizes[key] = sizes.get(key, 0) + layer.params[name].size
        self._buffers = {key: (xp.empty(n, dtype=key), gradients(n, key))
                         for key, n in sizes.items()}  # fmt: skip
        start = dict.fromkeys(sizes, 0)
        for layer, name in owned:
            p, g = layer.params[name], layer.grads[name]
            key, end = p.dtype.str, start[p.dtype.str] + p.size
            p_buf, g_buf = self._buffers[key]
            p_buf[start[key] : end] = p.reshape(-1)
            g_buf[start[key] : end] = g.reshape(-1)
            layer.params[name] = p_buf[start[key] : end].reshape(p.shape)
            layer.grads[name] = g_buf[start[key] : end].reshape(p.shape)
            start[key] = end
        for leaf in self.leaf_layers():
            leaf.adopt_parameters()
        self._pairs = None  # the optimizer's pairs pointed at the old arrays
        return list(self._buffers.values())

    def _in_buffers(self, layer, name) -> bool:
        p, g = layer.params[name], layer.grads[name]
        p_buf, g_buf = self._buffers.get(p.dtype.str, (None, None))
        return p.base is p_buf is not None and g.base is g_buf is not None

    @property
    def _takes_list(self) -> bool:
        return len(self.inputs) > 1

    def compute_output_shape(self, input_shape):
        return self.output_shape
