"""Saving and loading: round trips, resumed training, atomic writes, corrupt files, no pickle."""

import io
import json
import zipfile

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
        assert set(zf.namelist()) == {"config.json", "metadata.json", "model.weights.npz"}
        config = json.loads(zf.read("config.json"))
        weights = np.load(io.BytesIO(zf.read("model.weights.npz")))
        assert weights["layers/dense/vars/0"].shape == (6, 5)  # Keras's kernel orientation
    assert config["class_name"] == "Sequential"
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
    model.save_weights(tmp_path / "w.weights.npz")
    fresh = Sequential(
        [
            Input(shape=(6,)),
            Dense(5, activation="relu"),
            Dropout(0.2),
            Dense(3, activation="softmax"),
        ]
    )
    fresh.load_weights(tmp_path / "w.weights.npz")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="must end in `.weights.npz`"):
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
        ValueError, match=f"{path} is not a .keras model file: it is not a zip archive"
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


def test_pickled_weights_are_refused(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    buffer = io.BytesIO()
    np.savez(buffer, **{"layers/dense/vars/0": np.array([object()], dtype=object)})
    rewrite(path, "model.weights.npz", buffer.getvalue())
    with pytest.raises(ValueError, match="model.weights.npz cannot be read.*allow_pickle"):
        load_model(path)


def test_weights_of_the_wrong_shape(rng, tmp_path):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        arrays = dict(np.load(io.BytesIO(zf.read("model.weights.npz"))))
    arrays["layers/dense/vars/0"] = np.zeros((2, 2))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    rewrite(path, "model.weights.npz", buffer.getvalue())
    with pytest.raises(
        ValueError,
        match=r"Layer 'dense' weight W has shape \(6, 5\); received "
        r"an array of shape \(2, 2\)",
    ):
        load_model(path)


def rewrite(path, member, data):
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members[member] = data
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
