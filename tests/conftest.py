"""Shared fixtures: float64 for gradient checks, a clean session per test, MNIST when present."""

from __future__ import annotations

import http.server
import importlib.metadata
import os
import threading
from pathlib import Path

import hypothesis
import numpy as np
import pytest

import glassnet
from glassnet import backend, cli, i18n

# The products of the whole suite go through MKL wherever it is installed, whatever the
# processor: ``auto`` keeps NumPy's BLAS on a processor that is not Intel's (faster there), and
# MKL's paths must still be tested on such a machine. test_matmul checks the choice itself.
try:
    importlib.metadata.distribution("mkl")
    os.environ.setdefault("GLASSNET_BLAS", "mkl")
except importlib.metadata.PackageNotFoundError:
    pass

# No per-example deadline: the first example to reach a fused kernel pays its compilation (once
# per fresh install, or after the kernels change), and a timed unit test is flaky by nature.
hypothesis.settings.register_profile("glassnet", deadline=None)
hypothesis.settings.load_profile("glassnet")


@pytest.fixture(autouse=True)
def clean_session(monkeypatch, tmp_path):
    """Fresh layer names and no global seed; downloads never leave this machine; English,
    whatever the machine's LANG (tests of the translations ask for theirs)."""
    backend.clear_session()
    i18n.set_language("en")
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GLASSNET_MIRRORS", "http://127.0.0.1:9/{dataset}/")  # port 9: discard
    yield
    glassnet.config.set_floatx("float32")


@pytest.fixture
def float64():
    """Run the test with float64 parameters and activations (gradient checks)."""
    glassnet.config.set_floatx("float64")
    yield
    glassnet.config.set_floatx("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _data_dir() -> Path | None:
    value = os.environ.get("GLASSNET_DATA")
    if not value:
        return None
    path = Path(value)
    return path if (path / "mnist" / "train-images-idx3-ubyte.gz").is_file() else None


@pytest.fixture(scope="session")
def mnist_arrays():
    """MNIST as float32 vectors in [0, 1] and integer labels, from GLASSNET_DATA."""
    folder = _data_dir()
    if folder is None:
        pytest.skip(
            "MNIST not available: set GLASSNET_DATA to a folder holding mnist/ "
            "with the four IDX .gz files (CI uses ../shared/data)"
        )
    from glassnet.datasets import _fetch, mnist

    (x, y), (xt, yt) = _fetch._read_folder(folder / mnist.SPEC.name, mnist.SPEC)
    prep = lambda a: a.reshape(len(a), -1).astype("float32") / 255  # noqa: E731
    return prep(x), y, prep(xt), yt


@pytest.fixture
def no_mnist(monkeypatch, tmp_path):
    """A machine where MNIST is nowhere and cannot be downloaded."""
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


@pytest.fixture
def digits_model(tmp_path, no_mnist):
    """A small model trained by `glassnet train` on the bundled 8×8 digits, saved as .keras."""
    path = tmp_path / "digits.keras"
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "digits",
                "--seed",
                "1",
                "--hidden",
                "64",
                "--verbose",
                "0",
                "-o",
                str(path),
            ]
        )
        == 0
    )
    return path


@pytest.fixture
def server(tmp_path):
    """An HTTP server on localhost serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def small_saved_model(tmp_path_factory):
    """A small trained model (Adam state and a metric included) saved as .keras, for the
    hostile-file suites to mutate: (path, its members by name, x, its predictions on x)."""
    import zipfile

    from glassnet.layers import Dense, Input
    from glassnet.models import Sequential

    backend.clear_session()
    glassnet.utils.set_random_seed(0)
    model = Sequential([Input(shape=(4,)), Dense(3, activation="relu"), Dense(3),
                        Dense(2, activation="softmax")])  # fmt: skip
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.eye(2)[[0, 1] * 4], epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("small") / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return path, members, x, model.predict(x, verbose=0)
