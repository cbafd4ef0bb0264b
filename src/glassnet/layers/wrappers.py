"""Wrappers: ``Bidirectional`` (a recurrent layer read forwards and backwards),
``TimeDistributed`` (one layer applied to every time step) and Keras's ``RNN`` (a loop around a
cell: ``RNN(LSTMCell(64))`` is ``LSTM(64)``; a list of cells, their layers stacked).

A wrapper owns no weights of its own: its ``params`` are its inner layers' (the same arrays,
named ``forward/W_x``, ``backward/W_x``, ``layer/W``, …), so the optimizer and the glass box see
them as any layer's, and the file keeps them where Keras does: under the wrapper's path, in a
group per inner layer (``layers/bidirectional/forward_layer/cell/vars``,
``layers/time_distributed/layer/vars``).
"""

from __future__ import annotations

from glassnet.backend import format_shape, snake_case, xp
from glassnet.layers.base import Cache, Layer
from glassnet.layers.recurrent import (
    Cell,
    GRUCell,
    LSTMCell,
    Recurrent,
    SimpleRNNCell,
    StackedRNNCells,
)

__all__ = ["RNN", "Bidirectional", "TimeDistributed"]


class Wrapper(Layer):
    """Base of the wrappers: inner layers at Keras's group names, their parameters as ours."""

    def sublayers(self) -> list[tuple[str, Layer]]:
        """(Keras's group name, layer) for each inner layer, in Keras's variable order."""
        raise NotImplementedError

    def owners_of_arrays(self) -> list[Layer]:
        return [owner for _, layer in self.sublayers() for owner in layer.owners_of_arrays()]

    def adopt_parameters(self) -> None:
        """Take the inner layers' parameters and gradients as this layer's (the same arrays)."""
        self.params, self.grads, self.non_trainable = {}, {}, set()
        for _, layer in self.sublayers():
            layer.adopt_parameters()  # a wrapper inside a wrapper
        self._keras_names = {}  # forward_layer/W_x → forward_lstm/kernel, as Keras paths go
        for key, layer in self.sublayers():
            for name, p in layer.params.items():
                self._keras_names[f"{key}/{name}"] = (
                    f"{layer.name}/{layer._keras_names.get(name, name)}"
                )
                self.params[f"{key}/{name}"] = p
                self.grads[f"{key}/{name}"] = layer.grads[name]
                if name in layer.non_trainable:
                    self.non_trainable.add(f"{key}/{name}")

    def _inner(self, name: str) -> tuple[Layer, str]:
        for key, layer in self.sublayers():  # a key may hold "/" itself (cell/cells/lstm_cell)
            if name.startswith(key + "/"):
                return layer, name[len(key) + 1 :]
        raise KeyError(name)

    def to_keras(self, name, array):
        layer, inner_name = self._inner(name)
        return layer.to_keras(inner_name, array)

    def from_keras(self, name, array):
        layer, inner_name = self._inner(name)
        return layer.from_keras(inner_name, array)

    def set_keras_variables(self, values, source: str = "") -> None:
        values = list(values)
        if len(values) != len(self.params):
            raise ValueError(
                f"{source}Layer {self.name!r} expects {len(self.params)} weights, but received "
                f"{len(values)}."
            )
        for _, layer in self.sublayers():
            count = len(layer.params)
            layer.set_keras_variables(values[:count], source)
            values = values[count:]

    def _pass_flags(self) -> None:
        for _, layer in self.sublayers():
            layer.needs_input_gradient = self.needs_input_gradient


class Bidirectional(Wrapper):
    """A recurrent layer run over the sequence forwards and, as a copy with its own weights,
    backwards; the two outputs merged step by step (the backward one turned back in time
    first, so that step t of each meets step t of the other).

    Args:
        layer: A ``SimpleRNN``, ``LSTM`` or ``GRU``; its config makes the forward layer.
        merge_mode: ``"concat"`` (Keras's default), ``"sum"``, ``"ave"`` or ``"mul"``.
        backward_layer: The backward layer, if not a copy of ``layer`` reading backwards.
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Recurrent):
            raise ValueError(
                "Please initialize `Bidirectional` layer with a recurrent layer (SimpleRNN, "
                f"LSTM, GRU). Received: {layer!r}"
            )
        if layer.return_state:
            raise NotImplementedError(
                "Bidirectional of a layer with return_state=True (its output and both "
                "directions' states) is not supported by glassnet yet; wrap a layer without it."
            )
        if merge_mode not in ("concat", "sum", "ave", "mul"):
            if merge_mode is None:
                raise NotImplementedError(
                    "Bidirectional(merge_mode=None) returns two outputs, which glassnet's "
                    "layers do not yet; use 'concat', 'sum', 'ave' or 'mul'."
                )
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                '{"sum", "mul", "ave", "concat", None}'
            )
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        config = layer.get_config()
        self.forward_layer = type(layer).from_config(
            {**config, "name": "forward_" + layer.name.removeprefix("forward_")}
        )
        if backward_layer is None:
            backward_layer = type(layer).from_config({
                **config,
                "go_backwards": True,
                "name": "backward_" + layer.name.removeprefix("backward_"),
            })  # fmt: skip
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards {self.forward_layer.go_backwards}, "
                f"backward_layer.go_backwards={self.backward_layer.go_backwards}"
            )
        if self.forward_layer.return_sequences != self.backward_layer.return_sequences:
            raise ValueError(
                "Forward layer and backward layer should have the same return_sequences."
            )
        self.return_sequences = self.forward_layer.return_sequences
        self._initial_weights = weights

    def sublayers(self):
        return [("forward_layer", self.forward_layer), ("backward_layer", self.backward_layer)]

    def build(self, input_shape):
        for _, layer in self.sublayers():
            layer.build(input_shape)
        self.adopt_parameters()
        super().build(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            units = self.forward_layer.units + self.backward_layer.units
            return (*shape[:-1], units)
        return shape

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        self._pass_flags()
        c.forward_values, c.backward_values = Cache(), Cache()  # the inner layers' values
        if getattr(c, "inference_only", False):
            c.forward_values.inference_only = c.backward_values.inference_only = True
        mask = getattr(c, "input_mask", None)  # padding, for both directions
        c.forward_values.input_mask = c.backward_values.input_mask = mask
        c.y = self.forward_layer.forward(a_prev, training, c.forward_values)
        c.y_rev = self.backward_layer.forward(a_prev, training, c.backward_values)
        if self.return_sequences:
            c.y_rev = c.y_rev[:, ::-1]  # the backward layer's step t, back at step t
        if self.merge_mode == "concat":
            c.a = xp.concatenate([c.y, c.y_rev], axis=-1)
        elif self.merge_mode == "sum":
            c.a = c.y + c.y_rev
        elif self.merge_mode == "ave":
            c.a = (c.y + c.y_rev) / 2
        else:
            c.a = c.y * c.y_rev
        return c.a

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        if self.merge_mode == "concat":
            units = self.forward_layer.units
            d_y, d_rev = dC_da[..., :units], dC_da[..., units:]
        elif self.merge_mode == "sum":
            d_y = d_rev = dC_da
        elif self.merge_mode == "ave":
            d_y = d_rev = dC_da / 2
        else:  # mul: ∂(y·y_rev)/∂y = y_rev
            d_y, d_rev = dC_da * c.y_rev, dC_da * c.y
        if self.return_sequences:
            d_rev = d_rev[:, ::-1]
        dx = self.forward_layer.backward(xp.ascontiguousarray(d_y), c.forward_values)
        dx_rev = self.backward_layer.backward(xp.ascontiguousarray(d_rev), c.backward_values)
        return None if dx is None else dx + dx_rev  # the input fed both: the sum comes back

    def get_config(self):
        from glassnet.layers import serialize

        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize(self.forward_layer),
            "backward_layer": serialize(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config):
        from glassnet.layers import deserialize

        def unbuilt(entry):  # the wrapper builds its layers (and counts their weights) once
            return deserialize({k: v for k, v in entry.items() if k != "build_config"})

        config = dict(config)
        config["layer"] = unbuilt(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = unbuilt(config["backward_layer"])
        return super().from_config(config)


class TimeDistributed(Wrapper):
    """Applies ``layer`` to every time step: (batch, T, …) → (batch, T, …), the same weights at
    each step. For a Dense layer that is what Dense already does on the last axis; for a conv
    layer it applies to each frame of a video."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `TimeDistributed` layer with a `keras.layers.Layer` "
                f"instance. Received: {layer!r}"
            )
        super().__init__(**kwargs)
        self.layer = layer

    def sublayers(self):
        return [("layer", self.layer)]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 3:
            raise ValueError(
                "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 "
                f"dimensions, received: {format_shape(input_shape)}"
            )
        if not self.layer.built:
            self.layer.build((None, *input_shape[2:]))
        self.adopt_parameters()
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None, *tuple(input_shape)[2:]))
        return (input_shape[0], input_shape[1], *inner[1:])

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        self._pass_flags()
        c.inner = Cache()
        if getattr(c, "inference_only", False):
            c.inner.inference_only = True
        n, T = a_prev.shape[:2]
        c.steps = (n, T)
        out = self.layer.forward(a_prev.reshape(n * T, *a_prev.shape[2:]), training, c.inner)
        c.a = out.reshape(n, T, *out.shape[1:])  # every step of every sample, one batch
        return c.a

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        n, T = c.steps
        dx = self.layer.backward(dC_da.reshape(n * T, *dC_da.shape[2:]), c.inner)
        return None if dx is None else dx.reshape(n, T, *dx.shape[1:])

    def get_config(self):
        from glassnet.layers import serialize

        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config):
        from glassnet.layers import deserialize

        return super().from_config({**config, "layer": deserialize(config["layer"])})


# ---- keras.layers.RNN(cell): the same layers, given as a cell and the loop around it ---------


_LOOP = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
         "zero_output_for_mask")  # fmt: skip


class RNN(Layer):
    """A cell run over the time steps, as ``keras.layers.RNN``: ``RNN(LSTMCell(64))`` is
    ``LSTM(64)`` — the same loop forward and back through time (see ``Recurrent``) — and its
    file is Keras's ``RNN`` with the cell's config and the weights at ``layers/rnn/cell``.

    Args:
        cell: A ``SimpleRNNCell``, ``LSTMCell`` or ``GRUCell``; or a list of them, or
            ``StackedRNNCells``: their layers stacked (see ``_Stacked``).
        return_sequences, return_state, go_backwards: as for the recurrent layers.
    """

    def __new__(cls, cell=None, *args, **kwargs):
        if cls is not RNN:  # one of the classes below, being made
            return super().__new__(cls, cell, *args, **kwargs)
        if isinstance(cell, (list, tuple, StackedRNNCells)):  # a list: StackedRNNCells, as Keras
            return super().__new__(_STACKED_RNN, cell, *args, **kwargs)
        made = _RNN_OF.get(type(cell)) if isinstance(cell, Cell) else None
        if made is None:
            raise ValueError(
                "RNN needs a SimpleRNNCell, LSTMCell or GRUCell (a cell of your own is not "
                f"supported by glassnet yet). Received: cell={cell!r}"
            )
        return super().__new__(made, cell, *args, **kwargs)

    @classmethod
    def from_config(cls, config: dict) -> RNN:
        config = dict(config)
        entry = config.pop("cell")
        classes = {c.__name__: c for c in (*_RNN_OF, StackedRNNCells)}
        name = entry.get("class_name") if isinstance(entry, dict) else None
        if name not in classes:
            raise ValueError(
                f"RNN's cell {name!r} is not one glassnet has: {', '.join(sorted(classes))}."
            )
        cell = classes[name].from_config(dict(entry.get("config") or {}))
        loop = {k: config[k] for k in _LOOP if k in config}
        base = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
        return RNN(cell, **loop, **base)


class _CellLoop:
    """What ``RNN(cell)`` adds to the layer the cell is the step of: the cell, and Keras's
    config for RNN."""

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):  # fmt: skip
        self.cell = cell
        super().__init__(cell.units, **cell.arguments, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, **kwargs)  # fmt: skip

    def get_config(self):
        made = super().get_config()
        base = {k: made[k] for k in ("name", "trainable", "dtype")}
        return {**base, **{k: made[k] for k in _LOOP},
                "cell": {"module": "keras.layers", "class_name": type(self.cell).__name__,
                         "config": self.cell.get_config(), "registered_name": None}}  # fmt: skip


_RNN_OF = {
    cell: type(
        "RNN",
        (_CellLoop, cell.layer, RNN),
        {"__module__": __name__, "__qualname__": "RNN", "__doc__": RNN.__doc__},
    )
    for cell in (SimpleRNNCell, LSTMCell, GRUCell)
}


class _Stacked(Wrapper):
    """``RNN(StackedRNNCells([a, b, …]))``: the layers of the cells, stacked, each returning its
    sequence to the next (the first reads backwards if ``go_backwards``; the rest read its
    outputs in the order it made them, as Keras's stacked cells do at each step). Their weights
    are where Keras keeps them: ``layers/rnn/cell/cells/lstm_cell/vars``, …"""

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):  # fmt: skip
        if return_state:
            raise NotImplementedError(
                "RNN(StackedRNNCells, return_state=True) is not supported by glassnet yet."
            )
        super().__init__(**kwargs)
        self.cell = cell if isinstance(cell, StackedRNNCells) else StackedRNNCells(cell)
        cell = self.cell
        self.return_sequences, self.go_backwards = bool(return_sequences), bool(go_backwards)
        self.return_state, self.stateful, self.unroll = False, stateful, bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        last = len(cell.cells) - 1
        self.layers = []
        for i, c in enumerate(cell.cells):
            layer = c.layer(c.units, **c.arguments, name=c.name,
                            return_sequences=return_sequences if i == last else True,
                            go_backwards=go_backwards and i == 0, stateful=stateful)  # fmt: skip
            layer._in_stack = True
            self.layers.append(layer)

    def sublayers(self):
        counts: dict[str, int] = {}
        keys = []
        for layer in self.layers:  # Keras's paths: the cell class, counted
            name = snake_case(type(layer).__name__) + "_cell"
            n = counts.get(name, -1) + 1
            counts[name] = n
            keys.append(f"cell/cells/{name}" if n == 0 else f"cell/cells/{name}_{n}")
        return list(zip(keys, self.layers))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.adopt_parameters()
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        self._pass_flags()
        c.values = [Cache() for _ in self.layers]
        a = a_prev
        for layer, values in zip(self.layers, c.values):
            values.inference_only = getattr(c, "inference_only", False)
            a = layer.forward(a, training, values)
        return a

    def _pass_flags(self) -> None:
        for i, layer in enumerate(self.layers):  # only the first may skip ∂C/∂x of the data
            layer.needs_input_gradient = self.needs_input_gradient if i == 0 else True

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        for layer, values in zip(reversed(self.layers), reversed(c.values)):
            dC_da = layer.backward(dC_da, values)
            if dC_da is None:
                return None
            dC_da = xp.ascontiguousarray(dC_da)
        return dC_da

    def get_config(self):
        return {**Layer.get_config(self), **{k: getattr(self, k) for k in _LOOP},
                "cell": {"module": "keras.layers", "class_name": "StackedRNNCells",
                         "config": self.cell.get_config(), "registered_name": None}}  # fmt: skip


_STACKED_RNN = type("RNN", (_Stacked, RNN), {"__module__": __name__, "__qualname__": "RNN",
                                             "__doc__": _Stacked.__doc__})  # fmt: skip
