"""The glassnet command, run as a user runs it."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from glassnet import cli
from glassnet.images import mnist_style
from tests.photos import draw_digit

DATA = os.environ.get("GLASSNET_DATA")  # as the session found it (no_mnist removes it)


def test_train_falls_back_to_bundled_digits_when_mnist_is_unavailable(no_mnist, tmp_path, capsys):
    path = tmp_path / "fallback.keras"
    assert cli.main(["train", "--seed", "0", "--verbose", "0", "-o", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1] == cli.FALLBACK_NOTE
    assert "  failed: " in err and "could not be downloaded" in err  # and why
    assert "Saved the model to" in out and path.exists()
    assert "after 50 epochs" in out  # the small dataset gets more epochs by default
    accuracy = float(out.split("Test accuracy: ")[1].split()[0])
    assert accuracy > 0.88


def test_named_mnist_fails_clearly_when_unavailable(no_mnist, capsys):
    assert cli.main(["train", "--dataset", "mnist", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "\nglassnet: error: MNIST was not found locally and could not be downloaded." in err
    assert "Traceback" not in err


def test_train_progress_and_summary(tmp_path, no_mnist, capsys):
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "digits",
                "--epochs",
                "2",
                "--hidden",
                "16",
                "--dropout",
                "0.1",
                "-o",
                str(tmp_path / "m.keras"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Training on digits: 1,438 training and 359 test images." in out
    assert "Epoch 2/2" in out and "val_accuracy" in out and "┏" in out


def test_evaluate(digits_model, capsys):
    assert cli.main(["evaluate", str(digits_model)]) == 0
    out = capsys.readouterr().out
    assert "on the digits test set (359 images)" in out
    assert float(out.split("accuracy: ")[1].split()[0]) > 0.85


def test_predict_prints_digit_picture_and_probabilities(digits_model, tmp_path, capsys):
    image = draw_digit(tmp_path / "one.png")
    assert cli.main(["predict", str(digits_model), str(image)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{image}: ")
    probabilities = [float(line.split("%")[0].split(":")[1]) for line in lines[-10:]]
    assert [line.split(":")[0].strip() for line in lines[-10:]] == [str(d) for d in range(10)]
    assert sum(probabilities) == pytest.approx(100, abs=0.5)


def test_predict_says_when_unsure_and_what_an_8x8_model_cannot_see(digits_model, tmp_path, capsys):
    image = tmp_path / "scribble.png"
    scribble = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(scribble).line([(10, 50), (30, 12), (40, 44), (55, 20)], fill=0, width=5)
    scribble.save(image)
    assert cli.main(["predict", str(digits_model), str(image)]) == 0
    out, err = capsys.readouterr()
    best = max(float(line.split("%")[0].split(":")[1]) for line in out.splitlines()[-10:])
    assert ("The model is unsure" in out) == (best < 100 * cli.UNSURE)
    assert "This model reads 8×8 images" in err


def test_evaluate_refuses_a_dataset_of_another_shape_with_a_sentence(
    digits_model, monkeypatch, capsys
):
    if not DATA:
        pytest.skip("MNIST not available: set GLASSNET_DATA (CI uses ../shared/data)")
    monkeypatch.setenv("GLASSNET_DATA", DATA)
    assert cli.main(["evaluate", str(digits_model), "--dataset", "mnist"]) == 1
    err = capsys.readouterr().err
    assert "reads inputs of 64 values (64,), but the mnist images are 28×28 (784 values)" in err
    assert "Evaluate it on --dataset digits." in err and "Traceback" not in err


def test_bare_glassnet_shows_its_help_and_fails(capsys):
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert "usage: glassnet" in out and "choose a command" in err


def test_info_into_a_closed_pipe_ends_quietly():
    command = f"{sys.executable} -m glassnet.cli info | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("glassnet ") and "Broken pipe" not in done.stderr


def test_predict_on_a_non_image(digits_model, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert cli.main(["predict", str(digits_model), str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"glassnet: error: Cannot read {bad} as an image")


def test_predict_on_a_missing_model(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path / "nope.keras"), "x.png"]) == 1
    assert "glassnet: error: No model file at" in capsys.readouterr().err


def test_blank_image(tmp_path):
    with pytest.raises(ValueError, match="No digit found in the image"):
        mnist_style(np.full((50, 50), 0.8))


def test_mnist_style_conversion_ignores_polarity_and_centres(tmp_path):
    from glassnet.images import load_digit_image

    dark = load_digit_image(draw_digit(tmp_path / "a.png", dark_on_light=True))
    light = load_digit_image(draw_digit(tmp_path / "b.png", dark_on_light=False))
    np.testing.assert_allclose(dark, light, atol=0.05)
    assert dark.shape == (28, 28) and dark.max() == pytest.approx(1, abs=0.05)
    rows, cols = np.nonzero(dark > 0.05)
    assert rows.max() - rows.min() + 1 <= 21 and rows.max() - rows.min() + 1 >= 18  # 20-px box
    cy = (dark.sum(axis=1) * np.arange(28)).sum() / dark.sum()
    cx = (dark.sum(axis=0) * np.arange(28)).sum() / dark.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("glassnet 0.1.0")
    for word in ("NumPy", "BLAS", "MNIST", "Fashion-MNIST", "cache"):
        assert word in out


def test_bad_option_values_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--learning-rate", "-1"])
    assert exit_info.value.code == 2
    assert (
        "argument --learning-rate: expected a positive number, received -1"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["info"]])
def test_help_everywhere(command):
    result = subprocess.run(
        [sys.executable, "-m", "glassnet.cli", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("usage: glassnet")


def test_train_profile(tmp_path, no_mnist, capsys):
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--hidden",
                "16",
                "--verbose",
                "0",
                "--profile",
                "-o",
                str(tmp_path / "m.keras"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Where the training time went:" in out
    assert "dense_1" in out and "whole step" in out


def test_interrupted_training_keeps_the_model(tmp_path, no_mnist, monkeypatch, capsys):
    from glassnet.models import Sequential, load_model

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Sequential, "fit", interrupt)
    path = tmp_path / "partial.keras"
    assert cli.main(["train", "--dataset", "digits", "--hidden", "8", "-o", str(path)]) == 130
    assert f"Interrupted: saved the model as trained so far to {path}" in capsys.readouterr().err
    assert load_model(path).count_params() == 64 * 8 + 8 + 8 * 10 + 10
