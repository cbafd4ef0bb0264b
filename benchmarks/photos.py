"""How many phone-style photos of handwritten digits a model reads right.

Trains the default model as ``glassnet train`` does (784-512-256-10, 5 epochs, seed 0) unless
``--model`` names one, then converts sets of 20 photos made by ``tests/photos.py`` (two of each
digit: MNIST test digits drawn with a blue or black pen, turned, off-centre, on unevenly lit,
shadowed, sometimes ruled paper, saved as JPEG) and prints how many of each set it reads right,
with the conversion's time per photo. Needs MNIST (GLASSNET_DATA).

    python benchmarks/photos.py --sets 9
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from glassnet import cli  # noqa: E402
from glassnet.datasets import mnist  # noqa: E402
from glassnet.images import load_digit_image  # noqa: E402
from glassnet.models import load_model  # noqa: E402
from tests.photos import phone_photo, twenty_digits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file (default: train the default model)")
    parser.add_argument("--sets", type=int, default=3, help="sets of 20 photos (default: 3)")
    args = parser.parse_args()
    (_, _), (x_test, y_test) = mnist.load_data()
    with tempfile.TemporaryDirectory() as folder:
        path = args.model
        if path is None:
            path = str(Path(folder) / "default.keras")
            cli.main(["train", "--seed", "0", "--verbose", "0", "-o", path])
        model = load_model(path, compile=False)
        scores, seconds = [], []
        for k in range(args.sets):
            images, labels = twenty_digits(x_test, y_test, seed=2026 + k)
            right = 0
            for i, (digit, label) in enumerate(zip(images, labels)):
                photo = Path(folder) / f"photo-{k}-{i}.jpg"
                photo.write_bytes(phone_photo(digit, seed=100 * k + i))
                start = time.perf_counter()
                x = load_digit_image(photo).reshape(1, *model.input_shape[1:])
                seconds.append(time.perf_counter() - start)
                right += int(np.argmax(model.predict(x, verbose=0)[0]) == label)
            scores.append(right)
            print(f"set {k + 1}: {right} of 20 right")
    print(f"in all: {sum(scores)} of {20 * len(scores)}; the conversion takes "
          f"{1000 * np.median(seconds):.0f} ms per photo (median)")  # fmt: skip


if __name__ == "__main__":
    main()
