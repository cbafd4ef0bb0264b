"""Phone-style photos of hand-drawn digits, made by the tests.

A real handwritten digit (an MNIST test image, never seen in training) is drawn large with a
pen of some width and colour, turned a little, placed off-centre on a sheet of paper lit
unevenly (a light gradient and a darker corner), ruled or plain, then blurred as a camera
would, given sensor noise and saved as a JPEG. Each photo comes from its own seed, so a failure
can be looked at again.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PENS = {"black": (25, 25, 30), "blue": (30, 55, 160)}


def phone_photo(digit: np.ndarray, seed: int, pen: str | None = None, ruled: bool | None = None):
    """A JPEG (bytes) of the 28×28 uint8 MNIST ``digit`` as a phone photo of paper."""
    rng = np.random.default_rng(seed)
    height, width = (480, 640) if rng.random() < 0.5 else (640, 480)
    pen = pen or ("blue" if rng.random() < 0.5 else "black")
    ruled = bool(rng.random() < 0.4) if ruled is None else ruled

    # The stroke: the digit scaled to a glyph of 120–280 pixels, its outline at MNIST's half
    # grey level, made thinner or bolder (a fine pen or a marker), turned by up to 15 degrees.
    glyph = int(rng.integers(120, 280))
    big = Image.fromarray(digit).resize((glyph, glyph), Image.Resampling.BICUBIC)
    stroke = big.point(lambda v: 255 if v > 110 else 0)
    weight = int(rng.integers(-2, 4))
    if weight > 0:
        stroke = stroke.filter(ImageFilter.MaxFilter(2 * weight + 1))
    elif weight < 0:
        stroke = stroke.filter(ImageFilter.MinFilter(2 * -weight + 1))
    stroke = stroke.rotate(float(rng.uniform(-15, 15)), Image.Resampling.BILINEAR, expand=True)
    ink = np.asarray(stroke, dtype=np.float64) / 255.0  # (g, g) 0–1

    # The paper: warm white, lit from one side, a shadow in one corner, maybe ruled.
    rows = np.linspace(0, 1, height)[:, None]
    cols = np.linspace(0, 1, width)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.95 - 0.3 * (np.cos(angle) * cols + np.sin(angle) * rows + 1) / 2
    corner_r, corner_c = rng.integers(0, 2, size=2)
    distance = np.hypot(rows - corner_r, cols - corner_c)
    light = light * (1 - 0.45 * np.exp(-((distance / 0.45) ** 2)))  # (h, w)
    paper = np.array([245.0, 240.0, 228.0])[None, None, :] * light[..., None]  # (h, w, 3)
    if ruled:
        spacing = int(rng.integers(28, 42))
        for y in range(int(rng.integers(10, spacing)), height, spacing):
            paper[y : y + 2] = paper[y : y + 2] * np.array([0.78, 0.85, 0.97])

    # The digit somewhere off-centre, its centre within the middle 60 % of the sheet.
    g_h, g_w = ink.shape
    cy = int(rng.uniform(0.2, 0.8) * height)
    cx = int(rng.uniform(0.2, 0.8) * width)
    top = int(np.clip(cy - g_h // 2, 0, height - g_h))
    left = int(np.clip(cx - g_w // 2, 0, width - g_w))
    coverage = np.zeros((height, width))
    coverage[top : top + g_h, left : left + g_w] = ink * rng.uniform(0.8, 0.95)
    colour = np.array(PENS[pen], dtype=np.float64) * light[..., None]
    photo = paper * (1 - coverage[..., None]) + colour * coverage[..., None]

    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.5))))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(
        0, rng.uniform(3, 8), (height, width, 3)
    )
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(rng.integers(70, 92)))
    return out.getvalue()


def twenty_digits(x_test: np.ndarray, y_test: np.ndarray, seed: int = 2026):
    """Two test images of each digit 0–9, chosen by ``seed``: (images, labels)."""
    rng = np.random.default_rng(seed)
    picks = [int(i) for d in range(10) for i in rng.choice(np.flatnonzero(y_test == d), 2, False)]
    return x_test[picks], y_test[picks]


def draw_digit(path, dark_on_light=True, size=(120, 160)):
    """A "1" as one thick stroke, dark on light paper (or light on dark), saved at ``path``."""
    paper, ink = (240, 240, 235), (20, 20, 20)
    if not dark_on_light:
        paper, ink = ink, paper
    img = Image.new("RGB", size, paper)
    ImageDraw.Draw(img).line([(size[0] // 2, 20), (size[0] // 2, size[1] - 20)], fill=ink, width=12)
    img.save(path)
    return path
