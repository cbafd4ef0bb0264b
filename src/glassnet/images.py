"""Turning a user's photo or scan of a digit into an MNIST-style input.

MNIST's digits were made this way: greyscale, the digit light on a dark background, scaled
(keeping its aspect ratio) to fit a 20×20 box, then placed in a 28×28 image so that its centre of
mass sits at the centre. ``load_digit_image`` does the same to any image — a phone photo of paper
in uneven light, a scan, a drawing, dark ink on light paper or light on dark — so that a model
trained on MNIST sees what it was trained on (``mnist_style`` lists the steps). Pillow reads the
file; scikit-image and SciPy do the image processing. All three are imported here only, when an
image is converted.
"""

from __future__ import annotations

import io
import stat
import struct
from pathlib import Path

import numpy as np

__all__ = ["MAX_PIXELS", "load_digit_image", "mnist_style", "read_digit_image", "render_ascii"]


MAX_PIXELS = 50_000_000  # a 50-megapixel photo is the largest image taken
MAX_FILE_BYTES = 100 << 20
WORKING_SIDE = 2048  # larger images are reduced to about this before any float conversion
WORKING_PIXELS = 400  # the conversion itself looks at the image with its longer side this long
FAINTEST_INK = 0.25  # blank paper's noise and shading stay below 0.16 (measured), pens above 0.5
SCENE_SPAN, SCENE_FILL = 0.95, 0.5  # "ink" this wide (of the picture) and this full is a scene
MNIST_HALF_STROKE = 0.065  # MNIST's mean half stroke width ÷ the digit's longer side (measured)


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


def _open_greyscale(path) -> np.ndarray:
    """The image in ``path`` (a file name, or a file object named ``path`` in messages; its
    first frame) as greyscale floats 0–1, of bounded size."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    source, path = (path, path.name) if hasattr(path, "read") else (path, path)
    try:
        with Image.open(source) as img:  # reads the header only
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

    A photo of a digit on paper is not MNIST: the light is uneven, a corner is in shadow, the
    paper may be ruled, the pen thin or thick, the digit small and off-centre. The steps, each a
    function below:

    1. ``_ink``: which way round the image is (dark ink on light paper, or light on dark), the
       paper's brightness estimated everywhere (a grey closing: the strokes are narrower than
       the window, the shading is wider) and divided out, ruled lines (ink that runs across
       most of the width) taken away;
    2. ``_digit_mask``: Otsu's threshold on the ink, then the connected components that make up
       the digit (the largest and those of a useful size near it; specks and far marks dropped);
    3. ``_mnist_strokes``: the strokes made as thick, relative to the digit's size, as MNIST's;
    4. scaled to fit ``box``×``box`` (anti-aliased, as MNIST's were) and placed in the
       ``size``×``size`` image with its centre of mass at the centre.
    """
    from PIL import Image

    grey = _working_size(np.asarray(grey, dtype=np.float64))
    ink = _ink(grey)
    mask = _digit_mask(ink)
    rows, cols = np.nonzero(mask)
    crop = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # (h, w) around it
    _refuse_a_scene(crop, mask.shape)
    crop = _mnist_strokes(crop)
    h, w = crop.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray((crop * 255).astype(np.uint8)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS if scale > 1 else Image.Resampling.BOX
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


def _refuse_a_scene(crop: np.ndarray, shape: tuple) -> None:
    """A ValueError where the "ink" found is no written digit: a dark area that runs from edge
    to edge of the picture and fills most of its box (a horizon, grass, a table's edge). Of
    300 test photos of digits, one spans the picture, filling 15 % of its box; a landscape
    fills 78 % of one that spans it."""
    span = max(crop.shape[0] / shape[0], crop.shape[1] / shape[1])
    fill = float(crop.mean())
    if span >= SCENE_SPAN and fill > SCENE_FILL:
        raise ValueError(
            f"No digit-like ink found: the dark part of the picture runs from edge to edge and "
            f"fills {fill:.0%} of its box, as a scene does (a horizon, an edge), not a written "
            "digit. Photograph one digit on paper, large, not touching the picture's edges."
        )


def _working_size(grey: np.ndarray) -> np.ndarray:
    """Large photos made smaller (averaging), so that every step below costs the same."""
    from PIL import Image

    longest = max(grey.shape)
    if longest <= WORKING_PIXELS:
        return grey
    scale = WORKING_PIXELS / longest
    h, w = max(1, round(grey.shape[0] * scale)), max(1, round(grey.shape[1] * scale))
    small = Image.fromarray(grey.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


def _ink(grey: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, 0 (paper) to 1 (the darkest stroke), shading removed."""
    from scipy import ndimage

    if grey.max() - grey.min() < 0.1:
        raise ValueError("No digit found in the image: it is (nearly) one flat colour.")
    # Ink is the minority: dark ink pulls the mean below the median, light ink above it.
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    skew = grey.mean() - np.median(grey)
    dark_ink = skew < 0 if abs(skew) > 0.01 else np.median(border) > 0.5
    paper = grey if dark_ink else 1.0 - grey  # paper light, ink dark, from here on

    # The paper's own brightness, everywhere: the brightest value in a window wider than any
    # stroke (a grey closing), smoothed. Dividing by it evens out light and shadow.
    window = max(3, min(grey.shape) // 4) | 1
    background = ndimage.grey_closing(paper, size=(window, window))
    background = ndimage.gaussian_filter(background, sigma=window / 4)
    ink = np.clip(1.0 - paper / np.maximum(background, 1e-3), 0.0, 1.0)

    # Ruled lines: ink that runs, unbroken, from edge to edge. An opening with a long
    # horizontal segment keeps exactly such runs (and a digit's long base, which does not reach
    # both edges); what is darker than the line (a pen stroke crossing it) stays.
    width = grey.shape[1]
    if width >= 40:
        lines = ndimage.grey_opening(ink, size=(1, int(width * 0.7)))  # (h, w)
        ruled = (lines > 0.05).mean(axis=1) >= 0.95  # (h,): rows a line crosses entirely
        ink = ink - lines * ruled[:, None]
    ink = ndimage.gaussian_filter(ink, sigma=0.5 * max(grey.shape) / WORKING_PIXELS)  # sensor noise
    peak = np.percentile(ink, 99.9)
    if peak < FAINTEST_INK:
        raise ValueError(
            "No digit found in the image: nothing on it stands out from the paper around it "
            f"by {FAINTEST_INK:.0%} or more."
        )
    return np.clip(ink / peak, 0.0, 1.0)


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """The digit's pixels: Otsu's threshold, then the components that make up the digit."""
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops

    threshold = max(threshold_otsu(ink), 0.2)
    labels = label(ink > threshold, connectivity=2)
    regions = sorted(regionprops(labels), key=lambda r: r.area, reverse=True)
    main = regions[0]
    top, left, bottom, right = main.bbox
    reach = 0.5 * max(bottom - top, right - left)  # a 5's flag or a 4's stem may stand apart
    keep = [main.label]
    for region in regions[1:]:
        r0, c0, r1, c1 = region.bbox
        near = r0 < bottom + reach and r1 > top - reach and c0 < right + reach and c1 > left - reach
        if near and region.area >= 0.1 * main.area:
            keep.append(region.label)
    return np.isin(labels, keep)


def _mnist_strokes(mask: np.ndarray) -> np.ndarray:
    """The digit's strokes thickened or thinned to MNIST's width for its size, as 0/1 floats.

    The half width of a stroke is the mean distance from its centre line (the skeleton) to the
    paper; MNIST's is ``MNIST_HALF_STROKE`` of the digit's longer side.
    """
    from scipy import ndimage
    from skimage.morphology import disk, skeletonize

    pad = max(mask.shape) // 4 + 2  # room to grow
    mask = np.pad(mask, pad)
    skeleton = skeletonize(mask)
    half = ndimage.distance_transform_edt(mask)[skeleton].mean()
    target = MNIST_HALF_STROKE * (max(mask.shape) - 2 * pad)
    change = round(target - half)
    if change >= 1:
        mask = ndimage.binary_dilation(mask, structure=disk(change))
    elif change <= -1:
        thinner = ndimage.binary_erosion(mask, structure=disk(-change))
        mask = thinner if thinner.sum() > 0.2 * mask.sum() else mask
    rows, cols = np.nonzero(mask)
    return mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float64)


def load_digit_image(path, size: int = 28) -> np.ndarray:
    """The image at ``path`` as an MNIST-style (size, size) float32 array with values 0–1."""
    path = Path(path)
    _check_file(path)
    return mnist_style(_open_greyscale(path), size=size, box=round(size * 20 / 28))


def read_digit_image(data: bytes, size: int = 28, name: str = "the image") -> np.ndarray:
    """An image file's bytes (a drawing or a photo sent to the page) made MNIST-style, as
    ``load_digit_image`` does a file; ``name`` is what error messages call it."""
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(
            f"{name} is {len(data) / 1e6:.0f} MB; glassnet reads images up to "
            f"{MAX_FILE_BYTES / 1e6:.0f} MB."
        )
    stream = io.BytesIO(data)
    stream.name = name
    return mnist_style(_open_greyscale(stream), size=size, box=round(size * 20 / 28))


def render_ascii(image: np.ndarray) -> str:
    """A small picture of a 0–1 image in characters: two image rows per line of text."""
    shades = " .:-=+*#%@"
    rows = image.shape[0] - image.shape[0] % 2
    paired = (image[0:rows:2] + image[1:rows:2]) / 2  # (rows/2, cols)
    index = np.clip((paired * (len(shades) - 1)).round().astype(int), 0, len(shades) - 1)
    return "\n".join("".join(shades[i] for i in row) for row in index)
