"""Turning a user's photo or scan of a digit into an MNIST-style input.

MNIST's digits were made this way: greyscale, the digit light on a dark background, scaled
(keeping its aspect ratio) to fit a 20×20 box, then placed in a 28×28 image so that its centre of
mass sits at the centre. ``load_digit_image`` does the same to any image — any size, dark ink on
light paper or light on dark — so that a model trained on MNIST sees what it was trained on.
Pillow reads the file; it is imported here only, when an image is loaded.
"""

from __future__ import annotations

import stat
import struct
from pathlib import Path

import numpy as np

__all__ = ["MAX_PIXELS", "load_digit_image", "mnist_style", "render_ascii"]


MAX_PIXELS = 50_000_000  # a 50-megapixel photo is the largest image taken
MAX_FILE_BYTES = 100 << 20
WORKING_SIDE = 2048  # larger images are reduced to about this before any float conversion


def _check_file(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"No such image file: {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file (a folder, a pipe, a device?).")
    if info.st_size > MAX_FILE_BYTES:
        raise ValueError(
            f"{path} is {info.st_size / 1e6:.0f} MB; glassnet reads images up to "
            f"{MAX_FILE_BYTES / 1e6:.0f} MB."
        )


def _as_grey(img) -> np.ndarray:
    """Any Pillow image as greyscale floats 0–1, scaled by its real range where it is not
    8-bit (16-bit, 32-bit and float images would otherwise be clipped to white)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("the image has pixels that are NaN or infinite.")
        low, high = values.min(), values.max()
        return (values - low) / (high - low) if high > low else np.zeros_like(values)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)  # transparent areas become paper
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def _open_greyscale(path: Path) -> np.ndarray:
    """The image at ``path`` (its first frame) as greyscale floats 0–1, of bounded size."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    _check_file(path)
    try:
        with Image.open(path) as img:  # reads the header only
            pixels = img.width * img.height
            if pixels > MAX_PIXELS:
                raise ValueError(
                    f"{path} is {img.width}×{img.height} pixels ({pixels / 1e6:.0f} megapixels);"
                    f" glassnet reads images up to {MAX_PIXELS / 1e6:.0f} megapixels. Crop or "
                    "scale it down first."
                )
            img.seek(0)  # an animation: its first frame
            if img.mode in ("RGB", "L", "CMYK", "YCbCr") and max(img.size) > WORKING_SIDE:
                img.draft(img.mode, (WORKING_SIDE, WORKING_SIDE))  # JPEG: decode smaller
            factor = max(img.size) // WORKING_SIDE
            img = img.reduce(factor) if factor > 1 else img
            img = ImageOps.exif_transpose(img)
            return _as_grey(img)
    except Image.DecompressionBombError:
        raise ValueError(
            f"{path} declares more pixels than is safe to decode (a decompression bomb?); "
            f"glassnet reads images up to {MAX_PIXELS / 1e6:.0f} megapixels."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, struct.error) as exc:
        raise ValueError(
            f"Cannot read {path} as an image ({exc}). Give a PNG, JPEG, BMP, GIF or TIFF file."
        ) from None
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"Cannot read {path} as a digit: {exc}") from None


def mnist_style(grey: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """A greyscale image (values 0–1, any size) as an MNIST-style ``size``×``size`` float array.

    Steps: make the digit light on dark (the border's brightness tells which way round it is),
    stretch its contrast, crop to the digit, scale it to fit ``box``×``box``, and centre it by
    its centre of mass.
    """
    from PIL import Image

    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: flip to MNIST's light on dark
        grey = 1.0 - grey
    background = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    peak = grey.max()
    if peak - background < 0.1:
        raise ValueError("No digit found in the image: it is (nearly) one flat colour.")
    ink = np.clip((grey - background) / (peak - background), 0.0, 1.0)
    ink[ink < 0.1] = 0.0  # paper texture and compression noise

    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # (h, w) around the digit
    h, w = crop.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray((crop * 255).astype(np.uint8)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    digit = np.asarray(resized, dtype=np.float64) / 255.0  # (new_h, new_w)

    # Put the centre of mass of the digit at the centre of the size×size image.
    total = digit.sum()
    cy = (digit.sum(axis=1) * np.arange(new_h)).sum() / total
    cx = (digit.sum(axis=0) * np.arange(new_w)).sum() / total
    top = int(np.clip(round(size / 2 - 0.5 - cy), 0, size - new_h))
    left = int(np.clip(round(size / 2 - 0.5 - cx), 0, size - new_w))
    out = np.zeros((size, size))
    out[top : top + new_h, left : left + new_w] = digit
    return out.astype(np.float32)


def load_digit_image(path, size: int = 28) -> np.ndarray:
    """The image at ``path`` as an MNIST-style (size, size) float32 array with values 0–1."""
    box = round(size * 20 / 28)
    return mnist_style(_open_greyscale(Path(path)), size=size, box=box)


def render_ascii(image: np.ndarray) -> str:
    """A small picture of a 0–1 image in characters: two image rows per line of text."""
    shades = " .:-=+*#%@"
    rows = image.shape[0] - image.shape[0] % 2
    paired = (image[0:rows:2] + image[1:rows:2]) / 2  # (rows/2, cols)
    index = np.clip((paired * (len(shades) - 1)).round().astype(int), 0, len(shades) - 1)
    return "\n".join("".join(shades[i] for i in row) for row in index)
