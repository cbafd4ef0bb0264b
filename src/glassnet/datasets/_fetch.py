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
import pickle
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glassnet.datasets._idx import read_idx

__all__ = [
    "DatasetSpec",
    "DatasetUnavailableError",
    "candidate_folders",
    "fetch",
    "get_file",
    "load",
]

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
    index; None checks nothing, for ``get_file`` without a hash.)

    At most ``max_bytes`` are accepted and the whole file must arrive within ``deadline``
    seconds; each wait for data is bounded by ``timeout``.
    """
    max_bytes = MAX_DOWNLOAD if max_bytes is None else max_bytes
    deadline = DEADLINE if deadline is None else deadline
    tmp = _part_name(target)
    start = time.monotonic()
    try:
        md5 = sha256 is not None and len(sha256) == 32
        digest = hashlib.md5(usedforsecurity=False) if md5 else hashlib.sha256()
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
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(
                f"{'MD5' if md5 else 'SHA-256'} mismatch for {url}: got "
                f"{digest.hexdigest()}, "
                f"expected {sha256} (corrupt or tampered download; not cached)"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ArraysOnly(pickle.Unpickler):
    """Unpickles NumPy arrays, Python's lists, dicts, strings and ints, and nothing else: a
    crafted file fails instead of running code (a pickle may name any function to call)."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })  # fmt: skip

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: not an array")
        return super().find_class(module, name)


def find_file(dataset: str, name: str, sha256, origin: str, stream=None, timeout: float = 30.0,
              max_bytes=None, fix: str = "", title: str = "") -> Path:  # fmt: skip
    """A dataset kept as Keras keeps it, one file: the first copy of ``name`` found in
    ``$GLASSNET_DATA/<dataset>/``, glassnet's cache, Keras's cache (``~/.keras/datasets/``) or
    ``/usr/share/datasets/<dataset>/``; else downloaded from ``origin`` (a folder URL, or the
    mirrors in ``GLASSNET_MIRRORS``) into glassnet's cache, kept only if its ``sha256`` (an MD5
    where that is all the publisher gives) matches."""
    places = []
    if os.environ.get("GLASSNET_DATA"):
        places.append(("$GLASSNET_DATA", Path(os.environ["GLASSNET_DATA"]) / dataset / name))
    places += [
        ("glassnet cache", cache_dir() / "datasets" / dataset / name),
        ("Keras cache", _keras_datasets_dir() / name),
        ("Debian datasets", Path("/usr/share/datasets") / dataset / name),
    ]
    for _, path in places:
        if path.is_file():
            return path
    looked = "\n  ".join(f"{what}: {path}" for what, path in places)
    if sha256 is None:
        raise DatasetUnavailableError(f"{name} was not found. Looked in:\n  {looked}")
    stream = stream or sys.stderr
    folder = cache_dir() / "datasets" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(folder)
    mirrors = [
        m.strip().format(dataset=dataset)
        for m in os.environ.get("GLASSNET_MIRRORS", "").split(",")
        if m.strip()
    ] or [origin]
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        stream.write(f"Downloading {url}\n")
        try:
            _download(url, folder / name, sha256, stream, timeout, max_bytes=max_bytes)
            return folder / name
        except (OSError, ValueError) as exc:  # URLError and HTTP errors are OSErrors
            errors.append(f"{url}: {exc}")
    raise DatasetUnavailableError(
        f"{title} {name} was not found locally and could not be downloaded.\nLooked in:\n  "
        f"{looked}\n  " + "\n  ".join(errors) + f"\n{fix}"
    )


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


# ---- any file, as keras.utils.get_file --------------------------------------------------------

MAX_FILE = 8 << 30  # bytes: get_file's download and an archive's unpacked contents, each


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def _hash_matches(path: Path, file_hash: str, algorithm: str) -> bool:
    md5 = algorithm == "md5" or (algorithm == "auto" and len(file_hash) == 32)
    digest = hashlib.md5(usedforsecurity=False) if md5 else hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == file_hash.lower()


def _extract(archive: Path, folder: Path, archive_format) -> bool:
    """Unpack a tar or zip ``archive`` into ``folder``, refusing members that would land outside
    it (absolute paths, ``..``, links out), devices, and more than MAX_FILE bytes in all. The
    contents appear in ``folder`` all at once, or not at all."""
    import shutil
    import tarfile
    import zipfile

    formats = ["tar", "zip"] if archive_format == "auto" else archive_format or []
    formats = [formats] if isinstance(formats, str) else list(formats)
    staging = folder.parent / f".{folder.name}.{os.getpid()}.part"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if "tar" in formats and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                if sum(m.size for m in members) > MAX_FILE:
                    raise ValueError(f"{archive} unpacks to more than {MAX_FILE:,} bytes.")
                tar.extractall(staging, filter="data")  # no escapes, links or devices
        elif "zip" in formats and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                if sum(i.file_size for i in infos) > MAX_FILE:
                    raise ValueError(f"{archive} unpacks to more than {MAX_FILE:,} bytes.")
                for info in infos:
                    parts = Path(info.filename.replace("\\", "/")).parts
                    if (
                        info.filename.startswith(("/", "\\"))
                        or ".." in parts
                        or (parts and ":" in parts[0])
                    ):
                        raise ValueError(
                            f"{archive} holds a member with an unsafe name: {info.filename!r}; "
                            "nothing was extracted."
                        )
                zf.extractall(staging)
        else:
            return False
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False, stream=None,
             timeout: float = 30.0) -> str:  # fmt: skip
    """A file from ``origin``, found before it is fetched (``keras.utils.get_file``).

    Looks first in ``$GLASSNET_DATA`` (the file, or an archive's unpacked folder, under the name
    it would be given in the cache; an archive found there is unpacked into the cache), then in
    Keras's cache (``~/.keras/datasets/``, or ``cache_dir``/``cache_subdir``), and only
    then downloads, with a progress bar, into that cache, atomically: a broken download leaves
    nothing behind. With ``file_hash`` (SHA-256, or MD5) a cached file that does not match is
    fetched again and a download that does not match is refused. ``extract=True`` unpacks a tar
    or zip archive next to it and returns the folder (Keras's names: ``fname_extracted`` where
    ``fname`` has an extension), refusing members that would land outside it.

    Returns the path, as a string.
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if hash_algorithm not in ("auto", "md5", "sha256"):
        raise ValueError(
            f"Received hash_algorithm={hash_algorithm!r}. Expected 'auto', 'md5' or 'sha256'."
        )
    given = os.fspath(fname) if fname else None
    if given is None:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(
                f"Can't parse the file name from the origin provided: '{origin}'. Please "
                "specify the `fname` argument."
            )
    else:
        fname = given
        if os.sep in fname or "/" in fname:
            raise ValueError(
                "Paths are no longer accepted as the `fname` argument. To specify the file's "
                f"parent directory, use the `cache_dir` argument. Received: fname={fname}"
            )
    folder = Path(os.path.expanduser(cache_dir)) if cache_dir else _keras_home()
    folder = folder / cache_subdir
    unpack = extract or untar
    if unpack and given and "." in fname:
        download_name, result_name = fname, f"{fname[: fname.find('.')]}_extracted"
    elif unpack:
        download_name, result_name = f"{fname}_archive", fname
    else:
        download_name = result_name = fname
    target = folder / download_name
    if os.environ.get("GLASSNET_DATA") and not force_download:  # found before fetched
        local = Path(os.environ["GLASSNET_DATA"])
        if unpack and (local / result_name).is_dir():
            return str(local / result_name)
        copy = next((local / n for n in (fname, download_name) if (local / n).is_file()), None)
        if copy is not None and (file_hash is None
                                 or _hash_matches(copy, file_hash, hash_algorithm)):  # fmt: skip
            if not unpack:
                return str(copy)
            target = copy  # unpacked into the cache, from where it lies
    folder.mkdir(parents=True, exist_ok=True)
    fetch_it = force_download or not target.is_file()
    if not fetch_it and file_hash is not None and not _hash_matches(target, file_hash,
                                                                     hash_algorithm):  # fmt: skip
        (stream or sys.stderr).write(
            f"{target} was found, but its {hash_algorithm} hash does not match {file_hash}: "
            "it is incomplete or outdated, so it is downloaded again.\n"
        )
        fetch_it = True
    if fetch_it:
        stream = stream or sys.stderr
        stream.write(f"Downloading data from {origin}\n")
        _remove_stale_parts(folder)
        expected = file_hash.lower() if file_hash else None
        if expected and hash_algorithm == "md5" and len(expected) != 32:
            raise ValueError(f"Received an MD5 file_hash of {len(expected)} digits; MD5 has 32.")
        if expected and hash_algorithm == "sha256" and len(expected) != 64:
            raise ValueError(f"Received a SHA-256 file_hash of {len(expected)} digits; it has 64.")
        try:
            _download(origin, target, expected, stream, timeout, max_bytes=MAX_FILE,
                      deadline=float("inf"))  # fmt: skip
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            raise OSError(f"URL fetch failure on {origin}: {exc}") from exc
    if unpack:
        result = folder / result_name
        if not _extract(target, result, "tar" if untar else archive_format):
            warnings.warn(f"Could not extract archive {target}.", stacklevel=2)
        return str(result)
    return str(target)
