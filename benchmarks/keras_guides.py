"""keras.io's guides, snippet by snippet, with only their imports changed: glassnet against Keras 3.

A guide on keras.io is a Python file whose prose sits in module-level strings between runs of
code; each run of code is one snippet, as the page shows it. keras-io's guides are not part of
this repository: point ``--guides`` at a checkout of https://github.com/keras-team/keras-io (its
``guides/`` folder, or ``guides/keras_core/`` for the Keras 3 texts). Each chosen guide runs
twice, in fresh processes and folders of their own: once with its ``keras`` imports turned into
``glassnet`` (as ``keras_io.py`` turns them), once on real Keras 3 (``KERAS_BACKEND``, torch by
default). The snippets run in order in one namespace, as a reader runs them in a notebook; one
that fails is recorded with its error and the next one runs.

Data that a guide would download comes from here for both runs: MNIST from ``GLASSNET_DATA``
through glassnet's loader, CIFAR-10 as same-shaped random images. A snippet is in scope when
real Keras 3 on this machine runs it: one that fails there too needs another backend, a GPU, the
network (pretrained weights) or a package that is not here, and is counted apart.

    python benchmarks/keras_guides.py --guides ~/keras-io/guides/keras_core --only sequential_model

Prints a markdown table per guide (snippets that ran on each framework) and, under it, each
snippet glassnet failed with its first line and its error.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from keras_io import turn_imports

RUNNER = """
import contextlib, io, json, sys
snippets = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
exec(sys.argv[3], namespace)
results = []
for code in snippets:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            exec(compile(code, "<snippet>", "exec"), namespace)
            results.append(None)
        except BaseException as error:  # a snippet's failure, whatever it is, is its result
            message = (str(error).strip().splitlines() or [""])[0]
            results.append(f"{type(error).__name__}: {message}"[:300])
    json.dump(results, open(sys.argv[2], "w"))  # after each one: a timeout keeps what ran
"""

DATA = """
import {framework} as _keras
import glassnet.datasets.mnist as _mnist
import numpy as _np

def _cifar10_like():  # CIFAR-10's shapes and dtypes: 50,000 + 10,000 images, labels (n, 1)
    rng = _np.random.default_rng(0)
    return ((rng.integers(0, 256, (50000, 32, 32, 3), dtype=_np.uint8),
             rng.integers(0, 10, (50000, 1), dtype=_np.uint8)),
            (rng.integers(0, 256, (10000, 32, 32, 3), dtype=_np.uint8),
             rng.integers(0, 10, (10000, 1), dtype=_np.uint8)))

_keras.datasets.mnist.load_data = _mnist.load_data  # MNIST from GLASSNET_DATA, not the web
if hasattr(_keras.datasets, "cifar10"):  # where it is missing, the guide finds that out
    _keras.datasets.cifar10.load_data = _cifar10_like
"""


def snippets(source: str) -> list[str]:
    """The runs of code between a guide's module-level strings, in order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    runs, current = [], []
    for node in tree.body:
        prose = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        prose = prose and isinstance(node.value.value, str)
        if prose:
            if current:
                runs.append(current)
            current = []
        else:
            current.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
    if current:
        runs.append(current)
    return ["\n".join(run) for run in runs]


def run(codes: list[str], framework: str, timeout: int) -> list[str | None]:
    """Each snippet's error (None where it ran), run in order in one fresh process."""
    env = {**os.environ, "MPLBACKEND": "Agg", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND",
                                                                              "torch")}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:  # what a guide saves lands there
        given, taken = Path(folder) / "snippets.json", Path(folder) / "results.json"
        turned = [turn_imports(code, framework, keep_tensorflow=True) for code in codes]
        given.write_text(json.dumps(turned))  # tf stays: tf.data feeds Keras on any backend
        data = DATA.format(framework="glassnet" if framework == "glassnet" else "keras")
        ended = f"over {timeout} s (the guide's process, all snippets together)"
        try:
            done = subprocess.run([sys.executable, "-c", RUNNER, str(given), str(taken), data],
                                  env=env, cwd=folder, timeout=timeout, capture_output=True,
                                  text=True)  # fmt: skip
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                ended = f"the guide's process ended: {last[:200]}"
        except subprocess.TimeoutExpired:
            pass
        results = json.loads(taken.read_text()) if taken.exists() else []
        return results + [ended] * (len(codes) - len(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guides", required=True, type=Path, help="keras-io's guides/ folder")
    parser.add_argument("--only", nargs="*", help="guide names, without .py (default: all)")
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in args.guides.glob("*.py"))
    print("| guide | snippets | Keras 3 runs | glassnet runs of those |")
    print("| --- | --- | --- | --- |")
    failures, totals = [], [0, 0, 0]
    for name in names:
        codes = snippets((args.guides / f"{name}.py").read_text())
        ours, theirs = run(codes, "glassnet", args.timeout), run(codes, "keras", args.timeout)
        in_scope = [i for i, error in enumerate(theirs) if error is None]
        passed = [i for i in in_scope if ours[i] is None]
        for i, total in enumerate((len(codes), len(in_scope), len(passed))):
            totals[i] += total
        print(f"| {name} | {len(codes)} | {len(in_scope)} | {len(passed)} |", flush=True)
        failures += [(name, i, codes[i], ours[i]) for i in in_scope if ours[i] is not None]
        failures += [(name, i, codes[i], f"(Keras 3 too) {theirs[i]}") for i in range(len(codes))
                     if theirs[i] is not None]  # fmt: skip
    print(f"| all | {totals[0]} | {totals[1]} | {totals[2]} |")
    for name, i, code, error in failures:
        first = next((line for line in code.splitlines() if line.strip()), "")
        print(f"\n- {name}, snippet {i + 1} (`{first.strip()[:70]}`): {error}")


if __name__ == "__main__":
    main()
