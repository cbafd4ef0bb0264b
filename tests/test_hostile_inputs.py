"""Hostile input, by area: data files, downloads, the Python API, images and the CLI.

Every case ends in one clear message saying what was received and what is expected, or in a
documented, identical result — never a traceback from inside a library, a hang, a silently
different result or memory far beyond the input's own size. Files that claim to be models are in
``test_hostile_files.py``.
"""

import gzip
import http.server
import io
import os
import re
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet
from glassnet.datasets import DatasetUnavailableError, _fetch, _idx, mnist
from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential

# ---- data files ---------------------------------------------------------------------------------


def idx(code: int, shape: tuple, data: bytes = b"") -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data


def write_gz(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(data)
    return path


def mnist_folder(folder: Path, images=None, labels=None, n=4) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images is None else images
    labels = rng.integers(0, 10, n, dtype=np.uint8) if labels is None else labels
    for prefix in ("train", "t10k"):
        write_gz(folder / f"{prefix}-images-idx3-ubyte.gz", idx(0x08, images.shape,
                                                                 images.tobytes()))  # fmt: skip
        code = {np.dtype(np.uint8): 0x08, np.dtype(">f4"): 0x0D}[labels.dtype]
        write_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", idx(code, labels.shape,
                                                                 labels.tobytes()))  # fmt: skip
    return folder


DATA_CASES = {
    "a label of 200": (None, np.array([1, 2, 200, 3], np.uint8),
                       r"labels \[200\] are not classes of MNIST, which has 10"),
    "no samples": (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), "0 images but 0"),
    "samples of 1×784": (np.zeros((4, 1, 784), np.uint8), None,
                         r"images are uint8 of shape \(4, 1, 784\); MNIST images are uint8 of "
                         r"shape \(n, 28, 28\)"),
    "float labels": (None, np.array([1, 2, 3, 4], ">f4"), "the labels are float32"),
}  # fmt: skip


@pytest.mark.parametrize("case", DATA_CASES)
def test_data_that_is_not_mnist_is_refused(tmp_path, monkeypatch, case):
    images, labels, message = DATA_CASES[case]
    mnist_folder(tmp_path / "mnist", images, labels)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        mnist.load_data()


def test_int8_images_are_refused(tmp_path):
    path = write_gz(tmp_path / "x.gz", idx(0x09, (2, 28, 28), bytes(2 * 784)))
    images = _idx.read_idx(path, expected_ndim=3)
    with pytest.raises(ValueError, match="the images are int8"):
        _fetch.check_split(mnist.SPEC, images, np.zeros(2, np.uint8), str(path))


def test_a_gzip_bomb_is_refused_from_its_header(tmp_path):
    # Declares 10⁶ images (784 MB); its data would inflate from a few KB. Nothing is inflated.
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx(0x08, (1_000_000, 28, 28)))
        for _ in range(200):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 1_000_000
    # The message comes from the header check, which runs before any data is inflated.
    with pytest.raises(ValueError, match="784,000,000 bytes of data; glassnet reads at most"):
        _idx.read_idx(path)


def test_dimensions_that_overflow_are_counted_exactly(tmp_path):
    # 4294967287 × 2333677112 × 4097603776 overflows int64 to exactly 47,040,000 in np.prod.
    path = write_gz(tmp_path / "x.gz", idx(0x08, (4294967287, 2333677112, 4097603776),
                                           bytes(47_040_000 // 1000)))  # fmt: skip
    with pytest.raises(ValueError, match="declares an array of shape"):
        _idx.read_idx(path)


def test_trailing_data_is_too_long_without_reading_it_all(tmp_path):
    path = tmp_path / "long.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx(0x08, (2,), b"\x01\x02"))
        for _ in range(100):
            f.write(bytes(1 << 20))
    with pytest.raises(ValueError, match=r"too long: its header announces shape \(2,\)"):
        _idx.read_idx(path)


def test_a_pipe_is_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.gz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file"):
        _idx.read_idx(fifo)


def test_a_bad_keras_npz_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    np.savez(tmp_path / "keras" / "datasets" / "mnist.npz",
             x_train=np.full((2, 28, 28), np.nan), y_train=np.zeros(2, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))  # fmt: skip
    with pytest.raises(ValueError, match=r"mnist.npz \(x_train, y_train\): the images are float64"):
        mnist.load_data()


# ---- downloads ------------------------------------------------------------------------------


@pytest.fixture
def hostile_server():
    """A localhost server whose files never end, or trickle in a byte at a time."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                if self.path.startswith("/endless/"):
                    while True:
                        self.wfile.write(bytes(1 << 16))
                elif self.path.startswith("/trickle/"):
                    for _ in range(100):
                        self.wfile.write(b"\x00")
                        self.wfile.flush()
                        time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def tiny_spec():
    return _fetch.DatasetSpec(name="tiny", title="Tiny", sha256=dict.fromkeys(_fetch.FILES, "0"),
                              mirrors=())  # fmt: skip


def test_an_endless_download_is_cut_at_the_cap(hostile_server, tmp_path, monkeypatch):
    monkeypatch.setattr(_fetch, "MAX_DOWNLOAD", 1 << 20)
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match="sent more than 1,048,576 bytes; stopped"):
        _fetch.fetch(tiny_spec(), mirrors=[f"{hostile_server}/endless/"], destination=tmp_path,
                     stream=io.StringIO())  # fmt: skip
    assert time.perf_counter() - start < 60  # a hang guard: the stream never ends
    assert list(tmp_path.iterdir()) == []  # no .part left behind


def test_a_trickle_meets_the_deadline(hostile_server, tmp_path, monkeypatch):
    monkeypatch.setattr(_fetch, "DEADLINE", 0.5)
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match="too slow: .* bytes in 0.5 s; gave up"):
        _fetch.fetch(tiny_spec(), mirrors=[f"{hostile_server}/trickle/"], destination=tmp_path,
                     stream=io.StringIO())  # fmt: skip
    assert time.perf_counter() - start < 9  # the trickle alone would take 10 s
    assert list(tmp_path.iterdir()) == []


def test_parts_left_by_a_killed_download_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".train-images-idx3-ubyte.gz.{dead}.part"
    stale.write_bytes(b"half")
    with pytest.raises(DatasetUnavailableError):
        _fetch.fetch(tiny_spec(), mirrors=["http://127.0.0.1:9/"], destination=tmp_path,
                     stream=io.StringIO())  # fmt: skip
    assert not stale.exists()


# ---- the Python API ------------------------------------------------------------------------------


def test_numpy_scalars_are_numbers():
    model = Sequential([Input(shape=(np.int64(4),)), Dense(np.int64(5)), Dropout(np.float32(0.5)),
                        Dense(np.int32(2))])  # fmt: skip
    assert model.output_shape == (None, 2)
    assert model.layers[1].rate == 0.5


API_CASES = [
    (lambda m, x, y: m.fit(x, None, verbose=0), ValueError, "Received y=None. Expected the"),
    (lambda m, x, y: m.fit([[1, 2, 3, 4], [1, 2]], y[:2], verbose=0), ValueError,
     "could not be made into one array: its samples have different shapes"),
    (lambda m, x, y: m.fit(x, y, validation_split="0.2", verbose=0), ValueError,
     "Received validation_split='0.2'. Expected a float in"),
    (lambda m, x, y: m.fit(x, y, verbose="loud"), ValueError,
     "Received verbose='loud'. Expected 'auto', 0, 1 or 2"),
    (lambda m, x, y: m.fit(x, y, epochs=2.5, verbose=0), ValueError, "Received epochs=2.5"),
    (lambda m, x, y: m.fit(x, y, batch_size=0, verbose=0), ValueError, "Received batch_size=0"),
    (lambda m, x, y: m.set_weights(["1", "2"]), TypeError, "must be real numbers"),
    (lambda m, x, y: m.set_weights([w + 1j for w in m.get_weights()]), TypeError,
     "must be real numbers; received an array of dtype complex"),
    (lambda m, x, y: m.set_weights("weights"), TypeError, "set_weights expects a list of arrays"),
    (lambda m, x, y: m.fit(x, np.eye(3)[y] * 2, verbose=0), ValueError,
     "categorical_crossentropy needs targets between 0 and 1"),
    (lambda m, x, y: m.fit(x.astype(complex), np.eye(3)[y], verbose=0), TypeError,
     "x must hold numbers; received an array of dtype complex"),
    (lambda m, x, y: m.predict(np.zeros((2, 5)), verbose=0), ValueError,
     r"Input x has shape \(2, 5\), but the model expects \(None, 4\)"),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(API_CASES)))
def test_bad_api_input_gets_glassnets_message(rng, case):
    action, error, message = API_CASES[case]
    model = Sequential([Input(shape=(4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=message):
        action(model, x, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing half-done


def test_glassnet_importable_names():
    assert glassnet.Model is glassnet.models.Model and glassnet.Input is glassnet.layers.Input


# ---- images ---------------------------------------------------------------------------------


def seven(size=120) -> np.ndarray:
    """A hand-drawn-looking 7: dark ink (0) on white paper (255), uint8."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(30, 25), (90, 25), (55, 100)], fill=0, width=9)
    return np.asarray(img)


def saved(tmp_path, name, make):
    path = tmp_path / name
    make(path)
    return path


def image_cases(tmp_path):
    from PIL import Image

    ink = seven()
    grey = Image.fromarray(ink)
    rgb = Image.merge("RGB", [grey] * 3)
    alpha = Image.fromarray(255 - ink)  # ink opaque, paper transparent
    return {
        "16-bit PNG": saved(tmp_path, "16.png", lambda p: Image.fromarray(
            ink.astype(np.uint16) * 257).save(p)),
        "16-bit PNG, a narrow range": saved(tmp_path, "16n.png", lambda p: Image.fromarray(
            ink.astype(np.uint16) * 4 + 30000).save(p)),
        "32-bit integer TIFF": saved(tmp_path, "32.tif", lambda p: Image.fromarray(
            ink.astype(np.int32) * 1000).save(p)),
        "float TIFF": saved(tmp_path, "f.tif", lambda p: Image.fromarray(
            ink.astype(np.float32) / 255).save(p)),
        "palette GIF": saved(tmp_path, "p.gif", lambda p: grey.convert("P").save(p)),
        "CMYK JPEG": saved(tmp_path, "c.jpg", lambda p: rgb.convert("CMYK").save(p, quality=95)),
        "RGBA with transparent paper": saved(tmp_path, "a.png", lambda p: Image.merge(
            "RGBA", [Image.new("L", grey.size, 0)] * 3 + [alpha]).save(p)),
        "LA": saved(tmp_path, "la.png", lambda p: Image.merge("LA", [grey, Image.new(
            "L", grey.size, 255)]).save(p)),
        "animated GIF (first frame)": saved(tmp_path, "anim.gif", lambda p: grey.save(
            p, save_all=True, append_images=[Image.new("L", grey.size, 255)])),
        "1-bit": saved(tmp_path, "1.png", lambda p: grey.convert("1").save(p)),
    }  # fmt: skip


def test_every_image_mode_sees_the_same_digit(tmp_path):
    from PIL import Image

    from glassnet.images import load_digit_image

    reference_path = tmp_path / "8bit.png"
    Image.fromarray(seven()).save(reference_path)
    reference = load_digit_image(reference_path)
    for name, path in image_cases(tmp_path).items():
        digit = load_digit_image(path)
        difference = np.abs(digit - reference).mean()
        assert difference < 0.02, f"{name}: mean difference {difference:.3f} from the 8-bit image"


def png_header(width, height) -> bytes:
    """A PNG whose header declares width × height; Pillow reads sizes from it lazily."""
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))  # fmt: skip

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(
        b"\x00" * 64)) + chunk(b"IEND", b"")  # fmt: skip


@pytest.mark.parametrize(
    "case,message",
    [
        ((20000, 20000), "more pixels than is safe to decode"),
        ((9400, 9400), r"is 9400×9400 pixels \(88 megapixels\); glassnet reads images up to 50"),
        ("nan", "has pixels that are NaN or infinite"),
        ("folder", "is not a regular file"),
        ("text", "Cannot read .* as an image"),
        ("truncated", "Cannot read .* as an image"),
    ],
)
def test_hostile_images_get_one_clear_message(tmp_path, case, message):
    from PIL import Image

    from glassnet.images import load_digit_image

    path = tmp_path / "image.png"
    if isinstance(case, tuple):
        path.write_bytes(png_header(*case))
    elif case == "nan":
        path = tmp_path / "nan.tif"
        values = seven().astype(np.float32)
        values[0, 0] = np.nan
        Image.fromarray(values).save(path)
    elif case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("not an image")
    else:
        Image.fromarray(seven()).save(path)
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=message):
        load_digit_image(path)


# ---- the CLI ------------------------------------------------------------------------------------


def run_cli(args, capsys):
    from glassnet import cli

    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out + err


CLI_CASES = {
    "a billion units": (["train", "--hidden", "1000000000"], "needs about .* GB of memory"),
    "output a folder": (["train", "--output", "{tmp}"], "--output must end in .keras"),
    "output a folder named .keras": (["train", "--output", "{tmp}/dir.keras"], "is a directory"),
    "output not .keras": (["train", "--output", "{tmp}/model.h5"], "--output must end in .keras"),
    "output where nothing can be written": (["train", "--output", "/proc/model.keras"],
                                            "Cannot write /proc/model.keras"),
    "start 1e308": (["descent", "--start", "1e308"], "expected a number between -1e6 and 1e6"),
    "start nan": (["descent", "--start", "nan"], "expected a number between -1e6 and 1e6"),
    "evaluate a pipe": (["evaluate", "{tmp}/pipe.keras"], "not a regular file"),
    "evaluate /dev/zero": (["evaluate", "{tmp}/zero.keras"], "not a regular file"),
    "predict a bomb": (["predict", "{tmp}/model.keras", "{tmp}/bomb.png"],
                       "more pixels than is safe to decode"),
    "predict a folder": (["predict", "{tmp}/model.keras", "{tmp}"], "is not a regular file"),
}  # fmt: skip


@pytest.fixture
def cli_files(tmp_path):
    (tmp_path / "dir.keras").mkdir()
    os.mkfifo(tmp_path / "pipe.keras")
    (tmp_path / "zero.keras").symlink_to("/dev/zero")
    (tmp_path / "bomb.png").write_bytes(png_header(20000, 20000))
    model = Sequential([Input(shape=(784,)), Dense(10, activation="softmax")])
    model.save(tmp_path / "model.keras")
    return tmp_path


@pytest.mark.parametrize("case", CLI_CASES)
def test_the_cli_refuses_in_one_line_before_any_work(cli_files, capsys, case):
    args, message = CLI_CASES[case]
    start = time.perf_counter()
    code, text = run_cli([a.format(tmp=cli_files) for a in args], capsys)
    assert code not in (0, None), text
    assert re.search(message, text), text
    assert "Traceback" not in text
    assert time.perf_counter() - start < 60  # a hang guard; the message shows it came first


def test_a_diverging_run_exits_nonzero_and_keeps_the_old_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "none"))  # the bundled 8×8 digits
    good = tmp_path / "good.keras"
    good.write_bytes(b"a good model")
    code, text = run_cli(["train", "--dataset", "digits", "--epochs", "1", "--verbose", "0",
                          "--learning-rate", "1e300", "--output", str(good)], capsys)  # fmt: skip
    assert code == 1 and "Training diverged" in text and "is untouched" in text
    assert good.read_bytes() == b"a good model"


def test_descent_says_the_file_it_wrote(tmp_path, capsys):
    code, text = run_cli(["descent", "--contour", str(tmp_path / "out" / "picture")], capsys)
    assert code == 0
    assert f"Wrote {tmp_path / 'out' / 'picture.png'}" in text
    assert (tmp_path / "out" / "picture.png").is_file()
