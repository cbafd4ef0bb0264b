"""IMDB movie reviews: 50,000 reviews as word ids, labelled positive or negative, as
``keras.datasets.imdb``.

Keras's two files are found before they are fetched, as MNIST's are: ``imdb.npz`` (the reviews)
and ``imdb_word_index.json`` (word → rank by frequency), looked for in ``$GLASSNET_DATA/imdb/``,
glassnet's cache (``datasets/imdb/``), Keras's cache (``~/.keras/datasets/``) and
``/usr/share/datasets/imdb/``, and only then downloaded from Keras's storage (or the mirrors in
``GLASSNET_MIRRORS``), each checked against its published hash before it is kept.

``imdb.npz`` holds ragged lists in object arrays, which NumPy stores as pickles. Unpickling runs
code; this reader unpickles with an allowlist — NumPy arrays, their dtypes, Python lists and
ints — so a crafted file fails with an error instead of running anything.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np

from glassnet.datasets._fetch import ArraysOnly, find_file

__all__ = ["get_word_index", "load_data"]

MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
HASHES = {  # as Keras publishes them: SHA-256 of the reviews, MD5 of the word index
    "imdb.npz": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "imdb_word_index.json": "bfafd718b763782e994055a2d397834f",
}
MAX_MEMBER = 256 << 20  # bytes of one array inside imdb.npz, unpacked (the real ones: ~60 MB)


def _find(name: str, stream=None, timeout: float = 30.0) -> Path:
    """The first copy of ``name`` found, or one downloaded into glassnet's cache."""
    return find_file(
        "imdb", name, HASHES.get(name), MIRROR, stream, timeout, max_bytes=128 << 20,
        fix="Fix: put Keras's imdb.npz and imdb_word_index.json in $GLASSNET_DATA/imdb/.",
        title="IMDB's",
    )  # fmt: skip


# ---- reading imdb.npz without running anything ---------------------------------------------------


def _read_array(data: bytes, what: str):
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    headers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}  # fmt: skip
    if version not in headers:
        raise ValueError(f"{what} is in .npy format {version}, which is not read here.")
    shape, fortran, dtype = headers[version](stream)
    if dtype.hasobject:  # a ragged array: its pickle, through the allowlist
        array = ArraysOnly(stream).load()
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise ValueError(f"{what} does not hold the array its header describes.")
        return array
    count = int(np.prod(shape))
    array = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype)
    if array.size != count:
        raise ValueError(f"{what} is truncated.")
    return array.reshape(shape, order="F" if fortran else "C")


def _read_reviews(path: Path):
    """(x_train, y_train, x_test, y_test) from imdb.npz, every part checked."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key in ("x_train", "y_train", "x_test", "y_test"):
                    with archive.open(info) as member:
                        data = member.read(MAX_MEMBER + 1)  # not the header's word for it
                    if len(data) > MAX_MEMBER:
                        raise ValueError(f"{info.filename} unpacks to over {MAX_MEMBER:,} bytes.")
                    arrays[key] = _read_array(data, f"{path}:{info.filename}")
    except (OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable IMDB file: {exc}") from None
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise ValueError(f"{path} is not an IMDB file: it has no {', '.join(sorted(missing))}.")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 1 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{path}: x_{split} and y_{split} are not one label per review.")
        if not all(isinstance(r, list) and all(type(w) is int and w >= 0 for w in r) for r in x):
            raise ValueError(f"{path}: x_{split} must hold lists of word ids (ints ≥ 0).")
        if y.dtype.kind not in "iu" or not np.isin(y, (0, 1)).all():
            raise ValueError(f"{path}: y_{split} must hold labels 0 and 1.")
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
              oov_char=2, index_from=3, **kwargs):  # fmt: skip
    """``((x_train, y_train), (x_test, y_test))`` as Keras gives them: object arrays of lists of
    word ids, labels 0 (negative) and 1 (positive).

    Args:
        num_words: Keep the ``num_words`` most frequent words; rarer ones become ``oov_char``.
        skip_top: Also turn the ``skip_top`` most frequent ids into ``oov_char``.
        maxlen: Drop reviews of ``maxlen`` ids or more.
        seed: The shuffle of each split (Keras's, so the same reviews come out in the same order).
        start_char: Put before every review (``None``: nothing).
        oov_char: What dropped words become (``None``: they are removed).
        index_from: Added to every word id (so that 0, 1, 2 stay padding, start, unknown).
    """
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    x_train, y_train, x_test, y_test = _read_reviews(_find(path))
    rng = np.random.RandomState(seed)  # Keras's order: train shuffled first, then test
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, y_train = x_train[order], y_train[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, y_test = x_test[order], y_test[order]

    head = [] if start_char is None else [start_char]
    shift = index_from or 0
    x_train = [head + [w + shift for w in review] for review in x_train]
    x_test = [head + [w + shift for w in review] for review in x_test]
    if maxlen:
        keep_train = [len(r) < maxlen for r in x_train]
        keep_test = [len(r) < maxlen for r in x_test]
        x_train = [r for r, k in zip(x_train, keep_train) if k]
        x_test = [r for r, k in zip(x_test, keep_test) if k]
        y_train, y_test = y_train[keep_train], y_test[keep_test]
        if not x_train or not x_test:
            raise ValueError(
                f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was "
                "kept. Increase maxlen."
            )
    reviews = x_train + x_test
    if not num_words:
        num_words = max(max(r) for r in reviews if r)
    if oov_char is not None:
        reviews = [[w if skip_top <= w < num_words else oov_char for w in r] for r in reviews]
    else:
        reviews = [[w for w in r if skip_top <= w < num_words] for r in reviews]
    n = len(x_train)

    def as_object_array(rows):
        out = np.empty(len(rows), dtype=object)
        out[:] = rows
        return out

    return (as_object_array(reviews[:n]), y_train), (as_object_array(reviews[n:]), y_test)


def get_word_index(path="imdb_word_index.json") -> dict[str, int]:
    """Word → its rank by frequency (1 is the most frequent), as Keras's. Add ``index_from``
    (3) to a rank to get the id ``load_data`` uses for that word."""
    found = _find(path)
    try:
        index = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{found} is not a readable word index: {exc}") from None
    if not isinstance(index, dict) or not all(
        isinstance(k, str) and type(v) is int and v > 0 for k, v in index.items()
    ):
        raise ValueError(f"{found} is not a word index: expected {{word: rank ≥ 1}}.")
    return index
