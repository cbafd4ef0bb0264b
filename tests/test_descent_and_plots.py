"""Gradient descent as the deck draws it, and every picture glassnet makes."""

import pytest
from PIL import Image

from glassnet import cli, plots
from glassnet.glassbox import descent
from glassnet.layers import Dense, Input
from glassnet.models import Sequential


def test_quadratic_converges_to_the_analytic_minimum():
    run = descent.descend("quadratic", start=-1.0, learning_rate=0.1, max_steps=500)
    assert run.verdict == "converged"
    assert run.steps[-1].w == pytest.approx(3.0, abs=1e-4)
    first = run.steps[0]
    assert (first.w, first.slope, first.C) == (-1.0, -8.0, 17.0)  # C′(w) = 2(w − 3)
    second = run.steps[1]
    assert second.w == pytest.approx(first.w - 0.1 * first.slope)  # w ← w − lr × slope


def test_too_large_a_learning_rate_diverges_and_says_why():
    run = descent.descend("quadratic", start=-1.0, learning_rate=1.1)
    assert run.verdict == "diverged"
    assert "too large" in run.summary() and "2/C″ = 1" in run.summary()


def test_too_small_a_learning_rate_crawls():
    run = descent.descend("quadratic", start=-1.0, learning_rate=0.001, max_steps=50)
    assert run.verdict == "crawling" and "too small" in run.summary()


def test_network_curve_slope_is_backpropagation(float64):
    curve = descent.get_curve("network")
    w, eps = 0.7, 1e-6
    numeric = (curve.C(w + eps) - curve.C(w - eps)) / (2 * eps)
    assert curve.slope(w) == pytest.approx(numeric, rel=1e-6)
    assert (
        curve.C(1.0)
        > descent.descend(curve, start=1.0, learning_rate=2.0, max_steps=20).steps[-1].C
    )


def test_bad_learning_rate():
    with pytest.raises(ValueError, match=r"Received learning_rate=0\. Expected a positive"):
        descent.descend("quadratic", 0.0, 0)
    with pytest.raises(ValueError, match=r"Unknown curve: 'quadratc'\. Did you mean 'quadratic'"):
        descent.descend("quadratc", 0.0, 0.1)


def test_optimizer_paths_use_the_real_optimizers():
    paths = descent.paths_2d(steps=200)
    assert set(paths) == {"SGD", "SGD + momentum 0.9", "Adam"}
    for path in paths.values():
        assert path.shape == (201, 2)
        assert descent.ravine(path[-1]) < 1e-2 * descent.ravine(path[0])


def test_descent_command(tmp_path, capsys):
    png, gif, contour = tmp_path / "d.png", tmp_path / "d.gif", tmp_path / "c.png"
    assert (
        cli.main(
            [
                "descent",
                "--compare",
                "--png",
                str(png),
                "--gif",
                str(gif),
                "--contour",
                str(contour),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Converged after" in out and "Diverged" in out and "Still crawling" in out
    assert Image.open(png).size == (1500, 400)
    with Image.open(gif) as image:
        assert image.n_frames > 10
    assert Image.open(contour).size == (700, 450)


def png_size(path):
    assert path.stat().st_size > 5000
    with Image.open(path) as image:
        return image.size


def test_training_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "16",
                "--epochs",
                "3",
                "--verbose",
                "0",
                "--plots",
                str(tmp_path / "plots"),
                "-o",
                str(tmp_path / "m.keras"),
            ]
        )
        == 0
    )
    sizes = {p.name: png_size(p) for p in (tmp_path / "plots").iterdir()}
    assert sizes == {
        "learning-curves.png": (1000, 380),
        "confusion-matrix.png": (640, 560),
        "misclassified.png": (800, 900),
        "first-layer-weights.png": (600, 600),
        "activations.png": (800, 320),
    }


def test_plot_functions_return_figures(rng, tmp_path):
    model = Sequential(
        [Input(shape=(16,)), Dense(4, activation="tanh"), Dense(3, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.random((30, 16)).astype("float32"), rng.integers(0, 3, 30)
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y))
    figures = (
        plots.learning_curves(history),
        plots.confusion_matrix(model, x, y),
        plots.misclassified(model, x, y),
        plots.first_layer_weights(model, n=4),
        plots.activation_histograms(model, x),
    )
    for i, fig in enumerate(figures):
        assert fig.axes
        assert png_size(plots.save(fig, tmp_path / f"{i}.png"))[0] > 100
