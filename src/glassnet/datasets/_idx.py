"""Reading the IDX format that MNIST and Fashion-MNIST ship in, with every field checked.

An IDX file is: two zero bytes, a type code (0x08 for unsigned bytes), the number of dimensions,
each dimension as a big-endian 32-bit integer, then the data. The header is read first and the
size it declares is checked — in exact integer arithmetic, against a cap — before any data is read,
so a file that inflates to gigabytes or declares absurd dimensions is refused without reading it.
A file that is truncated, corrupt or not IDX at all fails with a ``ValueError`` that names the
file and says what is wrong.
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["MAX_BYTES", "read_idx"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_BYTES = 512 << 20  # the most data an IDX file may declare (MNIST's largest holds 47 MB)


def _open(path: Path):
    """The file, decompressed as it is read if it is a ``.gz``; only regular files."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"No such data file: {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file (a pipe, a device, a folder?).")
    f = open(path, "rb")  # noqa: SIM115 - closed by the caller's with
    return gzip.GzipFile(fileobj=f, mode="rb") if path.suffix == ".gz" else f


def _read(f, n: int, path: Path) -> bytes:
    try:
        return f.read(n)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise ValueError(
            f"{path} is not a readable gzip file ({exc}); it may be truncated or "
            "corrupt: delete it so it can be fetched again."
        ) from None


def read_idx(path, expected_ndim: int | None = None, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array stored in the IDX file at ``path`` (``.gz`` files are decompressed).

    Raises:
        ValueError: if the magic number, the dimensions or the data length are wrong, or if the
            file declares more than ``max_bytes`` of data.
    """
    path = Path(os.fspath(path))
    with _open(path) as f:
        magic = _read(f, 4, path)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
            raise ValueError(
                f"{path} is not an IDX file: its magic number is {magic.hex() or 'empty'}"
                ", expected 0000 followed by a type code such as 08 (unsigned bytes)."
            )
        ndim = magic[3]
        if expected_ndim is not None and ndim != expected_ndim:
            raise ValueError(
                f"{path} holds a {ndim}-dimensional array; expected {expected_ndim} "
                "dimensions (images are 3: count, rows, columns; labels are 1)."
            )
        dims = _read(f, 4 * ndim, path)
        if len(dims) < 4 * ndim:
            raise ValueError(f"{path} is truncated: its header ends after {4 + len(dims)} bytes.")
        shape = struct.unpack(f">{ndim}I", dims)
        dtype = np.dtype(_DTYPES[magic[2]])
        expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
        if expected > max_bytes:
            raise ValueError(
                f"{path} declares an array of shape {shape}, {expected:,} bytes of data; "
                f"glassnet reads at most {max_bytes:,} from one file."
            )
        data = _read(f, expected + 1, path)  # one byte more shows a file that is too long
    if len(data) != expected:
        raise ValueError(
            f"{path} is {'truncated' if len(data) < expected else 'too long'}: "
            f"its header announces shape {shape}, {expected:,} bytes of data, but "
            + (f"{len(data):,} bytes follow." if len(data) < expected else "more follow.")
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
