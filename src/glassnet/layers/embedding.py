"""``Embedding``: a word id becomes a learned vector.

In the deck's terms an embedding is a Dense layer without bias whose input is the word's one-hot
vector: z = W·onehot(id) is column ``id`` of W, so the layer simply looks that column up. Keras
stores the transpose, ``embeddings`` (input_dim, output_dim), one row per word, and so does this
layer (a lookup reads rows). Backward, ∂C/∂(row id) is the sum of ∂C/∂a over every place the
word appears in the batch; ids are not numbers one can nudge, so nothing flows further back.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

from glassnet import initializers, ops, regularizers
from glassnet.backend import xp
from glassnet.layers.base import Layer, Variable, refuse_unsupported

__all__ = ["Embedding"]


class Embedding(Layer):
    """Turns ids in [0, input_dim) into vectors of ``output_dim`` numbers.

    Args:
        input_dim: The vocabulary size: ids run from 0 to input_dim − 1.
        output_dim: The length of each word's vector.
        embeddings_initializer: How the vectors start (Keras: uniform on ±0.05).
        mask_zero: Id 0 is padding: the recurrent layers after it skip the steps holding it
            (``pad_sequences`` pads with 0), so padded steps change nothing.

    >>> import numpy as np
    >>> layer = Embedding(5, 2)
    >>> layer.build((None, 3))
    >>> layer(np.array([[0, 4, 0]])).shape
    (1, 3, 2)
    """

    _keras_names: ClassVar[dict[str, str]] = {"embeddings": "embeddings"}

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        lora_rank=None,
        **kwargs,
    ):
        kwargs.pop("input_length", None)  # Keras 2's argument: the input's shape says it
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(
                    f"Both `input_dim` and `output_dim` should be positive, Received {name}="
                    f"{value!r}."
                )
        refuse_unsupported(
            "Embedding",
            embeddings_constraint=embeddings_constraint,
            lora_rank=lora_rank,
        )
        super().__init__(**kwargs)
        self.mask_zero = bool(mask_zero)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(
            "random_uniform" if embeddings_initializer == "uniform" else embeddings_initializer
        )
        self._initial_weights = weights
        self.regularize(embeddings=embeddings_regularizer)

    @property
    def embeddings(self) -> Variable:
        return Variable(self, "embeddings")

    def build(self, input_shape):
        self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                        name="embeddings")  # fmt: skip
        super().build(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def forward(self, a_prev, training=False, cache=None):
        c = self.cache_for(cache)
        ids = xp.asarray(a_prev)
        if ids.dtype.kind == "f":
            if not xp.isfinite(ids).all() or (ids != xp.round(ids)).any():
                raise ValueError(
                    f"Embedding layer {self.name!r} takes integer word ids; received values "
                    "such as " + ", ".join(map(str, ids[ids != xp.round(ids)][:3].tolist())) + "."
                )
            ids = ids.astype(xp.int64)
        elif ids.dtype.kind not in "iu":
            raise ValueError(
                f"Embedding layer {self.name!r} takes integer word ids; received {ids.dtype}."
            )
        bad = (ids < 0) | (ids >= self.input_dim)
        if bad.any():
            raise ValueError(
                f"Embedding layer {self.name!r}: id {int(ids[bad][0])} is outside its "
                f"vocabulary of input_dim={self.input_dim} words (ids 0 to "
                f"{self.input_dim - 1}). Build it with a larger input_dim, or map rare words "
                "to an out-of-vocabulary id."
            )
        c.ids = ids
        return self.params["embeddings"][ids]  # (batch, …, output_dim): each id's row

    def compute_mask(self, inputs, mask=None):
        """With ``mask_zero``, id 0 is padding: the steps holding it are masked out."""
        if not self.mask_zero:
            return None
        return ops.convert_to_numpy(inputs) != 0  # (batch, steps); ids have no derivative

    def backward(self, dC_da, cache=None):
        c = self.cache_for(cache)
        grad = self.grads["embeddings"]
        grad[...] = 0
        # ∂C/∂(row k) = Σ of ∂C/∂a over the places where word k appears
        xp.add.at(grad, c.ids.reshape(-1), dC_da.reshape(-1, self.output_dim))
        if not self.needs_input_gradient:
            return None
        return xp.zeros(c.ids.shape, dtype=dC_da.dtype)  # ids are not differentiable

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.regularizers.get("embeddings")),
            "activity_regularizer": None,
            "embeddings_constraint": None,
            "mask_zero": self.mask_zero,
        }
