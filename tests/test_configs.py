"""Configs as Keras writes them: to_json / model_from_json, clone_model, get_config keys, and
classes registered with glassnet.saving."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import glassnet
from glassnet import saving
from glassnet.layers import Dense, Dropout, Input, Layer
from glassnet.models import Model, Sequential, clone_model, model_from_json

FIXTURES = Path(__file__).parent / "fixtures" / "keras"


def keras_config(name):
    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as zf:
        return json.loads(zf.read("config.json"))


@pytest.mark.parametrize("name", ["seq_adam", "merges", "two_heads"])
def test_keras_json_builds_the_same_architecture(name):
    config = keras_config(name)
    config.pop("compile_config")
    model = model_from_json(json.dumps(config))
    keras_names = [entry["config"]["name"] for entry in config["config"]["layers"]]
    ours = [layer.name for layer in model.layers]
    if isinstance(model, Sequential):
        ours = [model.input_layer.name, *ours]
    assert ours == keras_names
    again = model_from_json(model.to_json())
    assert again.count_params() == model.count_params()
    assert json.loads(again.to_json()) == json.loads(model.to_json())


def test_layer_and_model_config_keys_are_keras_keys():
    config = keras_config("seq_adam")
    ours = json.loads(model_from_json(json.dumps(config)).to_json())
    assert set(ours) == {"module", "class_name", "config", "registered_name", "build_config"}
    assert set(ours["config"]) == set(config["config"])  # name, trainable, dtype, layers, …
    keras_dense = config["config"]["layers"][1]["config"]
    our_dense = ours["config"]["layers"][1]["config"]
    assert set(keras_dense) - set(our_dense) <= {"quantization_config"}


def test_clone_model_has_the_architecture_and_new_weights(rng):
    model = Sequential([Input((4,)), Dense(3, activation="relu"), Dropout(0.1), Dense(2)])
    clone = clone_model(model)
    assert clone is not model and clone.to_json() == model.to_json()
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])
    x = Input((3,))
    graph = Model(x, Dense(2)(x))
    assert clone_model(graph).count_params() == graph.count_params()


def test_a_registered_layer_is_saved_and_loaded(tmp_path, rng):
    @saving.register_keras_serializable(package="Tests")
    class Shift(Layer):
        """a = x + 1."""

        def forward(self, a_prev, training=False, cache=None):
            return a_prev + 1

        def backward(self, dC_da, cache=None):
            return dC_da

    try:
        model = Sequential([Input((3,)), Shift(), Dense(2)])
        model.save(tmp_path / "m.keras")
        with zipfile.ZipFile(tmp_path / "m.keras") as zf:
            entry = json.loads(zf.read("config.json"))["config"]["layers"][1]
        assert entry["registered_name"] == "Tests>Shift"
        loaded = saving.load_model(tmp_path / "m.keras")
        x = rng.normal(size=(2, 3))
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        assert saving.get_registered_object("Tests>Shift") is Shift
    finally:
        saving.get_custom_objects().pop("Tests>Shift", None)


def test_an_unregistered_class_is_named_with_what_glassnet_has(tmp_path):
    class Unknown(Layer):
        def forward(self, a_prev, training=False, cache=None):
            return a_prev

    model = Sequential([Input((3,)), Unknown()])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="unknown layer 'Unknown' in config.json; glassnet has: "):
        saving.load_model(tmp_path / "m.keras")
    loaded = saving.load_model(tmp_path / "m.keras", custom_objects={"Unknown": Unknown})
    assert type(loaded.layers[0]) is Unknown


def test_saving_namespace_is_keras_shaped():
    assert glassnet.saving.load_model is glassnet.models.load_model
    with pytest.raises(ValueError, match="already been registered"):
        saving.register_keras_serializable("Dup")(type("Dense", (Layer,), {}))
        saving.register_keras_serializable("Dup")(type("Dense", (Layer,), {}))
    saving.get_custom_objects().pop("Dup>Dense", None)
