"""Photos of real handwritten digits made MNIST-style (glassnet.images).

The photos are made by ``tests/photos.py``: MNIST test digits drawn large with a blue or black
pen, turned, off-centre, on unevenly lit, shadowed, sometimes ruled paper, saved as JPEGs.
"""

import io

import numpy as np
import pytest
from PIL import Image

from glassnet import cli
from glassnet.images import MNIST_HALF_STROKE, load_digit_image, mnist_style
from tests.photos import phone_photo, twenty_digits


@pytest.fixture(scope="module")
def test_digits(mnist_arrays):
    """MNIST's test images as (n, 28, 28) uint8, as the photos draw them, and their labels."""
    _, _, x_test, y_test = mnist_arrays
    return (x_test.reshape(-1, 28, 28) * 255).round().astype(np.uint8), y_test


def grey(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float64) / 255.0


def cosine(a, b) -> float:
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def half_stroke(image: np.ndarray) -> float:
    """Mean distance from the skeleton to the paper, over the digit's longer side."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    mask = image > 0.5
    rows, cols = np.nonzero(mask)
    side = max(np.ptp(rows), np.ptp(cols)) + 1
    return ndimage.distance_transform_edt(mask)[skeletonize(mask)].mean() / side


def test_phone_photos_come_out_like_the_mnist_digits_they_show(test_digits):
    """Each converted photo looks like the MNIST image that was photographed: most of the ink
    in the same places (cosine similarity), in a 20-pixel box, centred by mass."""
    x_test, y_test = test_digits
    images, _ = twenty_digits(x_test, y_test)
    similarities = []
    for seed, digit in enumerate(images):
        converted = mnist_style(grey(phone_photo(digit, seed=seed)))
        similarities.append(cosine(converted, digit / 255.0))
        rows, cols = np.nonzero(converted > 0.05)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (20, 21, 22)  # the box, plus anti-aliasing
        mass = converted / converted.sum()
        centre = [
            (mass.sum(axis=1) * np.arange(28)).sum(),
            (mass.sum(axis=0) * np.arange(28)).sum(),
        ]
        assert np.allclose(centre, 13.5, atol=1.0)
    # Measured: median 0.77 (the conversion before this one: 0.33); the photos are turned by up
    # to 15°, which the conversion leaves as drawn, as MNIST's writers did.
    assert np.median(similarities) > 0.65, sorted(similarities)
    assert min(similarities) > 0.25, sorted(similarities)


@pytest.mark.parametrize("ruled", [False, True])
def test_blank_paper_with_shading_is_no_digit(ruled):
    """Light gradients, a shadowed corner, noise and ruled lines are not ink."""
    blank = np.zeros((28, 28), np.uint8)
    for seed in range(4):
        with pytest.raises(ValueError, match="No digit found in the image: nothing on it stands"):
            mnist_style(grey(phone_photo(blank, seed=seed, ruled=ruled)))


def test_ruled_lines_are_taken_away_and_the_digit_kept(test_digits):
    x_test, _ = test_digits
    digit = x_test[0]
    plain = mnist_style(grey(phone_photo(digit, seed=3, pen="black", ruled=False)))
    ruled = mnist_style(grey(phone_photo(digit, seed=3, pen="black", ruled=True)))
    assert cosine(plain, ruled) > 0.9
    # Dark pencil lines, edge to edge, one through the digit: as dark as a faint pen.
    stroke = np.asarray(Image.fromarray(digit).resize((168, 168), Image.Resampling.BICUBIC)) > 110
    paper = np.full((300, 400), 0.9)
    paper[60:228, 110:278][stroke] = 0.15
    clean = mnist_style(paper)
    for row in range(12, 300, 32):
        paper[row : row + 2] = np.minimum(paper[row : row + 2], 0.5)
    assert cosine(mnist_style(paper), clean) > 0.95


def test_thin_pens_and_markers_both_get_mnist_strokes(test_digits):
    """Stroke width is brought to MNIST's for the digit's size, whatever pen drew it."""
    x_test, _ = test_digits
    shape = np.asarray(Image.fromarray(x_test[1]).resize((200, 200), Image.Resampling.BICUBIC))
    from scipy import ndimage

    stroke = shape > 110
    fine = ndimage.binary_erosion(stroke, iterations=4)
    marker = ndimage.binary_dilation(stroke, iterations=8)
    out = {}
    for name, mask in (("fine", fine), ("marker", marker)):
        paper = np.where(mask, 0.1, 0.9)
        out[name] = mnist_style(paper)
        assert half_stroke(out[name]) == pytest.approx(MNIST_HALF_STROKE, rel=0.5), name
    assert cosine(out["fine"], out["marker"]) > 0.8
    assert half_stroke(mnist_style(1 - fine.astype(float))) < 2 * half_stroke(out["marker"])


def test_a_drawing_light_on_dark_and_dark_on_light_agree(test_digits):
    """The page's canvas and a scan of a white-board: the same digit either way round."""
    x_test, _ = test_digits
    digit = x_test[2] / 255.0
    big = np.kron(digit, np.ones((10, 10)))  # a 280×280 drawing, as the page's canvas sends
    assert cosine(mnist_style(big), mnist_style(1 - big)) > 0.99
    assert cosine(mnist_style(big), digit) > 0.8


@pytest.mark.slow
def test_the_default_model_reads_18_of_20_phone_photos(test_digits, tmp_path, capsys):
    """The issue's test, as a new user would run it: ``glassnet train`` with its defaults (5
    epochs), then ``glassnet predict`` on 20 photos (two of each digit). Measured over nine sets
    of 20: 18, 20, 19, 19, 19, 19, 20, 20, 20 right; the conversion before: 1 to 3 of 20."""
    x_test, y_test = test_digits
    model = tmp_path / "mnist.keras"
    assert cli.main(["train", "--seed", "0", "--verbose", "0", "-o", str(model)]) == 0
    images, labels = twenty_digits(x_test, y_test)
    paths = []
    for seed, digit in enumerate(images):
        paths.append(tmp_path / f"photo{seed}.jpg")
        paths[-1].write_bytes(phone_photo(digit, seed=seed))
    capsys.readouterr()
    assert cli.main(["predict", str(model), *map(str, paths)]) == 0
    answers = [
        int(line.split(": ")[1][0])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(str(tmp_path))
    ]
    right = sum(int(a == y) for a, y in zip(answers, labels))
    assert len(answers) == 20 and right >= 18, f"{right} of 20: {answers} for {labels.tolist()}"


def test_load_digit_image_reads_the_photo_file(test_digits, tmp_path):
    x_test, _ = test_digits
    path = tmp_path / "photo.jpg"
    path.write_bytes(phone_photo(x_test[3], seed=1))
    assert np.array_equal(load_digit_image(path), mnist_style(grey(path.read_bytes())))


def test_a_landscape_is_said_to_hold_no_digit(tmp_path):
    """Sky, clouds and grass under a wavy horizon: its dark part runs from edge to edge and
    fills most of its box. Refused with a sentence, where it was read as "4, 99.8 % sure"."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    rows = np.arange(480)[:, None]
    horizon = (260 + 30 * np.sin(np.linspace(0, 3, 640))).astype(int)
    scene = np.broadcast_to(0.75 + 0.15 * rows / 480, (480, 640)).copy()
    below = rows >= horizon[None, :]
    grass = 0.25 + ndimage.gaussian_filter(rng.random((480, 640)), 2)
    clouds = ndimage.gaussian_filter(rng.random((480, 640)), 25) * 8
    scene[below] = np.clip(grass[below], 0, 1)
    scene[~below] = np.clip(scene[~below] + clouds[~below] - clouds.mean(), 0, 1)
    path = tmp_path / "landscape.jpg"
    Image.fromarray((scene * 255).astype(np.uint8)).convert("RGB").save(path)
    with pytest.raises(ValueError, match="No digit-like ink found: the dark part of the picture "
                                         "runs from edge to edge"):  # fmt: skip
        load_digit_image(path)
