"""keras-io's example scripts with only their imports changed: glassnet against real Keras 3.

keras-io's scripts are not part of this repository (their code stays theirs): point
``--examples`` at a checkout of https://github.com/keras-team/keras-io (its ``examples/``
folder). Each chosen script is run twice, in fresh processes: once with its ``keras`` and
``tensorflow.keras`` imports turned into ``glassnet``, once on real Keras 3 (``KERAS_BACKEND``,
torch by default).
Both runs get the same edits, listed per script below and printed with the results:

- data that would be downloaded comes from here instead (MNIST from ``GLASSNET_DATA`` through
  glassnet's loader, for both runs; other files as same-shaped stand-ins, said so);
- fewer epochs and, where an epoch would take minutes on two cores, fewer samples;
- ``plt.show()`` draws nowhere (``MPLBACKEND=Agg``); a line at the end prints the results.

    python benchmarks/keras_io.py --examples ~/keras-io/examples [--only vision/autoencoder.py]

Prints a markdown table: per script, each framework's results and seconds.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MNIST_LOADER = """
import glassnet.datasets.mnist as _mnist_source
keras.datasets.mnist.load_data = _mnist_source.load_data  # MNIST from GLASSNET_DATA, not the web
"""

SINE_DAYS = """
import numpy as _np
import pandas as _pd

def _nab_like(jump):  # NAB's art_daily_* files: 14 days of 5-minute values, one daily cycle
    index = _pd.date_range("2014-04-01", periods=4032, freq="5min", name="timestamp")
    rng = _np.random.default_rng(0 if not jump else 1)
    t = _np.arange(4032)
    value = 20 + 60 * (_np.sin(2 * _np.pi * t / 288) > 0) * _np.sin(2 * _np.pi * t / 288) ** 2
    value = value + rng.normal(0, 1.0, 4032)
    if jump:
        value[3000:3100] += 80  # the anomaly: a jump up for a few hours
    return _pd.DataFrame({"value": value}, index=index)

pd.read_csv = lambda url, **kw: _nab_like("jumpsup" in url)
"""


@dataclass
class Example:
    """One keras-io script: what it reaches for, and the edits both runs get."""

    path: str
    reaches_for: str
    data: str
    edits: list[tuple[str, str]] = field(default_factory=list)  # (regex, replacement), in order
    prelude: str = ""  # after the imports (a data loader, stand-in files)
    result: str = "{}"  # an expression of the script's names, printed as JSON at its end


EXAMPLES = {
    "vision/mnist_convnet.py": Example(
        path="vision/mnist_convnet.py",
        reaches_for="Conv2D, MaxPooling2D, Dropout, to_categorical, validation_split",
        data="MNIST (60,000 + 10,000), 2 epochs (the script: 15)",
        edits=[(r"epochs = 15", "epochs = 2")],
        prelude=MNIST_LOADER,
        result='{"test_loss": score[0], "test_accuracy": score[1]}',
    ),
    "vision/autoencoder.py": Example(
        path="vision/autoencoder.py",
        reaches_for="Conv2D, MaxPooling2D(padding='same'), UpSampling2D, binary_crossentropy",
        data="MNIST, the first 6,000 training images, 1 + 1 epochs (the script: 50 + 100)",
        edits=[
            (r"epochs=50", "epochs=1"),
            (r"epochs=100", "epochs=1"),
            (
                r"(\(train_dataset, _\), \(test_dataset, _\) = mnist.load_data\(\))",
                r"\1\ntrain_dataset = train_dataset[:6000]",
            ),
        ],
        prelude="from glassnet.datasets import mnist as _mnist_source\nmnist = _mnist_source\n",
        result='{"denoising_val_loss": autoencoder.evaluate(noisy_test_dataset, test_dataset, '
        "verbose=0)}",
    ),
    "timeseries/timeseries_anomaly_detection.py": Example(
        path="timeseries/timeseries_anomaly_detection.py",
        reaches_for="Conv1D(strides=2, padding='same'), Conv1DTranspose, Dropout, EarlyStopping",
        data="NAB-shaped stand-ins (4,032 five-minute values, a daily cycle; the test file with "
        "a jump up), 10 epochs (the script: 50, with early stopping)",
        edits=[(r"epochs=50", "epochs=10")],
        prelude=SINE_DAYS,
        result='{"val_loss": history.history["val_loss"][-1], "anomalous_samples": '
        "int(np.sum(anomalies)), 'anomalous_points': len(anomalous_data_indices)}",
    ),
}


def rewrite(source: str, example: Example, framework: str) -> str:
    """The script for one framework: its imports turned, the edits made, the prelude after the
    last import, and a line printing the results."""
    target = "glassnet" if framework == "glassnet" else "keras"
    source = re.sub(r"^import tensorflow as tf\n", "", source, flags=re.M)
    source = re.sub(r"^from tensorflow import keras$", f"import {target} as keras", source,
                    flags=re.M)  # fmt: skip
    source = re.sub(r"\btensorflow\.keras\b", target, source)
    source = re.sub(r"^import keras$", f"import {target} as keras", source, flags=re.M)
    source = re.sub(r"^from keras\b", f"from {target}", source, flags=re.M)
    for pattern, replacement in example.edits:
        source, count = re.subn(pattern, replacement, source)
        if not count:
            raise SystemExit(f"{example.path}: the edit {pattern!r} found nothing to change")
    lines = source.splitlines()
    imports = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    last_import = max(n.end_lineno for n in imports) - 1  # the line, counted from 0
    prelude = f"import {target} as keras\n" + example.prelude
    seed = "keras.utils.set_random_seed(0)\n"
    lines.insert(last_import + 1, prelude + seed)
    lines.append(f"print('RESULT ' + __import__('json').dumps({example.result}))")
    return "\n".join(lines) + "\n"


def run(script: str, framework: str, timeout: int) -> tuple[dict | str, float]:
    """Run a rewritten script in a fresh process: its results (or its last error), seconds."""
    env = {**os.environ, "MPLBACKEND": "Agg", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND",
                                                                              "torch")}  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, f.name], capture_output=True, text=True, env=env,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"over {timeout} s", timeout
    finally:
        os.unlink(f.name)
    seconds = time.perf_counter() - start
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :]), seconds
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"failed: {last[:160]}", seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", required=True, type=Path,
                        help="keras-io's examples/ folder")  # fmt: skip
    parser.add_argument("--only", nargs="*", default=sorted(EXAMPLES))
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()
    print("| script | reaches for | data and epochs (both runs) | glassnet | Keras 3 |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.only:
        example = EXAMPLES[name]
        source = (args.examples / example.path).read_text()
        cells = []
        for framework in ("glassnet", "keras"):
            result, seconds = run(rewrite(source, example, framework), framework, args.timeout)
            shown = (", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in result.items()) if isinstance(result, dict)
                     else result)  # fmt: skip
            cells.append(f"{shown} ({seconds:.0f} s)")
        print(f"| {name} | {example.reaches_for} | {example.data} | {cells[0]} | {cells[1]} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
