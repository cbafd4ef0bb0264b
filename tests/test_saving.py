"""Saving and loading: round trips, resumed training, atomic writes, corrupt files, no pickle."""

import io
import json
import os
import stat
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

import glassnet
from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential, load_model


def trained_model(rng, epochs=1):
    glassnet.utils.set_random_seed(0)
    model = Sequential(
        [
            Input(shape=(6,)),
            Dense(5, activation="relu"),
            Dropout(0.2),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(40, 6)).astype("float32")
    y = rng.integers(0, 3, size=40)
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0)
    return model, x, y


def test_round_trip_gives_the_same_predictions(rng, tmp_path):
    model, x, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.get_config() for layer in restored.layers] == [
        layer.get_config() for layer in model.layers
    ]
    assert type(restored.optimizer) is type(model.optimizer)
    assert restored.loss.name == "sparse_categorical_crossentropy"
    assert restored.metrics_names == ["loss", "accuracy"]


def test_file_is_keras_3_layout(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"config.json", "metadata.json", "model.weights.h5"}
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json"))
        with h5py.File(io.BytesIO(zf.read("model.weights.h5"))) as f:
            # Keras's paths: class names in snake case, counted within the container
            assert f["layers/dense/vars/0"].shape == (6, 5)  # Keras's kernel orientation: Wᵀ
            assert f["layers/dense/vars"].attrs["name"] == model.layers[0].name
            assert f["layers/dense_1/vars/1"].shape == (3,)
            assert len(f["layers/dropout/vars"]) == 0
            # iterations, learning rate, then RMSprop's velocity for each parameter (kernels ᵀ)
            assert int(f["optimizer/vars/0"][()]) == model.optimizer.iterations
            assert float(f["optimizer/vars/1"][()]) == pytest.approx(0.001)
            assert f["optimizer/vars/2"].shape == (6, 5)
            assert len(f["optimizer/vars"]) == 2 + 4
    assert config["class_name"] == "Sequential"
    assert config["config"]["build_input_shape"] == [None, 6]
    assert metadata["glassnet_version"] == glassnet.__version__
    assert metadata["seed"] == 0 and metadata["floatx"] == "float32" and metadata["blas"]
    layers = config["config"]["layers"]
    assert [entry["class_name"] for entry in layers] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert layers[1]["config"]["units"] == 5 and layers[1]["config"]["activation"] == "relu"
    assert config["compile_config"]["optimizer"]["class_name"] == "RMSprop"


def test_resumed_training_equals_uninterrupted_training(rng, tmp_path):
    model, x, y = trained_model(rng)
    model.save(tmp_path / "half.keras")
    restored = load_model(tmp_path / "half.keras")
    assert restored.optimizer.iterations == model.optimizer.iterations
    # Same shuffling and dropout streams for both continuations:
    for m in (model, restored):
        m._rng = np.random.default_rng(5)
        m.layers[1]._rng = np.random.default_rng(6)
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_only(rng, tmp_path):
    model, x, _ = trained_model(rng)
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = Sequential(
        [
            Input(shape=(6,)),
            Dense(5, activation="relu"),
            Dropout(0.2),
            Dense(3, activation="softmax"),
        ]
    )
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="Please add the `.weights.h5` extension"):
        model.save_weights(tmp_path / "w.h5")


def test_crash_mid_save_keeps_the_previous_file(rng, tmp_path, monkeypatch):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temporary left behind


def test_a_new_file_gets_the_umask_permissions_and_a_replaced_one_keeps_its_own(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    old = os.umask(0o022)
    try:
        model.save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by a colleague, a web server
    path.chmod(0o640)
    model.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_saving_through_a_symlink_replaces_the_file_it_points_to(rng, tmp_path):
    model, x, _ = trained_model(rng)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.keras"
    target.write_bytes(b"old")
    link = tmp_path / "link.keras"
    link.symlink_to(target)
    model.save(link)
    assert link.is_symlink()
    np.testing.assert_array_equal(load_model(target).predict(x, verbose=0),
                                  model.predict(x, verbose=0))  # fmt: skip


def test_a_long_file_name_saves(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / ("m" * 248 + ".keras")  # 254 characters: the limit is 255
    model.save(path)
    assert load_model(path).count_params() == model.count_params()


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(rng, tmp_path):
    model, _, _ = trained_model(rng)
    code = (
        "import os, sys, glassnet.models.saving as s\n"
        "def write(f):\n    f.write(b'x' * 1000); f.flush(); os.kill(os.getpid(), 9)\n"
        "s.write_atomically(sys.argv[1], write)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.keras")])
    assert run.returncode == -9
    assert len(list(tmp_path.glob(".glassnet-*.tmp"))) == 1
    model.save(tmp_path / "model.keras")
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_wrong_extension(rng, tmp_path):
    model, _, _ = trained_model(rng)
    with pytest.raises(
        ValueError,
        match=r"Please add the `.keras` extension, e.g. "
        r"model.save\('model.keras'\)",
    ):
        model.save(tmp_path / "model.h5")


def test_truncated_file(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(
        ValueError, match=f"{path} is not a .keras model file: it is not a readable zip archive"
    ):
        load_model(path)


def test_not_a_model(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("hello")
    with pytest.raises(ValueError, match="is not a .keras model file"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="No model file at"):
        load_model(tmp_path / "missing.keras")


def test_zip_without_config(tmp_path):
    path = tmp_path / "empty.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", "{}")
    with pytest.raises(
        ValueError, match="is not a complete .keras model file: it has no config.json"
    ):
        load_model(path)


def test_corrupt_config(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    rewrite(path, "config.json", b"{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        load_model(path)


def legacy_file(model, path):
    """A file as glassnet 0.1 wrote it: weights in model.weights.npz, keyed by layer name."""
    arrays = {
        f"layers/{layer.name}/vars/{i}": w
        for layer in model.layers
        for i, w in enumerate(layer.get_weights())
    }
    arrays["optimizer/vars/0"] = np.asarray(model.optimizer.iterations)
    for i, v in enumerate(model.optimizer.variables(), start=1):  # 0.1 kept W's state as W
        arrays[f"optimizer/vars/{i}"] = v
    config = model.keras_config()
    config["compile_config"] = {
        "optimizer": {"class_name": "RMSprop", "config": model.optimizer.get_config()},
        "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {}},
        "metrics": ["accuracy"],
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"glassnet_version": "0.1.0"}))
        zf.writestr("model.weights.npz", buffer.getvalue())


def test_glassnet_0_1_files_still_load(rng, tmp_path):
    model, x, y = trained_model(rng)
    legacy_file(model, tmp_path / "old.keras")
    restored = load_model(tmp_path / "old.keras")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.optimizer.iterations == model.optimizer.iterations
    for a, b in zip(restored.optimizer.variables(), model.optimizer.variables()):
        np.testing.assert_array_equal(a, b)


def test_pickled_weights_are_refused(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    legacy_file(model, path)
    with zipfile.ZipFile(path) as zf, np.load(io.BytesIO(zf.read("model.weights.npz"))) as npz:
        arrays = {key: npz[key] for key in npz.files}
    kernel = arrays["layers/dense/vars/0"]
    arrays["layers/dense/vars/0"] = np.full(kernel.shape, object(), dtype=object)  # a pickle
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    rewrite(path, "model.weights.npz", buffer.getvalue())
    with pytest.raises(ValueError, match="weight layers/dense/vars/0 has dtype object"):
        load_model(path)  # refused from its header: nothing of it is unpickled


def rewrite_h5(path, change):
    """Apply ``change(h5 file)`` to the weights inside the .keras file at ``path``."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read("model.weights.h5")
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as f:
        change(f)
    rewrite(path, "model.weights.h5", buffer.getvalue())


def test_weights_of_the_wrong_shape(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)

    def change(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", data=np.zeros((8, 8), "float32"))

    rewrite_h5(path, change)
    with pytest.raises(
        ValueError,
        match=r"Layer 'dense(_\d+)?' weight W has shape \(6, 5\); received "
        r"an array of shape \(8, 8\)",
    ):
        load_model(path)


def rewrite(path, member, data):
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members[member] = data
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
