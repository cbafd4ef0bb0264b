"""``glassnet serve`` under hostile requests: it answers each with a clear 4xx, never a 500, keeps
its memory bounded, and keeps answering a normal request during and after every burst.

The bursts run against a real server (uvicorn, with glassnet's guards) in a child process, whose
peak memory is read from /proc and whose descriptors are limited to 1,024, as on many machines.
"""

from __future__ import annotations

import io
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from glassnet import layers
from glassnet.models import Sequential
from glassnet.serve import Models, create_app

pytest.importorskip("httpx", reason="pip install -e '.[test]'")
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder with one small MNIST-shaped model."""
    path = tmp_path_factory.mktemp("served")
    model = Sequential([layers.Input(shape=(784,)), layers.Dense(8, activation="relu"),
                        layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.save(path / "small.keras")
    return path


@pytest.fixture
def client(folder):
    return TestClient(
        create_app(Models.from_arguments(None, folder)), raise_server_exceptions=False
    )


def _image_request(side: int = 28):
    return {"model": "small.keras", "image": [[0.0] * side] * side, "layer": 1, "neuron": 0}


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than"),
        (b'{"model": "small.keras", "label": ' + b"9" * 5000 + b"}", "The body is not JSON"),
        (b'{"model": ' * 50 + b"1" + b"}" * 50, "nests deeper than"),
    ],
    ids=["100,000 deep", "a 5,000-digit number", "50 objects deep"],
)
def test_hostile_json_gets_a_400_with_its_reason(client, body, said):
    for route in ("/api/step", "/api/neuron", "/api/train"):
        answer = client.post(route, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, (route, answer.status_code, answer.text[:200])
        assert said in answer.json()["error"]


# ---- a real server in a child process --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _limit_descriptors():  # in the child, before it starts: a common default
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.fixture
def server(folder, tmp_path):
    """``glassnet serve`` for ``folder`` on a free port, in a child process: (url, process)."""
    port = _free_port()
    code = (
        "import sys\n"
        "from glassnet.serve import serve\n"
        f"serve(folder=__import__('pathlib').Path({str(folder)!r}), port={port}, "
        "open_browser=False)\n"
    )
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 (read after the process ends)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=log,
                               preexec_fn=_limit_descriptors)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/api/info", timeout=2).read()
            break
        except OSError:
            time.sleep(0.1)
    yield url, process, tmp_path / "server.log"
    process.terminate()
    process.wait(timeout=10)
    log.close()


def _answers(url: str, timeout: float = 5.0) -> bool:
    """Whether a normal request gets its answer within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{url}/api/info", timeout=timeout) as answer:
            return answer.status == 200 and "small.keras" in json.loads(answer.read())["models"]
    except OSError:
        return False


def _peak_megabytes(process) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_thousand_half_open_connections_do_not_stop_the_server(server):
    url, process, log = server
    port = int(url.rsplit(":", 1)[1])
    held = []
    try:
        for _ in range(1100):  # connect, send nothing, keep the socket open
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            held.append(s)
        assert _answers(url), "no answer during the burst"
    finally:
        for s in held:
            s.close()
    assert _answers(url), "no answer after the burst"
    time.sleep(0.5)
    lines = log.read_text().splitlines()
    assert len(lines) < 50, lines[-5:]  # a repeated complaint is said once, with a count
    assert process.poll() is None


def test_slow_clients_are_cut_off_after_the_request_timeout(server):
    from glassnet.serve.guard import REQUEST_TIMEOUT

    url, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")  # and never the rest of the headers
    s.settimeout(REQUEST_TIMEOUT + 5)
    start = time.perf_counter()
    assert s.recv(100) == b""  # closed by the server
    assert time.perf_counter() - start < REQUEST_TIMEOUT + 2
    s.close()
    assert _answers(url)


def _big_png(megapixels: float) -> bytes:
    side = int((megapixels * 1e6) ** 0.5)
    picture = Image.new("L", (side, side), 255)
    ImageDraw.Draw(picture).line([(side // 2, side // 5), (side // 2, 4 * side // 5)], fill=0,
                                 width=side // 20)  # fmt: skip
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_burst_of_huge_photos_is_decoded_a_few_at_a_time(server):
    url, process, _ = server
    png = _big_png(50)  # 7,071 × 7,071: the most pixels glassnet reads
    assert len(png) < 10 << 20
    before = _peak_megabytes(process)
    statuses = []

    def upload():
        request = urllib.request.Request(f"{url}/api/see?model=small.keras", data=png,
                                         method="POST")  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    threads = [threading.Thread(target=upload) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert _answers(url, timeout=30), "no answer during the burst"
    for t in threads:
        t.join(timeout=180)
    assert sorted(set(statuses)) == [200] and len(statuses) == 16, statuses
    # measured at 50 MP: 61 → 423 MB (at 45 MP 62 → 350; decoded on every thread: 1,369);
    # one CI run reached 68 → 473, so the bound sits halfway between a few and all of them
    assert _peak_megabytes(process) < before + 700, (before, _peak_megabytes(process))
    assert _answers(url)


def test_a_folder_of_bombs_is_listed_as_unusable_at_a_small_cost(folder, tmp_path, monkeypatch):
    import zipfile

    import h5py

    bombs = tmp_path / "bombs"
    bombs.mkdir()
    with zipfile.ZipFile(folder / "small.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    for k in range(3):
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "r+") as f:
            del f["layers/dense/vars/0"]
            f.create_dataset("layers/dense/vars/0", shape=(2**28 + k,), dtype="f4")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in {**members, "model.weights.h5": buffer.getvalue()}.items():
                zf.writestr(name, data)
        (bombs / f"bomb{k}.keras").write_bytes(out.getvalue())
    code = (
        "import json\n"
        "from starlette.testclient import TestClient\n"
        "from pathlib import Path\n"
        "from glassnet.serve import Models, create_app\n"
        f"app = create_app(Models.from_arguments(None, Path({str(bombs)!r})))\n"
        "info = TestClient(app).get('/api/info').json()\n"
        "status = open('/proc/self/status').read().splitlines()\n"
        "print(int(next(x for x in status if x.startswith('VmHWM:')).split()[1]) / 1024)\n"
        "print(json.dumps(info['unusable']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ})  # fmt: skip
    assert done.returncode == 0, done.stderr
    peak, unusable = done.stdout.strip().split("\n", 1)
    unusable = json.loads(unusable)
    assert sorted(unusable) == ["bomb0.keras", "bomb1.keras", "bomb2.keras"]
    assert all("shape" in why or "parameters" in why for why in unusable.values()), unusable
    assert float(peak) < 600, peak  # the interpreter, NumPy, Starlette: not the bombs


def test_an_infinite_label_is_a_400(client):
    body = json.dumps({**_image_request(), "label": 1e400})  # JSON's 1e400 parses as infinity
    answer = client.post("/api/step", content=body.replace("Infinity", "1e400"))
    assert answer.status_code == 400 and "label must be a whole number" in answer.json()["error"]


def test_an_image_json_of_the_wrong_side_is_a_400(client):
    answer = client.post("/api/neuron", json=_image_request(side=5))
    assert answer.status_code == 400 and "28×28" in answer.json()["error"]
    np.testing.assert_equal(client.get("/api/info").status_code, 200)
