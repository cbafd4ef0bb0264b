"""CIFAR-10: 60,000 small colour photographs (32 × 32 × 3) in 10 classes, as
``keras.datasets.cifar10``.

The file is the one Keras reads, ``cifar-10-python.tar.gz`` from the University of Toronto
(https://www.cs.toronto.edu/~kriz/cifar.html): found before it is fetched, in
``$GLASSNET_DATA/cifar10/``, glassnet's cache, Keras's cache (``~/.keras/datasets/``) and
``/usr/share/datasets/cifar10/``, and only then downloaded (or from the mirrors in
``GLASSNET_MIRRORS``), checked against its published SHA-256 before it is kept.

Its six batches are Python pickles, and unpickling runs code: they are read with an allowlist
(NumPy arrays, lists, dicts, ints, strings), so a crafted file fails with an error instead.

>>> CLASS_NAMES[:3]
('airplane', 'automobile', 'bird')
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from glassnet.datasets._fetch import ArraysOnly, find_file

__all__ = ["CLASS_NAMES", "load_data"]

ARCHIVE = "cifar-10-python.tar.gz"
ORIGIN = "https://www.cs.toronto.edu/~kriz/"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"  # Keras's file_hash
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")  # fmt: skip
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
MAX_MEMBER = 64 << 20  # bytes of one batch (the real ones: 31 MB)


def _read_batch(archive: tarfile.TarFile, name: str, source: Path):
    """(images (n, 32, 32, 3) uint8, labels (n, 1) uint8) of the batch ``name``, checked."""
    member = next((m for m in archive.getmembers() if m.name.endswith("/" + name)), None)
    if member is None or not member.isfile():
        raise ValueError(f"{source} is not CIFAR-10's archive: it has no {name}.")
    if member.size > MAX_MEMBER:
        raise ValueError(f"{source}: {name} holds {member.size:,} bytes; a batch has ~31 MB.")
    try:
        batch = ArraysOnly(archive.extractfile(member), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: {name} is not a readable CIFAR-10 batch: {exc}") from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or (
            data.shape[1] != 3 * 32 * 32):  # fmt: skip
        raise ValueError(f"{source}: {name} must hold its images as uint8 rows of 3,072 values.")
    labels = np.asarray(labels if isinstance(labels, list) else [], dtype=np.int64)
    if labels.shape != (len(data),) or not ((labels >= 0) & (labels < 10)).all():
        raise ValueError(f"{source}: {name} must hold one label 0–9 per image.")
    # Each row is the red plane, then green, then blue (channels first): Keras's layout is last.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.uint8).reshape(-1, 1)


def load_data():
    """``((x_train, y_train), (x_test, y_test))`` as Keras gives them: uint8 images
    (50,000 and 10,000 of 32 × 32 × 3, channels last) and uint8 labels of shape (n, 1), the
    classes named in ``CLASS_NAMES``."""
    path = find_file("cifar10", ARCHIVE, SHA256, ORIGIN, max_bytes=200 << 20, title="CIFAR-10's",
                     fix=f"Fix: put {ARCHIVE} in $GLASSNET_DATA/cifar10/.")  # fmt: skip
    try:
        with tarfile.open(path, "r:gz") as archive:
            train = [_read_batch(archive, name, path) for name in TRAIN]
            test = _read_batch(archive, "test_batch", path)
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise ValueError(f"{path} is not a readable CIFAR-10 archive: {exc}") from None
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), test
