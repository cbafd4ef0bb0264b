"""IMDB as keras.datasets.imdb: found before fetched, downloaded from a server on localhost and
checked against its hash, processed as Keras processes it, and never a pickle that runs code."""

import hashlib
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from glassnet.datasets import DatasetUnavailableError, imdb


def ragged(rows):
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def write_npz(path, x_train, y_train, x_test, y_test):
    """An imdb.npz as Keras's: ragged lists of word ranks in object arrays (pickled)."""
    np.savez(path, x_train=ragged(x_train), y_train=np.array(y_train), x_test=ragged(x_test),
             y_test=np.array(y_test))  # fmt: skip
    return path


TRAIN = [[5, 1, 7], [2, 2, 2, 2, 9], [4], [1, 3, 8, 6]]
TEST = [[6, 6], [7, 1, 2, 3, 4, 5], [9, 8]]


@pytest.fixture
def small_imdb(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "imdb"
    folder.mkdir(parents=True)
    write_npz(folder / "imdb.npz", TRAIN, [1, 0, 1, 0], TEST, [0, 1, 1])
    (folder / "imdb_word_index.json").write_text(json.dumps({"the": 1, "movie": 2, "good": 3}))
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "data"))
    return folder


def keras_order(n, seed, first):
    """The order Keras's load_data shuffles a split into (train first, then test)."""
    rng = np.random.RandomState(seed)
    train = np.arange(4)
    rng.shuffle(train)
    test = np.arange(3)
    rng.shuffle(test)
    return train if first else test


def test_load_data_as_keras_processes_it(small_imdb):
    (x_train, y_train), (x_test, y_test) = imdb.load_data()
    order = keras_order(4, 113, first=True)
    assert x_train.dtype == object and len(x_train) == 4
    assert x_train[0] == [1] + [w + 3 for w in TRAIN[order[0]]]  # start_char, then ranks + 3
    assert y_train.tolist() == np.array([1, 0, 1, 0])[order].tolist()
    test_order = keras_order(3, 113, first=False)
    assert x_test[1] == [1] + [w + 3 for w in TEST[test_order[1]]]
    # num_words: ids ≥ num_words become oov_char; skip_top: so do the most frequent
    (x_small, _), _ = imdb.load_data(num_words=8, skip_top=5, seed=0)
    assert all(w == 2 or 5 <= w < 8 for review in x_small for w in review)
    # maxlen drops reviews of maxlen ids or more (with start_char counted), labels with them
    (x_short, y_short), (xt_short, _) = imdb.load_data(maxlen=4)
    assert all(len(r) < 4 for r in x_short) and len(y_short) == len(x_short) == 1
    assert len(xt_short) == 2  # [6, 6] and [9, 8], with the start id: 3 each
    (x_plain, _), _ = imdb.load_data(start_char=None, index_from=0, oov_char=None, seed=1)
    # As Keras: num_words defaults to the largest id, which `w < num_words` then leaves out.
    assert sorted(map(tuple, x_plain)) == sorted(tuple(w for w in r if w < 9) for r in TRAIN)
    with pytest.raises(ValueError, match="no sequence was kept. Increase maxlen"):
        imdb.load_data(maxlen=1)
    assert imdb.get_word_index() == {"the": 1, "movie": 2, "good": 3}


def test_downloaded_from_a_mirror_and_checked(server, tmp_path, monkeypatch):
    base, root = server
    (root / "imdb").mkdir()
    npz = write_npz(root / "imdb" / "imdb.npz", TRAIN, [1, 0, 1, 0], TEST, [0, 1, 1])
    index = root / "imdb" / "imdb_word_index.json"
    index.write_text(json.dumps({"a": 1}))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("GLASSNET_MIRRORS", f"{base}/{{dataset}}/")
    monkeypatch.setattr(imdb, "HASHES", {
        "imdb.npz": hashlib.sha256(npz.read_bytes()).hexdigest(),
        "imdb_word_index.json": hashlib.md5(index.read_bytes()).hexdigest(),  # Keras's is MD5
    })  # fmt: skip
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == 4
    assert imdb.get_word_index() == {"a": 1}
    cached = tmp_path / "cache" / "datasets" / "imdb"  # GLASSNET_CACHE, set for every test
    assert sorted(p.name for p in cached.iterdir()) == ["imdb.npz", "imdb_word_index.json"]
    # a file that does not match the published hash is refused, and nothing is cached
    (cached / "imdb.npz").unlink()
    monkeypatch.setitem(imdb.HASHES, "imdb.npz", "0" * 64)
    with pytest.raises(DatasetUnavailableError, match="SHA-256 mismatch"):
        imdb.load_data()
    assert not (cached / "imdb.npz").exists()


class Boom:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_pickle_that_runs_code_is_refused(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "imdb"
    folder.mkdir()
    payload = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        payload, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    payload.write(pickle.dumps(Boom()))
    with zipfile.ZipFile(folder / "imdb.npz", "w") as zf:
        for name in ("x_train", "x_test"):
            zf.writestr(f"{name}.npy", b"\x93NUMPY\x01\x00" + payload.getvalue()[8:])
        buffer = io.BytesIO()
        np.save(buffer, np.array([1]))
        zf.writestr("y_train.npy", buffer.getvalue())
        zf.writestr("y_test.npy", buffer.getvalue())
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=r"not a readable IMDB file: refused to load "
                       r"builtins\.print: not an array"):  # fmt: skip
        imdb.load_data()
    assert "this ran" not in capsys.readouterr().out


def test_labels_and_ids_are_checked(tmp_path, monkeypatch):
    folder = tmp_path / "imdb"
    folder.mkdir()
    write_npz(folder / "imdb.npz", [[1, -3]], [1], [[2]], [0])
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=r"x_train must hold lists of word ids \(ints ≥ 0\)"):
        imdb.load_data()
    write_npz(folder / "imdb.npz", [[1]], [7], [[2]], [0])
    with pytest.raises(ValueError, match=r"y_train must hold labels 0 and 1"):
        imdb.load_data()


def test_kerass_imdb_lstm_script_runs_to_its_end(tmp_path):
    """Keras's classic imdb_lstm.py, only its imports changed, on an IMDB-shaped file small
    enough for a test (the real IMDB is not on this machine): every line of it runs."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    rng = np.random.default_rng(0)
    folder = tmp_path / "imdb"
    folder.mkdir()
    # "positive" reviews use words 1–50 more, "negative" ones 50–100: something to learn
    labels = rng.integers(0, 2, 64)
    reviews = [(rng.integers(1, 60, rng.integers(5, 120)) + 40 * (1 - y)).tolist() for y in labels]
    write_npz(folder / "imdb.npz", reviews[:48], labels[:48], reviews[48:], labels[48:])
    script = Path(__file__).parent / "scripts" / "imdb_lstm.py"
    env = {**os.environ, "GLASSNET_DATA": str(tmp_path)}
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "x_train shape: (48, 80)" in run.stdout and "Epoch 15/15" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].startswith("Test accuracy: ")  # its last line
