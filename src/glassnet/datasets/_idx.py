"""Reading the IDX format that MNIST and Fashion-MNIST ship in, with every field checked.

An IDX file is: two zero bytes, a type code (0x08 for unsigned bytes), the number of dimensions,
each dimension as a big-endian 32-bit integer, then the data. A file that is truncated, corrupt or
not IDX at all fails with a ``ValueError`` that names the file and says what is wrong.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(
            f"{path} is not a readable gzip file ({exc}); it may be truncated or "
            "corrupt: delete it so it can be fetched again."
        ) from None


def read_idx(path, expected_ndim: int | None = None) -> np.ndarray:
    """The array stored in the IDX file at ``path`` (``.gz`` files are decompressed).

    Raises:
        ValueError: if the magic number, the dimensions or the data length are wrong.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: its magic number is {data[:4].hex() or 'empty'}"
            ", expected 0000 followed by a type code such as 08 (unsigned bytes)."
        )
    ndim = data[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise ValueError(
            f"{path} holds a {ndim}-dimensional array; expected {expected_ndim} "
            "dimensions (images are 3: count, rows, columns; labels are 1)."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: its header ends after {len(data)} bytes.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path} is {'truncated' if len(data) - header < expected else 'too long'}: "
            f"its header announces shape {shape}, {expected:,} bytes of data, but "
            f"{len(data) - header:,} bytes follow."
        )
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )
