"""CIFAR-10 as keras.datasets.cifar10: Toronto's archive (Python pickles, channels first) found
before fetched, downloaded from a server on localhost and checked against its hash, turned into
Keras's arrays, and never a pickle that runs code. The archives here are small ones of the
same layout: the real one (163 MB) is not on this machine."""

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from glassnet.datasets import DatasetUnavailableError, cifar10


def batch(n, seed):
    """One batch as Toronto pickled it: b"data" rows of red, green, blue planes; b"labels"."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"a batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"x.png"] * n,
    }


def write_archive(path, batches=None):
    batches = batches or {**{f"data_batch_{i}": batch(4, i) for i in range(1, 6)},
                          "test_batch": batch(3, 9)}  # fmt: skip
    with tarfile.open(path, "w:gz") as archive:
        for name, content in batches.items():
            data = content if isinstance(content, bytes) else pickle.dumps(content, protocol=4)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def local_cifar(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "data"))
    return write_archive(folder / cifar10.ARCHIVE)


def test_the_arrays_are_keras_s_channels_last_with_labels_in_a_column(local_cifar):
    (x_train, y_train), (x_test, y_test) = cifar10.load_data()
    assert x_train.shape == (20, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    assert y_train.shape == (20, 1) and y_test.shape == (3, 1)
    assert x_train.dtype == y_train.dtype == np.uint8
    first = batch(4, 1)
    red, green, blue = first[b"data"][0].reshape(3, 32, 32)  # the planes, as Toronto stores them
    assert (x_train[0, ..., 0] == red).all() and (x_train[0, ..., 2] == blue).all()
    assert (x_train[0, 5, 7] == [red[5, 7], green[5, 7], blue[5, 7]]).all()  # one pixel's RGB
    assert y_train[:4, 0].tolist() == first[b"labels"]
    assert y_test[:, 0].tolist() == batch(3, 9)[b"labels"]


def test_downloaded_from_a_mirror_and_checked(server, tmp_path, monkeypatch):
    base, root = server
    (root / "cifar10").mkdir()
    archive = write_archive(root / "cifar10" / cifar10.ARCHIVE)
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("GLASSNET_MIRRORS", f"{base}/{{dataset}}/")
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    (x_train, _), _ = cifar10.load_data()
    assert len(x_train) == 20
    cached = tmp_path / "cache" / "datasets" / "cifar10" / cifar10.ARCHIVE
    assert cached.is_file()
    cached.unlink()  # a file that does not match the published hash is refused, not kept
    monkeypatch.setattr(cifar10, "SHA256", "0" * 64)
    with pytest.raises(DatasetUnavailableError) as caught:
        cifar10.load_data()
    assert "CIFAR-10's cifar-10-python.tar.gz was not found locally" in str(caught.value)
    assert "SHA-256 mismatch" in str(caught.value) and not cached.exists()
    assert "Fix: put cifar-10-python.tar.gz in $GLASSNET_DATA/cifar10/." in str(caught.value)


class Boom:
    def __reduce__(self):
        return (print, ("this ran",))


def bad(**changes):
    batches = {**{f"data_batch_{i}": batch(2, i) for i in range(1, 6)}, "test_batch": batch(2, 9)}
    batches.update(changes)
    return batches


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        (bad(data_batch_3=pickle.dumps({b"data": Boom()})), "refused to load builtins.print"),
        (bad(test_batch=b"not a pickle"), "test_batch is not a readable CIFAR-10 batch"),
        (bad(data_batch_2={b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}),
         "data_batch_2 must hold its images as uint8 rows of 3,072 values"),
        (bad(data_batch_1={b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
         "data_batch_1 must hold one label 0–9 per image"),
        ({"data_batch_1": batch(2, 1)}, "is not CIFAR-10's archive: it has no data_batch_2"),
    ],
)  # fmt: skip
def test_a_crafted_or_broken_archive_is_refused_with_what_is_wrong(
    tmp_path, monkeypatch, capsys, batches, message
):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    write_archive(folder / cifar10.ARCHIVE, batches)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(ValueError) as caught:
        cifar10.load_data()
    assert message in str(caught.value)
    assert "this ran" not in capsys.readouterr().out


def test_not_a_gzip_at_all(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / cifar10.ARCHIVE).write_bytes(b"hello")
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="is not a readable CIFAR-10 archive"):
        cifar10.load_data()
