"""The glass box on CNNs: traces and gradient checks in the deck's terms, the pictures of
filters and feature maps, and `glassnet train --model cnn`, `predict`, `explain --maps`."""

import numpy as np
import pytest

import glassnet
from glassnet import cli, glassbox, layers, plots
from tests.photos import draw_digit


def small_cnn(activation="tanh"):
    glassnet.utils.set_random_seed(2)
    model = glassnet.Sequential([
        glassnet.Input((9, 9, 1)),
        layers.Conv2D(3, 3, activation=activation, bias_initializer="random_normal"),
        layers.MaxPooling2D(),
        layers.Conv2D(2, 2, padding="same", activation=activation),
        layers.Flatten(),
        layers.Dense(4, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_trace_reads_a_cnn_in_the_decks_terms(rng):
    model = small_cnn()
    x, y = rng.random((2, 9, 9, 1)).astype("float32"), np.array([1, 3])
    tr = glassbox.trace(model, x, y)
    conv = tr.layers[0]
    assert conv.window == (3, 3, 1) and conv.W.shape == (3, 9)
    assert conv.z.shape == (2, 7, 7, 3)  # one feature map per filter
    assert tr.layers[2].window == (2, 2, 3)  # the second conv sees 3 channels
    text = tr.render()
    assert "one row per filter: a neuron that sees one 3×3×1 window of its input" in text
    assert "z = W·window + b" in text and "feature maps of the first input" in text
    assert "keeps the largest value of each 2×2 window" in text
    assert "∂C/∂W = Σ ∂C/∂z·window" in text
    assert "✗" not in text  # every gradient agrees with its finite differences
    one = tr.render(neuron=(1, 2))
    assert "filter 2: z = w·window + b at every position" in one
    assert "w as its window" in one


def test_check_gradients_on_a_cnn(rng):
    model = small_cnn()
    report = glassbox.check_gradients(model, rng.random((3, 9, 9, 1)), np.array([0, 1, 2]))
    assert "all gradients agree" in str(report)


def test_a_relu_kink_is_explained_not_hidden():
    """A blank background and zero biases put z exactly at relu's kink: the check says why."""
    glassnet.utils.set_random_seed(0)
    model = glassnet.Sequential([glassnet.Input((10, 10, 1)),
                                 layers.Conv2D(3, 3, activation="relu"), layers.Flatten(),
                                 layers.Dense(3, activation="softmax")])  # fmt: skip
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.zeros((1, 10, 10, 1), "float32")
    x[0, 2:8, 4:6] = 1
    text = glassbox.trace(model, x, np.eye(3)[[1]]).render()
    assert "✗" in text and "are exactly 0, at relu's kink" in text


def test_pictures_of_filters_and_feature_maps(rng, tmp_path):
    model = small_cnn()
    fig = plots.filters(model)
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert "each filter's weights as its 3×3 window" in fig._suptitle.get_text()
    second = plots.filters(model, layer=model.layers[2])
    assert "its 3 input channels summed" in second._suptitle.get_text()
    maps = plots.feature_maps(model, rng.random((9, 9, 1)))
    assert len([ax for ax in maps.axes if ax.images]) == 1 + 3 + 3 + 2  # image, conv, pool, conv
    assert plots.save(maps, tmp_path / "maps.png").stat().st_size > 0
    mlp = glassnet.Sequential([glassnet.Input((4,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="no convolutional layer"):
        plots.filters(mlp)
    with pytest.raises(ValueError, match="no layer whose output is an image"):
        plots.feature_maps(mlp, np.zeros(4))


@pytest.fixture
def digits_cnn(tmp_path, no_mnist):
    path = tmp_path / "digits-cnn.keras"
    args = ["train", "--model", "cnn", "--dataset", "digits", "--epochs", "3", "--seed", "0",
            "--verbose", "0", "-o", str(path), "--plots", str(tmp_path / "plots")]  # fmt: skip
    assert cli.main(args) == 0
    return path


def test_train_predict_and_explain_a_cnn(digits_cnn, tmp_path, capsys):
    assert (tmp_path / "plots" / "feature-maps.png").stat().st_size > 0
    model = glassnet.models.load_model(digits_cnn)
    assert [type(layer).__name__ for layer in model.layers][:2] == ["Conv2D", "MaxPooling2D"]
    assert model.input_shape == (None, 8, 8, 1)

    image = draw_digit(tmp_path / "one.png")
    assert cli.main(["predict", str(digits_cnn), str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")

    maps = tmp_path / "maps.png"
    args = ["explain", str(digits_cnn), "--image", str(image), "--label", "1", "--maps", str(maps)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert maps.stat().st_size > 0
    assert "one row per filter" in out and "feature maps of the first input" in out


def test_explain_maps_needs_a_cnn(digits_model, tmp_path, capsys):
    image = draw_digit(tmp_path / "one.png")
    args = ["explain", str(digits_model), "--image", str(image), "--maps", str(tmp_path / "m.png")]
    assert cli.main(args) == 1
    assert "--maps draws a CNN's feature maps" in capsys.readouterr().err


def test_the_glass_box_shows_a_conv3d_filter_as_a_neuron_on_a_volume():
    """A Conv3D's filter is the same neuron on a kd × kh × kw window: the trace says so, every
    gradient is checked ✓, and one filter shows as its window, channels first."""
    glassnet.utils.set_random_seed(0)
    model = glassnet.Sequential([layers.Input((3, 5, 5, 1)),
                                 layers.Conv3D(2, 3, activation="tanh"), layers.Flatten(),
                                 layers.Dense(3, activation="softmax")])  # fmt: skip
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5, 1))
    tr = glassbox.trace(model, x, np.array([0, 2]))
    text = tr.render(color=False)
    assert "a neuron that sees one 3×3×3×1 window of its input" in text
    assert "(batch, depth, rows, cols, filters)" in text
    assert all(check.ok for lt in tr.layers for check in lt.numeric.values())
    assert "(c_in, kd, kh, kw)" in tr.render(color=False, neuron=(1, 1))
