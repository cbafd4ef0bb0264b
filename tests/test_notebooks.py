"""Every notebook runs top to bottom (and quickly): one per part of the deck."""

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
NEEDS_MNIST = {"05-mnist-keras.ipynb", "06-inside-mnist.ipynb", "07-cnn.ipynb", "08-rnn.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    data = os.environ.get("GLASSNET_DATA")
    if path.name in NEEDS_MNIST and not (data and (Path(data) / "mnist").is_dir()):
        pytest.skip("MNIST not available: set GLASSNET_DATA (CI uses ../shared/data)")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    assert time.perf_counter() - start < 60, f"{path.name} took over a minute"
    errors = [
        o
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
