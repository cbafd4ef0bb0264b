"""keras.utils as glassnet has it: pad_sequences against Keras's results; plot_model pictures."""

import json
from pathlib import Path

import numpy as np
import pytest

import glassnet
from glassnet import glassbox
from glassnet.layers import Add, Dense, Dropout, Input
from glassnet.models import Model, Sequential
from glassnet.utils import pad_sequences, plot_model

KERAS_PADDING = json.loads(
    (Path(__file__).parent / "fixtures" / "keras" / "pad_sequences.json").read_text()
)


@pytest.mark.parametrize("case", KERAS_PADDING["cases"], ids=lambda c: str(c["kwargs"]))
def test_pad_sequences_as_keras(case):
    padded = pad_sequences(KERAS_PADDING["sequences"], **case["kwargs"])
    assert padded.tolist() == case["result"] and str(padded.dtype) == case["dtype"]


def test_pad_sequences_refuses_what_it_cannot_pad():
    with pytest.raises(ValueError, match='padding type "middle" not understood'):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(ValueError, match="an entry is a single number"):
        pad_sequences([1, 2])


def test_plot_model_draws_the_deck_network_and_a_graph(tmp_path):
    from PIL import Image

    deck = plot_model(glassbox.deck_network(), tmp_path / "deck", show_weights=True)
    assert deck.name == "deck.png" and Image.open(deck).size[0] > 500
    wide = Sequential([Input((784,)), Dense(512, activation="relu"), Dropout(0.2), Dense(10)])
    assert plot_model(wide, tmp_path / "mlp.png").is_file()
    x = Input(shape=(4,))
    graph = Model(x, Dense(2)(Add()([Dense(3)(x), Dense(3)(x)])))
    assert plot_model(graph, tmp_path / "graph.png", show_shapes=True, rankdir="LR").is_file()
    with pytest.raises(ValueError, match="Received rankdir='BT'"):
        plot_model(graph, tmp_path / "x.png", rankdir="BT")
    with pytest.raises(ValueError, match="needs a built model"):
        plot_model(Sequential([Dense(2)]), tmp_path / "x.png")


def test_the_deck_picture_holds_the_decks_numbers(monkeypatch, tmp_path):
    from glassnet import plots

    written = []
    monkeypatch.setattr(plots, "save", lambda fig, path, dpi=100: written.append(fig) or path)
    plot_model(glassbox.deck_network(), tmp_path / "deck.png", show_weights=True)
    texts = {t.get_text() for t in written[0].axes[0].texts}
    assert {"1.00", "-2.00", "3.00", "4.00", "b = -2.00", "b = 2.00"} <= texts
    assert len([t for t in texts if t.startswith("b =")]) == 4  # 1, 0, -2 and 2


def test_the_sequential_guide_opening_runs_with_glassnet_ops():
    # keras.io, "The Sequential model", with `keras` replaced by `glassnet` in the imports.
    import glassnet as keras
    from glassnet import layers, ops

    model = keras.Sequential(
        [
            layers.Dense(2, activation="relu", name="layer1"),
            layers.Dense(3, activation="relu", name="layer2"),
            layers.Dense(4, name="layer3"),
        ]
    )
    x = ops.ones((3, 3))
    y = model(x)
    assert y.shape == (3, 4) and x.dtype == np.float32
    layer = layers.Dense(3)
    assert layer.weights == []
    layer(ops.ones((1, 4)))
    assert len(layer.weights) == 2
    assert ops.convert_to_numpy(ops.mean(ops.square(ops.arange(3.0)))) == pytest.approx(5 / 3)


def windows_by_loops(data, targets, length, stride, rate, start, end):
    """Keras's documented windows, one at a time."""
    out, ys, i = [], [], start
    while i + (length - 1) * rate < end and (targets is None or i < len(targets)):
        out.append([data[i + j * rate] for j in range(length)])
        ys.append(None if targets is None else targets[i])
        i += stride
    return np.array(out), ys


@pytest.mark.parametrize(
    ("length", "stride", "rate", "start", "end", "batch"),
    [
        (3, 1, 1, None, None, 4),
        (10, 3, 2, 5, 60, 8),
        (5, 7, 3, 0, 99, 128),
        (1, 1, 1, 10, 20, None),
    ],
)
def test_timeseries_windows_are_keras_documented_ones(length, stride, rate, start, end, batch):
    from glassnet.utils import timeseries_dataset_from_array

    data, targets = np.arange(100.0) * 2, np.arange(100) + 1000
    ds = timeseries_dataset_from_array(data, targets, length, sequence_stride=stride,
                                       sampling_rate=rate, batch_size=batch, start_index=start,
                                       end_index=end)  # fmt: skip
    x = np.concatenate([ds[k][0] for k in range(len(ds))])
    y = np.concatenate([ds[k][1] for k in range(len(ds))])
    expected_x, expected_y = windows_by_loops(data, targets, length, stride, rate, start or 0,
                                              end or 100)  # fmt: skip
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)
    assert all(len(ds[k][0]) == (batch or 1) for k in range(len(ds) - 1))


def test_timeseries_dataset_shuffles_by_seed_and_trains_a_recurrent_model():
    import glassnet
    from glassnet.utils import timeseries_dataset_from_array

    wave = np.sin(np.arange(400) / 8).astype("float32")[:, None]

    def make(seed):
        return timeseries_dataset_from_array(wave[:-10], wave[10:, 0], sequence_length=10,
                                             batch_size=32, shuffle=True, seed=seed)  # fmt: skip

    first, again, other = make(1), make(1), make(2)
    np.testing.assert_array_equal(first[0][0], again[0][0])
    assert not np.array_equal(first[0][0], other[0][0])
    assert sorted(first.starts.tolist()) == list(range(390 - 9))  # every window, once
    glassnet.utils.set_random_seed(0)
    model = glassnet.Sequential([glassnet.Input((10, 1)), glassnet.layers.LSTM(8),
                                 glassnet.layers.Dense(1)])  # fmt: skip
    model.compile("adam", "mse")
    history = model.fit(first, epochs=4, verbose=0).history["loss"]
    assert history[-1] < history[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sequence_length": 0}, r"`sequence_length` must be higher than 0"),
        ({"sampling_rate": -1}, r"`sampling_rate` must be higher than 0"),
        ({"start_index": 200}, r"`start_index` must be 0 or more and lower than the length"),
        ({"start_index": 50, "end_index": 40}, r"`end_index` must be higher than `start_index`"),
        ({"sequence_length": 200}, r"No window of 200 steps 1 apart fits in data\[0:100\]"),
        ({"batch_size": 0}, r"`batch_size` must be higher than 0"),
    ],
)
def test_timeseries_bad_arguments_say_what_is_wrong(kwargs, message):
    from glassnet.utils import timeseries_dataset_from_array

    arguments = {"sequence_length": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        timeseries_dataset_from_array(np.arange(100), None, **arguments)


def test_set_random_seed_seeds_python_and_numpy_as_keras_does():
    import random

    glassnet.utils.set_random_seed(7)
    first = (np.random.rand(), random.random())
    glassnet.utils.set_random_seed(7)
    assert (np.random.rand(), random.random()) == first  # a script's own data code repeats
    np.random.seed(7)
    random.seed(7)
    assert (np.random.rand(), random.random()) == first  # exactly as Keras seeds them


def test_a_timeseries_dataset_answers_what_scripts_ask_of_tf_data():
    """keras-io's weather forecast looks at one batch with ``take(1)`` and ``.numpy()``, from
    ``keras.preprocessing``."""
    ds = glassnet.preprocessing.timeseries_dataset_from_array(
        np.arange(20.0).reshape(10, 2), np.arange(10.0), sequence_length=3, batch_size=4
    )
    batches = list(ds.take(5))
    assert len(batches) == len(ds) == 2  # no more than there are
    inputs, targets = batches[0]
    assert inputs.numpy().shape == (4, 3, 2) and type(inputs.numpy()) is np.ndarray
    np.testing.assert_array_equal(targets.numpy(), [0, 1, 2, 3])
    np.testing.assert_array_equal(inputs[0][:, 1].numpy(), [1, 3, 5])
