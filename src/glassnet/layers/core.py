"""The core layers: Dense, Activation, Dropout, Flatten.

Shapes use the deck's letters with the batch first: a_prev (batch, n_in), W (n_out, n_in),
b (n_out,), z and a (batch, n_out).
"""

from __future__ import annotations

import numbers
from typing import ClassVar

from glassnet import activations, initializers, kernels, ops, regularizers
from glassnet.backend import (
    format_shape,
    function_from_config,
    make_rng,
    serialize_function,
    xp,
)
from glassnet.kernels import matmul
from glassnet.layers.base import Layer, Variable, refuse_unsupported

__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "Flatten",
    "Lambda",
    "Masking",
    "Reshape",
    "SpatialDropout2D",
]


def _matrix_size(shape) -> str:
    return "×".join(str(s) for s in shape)


def add_bias_and_activate(z, b, activation):
    """z ← z + b in place, then a = σ(z): one fused pass for relu. z is (rows, n), b (n,) or None.

    The fused kernel gives the same bits as the two NumPy steps it replaces.
    """
    fused = (
        activation is activations.relu and kernels.ENABLED and z.dtype in (xp.float32, xp.float64)
    )
    if b is not None and fused and z.flags.c_contiguous:
        a = xp.empty_like(z)
        kernels.run_split("bias_relu", (z, a), b, z.dtype.type(0))
        return a
    if b is not None:
        z += b  # (rows, n) + (n,), broadcast
    return activation(z)  # (rows, n)


class Dense(Layer):
    """A layer of ``units`` neurons: z = a_prev · Wᵀ + b, then a = σ(z).

    Row i of W holds neuron i's weights, as on the slides, so W has shape (n_out, n_in); Keras's
    ``kernel`` is Wᵀ, shape (n_in, n_out), and that is what ``get_weights``/``set_weights`` use.

    After ``forward`` the layer holds ``a_prev``, ``z`` and ``a``; after ``backward`` it holds
    ``dC_da`` (unless the deck's case-1 shortcut skipped it), ``dC_dz`` and, in ``grads``,
    ``W`` = ∂C/∂W and ``b`` = ∂C/∂b. The glass box reads these; nothing else is kept.

    Args:
        units: Number of neurons (n_out), a positive integer.
        activation: Name or function; ``None`` means linear (a = z).
        use_bias: Whether the layer adds b.
        kernel_initializer: How W starts (Keras default ``"glorot_uniform"``).
        bias_initializer: How b starts (``"zeros"``).

    >>> import numpy as np
    >>> layer = Dense(2, activation="sigmoid")
    >>> layer.build((None, 2))
    >>> layer.set_weights([np.array([[1., -1.], [-2., 1.]]), np.array([1., 0.])])
    >>> layer(np.array([[1., -1.]])).round(2)          # layer 1 of the deck's example
    array([[0.98, 0.12]], dtype=float32)
    """

    _keras_transposed = ("W",)
    _keras_names: ClassVar[dict[str, str]] = {"W": "kernel", "b": "bias"}

    @property
    def kernel(self) -> Variable:
        """Keras's kernel: a view of Wᵀ, shape (n_in, n_out)."""
        return Variable(self, "W")

    @property
    def bias(self) -> Variable | None:
        return Variable(self, "b") if "b" in self.params else None

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(
                "Received an invalid value for `units`, expected a positive integer. "
                f"Received: units={units!r}"
            )
        refuse_unsupported(
            "Dense",
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.regularize(W=kernel_regularizer, b=bias_regularizer)

    def build(self, input_shape):
        n_in = input_shape[-1]
        if n_in is None:
            raise ValueError(
                f"Dense layer {self.name!r} needs to know its number of inputs; received inputs "
                f"of shape {format_shape(input_shape)} with no size on the last axis."
            )
        # The deck's W is (n_out, n_in); Keras's kernel, drawn by the initializer, is Wᵀ.
        self.add_weight((self.units, n_in), self.kernel_initializer, name="W")
        if self.use_bias:
            self.add_weight((self.units,), self.bias_initializer, name="b")  # (n_out,)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        W = self.params["W"]
        if a_prev.shape[-1] != W.shape[1]:
            raise ValueError(self._shape_error(a_prev.shape))
        c.leading_shape = a_prev.shape[:-1]  # Dense works on the last axis: (batch, …)
        if a_prev.ndim != 2:
            a_prev = a_prev.reshape(-1, W.shape[1])  # (rows, n_in): every position a row
        c.a_prev = a_prev
        z = matmul(a_prev, W.T)  # (rows, n_in)·(n_in, n_out) = (rows, n_out)
        c.z = z
        c.a = add_bias_and_activate(z, self.params.get("b"), self.activation)
        return c.a if len(c.leading_shape) == 1 else c.a.reshape(*c.leading_shape, self.units)

    def backward(self, dC_da, cache=None):
        # ∂C/∂z = σ′(z) ⊙ ∂C/∂a (the deck's recursion: ∂C/∂a arrives from the layer after this one)
        c = self.cache_for(cache)
        c.dC_da = dC_da = dC_da if dC_da.ndim == 2 else dC_da.reshape(c.a.shape)
        return self.backward_from_z(self.activation.backward(c.z, c.a, dC_da), cache)

    def backward_from_z(self, dC_dz, cache=None):
        """The rest of the backward pass, from ∂C/∂z (the entry point of the deck's case 1)."""
        c = self.cache_for(cache)
        W = self.params["W"]
        c.dC_dz = dC_dz = dC_dz if dC_dz.ndim == 2 else dC_dz.reshape(c.z.shape)  # (rows, n_out)
        # ∂C/∂W = ∂C/∂z · ∂z/∂W, and ∂z/∂W is the stored input a_prev ("∂z/∂w = x").
        matmul(dC_dz.T, c.a_prev, out=self.grads["W"])  # (n_out, rows)·(rows, n_in)
        if self.use_bias:
            dC_dz.sum(axis=0, out=self.grads["b"])  # ∂z/∂b = 1: sum over the rows, (n_out,)
        if not self.needs_input_gradient:
            return None
        dC_da_prev = matmul(dC_dz, W)  # (rows, n_out)·(n_out, n_in) = (rows, n_in)
        if len(c.leading_shape) == 1:
            return dC_da_prev
        return dC_da_prev.reshape(*c.leading_shape, W.shape[1])

    def _shape_error(self, received) -> str:
        n_out, n_in = self.params["W"].shape
        batch = received[0] if len(received) > 1 else 1
        got = (batch, received[-1])
        return (
            f"Input of shape {tuple(received)} does not fit layer {self.name!r} "
            f"(Dense, {n_in} inputs → {n_out} units), which expects shape "
            f"{format_shape((None, n_in))}. z = a_prev·Wᵀ needs ({_matrix_size(got)})·"
            f"({_matrix_size((n_in, n_out))}): the inner sizes {received[-1]} and {n_in} differ."
        )

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.regularizers.get("W")),
            "bias_regularizer": regularizers.serialize(self.regularizers.get("b")),
            "kernel_constraint": None,
            "bias_constraint": None,
        }


class Activation(Layer):
    """Applies an activation on its own: a = σ(z), where z is this layer's input.

    >>> import numpy as np
    >>> Activation("softmax")(np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]], dtype=float32)
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        c.z = a_prev  # z is this layer's input
        c.a = self.activation(a_prev)
        return c.a

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        c.dC_da = dC_da
        return self.backward_from_z(self.activation.backward(c.z, c.a, dC_da), cache)

    def backward_from_z(self, dC_dz, cache=None):
        c = self.cache_for(cache)
        c.dC_dz = dC_dz = dC_dz.reshape(c.z.shape)
        return dC_dz  # z is this layer's input

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """In training, zero each input with probability ``rate`` and scale the rest by 1/(1 − rate).

    At inference it passes its input through unchanged (the scaling already kept the mean).
    The mask comes from the layer's own generator: ``seed``, or the global seed.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if (
            isinstance(rate, bool)
            or not isinstance(rate, numbers.Real)
            or not 0 <= rate < 1  # also False for NaN
        ):
            raise ValueError(
                "Invalid value received for argument `rate`. Expected a float value between "
                f"0 and 1 (1 excluded). Received: rate={rate!r}"
            )
        if noise_shape is not None:
            raise NotImplementedError("Dropout(noise_shape=...) is not supported by glassnet yet.")
        super().__init__(**kwargs)
        self.rate = float(rate)
        self._threshold = xp.uint32(min(round(self.rate * 2**32), 2**32 - 1))
        self.seed = seed
        self._rng = make_rng(seed)
        self.mask = None

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        if not training or self.rate == 0:
            c.mask = None
            return a_prev
        c.mask = self._mask(self._noise_shape(a_prev.shape), a_prev.dtype)
        return a_prev * c.mask

    def backward(self, dC_da, cache=None):
        mask = self.cache_for(cache).mask
        return dC_da if mask is None else dC_da * mask

    def _noise_shape(self, shape) -> tuple:
        return shape  # one draw per input

    def _mask(self, shape, dtype):
        """0 with probability ``rate``, else 1/(1 − rate), in ``shape``."""
        # Uniform 32-bit integers straight from the bit generator (twice as fast as floats):
        # keeping those ≥ rate·2³² keeps each input with probability 1 − rate, to within 2⁻³².
        n = int(xp.prod(shape))
        bits = self._rng.bit_generator.random_raw((n + 1) // 2).view(xp.uint32)[:n]
        keep = (bits >= self._threshold).reshape(shape)
        return keep * dtype.type(1 / (1 - self.rate))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": None}


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: in training each channel of each sample is zeroed with
    probability ``rate`` (at every position at once) and the rest scaled by 1/(1 − rate).

    Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels
    hardly regularizes a conv layer; dropping a whole map does. Inputs are (batch, rows, cols,
    channels).
    """

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(
                f"SpatialDropout2D(data_format={data_format!r}): glassnet works channels_last."
            )
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"SpatialDropout2D expects inputs of shape (batch, rows, cols, channels); "
                f"received {format_shape(input_shape)}."
            )
        super().build(input_shape)

    def _noise_shape(self, shape) -> tuple:
        return (shape[0], 1, 1, shape[3])  # one draw per sample and channel

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        return {**config, "data_format": "channels_last"}


class Flatten(Layer):
    """Reshapes each sample to a vector: (batch, 28, 28) becomes (batch, 784)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)

    def compute_output_shape(self, input_shape):
        size = 1
        for s in input_shape[1:]:
            size = None if s is None or size is None else size * s
        return (input_shape[0], size)

    def forward(self, a_prev, training=False, cache=None):
        self.cache_for(cache).input_batch_shape = a_prev.shape
        return a_prev.reshape(a_prev.shape[0], -1)

    def backward(self, dC_da, cache=None):
        return dC_da.reshape(self.cache_for(cache).input_batch_shape)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (the batch axis is kept); one entry may be -1.

    >>> import numpy as np
    >>> Reshape((28, 28, 1))(np.zeros((2, 784))).shape
    (2, 28, 28, 1)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError):
            raise TypeError(
                f"Received target_shape={target_shape!r}. Expected a tuple of integers, e.g. "
                "(28, 28, 1)."
            ) from None
        if any(d == 0 or d < -1 for d in target) or target.count(-1) > 1:
            raise ValueError(
                f"Received target_shape={target_shape!r}. Expected positive sizes, with at most "
                "one -1 (the size left over)."
            )
        self.target_shape = target

    def compute_output_shape(self, input_shape):
        size = 1
        for d in input_shape[1:]:
            size = None if d is None or size is None else size * d
        target = list(self.target_shape)
        known = 1
        for d in target:
            known *= d if d != -1 else 1
        if -1 in target:
            if size is not None:
                if size % known:
                    raise ValueError(self._error(input_shape))
                target[target.index(-1)] = size // known
            else:
                target[target.index(-1)] = None
        elif size is not None and size != known:
            raise ValueError(self._error(input_shape))
        return (input_shape[0], *target)

    def _error(self, input_shape) -> str:
        return (
            f"Layer {self.name!r} cannot reshape inputs of shape {format_shape(input_shape)} "
            f"to {format_shape((None, *self.target_shape))}: the number of values per sample "
            "differs."
        )

    def forward(self, a_prev, training=False, cache=None):
        self.cache_for(cache).input_batch_shape = a_prev.shape
        shape = self.compute_output_shape((None, *a_prev.shape[1:]))
        return a_prev.reshape(a_prev.shape[0], *shape[1:])

    def backward(self, dC_da, cache=None):
        return dC_da.reshape(self.cache_for(cache).input_batch_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Masking(Layer):
    """Marks the steps whose features all equal ``mask_value`` as padding: the recurrent layers
    after it skip them, so padded steps change nothing. Its output is its input, with the
    masked steps set to 0.

    >>> import numpy as np
    >>> x = np.array([[[1.0], [0.0], [2.0]]])
    >>> Masking().compute_mask(x).tolist()
    [[True, False, True]]
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def _real(self, a_prev):
        return (a_prev != self.mask_value).any(axis=-1)  # (batch, steps)

    def compute_mask(self, inputs, mask=None):
        return self._real(ops.convert_to_numpy(inputs))

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        c.keep = self._real(a_prev)[..., None].astype(a_prev.dtype)
        return a_prev * c.keep

    def backward(self, dC_da, cache=None):
        return dC_da * self.cache_for(cache).keep

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class Lambda(Layer):
    """Any function of the input written with ``glassnet.ops``, as a layer: a = f(x).

    Its backward pass is the recursion over the ops f recorded (each op's derivative is written
    out in ``glassnet.ops``); the glass box shows it op by op. ``arguments`` are passed to f as
    keywords. Saved, a named function is written by name (register it with
    ``glassnet.saving.register_keras_serializable`` to load it again); a lambda is written as
    Keras writes it, but glassnet never runs code from a file, so loading one asks for the
    function instead.

    >>> import numpy as np
    >>> from glassnet import ops
    >>> Lambda(lambda x: ops.square(x) + 1)(np.array([[1.0, 2.0]]))
    array([[2., 5.]], dtype=float32)
    """

    _takes_list = True  # f may take a list of tensors

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        if not callable(function):
            raise TypeError(f"Lambda needs a function; received {function!r}.")
        if mask is not None:
            raise NotImplementedError("Lambda(mask=...) is not supported by glassnet yet.")
        super().__init__(**kwargs)
        self.function, self.arguments = function, dict(arguments or {})
        self._output_shape = None if output_shape is None else tuple(output_shape)

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:  # Keras: the shape of one sample
            batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
            return (batch, *self._output_shape)
        return super().compute_output_shape(input_shape)

    def get_config(self):
        config = {**super().get_config(), "function": serialize_function(self.function),
                  "arguments": self.arguments}  # fmt: skip
        if self._output_shape is not None:
            config["output_shape"] = list(self._output_shape)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Lambda:
        config = dict(config)
        config["function"] = function_from_config(config["function"], custom_objects, "Lambda")
        for key in ("output_shape_type", "mask_type", "mask"):  # Keras's bookkeeping
            config.pop(key, None)
        return super().from_config(config)
