"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

A model trained on MNIST is served by ``glassnet serve``'s own application under uvicorn on a free
localhost port; the tests draw digits with mouse strokes, read the prediction and the panels,
click a neuron, take a training step and switch the language. Screenshots go to
``GLASSNET_SCREENSHOTS`` when it is set (look at them: that is what a student sees).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from glassnet import layers
from glassnet.models import Sequential
from glassnet.serve import Models, create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [  # headless as root, and no connection attempts to Google's hosts (none are reachable)
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
if not Path(CHROMIUM).is_file():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_arrays):
    """The page for an MLP and a CNN trained a little on MNIST, at http://127.0.0.1:PORT/."""
    import uvicorn

    x, y, _, _ = mnist_arrays
    folder = tmp_path_factory.mktemp("models")
    mlp = Sequential([layers.Input(shape=(784,)), layers.Dense(64, activation="relu"),
                      layers.Dense(10, activation="softmax")])  # fmt: skip
    mlp.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    mlp.fit(x[:30000], y[:30000], epochs=2, batch_size=64, verbose=0)
    mlp.save(folder / "mnist-mlp.keras")
    for name in ("W", "b"):  # the same answers, given with near certainty: C ≈ 0 at each
        mlp.layers[-1].params[name] *= 8
    mlp.save(folder / "mnist-sure.keras")
    cnn = Sequential([layers.Input(shape=(28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                      layers.MaxPooling2D(2), layers.Flatten(),
                      layers.Dense(10, activation="softmax")])  # fmt: skip
    cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cnn.fit(x[:10000].reshape(-1, 28, 28, 1), y[:10000], epochs=1, batch_size=64, verbose=0)
    cnn.save(folder / "mnist-cnn.keras")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Models.from_arguments(None, folder))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def open_page(browser, server, model: str, size=(1280, 1400)):
    """(context, page, the page's errors): the page at ``size``, ``model`` chosen."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    page.select_option("#model", model)
    return context, page, errors


@pytest.fixture
def page(browser, server):
    context, page, errors = open_page(browser, server, "mnist-mlp.keras")
    yield page
    context.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    folder = os.environ.get("GLASSNET_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


STROKES = {
    1: [[(0.5, 0.15), (0.5, 0.85)]],
    7: [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
    0: [[(0.5, 0.15), (0.28, 0.3), (0.25, 0.6), (0.4, 0.85), (0.62, 0.82), (0.74, 0.55),
         (0.7, 0.25), (0.5, 0.15)]],
}  # fmt: skip


def draw(page, digit: int) -> None:
    """Draw ``digit`` on the canvas with mouse strokes, as a person would."""
    page.get_by_test_id("draw").scroll_into_view_if_needed()
    box = page.get_by_test_id("draw").bounding_box()
    for stroke in STROKES[digit]:
        points = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke
        ]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=12)
        page.mouse.up()


def prediction(page) -> str:
    """The prediction once the last drawing has been answered."""
    page.wait_for_function(
        "document.querySelector('[data-testid=prediction]').textContent.trim() !== '–'"
    )
    page.wait_for_timeout(300)  # the last stroke's answer
    return page.get_by_test_id("prediction").inner_text()


@pytest.mark.parametrize("digit", [1, 7, 0])
def test_a_drawn_digit_is_recognized_and_every_layer_shown(page, digit):
    draw(page, digit)
    assert prediction(page).startswith(str(digit))
    assert page.get_by_test_id("layer").count() == 2  # Dense 64, Dense 10
    assert page.locator(".panel .cell").count() == 64
    assert page.locator(".bars .bar").count() == 10
    shot(page, f"drawn-{digit}")
    page.get_by_test_id("clear").click()
    assert page.get_by_test_id("prediction").inner_text() == "–"
    assert page.get_by_test_id("layer").count() == 0


def test_clicking_a_neuron_shows_its_z(page):
    draw(page, 7)
    prediction(page)
    page.locator(".panel .cell").nth(5).click()
    neuron = page.get_by_test_id("neuron")
    neuron.get_by_text("z = w·a + b").wait_for()
    text = neuron.inner_text()
    assert "neuron 5" in text and "a = relu(z)" in text
    assert neuron.locator("tr").count() == 10  # header, 8 largest terms, the rest


def test_a_cnn_shows_feature_maps_and_a_filter(page):
    page.select_option("#model", "mnist-cnn.keras")
    draw(page, 1)
    assert prediction(page)[0].isdigit()
    panels = page.get_by_test_id("layer")
    assert panels.count() == 4  # conv, pool, flatten, dense
    assert panels.nth(0).locator("canvas.map").count() == 8
    panels.nth(0).locator("canvas.map").nth(3).click()
    page.get_by_test_id("neuron").get_by_text("filter 3").wait_for()
    shot(page, "cnn")


def test_one_training_step_from_the_page(page):
    draw(page, 7)
    assert prediction(page).startswith("7")
    page.select_option("#label", "3")
    page.get_by_test_id("step").click()
    result = page.get_by_test_id("step-result")
    result.get_by_text("case 1").wait_for()
    text = result.inner_text()
    assert "case 2" in text and "✓" in text and "✗" not in text
    assert "the true label 3 now has" in text
    assert "− 0.01 ×" in text  # W ← W − η·∂C/∂W with the numbers of one weight
    assert "output layer: ∂C/∂z = a − y = [" in text
    shot(page, "step")


def test_the_language_switch_speaks_traditional_chinese(page):
    page.select_option("[data-testid=lang]", "zh_TW")
    page.get_by_text("梯度下降 Gradient Descent").first.wait_for()
    draw(page, 1)
    assert prediction(page).startswith("1")
    assert "把握" in page.get_by_test_id("prediction").inner_text()
    assert page.locator("h2", has_text="寫一個數字").count() == 1
    shot(page, "zh-TW")
    page.select_option("[data-testid=lang]", "en")
    page.locator("h2", has_text="Draw a digit").wait_for()


def test_the_deck_example_and_the_descent_slider(page):
    assert "0.982" in page.get_by_test_id("deck").inner_html()
    slider = page.get_by_test_id("descent-rate")
    verdict = page.get_by_test_id("descent-verdict")
    for value, expected in (("-1", "Converges"), ("-2", "Still crawling"), ("0.05", "Diverges")):
        slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)
        page.wait_for_function(
            "([el, want]) => el.textContent.startsWith(want)",
            arg=[verdict.element_handle(), expected],
        )
    shot(page, "descent")


def test_a_photo_chosen_with_the_button_is_converted_like_predict(page, tmp_path):
    from PIL import Image, ImageDraw

    path = tmp_path / "photo.png"
    photo = Image.new("RGB", (600, 450), (235, 232, 220))
    ImageDraw.Draw(photo).line([(300, 60), (300, 390)], fill=(30, 40, 140), width=18)
    photo.save(path)
    page.set_input_files("#photo", str(path))
    assert prediction(page).startswith("1")


def test_a_training_run_from_the_page_draws_its_curves(page):
    page.select_option("#train-samples", "2000")
    page.select_option("#train-epochs", "1")
    page.get_by_test_id("train").click()
    status = page.get_by_test_id("train-status")
    page.wait_for_function(
        "el => el.textContent.startsWith('Done:')", arg=status.element_handle(), timeout=60_000
    )
    assert page.locator("#model").input_value() == "mnist-mlp.keras · trained here"
    draw(page, 1)
    assert prediction(page)[0].isdigit()
    shot(page, "training-run")


def test_a_20_mb_photo_gets_a_message(page):
    big = {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (20 << 20)}
    page.set_input_files("#photo", files=[big])
    error = page.locator("#error")
    error.get_by_text("The photo is 21.0 MB; the page takes images up to 10 MB.").wait_for()
    assert page.get_by_test_id("prediction").inner_text() == "–"


def overflow(page) -> int:
    """How far the page scrolls sideways (0: it fits the screen)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def in_view(page, selector: str) -> bool:
    """Whether the element at ``selector`` comes onto the screen (within 2 s)."""
    try:
        page.wait_for_function(
            "s => { const el = document.querySelector(s); if (!el) return false;"
            " const r = el.getBoundingClientRect();"
            " return r.bottom > 0 && r.top < window.innerHeight && r.height > 0; }",
            arg=selector,
            timeout=2000,
        )
    except playwright_api.TimeoutError:
        return False
    return True


@pytest.mark.parametrize("lang", ["en", "zh_TW"])
@pytest.mark.parametrize(
    "size", [(360, 740), (390, 844), (1280, 900)], ids=["small-phone", "phone", "desktop"]
)
def test_every_panel_fits_and_every_answer_appears_where_the_student_looks(
    browser, server, size, lang
):
    context, page, errors = open_page(browser, server, "mnist-cnn.keras", size)
    page.select_option("[data-testid=lang]", lang)
    page.wait_for_function(f"document.documentElement.lang === '{lang.replace('_', '-')}'")
    draw(page, 7)
    prediction(page)
    assert overflow(page) == 0
    # a filter clicked: its numbers come into view
    page.locator("canvas.map").nth(2).click()
    assert in_view(page, "#neuron table")
    # a step: every layer under its own rule, ✓ everywhere, in view, and it all fits
    page.select_option("#label", "3")
    page.get_by_test_id("step").scroll_into_view_if_needed()
    page.get_by_test_id("step").click()
    result = page.get_by_test_id("step-result")
    result.locator("table").wait_for()
    text = result.inner_text()
    checks = result.locator("table").inner_text()
    assert checks.count("✓") == 2 and "✗" not in checks  # the conv layer and the dense one
    for kind in ("MaxPooling2D", "Flatten"):
        assert kind in text
    assert in_view(page, "#step-result table") and overflow(page) == 0
    shot(page, f"step-{lang}-{size[0]}")
    # a step at a near-certain network's own answer: C ≈ 0 is said, with a label to try
    page.select_option("#model", "mnist-sure.keras")
    draw(page, 7)
    prediction(page)
    page.get_by_test_id("step").click()
    page.get_by_test_id("tiny-loss").wait_for()
    text = result.inner_text()
    checks = result.locator("table").inner_text()
    assert checks.count("✓") == 2 and "✗" not in checks
    assert "C = 0.0000" not in text and "e\u2011" in text  # powers of ten, never cut at e-
    assert in_view(page, "[data-testid=tiny-loss]") and overflow(page) == 0
    shot(page, f"tiny-loss-{lang}-{size[0]}")
    page.get_by_test_id("tiny-loss").locator("button").click()  # its second choice instead
    page.wait_for_function("!document.querySelector('[data-testid=tiny-loss]')")
    assert "✓" in result.inner_text() and overflow(page) == 0
    # the deck's picture and the charts stay legible and inside the screen
    page.get_by_test_id("deck").scroll_into_view_if_needed()
    font = page.evaluate(
        "(() => { const t = document.querySelector('#deck text');"
        " return t.getBoundingClientRect().height; })()"
    )
    assert font >= 9, font
    drawn = page.evaluate(  # the descent chart drawn at the size it is shown: legible words
        "(() => { const c = document.querySelector('#descent');"
        " return [c.width, Math.round(c.clientWidth)]; })()"
    )
    assert drawn[0] == drawn[1], drawn
    assert overflow(page) == 0
    shot(page, f"page-{lang}-{size[0]}")
    context.close()
    assert not errors, errors
