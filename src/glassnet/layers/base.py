"""The ``Layer`` base class and the ``Input`` placeholder.

A layer owns its parameters (``params``: the deck's W and b) and their gradients (``grads``: the
same keys, ∂C/∂W and ∂C/∂b). ``forward(a_prev, training)`` computes its output and keeps what the
backward pass will need (the deck: "the forward pass stores the outputs"); ``backward(dC_da)``,
directly under it in every subclass, turns ∂C/∂(its output) into ∂C/∂(its input) and fills
``grads``. Keras users see the parameters through ``get_weights``/``set_weights`` in Keras's
orientation.
"""

from __future__ import annotations

import re

from glassnet.backend import floatx, unique_name, xp

__all__ = ["Input", "InputLayer", "Layer"]


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def format_shape(shape) -> str:
    """``(None, 784)`` the way Keras prints shapes."""
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + (",)" if len(shape) == 1 else ")")
    )


class Layer:
    """Base class of all layers.

    Args:
        name: Unique name; Keras-style automatic names (``dense``, ``dense_1``, …) by default.
        trainable: Whether ``fit`` updates this layer's parameters.
        dtype: Float type of the parameters; ``glassnet.config.floatx()`` by default.
        input_shape: Shape of one sample (no batch axis), to build the layer before data is seen.
    """

    # Names of parameters that Keras stores transposed (a Dense kernel is Wᵀ).
    _keras_transposed: tuple[str, ...] = ()

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self.trainable = trainable
        self.dtype = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        self.params: dict[str, xp.ndarray] = {}
        self.grads: dict[str, xp.ndarray] = {}
        self.built = False
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.requested_input_shape = None if input_shape is None else tuple(input_shape)
        # The model turns this off for its first layer: nobody needs ∂C/∂x of the data.
        self.needs_input_gradient = True

    # ---- building -------------------------------------------------------------------------

    @property
    def compute_dtype(self) -> str:
        return self.dtype or floatx()

    def build(self, input_shape: tuple) -> None:
        """Create the parameters for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    # ---- the two passes -------------------------------------------------------------------

    def forward(self, a_prev, training: bool = False):
        """Output of the layer for the batch ``a_prev``; caches what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dC_da):
        """∂C/∂(input) from ∂C/∂(output), reading only what ``forward`` cached; fills ``grads``."""
        raise NotImplementedError

    def __call__(self, x, training: bool = False):
        x = xp.asarray(x, dtype=self.compute_dtype)
        if not self.built:
            self.build((None, *x.shape[1:]))
        return self.forward(x, training=training)

    # ---- weights, in Keras's orientation --------------------------------------------------

    def get_weights(self) -> list:
        """Copies of the parameters as Keras lays them out (a Dense kernel is (n_in, n_out))."""
        return [
            (p.T if name in self._keras_transposed else p).copy() for name, p in self.params.items()
        ]

    def set_weights(self, weights) -> None:
        """Set the parameters from arrays in Keras's orientation (as ``get_weights`` returns)."""
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(
                f"Layer {self.name!r} expects {len(self.params)} weights "
                f"({', '.join(self._keras_shapes())}), but received {len(weights)}."
            )
        for (name, p), w in zip(self.params.items(), weights):
            w = xp.asarray(w, dtype=p.dtype)
            keras_shape = p.T.shape if name in self._keras_transposed else p.shape
            if w.shape != keras_shape:
                raise ValueError(
                    f"Layer {self.name!r} weight {name} has shape {keras_shape}; "
                    f"received an array of shape {w.shape}."
                )
            # Copy into the existing buffer: the optimizer's state keeps pointing at it.
            p[...] = w.T if name in self._keras_transposed else w

    def _keras_shapes(self) -> list[str]:
        return [
            str(p.T.shape if name in self._keras_transposed else p.shape)
            for name, p in self.params.items()
        ]

    @property
    def weights(self) -> list:
        return self.get_weights()

    @property
    def trainable_weights(self) -> list:
        return self.get_weights() if self.trainable else []

    @property
    def non_trainable_weights(self) -> list:
        return [] if self.trainable else self.get_weights()

    def count_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    # ---- configuration --------------------------------------------------------------------

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.compute_dtype}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class InputLayer(Layer):
    """Declares the shape of one sample; holds no parameters and passes data through."""

    def __init__(
        self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs
    ):
        kwargs.pop("sparse", None)  # Keras writes sparse=False into configs; dense is all we do
        kwargs.pop("ragged", None)
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        if batch_shape is not None:
            shape, batch_size = tuple(batch_shape[1:]), batch_shape[0]
        if shape is None:
            raise ValueError(
                "Input needs a shape: received shape=None. Example: Input(shape=(784,))."
            )
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(s, int) and s > 0 for s in shape if s is not None):
            raise ValueError(f"Received shape={shape}. Expected a tuple of positive integers.")
        self.batch_shape = (batch_size, *shape)
        self.build(self.batch_shape)

    def forward(self, a_prev, training=False):
        return a_prev

    def backward(self, dC_da):
        return dC_da

    def get_config(self) -> dict:
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self.compute_dtype,
            "sparse": False,
            "name": self.name,
        }


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None) -> InputLayer:
    """The input of a model, as ``keras.Input``: ``Sequential([Input(shape=(784,)), …])``."""
    return InputLayer(
        shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape
    )
