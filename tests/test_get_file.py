"""keras.utils.get_file, against a server on localhost: found before fetched, downloaded into
Keras's cache atomically, checked against a hash, archives unpacked safely, with Keras's names."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from glassnet.utils import get_file


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home" / "datasets"


def test_a_file_is_downloaded_once_into_keras_cache(server, cache):
    base, root = server
    (root / "words.txt").write_text("the cat sat")
    path = get_file("words.txt", origin=f"{base}/words.txt")
    assert path == str(cache / "words.txt") and Path(path).read_text() == "the cat sat"
    (root / "words.txt").write_text("changed on the server")
    assert Path(get_file("words.txt", origin=f"{base}/words.txt")).read_text() == "the cat sat"
    again = get_file(origin=f"{base}/words.txt", force_download=True)  # name from the URL
    assert Path(again).read_text() == "changed on the server"


def test_a_hash_is_checked_both_ways(server, cache, capsys):
    base, root = server
    (root / "data.bin").write_bytes(b"0123456789")
    good = hashlib.sha256(b"0123456789").hexdigest()
    path = get_file("data.bin", origin=f"{base}/data.bin", file_hash=good)
    (cache / "data.bin").write_bytes(b"truncated")  # a cached copy that no longer matches
    assert get_file("data.bin", origin=f"{base}/data.bin", file_hash=good) == path
    assert Path(path).read_bytes() == b"0123456789"
    assert "hash does not match" in capsys.readouterr().err
    md5 = hashlib.md5(b"0123456789").hexdigest()
    assert get_file("data.bin", origin=f"{base}/data.bin", md5_hash=md5, force_download=True)
    with pytest.raises(ValueError, match="SHA-256 mismatch .* not cached"):
        get_file("other.bin", origin=f"{base}/data.bin", file_hash="0" * 64)
    assert not (cache / "other.bin").exists() and not list(cache.glob(".*.part"))


def test_an_archive_is_unpacked_with_keras_names(server, cache):
    base, root = server
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"hello"
        info = tarfile.TarInfo("corpus/a.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (root / "corpus.tar.gz").write_bytes(buffer.getvalue())
    folder = get_file("corpus.tar.gz", origin=f"{base}/corpus.tar.gz", extract=True)
    assert folder == str(cache / "corpus_extracted")  # Keras 3: fname with an extension
    assert Path(folder, "corpus", "a.txt").read_text() == "hello"
    with zipfile.ZipFile(root / "pack.zip", "w") as zf:
        zf.writestr("b.txt", "zipped")
    folder = get_file(origin=f"{base}/pack.zip", extract=True)  # no fname: the URL's name
    assert folder == str(cache / "pack.zip") and Path(folder, "b.txt").read_text() == "zipped"


def test_an_archive_that_reaches_outside_is_refused(server, cache):
    base, root = server
    with zipfile.ZipFile(root / "evil.zip", "w") as zf:
        zf.writestr("../escaped.txt", "gotcha")
    with pytest.raises(ValueError, match="unsafe name: '../escaped.txt'; nothing was extracted"):
        get_file("evil.zip", origin=f"{base}/evil.zip", extract=True)
    assert not (cache / "escaped.txt").exists() and not (cache / "evil_extracted").exists()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    (root / "evil.tar").write_bytes(buffer.getvalue())
    with pytest.raises(tarfile.TarError):
        get_file("evil.tar", origin=f"{base}/evil.tar", extract=True)


def test_glassnet_data_is_looked_in_first(server, cache, tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    (local / "words.txt").write_text("from here")
    monkeypatch.setenv("GLASSNET_DATA", str(local))
    path = get_file("words.txt", origin=f"{server[0]}/missing.txt")  # never fetched
    assert path == str(local / "words.txt")
    with zipfile.ZipFile(local / "pack.zip", "w") as zf:
        zf.writestr("b.txt", "zipped here")
    folder = get_file(origin=f"{server[0]}/missing.zip", fname="pack.zip", extract=True)
    assert folder == str(cache / "pack_extracted")  # unpacked from GLASSNET_DATA's copy
    assert Path(folder, "b.txt").read_text() == "zipped here"


def test_bad_requests_say_what_is_wrong(server, cache):
    base, _ = server
    with pytest.raises(ValueError, match='specify the "origin" argument'):
        get_file("x.txt")
    with pytest.raises(ValueError, match="Paths are no longer accepted as the `fname`"):
        get_file("sub/x.txt", origin=f"{base}/x.txt")
    with pytest.raises(ValueError, match="Can't parse the file name from the origin"):
        get_file(origin=f"{base}/")
    with pytest.raises(ValueError, match="Expected 'auto', 'md5' or 'sha256'"):
        get_file("x.txt", origin=f"{base}/x.txt", hash_algorithm="sha1")
    with pytest.raises(OSError, match="URL fetch failure on .*missing.txt"):
        get_file("missing.txt", origin=f"{base}/missing.txt")
    assert not (cache / "missing.txt").exists()
