"""Rebuilding a functional model from Keras's ``config.json``: the layers, then their calls.

Keras writes each layer with its ``inbound_nodes`` — the tensors each call of the layer read, named
by ``keras_history = [layer name, node index, tensor index]``. Reading them back calls the layers on
symbolic tensors again, in any order that has every input ready; a config that never gets there
(an unknown name, a cycle) is refused with a message, never looped on.
"""

from __future__ import annotations

from glassnet.layers import InputLayer, KerasTensor, deserialize

__all__ = ["functional_from_config"]


def _fail(message: str):
    raise ValueError(f"The model config cannot be read: {message}")


def _history(ref) -> tuple[str, int]:
    """(layer name, node index) from a ``__keras_tensor__`` entry or a [name, node, tensor] list."""
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
    if ref[2] != 0:
        _fail(f"layer {ref[0]!r} has one output; the config asks for output {ref[2]}.")
    return ref[0], ref[1]


def _node_args(node_data, layer_name):
    """The tensor references of one call: (list of (name, index), called on a list?)."""
    if not isinstance(node_data, dict) or not isinstance(node_data.get("args"), list):
        _fail(f"the calls of layer {layer_name!r} are not in Keras 3's form.")
    args = node_data["args"]
    if node_data.get("kwargs"):
        kwargs = {k: v for k, v in node_data["kwargs"].items() if k not in ("training", "mask")}
        if kwargs:
            _fail(
                f"layer {layer_name!r} is called with arguments glassnet lacks: {sorted(kwargs)}."
            )
    if len(args) != 1:
        _fail(f"layer {layer_name!r} is called with {len(args)} positional arguments; expected 1.")
    arg = args[0]
    if isinstance(arg, list):
        return [_history(a) for a in arg], True
    return [_history(arg)], False


def _ends(spec, what) -> list[tuple[str, int]]:
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
        if name in layers:
            _fail(f"two layers are named {name!r}.")
        layers[name] = layer
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            _fail(f"the calls of layer {name!r} must be a list.")
        calls += [(name, index, *_node_args(data, name)) for index, data in enumerate(nodes)]

    tensors: dict[tuple[str, int], KerasTensor] = {
        (name, 0): layer.output for name, layer in layers.items() if isinstance(layer, InputLayer)
    }
    while calls:  # every pass makes at least one call, or the config cannot be completed
        waiting = []
        for name, index, refs, many in calls:
            if not all(ref in tensors for ref in refs):
                waiting.append((name, index, refs, many))
                continue
            args = [tensors[ref] for ref in refs]
            tensors[(name, index)] = layers[name](args if many else args[0])
        if len(waiting) == len(calls):
            missing = sorted({r for _, _, refs, _ in waiting for r in refs if r not in tensors})
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
