"""Traces: every number of one training step, read from what the layers cached.

``trace(model, x, y)`` runs one real step of glassnet's engine — forward (each layer stores its
input, z and a), backward (the loss's ∂C/∂a or the case-1 ∂C/∂z at the output layer, then the
recursion), one optimizer update — and collects what the layers kept, in the deck's notation.
It computes nothing of its own (DESIGN.md §5): the only extra arithmetic is the finite-difference
check placed beside each gradient, which re-runs the model's own forward pass.

``trace`` works on a copy of the model, so the model itself is not changed. ``TraceRecorder`` is
the ``fit`` callback that records the real training steps of the model being trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, is_dataclass

import numpy as np

from glassnet import distribution, optimizers
from glassnet.backend import check_positive
from glassnet.callbacks import Callback
from glassnet.i18n import _
from glassnet.layers import InputLayer
from glassnet.models import Model
from glassnet.models.checks import as_input

__all__ = [
    "FLOOR",
    "TOLERANCE",
    "Check",
    "LayerTrace",
    "Trace",
    "TraceRecorder",
    "backward_rule",
    "relative_error",
    "target_for_label",
    "trace",
]

MAX_CHECKED = 64  # finite-difference checks per weight tensor (the largest gradients first)
# One bound for ✓ everywhere (the page, ``glassnet explain``, ``check_gradients``): backprop in
# float64 against float64 central differences agree to ~1e-9 on every layer kind; a wrong
# derivative is off by a fraction of itself.
TOLERANCE = 1e-5
# The smallest gradient scale a relative error divides by: FLOOR·|C|, and never below
# ABSOLUTE_FLOOR. Central differences carry C's rounding, about 1e-16·|C| / ε = 1e-10·|C| (C is
# exact to its last bits, a confident answer's too: log-softmax goes through log1p); backprop
# carries that of a − y, 1e-16 absolute (a ≈ 1 − C rounds). Below the floor the check compares
# absolutely, |backprop − finite| ≤ TOLERANCE·floor: 1e-7·|C|, or 1e-15, above both. Where every
# gradient is below 1e-10 (C ≲ 1e-10) float64 cannot tell a wrong derivative from a right one;
# above, a gradient off by half of itself fails (tested at C ≈ 1e-6 on eight kinds of layer).
FLOOR = 1e-2
ABSOLUTE_FLOOR = 1e-10
TINY_LOSS = 1e-4  # below this C, the text says the network already gives the label ≈ all of it


def relative_error(backprop, finite, floor: float = 0.0) -> float:
    """max |backprop − finite| / max(max |backprop|, max |finite|, floor).

    >>> f"{relative_error(np.array([2.0, -1.0]), np.array([2.0, -1.000001])):.3g}"
    '5e-07'
    >>> f"{relative_error(np.array([2e-12]), np.array([1e-12]), floor=1e-4):.3g}"  # ≈ 0 both
    '1e-08'
    """
    backprop, finite = np.asarray(backprop, float), np.asarray(finite, float)
    scale = max(np.abs(backprop).max(initial=0), np.abs(finite).max(initial=0), floor)
    return float(np.abs(backprop - finite).max(initial=0) / scale)


@dataclass
class Check:
    """Backpropagation against central differences on some entries of one parameter, both in
    float64 (the step itself may have run in float32, whose rounding at a tiny loss is larger
    than the gradient: the check is of the derivative, not of float32)."""

    indices: np.ndarray  # flat indices into the parameter, the largest |∂C/∂w| first
    backprop: np.ndarray  # ∂C/∂w there, by the backward pass in float64
    finite: np.ndarray  # (C(w + ε) − C(w − ε)) / 2ε there, in float64
    C: float  # the float64 loss at the step's start: the floor is FLOOR·|C|

    @property
    def error(self) -> float:
        return relative_error(self.backprop, self.finite, max(FLOOR * abs(self.C), ABSOLUTE_FLOOR))

    @property
    def ok(self) -> bool:
        return self.error <= TOLERANCE


@dataclass
class LayerTrace:
    """One layer's numbers for one step. ``number`` counts from 1, as on the slides."""

    number: int
    name: str
    kind: str
    activation: str | None
    a_prev: np.ndarray | None = None  # the stored input: ∂z/∂W reads it
    W: np.ndarray | None = None  # (n_out, n_in), before the update
    b: np.ndarray | None = None
    z: np.ndarray | None = None
    a: np.ndarray | None = None
    dC_da: np.ndarray | None = None  # None where the case-1 shortcut skipped it
    dC_dz: np.ndarray | None = None
    dC_dx: np.ndarray | None = None  # what the layer sent back to the one before it
    dC_dW: np.ndarray | None = None
    dC_db: np.ndarray | None = None
    numeric: dict = field(default_factory=dict)  # "W", "b", … -> Check
    W_new: np.ndarray | None = None
    b_new: np.ndarray | None = None
    source: str = "the input x"  # what the layer reads, in words
    read_by: list = field(default_factory=list)  # numbers of the layers that read its output
    is_output: bool = False  # a model output: its ∂C/∂a (or ∂C/∂z) comes from the loss
    case_1: bool = False  # ∂C/∂z came straight from the loss
    # Parameters other than W and b (a user's own layer): name -> {"before", "after", "grad"}
    other: dict = field(default_factory=dict)
    # A conv layer's window (kh, kw, c_in): each row of W is a filter that sees one window.
    window: tuple | None = None
    what: str = ""  # what a layer without neurons does, in words (pooling, normalization, …)
    # A recurrent layer's ∂C/∂h_t for every step t (batch, T, units): backpropagation through time
    dC_dh: np.ndarray | None = None
    backward: str = ""  # what the layer's backward pass does, in the deck's words
    # A layer written with call() and glassnet.ops: each recorded op, in order, as
    # {"name": "t2", "op": "add", "reads": ["t1", "variable_1"], "value": …, "dC_dvalue": …}
    ops: list = field(default_factory=list)

    def parameter_names(self) -> list[str]:
        names = [n for n, v in (("W", self.W), ("b", self.b)) if v is not None]
        return names + list(self.other)

    def gradient(self, name: str) -> np.ndarray:
        """∂C/∂(parameter ``name``) as the backward pass computed it."""
        if name in self.other:
            return self.other[name]["grad"]
        return {"W": self.dC_dW, "b": self.dC_db}.get(name)

    def before(self, name: str) -> np.ndarray:
        """Parameter ``name`` as the step found it."""
        if name in self.other:
            return self.other[name]["before"]
        return {"W": self.W, "b": self.b}.get(name)

    def after(self, name: str) -> np.ndarray:
        """Parameter ``name`` as the step left it."""
        if name in self.other:
            return self.other[name]["after"]
        return {"W": self.W_new, "b": self.b_new}.get(name)

    def gradient_through_time(self) -> np.ndarray | None:
        """‖∂C/∂h_t‖ at every step t = 1 … T of a recurrent layer (over the batch and the
        units): where a gradient vanishes or explodes on its way back, it shows."""
        if self.dC_dh is None:
            return None
        return np.linalg.norm(np.asarray(self.dC_dh, dtype=np.float64), axis=(0, 2))

    @property
    def has_weights(self) -> bool:
        return self.W is not None

    def relative_error(self, name: str) -> float | None:
        """The check's relative error for parameter ``name`` (see ``relative_error``)."""
        return self.numeric[name].error if name in self.numeric else None

    def checks_ok(self) -> bool | None:
        """Whether every check of this layer passed; None where nothing was checked."""
        return all(c.ok for c in self.numeric.values()) if self.numeric else None


@dataclass
class Split:
    """One weight's gradient in a data-parallel step: what each process computed on its rows of
    the batch, and the weighted sum that one Allreduce makes of them (glassnet.distribution)."""

    layer: int  # the layer's number, from 1
    name: str  # "W"
    index: tuple  # the entry of W: the one with the largest |∂C/∂w|
    rows: list[int]  # each process's rows of the batch, in rank order
    gradients: list[float]  # each process's ∂C/∂w: the mean over its own rows
    average: float  # Σ_r (rows_r / B)·∂C_r/∂w
    whole: float  # ∂C/∂w of the whole batch on one process (the step the trace shows)
    before: float
    after: float


@dataclass
class Trace:
    """Every number of one training step: forward, loss, backward, checks, update, new loss."""

    x: np.ndarray
    y: np.ndarray
    loss_name: str
    C: float
    case_1: bool  # the output layer's ∂C/∂z came straight from the loss
    optimizer: str
    learning_rate: float
    layers: list[LayerTrace]
    C_new: float | None = None
    a_new: np.ndarray | None = None  # the model's output after the step
    dtype: str = "float32"  # the step's float type (the checks run in float64)
    split: Split | None = None  # under data-parallel training: one weight, process by process
    loss_ops: list = field(default_factory=list)  # a loss function's ops, as LayerTrace.ops
    penalty: float = 0.0  # Ω(W) at the step's start: the regularizers' part of C
    added: float = 0.0  # what the layers gave add_loss in the step's forward pass: part of C

    def next_label(self) -> int | None:
        """For a classifier's step on one sample: the class the network gave most probability
        after the target's, before the step (the label to try where C ≈ 0); else None."""
        if "categorical_crossentropy" not in self.loss_name or isinstance(self.y, list):
            return None
        a = np.asarray(self.layers[-1].a).reshape(len(self.y), -1)[0]  # (classes,)
        y = np.asarray(self.y)
        target = int(y.reshape(-1)[0]) if "sparse" in self.loss_name else int(y[0].argmax())
        ranked = [int(k) for k in np.argsort(-a, kind="stable") if k != target]
        return ranked[0] if ranked else None

    @property
    def tiny_loss(self) -> bool:
        """C ≈ 0: the network already gives the target nearly all of it, so every gradient
        and the update are tiny (in float32, W after the step may equal W before)."""
        return self.C < TINY_LOSS

    # ---- rendering ------------------------------------------------------------------------------

    def render(
        self, color: bool = False, neuron: tuple[int, int] | None = None, full: bool = False
    ) -> str:
        """The trace as text, in the deck's notation (see ``glassnet.glassbox.render``)."""
        from glassnet.glassbox.render import render_text

        return render_text(self, color=color, neuron=neuron, full=full)

    def __str__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        from glassnet.glassbox.render import render_html

        return render_html(self)

    def to_dict(self) -> dict:
        def plain(value):
            if is_dataclass(value):
                return {k: plain(v) for k, v in vars(value).items()}
            if isinstance(value, np.ndarray) and value.dtype == np.float32:
                # each float32 as its shortest decimal (0.1, not 0.10000000149011612): the
                # same number when read back as float32, in half the characters
                flat = [float(str(v)) for v in value.reshape(-1)]
                return np.array(flat).reshape(value.shape).tolist()
            if isinstance(value, np.ndarray):
                return value.tolist()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            if isinstance(value, (np.floating, np.integer)):
                return value.item()
            return value

        out = {k: plain(v) for k, v in vars(self).items() if k != "layers"}
        out["layers"] = [{k: plain(v) for k, v in vars(layer).items()} for layer in self.layers]
        for entry in (out["loss_ops"], *(layer["ops"] for layer in out["layers"])):
            entry[:] = [{k: plain(v) for k, v in op.items()} for op in entry]
        return out

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


# ---- capturing ----------------------------------------------------------------------------------


def _copy_model(model: Model, dtype: str) -> Model:
    """The same architecture and weights, its parameters in ``dtype`` (the process's float type
    is left alone: another thread may be training)."""
    config = _with_dtype(model.get_config(), dtype)
    # the model's own classes, a user's layers among them, rebuild it
    clone = type(model).from_config(config, custom_objects=model.layer_classes())
    if not clone.built:  # a subclassed model: built as the original was
        clone.build(model.inputs[0].shape)
    clone.set_weights(model.get_weights())
    for mine, theirs in zip(model.leaf_layers(), clone.leaf_layers()):
        if hasattr(mine, "set_vocabulary"):  # an adapted vocabulary: state, not a weight
            theirs.set_vocabulary(mine.get_vocabulary(), mine.idf_weights)
    return clone


def _with_dtype(config, dtype: str):
    """``config`` with every float ``dtype`` entry, nested models' included, set to ``dtype``."""
    if isinstance(config, list):
        return [_with_dtype(entry, dtype) for entry in config]
    if not isinstance(config, dict):
        return config
    out = {k: _with_dtype(v, dtype) for k, v in config.items()}
    if isinstance(out.get("dtype"), (str, dict)) and "float" in str(out["dtype"]):
        out["dtype"] = dtype
    return out


def _losses(model: Model):
    """The model's losses as compile takes them: one, or a list in output order."""
    return model.output_losses[0] if len(model.output_losses) == 1 else list(model.output_losses)


def _layer_nodes(model: Model) -> list:
    """The calls of layers the trace shows, "layer 1, 2, …": every node but the inputs."""
    return [node for node in model.nodes if not isinstance(node.layer, InputLayer)]


def _snapshot(model: Model) -> dict[int, dict]:
    return {
        id(node.layer): {k: p.copy() for k, p in node.layer.params.items()}
        for node in _layer_nodes(model)
    }


# One pass over the nodes on purpose: each LayerTrace field is read from the cache where the
# layer left it, in the order a reader of the trace meets them.
def _capture(model: Model, x, y, before: dict[int, dict], C: float, penalty: float) -> Trace:
    """A Trace from what the layers cached in the step just taken (weights now updated);
    ``penalty`` is Ω(W) at the step's start."""
    case_1_nodes = {id(t.node) for i, t in enumerate(model.outputs) if model.case_1(i)}
    nodes = _layer_nodes(model)
    number = {id(t): i for i, node in enumerate(nodes, start=1) for t in node.outputs}
    single = len(model.inputs) == 1
    names = {id(t): "x" if single else f"x[{k}]" for k, t in enumerate(model.inputs)}
    outputs = {id(t) for t in model.outputs}
    layers = []
    for i, node in enumerate(nodes, start=1):
        layer, cache = node.layer, model.cache_of(node)
        old = before[id(layer)]
        activation = getattr(layer, "activation", None)
        lt = LayerTrace(
            number=i,
            name=layer.name,
            kind=type(layer).__name__,
            activation=activation.name if activation is not None else None,
        )
        lt.window, lt.what = _window_of(layer), _what(layer)
        lt.ops = recorded_ops(getattr(cache, "tape", None))
        for attr in ("a_prev", "z", "a", "dC_dz", "dC_dh"):
            value = getattr(cache, attr, None)
            setattr(lt, attr, None if value is None else np.array(value))

        def said(t):  # a tensor a layer reads, in words
            if id(t) in names:
                return _("the input {x}").format(x=names[id(t)])
            if t.index:  # a recurrent layer's final state (return_state): 1 is h, 2 an LSTM's c
                return _("final state {k} of layer {number}").format(
                    k=t.index, number=number[id(t)]
                )
            return _("the output of layer {number}").format(number=number[id(t)])

        inputs = node.inputs[: len(node.inputs) - node.states]
        lt.source = _(" and ").join(said(t) for t in inputs)
        if node.states:
            lt.source += _("; its initial state: {states}").format(
                states=_(" and ").join(said(t) for t in node.inputs[len(inputs) :])
            )
        lt.read_by = [
            k for k, other in enumerate(nodes, start=1)
            if any(t in other.inputs for t in node.outputs)
        ]  # fmt: skip
        lt.is_output = any(id(t) in outputs for t in node.outputs)
        lt.case_1 = id(node) in case_1_nodes
        if id(node) not in case_1_nodes and getattr(cache, "dC_da", None) is not None:
            lt.dC_da = np.array(cache.dC_da)
        dC_dx = getattr(cache, "dC_dx", None)
        if isinstance(dC_dx, np.ndarray):  # one input (a merge layer sends back a list)
            lt.dC_dx = dC_dx.copy()
        if "W" in layer.params:
            lt.W, lt.W_new = old["W"], layer.params["W"].copy()
            lt.dC_dW = layer.grads["W"].copy()
        deck = ("W", "b") if "W" in layer.params else ()  # W and its b, as the deck draws them
        if "b" in deck:
            lt.b, lt.b_new = old["b"], layer.params["b"].copy()
            lt.dC_db = layer.grads["b"].copy()
        for name in layer.params:  # the others: a recurrent layer's W_x, W_h and b, a user's
            if name not in deck and name not in layer.non_trainable:
                after, grad = layer.params[name].copy(), layer.grads[name].copy()
                lt.other[name] = {"before": old[name], "after": after, "grad": grad}
        layers.append(lt)
    for node, lt in zip(nodes, layers):
        lt.backward = backward_rule(node.layer, lt, layers, model.cache_of(node))
    return Trace(
        x=[np.array(a) for a in x] if isinstance(x, list) else np.array(x),
        y=[np.array(a) for a in y] if isinstance(y, list) else np.array(y),
        loss_name=" + ".join(
            (f"{w:g}·" if w != 1 else "") + loss.name
            for loss, w in zip(model.output_losses, model.loss_weights)
            if loss is not None
        ),
        C=C,
        case_1=bool(case_1_nodes),
        optimizer=type(model.optimizer).__name__,
        learning_rate=model.optimizer.learning_rate,
        layers=layers,
        dtype=model.compute_dtype,
        loss_ops=[
            op for loss in model.output_losses for op in recorded_ops(getattr(loss, "tape", None))
        ],
        penalty=penalty,
        added=model.added_loss(),
    )


def recorded_ops(tape) -> list[dict]:
    """Each op a tape recorded, with what it read, made, and received in the backward pass."""
    if tape is None:
        return []
    return [
        {
            "name": step.output.name,
            "op": step.op,
            "reads": step.reads(),
            "value": np.array(step.output.value),
            "dC_dvalue": None if step.dC_dz is None else np.array(step.dC_dz),
        }
        for step in tape.steps
    ]


def _window_of(layer) -> tuple | None:
    """(kh, kw, c_in) for a convolution (a Conv1D's kh is 1; a Conv3D's (kd, kh, kw, c_in)),
    else None."""
    if not hasattr(layer, "kernel_size") or not hasattr(layer, "c_in"):
        return None
    return (*((1,) * (2 - len(layer.kernel_size)) + tuple(layer.kernel_size)), layer.c_in)


def _what(layer) -> str:
    """What a layer without neurons does to its input, or a recurrent layer at each step, in
    the deck's words."""
    kind = type(layer).__name__
    size = "×".join(str(k) for k in getattr(layer, "pool_size", ()))
    if kind.startswith("MaxPooling"):
        return _(
            "keeps the largest value of each {size} window (∂C/∂x goes to that value only)"
        ).format(size=size)
    if kind.startswith("AveragePooling"):
        return _("keeps the mean of each {size} window (∂C/∂x is shared out equally)").format(
            size=size
        )
    if kind.startswith("GlobalMaxPooling"):
        return _("keeps the largest value of each feature map")
    if kind.startswith("GlobalAveragePooling"):
        return _("keeps the mean of each feature map")
    if kind == "BatchNormalization":
        return _("standardizes each feature over the batch: γ·(x − μ)/√(σ² + ε) + β")
    if kind in ("Flatten", "Reshape"):
        return _("lays the same numbers out in the shape {shape}").format(
            shape="×".join(str(d) for d in layer.output_shape[1:])
        )
    if kind in ("TextVectorization", "StringLookup", "IntegerLookup"):
        return _("looks each token up in its vocabulary of {size} and gives its id (the special "
                 "tokens first: padding, then the unknown word); a token has no slope, so no "
                 "∂C/∂x goes back past it").format(size=layer.vocabulary_size())  # fmt: skip
    if kind in ("Dropout", "SpatialDropout2D"):
        return _("while training, sets a random {rate} of its inputs to 0 and scales the rest "
                 "by 1/(1 − rate); otherwise passes them on unchanged").format(
            rate=f"{layer.rate:.0%}")  # fmt: skip
    if kind in ("SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"):
        lstm = _(
            "z_t = W_x·x_t + W_h·h_{{t−1}} + b, the gates i, f, c, o side by side; i, f, o = "
            "{gate}(z), g = {activation}(z), c_t = f ⊙ c_{{t−1}} + i ⊙ g, h_t = o ⊙ "
            "{activation}(c_t)"
        )
        steps = {
            "SimpleRNN": _(
                "at every step t = 1 … T, with the same weights: z_t = W_x·x_t + W_h·h_{{t−1}} + "
                "b, h_t = {activation}(z_t)"
            ),
            "LSTM": _("at every step t = 1 … T, with the same weights: {lstm}"),
            "GRU": _(
                "at every step t = 1 … T, with the same weights: the update and reset gates z, "
                "r = {gate}(W_x·x_t + W_h·h_{{t−1}} + b), the candidate h̃ = {activation}(x part "
                "+ r ⊙ h part), h_t = z ⊙ h_{{t−1}} + (1 − z) ⊙ h̃"
            ),
            "ConvLSTM": _(
                "an LSTM at every position of the feature map, with the same weights at every "
                "position and step: x_t and h_{{t−1}} are read a {window} window at a time "
                "(h_{{t−1}} padded to keep its size), {lstm}"
            ),
        }
        act, gate = (  # the layer's own activations (the gates': LSTM's, GRU's), σ for sigmoid
            "σ" if f.name == "sigmoid" else f.name
            for f in (layer.activation, layer.recurrent_activation)
        )
        window = "×".join(str(k) for k in getattr(layer, "kernel_size", ()))
        lstm = lstm.format(activation=act, gate=gate)
        return steps[kind.removesuffix("1D").removesuffix("2D").removesuffix("3D")].format(
            activation=act, gate=gate, lstm=lstm, window=window
        )
    return ""


def _next_with_weights(lt: LayerTrace, layers: list) -> LayerTrace | None:
    """The layer whose ∂C/∂z and W give this one's ∂C/∂a directly: its single reader, if that
    has weights; None where the output branches or passes through a layer without weights."""
    if len(lt.read_by) == 1 and layers[lt.read_by[0] - 1].has_weights:
        return layers[lt.read_by[0] - 1]
    return None


# A table of rules, one per kind of layer, kept in one place so that the page and the text say
# the same thing.
def backward_rule(layer, lt: LayerTrace, layers: list, cache=None) -> str:
    """What the backward pass of ``layer`` (traced as ``lt`` among ``layers``, its values in
    ``cache``) does, in the deck's words: case 1 or 2 for neurons, each other kind its own."""
    kind = type(layer).__name__
    if lt.case_1:
        return _("case 1: output layer, ∂C/∂z = (a − y)/batch straight from the loss")
    if lt.has_weights or kind == "Activation":
        if lt.is_output:
            return _("output layer: ∂C/∂a from the loss, then ∂C/∂z = σ′(z) ⊙ ∂C/∂a")
        if len(lt.read_by) > 1:
            return _(
                "case 2 with a sum: its output feeds layers {readers}, so ∂C/∂a is the sum of "
                "what each sends back (the deck's σ′(z)·(w3·∂C/∂z′ + w4·∂C/∂z″)); "
                "∂C/∂z = σ′(z) ⊙ ∂C/∂a"
            ).format(readers=", ".join(str(k) for k in lt.read_by))
        after = _next_with_weights(lt, layers)
        if after is not None:
            return _("case 2: ∂C/∂z = σ′(z) ⊙ (W_nextᵀ·∂C/∂z_next), W_next and ∂C/∂z_next "
                     "of layer {k}").format(k=after.number)  # fmt: skip
        reader = layers[lt.read_by[0] - 1] if lt.read_by else None
        return _("case 2: ∂C/∂z = σ′(z) ⊙ ∂C/∂a, ∂C/∂a as layer {k} ({kind}) sent it back").format(
            k=reader.number if reader else "?", kind=reader.kind if reader else "?"
        )
    if kind.startswith("MaxPooling"):
        return _("∂C/∂x: each window's ∂C/∂a goes to the place of its largest value; the "
                 "other places get 0")  # fmt: skip
    if kind.startswith("AveragePooling"):
        size = int(np.prod(layer.pool_size))
        return _("∂C/∂x: each window's ∂C/∂a is shared out equally, ÷ {n}, among its "
                 "places").format(n=size)  # fmt: skip
    if kind.startswith("GlobalMaxPooling"):
        return _("∂C/∂x: each feature map's ∂C/∂a goes to the place of its largest value")
    if kind.startswith("GlobalAveragePooling"):
        return _("∂C/∂x: each feature map's ∂C/∂a is shared out equally among its places")
    if kind in ("Flatten", "Reshape"):
        return _("∂C/∂x = ∂C/∂a: the same numbers, rearranged back into the input's shape")
    if kind in ("TextVectorization", "StringLookup", "IntegerLookup"):
        return _("no ∂C/∂x: a token is a label, not a number with a slope, so the recursion "
                 "stops at the vocabulary")  # fmt: skip
    if kind in ("Dropout", "SpatialDropout2D"):
        if getattr(cache, "mask", None) is None:
            return _("∂C/∂x = ∂C/∂a ⊙ mask / (1 − rate); this step ran without dropout "
                     "(no mask), so ∂C/∂x = ∂C/∂a")  # fmt: skip
        return _("∂C/∂x = ∂C/∂a ⊙ mask / (1 − rate): the dropped neurons get 0")
    if kind == "BatchNormalization":
        return _("∂C/∂x = ∂C/∂a · γ/√(σ² + ε) with the stored μ and σ² (inference mode); "
                 "∂C/∂γ = Σ ∂C/∂a ⊙ x̂, ∂C/∂β = Σ ∂C/∂a")  # fmt: skip
    if kind in ("SimpleRNN", "LSTM", "GRU"):
        return _("back through time: ∂C/∂h_t = (from the output at t) + W_hᵀ·∂C/∂z_{t+1}, "
                 "t = T … 1; ∂C/∂W_x, ∂C/∂W_h and ∂C/∂b are summed over the steps")  # fmt: skip
    if kind in ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"):
        return _("back through time at every position: ∂C/∂h_t = (from the output at t) + each "
                 "window's share of W_hᵀ·∂C/∂z_{t+1}, added back where it was read, t = T … 1; "
                 "∂C/∂x_t the same way from W_xᵀ·∂C/∂z_t; ∂C/∂W_x, ∂C/∂W_h and ∂C/∂b are summed "
                 "over the steps and the positions")  # fmt: skip
    if kind == "Add":
        return _("∂C/∂x_k = ∂C/∂a for every input k: a sum passes the gradient on unchanged")
    if kind == "Subtract":
        return _("∂C/∂x_1 = ∂C/∂a, ∂C/∂x_2 = −∂C/∂a")
    if kind == "Multiply":
        return _("∂C/∂x_k = ∂C/∂a ⊙ (the product of the other inputs)")
    if kind == "Average":
        return _("∂C/∂x_k = ∂C/∂a / n for each of the n inputs")
    if kind in ("Maximum", "Minimum"):
        return _("∂C/∂x_k = ∂C/∂a where input k was the one chosen, else 0")
    if kind == "Concatenate":
        return _("∂C/∂a cut back into the inputs' parts along the joined axis")
    if kind == "Embedding":
        return _("∂C/∂W: the row of each token read gets that step's ∂C/∂a, summed; "
                 "tokens are labels, so there is no ∂C/∂x")  # fmt: skip
    if kind in ("Rescaling", "Normalization"):
        return _("∂C/∂x = ∂C/∂a × the same scale the forward pass applied")
    if kind in ("TimeDistributed", "Bidirectional"):
        return _("its inner layer's backward pass, at every step (both directions, added)")
    return _("its own backward pass: ∂C/∂x from ∂C/∂a")


def _finite_differences(
    model: Model, x, y, tr: Trace, max_checked: int = MAX_CHECKED, eps: float = 1e-6
) -> None:
    """Beside each gradient, a ``Check``: on a float64 copy of the model at the weights the step
    started from, the backward pass and central differences of C, entry by entry."""
    check = Float64Copy(model, x, y)
    nodes = _layer_nodes(check.model)
    for node, lt in zip(nodes, tr.layers):  # the weights the step started from
        for name in lt.parameter_names():
            node.layer.params[name][...] = lt.before(name)
    C = check.backward()
    backprop = {
        (id(node), name): node.layer.grads[name].copy()
        for node, lt in zip(nodes, tr.layers)
        for name in lt.parameter_names()
    }
    for node, lt in zip(nodes, tr.layers):
        for name in lt.parameter_names():
            grad = backprop[id(node), name]
            lt.numeric[name] = check_tensor(node.layer.params[name], grad, check.loss, C,
                                            max_checked, eps)  # fmt: skip


class Float64Copy:
    """``model`` copied in float64, with its losses (mean squared error if it has none), and
    the batch (x, y): C and the backward pass at whatever its weights are."""

    def __init__(self, model: Model, x, y):
        self.model = _copy_model(model, "float64")
        self.model.compile(optimizer="sgd", loss=_losses(model) if model.compiled else "mse",
                           loss_weights=model.loss_weights if model.compiled else None)  # fmt: skip
        self.xs = (
            [as_input(a, "float64") for a in x] if isinstance(x, list) else as_input(x, "float64")
        )
        self.ys = self.model.check_data(self.xs, y)[1]

    def loss(self) -> float:
        """The whole C: the outputs' losses, Ω(W), and what the layers gave add_loss."""
        out = self.model.forward(self.xs)
        return self.model.loss_value(self.ys, out) + self.model.added_loss()

    def backward(self) -> float:
        """C, with every layer's gradients set by the backward pass."""
        return self.model.backpropagate(self.ys, self.model.forward(self.xs))


def check_tensor(param, grad, loss_at, C: float, max_checked: int = MAX_CHECKED,
                 eps: float = 1e-6) -> Check:  # fmt: skip
    """``grad`` (the backward pass's ∂C/∂param) against central differences of ``loss_at()``
    on the ``max_checked`` entries of ``param`` with the largest |∂C/∂w|, each moved by ±ε.

    A z that lies within ε·|x| of a kink (relu's 0; a drawn digit's background puts many z at
    b) makes the two sides of a central difference see two slopes: its average matches neither.
    A tensor that disagrees is measured once more with ε/100, which such a z no longer
    straddles; a wrong derivative disagrees at every ε, so the check still catches it."""
    flat, grad = param.reshape(-1), grad.reshape(-1)

    def central(k, step):
        old = flat[k]
        flat[k] = old + step
        c_plus = loss_at()
        flat[k] = old - step
        c_minus = loss_at()
        flat[k] = old
        return (c_plus - c_minus) / (2 * step)

    order = np.argsort(-np.abs(grad), kind="stable")[:max_checked]
    found = Check(order, grad[order], np.array([central(k, eps) for k in order]), C)
    if not found.ok:  # a z within ε of a kink (relu's 0)? Straddled at ε, not at ε/100
        again = Check(order, grad[order], np.array([central(k, eps / 100) for k in order]), C)
        if again.ok:
            found = again
    return found


# One function on purpose: one real step, start to end — a copy, its optimizer, the data as the
# model takes it, the step, what it cached, the new loss, the checks.
def trace(
    model: Model,
    x,
    y,
    learning_rate: float | None = None,
    check: bool = True,
    training: bool = False,
    max_checked: int = MAX_CHECKED,
) -> Trace:
    """Every number of one gradient-descent step of ``model`` on (x, y), as a ``Trace``.

    Args:
        model: A model with one input and one output (Sequential or functional); compiled, or
            give ``learning_rate`` (it is then traced with mean squared error unless compiled
            with another loss).
        x, y: The input batch and its targets.
        learning_rate: Trace plain gradient descent W ← W − learning_rate·∂C/∂W (the deck's
            rule) instead of the model's own optimizer.
        check: Put finite differences beside the gradients (in float64, on the
            ``max_checked`` largest entries of each weight tensor).
        training: Run layers in training mode (dropout active).

    The model itself is not changed: the step runs on a copy with the same weights. Each call
    of a layer is one "layer" of the trace; a layer called twice appears twice, with ∂C/∂W the
    sum over its calls.
    """
    if learning_rate is not None:
        downhill = ": gradient descent steps downhill by learning_rate × slope"
        check_positive("learning_rate", learning_rate, why=downhill)
    if not model.compiled and learning_rate is None:
        raise ValueError(
            "trace() needs a compiled model, or a learning_rate to trace plain "
            "gradient descent with."
        )
    copy = _copy_model(model, model.compute_dtype)
    copy.record_layers = True  # every layer on its own, its ∂C/∂a and ∂C/∂x kept: the trace
    optimizer = (
        optimizers.SGD(learning_rate=learning_rate)
        if learning_rate is not None
        else optimizers.get(
            {"class_name": type(model.optimizer).__name__, "config": model.optimizer.get_config()}
        )
    )
    if model.compiled:
        copy.compile(optimizer=optimizer, loss=_losses(model), loss_weights=model.loss_weights)
    else:
        copy.compile(optimizer=optimizer, loss="mse")
    if len(model.inputs) == 1:
        x = np.asarray(x)
        text = x.dtype.kind in "USO"  # strings: (n,) is n texts, as predict reads them
        if x.ndim == len(model.inputs[0].shape) - 1 - text:  # one sample: a batch of one
            x, y = x[None], np.asarray(y)
            sparse = copy.output_losses[0].name == "sparse_categorical_crossentropy"
            y = y.reshape(1) if sparse else y[None]
    xs, ys = copy.check_data(x, y)
    xs = [as_input(a, copy.compute_dtype) for a in xs]
    x = xs[0] if len(xs) == 1 else xs
    y = ys[0] if len(ys) == 1 else ys

    before, penalty = _snapshot(copy), copy.regularization()
    C, _outputs = copy.train_step(x, y, training=training)
    result = _capture(copy, x, y, before, C, penalty)
    result.a_new = copy.forward(x)
    result.C_new = copy.loss_value(y, result.a_new) + copy.added_loss()  # the whole C again
    if check:
        _finite_differences(copy, x, y, result, max_checked)
    if distribution.active() is not None and not isinstance(x, list):
        result.split = _split(model, x, y, result, training)
    return result


def _split(model: Model, x, y, result: Trace, training: bool) -> Split | None:
    """The deck's gradient descent split over the processes of a data-parallel job: each takes
    its rows of the batch and computes ∂C/∂w for one weight at the step's starting weights (in
    float64); every process gathers them all. Every process must call ``trace`` alike."""
    dist = distribution.active()
    lt = next((lt for lt in result.layers if lt.W is not None), None)
    if lt is None:
        return None
    index = tuple(int(i) for i in np.unravel_index(np.abs(lt.dC_dW).argmax(), lt.dC_dW.shape))
    mine = dist.share(len(x))
    rows = mine.stop - mine.start
    gradient = 0.0
    if rows:
        part = _copy_model(model, "float64")
        part.compile(optimizer="sgd", loss=_losses(model) if model.compiled else "mse")
        out = part.forward(np.asarray(x[mine], dtype="float64"), training=training)
        part.backpropagate(y[mine], out)
        layer = _layer_nodes(part)[lt.number - 1].layer
        gradient = float(layer.grads["W"][index])
    everyone = dist.gather((rows, gradient))
    total = sum(r for r, _ in everyone)
    return Split(
        layer=lt.number,
        name="W",
        index=index,
        rows=[r for r, _ in everyone],
        gradients=[g for _, g in everyone],
        average=sum(r / total * g for r, g in everyone),
        whole=float(lt.dC_dW[index]),
        before=float(lt.W[index]),
        after=float(lt.W_new[index]),
    )


def target_for_label(model: Model, label: int) -> np.ndarray:
    """A class label as the target of one sample that the model's loss takes: one-hot for
    categorical cross-entropy, the label itself for the sparse one."""
    classes = model.output_shape[-1]
    if not 0 <= label < classes:
        raise ValueError(f"Label {label} is not a class of this model (0 to {classes - 1}).")
    if model.output_losses[0].name == "categorical_crossentropy":
        return np.eye(classes)[[label]]
    return np.array([label])


class TraceRecorder(Callback):
    """Records a ``Trace`` of the real training step every ``every`` steps during ``fit``.

    The weights are copied just before a recorded step; everything else is read from the layers'
    caches just after it. ``recorder.traces`` is the list of (epoch, step, Trace). A recorded
    step runs every layer on its own, so that each keeps its values: the convolutions that the
    other steps run with their max pooling as one (``Model.fused_layers``) compute the same
    numbers either way.
    """

    def __init__(self, every: int = 100, check: bool = False):
        super().__init__()
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"Received every={every!r}. Expected a positive integer.")
        self.every, self.check = every, check
        self.traces: list[tuple[int, int, Trace]] = []
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._before = _snapshot(self.model) if batch % self.every == 0 else None
        self._penalty = self.model.regularization() if self._before is not None else 0.0
        if self._before is not None:  # every layer's values kept, each layer run on its own
            self._recording, self.model.record_layers = self.model.record_layers, True

    def on_train_batch_end(self, batch, logs=None):
        if self._before is None:
            return
        self.model.record_layers = self._recording
        x, y, C = self.model.last_batch
        trace = _capture(self.model, x, y, self._before, C, self._penalty)
        self.traces.append((self._epoch, batch, trace))
