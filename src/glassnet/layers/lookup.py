"""Vocabularies: ``StringLookup``, ``IntegerLookup`` and ``TextVectorization`` turn words and
categories into the integers an ``Embedding`` or a ``Dense`` layer reads, as Keras's do.

They come before the first neuron: no weights and no derivative (a word has no slope), so their
backward pass sends nothing back. ``adapt(data)`` counts the tokens and keeps the most frequent,
ties broken by the token itself from high to low — Keras's order, so the same data gives the
same vocabulary. Index 0 onwards holds the special tokens (the mask, then the out-of-vocabulary
buckets), then the learned ones. A ``.keras`` file carries an adapted vocabulary as Keras writes
it (``assets/<layer>/vocabulary.txt``).

>>> lookup = StringLookup()
>>> lookup.adapt(["b", "a", "b", "c"])
>>> lookup.get_vocabulary()
['[UNK]', 'b', 'c', 'a']
>>> lookup(["a", "z"])
array([3, 0])
>>> text = TextVectorization(output_sequence_length=4)
>>> text.adapt(["The cat sat.", "the dog"])
>>> text(["the cat, the bird"])
array([[2, 5, 2, 1]])

Strings are looked up one by one in a dict: this is data preparation, before the matrix products,
and Python's dict is what a vocabulary is.
"""

from __future__ import annotations

import collections
import math
import re
import string
from pathlib import Path

from glassnet.backend import floatx, function_from_config, serialize_function, xp
from glassnet.layers.base import Layer, refuse_unsupported

__all__ = ["IntegerLookup", "StringLookup", "TextVectorization"]

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_ALIASES = {"binary": "multi_hot", "tf-idf": "tf_idf"}
_UPPER_TO_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
_BOTH = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")  # ASCII's, as TensorFlow's split: not U+00A0


def _output_mode(output_mode) -> str:
    mode = _ALIASES.get(output_mode, output_mode)
    if mode not in OUTPUT_MODES:
        raise ValueError(
            f"Received output_mode={output_mode!r}. Expected one of {', '.join(OUTPUT_MODES)}."
        )
    return mode


def encode(ids, depth: int, mode: str, idf=None, dtype=None):
    """Rows of token ids as Keras's one_hot, multi_hot, count or tf_idf vectors of ``depth``.

    ``ids``: an integer array (one row per sample, or one id per sample), or a list of 1-D
    arrays (rows of different lengths). Ids outside [0, depth) — a mask — count for nothing.
    """
    dtype = dtype or floatx()
    if mode == "one_hot":
        ids = xp.asarray(ids)
        if ids.ndim > 1 and ids.shape[-1] == 1:
            ids = ids[..., 0]
        out = xp.zeros((*ids.shape, depth), dtype=dtype)
        inside = (ids >= 0) & (ids < depth)
        out.reshape(-1, depth)[xp.flatnonzero(inside), ids[inside]] = 1
        return out
    if isinstance(ids, list):
        rows = xp.repeat(xp.arange(len(ids)), [len(r) for r in ids])
        flat = xp.concatenate(ids) if ids else xp.zeros(0, dtype=xp.int64)
        n = len(ids)
    else:
        ids = xp.asarray(ids)
        ids = ids.reshape(len(ids), -1)
        n = len(ids)
        rows, flat = xp.repeat(xp.arange(n), ids.shape[1]), ids.reshape(-1)
    inside = (flat >= 0) & (flat < depth)
    out = xp.zeros((n, depth), dtype=dtype)
    if mode == "multi_hot":
        out[rows[inside], flat[inside]] = 1
        return out
    xp.add.at(out, (rows[inside], flat[inside]), 1)  # count: how often each token appears
    if mode == "tf_idf":
        out *= xp.asarray(idf, dtype=dtype)[:depth]  # term frequency × inverse document frequency
    return out


class IndexLookup(Layer):
    """What the three share: the vocabulary with its special tokens in front, ``adapt``, the
    lookup and the encodings. ``StringLookup`` and ``IntegerLookup`` are this with their token
    type; ``TextVectorization`` cuts text into tokens and hands them to a ``StringLookup``."""

    _token = str  # the token type: str, or int for IntegerLookup

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, oov_method="floormod", salt=None,
                 name=None, **kwargs):  # fmt: skip
        # The size a config records: the output's width before a file's vocabulary is read.
        self._recorded_size = kwargs.pop("vocabulary_size", None)
        for keras_only in ("has_input_vocabulary", "vocabulary_dtype"):
            kwargs.pop(keras_only, None)  # Keras writes them into configs; found again here
        kwargs.pop("encoding", None)  # text is Python's str: decoded before it comes here
        refuse_unsupported(type(self).__name__, sparse=sparse or None, salt=salt)
        super().__init__(name=name, **kwargs)
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(
                f"If set, max_tokens must be greater than 1. Received: max_tokens={max_tokens}"
            )
        if num_oov_indices < 0:
            raise ValueError(
                "num_oov_indices must be greater than or equal to 0. "
                f"Received: num_oov_indices={num_oov_indices}"
            )
        if oov_method != "floormod":
            raise NotImplementedError(f"{type(self).__name__}(oov_method={oov_method!r}) is not "
                                      "supported by glassnet: only 'floormod'.")  # fmt: skip
        if num_oov_indices > 1 and self._token is str:
            raise NotImplementedError(
                f"{type(self).__name__}(num_oov_indices={num_oov_indices}) is not supported by "
                "glassnet: Keras sends unknown strings to buckets by TensorFlow's own hash, which "
                "glassnet does not reproduce. Use num_oov_indices=1 (or 0)."
            )
        self.output_mode = _output_mode(output_mode)
        if idf_weights is not None and self.output_mode != "tf_idf":
            raise ValueError(
                "idf_weights should only be set if output_mode is 'tf_idf'. Received: "
                f"output_mode={output_mode!r} and idf_weights={idf_weights}"
            )
        if invert and self.output_mode != "int":
            raise ValueError(
                "output_mode must be 'int' when invert is true. Received: "
                f"output_mode={output_mode!r}"
            )
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.invert, self.pad_to_max_tokens = bool(invert), bool(pad_to_max_tokens)
        self.tokens: list = []  # the learned (or given) vocabulary, special tokens left out
        self._index: dict = {}  # token -> id
        self.idf_weights = None  # tf_idf: one weight per index, special ones included
        self.input_vocabulary = vocabulary if not isinstance(vocabulary, (str, Path)) else None
        self.input_idf_weights = idf_weights
        self._given = vocabulary is not None
        if self.output_mode == "tf_idf" and self._given and idf_weights is None:
            raise ValueError(
                "When specifying the vocabulary argument, in TF-IDF output mode, the "
                "idf_weights argument must also be provided."
            )
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ---- where each index comes from ----------------------------------------------------------

    @property
    def _oov_start(self) -> int:
        """Index 0 is the mask's when there is a mask token and the output is ids."""
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    @property
    def _token_start(self) -> int:
        return self._oov_start + self.num_oov_indices

    def get_vocabulary(self, include_special_tokens=True) -> list:
        """Every token by its index: with ``include_special_tokens`` (the default), the mask
        and OOV tokens first, so that a token's place in the list is the id it is given."""
        specials = [self.mask_token] * self._oov_start + [self.oov_token] * self.num_oov_indices
        return (specials if include_special_tokens else []) + list(self.tokens)

    def vocabulary_size(self) -> int:
        """The number of ids the layer gives, special ones included."""
        return self._token_start + len(self.tokens)

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        """Set the vocabulary (a list or array of tokens, or the path of a file with one token
        a line), with or without its special tokens in front, and for tf_idf the weights."""
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("idf_weights must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(
                "idf_weights should only be set if output_mode is 'tf_idf'. Received: "
                f"output_mode={self.output_mode!r} and idf_weights={idf_weights}"
            )
        if isinstance(vocabulary, (str, Path)):
            vocabulary = Path(vocabulary).read_text(encoding="utf-8").splitlines()
        tokens = [self._as_token(t) for t in xp.asarray(vocabulary).reshape(-1).tolist()]
        specials = self.get_vocabulary()[: self._token_start]
        if tokens[: len(specials)] == specials:
            tokens = tokens[len(specials) :]
        repeated = sorted({t for t, n in collections.Counter(tokens).items() if n > 1}, key=str)
        if repeated:
            raise ValueError(
                f"The passed vocabulary has at least one repeated term. Please uniquify your "
                f"dataset. The repeated terms are {repeated}."
            )
        reserved = [("mask", self.mask_token)] + [("OOV", self.oov_token)] * self.invert
        for what, special in reserved:  # Keras allows the OOV token among words unless inverting
            if special is not None and special in tokens:
                raise ValueError(
                    f"Found reserved {what} token {special!r} at vocabulary index "
                    f"{tokens.index(special) + self._token_start}: the vocabulary need not hold "
                    f"the special tokens; if it does, only at its start, in this order: "
                    f"{specials}."
                )
        size = self._token_start + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(
                f"Attempted to set a vocabulary larger than the maximum vocab size. Received "
                f"vocabulary size is {size}; max_tokens is {self.max_tokens}."
            )
        self.tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens, start=self._token_start)}
        if idf_weights is not None:
            weights = xp.asarray(idf_weights, dtype=floatx()).reshape(-1)
            if len(weights) not in (len(tokens), size):
                raise ValueError(
                    "idf_weights must be the same length as vocabulary. len(idf_weights) is "
                    f"{len(weights)}; len(vocabulary) is {len(tokens)}"
                )
            if len(weights) == len(tokens):  # the special indices weigh the average
                front = xp.full(self._token_start, weights.mean() if len(weights) else 0)
                weights = xp.concatenate([front.astype(weights.dtype), weights])
            self.idf_weights = self._padded(weights)

    def _as_token(self, token):
        if self._token is int:
            if (
                isinstance(token, bool)
                or not isinstance(token, (int, float))
                or token != int(token)
            ):
                raise ValueError(f"IntegerLookup's vocabulary holds integers; received {token!r}.")
            return int(token)
        return token.decode("utf-8") if isinstance(token, bytes) else str(token)

    def _padded(self, weights):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            weights = xp.pad(weights, (0, self.max_tokens - len(weights)))
        return weights

    # ---- learning it ---------------------------------------------------------------------------

    def adapt(self, data, steps=None) -> None:
        """Learn the vocabulary from ``data`` (an array, a list, or an iterable of batches):
        the ``max_tokens`` most frequent tokens, ties broken by the token, high to low."""
        self.learn(self._rows(self._as_array(batch)) for batch in _batches(data, steps))

    def learn(self, batches) -> None:
        """``adapt`` on token rows already cut: batches of lists of tokens, a list a sample."""
        if self._given:
            raise ValueError(
                f"Cannot adapt layer {self.name!r} after setting a static vocabulary via the "
                "vocabulary argument or the set_vocabulary() method."
            )
        counts: collections.Counter = collections.Counter()
        documents: collections.Counter = collections.Counter()
        n_documents = 0
        for rows in batches:
            for row in rows:
                counts.update(row)
                documents.update(set(row))
            n_documents += len(rows)
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        if self.max_tokens is not None:
            ranked = ranked[: self.max_tokens - self._token_start]
        tokens = [t for t, _ in ranked]
        idf = None
        if self.output_mode == "tf_idf":  # log(1 + documents ÷ (1 + documents holding it))
            idf = [math.log(1 + n_documents / (1 + documents[t])) for t in tokens]
        self.set_vocabulary(tokens, idf)

    def _rows(self, array) -> list[list]:
        array = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
        return [[self._as_token(t) for t in row] for row in array.tolist()]

    def _as_array(self, data):
        array = xp.asarray(data)
        if self._token is str and array.dtype.kind not in "USO":
            raise TypeError(
                f"{type(self).__name__} looks up strings; received an array of {array.dtype}."
            )
        if self._token is int and array.dtype.kind not in "biu":
            if array.dtype.kind == "f" and xp.array_equal(array, xp.round(array)):
                return array.astype(xp.int64)  # ids that travelled as floats
            raise TypeError(f"IntegerLookup looks up integers; received an array of {array.dtype}.")
        return array

    # ---- the lookup ----------------------------------------------------------------------------

    def _ids(self, tokens):
        """Each token's id (tokens: a flat list); what is not in the vocabulary goes to an OOV
        index, and the mask token to 0."""
        index, mask = self._index, self.mask_token
        start, buckets = self._oov_start, self.num_oov_indices
        unknown = []
        ids = []
        for t in tokens:
            i = index.get(t)
            if i is None:
                if mask is not None and t == mask:
                    i = 0 if self.output_mode == "int" else -1  # -1: counts for nothing
                elif buckets == 1:
                    i = start
                elif buckets > 1:
                    i = start + t % buckets  # IntegerLookup: Keras's floormod
                else:
                    unknown.append(t)
                    i = -1
            ids.append(i)
        if unknown:
            raise ValueError(
                "When num_oov_indices=0 all inputs should be in vocabulary, found OOV values "
                f"{unknown[:10]}, consider setting num_oov_indices=1."
            )
        return xp.asarray(ids, dtype=xp.int64)

    def _no_vocabulary(self) -> str:
        return (
            f"When using output_mode={self.output_mode!r} and pad_to_max_tokens=False, you must "
            "set the layer's vocabulary before calling it. Either pass a vocabulary argument to "
            "the layer, or call adapt with some sample data."
        )

    def _depth(self) -> int:
        if self.pad_to_max_tokens:
            if self.max_tokens is None:
                raise ValueError("pad_to_max_tokens=True needs max_tokens.")
            return self.max_tokens
        if not self.tokens and self._recorded_size is None:
            raise RuntimeError(self._no_vocabulary())
        return self.vocabulary_size() if self.tokens else self._recorded_size

    def lookup(self, data):
        """The layer's output for an array of tokens (the forward pass, on arrays)."""
        if self.invert:  # ids back to tokens; an id past the vocabulary is the OOV token
            ids = xp.asarray(data, dtype=xp.int64)
            vocabulary = self.get_vocabulary()
            out = [vocabulary[i] if 0 <= i < len(vocabulary) else self.oov_token
                   for i in ids.reshape(-1).tolist()]  # fmt: skip
            return xp.asarray(out, dtype=str if self._token is str else xp.int64).reshape(ids.shape)
        array = self._as_array(data)
        flat = [self._as_token(t) for t in array.reshape(-1).tolist()]
        ids = self._ids(flat).reshape(array.shape)
        if self.output_mode == "int":
            return ids
        return encode(ids if ids.ndim else ids.reshape(1), self._depth(), self.output_mode,
                      self.idf_weights)  # fmt: skip

    # ---- as a layer ----------------------------------------------------------------------------

    def __call__(self, inputs, training=None):
        if hasattr(inputs, "node"):  # a symbolic tensor: a node in a model
            return super().__call__(inputs, training=training)
        return self.lookup(inputs)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.output_mode == "int":
            return input_shape
        if self.output_mode == "one_hot":
            keep = (
                input_shape[:-1] if len(input_shape) > 1 and input_shape[-1] == 1 else input_shape
            )
            return (*keep, self._depth())
        return (input_shape[0], self._depth())

    def forward(self, a_prev, training=False, cache=None):
        a = self.cache_for(cache).a = self.lookup(a_prev)  # kept for the glass box to show
        return a

    def backward(self, dC_da, cache=None):
        return None  # tokens have no derivative: nothing goes back past a vocabulary

    # ---- files ---------------------------------------------------------------------------------

    def asset_files(self) -> dict[str, bytes]:
        """What Keras writes beside the weights: an adapted vocabulary, a token a line."""
        if self.input_vocabulary is not None or not self.tokens:
            return {}
        if self.output_mode == "tf_idf":
            raise NotImplementedError(
                f"Layer {self.name!r}: glassnet does not save an adapted tf_idf vocabulary yet "
                "(Keras keeps its weights apart from the layer's). Pass vocabulary= and "
                "idf_weights= to the layer (get_vocabulary() and layer.idf_weights) to save it."
            )
        text = "\n".join(str(t) for t in self.get_vocabulary())
        return {"vocabulary.txt": text.encode("utf-8")}

    def read_asset_files(self, files: dict[str, bytes], source: str = "") -> None:
        """Take the vocabulary back from ``asset_files``'s files (from glassnet or Keras)."""
        data = files.get("vocabulary.txt")
        if self.input_vocabulary is not None or data is None:
            return
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{source}layer {self.name!r}: its vocabulary.txt is not UTF-8 "
                             f"text ({exc}).") from None  # fmt: skip
        while lines and lines[-1] == "":
            lines.pop()
        try:
            tokens = [int(line) for line in lines] if self._token is int else lines
            self.set_vocabulary(tokens, self.idf_weights)
        except ValueError as exc:
            raise ValueError(f"{source}layer {self.name!r}: its vocabulary.txt: {exc}") from None

    def get_config(self):
        return {
            **super().get_config(),
            "invert": self.invert,
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token,
            "mask_token": self.mask_token,
            "output_mode": self.output_mode,
            "sparse": False,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "idf_weights": _listed(self.input_idf_weights),
            "vocabulary": _listed(self.input_vocabulary),
            "vocabulary_size": self.vocabulary_size() if self.tokens else None,
            "oov_method": "floormod",
            "salt": None,
        }


def _batches(data, steps):
    """``adapt``'s data as batches: an array or a list is one batch; any other iterable yields
    them (at most ``steps``)."""
    if isinstance(data, (str, bytes)):
        raise ValueError("adapt() needs a collection of samples; received a single string.")
    if hasattr(data, "__array__") or isinstance(data, (list, tuple)):
        return [data]
    return data if steps is None else (b for _, b in zip(range(steps), data))


def _named(option):
    """A ``standardize`` or ``split`` option as a config holds it: its name, or a function's."""
    return serialize_function(option) if callable(option) else option


def _listed(value):
    return None if value is None else xp.asarray(value).tolist()


class StringLookup(IndexLookup):
    """Strings to ids (or, ``invert=True``, ids back to strings), as ``keras.layers.StringLookup``.

    Args:
        max_tokens: The most ids, special ones included; None for no cap.
        num_oov_indices: How many ids unknown strings share (0: unknown strings are an error).
        mask_token: A token that stands for padding, given id 0; None for none.
        oov_token: The token an unknown id turns back into (``invert``).
        vocabulary: The tokens, or the path of a file with one a line, instead of ``adapt``.
        idf_weights: One weight a token for ``output_mode="tf_idf"``.
        invert: Ids to strings instead.
        output_mode: ``"int"`` (an id a token), ``"one_hot"``, ``"multi_hot"``, ``"count"`` or
            ``"tf_idf"`` (a vector as long as the vocabulary a sample).
        pad_to_max_tokens: Make those vectors ``max_tokens`` long.
    """

    def get_config(self):
        return {**super().get_config(), "encoding": "utf-8"}


class IntegerLookup(IndexLookup):
    """Integer categories (zip codes, product ids) to consecutive ids, as Keras's. Unknown
    values share ``num_oov_indices`` buckets by value modulo their number (Keras's floormod)."""

    _token = int

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 **kwargs):  # fmt: skip
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["vocabulary_dtype"] = "int64"
        return config


class TextVectorization(Layer):
    """Text to ids (or to one vector a sample), as ``keras.layers.TextVectorization``.

    Each sample is standardized (``"lower_and_strip_punctuation"``: ASCII letters lowered,
    ``string.punctuation`` removed, as TensorFlow's ``lower`` and Keras's pattern do), split
    (``"whitespace"``: ASCII whitespace, or ``"character"``), made into n-grams (``ngrams=2``:
    the words, then the pairs), and looked up in a ``StringLookup`` whose id 0 is padding and 1
    the unknown word. ``output_mode="int"`` pads (or cuts) every sample to
    ``output_sequence_length``, or to the longest in the batch.

    ``standardize`` and ``split`` may be functions: ``standardize`` takes a NumPy array of
    strings and gives one back; ``split`` takes one and gives a list of tokens a string.
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int", output_sequence_length=None,
                 pad_to_max_tokens=False, vocabulary=None, idf_weights=None, sparse=False,
                 ragged=False, encoding="utf-8", name=None, **kwargs):  # fmt: skip
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        kwargs.pop("has_input_vocabulary", None)
        refuse_unsupported("TextVectorization", sparse=sparse or None, ragged=ragged or None)
        if not (standardize in (None, "lower_and_strip_punctuation", "lower",
                                "strip_punctuation") or callable(standardize)):  # fmt: skip
            raise ValueError(
                f"Received standardize={standardize!r}. Expected None, 'lower', "
                "'strip_punctuation', 'lower_and_strip_punctuation' or a function."
            )
        if not (split in (None, "whitespace", "character") or callable(split)):
            raise ValueError(
                f"Received split={split!r}. Expected None, 'whitespace', 'character' or a function."
            )
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (
            ngrams is None
            or (isinstance(ngrams, int) and not isinstance(ngrams, bool))
            or (isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))
        ):
            raise ValueError(
                f"ngrams must be None, an integer, or a tuple of integers. Received: "
                f"ngrams={ngrams}"
            )  # fmt: skip
        mode = _output_mode(output_mode)
        if (
            mode == "int"
            and output_sequence_length is not None
            and (
                isinstance(output_sequence_length, bool)
                or not isinstance(output_sequence_length, int)
                or output_sequence_length <= 0
            )
        ):
            raise ValueError(
                "output_sequence_length must be either None or a positive integer when "
                f"output_mode is 'int'. Received: output_sequence_length={output_sequence_length}"
            )
        if mode != "int" and output_sequence_length is not None:
            raise ValueError(
                "output_sequence_length must not be set if output_mode is not 'int'. "
                f"Received output_sequence_length={output_sequence_length}."
            )
        super().__init__(name=name, **kwargs)
        self.standardize, self.split, self.ngrams_arg = standardize, split, ngrams
        self.ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode, self.output_sequence_length = mode, output_sequence_length
        self.encoding = encoding
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=mode,
            vocabulary_size=vocabulary_size, name=f"{self.name}_lookup",
        )  # fmt: skip

    # ---- text to tokens ------------------------------------------------------------------------

    def tokens(self, data) -> list[list[str]]:
        """Each sample's tokens after standardizing, splitting and n-grams."""
        array = xp.asarray(data)
        if array.dtype.kind not in "USO":
            raise TypeError(f"TextVectorization reads strings; received an array of {array.dtype}.")
        if self.split is not None and array.ndim > 1:
            if array.shape[-1] != 1 or array.ndim > 2:
                raise ValueError(
                    "When using TextVectorization to tokenize strings, the input rank must be 1 "
                    f"or the last shape dimension must be 1. Received: inputs.shape={array.shape}"
                )
            array = array[:, 0]
        array = xp.asarray([t.decode("utf-8") if isinstance(t, bytes) else str(t)
                            for t in array.reshape(-1).tolist()]).reshape(array.shape)  # fmt: skip
        if callable(self.standardize):
            array = xp.asarray(self.standardize(array)).astype(str)
        elif self.standardize is not None:
            table = {"lower": _UPPER_TO_LOWER, "strip_punctuation": _NO_PUNCTUATION,
                     "lower_and_strip_punctuation": _BOTH}[self.standardize]  # fmt: skip
            array = xp.asarray([t.translate(table) for t in array.reshape(-1).tolist()],
                               dtype=str).reshape(array.shape)  # fmt: skip
        if self.split is None:
            rows = [[t] for t in array.reshape(-1).tolist()] if array.ndim < 2 else array.tolist()
        elif self.split == "whitespace":
            rows = [[t for t in _WHITESPACE.split(s) if t] for s in array.tolist()]
        elif self.split == "character":
            rows = [list(s) for s in array.tolist()]
        else:
            rows = [[str(t) for t in row] for row in self.split(array)]
        if self.ngrams is not None:
            rows = [[" ".join(row[i : i + n]) for n in self.ngrams
                     for i in range(len(row) - n + 1)] for row in rows]  # fmt: skip
        return rows

    def adapt(self, data, batch_size=None, steps=None) -> None:
        """Learn the vocabulary (and for tf_idf the document frequencies) from ``data``."""
        self._lookup_layer.learn(self.tokens(batch) for batch in _batches(data, steps))

    # ---- the vocabulary is the lookup's ---------------------------------------------------------

    def get_vocabulary(self, include_special_tokens=True) -> list:
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    @property
    def idf_weights(self):
        """tf_idf: one weight an id (the special ones first), else None."""
        return self._lookup_layer.idf_weights

    # ---- as a layer ----------------------------------------------------------------------------

    def __call__(self, inputs, training=None):
        if hasattr(inputs, "node"):  # a symbolic tensor: a node in a model
            return super().__call__(inputs, training=training)
        return self.vectorize(inputs)

    def vectorize(self, data):
        """The layer's output for an array of texts (the forward pass, on arrays)."""
        rows = self.tokens(data)
        lookup = self._lookup_layer
        if self.split is None and self.output_mode != "int" and not self.ngrams:
            return lookup.lookup(xp.asarray(rows, dtype=str).reshape(len(rows), -1))
        ids = [lookup._ids(row) for row in rows]
        if self.output_mode != "int":
            if self.output_mode == "one_hot":
                if any(len(r) != 1 for r in ids):
                    raise ValueError("output_mode='one_hot' needs one token a sample; split the "
                                     "text into none (split=None) or use 'multi_hot'.")  # fmt: skip
                ids = xp.concatenate(ids)
            return encode(ids, lookup._depth(), self.output_mode, lookup.idf_weights)
        length = self.output_sequence_length or max((len(r) for r in ids), default=0)
        out = xp.zeros((len(ids), length), dtype=xp.int64)
        for row, r in zip(out, ids):
            row[: min(len(r), length)] = r[:length]
        return out

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        return (input_shape[0], self._lookup_layer._depth())

    def forward(self, a_prev, training=False, cache=None):
        a = self.cache_for(cache).a = self.vectorize(a_prev)  # kept for the glass box to show
        return a

    def backward(self, dC_da, cache=None):
        return None  # text has no derivative

    def asset_files(self) -> dict[str, bytes]:
        """Keras writes the vocabulary twice: for this layer and for its inner lookup."""
        files = self._lookup_layer.asset_files()
        return {**files, **{f"_lookup_layer/{k}": v for k, v in files.items()}}

    def read_asset_files(self, files: dict[str, bytes], source: str = "") -> None:
        self._lookup_layer.read_asset_files(files, source)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> TextVectorization:
        config = dict(config)
        for key in ("standardize", "split"):  # a function of the user's, found by its name
            if config.get(key) is not None and not isinstance(config[key], str):
                config[key] = function_from_config(config[key], custom_objects, "TextVectorization")
        return super().from_config(config)

    def get_config(self):
        lookup = self._lookup_layer
        return {
            **super().get_config(),
            "max_tokens": lookup.max_tokens,
            "standardize": _named(self.standardize),
            "split": _named(self.split),
            "ngrams": list(self.ngrams_arg)
            if isinstance(self.ngrams_arg, tuple)
            else self.ngrams_arg,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": lookup.pad_to_max_tokens,
            "sparse": False,
            "ragged": False,
            "vocabulary": _listed(lookup.input_vocabulary),
            "idf_weights": _listed(lookup.input_idf_weights),
            "encoding": self.encoding,
            "vocabulary_size": lookup.vocabulary_size() if lookup.tokens else None,
        }
