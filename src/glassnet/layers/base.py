"""The ``Layer`` base class, symbolic tensors for the functional API, and ``Input``.

A layer owns its parameters (``params``: the deck's W and b) and their gradients (``grads``: the
same keys, ∂C/∂W and ∂C/∂b). ``forward(a_prev, training, cache)`` computes its output and keeps
what the backward pass will need (the deck: "the forward pass stores the outputs") in ``cache``;
``backward(dC_da, cache)``, directly under it in every subclass, turns ∂C/∂(its output) into
∂C/∂(its input) and fills ``grads``.

Where the values are kept: a layer used once in a model keeps them on itself (``layer.z``,
``layer.a``: what the glass box reads after a training step). A layer called twice (shared by two
branches) gets one ``Cache`` per call, and a prediction always uses fresh caches, so predicting
from one thread never disturbs a training step in another.

Calling a layer on a ``KerasTensor`` (what ``Input`` returns) computes no numbers: it records a
``Node`` — this layer, applied to these tensors — and returns the symbolic output. A ``Model``
made from such tensors runs its nodes in order.

Keras users see the parameters through ``get_weights``/``set_weights`` and the ``.keras`` file in
Keras's layout; each layer owns that mapping (``keras_variables``/``set_keras_variables``).

A layer written the Keras way — ``build`` with ``add_weight``, and ``call`` with ``glassnet.ops``
— has no hand-written backward: its forward pass records each op on a ``ops.Tape`` (every op's
derivative is written out in ``glassnet.ops``), and its backward pass runs the deck's recursion
over those ops.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import numbers
import threading
from types import SimpleNamespace
from typing import ClassVar

from glassnet import ops, regularizers
from glassnet.backend import (
    FLOAT_TYPES,
    check_trial_batch,
    floatx,
    format_shape,
    reserve_parameters,
    snake_case,
    unique_name,
    xp,
)

__all__ = [
    "Cache",
    "EagerArray",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "Node",
    "Variable",
    "collecting_added_losses",
    "layer_attributes",
    "tracked_layers",
]


def refuse_unsupported(kind: str, **options) -> None:
    """A ``NotImplementedError`` naming the first of Keras's ``options`` given a value (not
    None), for what glassnet leaves out (constraints, activity regularizers, …)."""
    for name, value in options.items():
        if value is not None:
            raise NotImplementedError(f"{kind}({name}=...) is not supported by glassnet yet.")


def check_shape(shape, what="shape") -> tuple:
    """A sample shape as a tuple of positive Python ints (NumPy integers accepted), or None."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"Received {what}={shape!r}. Expected a tuple of positive integers, e.g. (784,)."
        ) from None
    ok = all(
        d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0)
        for d in dims
    )
    if not ok:
        raise ValueError(f"Received {what}={shape!r}. Expected a tuple of positive integers.")
    return tuple(None if d is None else int(d) for d in dims)


class Cache(SimpleNamespace):
    """What one call of a layer stored in its forward pass (``a_prev``, ``z``, ``a``, …).

    ``predict`` and ``evaluate`` mark theirs ``inference_only``: nothing will go backward, so a
    layer may keep there only what the loss reads (its ``z``), as a recurrent layer does.
    """


def workspace(c, name: str, shape: tuple, dtype):
    """The array ``c.<name>`` for this batch: the previous batch's, to be overwritten, while its
    shape and type stay the same. For a layer's working arrays, which nothing outside the layer
    keeps after a step (the glass box copies what it shows), never for its outputs: tens of
    megabytes made anew for every batch were handed back to the system by the memory allocator
    and taken again, page by page (W6, an LSTM: 830 page faults and 3 ms of system time in each
    13 ms batch of some epochs; W5, a CNN: 350 faults and 2 ms in each 25 ms batch)."""
    a = getattr(c, name, None)
    if not isinstance(a, xp.ndarray) or a.shape != shape or a.dtype != dtype:
        a = xp.empty(shape, dtype=dtype)
        setattr(c, name, a)  # kept for the next batch
    return a


class KerasTensor:
    """A symbolic tensor: the shape of a value a model will compute, and the node computing it.

    Args:
        shape: Batch shape, the batch axis first (``None`` when free).
        node: The ``Node`` that outputs it.
        index: Which of the node's outputs it is (a recurrent layer with ``return_state`` has
            several: its output, then its final states).
    """

    def __init__(self, shape, node: Node | None = None, dtype=None, index: int = 0):
        self.shape = tuple(shape)
        self.node = node
        self.dtype = dtype or floatx()
        self.index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.node.layer.name if self.node else "keras_tensor"

    def __repr__(self) -> str:
        return f"<KerasTensor shape={format_shape(self.shape)}, name={self.name}>"

    @property
    def _keras_mask(self) -> KerasTensor | None:
        """Keras's: the symbolic mask (batch, steps) that comes with this tensor, or None — made
        by Embedding(mask_zero=True), Masking or a layer's own ``compute_mask``, and passed on
        by a layer whose output keeps the steps (``Layer.output_mask``, symbolically)."""
        node = self.node
        if node is None or not node.inputs or self.index or len(self.shape) < 2:
            return None
        layer = node.layer
        if type(layer).compute_mask is not Layer.compute_mask:
            makes = getattr(layer, "mask_zero", True)  # an Embedding without it makes none
        else:
            before = node.inputs[0]._keras_mask
            makes = (
                before is not None
                and len(self.shape) > 2
                and all(
                    a is None or b is None or a == b for a, b in zip(self.shape[:2], before.shape)
                )
            )
        return KerasTensor(self.shape[:2], dtype="bool") if makes else None


class Node:
    """One call of ``layer`` on ``inputs`` (symbolic tensors), giving ``outputs``.

    ``many`` is True when the layer was called on a list (merge layers), or on its input and an
    initial state (``states``: how many of the inputs, at the end, are the initial state): its
    forward pass then takes a list of arrays and its backward pass returns one gradient per
    input. ``output_shape`` is a list of shapes for a layer with several outputs (a recurrent
    layer with ``return_state``): its forward pass returns a list, its backward pass takes one
    ∂C/∂(output) per output (None for an output nothing reads).
    """

    def __init__(
        self, layer: Layer, inputs: list[KerasTensor], many: bool, output_shape, states: int = 0
    ):
        self.layer = layer
        self.inputs = inputs
        self.many = many
        self.states = states
        self.several = isinstance(output_shape, list)
        shapes = output_shape if self.several else [output_shape]
        self.outputs = [KerasTensor(s, node=self, index=i) for i, s in enumerate(shapes)]
        self.output = self.outputs[0]
        layer.inbound_nodes.append(self)

    def __repr__(self) -> str:
        return f"<Node {self.layer.name}({', '.join(t.name for t in self.inputs)})>"


_SHAPES_ONLY = threading.local()  # on while call() runs on made-up numbers to find a shape


class EagerArray(xp.ndarray):
    """What a layer called on arrays returns: a NumPy array that also answers as Keras's eager
    tensors do — ``.numpy()``, and ``._keras_mask`` (which steps are real, after Embedding
    with ``mask_zero`` or Masking; the next layer called on it reads it). ``np.asarray`` gives
    the plain array; glassnet's layers take either."""

    _keras_mask = None

    @classmethod
    def of(cls, array, mask=None) -> EagerArray:
        out = xp.asarray(array).view(cls)
        if mask is not None:
            out._keras_mask = xp.asarray(ops.convert_to_numpy(mask), dtype=bool)
        return out

    def numpy(self):
        return xp.asarray(self)

    def __repr__(self) -> str:  # printed as the NumPy array it is
        return repr(self.view(xp.ndarray))


_ADDED = threading.local()  # the lists collecting add_loss's values, innermost last; the scale


@contextlib.contextmanager
def added_loss_scale(scale: float):
    """Inside, ∂C/∂(an added loss) is ``scale`` instead of 1: a process's share of the batch
    under data-parallel training (``Model.backpropagate``), in every layer the backward pass
    reaches, nested models' included."""
    previous = getattr(_ADDED, "scale", 1.0)
    _ADDED.scale = scale
    try:
        yield
    finally:
        _ADDED.scale = previous


@contextlib.contextmanager
def collecting_added_losses():
    """Collects every value ``add_loss`` is given inside (a model's forward pass: the loss
    adds them to C); what an inner collection saw, the outer one sees too."""
    stack = _ADDED.__dict__.setdefault("stack", [])
    found: list = []
    stack.append(found)
    try:
        yield found
    finally:
        stack.pop()
        if stack:
            stack[-1].extend(found)


class Variable:
    """One parameter of a layer as Keras shows it: Keras's name and orientation, the layer's own
    memory. A Dense ``kernel`` is a transposed view of the deck's W, so ``assign`` changes W itself
    and the optimizer, which updates W in place, sees the change at once.

    It works where NumPy arrays do (``np.asarray(v)``, ``v + 1``, ``v[0]``) and has Keras's
    ``numpy()``, ``assign``, ``assign_add``, ``assign_sub``, ``name``, ``path``, ``shape``,
    ``dtype`` and ``trainable``.
    """

    def __init__(self, layer: Layer, key: str):
        self._layer, self._key = layer, key

    @property
    def value(self):
        """A view of the parameter in Keras's layout (no copy)."""
        return self._layer.to_keras(self._key, self._layer.params[self._key])

    def numpy(self):
        return self.value.copy()

    def assign(self, value):
        if getattr(_SHAPES_ONLY, "on", False):  # call() run only to find a shape: no change
            return self
        value = _as_float_array(value, f"value assigned to {self.path}")
        if value.shape != self.shape:
            raise ValueError(
                f"Cannot assign a value of shape {value.shape} to {self.path}, of shape "
                f"{self.shape}."
            )
        self.value[...] = value  # writes through the view into the layer's parameter
        return self

    def assign_add(self, delta):
        return self.assign(self.value + _as_float_array(delta, f"delta for {self.path}"))

    def assign_sub(self, delta):
        return self.assign(self.value - _as_float_array(delta, f"delta for {self.path}"))

    @property
    def name(self) -> str:
        return self._layer._keras_names.get(self._key, self._key)

    @property
    def path(self) -> str:
        return f"{self._layer.name}/{self.name}"

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def dtype(self) -> str:
        return str(self.value.dtype)

    @property
    def trainable(self) -> bool:
        return self._layer.trainable and self._key not in self._layer.non_trainable

    def __array__(self, dtype=None, copy=None):
        if ops.leaf_of(self) is not None:  # read inside a recording: the derivative would be lost
            raise TypeError(
                f"{self.path} went into a NumPy function inside call(), which would lose its "
                "derivative: use glassnet.ops on it (ops.matmul(x, w), w * x, …)."
            )
        value = self.value
        if copy:
            value = value.copy()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __len__(self) -> int:
        return len(self.value)

    def __getitem__(self, index):
        return self.value[index]

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, "
            f"value={self.value.tolist() if self.value.size <= 8 else '…'}>"
        )


def _arithmetic(name: str):
    def method(self, *args):
        leaf = ops.leaf_of(self)  # inside a recording, the recorded tensor standing for it
        return getattr(self.value if leaf is None else leaf, name)(*args)

    method.__name__ = name
    return method


for _op in ("add", "sub", "mul", "truediv", "matmul", "pow", "radd", "rsub", "rmul",
            "rtruediv", "rmatmul", "neg", "pos", "abs", "lt", "le", "gt", "ge"):  # fmt: skip
    setattr(Variable, f"__{_op}__", _arithmetic(f"__{_op}__"))


def _spread(x, parameters) -> bool:
    """Whether a ``call`` with these ``parameters`` takes the inputs ``x`` one by one
    (``call(self, targets, logits)``), as Keras passes ``layer(targets, logits)``; else the list."""
    if not isinstance(x, (list, tuple)) or len(x) < 2:
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters.values()
                if p.kind in kinds and p.default is inspect.Parameter.empty]  # fmt: skip
    return len(required) == len(x)


def _symbolic(inputs) -> bool:
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return any(isinstance(t, KerasTensor) for t in items)


class Layer:
    """Base class of all layers.

    A subclass creates its parameters in ``build`` (with ``add_weight``), and writes ``forward``
    with ``backward`` directly under it. Both take ``cache``, the object to store in and read
    from: ``c = self.cache_for(cache)`` gives the layer itself when none is given.

    Args:
        name: Unique name; Keras-style automatic names (``dense``, ``dense_1``, …) by default.
        trainable: Whether ``fit`` updates this layer's parameters.
        dtype: Float type of the parameters; ``glassnet.config.floatx()`` by default.
        input_shape: Shape of one sample (no batch axis), to build the layer before data is seen.
    """

    # Names of parameters that Keras stores transposed (a Dense kernel is Wᵀ), and Keras's name
    # for each parameter where it differs (W is Keras's "kernel").
    _keras_transposed: tuple[str, ...] = ()
    _keras_names: ClassVar[dict[str, str]] = {}

    def __new__(cls, *args, **kwargs):
        """Keep the arguments a subclass was made with: a layer of your own that defines no
        ``get_config`` is saved with them, as Keras 3 does."""
        layer = super().__new__(cls)
        signature = inspect.signature(cls.__init__)
        try:
            bound = list(signature.bind(None, *args, **kwargs).arguments.items())[1:]
        except TypeError:  # __init__ will say what is wrong
            bound = []
        variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        layer._init_arguments = {k: v for k, v in bound
                                 if signature.parameters[k].kind not in variadic}  # fmt: skip
        return layer

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None, **kwargs):
        if "input_dim" in kwargs:  # Keras 2's spelling of input_shape=(n,)
            input_shape = (kwargs.pop("input_dim"),)
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Received name={name!r}. Expected a string.")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = self._float_type(dtype)
        self.params: dict[str, xp.ndarray] = {}
        self.grads: dict[str, xp.ndarray] = {}
        self._variables: dict[str, Variable] = {}  # what add_weight returned, by parameter
        self.non_trainable: set[str] = set()  # parameters fit never updates (moving statistics)
        self.regularizers: dict[str, regularizers.Regularizer] = {}  # by parameter: W, b, …
        self._added_losses: list = []  # what add_loss was given in the last call
        self.inbound_nodes: list[Node] = []  # each symbolic call of this layer
        self.built = False
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.requested_input_shape = (
            None if input_shape is None else check_shape(input_shape, "input_shape")
        )
        # A model turns this off where nobody needs ∂C/∂x of the data (its first layers).
        self.needs_input_gradient = True

    def _float_type(self, dtype) -> str | None:
        """``dtype`` (a name or Keras's policy dict) as "float32", "float64" or None."""
        name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        if name not in (None, *FLOAT_TYPES):
            raise ValueError(
                f"Received dtype={dtype!r} for layer {self.name!r}. glassnet computes in "
                "'float32' (the default) or 'float64'; float16 and mixed precision have no fast "
                "path here (NumPy's BLAS and the fused kernels work in 32 or 64 bits)."
            )
        return name

    # ---- building -------------------------------------------------------------------------

    @property
    def compute_dtype(self) -> str:
        return self.dtype or floatx()

    def build(self, input_shape: tuple) -> None:
        """Create the parameters for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.input_shape = input_shape if isinstance(input_shape, list) else tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        self.adopt_parameters()  # a call() that uses layers: built by the line above

    def __init_subclass__(cls, **kwargs):
        """A subclass's own ``build`` need not call ``super().build``, as in Keras: the layer is
        marked built (its shapes set) after it either way."""
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            own = cls.__dict__["build"]

            @functools.wraps(own)
            def build(self, input_shape, _own=own):
                _own(self, input_shape)
                if not self.built:
                    Layer.build(self, input_shape)
                self.adopt_parameters()  # the layers its call() used are built by now

            cls.build = build

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output's shape: the input's, or, for a layer written with ``call``, what ``call``
        gives on a batch of numbers (an axis whose length follows a free input axis is free)."""
        if not self.records():
            return tuple(input_shape)
        many = isinstance(input_shape, list)
        shapes = input_shape if many else [input_shape]
        outs = []
        for free in (2, 3):  # a None becomes 2, then 3: what changes with it is free too
            trial = [[free if d is None else d for d in s] for s in shapes]
            for shape in trial:
                check_trial_batch(shape)
            xs = [xp.full(shape, 1.0, self.compute_dtype) for shape in trial]
            _SHAPES_ONLY.on = True
            try:
                every_step = xp.ones(xs[0].shape[:2], dtype=bool) if xs[0].ndim > 1 else None
                with xp.errstate(all="ignore"):  # a call that reads a mask: every step real
                    out = self._run_call(xs if many else xs[0], training=False, mask=every_step)
                several = isinstance(out, (list, tuple))
                outs.append([xp.shape(o) for o in out] if several else [xp.shape(out)])
            finally:
                _SHAPES_ONLY.on = False
        shapes = [tuple(a if a == b else None for a, b in zip(*pair)) for pair in zip(*outs)]
        return shapes if several else shapes[0]  # a call that gives a tuple: a list of shapes

    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   name=None, **options):  # fmt: skip
        """Create a parameter of ``shape`` — the deck's layout — and its gradient buffer, as
        Keras's ``add_weight`` (``initializer`` by default glorot_uniform for floats, as Keras;
        ``name`` by default "variable", "variable_1", …). Returns it as a Keras ``Variable``.
        The initializer draws in Keras's layout (``to_keras``: a Dense kernel is Wᵀ), so fan-in
        and fan-out, and the numbers drawn, are Keras's."""
        from glassnet import initializers  # initializers sit above layers in the module order

        if options.pop("constraint", None) is not None:
            raise NotImplementedError(
                "add_weight(constraint=...) is not supported by glassnet yet."
            )
        regularizer = options.pop("regularizer", None)
        options.pop("autocast", None)
        options.pop("aggregation", None)
        if options:
            raise TypeError(f"add_weight() got unexpected keyword arguments: {sorted(options)}")
        if dtype is not None and dtype not in FLOAT_TYPES:
            raise ValueError(f"add_weight(dtype={dtype!r}): glassnet's parameters are floats.")
        if name is None:  # Keras's automatic names: variable, variable_1, …
            name, count = "variable", 0
            while name in self.params:
                count += 1
                name = f"variable_{count}"
        if name in self.params:
            raise ValueError(f"Layer {self.name!r} already has a weight named {name!r}.")
        shape = tuple(int(d) for d in (() if shape is None else shape))
        reserve_parameters(shape)
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        keras_shape = self.to_keras(name, xp.empty(shape, dtype=self.compute_dtype)).shape
        value = xp.empty(shape, dtype=self.compute_dtype)
        self.to_keras(name, value)[...] = init(keras_shape, dtype=self.compute_dtype)
        self.params[name] = value
        self.grads[name] = xp.zeros_like(value)
        if not trainable:
            self.non_trainable.add(name)
        self._variables[name] = Variable(self, name)
        if regularizer is not None:  # else the layer's own kernel_regularizer=… stays
            self.regularize(**{name: regularizer})
        return self._variables[name]

    # ---- the two passes -------------------------------------------------------------------

    def cache_for(self, cache):
        """Where this call stores its values: ``cache``, or the layer itself by default."""
        return self if cache is None else cache

    def forward(self, a_prev, training: bool = False, cache=None):
        """Output of the layer for the batch ``a_prev``; stores what ``backward`` needs.

        For a layer written with ``call``: runs it with every op recorded on a tape (the inputs
        and the parameters made by ``add_weight`` are the tape's leaves) and keeps the tape."""
        if not self.records():
            raise NotImplementedError(
                f"{type(self).__name__} must define forward(a_prev, training, cache) and, right "
                "under it, backward(dC_da, cache) — or Keras's call() with glassnet.ops: see "
                "glassnet.layers.Layer."
            )
        c = self.cache_for(cache)
        c.tape = ops.Tape()
        c.tape.training = training  # the layers called inside see the same
        self._added_losses = c.tape.added_losses  # add_loss inside this call writes there
        with c.tape:
            many = isinstance(a_prev, list)
            c.tape_many, xs = many, (a_prev if many else [a_prev])
            names = ["x"] if len(xs) == 1 else [f"x{i}" for i in range(len(xs))]
            c.tape_inputs = [c.tape.watch(x, n) for x, n in zip(xs, names)]
            for key, variable in self._variables.items():
                c.tape.watch(self.params[key], key, source=variable)
            c.tape_output = self._run_call(
                c.tape_inputs if many else c.tape_inputs[0],
                training,
                getattr(c, "input_mask", None),
            )
        # C reads this call also through a loss added in it (here, or by a layer it called)
        c.adds_loss = bool(c.tape.added_losses) or any(s.adds_loss for s in c.tape.steps)
        c.several = isinstance(c.tape_output, (list, tuple))  # call gave a tuple (or list)
        outs = list(c.tape_output) if c.several else [c.tape_output]
        values = [xp.asarray(ops.convert_to_numpy(o), dtype=self.compute_dtype) for o in outs]
        return values if c.several else values[0]

    def backward(self, dC_da, cache=None):
        """∂C/∂(input) from ∂C/∂(output), reading only what ``forward`` stored; fills ``grads``.

        For a layer written with ``call``: the deck's recursion over the recorded ops, last to
        first (``ops.Tape.gradients``)."""
        if not self.records():
            raise NotImplementedError(
                f"{type(self).__name__} defines no backward(dC_da, cache); glassnet computes "
                "gradients layer by layer, so every layer that is trained through needs one."
            )
        c = self.cache_for(cache)
        params = [c.tape.leaves[id(v)] for v in self._variables.values()]
        c.tape.layer_gradients = {}  # each layer called inside: the sum over its calls
        outs = list(c.tape_output) if c.several else [c.tape_output]
        given = dC_da if c.several and dC_da is not None else [dC_da]
        # None: C reads that output only through the losses this call added (or not at all)
        given = [xp.zeros_like(ops.convert_to_numpy(o)) if g is None else g
                 for o, g in zip(outs, given, strict=True)]  # fmt: skip
        # An added loss L is part of C: ∂C/∂L = 1 (its values summed), its slope joins z's;
        # under data-parallel training, this process's share of the batch (``added_loss_scale``).
        added = [v for v in c.tape.added_losses if isinstance(v, ops.Tensor) and v.tape is c.tape]
        scale = getattr(_ADDED, "scale", 1.0)
        grads = c.tape.gradients(
            [*outs, *added],
            [*c.tape_inputs, *params],
            [*given, *(xp.full_like(v.value, scale) for v in added)],
        )
        for key, g in zip(self._variables, grads[len(c.tape_inputs) :]):
            self.grads[key][...] = g
        for layer, sums in c.tape.layer_gradients.values():
            for key, total in sums.items():
                layer.grads[key][...] = total
        for _, layer in self.sublayers():  # one that C did not reach: zeros
            if id(layer) not in c.tape.layer_gradients:
                for g in layer.grads.values():
                    g[...] = 0
        dC_dx = grads[: len(c.tape_inputs)]
        return dC_dx if c.tape_many else dC_dx[0]

    def _call_recorded(self, inputs, training, mask=None):
        """This layer called inside another's recorded ``call``: one step on that tape, whose
        backward is this layer's own backward pass (its gradients added up over its calls)."""
        many = isinstance(inputs, (list, tuple))
        values = [ops.convert_to_numpy(t) for t in (inputs if many else [inputs])]
        values = [xp.asarray(v, dtype=self.compute_dtype) for v in values]
        if not self.built:
            self.build(
                [(None, *v.shape[1:]) for v in values] if many else (None, *values[0].shape[1:])
            )
        tape = ops.recording()
        cache = Cache()
        cache.input_mask = mask
        out = self.forward(values if many else values[0], training=training, cache=cache)
        outs = out if isinstance(out, list) else [out]
        # Several outputs are one step: side by side, a row per sample; each comes back out of
        # it by a recorded slice, so what C sends back to each lands in its own columns.
        rows = outs[0].shape[0] if outs[0].ndim else None
        if len(outs) > 1 and any(o.ndim == 0 or o.shape[0] != rows for o in outs):
            raise NotImplementedError(
                f"{type(self).__name__}.call returned outputs of shapes "
                f"{[o.shape for o in outs]}: called inside another layer's call(), several "
                "outputs need the same batch size first."
            )
        widths = [o[0].size if len(outs) > 1 else 0 for o in outs]
        edges = [sum(widths[:i]) for i in range(len(outs) + 1)]
        packed = outs[0] if len(outs) == 1 else xp.concatenate(
            [o.reshape(rows, -1) for o in outs], axis=1)  # fmt: skip

        def backward(dC_da):
            dC_da = xp.ascontiguousarray(dC_da, dtype=packed.dtype)
            if len(outs) > 1:
                dC_da = [dC_da[:, a:b].reshape(o.shape) for o, a, b in zip(outs, edges, edges[1:])]
            dC_dx = self.backward(dC_da, cache)
            sums = tape.layer_gradients.setdefault(id(self), (self, {}))[1]
            for key, g in self.grads.items():
                sums[key] = sums[key] + g if key in sums else g.copy()
            return tuple(dC_dx) if many else (dC_dx,)

        z = ops.record(type(self).__name__, packed, tuple(inputs) if many else (inputs,), backward)
        tape.steps[-1].adds_loss = bool(getattr(cache, "adds_loss", False))
        if len(outs) == 1:
            return z
        return tuple(ops.reshape(z[:, a:b], o.shape) for o, a, b in zip(outs, edges, edges[1:]))

    def sublayers(self) -> list[tuple[str, Layer]]:
        """The layers a layer written with ``call`` keeps as attributes (``self.dense = Dense(4)``),
        by attribute name, as Keras tracks them; their parameters are this layer's too."""
        return tracked_layers(self) if self.records() else []

    def records(self) -> bool:
        """Whether this layer is written the Keras way, with ``call`` (recorded), not with
        ``forward`` and ``backward``."""
        return type(self).call is not Layer.call and type(self).forward is Layer.forward

    def _run_call(self, x, training, mask=None):
        takes = inspect.signature(self.call).parameters
        extra = {"training": training} if "training" in takes else {}
        if "mask" in takes:  # a call that reads the mask (batch, steps) gets it, as in Keras
            extra["mask"] = mask
        out = self.call(*x, **extra) if _spread(x, takes) else self.call(x, **extra)
        if isinstance(out, dict):
            raise NotImplementedError(
                f"{type(self).__name__}.call returned a dict: a layer written with call() gives "
                "one output, or a tuple or list of them, in glassnet for now."
            )
        return out

    def compute_mask(self, inputs, mask=None):
        """Keras's: the mask (batch, steps: which steps are real) of the output, given the
        input's ``mask``. Embedding (``mask_zero``) and Masking make one; a layer of your own
        may override this, with Keras's signature. The base passes ``mask`` on, as far as the
        output keeps the steps (see ``output_mask``)."""
        return mask

    def output_mask(self, a_prev, a, mask):
        """The mask that goes on with this layer's output ``a``: ``compute_mask``'s where a
        layer defines its own; else the input's, while the output keeps (batch, steps, …) —
        a recurrent layer that returns only its last output ends it."""
        if type(self).compute_mask is not Layer.compute_mask:
            return self.compute_mask(a_prev, mask)
        if mask is None or a.ndim < 3 or a.shape[:2] != mask.shape:
            return None
        return mask

    def call(self, *args, **kwargs):
        raise NotImplementedError  # only to recognise Keras-style subclasses, see __call__

    def __call__(self, inputs, *more, training: bool | None = None, mask=None):
        if more:  # Keras's layer(a, b): a call(a, b) of several tensors
            if not self.records() or any(isinstance(m, bool) or m is None for m in more):
                raise TypeError(
                    f"Layer {self.name!r} takes one input (a list for several); pass training= "
                    "and mask= by name."
                )
            inputs = [inputs, *more]
        if _symbolic(inputs):
            return self._call_symbolic(inputs)
        tape = ops.recording()
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if mask is None:  # an array a masking layer returned carries its mask, as in Keras
            mask = getattr(inputs, "_keras_mask", None)
        if mask is not None:  # Keras's mask argument: which steps are real (batch, steps)
            mask = xp.asarray(ops.convert_to_numpy(mask), dtype=bool)
        if tape is not None and any(isinstance(t, ops.Tensor) for t in items):
            inside = getattr(tape, "training", False)  # the call it is made in says
            return self._call_recorded(inputs, inside if training is None else training, mask)
        self.input_mask = mask  # read by forward: a recurrent layer skips the masked steps
        training = bool(training)
        many = isinstance(inputs, (list, tuple)) and (self._takes_list or self.records())
        if many:
            xs = [xp.asarray(x, dtype=self.compute_dtype) for x in inputs]
            shape = [(None, *x.shape[1:]) for x in xs]
        else:
            xs = xp.asarray(inputs, dtype=self.compute_dtype)
            shape = (None, *xs.shape[1:])
        if not self.built:
            self.build(shape)
        out = self.forward(xs, training=training)
        outs = list(out) if isinstance(out, list) else [out]  # several: a list (or a tuple)
        masks = self.output_mask(xs, outs[0], mask)
        masks = list(masks) if isinstance(masks, (list, tuple)) else [masks] + [None] * len(outs)
        outs = [EagerArray.of(o, m) for o, m in zip(outs, masks)]
        if self.records() and isinstance(getattr(self, "tape_output", None), tuple):
            return tuple(outs)  # call gave a tuple: so does the layer
        return outs if isinstance(out, list) else outs[0]

    _takes_list = False  # merge layers take a list of inputs

    def _call_symbolic(self, inputs, states=()) -> KerasTensor | list[KerasTensor]:
        """A node for this call; ``states``: a recurrent layer's initial state, read after the
        input (see ``Node``)."""
        many = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if many else [inputs]
        if not all(isinstance(t, KerasTensor) for t in (*tensors, *states)):
            raise TypeError(
                f"Layer {self.name!r} was called on a mix of symbolic tensors and arrays; "
                "in the functional API every input must come from Input(...) or a layer."
            )
        if many and not (self._takes_list or self.records()):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) takes one input; received a list "
                f"of {len(tensors)}. Merge them first, e.g. with Concatenate()([a, b])."
            )
        shape = [t.shape for t in tensors] if many else tensors[0].shape
        if not self.built:
            self.build(shape)
        else:
            self._check_built_for(shape)
        node = Node(self, tensors + list(states), many or bool(states),
                    self.compute_output_shape(shape), states=len(states))  # fmt: skip
        return node.outputs if node.several else node.output

    def _only_node(self, what: str) -> Node:
        if len(self.inbound_nodes) == 1:
            return self.inbound_nodes[0]
        fix = (
            "take it from the model's nodes (model.nodes) instead."
            if self.inbound_nodes
            else "call it on a symbolic tensor first."
        )
        count = len(self.inbound_nodes) or "no"
        raise ValueError(
            f"The layer {self.name!r} has {count} inbound nodes, so its {what} is ill-defined: "
            f"{fix}"
        )

    @property
    def output(self) -> KerasTensor | list[KerasTensor]:
        """The symbolic output of this layer's one call, as Keras's ``layer.output`` (a list
        where the layer has several)."""
        node = self._only_node("output")
        return node.outputs if node.several else node.output

    @property
    def input(self):
        """The symbolic input(s) of this layer's one call, as Keras's ``layer.input``."""
        node = self._only_node("input")
        return node.inputs if node.many else node.inputs[0]

    def _check_built_for(self, shape) -> None:
        built = self.input_shape
        if isinstance(shape, list):
            return
        if built is not None and tuple(built[1:]) != tuple(shape[1:]):
            raise ValueError(
                f"Layer {self.name!r} was built for inputs {format_shape(built)} and cannot be "
                f"called on inputs {format_shape(shape)}."
            )

    # ---- weights, in Keras's layout -------------------------------------------------------

    def to_keras(self, name: str, array):
        """``array`` — parameter ``name`` or anything of its shape (its gradient, an optimizer's
        m or v) — as a view in Keras's layout. A Dense kernel is Wᵀ; writing into the view
        writes into ``array``. Layers whose Keras layout is not W or Wᵀ override this and
        ``from_keras``."""
        if "/" in name and name not in self._variables:  # a sublayer's, adopted
            layer, inner = self._sublayer_of(name)
            return layer.to_keras(inner, array)
        return array.T if name in self._keras_transposed else array

    def from_keras(self, name: str, array):
        """The inverse of ``to_keras``: an array in Keras's layout as the deck lays it out."""
        if "/" in name and name not in self._variables:
            layer, inner = self._sublayer_of(name)
            return layer.from_keras(inner, array)
        return array.T if name in self._keras_transposed else array

    def _sublayer_of(self, name: str) -> tuple[Layer, str]:
        key, inner = name.split("/", 1)
        return dict(self.sublayers())[key], inner

    keras_cell: str | None = None
    """Where Keras keeps this layer's variables, if not in the layer: a recurrent layer's are
    its cell's (``layers/lstm/cell/vars`` in the file), and this is the cell's name."""

    def keras_variables(self) -> list:
        """The parameters as Keras stores them, in Keras's order (a Dense kernel is Wᵀ).

        The arrays are views: the file writer copies them; ``get_weights`` copies them too.
        """
        return [self.to_keras(name, p) for name, p in self.params.items()]

    def set_keras_variables(self, values, source: str = "", names=None) -> None:
        """Fill the parameters (those ``names`` gives, else all) from arrays in Keras's layout,
        each checked before any is set."""
        values = list(values)
        names = list(self.params) if names is None else names
        if len(values) != len(names):
            raise ValueError(
                f"{source}Layer {self.name!r} expects {len(names)} weights "
                f"({', '.join(self._keras_shapes(names)) or 'none'}), but received "
                f"{len(values)}."
            )
        checked = []
        for name, w in zip(names, values):
            p = self.params[name]
            w = _as_float_array(w, f"{source}weight {name} of layer {self.name!r}")
            keras_shape = self.to_keras(name, p).shape
            if w.shape != keras_shape:
                raise ValueError(
                    f"{source}Layer {self.name!r} weight {name} has shape {keras_shape}; "
                    f"received an array of shape {w.shape}."
                )
            checked.append((name, p, w))
        for name, p, w in checked:
            # Copy into the existing buffer: the optimizer's state keeps pointing at it.
            self.to_keras(name, p)[...] = w

    def asset_files(self) -> dict[str, bytes]:
        """Files Keras keeps for this layer beside its weights, under ``assets/<its path>/`` in
        a ``.keras`` file, by name: none, but for a vocabulary (``StringLookup``, …)."""
        return {}

    def read_asset_files(self, files: dict[str, bytes], source: str = "") -> None:
        """Take back what ``asset_files`` gave (``files``: what the file holds for this layer)."""

    def get_weights(self) -> list:
        """Copies of the parameters as Keras lays them out (a Dense kernel is (n_in, n_out))."""
        return [w.copy() for w in self.keras_variables()]

    def set_weights(self, weights) -> None:
        """Set the parameters from arrays in Keras's orientation (as ``get_weights`` returns)."""
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"set_weights expects a list of arrays; received {weights!r}.")
        self.set_keras_variables(weights)

    def _keras_shapes(self, names) -> list[str]:
        return [str(self.to_keras(name, self.params[name]).shape) for name in names]

    @property
    def weights(self) -> list[Variable]:
        """The parameters as Keras variables: views, in Keras's orientation — the very objects
        ``add_weight`` returned (``layer.weights == [layer.w, layer.b]``, as Keras's guide
        checks), a layer's inside a ``call`` its own."""
        found = []
        for key in self.params:
            owner, name = (self._sublayer_of(key) if "/" in key and key not in self._variables
                           and self.records() else (self, key))  # fmt: skip
            found.append(owner._variables.get(name) or Variable(owner, name))
        return found

    @property
    def trainable_weights(self) -> list[Variable]:
        return [v for v in self.weights if v.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [v for v in self.weights if not v.trainable]

    def largest_product(self, batch_size: int) -> float:
        """Floating-point operations of this layer's largest matrix product for a batch (the
        model picks BLAS's threads by it): z = a_prev·Wᵀ for a layer with a W."""
        W = self.params.get("W")
        return 0.0 if W is None else 2.0 * batch_size * W.size

    def owners_of_arrays(self) -> list[Layer]:
        """The layers whose ``params`` and ``grads`` are their own arrays: this one; a wrapper's
        inner layers (a wrapper only lends them out, see ``adopt_parameters``); the layers a
        layer written with ``call`` uses."""
        return [self, *(o for _, layer in self.sublayers() for o in layer.owners_of_arrays())]

    def adopt_parameters(self) -> None:
        """Look again at the inner layers' arrays after they moved (a wrapper's, or the layers a
        ``call`` uses: theirs are this layer's too, as ``sublayer/W``); else nothing."""
        subs = self.sublayers()
        if not subs:
            return
        own = {k: self.params[k] for k in self._variables}
        self.params = dict(own)
        self.grads = {k: self.grads[k] for k in own}
        self.non_trainable = {k for k in self.non_trainable if k in own}
        self._keras_names = {}
        for key, layer in subs:
            layer.adopt_parameters()
            for name, p in layer.params.items():
                self.params[f"{key}/{name}"] = p
                self.grads[f"{key}/{name}"] = layer.grads[name]
                self._keras_names[f"{key}/{name}"] = (
                    f"{layer.name}/{layer._keras_names.get(name, name)}"
                )
                if name in layer.non_trainable or not layer.trainable:
                    self.non_trainable.add(f"{key}/{name}")

    # ---- losses a layer adds to C -----------------------------------------------------------

    def add_loss(self, loss) -> None:
        """Add ``loss`` to the cost C, as Keras's ``add_loss``: called inside ``call``, with ops
        on what the call computed (a penalty on activations, a KL divergence). Training adds
        the sum of its values to C, and its slope to the backward pass (∂C/∂loss = 1)."""
        tape = ops.recording()
        (self._added_losses if tape is None else tape.added_losses).append(loss)
        stack = getattr(_ADDED, "stack", None)
        if stack:
            stack[-1].append(loss)

    @property
    def losses(self) -> list:
        """Keras's ``layer.losses``: what ``add_loss`` was given in this layer's last call (and
        in the layers its ``call`` used), then Ω(W) of each regularized parameter — numbers."""
        found = [ops.convert_to_numpy(v) for v in self._added_losses]
        for _, layer in self.sublayers():
            found += layer.losses
        for key, regularizer in self.regularizers.items():
            if key in self.params:
                w = self.to_keras(key, self.params[key])
                found.append(ops.convert_to_numpy(ops.sum(regularizer(w))))
        return found

    # ---- regularization ---------------------------------------------------------------------

    def regularize(self, **by_parameter) -> None:
        """Keras's ``kernel_regularizer=…`` and the like, by the parameter each one penalizes
        (``self.regularize(W=kernel_regularizer, b=bias_regularizer)``); None leaves one out."""
        for key, identifier in by_parameter.items():
            regularizer = regularizers.get(identifier)
            if regularizer is None:
                self.regularizers.pop(key, None)
            else:
                self.regularizers[key] = regularizer

    def regularization(self, gradients: bool = False, scale: float = 1.0) -> float:
        """Σ Ω(W) over this layer's regularized parameters and those of the layers its ``call``
        uses, each W read in Keras's layout. With ``gradients``, also adds scale·∂Ω/∂W to each
        trainable one's ∂C/∂W (training adds Ω to C, so its slope joins C's)."""
        total = 0.0
        for owner in self.owners_of_arrays():
            for key, regularizer in owner.regularizers.items():
                if key not in owner.params:
                    continue  # a bias the layer was made without
                w = owner.to_keras(key, owner.params[key])
                total += float(ops.convert_to_numpy(ops.sum(regularizer(w))))
                if gradients and owner.trainable and key not in owner.non_trainable:
                    slope = xp.asarray(regularizer.gradient(w), dtype=w.dtype)
                    owner.to_keras(key, owner.grads[key])[...] += scale * slope
        return total

    def count_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    # ---- configuration --------------------------------------------------------------------

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.compute_dtype}
        if type(self).get_config is Layer.get_config and type(self).__init__ is not Layer.__init__:
            return self.made_with(config)
        return config

    def made_with(self, config: dict) -> dict:
        """``config`` and the arguments this object was made with: the config of a layer (or
        a subclassed model) of your own that defines no ``get_config``, as Keras 3 makes it."""
        extra = {k: v for k, v in self._init_arguments.items() if k not in config}
        if not all(_plain_data(v) for v in extra.values()):
            raise NotImplementedError(
                f"{type(self).__name__} was made with arguments that are not plain data "
                f"({sorted(extra)}); define get_config() to say how to save it."
            )
        return {**config, **extra}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        # Newer Keras versions write keys glassnet has no use for while they hold None
        # (quantization_config, …); any other unknown key still reaches __init__ and fails there.
        known = {
            name
            for klass in cls.__mro__
            if "__init__" in vars(klass)
            for name in inspect.signature(klass.__init__).parameters
        }
        config = {k: v for k, v in config.items() if k in known or v is not None}
        takes = inspect.signature(cls.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in takes.values()):
            # A layer of your own whose __init__ takes only its own arguments (Keras's guides
            # write them so): the base ones are set once it is made.
            base = {k: config.pop(k) for k in ("name", "trainable", "dtype")
                    if k in config and k not in takes}  # fmt: skip
            layer = cls(**config)
            layer.name = base.get("name", layer.name)
            layer.trainable = bool(base.get("trainable", layer.trainable))
            layer.dtype = layer._float_type(base.get("dtype", layer.dtype))
            return layer
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def layer_attributes(owner) -> list[tuple[str, Layer | list[Layer]]]:
    """The public attributes of ``owner`` that hold a layer, or a list or tuple of layers, in
    the order they were set: what Keras tracks of a layer or model written with ``call`` (and
    walks, by attribute name, to place their weights in a file)."""
    found = []
    for name, value in vars(owner).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Layer):
            found.append((name, value))
        elif isinstance(value, (list, tuple)):
            inner = [v for v in value if isinstance(v, Layer)]
            if inner:
                found.append((name, inner))
    return found


def tracked_layers(owner) -> list[tuple[str, Layer]]:
    """The layers of ``layer_attributes``, one by one, by name (a list's as ``name_0``, …)."""
    found = []
    for name, value in layer_attributes(owner):
        if isinstance(value, Layer):
            found.append((name, value))
        else:
            found += [(f"{name}_{i}", v) for i, v in enumerate(value)]
    return found


def _plain_data(value) -> bool:
    """Whether ``value`` is what a JSON config holds: numbers, strings, None, lists, dicts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_data(v) for k, v in value.items())
    return False


def _as_float_array(w, what: str):
    """``w`` as a real float array: strings, objects and complex numbers are refused."""
    if hasattr(w, "numpy") and not isinstance(w, xp.ndarray):
        w = w.numpy()
    arr = xp.asarray(w)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"The {what} must be real numbers; received an array of dtype {arr.dtype}.")
    return arr


class InputLayer(Layer):
    """Declares the shape of one sample; holds no parameters and passes data through."""

    def __init__(
        self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs
    ):
        for keras_flag in ("sparse", "ragged", "optional"):  # Keras writes these into configs
            if kwargs.pop(keras_flag, False):
                raise NotImplementedError(f"Input({keras_flag}=True) is not supported by glassnet.")
        kwargs.pop("input_tensor", None)
        dtype = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        # Integer inputs (word ids for an Embedding) are kept as Keras declares them in the
        # config; the numbers travel as floats, which hold every id below 2²⁴ exactly. Text
        # ("string") travels as NumPy's str, for a TextVectorization or StringLookup to read.
        self.input_dtype = dtype if dtype in ("int32", "int64", "uint8", "string") else None
        super().__init__(
            name=name or unique_name("input_layer"),
            dtype=None if self.input_dtype else dtype,
            **kwargs,
        )
        if batch_shape is not None:
            batch_shape = tuple(batch_shape)
            if not batch_shape:
                raise ValueError("Received batch_shape=(). Expected (batch, *sample_shape).")
            shape, batch_size = batch_shape[1:], batch_shape[0]
        if shape is None:
            raise ValueError(
                "Input needs a shape: received shape=None. Example: Input(shape=(784,))."
            )
        shape = check_shape(shape)
        if batch_size is not None:
            batch_size = check_shape((batch_size,), "batch_size")[0]
        self.batch_shape = (batch_size, *shape)
        self.build(self.batch_shape)
        Node(self, [], many=False, output_shape=self.batch_shape)  # its output is what Input gives

    def forward(self, a_prev, training=False, cache=None):
        return a_prev

    def backward(self, dC_da, cache=None):
        return dC_da

    def get_config(self) -> dict:
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self.input_dtype or self.compute_dtype,
            "sparse": False,
            "ragged": False,
            "name": self.name,
            "optional": False,
        }


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None) -> KerasTensor:
    """A model input, as ``keras.Input``: a symbolic tensor to call layers on.

    ``Input(shape=(784,))`` also starts a ``Sequential`` list, as in Keras.

    >>> Input(shape=(784,)).shape
    (None, 784)
    """
    layer = InputLayer(
        shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape
    )
    return layer.output
