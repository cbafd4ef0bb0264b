"""Run every notebook, English and zh-TW, top to bottom and keep its outputs in the file, so that
a reader sees them before running anything: ``python notebooks/execute.py`` (MNIST from
GLASSNET_DATA, as the tests take it). CI runs the same notebooks in tests/test_notebooks.py."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent


def execute(path: Path) -> None:
    """Run the notebook at ``path`` in a fresh kernel, in a scratch folder, and save it."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:  # the files a notebook saves land here
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": scratch}}).execute()  # fmt: skip
    nbformat.write(notebook, path)


if __name__ == "__main__":
    chosen = [Path(p) for p in sys.argv[1:]] or sorted(HERE.glob("**/*.ipynb"))
    for path in chosen:
        print(f"running {path}", flush=True)
        execute(path)
