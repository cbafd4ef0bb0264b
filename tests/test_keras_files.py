"""`.keras` files both ways: files saved by real Keras 3 load in glassnet with the same predictions
and train on with the same optimizer state; glassnet's files open in Keras.

The fixtures in ``fixtures/keras`` were made by real Keras (``make_fixtures.py`` regenerates them),
so this runs without TensorFlow. The tests at the bottom run real Keras both ways where it is
installed (``pip install -e ".[bench]"``) and skip, saying so, where it is not.
"""

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import glassnet
from glassnet.layers import Add, Concatenate, Dense, Dropout, Flatten, Input, Multiply
from glassnet.models import Model, Sequential, load_model

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.keras"))


def _subclassed():
    """``fixtures/keras/subclassed.py``, the model of your own both libraries define alike."""
    spec = importlib.util.spec_from_file_location("subclassed", FIXTURES / "subclassed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Scaled, Tower = _subclassed().define(glassnet)  # registered, as a program that loads it has


def fixture(name):
    data = np.load(FIXTURES / f"{name}.npz")
    xs = [data[k] for k in sorted(k for k in data.files if k.startswith("x"))]
    ys = [data[k] for k in sorted(k for k in data.files if k.startswith("y"))]
    preds = [data[k] for k in sorted(k for k in data.files if k.startswith("pred"))]
    after = [data[f"after_{i}"] for i in range(sum(k.startswith("after_") for k in data.files))]
    return xs, ys, preds, after


def one(values):
    return values[0] if len(values) == 1 else values


def test_there_are_fixtures():
    assert {"seq_sgd", "seq_momentum", "seq_rmsprop", "seq_adam", "seq_adamw", "merges",
            "two_heads", "seq_dropout", "cnn_2d", "cnn_1d", "cnn_shapes",
            "rnn", "seq2seq"} <= set(NAMES)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_a_keras_file_predicts_as_keras_did(name):
    xs, _, preds, _ = fixture(name)
    model = load_model(FIXTURES / f"{name}.keras")
    ours = model.predict(one(xs), verbose=0)
    ours = ours if isinstance(ours, list) else [ours]
    for mine, theirs in zip(ours, preds):
        assert np.abs(mine - theirs).max() < 1e-5


@pytest.mark.parametrize("name", [n for n in NAMES if fixture(n)[3]])  # those without dropout
def test_a_keras_file_trains_on_with_keras_optimizer_state(name):
    xs, ys, _, after = fixture(name)
    model = load_model(FIXTURES / f"{name}.keras")
    model.train_on_batch(one(xs), one(ys))
    for mine, theirs in zip(model.get_weights(), after, strict=True):
        assert np.abs(mine - theirs).max() < 1e-5


def test_a_keras_file_with_regularizers_costs_what_keras_says():
    """Keras's C from evaluate has Σ Ω(W) in it, and model.losses lists each Ω; the file's
    next SGD step, with ∂Ω/∂W in it, is checked with the others above."""
    xs, ys, _, _ = fixture("regularized")
    record = np.load(FIXTURES / "regularized.npz")
    model = load_model(FIXTURES / "regularized.keras")
    assert model.get_layer("lstm").regularizers["W_h"].get_config() == {"l2": 0.05}
    assert np.allclose([float(v) for v in model.losses], record["penalties"], rtol=1e-5)
    assert abs(model.evaluate(xs[0], ys[0], verbose=0) - float(record["loss"])) < 1e-5


def _subclassed_file_with(tmp_path, config=None, weights=None) -> Path:
    """Keras's subclassed.keras with its config or its weights changed."""
    import h5py

    with zipfile.ZipFile(FIXTURES / "subclassed.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if config:
        changed = json.loads(members["config.json"])
        config(changed)
        members["config.json"] = json.dumps(changed).encode()
    if weights:
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "r+") as f:
            weights(f)
        members["model.weights.h5"] = buffer.getvalue()
    path = tmp_path / "changed.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_keras_subclassed_file_puts_each_weight_where_its_attribute_is(tmp_path):
    """Keras's walk: the attributes in sorted order, the model's ``layers`` among them, a layer
    kept where it was first reached; the file's layer names are not the new model's (Keras
    makes new ones), so weights are matched by path alone."""
    model = load_model(FIXTURES / "subclassed.keras")
    assert isinstance(model, Tower) and model.units == 5
    model.save_weights(tmp_path / "tower.weights.h5")
    import h5py

    with h5py.File(tmp_path / "tower.weights.h5") as f:
        found = set()
        f.visititems(lambda name, obj: found.add(name) if hasattr(obj, "shape") else None)
    assert found == {  # block, head (a list), layers (rnn's LSTM, norm, pool), norm, pool, rnn
        "block/vars/0", "block/inner/vars/0", "block/inner/vars/1",
        "head/dense/vars/0", "head/dense/vars/1", "head/dense_1/vars/0", "head/dense_1/vars/1",
        "layers/lstm/cell/vars/0", "layers/lstm/cell/vars/1", "layers/lstm/cell/vars/2",
        *(f"layers/batch_normalization/vars/{i}" for i in range(4)),
    }  # fmt: skip
    again = Tower()
    again.build((None, 6, 4))
    again.load_weights(tmp_path / "tower.weights.h5")
    x = fixture("subclassed")[0][0]
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_hostile_subclassed_file_is_refused_with_what_is_wrong(tmp_path):
    missing = _subclassed_file_with(tmp_path, weights=lambda f: f.move("block/inner", "block/b"))
    with pytest.raises(ValueError, match=r"needs 2 weight arrays at block/inner/vars; 0 are"):
        load_model(missing)
    stray = _subclassed_file_with(
        tmp_path, weights=lambda f: f.create_dataset("extra/vars/0", data=np.zeros(3))
    )
    with pytest.raises(ValueError, match=r"weights for layers its config lacks: \['extra'\]"):
        load_model(stray)
    for shape in (None, [], [16, 6, -4], [16, 6, "4"], {"x": [16, 6, 4]}):
        unbuildable = _subclassed_file_with(
            tmp_path, config=lambda c, s=shape: c["build_config"].update(input_shape=s)
        )
        with pytest.raises(ValueError, match=r"Tower has no input shape to be built on"):
            load_model(unbuildable)
    flat = _subclassed_file_with(
        tmp_path, config=lambda c: c["build_config"].update(input_shape=[16])
    )  # a shape the model's own layers refuse, as they would on data
    with pytest.raises(ValueError, match=r"LSTM layer .* expects inputs of shape \(batch, steps"):
        load_model(flat)
    huge = _subclassed_file_with(  # an input that would make a kernel of 10¹¹ numbers
        tmp_path, config=lambda c: c["build_config"].update(input_shape=[None, 6, 10**10])
    )
    with pytest.raises(ValueError, match=r"inputs of shape \(6, 10000000000\) a sample; .* a "
                                         r"batch of at most 67,108,864 numbers"):  # fmt: skip
        load_model(huge)
    wide = _subclassed_file_with(  # a batch that fits, a kernel that does not: the budget
        tmp_path, config=lambda c: c["build_config"].update(input_shape=[None, 6, 10**6])
    )
    with pytest.raises(ValueError, match=r"more parameters than the weights hold"):
        load_model(wide)
    unknown = _subclassed_file_with(
        tmp_path, config=lambda c: c.update(class_name="Other", registered_name="x>Other")
    )
    with pytest.raises(ValueError, match=r"keras: Unknown model class 'Other': .*registered"):
        load_model(unknown)


def test_a_keras_functional_file_reads_as_its_graph():
    model = load_model(FIXTURES / "merges.keras")
    assert model.input_names == ["a", "b"]
    shared = model.get_layer("shared")
    assert sum(node.layer is shared for node in model.nodes) == 2  # called on both branches
    assert [type(layer).__name__ for layer in model.layers if type(layer).__name__ in (
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")] == [
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]  # fmt: skip
    two = load_model(FIXTURES / "two_heads.keras")
    assert two.output_names == ["cls", "value"] and two.loss_weights == [1.0, 0.5]
    assert isinstance(two.get_layer("inner"), Sequential)


def glassnet_models():
    """Models glassnet writes for Keras to read: a Sequential and a functional graph."""
    glassnet.utils.set_random_seed(1)
    seq = Sequential([Input(shape=(6,)), Dense(5, activation="relu"), Dropout(0.2),
                      Dense(3, activation="softmax")])  # fmt: skip
    seq.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    a, b = Input(shape=(4,), name="a"), Input(shape=(2, 3), name="b")
    shared = Dense(5, activation="tanh", name="shared")
    h = Concatenate()([Add()([shared(a), shared(Dense(4)(Flatten()(b)))]), Multiply()(
        [shared(a), Dense(5)(a)])])  # fmt: skip
    graph = Model([a, b], Dense(2, activation="sigmoid")(h), name="graph")
    graph.compile(optimizer=glassnet.optimizers.RMSprop(momentum=0.5), loss="binary_crossentropy")
    norm = glassnet.layers.Normalization()
    norm.adapt(np.random.default_rng(4).normal(size=(50, 6)) * 3 + 1)
    pre = Sequential([Input(shape=(6,)), glassnet.layers.Rescaling(0.5, offset=1.0), norm,
                      Dense(3, activation="softmax")])  # fmt: skip
    pre.compile(optimizer=glassnet.optimizers.Adam(0.01, amsgrad=True),
                loss="categorical_crossentropy")  # fmt: skip
    rng = np.random.default_rng(3)
    data = {
        "seq": ([rng.normal(size=(12, 6)).astype("float32")],
                np.eye(3, dtype="float32")[rng.integers(0, 3, 12)]),
        "graph": ([rng.normal(size=(12, 4)).astype("float32"),
                   rng.normal(size=(12, 2, 3)).astype("float32")],
                  rng.integers(0, 2, (12, 2)).astype("float32")),
    }  # fmt: skip
    data["pre"] = data["seq"]
    models = {"seq": seq, "graph": graph, "pre": pre}
    L = glassnet.layers
    cnn = Sequential([Input(shape=(9, 9, 2)), L.Conv2D(4, 3, activation="relu", padding="same"),
                      L.BatchNormalization(), L.MaxPooling2D(), L.Conv2D(5, 2, strides=2),
                      L.ZeroPadding2D(1), L.AveragePooling2D(2, padding="same"), L.Flatten(),
                      Dense(3, activation="softmax")])  # fmt: skip
    cnn.compile(optimizer="adam", loss="categorical_crossentropy")
    data["cnn"] = ([rng.normal(size=(12, 9, 9, 2)).astype("float32")], data["seq"][1])
    cnn1d = Sequential([Input(shape=(10, 3)), L.Conv1D(4, 3, padding="causal", dilation_rate=2,
                        activation="tanh"), L.MaxPooling1D(), L.Conv1D(2, 2),
                        L.GlobalMaxPooling1D(), Dense(3, activation="softmax")])  # fmt: skip
    cnn1d.compile(optimizer=glassnet.optimizers.SGD(0.1, momentum=0.9),
                  loss="categorical_crossentropy")  # fmt: skip
    data["cnn1d"] = ([rng.normal(size=(12, 10, 3)).astype("float32")], data["seq"][1])
    rnn = Sequential([Input(shape=(5, 3)), L.LSTM(4, return_sequences=True),
                      L.GRU(3, go_backwards=True, return_sequences=True), L.SimpleRNN(2),
                      Dense(3, activation="softmax")])  # fmt: skip
    cells = Sequential([Input(shape=(5, 3)), L.RNN(L.LSTMCell(3), return_sequences=True),
                        L.Bidirectional(L.RNN(L.GRUCell(2), return_sequences=True)),
                        L.RNN([L.SimpleRNNCell(3), L.LSTMCell(2)], go_backwards=True),
                        Dense(3, activation="softmax")])  # fmt: skip
    rnn.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    data["rnn"] = ([rng.normal(size=(12, 5, 3)).astype("float32")], data["seq"][1])
    wrapped = Sequential([Input(shape=(5, 3)), L.Bidirectional(L.GRU(3, return_sequences=True)),
                          L.TimeDistributed(L.Dense(2)),
                          L.Bidirectional(L.LSTM(2), merge_mode="mul"),
                          Dense(3, activation="softmax")])  # fmt: skip
    wrapped.compile(optimizer="adam", loss="categorical_crossentropy")
    data["wrapped"] = data["rnn"]
    source, target = Input(shape=(5, 3)), Input(shape=(4, 2))
    _, h, c = L.LSTM(4, return_state=True)(source)
    decoded = L.LSTM(4)(target, initial_state=[h, c])
    _, h2 = L.GRU(3, return_state=True)(source)
    decoded2 = L.SimpleRNN(3)(target, initial_state=[h2])
    seq2seq = Model([source, target], Dense(3, activation="softmax")(
        Concatenate()([decoded, decoded2])))  # fmt: skip
    seq2seq.compile(optimizer="adam", loss="categorical_crossentropy")
    data["seq2seq"] = ([data["rnn"][0][0], rng.normal(size=(12, 4, 2)).astype("float32")],
                       data["seq"][1])  # fmt: skip
    steps, image = Input(shape=(5, 3)), Input(shape=(6, 6, 2))
    s = L.Conv1D(2, 2)(L.Cropping1D(1)(L.UpSampling1D(3)(steps)))
    s = L.Softmax(axis=1)(L.LeakyReLU()(L.Conv1DTranspose(2, 3, strides=2, padding="same")(s)))
    i = L.PReLU(shared_axes=[3])(L.UpSampling2D(2)(L.Cropping2D((1, 2))(image)))
    i = L.ReLU(max_value=2.0, threshold=0.1)(L.Conv2D(2, 3, strides=2)(i))
    i = L.Conv2DTranspose(2, (3, 2), strides=2, activation="tanh")(i)
    v = L.SimpleRNN(2)(L.RepeatVector(2)(L.Flatten()(i)))
    h = L.ELU(0.5)(L.concatenate([L.Flatten()(s), L.PReLU()(v)]))
    reshaped = Model([steps, image], Dense(3, activation="softmax")(h))
    reshaped.compile(optimizer="adam", loss="categorical_crossentropy")
    pair = [rng.normal(size=(12, 5, 3)).astype("float32"),
            rng.normal(size=(12, 6, 6, 2)).astype("float32")]  # fmt: skip
    data["reshaped"] = (pair, data["seq"][1])
    cells.compile(optimizer="adam", loss="categorical_crossentropy")
    data["cells"] = data["rnn"]
    frames, series = Input(shape=(3, 5, 4, 2)), Input(shape=(4, 6, 1))
    f = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True, go_backwards=True)(frames)
    f = L.ConvLSTM2D(2, (2, 3), strides=(1, 2), activation="relu")(f)
    s, _, c = L.ConvLSTM1D(2, 2, return_state=True)(series)
    conv_lstm = Model([frames, series], Dense(3, activation="softmax")(
        L.concatenate([L.Flatten()(f), L.Flatten()(s), L.Flatten()(c)])))  # fmt: skip
    conv_lstm.compile(optimizer="adam", loss="categorical_crossentropy")
    videos = rng.normal(size=(12, 3, 5, 4, 2)).astype("float32")
    data["conv_lstm"] = ([videos, rng.normal(size=(12, 4, 6, 1)).astype("float32")], data["seq"][1])
    cnn3d = Sequential([Input(shape=(4, 5, 6, 2)),
                        L.Conv3D(3, (2, 3, 3), strides=(1, 2, 1), activation="relu"),
                        L.BatchNormalization(),
                        L.Conv3D(2, 3, padding="same", dilation_rate=(1, 1, 2), activation="tanh"),
                        L.Flatten(), Dense(3, activation="softmax")])  # fmt: skip
    cnn3d.compile(optimizer="adam", loss="categorical_crossentropy")
    data["cnn3d"] = ([rng.normal(size=(12, 4, 5, 6, 2)).astype("float32")], data["seq"][1])
    conv_lstm3d = Sequential([Input(shape=(3, 2, 4, 5, 1)),
                              L.ConvLSTM3D(2, (1, 2, 3), padding="same", return_sequences=True),
                              L.ConvLSTM3D(2, 2, go_backwards=True), L.Flatten(),
                              Dense(3, activation="softmax")])  # fmt: skip
    conv_lstm3d.compile(optimizer="adam", loss="categorical_crossentropy")
    data["conv_lstm3d"] = ([rng.normal(size=(12, 3, 2, 4, 5, 1)).astype("float32")],
                           data["seq"][1])  # fmt: skip
    R = glassnet.regularizers  # Ω(W) in C: Keras's next step must add the same ∂Ω/∂W
    regularized = Sequential([Input(shape=(5, 3)),
                              L.Conv1D(4, 2, kernel_regularizer=R.L1L2(l1=0.01, l2=0.02)),
                              L.LSTM(3, kernel_regularizer=R.L2(0.03), bias_regularizer=R.L2(0.1),
                                     recurrent_regularizer=R.L1(0.02)),
                              Dense(3, activation="softmax", kernel_regularizer="l2",
                                    bias_regularizer=R.L1(0.05))])  # fmt: skip
    regularized.compile(optimizer="sgd", loss="categorical_crossentropy")
    data["regularized"] = [data["reshaped"][0][0]], data["seq"][1]
    tower = Tower(units=4)  # a subclassed model: Keras finds its weights by attribute
    tower.compile(optimizer=glassnet.optimizers.SGD(0.1, momentum=0.5),
                  loss="categorical_crossentropy")  # fmt: skip
    data["tower"] = data["rnn"]
    steps = Input(shape=(5, 3))  # a layer of one's own in a graph: its Dense at scaled/inner
    own = Model(steps, Dense(3, activation="softmax")(L.Flatten()(Scaled(2)(steps))))
    own.compile(optimizer="adam", loss="categorical_crossentropy")
    data["own"] = data["rnn"]
    models.update(cnn=cnn, cnn1d=cnn1d, rnn=rnn, wrapped=wrapped, seq2seq=seq2seq, cells=cells,
                  reshaped=reshaped, conv_lstm=conv_lstm, regularized=regularized,
                  cnn3d=cnn3d, conv_lstm3d=conv_lstm3d, tower=tower, own=own)  # fmt: skip
    for key, optimizer in OPTIMIZERS.items():  # every optimizer glassnet has, no dropout
        model = Sequential([Input(shape=(6,)), Dense(5, activation="tanh"),
                            Dense(3, activation="softmax")])  # fmt: skip
        model.compile(optimizer=optimizer(), loss="categorical_crossentropy")
        models[key], data[key] = model, data["seq"]
    for key, model in models.items():
        xs, y = data[key]
        for _ in range(3):
            model.train_on_batch(one(xs), y)
    return {key: (model, *data[key]) for key, model in models.items()}


OPTIMIZERS = {
    "sgd": lambda: glassnet.optimizers.SGD(0.1),
    "nesterov": lambda: glassnet.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: glassnet.optimizers.RMSprop(),
    "centered": lambda: glassnet.optimizers.RMSprop(momentum=0.5, centered=True),
    "adam": lambda: glassnet.optimizers.Adam(0.01),
    "adamw": lambda: glassnet.optimizers.AdamW(0.01, weight_decay=0.1),
    "schedule": lambda: glassnet.optimizers.SGD(
        glassnet.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5), momentum=0.9),
}  # fmt: skip


def test_glassnet_files_keep_keras_config_layout(tmp_path):
    model = glassnet_models()["graph"][0]
    model.save(tmp_path / "graph.keras")
    with zipfile.ZipFile(tmp_path / "graph.keras") as zf:
        config = json.loads(zf.read("config.json"))
    assert config["class_name"] == "Functional"
    assert {"module", "class_name", "config", "registered_name", "build_config",
            "compile_config"} <= set(config)  # fmt: skip
    entries = {entry["name"]: entry for entry in config["config"]["layers"]}
    assert len(entries["shared"]["inbound_nodes"]) == 3  # one entry per call
    history = entries["add"]["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"]
    assert history == ["shared", 1, 0]
    assert config["config"]["input_layers"] == [["a", 0, 0], ["b", 0, 0]]


def keras_available():
    try:
        import keras  # noqa: F401
    except Exception:
        return False
    return True


needs_keras = pytest.mark.skipif(
    not keras_available(), reason="real Keras 3 is not installed (pip install -e '.[bench]')"
)


@needs_keras
def test_real_keras_opens_glassnet_files_and_trains_on(tmp_path):
    models = glassnet_models()
    for key, (model, xs, y) in models.items():
        model.save(tmp_path / f"{key}.keras")
        np.savez(tmp_path / f"{key}.npz", y=y, pred=model.predict(one(xs), verbose=0),
                 **{f"x{i}": x for i, x in enumerate(xs)})  # fmt: skip
        (tmp_path / f"{key}.json").write_text(model.to_json())
        model.train_on_batch(one(xs), y)
        np.savez(tmp_path / f"{key}.after.npz", *model.get_weights())
    script = """
import sys, numpy as np, keras
exec(open(sys.argv[3]).read())
define(keras)
for key in sys.argv[2].split(","):
    d = np.load(f"{sys.argv[1]}/{key}.npz")
    xs = [d[k] for k in sorted(k for k in d.files if k.startswith("x"))]
    feed = xs if len(xs) > 1 else xs[0]
    m = keras.models.load_model(f"{sys.argv[1]}/{key}.keras")
    pred = np.abs(m.predict(feed, verbose=0) - d["pred"]).max()
    m.train_on_batch(feed, d["y"])
    after = np.load(f"{sys.argv[1]}/{key}.after.npz")
    step = max(np.abs(w - after[f"arr_{i}"]).max() for i, w in enumerate(m.get_weights()))
    from_json = keras.models.model_from_json(open(f"{sys.argv[1]}/{key}.json").read())
    assert from_json.count_params() == m.count_params()
    print(key, pred, step)
"""
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path), ",".join(models),
                          str(FIXTURES / "subclassed.py")],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().split("\n")[-len(models) :]
    results = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines}
    print(results)  # predictions' and one training step's max |difference|, for the record
    assert set(results) == set(models)
    assert all(pred < 1e-5 for pred, _ in results.values())
    # "seq" has dropout, whose random masks differ between programs: every other model's next
    # training step in Keras, from the optimizer state glassnet saved, is glassnet's own.
    assert all(step < 1e-5 for key, (_, step) in results.items() if key != "seq")


def test_glassnet_explain_reads_a_keras_file(capsys):
    from glassnet import cli

    args = [
        "explain",
        str(FIXTURES / "seq_adam.keras"),
        "--input",
        *["0.1", "0.2", "0.3", "0.4", "0.5", "0.6"],
    ]
    assert cli.main(args) == 0  # Keras compiled it with one-hot categorical cross-entropy
    out = capsys.readouterr().out
    assert "case 1: output layer" in out and "✗" not in out
    assert cli.main([*args, "--label", "7"]) == 1
    assert "Label 7 is not a class of this model (0 to 2)" in capsys.readouterr().err
