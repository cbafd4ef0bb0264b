"""Finding a dataset before fetching it (DESIGN.md §8).

``load(spec)`` looks, in order, in

1. the folder named by the environment variable ``GLASSNET_DATA`` (``$GLASSNET_DATA/mnist/``),
2. glassnet's own cache (``$GLASSNET_CACHE``, else ``$XDG_CACHE_HOME/glassnet``, else
   ``~/.cache/glassnet``; then ``datasets/mnist/``),
3. Keras's cache (``~/.keras/datasets/``, or under ``$KERAS_HOME``),
4. Debian's dataset folder (``/usr/share/datasets/``),

and only then downloads the four IDX files into its own cache: from the first mirror that answers
(the built-in ones, or those listed in ``GLASSNET_MIRRORS``: comma-separated base URLs in which
``{dataset}`` stands for the dataset's folder name),
with a progress bar, checking each file's published SHA-256 and moving it into place only once it
matched. Local copies are not hash-checked (a re-compressed but identical file is fine); they are
parsed with every IDX field checked instead.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glassnet.datasets._idx import read_idx

__all__ = ["DatasetSpec", "DatasetUnavailableError", "candidate_folders", "fetch", "load"]

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class DatasetUnavailableError(OSError):
    """The dataset is in none of the places looked at and could not be downloaded."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives: its folder name, published checksums, mirrors and Keras's cache."""

    name: str  # folder name: "mnist", "fashion-mnist"
    title: str  # for messages: "MNIST"
    sha256: dict  # file name -> published SHA-256 of the original download
    mirrors: tuple  # base URLs, tried in order
    keras_npz: str | None = None  # Keras's single-file cache, if it has one
    keras_folder: str | None = None  # Keras's per-file cache folder, if any
    class_names: tuple = field(default=tuple(str(i) for i in range(10)))


def cache_dir() -> Path:
    """glassnet's own cache folder."""
    if os.environ.get("GLASSNET_CACHE"):
        return Path(os.environ["GLASSNET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "glassnet"


def _keras_datasets_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def candidate_folders(spec: DatasetSpec) -> list[tuple[str, Path]]:
    """The places looked at, in order, as (description, path)."""
    places = []
    if os.environ.get("GLASSNET_DATA"):
        places.append(("$GLASSNET_DATA", Path(os.environ["GLASSNET_DATA"]) / spec.name))
    places.append(("glassnet cache", cache_dir() / "datasets" / spec.name))
    if spec.keras_npz:
        places.append(("Keras cache", _keras_datasets_dir() / spec.keras_npz))
    if spec.keras_folder:
        places.append(("Keras cache", _keras_datasets_dir() / spec.keras_folder))
    places.append(("Debian datasets", Path("/usr/share/datasets") / spec.name))
    return places


def _complete(path: Path) -> bool:
    if path.suffix == ".npz":
        return path.is_file()
    return all((path / name).is_file() for name in FILES)


def _read_folder(folder: Path):
    x_train = read_idx(folder / FILES[0], expected_ndim=3)
    y_train = read_idx(folder / FILES[1], expected_ndim=1)
    x_test = read_idx(folder / FILES[2], expected_ndim=3)
    y_test = read_idx(folder / FILES[3], expected_ndim=1)
    for images, labels, which in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if len(images) != len(labels):
            raise ValueError(
                f"{folder}: {which} has {len(images)} images but {len(labels)} labels."
            )
    return (x_train, y_train), (x_test, y_test)


def _read_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable Keras dataset file: {exc}") from None


def _progress(name: str, done: int, total: int | None, stream) -> None:
    if not stream.isatty():
        return
    if total:
        width = 30
        filled = int(width * done / total)
        stream.write(
            f"\r{name}: [{'=' * filled}{' ' * (width - filled)}] "
            f"{done / 1e6:5.1f}/{total / 1e6:.1f} MB"
        )
    else:
        stream.write(f"\r{name}: {done / 1e6:5.1f} MB")
    stream.flush()


def _download(url: str, target: Path, sha256: str, stream, timeout: float) -> None:
    """Download ``url`` to ``target`` if its SHA-256 matches; nothing is left behind if not."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                _progress(target.name, done, total, stream)
        if stream.isatty():
            stream.write("\n")
        if digest.hexdigest() != sha256:
            raise ValueError(
                f"SHA-256 mismatch for {url}: got {digest.hexdigest()}, "
                f"expected {sha256} (corrupt or tampered download; not cached)"
            )
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def fetch(
    spec: DatasetSpec,
    mirrors=None,
    destination: Path | None = None,
    stream=None,
    timeout: float = 30.0,
) -> Path:
    """Download the dataset's four files into ``destination`` (the cache by default).

    Each file comes from the first mirror that serves it with the right SHA-256; files already
    there are kept. Returns the folder.

    Raises:
        DatasetUnavailableError: if some file could not be had from any mirror.
    """
    stream = stream or sys.stderr
    folder = destination or cache_dir() / "datasets" / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    if mirrors is None and os.environ.get("GLASSNET_MIRRORS"):
        mirrors = [
            m.strip().format(dataset=spec.name)
            for m in os.environ["GLASSNET_MIRRORS"].split(",")
            if m.strip()
        ]
    for name in FILES:
        target = folder / name
        if target.is_file():
            continue
        errors = []
        for base in mirrors or spec.mirrors:
            url = base.rstrip("/") + "/" + name
            stream.write(f"Downloading {url}\n")
            try:
                _download(url, target, spec.sha256[name], stream, timeout)
                break
            except (OSError, ValueError, urllib.error.URLError) as exc:
                errors.append(f"{url}: {exc}")
        else:
            raise DatasetUnavailableError(
                f"Could not download {spec.title} file {name}:\n  " + "\n  ".join(errors)
            )
    return folder


def load(spec: DatasetSpec, download: bool = True):
    """``((x_train, y_train), (x_test, y_test))`` from the first place that has the dataset."""
    for _, path in candidate_folders(spec):
        if _complete(path):
            return _read_npz(path) if path.suffix == ".npz" else _read_folder(path)
    looked = "\n  ".join(f"{what}: {path}" for what, path in candidate_folders(spec))
    if not download:
        raise DatasetUnavailableError(f"{spec.title} was not found. Looked in:\n  {looked}")
    try:
        return _read_folder(fetch(spec))
    except DatasetUnavailableError as exc:
        raise DatasetUnavailableError(
            f"{spec.title} was not found locally and could not be downloaded.\n"
            f"Looked in:\n  {looked}\n{exc}\n"
            f"Fix: set GLASSNET_DATA to a folder holding {spec.name}/ with the four IDX .gz files."
        ) from None
