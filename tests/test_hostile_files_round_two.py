"""Hostile files, round two: HDF5 bombs (filters, declared shapes, links), glassnet 0.1's files,
optimizer state out of its domain, config arguments glassnet refuses in code, huge graphs.

Every case must end in one clear error naming the file, quickly, and a bomb must be refused at
a small cost in memory (measured in a child process: its peak RSS, against loading the real file).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest

import glassnet
from glassnet.layers import Dense, Input
from glassnet.models import Sequential, load_model

CLEAR_ERRORS = (ValueError, TypeError, NotImplementedError)


@pytest.fixture(scope="module")
def saved(small_saved_model):
    """The small trained model's file (Adam state included) and its members."""
    return small_saved_model[:2]


def zipped(members: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def with_h5(members: dict, change) -> bytes:
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as f:
        change(f)
    return zipped({**members, "model.weights.h5": buffer.getvalue()})


def with_config(members: dict, change) -> bytes:
    config = json.loads(members["config.json"])
    change(config)
    return zipped({**members, "config.json": json.dumps(config).encode()})


def layer_configs(config, kind: str) -> list[dict]:
    return [e["config"] for e in config["config"]["layers"] if e["class_name"] == kind]


KERNEL = "layers/dense/vars/0"


def _replace(f, key, **dataset):
    del f[key]
    f.create_dataset(key, **dataset)


H5_BOMBS = {
    "a gzip dataset inflating to 1 GiB": lambda f: _replace(
        f, KERNEL, shape=(16384, 16384), dtype="f4", compression="gzip", chunks=(1024, 1024),
        fillvalue=1.0),
    "an unallocated dataset declared at 1 GiB": lambda f: _replace(
        f, KERNEL, shape=(2**28,), dtype="f4"),
    "3,000 hard links to one dataset": lambda f: [
        f.__setitem__(f"layers/dense/copy{i}", f[KERNEL]) for i in range(3000)],
    "a hard-link cycle": lambda f: f["layers/dense"].__setitem__("loop", f["layers"]),
}  # fmt: skip


def _peak_megabytes(path) -> tuple[float, str]:
    """(peak RSS in MB, the outcome) of loading ``path`` in a child process: its VmHWM, since
    ru_maxrss would count the RSS of the test process it was forked from."""
    code = (
        "import sys\n"
        "from glassnet.models import load_model\n"
        "try:\n"
        f"    load_model({str(path)!r}); outcome = 'loaded'\n"
        "except (ValueError, TypeError, NotImplementedError) as exc:\n"
        "    outcome = 'refused: ' + str(exc)\n"
        "status = open('/proc/self/status').read().splitlines()\n"
        "print(int(next(x for x in status if x.startswith('VmHWM:')).split()[1]) / 1024)\n"
        "print(outcome)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    peak, outcome = done.stdout.strip().split("\n", 1)
    return float(peak), outcome


@pytest.mark.parametrize("name", list(H5_BOMBS))
def test_an_hdf5_bomb_is_refused_before_it_is_read(saved, tmp_path, name):
    path, members = saved
    bomb = tmp_path / "bomb.keras"
    bomb.write_bytes(with_h5(members, H5_BOMBS[name]))
    assert bomb.stat().st_size < 20 << 20  # a small file…
    baseline, outcome = _peak_megabytes(path)
    assert outcome == "loaded"
    start = time.perf_counter()
    peak, outcome = _peak_megabytes(bomb)
    assert outcome.startswith(f"refused: {bomb}"), outcome  # …refused, naming the file
    assert time.perf_counter() - start < 30
    assert peak < baseline + 300, f"{name}: {peak:.0f} MB against {baseline:.0f} MB"


def test_a_zipped_bomb_of_weights_is_refused_from_its_ratio(saved, tmp_path):
    _, members = saved
    bomb = tmp_path / "zipbomb.keras"
    bomb.write_bytes(zipped({**members, "model.weights.h5": bytes(1 << 30)}))
    with pytest.raises(ValueError, match=r"model.weights.h5 would inflate to 1,073,741,824 bytes"):
        load_model(bomb)


def test_weights_compressed_past_what_their_bytes_hold_are_refused(saved, tmp_path):
    """A config asking for a big layer whose weights are a small gzip dataset: the budget is
    what the stored bytes can hold, so nothing big is allocated."""
    _, members = saved

    def big(f):
        for key in list(f["layers/dense/vars"]):
            del f[f"layers/dense/vars/{key}"]
        f.create_dataset(KERNEL, shape=(4, 5_000_000), dtype="f4", compression="gzip",
                         chunks=(4, 100_000), fillvalue=0.5)  # fmt: skip
        f.create_dataset("layers/dense/vars/1", shape=(5_000_000,), dtype="f4",
                         compression="gzip", chunks=(100_000,))  # fmt: skip

    path = tmp_path / "big.keras"
    path.write_bytes(with_config(
        {**members, "model.weights.h5": zipfile.ZipFile(io.BytesIO(with_h5(members, big)))
         .read("model.weights.h5")},
        lambda c: layer_configs(c, "Dense")[0].update(units=5_000_000)))  # fmt: skip
    with pytest.raises(ValueError, match="more parameters than the weights hold"):
        load_model(path)


@pytest.mark.parametrize("dtype", ["int32", "bool", "int8"])
def test_glassnet_01_files_with_integer_weights_are_refused(saved, tmp_path, dtype):
    model = load_model(saved[0])
    arrays = {f"layers/{layer.name}/vars/{i}": w
              for layer in model.layers for i, w in enumerate(layer.get_weights())}  # fmt: skip
    arrays["layers/dense/vars/0"] = (arrays["layers/dense/vars/0"] * 10).astype(dtype)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    config = model.keras_config()
    path = tmp_path / "legacy.keras"
    path.write_bytes(
        zipped(
            {
                "config.json": json.dumps(config).encode(),
                "metadata.json": b"{}",
                "model.weights.npz": buffer.getvalue(),
            }
        )
    )
    with pytest.raises(ValueError, match=f"weight layers/dense/vars/0 has dtype {dtype}"):
        load_model(path)


def test_a_negative_second_moment_is_refused(saved, tmp_path):
    _, members = saved

    def negative(f):
        names = sorted(f["optimizer/vars"], key=int)
        v = f"optimizer/vars/{names[3]}"  # after iterations, η and the first m: the first v
        data = -np.abs(f[v][()]) - 1.0
        del f[v]
        f.create_dataset(v, data=data)

    path = tmp_path / "v.keras"
    path.write_bytes(with_h5(members, negative))
    with pytest.raises(ValueError, match=r"Adam's v of dense/W\) must be finite and ≥ 0"):
        load_model(path)


CONFIG_CASES = {
    "activity_regularizer": (("Dense", {"activity_regularizer": {"class_name": "L2",
                                                                 "config": {"l2": 0.01}}}),
                             "regulariz"),
    "kernel_constraint": (("Dense", {"kernel_constraint": {"class_name": "MaxNorm",
                                                           "config": {}}}), "constraint"),
    "float16": (("Dense", {"dtype": "float16"}), "float16"),
    "a negative pool size": (("MaxPooling2D", {"pool_size": [-1, -1]}), "pool_size"),
    "groups 2": (("Conv2D", {"groups": 2}), "groups"),
    "channels_first": (("Conv2D", {"data_format": "channels_first"}), "channels_first"),
    "a bogus data_format": (("Conv2D", {"data_format": "sideways"}), "data_format"),
    "noise_shape": (("Dropout", {"noise_shape": [None, 1, 1, 3]}), "noise_shape"),
    "stateful": (("LSTM", {"stateful": True}), "stateful"),
    "a negative variance": (("Normalization", {"mean": [0.0], "variance": [-1.0]}), "variance"),
}  # fmt: skip


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """One small saved model with a layer of each kind the config cases change."""
    from glassnet import layers

    glassnet.backend.clear_session()
    image = Input(shape=(6, 6, 3))
    x = layers.Conv2D(3, 3, padding="same")(image)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Reshape((3, 9))(x)
    x = layers.LSTM(2)(x)
    x = layers.Normalization(mean=[0.0], variance=[1.0], axis=None)(x)
    model = glassnet.Model(image, layers.Dense(2)(x))
    path = tmp_path_factory.mktemp("zoo") / "zoo.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_a_config_argument_glassnet_refuses_in_code_is_refused_from_a_file(zoo, tmp_path, name):
    (kind, change), said = CONFIG_CASES[name]
    path = tmp_path / "case.keras"
    path.write_bytes(with_config(zoo, lambda c: layer_configs(c, kind)[0].update(change)))
    with pytest.raises(CLEAR_ERRORS) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and said in str(caught.value), str(caught.value)


@pytest.mark.parametrize("count", [10_000])
def test_a_config_of_thousands_of_layers_is_refused_at_once(saved, tmp_path, count):
    _, members = saved

    def many(config):
        layers = config["config"]["layers"]
        dropout = {"class_name": "Dropout", "config": {"rate": 0.1}}
        config["config"]["layers"] = [layers[0], *[
            {**dropout, "config": {"rate": 0.1, "name": f"d{i}"}} for i in range(count)],
            *layers[1:]]  # fmt: skip

    path = tmp_path / "many.keras"
    path.write_bytes(with_config(members, many))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="layers; glassnet loads models of at most"):
        load_model(path)
    assert time.perf_counter() - start < 5


def test_a_long_reversed_functional_chain_is_refused_at_once(saved, tmp_path):
    _, members = saved
    n = 6000
    entries = [
        {
            "class_name": "InputLayer",
            "name": "i",
            "config": {"batch_shape": [None, 2], "name": "i"},
            "inbound_nodes": [],
        }
    ]
    for k in range(n):  # listed last to first: each reads the one listed after it
        source = "i" if k == n - 1 else f"a{k + 1}"
        entries.append({"class_name": "Activation", "name": f"a{k}",
                        "config": {"activation": "relu", "name": f"a{k}"},
                        "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                                     "config": {"keras_history": [source, 0, 0]}}],
                                           "kwargs": {}}]})  # fmt: skip
    config = {"class_name": "Functional", "config": {
        "name": "chain", "layers": entries, "input_layers": [["i", 0, 0]],
        "output_layers": [["a0", 0, 0]]}}  # fmt: skip
    path = tmp_path / "chain.keras"
    path.write_bytes(zipped({"config.json": json.dumps(config).encode(), "metadata.json": b"{}",
                             "model.weights.h5": with_h5_empty()}))  # fmt: skip
    start = time.perf_counter()
    with pytest.raises(ValueError, match="layers; glassnet loads models of at most"):
        load_model(path)
    assert time.perf_counter() - start < 5


def with_h5_empty() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("layers")
    return buffer.getvalue()


def test_two_whole_layer_groups_swapped_are_named(tmp_path):
    glassnet.backend.clear_session()
    model = Sequential([Input(shape=(3,)), Dense(3), Dense(3), Dense(1)])  # two of one shape
    path = tmp_path / "same.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}

    def swap(f):
        f.move("layers/dense", "layers/tmp")
        f.move("layers/dense_1", "layers/dense")
        f.move("layers/tmp", "layers/dense_1")

    path.write_bytes(with_h5(members, swap))
    with pytest.raises(ValueError, match="belong to layer 'dense_1'.*Were layers reordered"):
        load_model(path)
