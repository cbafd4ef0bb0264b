"""Rebuilding a functional model from Keras's ``config.json``: the layers, then their calls.

Keras writes each layer with its ``inbound_nodes`` — the tensors each call of the layer read, named
by ``keras_history = [layer name, node index, tensor index]``. Reading them back calls the layers on
symbolic tensors again, in any order that has every input ready; a config that never gets there
(an unknown name, a cycle) is refused with a message, never looped on.
"""

from __future__ import annotations

import inspect

from glassnet.layers import InputLayer, KerasTensor, deserialize

__all__ = ["functional_from_config"]


def _fail(message: str):
    raise ValueError(f"The model config cannot be read: {message}")


def _history(ref) -> tuple[str, int, int]:
    """(layer name, node index, tensor index) from a ``__keras_tensor__`` entry or a list."""
    if isinstance(ref, dict):
        if ref.get("class_name") != "__keras_tensor__":
            _fail(f"expected a tensor reference, received {str(ref)[:80]}.")
        ref = (ref.get("config") or {}).get("keras_history")
    if (
        not isinstance(ref, (list, tuple))
        or len(ref) != 3
        or not isinstance(ref[0], str)
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ref[1:])
    ):
        _fail(f"a tensor reference must be [layer name, node index, tensor index]; got {ref!r}.")
    return ref[0], ref[1], ref[2]


def _node_args(node_data, layer_name):
    """The tensor references of one call: (references, called on a list?, how many of the
    references, at the end, are an initial state)."""
    if not isinstance(node_data, dict) or not isinstance(node_data.get("args"), list):
        _fail(f"the calls of layer {layer_name!r} are not in Keras 3's form.")
    args = node_data["args"]
    kwargs = node_data.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        _fail(f"the call arguments of layer {layer_name!r} must be a dict.")
    unknown = sorted(k for k in kwargs if k not in ("training", "mask", "initial_state"))
    if unknown:
        _fail(f"layer {layer_name!r} is called with arguments glassnet lacks: {unknown}.")
    if len(args) != 1:
        _fail(f"layer {layer_name!r} is called with {len(args)} positional arguments; expected 1.")
    arg, state = args[0], kwargs.get("initial_state") or []
    state = state if isinstance(state, list) else [state]
    if isinstance(arg, list):
        if state:
            _fail(f"layer {layer_name!r} is called on a list with an initial state.")
        return [_history(a) for a in arg], True, 0
    return [_history(arg)] + [_history(s) for s in state], False, len(state)


def _ends(spec, what) -> list[tuple[str, int, int]]:
    if isinstance(spec, list) and spec and isinstance(spec[0], str):
        spec = [spec]
    if not isinstance(spec, list) or not spec:
        _fail(f"{what} must list [layer name, node index, tensor index] triples.")
    return [_history(s) for s in spec]


def functional_from_config(cls, config: dict, custom_objects=None):
    """The model ``cls(inputs, outputs)`` that ``config`` describes."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        _fail("it has no list of layers.")
    layers, calls = {}, []
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            _fail(f"a layer entry must be a dict; received {str(entry)[:80]}.")
        layer = deserialize(entry, custom_objects)
        name = entry.get("name", layer.name)
        if isinstance(name, str) and "name" not in (entry.get("config") or {}):
            layer.name = name  # a get_config of your own that leaves out the name: the graph's
        if name in layers:
            _fail(f"two layers are named {name!r}.")
        layers[name] = layer
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            _fail(f"the calls of layer {name!r} must be a list.")
        calls += [(name, index, *_node_args(data, name)) for index, data in enumerate(nodes)]

    tensors: dict[tuple[str, int, int], KerasTensor] = {
        (name, 0, 0): layer.output
        for name, layer in layers.items()
        if isinstance(layer, InputLayer)
    }
    while calls:  # every pass makes at least one call, or the config cannot be completed
        waiting = []
        for name, index, refs, many, states in calls:
            if not all(ref in tensors for ref in refs):
                waiting.append((name, index, refs, many, states))
                continue
            args = [tensors[ref] for ref in refs]
            if states:
                if "initial_state" not in inspect.signature(layers[name].__call__).parameters:
                    _fail(f"layer {name!r} ({type(layers[name]).__name__}) takes no initial_state.")
                out = layers[name](args[0], initial_state=args[1:])
            else:
                out = layers[name](args if many else args[0])
            for k, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(name, index, k)] = t
        if len(waiting) == len(calls):
            missing = sorted({r for _, _, refs, _, _ in waiting for r in refs if r not in tensors})
            _fail(f"some layers read tensors no layer makes: {missing[:5]}.")
        calls = waiting

    def find(refs, what):
        for ref in refs:
            if ref not in tensors:
                _fail(f"its {what} name a tensor no layer makes: {ref}.")
        return [tensors[ref] for ref in refs]

    inputs = find(_ends(config.get("input_layers"), "input_layers"), "inputs")
    outputs = find(_ends(config.get("output_layers"), "output_layers"), "outputs")
    return cls(
        inputs=inputs if len(inputs) > 1 else inputs[0],
        outputs=outputs if len(outputs) > 1 else outputs[0],
        name=config.get("name"),
        trainable=config.get("trainable", True),
    )
