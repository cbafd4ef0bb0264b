"""The page's server (glassnet.serve): its JSON, its limits, its messages, and Ctrl-C."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

import glassnet
from glassnet import glassbox, layers
from glassnet.models import Sequential
from glassnet.serve import Models, create_app
from glassnet.serve.app import MAX_IMAGE_BYTES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's note on which HTTP client it prefers
    from starlette.testclient import TestClient


def mlp():
    model = Sequential([
        layers.Input(shape=(784,)),
        layers.Dense(16, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def cnn():
    model = Sequential([
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


@pytest.fixture
def folder(tmp_path):
    """A folder with an MLP and a CNN saved in it, as a user's would be."""
    mlp().save(tmp_path / "mlp.keras")
    cnn().save(tmp_path / "cnn.keras")
    return tmp_path


@pytest.fixture
def client(folder):
    return TestClient(create_app(Models.from_arguments(None, folder)))


def png(draw_strokes, size=280, background=0, ink=255) -> bytes:
    """A drawing as the page's canvas sends it: a PNG, light strokes on black."""
    image = Image.new("L", (size, size), background)
    draw_strokes(ImageDraw.Draw(image), ink)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def one(draw, ink):
    draw.line([(140, 40), (140, 240)], fill=ink, width=20)


def seven(draw, ink):
    draw.line([(70, 60), (210, 60), (120, 240)], fill=ink, width=20)


def test_info_lists_the_folder_models_and_their_layers(client):
    info = client.get("/api/info").json()
    assert sorted(info["models"]) == ["cnn.keras", "mlp.keras"]
    assert [layer["kind"] for layer in info["models"]["cnn.keras"]["layers"]] == [
        "Conv2D", "MaxPooling2D", "Flatten", "Dense"]  # fmt: skip
    assert info["models"]["mlp.keras"]["side"] == 28
    assert info["languages"] == {"en": "English", "zh_TW": "繁體中文"}


def test_a_broken_file_or_a_model_of_text_is_named_not_served(folder):
    (folder / "broken.keras").write_bytes(b"not a zip")
    text = Sequential([layers.Input(shape=(30,)), layers.Dense(2, activation="softmax")])
    text.save(folder / "text.keras")
    client = TestClient(create_app(Models.from_arguments(None, folder)))
    info = client.get("/api/info").json()
    assert sorted(info["models"]) == ["cnn.keras", "mlp.keras"]
    assert info["unusable"]["broken.keras"].startswith("broken.keras cannot be used: ")
    assert info["unusable"]["text.keras"] == ("The model reads inputs of shape (30,), not images.")
    answer = client.post("/api/see?model=broken.keras", content=png(one))
    assert answer.status_code == 400 and "cannot be used" in answer.json()["error"]


def test_the_page_and_its_own_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200
    for testid in ("draw", "clear", "prediction", "lang"):
        assert f'data-testid="{testid}"' in page.text
    assert "/static/page.js" in page.text and "http" not in page.text.replace("http://www.w3", "")
    assert client.get("/static/page.js").status_code == 200
    assert client.get("/static/page.css").status_code == 200


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/app.py"])
def test_no_request_opens_a_file_outside_the_static_folder(client, path):
    assert client.get(path).status_code == 404


def test_see_returns_every_layer_of_a_drawing(client):
    answer = client.post("/api/see?model=mlp.keras", content=png(one)).json()
    image = np.array(answer["image"])
    assert image.shape == (28, 28) and image.min() >= 0 and image.max() <= 1
    assert [p["view"] for p in answer["layers"]] == ["vector", "output"]
    assert len(answer["layers"][0]["values"]) == 16
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert answer["prediction"] == int(np.argmax(answer["probabilities"]))


def test_see_shows_a_cnns_feature_maps(client):
    answer = client.post("/api/see?model=cnn.keras", content=png(seven)).json()
    conv, pool = answer["layers"][:2]
    assert conv["view"] == "maps" and np.array(conv["maps"]).shape == (4, 26, 26)
    assert np.array(pool["maps"]).shape == (4, 13, 13)
    assert answer["layers"][-1]["view"] == "output"


def test_a_photo_goes_through_the_same_conversion_as_predict(client, tmp_path):
    from glassnet.images import load_digit_image

    path = tmp_path / "seven.png"
    path.write_bytes(png(seven, size=400, background=230, ink=30))  # dark ink on paper
    answer = client.post("/api/see?model=mlp.keras", content=path.read_bytes()).json()
    assert np.allclose(answer["image"], load_digit_image(path), atol=1e-4)


def test_a_neuron_is_z_equals_w_dot_a_plus_b(client):
    seen = client.post("/api/see?model=mlp.keras", content=png(seven)).json()
    n = client.post("/api/neuron", json={"model": "mlp.keras", "image": seen["image"],
                                         "layer": 1, "neuron": 3}).json()  # fmt: skip
    assert n["n_inputs"] == 784 and len(n["terms"]) == 8
    shown = sum(t["wa"] for t in n["terms"]) + n["rest"] + n["b"]
    assert shown == pytest.approx(n["z"], abs=1e-4) and n["z_check"] == pytest.approx(
        n["z"], abs=1e-4
    )
    assert n["a"] == pytest.approx(max(n["z"], 0.0), abs=1e-6)  # relu
    assert n["a"] == pytest.approx(seen["layers"][0]["values"][3], abs=1e-4)
    sizes = [abs(t["wa"]) for t in n["terms"]]
    assert sizes == sorted(sizes, reverse=True)


def test_a_filter_is_shown_where_it_answers_most(client):
    seen = client.post("/api/see?model=cnn.keras", content=png(seven)).json()
    n = client.post("/api/neuron", json={"model": "cnn.keras", "image": seen["image"],
                                         "layer": 1, "neuron": 2}).json()  # fmt: skip
    assert n["window"] == [3, 3, 1] and n["n_inputs"] == 9
    r, c = n["position"]
    image = np.array(seen["image"])
    window = image[r : r + 3, c : c + 3].reshape(-1)
    terms = {t["j"]: t["a"] for t in n["terms"]}
    assert all(window[j] == pytest.approx(a, abs=1e-4) for j, a in terms.items())
    assert n["a"] == pytest.approx(np.max(seen["layers"][0]["maps"][2]), abs=1e-4)  # relu(max z)


def test_one_training_step_is_the_glass_box_trace(client):
    seen = client.post("/api/see?model=mlp.keras", content=png(one)).json()
    label = (seen["prediction"] + 1) % 10  # a label it gets wrong, so that the step matters
    s = client.post("/api/step", json={"model": "mlp.keras", "image": seen["image"],
                                       "label": label, "learning_rate": 0.5}).json()  # fmt: skip
    assert s["C_new"] < s["C"]
    assert s["probabilities"][label] > seen["probabilities"][label]
    output, hidden = s["layers"][1], s["layers"][0]
    assert output["case_1"] and output["is_output"] and not hidden["case_1"]
    assert output["error"] < 1e-4 and hidden["error"] < 1e-4  # finite differences agree
    assert output["W_change"] > 0
    u = output["update"]  # W ← W − η·∂C/∂W, for the weight that moves most
    assert u["w_new"] == pytest.approx(u["w"] - 0.5 * u["grad"], abs=1e-5)
    assert abs(u["w_new"] - u["w"]) == pytest.approx(output["W_change"], rel=1e-4)
    one_hot = np.eye(10)[label]
    assert output["dC_dz"] == pytest.approx(np.array(seen["probabilities"]) - one_hot, abs=1e-4)
    assert len(hidden["dC_dz"]) == 16  # up to MAX_SHOWN numbers are sent in full
    # The model itself did not change: the same drawing, the same answer.
    again = client.post("/api/see?model=mlp.keras", content=png(one)).json()
    assert again["probabilities"] == seen["probabilities"]


def test_the_deck_example_has_the_decks_numbers(client):
    d = client.get("/api/deck").json()
    assert d["layers"][0]["z"] == [4.0, -2.0]
    assert d["layers"][0]["a"] == pytest.approx([0.98, 0.12], abs=0.005)
    assert d["layers"][2]["a"] == pytest.approx([0.62, 0.83], abs=0.005)
    reference = glassbox.trace(glassbox.deck_network(), glassbox.DECK_INPUT, glassbox.DECK_TARGET)
    assert d["C_new"] == pytest.approx(reference.C_new)


@pytest.mark.parametrize(("rate", "verdict"), [(0.002, "crawling"), (0.1, "converged"),
                                               (1.05, "diverged"), (1.5, "diverged")])  # fmt: skip
def test_the_descent_slider_crawls_converges_and_diverges(client, rate, verdict):
    walk = client.get(f"/api/descent?curve=quadratic&learning_rate={rate}").json()
    assert walk["verdict"] == verdict
    assert walk["steps"][0] == [-1.0, 17.0]


def test_the_page_words_come_in_traditional_chinese(client):
    words = client.get("/api/messages?lang=zh-TW").json()
    assert words["Gradient Descent"] == "梯度下降 Gradient Descent"
    english = client.get("/api/messages?lang=en").json()
    assert english["Gradient Descent"] == "Gradient Descent"


# ---- bad requests -------------------------------------------------------------------------------


def test_unknown_model_is_400_with_the_choices(client):
    answer = client.post("/api/see?model=../../etc/passwd", content=png(one))
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "Unknown model '../../etc/passwd'; this server offers cnn.keras, mlp.keras."
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "The body is not JSON: "),
        (b"[1, 2]", "The body must be a JSON object."),
        (json.dumps({"model": "mlp.keras", "image": [[0.0] * 5] * 5, "layer": 1, "neuron": 0}),
         "image must be 28×28 finite numbers; received shape (5, 5)."),
        (json.dumps({"model": "mlp.keras", "image": [[0.0] * 28] * 28, "layer": 7, "neuron": 0}),
         "layer must be 1 to 2; received 7."),
        (json.dumps({"model": "mlp.keras", "image": [[0.0] * 28] * 28, "layer": 1, "neuron": 99}),
         "Layer 1 has neurons 0 to 15; received 99."),
        (json.dumps({"model": "cnn.keras", "image": [[0.0] * 28] * 28, "layer": 2, "neuron": 0}),
         "Layer 2 (max_pooling2d, MaxPooling2D): the page shows the neurons of Dense and Conv2D"),
        (json.dumps({"model": "mlp.keras", "image": [[0.0] * 28] * 28, "layer": "1", "neuron": 0}),
         "layer must be a whole number; received '1'."),
        (json.dumps({"model": "mlp.keras", "image": "no", "layer": 1, "neuron": 0}),
         "image must be a list of rows of numbers."),
    ],
)  # fmt: skip
def test_malformed_neuron_requests_get_400_and_a_reason(client, body, message):
    answer = client.post("/api/neuron", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message)


def test_a_step_with_a_label_out_of_range_is_400(client):
    answer = client.post("/api/step", json={"model": "mlp.keras", "image": [[0.0] * 28] * 28,
                                            "label": 10})  # fmt: skip
    assert answer.status_code == 400 and answer.json()["error"] == "label=10 is out of range."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The body is empty: send an image file (PNG, JPEG, …)."),
        (b"not an image at all", "Cannot read the image as an image"),
        (png(lambda draw, ink: None), "No digit found in the image"),
    ],
)
def test_bad_images_get_400_and_a_reason(client, body, message):
    answer = client.post("/api/see?model=mlp.keras", content=body)
    assert answer.status_code == 400 and answer.json()["error"].startswith(message)


def test_a_20_mb_photo_gets_a_message_not_a_decoder(client):
    answer = client.post("/api/see?model=mlp.keras", content=b"\xff" * (20 << 20))
    assert answer.status_code == 413
    assert answer.json()["error"] == (
        f"The request is 21.0 MB; the page takes images up to {MAX_IMAGE_BYTES / 1e6:.0f} MB. "
        "Crop the photo, or save it smaller."
    )


def test_the_page_refuses_the_same_photos_before_sending_them():
    from glassnet.serve.app import STATIC

    assert f"const MAX_PHOTO_MB = {MAX_IMAGE_BYTES >> 20};" in (STATIC / "page.js").read_text()


def test_query_numbers_are_checked(client):
    answer = client.get("/api/descent?learning_rate=abc")
    assert answer.status_code == 400
    assert answer.json()["error"] == "learning_rate must be a number; received 'abc'."
    answer = client.get("/api/descent?curve=/etc/passwd")
    assert answer.status_code == 400 and answer.json()["error"].startswith("curve must be one of")


def test_models_are_chosen_at_start(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="No such model file: nothere.keras"):
        Models.from_arguments("nothere.keras", folder)
    assert Models.from_arguments(str(folder / "cnn.keras"), tmp_path).names() == ["cnn.keras"]
    models = Models.from_arguments(None, folder)
    mlp().save(folder / "late.keras")  # saved after the start: not offered
    client = TestClient(create_app(models))
    assert sorted(client.get("/api/info").json()["models"]) == ["cnn.keras", "mlp.keras"]
    answer = client.post("/api/see?model=late.keras", content=png(one))
    assert answer.status_code == 400 and answer.json()["error"].startswith("Unknown model")


def test_two_tabs_drawing_at_once_each_get_their_own_activations(client):
    """Each answer is computed from its own request: eight requests at once, two drawings,
    each answered as it is when asked alone."""
    alone = {name: client.post("/api/see?model=cnn.keras", content=png(draw)).json()
             for name, draw in (("one", one), ("seven", seven))}  # fmt: skip
    results, errors = [], []

    def tab(name, draw):
        try:
            for _ in range(3):
                results.append(
                    (name, client.post("/api/see?model=cnn.keras", content=png(draw)).json())
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=tab, args=pair) for pair in [("one", one), ("seven", seven)] * 2
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 12
    for name, answer in results:
        assert answer["layers"][0]["maps"] == alone[name]["layers"][0]["maps"]
        assert answer["probabilities"] == alone[name]["probabilities"]


# ---- the command ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_glassnet_serve_listens_on_localhost_and_stops_cleanly_on_ctrl_c(folder):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "glassnet.cli", "serve", "--no-browser", "--port", str(port)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/info"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    info = json.loads(answer.read())
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer: " + process.stderr.read()[-2000:])
        assert sorted(info["models"]) == ["cnn.keras", "mlp.keras"]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert f"glassnet is serving cnn.keras, mlp.keras at http://127.0.0.1:{port}/" in out
    assert "Traceback" not in err


def test_a_port_in_use_is_said_before_starting(folder, capsys):
    from glassnet import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert (
            cli.main(["serve", str(folder / "mlp.keras"), "--no-browser", "--port", str(port)]) == 1
        )
    assert capsys.readouterr().err == (
        f"glassnet: error: Port {port} on 127.0.0.1 is in use (another glassnet serve?); "
        "choose another with --port.\n"
    )


def test_serve_defaults_to_this_machine_only():
    from glassnet.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.browser) == ("127.0.0.1", 8000, True)


def test_a_drawn_digit_is_recognized_by_a_trained_model(mnist_arrays, tmp_path):
    x, y, _, _ = mnist_arrays
    model = mlp()
    model.fit(x[:20000], y[:20000], epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "mnist.keras")
    client = TestClient(create_app(Models.from_arguments(None, tmp_path)))
    assert client.post("/api/see?model=mnist.keras", content=png(one)).json()["prediction"] == 1
    assert client.post("/api/see?model=mnist.keras", content=png(seven)).json()["prediction"] == 7


def test_layering_keeps_the_server_out_of_the_library():
    """Importing glassnet does not import the web stack."""
    code = "import sys, glassnet, glassnet.glassbox; print('starlette' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr


# ---- a short training run ------------------------------------------------------------------------


def test_a_training_run_streams_its_progress_and_joins_the_models(folder, mnist_arrays):
    models = Models.from_arguments(None, folder)
    client = TestClient(create_app(models))
    glassnet.utils.set_random_seed(2)  # unseeded, a 784-16-10 net ended anywhere in 0.79–0.84
    with client.stream("POST", "/api/train", json={"model": "mlp.keras", "samples": 6400,
                                                   "epochs": 2}) as answer:  # fmt: skip
        assert answer.status_code == 200
        events = [json.loads(line) for line in answer.iter_lines() if line]
    assert events[0] == {"start": True, "samples": 6400, "epochs": 2, "steps": 100}
    progress = [e for e in events if "batch" in e]
    assert len(progress) == 2 * 20 and {"loss", "accuracy"} <= set(progress[0])  # 20 an epoch
    assert progress[-1]["loss"] < progress[0]["loss"]
    assert [e["epoch"] for e in events if e.get("end")] == [0, 1]
    done = events[-1]
    assert done["done"] and done["model"] == "mlp.keras · trained here"
    assert done["test_accuracy"] > 0.8
    assert "mlp.keras · trained here" in client.get("/api/info").json()["models"]
    seen = client.post("/api/see?model=mlp.keras · trained here", content=png(seven)).json()
    assert seen["prediction"] == 7
    assert not models.training.locked()


def test_one_training_run_at_a_time(folder):
    models = Models.from_arguments(None, folder)
    client = TestClient(create_app(models))
    with models.training:
        answer = client.post("/api/train", json={"samples": 1000})
    assert answer.status_code == 400
    assert answer.json()["error"] == "A training run is already going; wait for it to end."


def test_training_without_mnist_says_so(folder, monkeypatch, tmp_path):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "nothing"))
    models = Models.from_arguments(None, folder)
    answer = TestClient(create_app(models)).post("/api/train", json={"samples": 1000})
    assert answer.status_code == 503
    assert answer.json()["error"].startswith(
        "MNIST is not available here, so the page cannot train"
    )
    assert not models.training.locked()


@pytest.mark.parametrize(("body", "message"), [
    ({"samples": 10}, "samples=10 is out of range."),
    ({"epochs": 50}, "epochs=50 is out of range."),
    ({"model": "other.keras"}, "Unknown model 'other.keras'"),
])  # fmt: skip
def test_training_requests_are_checked(client, body, message):
    answer = client.post("/api/train", json=body)
    assert answer.status_code == 400 and answer.json()["error"].startswith(message)


def test_a_recurrent_model_reads_the_drawing_row_by_row(tmp_path):
    """An LSTM trained on MNIST row by row takes the same 28×28 image as 28 steps of 28."""
    lstm = Sequential([layers.Input(shape=(28, 28)), layers.LSTM(8),
                       layers.Dense(10, activation="softmax")])  # fmt: skip
    lstm.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    lstm.save(tmp_path / "rows.keras")
    client = TestClient(create_app(Models.from_arguments(None, tmp_path)))
    seen = client.post("/api/see?model=rows.keras", content=png(seven)).json()
    assert [p["view"] for p in seen["layers"]] == ["vector", "output"]
    assert not seen["layers"][0]["neurons"]  # the page makes Dense and Conv2D neurons clickable
    s = client.post("/api/step", json={"model": "rows.keras", "image": seen["image"], "label": 3,
                                       "learning_rate": 0.1}).json()  # fmt: skip
    assert s["C_new"] < s["C"] and s["layers"][1]["case_1"]
