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
import http.client
import os
import sys
import time
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
    image_shape: tuple = (28, 28)


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


def check_split(spec: DatasetSpec, images, labels, source: str) -> None:
    """Images and labels as the dataset has them, or a ``ValueError`` naming ``source``.

    uint8 images of the dataset's size (28×28), at least one; as many uint8 labels, each a class
    the dataset has — so a stray label of 200 cannot quietly make a 201-class model.
    """
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != spec.image_shape:
        raise ValueError(
            f"{source}: the images are {images.dtype} of shape {images.shape}; {spec.title} "
            f"images are uint8 of shape (n, {spec.image_shape[0]}, {spec.image_shape[1]})."
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{source}: the labels are {labels.dtype} of shape {labels.shape}; {spec.title} "
            "labels are uint8 of shape (n,)."
        )
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"{source}: {len(images)} images but {len(labels)} labels.")
    k = len(spec.class_names)
    if labels.max() >= k:
        bad = np.unique(labels[labels >= k])[:5].tolist()
        raise ValueError(
            f"{source}: labels {bad} are not classes of {spec.title}, which has {k} (0–{k - 1})."
        )


def _read_folder(folder: Path, spec: DatasetSpec):
    x_train = read_idx(folder / FILES[0], expected_ndim=3)
    y_train = read_idx(folder / FILES[1], expected_ndim=1)
    x_test = read_idx(folder / FILES[2], expected_ndim=3)
    y_test = read_idx(folder / FILES[3], expected_ndim=1)
    check_split(spec, x_train, y_train, f"{folder} (train files)")
    check_split(spec, x_test, y_test, f"{folder} (t10k files)")
    return (x_train, y_train), (x_test, y_test)


def _read_npz(path: Path, spec: DatasetSpec):
    try:
        with np.load(path, allow_pickle=False) as f:
            train, test = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable Keras dataset file: {exc}") from None
    check_split(spec, *train, f"{path} (x_train, y_train)")
    check_split(spec, *test, f"{path} (x_test, y_test)")
    return train, test


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


MAX_DOWNLOAD = 64 << 20  # bytes: the largest file (Fashion-MNIST's train images) is 26 MB
DEADLINE = 600.0  # seconds for one file, however slowly it trickles in


def _part_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}.part"


def _remove_stale_parts(folder: Path) -> None:
    """Half-downloaded files left by a process that was killed (it is gone now)."""
    for part in folder.glob(".*.*.part"):
        try:
            os.kill(int(part.name.rsplit(".", 2)[1]), 0)
        except ProcessLookupError:
            part.unlink(missing_ok=True)
        except (ValueError, OSError):
            continue


def _download(url, target: Path, sha256, stream, timeout, max_bytes=None, deadline=None):
    """Download ``url`` to ``target`` if its SHA-256 matches; nothing is left behind if not.
    (A 32-digit ``sha256`` is an MD5, where that is all the publisher gives, as for IMDB's word
    index.)

    At most ``max_bytes`` are accepted and the whole file must arrive within ``deadline``
    seconds; each wait for data is bounded by ``timeout``.
    """
    max_bytes = MAX_DOWNLOAD if max_bytes is None else max_bytes
    deadline = DEADLINE if deadline is None else deadline
    tmp = _part_name(target)
    start = time.monotonic()
    try:
        digest = hashlib.md5(usedforsecurity=False) if len(sha256) == 32 else hashlib.sha256()
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            if total and total > max_bytes:
                raise ValueError(f"{url} announces {total:,} bytes; at most {max_bytes:,} taken.")
            done = 0
            while chunk := resp.read1(1 << 16):  # returns what has arrived: the clock is read
                done += len(chunk)
                if done > max_bytes:
                    raise ValueError(f"{url} sent more than {max_bytes:,} bytes; stopped.")
                if time.monotonic() - start > deadline:
                    raise TimeoutError(
                        f"{url} is too slow: {done:,} bytes in {deadline:g} s; gave up."
                    )
                out.write(chunk)
                digest.update(chunk)
                _progress(target.name, done, total, stream)
        if stream.isatty():
            stream.write("\n")
        if digest.hexdigest() != sha256:
            raise ValueError(
                f"{'MD5' if len(sha256) == 32 else 'SHA-256'} mismatch for {url}: got "
                f"{digest.hexdigest()}, "
                f"expected {sha256} (corrupt or tampered download; not cached)"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
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
    _remove_stale_parts(folder)
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
            except (OSError, ValueError, urllib.error.URLError, http.client.HTTPException) as exc:
                stream.write(f"  failed: {exc}\n")
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
            return _read_npz(path, spec) if path.suffix == ".npz" else _read_folder(path, spec)
    looked = "\n  ".join(f"{what}: {path}" for what, path in candidate_folders(spec))
    if not download:
        raise DatasetUnavailableError(f"{spec.title} was not found. Looked in:\n  {looked}")
    try:
        return _read_folder(fetch(spec), spec)
    except DatasetUnavailableError as exc:
        raise DatasetUnavailableError(
            f"{spec.title} was not found locally and could not be downloaded.\n"
            f"Looked in:\n  {looked}\n{exc}\n"
            f"Fix: set GLASSNET_DATA to a folder holding {spec.name}/ with the four IDX .gz files."
        ) from None
