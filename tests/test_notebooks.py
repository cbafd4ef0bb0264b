"""Every notebook, English and its zh-TW twin, runs top to bottom (and quickly), as Jupyter runs
it: each figure shown once, the outputs kept in the file for a reader, the twins in step."""

import io
import os
import time
import tokenize
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

FOLDER = Path(__file__).parents[1] / "notebooks"
ENGLISH = sorted(FOLDER.glob("*.ipynb"))
TWINS = sorted((FOLDER / "zh-TW").glob("*.ipynb"))
NOTEBOOKS = ENGLISH + TWINS
NEEDS_MNIST = {"05-mnist-keras.ipynb", "06-inside-mnist.ipynb", "07-cnn.ipynb", "08-rnn.ipynb"}
INLINE = "module://matplotlib_inline.backend_inline"  # Jupyter's own way of showing figures


# What a translation changes (comments, strings; Python 3.12 splits f-strings), and layout.
TEXT = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}" if path.parent != FOLDER else path.stem


def _code(cell) -> str:
    """A code cell without its comments and strings: what a translation leaves alone."""
    kept = [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(cell.source + "\n").readline)
        if token.type not in TEXT and token.type not in LAYOUT
    ]
    return " ".join(kept)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[_name(p) for p in NOTEBOOKS])
def test_notebook_runs_and_shows_each_figure_once(path, tmp_path, monkeypatch):
    data = os.environ.get("GLASSNET_DATA")
    if path.name in NEEDS_MNIST and not (data and (Path(data) / "mnist").is_dir()):
        pytest.skip("MNIST not available: set GLASSNET_DATA (CI uses ../shared/data)")
    monkeypatch.setenv("MPLBACKEND", INLINE)
    stored = nbformat.read(path, as_version=4)
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    assert time.perf_counter() - start < 60, f"{path.name} took over a minute"
    code = [(kept, ran) for kept, ran in zip(stored.cells, notebook.cells)
            if ran.cell_type == "code"]  # fmt: skip
    for kept, ran in code:
        assert not [o for o in ran.outputs if o.output_type == "error"], ran.source
        images = [o.data["image/png"] for o in ran.outputs if "image/png" in o.get("data", {})]
        assert len(images) == len(set(images)), f"a figure drawn twice: {ran.source[:80]}"
        if ran.outputs:  # a reader sees the outputs without running it: python notebooks/execute.py
            assert kept.outputs, f"{path.name}: outputs not stored for {ran.source[:60]!r}"
    assert any("image/png" in o.get("data", {}) for _, ran in code for o in ran.outputs) or (
        path.stem.startswith(("02", "04"))  # the notebooks that draw no picture
    )


@pytest.mark.parametrize("twin", TWINS, ids=[p.stem for p in TWINS])
def test_the_zh_tw_twin_runs_the_same_code(twin):
    english = nbformat.read(FOLDER / twin.name, as_version=4)
    chinese = nbformat.read(twin, as_version=4)
    language = [c for c in chinese.cells if "set_language" in c.source]
    assert len(language) == 1 and 'set_language("zh-TW")' in language[0].source
    cells = [c for c in chinese.cells if c is not language[0]]
    assert [c.cell_type for c in cells] == [c.cell_type for c in english.cells]
    for mine, theirs in zip(cells, english.cells):
        if theirs.cell_type == "code":
            assert _code(mine) == _code(theirs), theirs.source
        else:
            assert any("\u4e00" <= ch <= "\u9fff" for ch in mine.source), mine.source
    assert len(TWINS) == len(ENGLISH)
