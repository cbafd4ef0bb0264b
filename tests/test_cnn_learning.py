"""keras-io's mnist_convnet, with only its imports changed, learns as it does in Keras."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "mnist_convnet.py"


@pytest.mark.slow
def test_keras_io_mnist_convnet_reaches_99_percent(mnist_arrays):
    """The script as keras.io has it (15 epochs, batch 128, Adam, validation_split 0.1), run
    unchanged; only the global seed is set, from outside, so that the run repeats.

    keras.io reports 99.22 % for one run of Keras. Here, on the same MNIST files: glassnet
    99.16 % (seed 1), 99.16 % (2), 99.02 % (3), 99.19 % (4), 99.18 % (unseeded); Keras 3.15 on
    TensorFlow 2.21, seed 1: 99.05 %. One run varies by about ±0.1 point: the test asks for 99 %."""
    run = subprocess.run(
        [sys.executable, "-c", "import runpy, glassnet; glassnet.utils.set_random_seed(1); "
         f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Epoch 15/15" in run.stdout and "val_accuracy" in run.stdout
    accuracy = float(re.search(r"Test accuracy: ([0-9.]+)", run.stdout).group(1))
    assert accuracy >= 0.990, f"test accuracy {accuracy:.4f}"
