"""Datasets: IDX parsing with every check, the lookup order, and downloads from a local server."""

import gzip
import hashlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from glassnet.datasets import DatasetUnavailableError, _fetch, _idx, mnist


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(data)


def tiny_dataset(folder: Path, n_train=5, n_test=3) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, size=n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, size=n_test),
    }
    for name, arr in arrays.items():
        write_gz(folder / name, idx_bytes(arr))
    return arrays


# ---- IDX ---------------------------------------------------------------------------------------


def test_reads_what_it_wrote(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_gz(tmp_path / "a.gz", idx_bytes(arr))
    np.testing.assert_array_equal(_idx.read_idx(tmp_path / "a.gz", expected_ndim=3), arr)


def test_truncated_data_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_gz(path, idx_bytes(np.zeros((2, 3, 4)))[:-5])
    with pytest.raises(
        ValueError,
        match=f"{path} is truncated: its header announces shape "
        r"\(2, 3, 4\), 24 bytes of data, but 19 bytes follow",
    ):
        _idx.read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    write_gz(path, idx_bytes(np.zeros(1000)))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match=f"{path} is not a readable gzip file"):
        _idx.read_idx(path)


def test_wrong_magic_number(tmp_path):
    path = tmp_path / "x.gz"
    write_gz(path, b"PK\x03\x04 not idx at all")
    with pytest.raises(
        ValueError, match=f"{path} is not an IDX file: its magic number is 504b0304"
    ):
        _idx.read_idx(path)


def test_wrong_dimensions(tmp_path):
    path = tmp_path / "x.gz"
    write_gz(path, idx_bytes(np.zeros(4)))
    with pytest.raises(ValueError, match="holds a 1-dimensional array; expected 3 dimensions"):
        _idx.read_idx(path, expected_ndim=3)


def test_images_and_labels_must_agree(tmp_path):
    tiny_dataset(tmp_path / "mnist")
    write_gz(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(2)))
    with pytest.raises(ValueError, match=r"t10k files\): 3 images but 2 labels"):
        _fetch._read_folder(tmp_path / "mnist", mnist.SPEC)


# ---- where data is found --------------------------------------------------------------------


def test_glassnet_data_comes_first(tmp_path, monkeypatch):
    arrays = tiny_dataset(tmp_path / "data" / "mnist")
    tiny_dataset(tmp_path / "cache" / "datasets" / "mnist", n_train=7)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    (x, y), (xt, yt) = mnist.load_data()
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28)
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte.gz"])


def test_then_the_cache_then_keras(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    np.savez(
        tmp_path / "keras" / "datasets" / "mnist.npz",
        x_train=np.zeros((4, 28, 28), np.uint8),
        y_train=np.zeros(4, np.uint8),
        x_test=np.zeros((2, 28, 28), np.uint8),
        y_test=np.zeros(2, np.uint8),
    )
    assert mnist.load_data()[0][0].shape == (4, 28, 28)  # Keras's cache
    tiny_dataset(tmp_path / "cache" / "datasets" / "mnist")
    assert mnist.load_data()[0][0].shape == (5, 28, 28)  # glassnet's cache wins


def test_not_found_anywhere_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data()
    message = str(info.value)
    assert "MNIST was not found locally and could not be downloaded." in message
    assert f"$GLASSNET_DATA: {tmp_path / 'nothing' / 'mnist'}" in message
    assert "http://127.0.0.1:9/mnist/train-images-idx3-ubyte.gz" in message
    assert "Fix: set GLASSNET_DATA" in message


# ---- downloads, from a server on localhost -----------------------------------------------------


def spec_for(folder: Path) -> _fetch.DatasetSpec:
    sha = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in _fetch.FILES}
    return _fetch.DatasetSpec(name="tiny", title="Tiny", sha256=sha, mirrors=())


def test_download_verifies_and_caches(server, tmp_path):
    base, root = server
    arrays = tiny_dataset(root / "good")
    spec = spec_for(root / "good")
    dest = tmp_path / "dest"
    stream = io.StringIO()
    folder = _fetch.fetch(spec, mirrors=[f"{base}/good/"], destination=dest, stream=stream)
    (x, y), _ = _fetch._read_folder(folder, mnist.SPEC)
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte.gz"])
    assert sorted(p.name for p in dest.iterdir()) == sorted(_fetch.FILES)  # no partial files
    assert f"Downloading {base}/good/train-images-idx3-ubyte.gz" in stream.getvalue()


def test_corrupt_download_fails_its_checksum_and_is_not_cached(server, tmp_path):
    base, root = server
    tiny_dataset(root / "good")
    spec = spec_for(root / "good")
    tiny_dataset(root / "bad")
    corrupt = root / "bad" / "train-images-idx3-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:-10] + b"0123456789")
    dest = tmp_path / "dest"
    with pytest.raises(DatasetUnavailableError, match="SHA-256 mismatch for .*/bad/train-images"):
        _fetch.fetch(spec, mirrors=[f"{base}/bad/"], destination=dest, stream=io.StringIO())
    assert list(dest.iterdir()) == []


def test_unreachable_mirror_falls_through_to_the_next(server, tmp_path):
    base, root = server
    tiny_dataset(root / "good")
    spec = spec_for(root / "good")
    stream = io.StringIO()
    folder = _fetch.fetch(
        spec,
        mirrors=["http://127.0.0.1:9/", f"{base}/missing/", f"{base}/good/"],
        destination=tmp_path / "dest",
        stream=stream,
    )
    assert _fetch._complete(folder)
    assert "Downloading http://127.0.0.1:9/train-images-idx3-ubyte.gz" in stream.getvalue()


def test_load_downloads_into_the_cache_via_glassnet_mirrors(server, tmp_path, monkeypatch):
    base, root = server
    tiny_dataset(root / "mnist")
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("GLASSNET_MIRRORS", f"http://127.0.0.1:9/, {base}/{{dataset}}/")
    spec = spec_for(root / "mnist")
    spec = _fetch.DatasetSpec(name="mnist", title="MNIST", sha256=spec.sha256, mirrors=())
    (x, _), _ = _fetch.load(spec)
    assert x.shape == (5, 28, 28)
    assert _fetch._complete(_fetch.cache_dir() / "datasets" / "mnist")


# ---- the real data, where present ---------------------------------------------------------------


def test_real_mnist(mnist_arrays):
    x, y, xt, yt = mnist_arrays
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
