"""Checks on what users pass to a model's methods: batch sizes, verbosity, arrays, and values
given per output."""

from __future__ import annotations

import numbers

from glassnet.backend import (
    xp,
)

__all__ = [
    "_as_array",
    "_check_batch_size",
    "_check_verbose",
    "_per_output",
    "_readable_size",
    "as_input",
]


def _check_batch_size(batch_size):
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size <= 0
    ):
        raise ValueError(f"Received batch_size={batch_size!r}. Expected a positive integer.")
    return int(batch_size)


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"Received verbose={verbose!r}. Expected 'auto', 0, 1 or 2.")
    return int(verbose)


def _as_array(data, what: str):
    if data is None:
        raise ValueError(f"Received {what}=None. Expected an array of samples.")
    try:
        arr = xp.asarray(data)
    except ValueError:
        raise ValueError(
            f"{what} could not be made into one array: its samples have different shapes "
            "(a ragged list?). Give every sample the same shape, e.g. with "
            "glassnet.utils.pad_sequences for sequences."
        ) from None
    if arr.dtype.kind in "SO":  # bytes, or Python objects that may be strings: text as str
        arr = _as_text(arr, what)
    if arr.dtype.kind not in "biufU":
        raise TypeError(f"{what} must hold numbers; received an array of dtype {arr.dtype}.")
    if arr.ndim == 0:
        raise ValueError(f"{what} must be an array of samples; received a scalar.")
    if len(arr) == 0:
        raise ValueError(f"Received an empty dataset: {what} has shape {arr.shape}, 0 samples.")
    if arr.dtype.kind == "U":  # text, for a model whose input is Input(dtype="string")
        return arr
    # A sum propagates NaN and ±inf: one pass, no temporary the size of the data. A sum can
    # also overflow on finite data, so only then are the samples counted one by one.
    with xp.errstate(over="ignore"):
        total = arr.sum() if arr.dtype.kind == "f" else 0
    if not xp.isfinite(total):
        bad = int((~xp.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
        if bad:
            raise ValueError(
                f"{what} contains NaN or infinity in {bad} sample(s); clean or impute them first."
            )
    return arr


def _as_text(arr, what: str):
    """An array of bytes or of Python strings as one of str (bytes read as UTF-8)."""
    items = arr.reshape(-1).tolist()
    if not all(isinstance(t, (str, bytes)) for t in items):
        kinds = sorted({type(t).__name__ for t in items} - {"str", "bytes"})
        raise TypeError(f"{what} must hold numbers or strings; received objects of type "
                        f"{', '.join(kinds)}.")  # fmt: skip
    try:
        text = [t.decode("utf-8") if isinstance(t, bytes) else t for t in items]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} holds bytes that are not UTF-8 text: {exc}.") from None
    return xp.asarray(text, dtype=str).reshape(arr.shape)


def as_input(a, dtype):
    """One model input as the layers read it: numbers in the model's float type; text (for an
    ``Input(dtype="string")``) as it is."""
    return (
        a
        if getattr(a, "dtype", None) is not None and a.dtype.kind == "U"
        else xp.asarray(a, dtype=dtype)
    )


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return ""  # unreachable


def _per_output(value, names: list[str], what: str) -> list:
    """One entry per output from a single value, a list in output order, or a dict by name."""
    if isinstance(value, dict):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(
                f"{what} names outputs {sorted(unknown)}, but the model's outputs are {names}."
            )
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)) and (len(names) > 1 or what in ("loss", "loss_weights")):
        if len(value) != len(names):
            raise ValueError(
                f"The model has {len(names)} outputs ({', '.join(names)}); received {len(value)} "
                f"entries for {what}."
            )
        return list(value)
    return [value] * len(names)
