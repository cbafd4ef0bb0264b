"""keras.utils as glassnet has it: pad_sequences against Keras's results; plot_model pictures."""

import json
from pathlib import Path

import numpy as np
import pytest

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
