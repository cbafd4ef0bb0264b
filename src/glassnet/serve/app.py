"""The page's server: its own files, and JSON built from what the glass box already computes.

Every answer is computed from the request alone — the image the page sends, the model's name,
a label — in a worker thread (``model.capture`` keeps nothing in the layers, and a training
step is traced on a copy), so two tabs drawing at once each get their own activations. Nothing
a request says ever names a file: models are chosen when the server starts (``Models``), static
files come from this package's ``static`` folder only.

Endpoints (all JSON but the page):
    GET  /                  the page
    GET  /api/info          the models and their layers, the languages
    GET  /api/messages      the page's words in ``lang``
    POST /api/see?model=M   an image file's bytes (the canvas, a photo) -> what every layer does
    POST /api/neuron        {model, image, layer, neuron} -> z = W·a + b with its numbers
    POST /api/step          {model, image, label, learning_rate} -> one traced training step
    GET  /api/deck          the deck's worked example, every number of one step
    GET  /api/descent       gradient descent on a curve, for the learning-rate slider
    POST /api/train         {model, samples, epochs} -> a short training run, one JSON line per
                            progress report (loss, accuracy), then the trained model's name
"""

from __future__ import annotations

import concurrent.futures
import json
import queue
import threading
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from glassnet import glassbox, i18n
from glassnet.callbacks import Callback
from glassnet.glassbox import descent
from glassnet.images import read_digit_image
from glassnet.layers import Conv2D, Dense
from glassnet.models import clone_model, load_model

STATIC = Path(__file__).parent / "static"
MAX_IMAGE_BYTES = 10 << 20  # a photo larger than this gets a message, not a decoder
MAX_JSON_BYTES = 1 << 20
MAX_JSON_DEPTH = 8  # the page's requests nest two levels (an image: a list of rows)
# Images are decoded two at a time, always on the same two threads: a 45-megapixel photo takes
# ~90 MB while it is decoded, and memory freed on a thread stays with that thread's allocator,
# so a burst decoded on every thread of the pool kept ~1 GB (measured), two threads ~200 MB.
DECODER = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
TOP_TERMS = 8  # the largest w·a terms shown for a neuron
MAX_MAPS = 32  # feature maps sent per conv layer
MAX_SHOWN = 16  # a layer's ∂C/∂z is sent in full up to this many neurons
MAX_TRAINING_SAMPLES = 60_000
REPORTS_PER_EPOCH = 20  # progress lines a training run sends per epoch


class BadRequest(ValueError):
    """A request the page should not have sent: answered 400 with the reason."""


class TooLarge(BadRequest):
    """A body over the limit: answered 413."""


class Unavailable(BadRequest):
    """Something the request needs is not on this machine (MNIST, for a training run): 503."""


# ---- the models ---------------------------------------------------------------------------------


class Models:
    """The models the page may use, by name, fixed at start; each loaded once, when first used."""

    def __init__(self, paths: dict[str, Path]):
        self.paths = dict(paths)
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()
        self.training = threading.Lock()  # one training run at a time

    @classmethod
    def from_arguments(cls, model: str | None, folder: Path) -> Models:
        """MODEL if given, else every ``.keras`` file in ``folder`` (not below it)."""
        if model is not None:
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"No such model file: {model}")
            return cls({path.name: path})
        return cls({p.name: p for p in sorted(folder.glob("*.keras")) if p.is_file()})

    def names(self) -> list[str]:
        return list(self.paths) + [n for n in self._loaded if n not in self.paths]

    def add(self, name: str, model) -> None:
        """A model trained from the page, kept in memory (it is never written to a file)."""
        with self._lock:
            self._loaded[name] = model

    def get(self, name) -> object:
        if name is None:
            raise BadRequest(f"Name the model: one of {', '.join(self.names()) or 'none'}.")
        if name not in self.names():
            raise BadRequest(
                f"Unknown model {name!r}; this server offers {', '.join(self.names()) or 'none'}."
            )
        with self._lock:
            if name not in self._loaded:
                try:
                    model = load_model(self.paths[name])
                except (ValueError, OSError, KeyError, TypeError, NotImplementedError) as exc:
                    raise BadRequest(f"{name} cannot be used: {exc}") from None
                if not model.compiled:
                    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
                self._loaded[name] = model
            return self._loaded[name]


def _image_side(model) -> int:
    """The side of the square image the model reads: 28 for (784,) and (28, 28, 1) alike."""
    n = int(np.prod(model.input_shape[1:]))
    side = round(n**0.5)
    if side * side != n:
        raise BadRequest(f"The model reads inputs of shape {model.input_shape[1:]}, not images.")
    return side


def _as_input(model, image) -> np.ndarray:
    """The 28×28 image the page sends back (a list of rows) as one sample of the model's input."""
    side = _image_side(model)
    try:
        x = np.asarray(image, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRequest("image must be a list of rows of numbers.") from None
    if x.shape != (side, side) or not np.isfinite(x).all():
        raise BadRequest(f"image must be {side}×{side} finite numbers; received shape {x.shape}.")
    return np.clip(x, 0, 1).reshape(1, *model.input_shape[1:])


# ---- what the page shows ------------------------------------------------------------------------


def describe(model) -> dict:
    """The model's layers as the page lists them."""
    return {
        "input_shape": list(model.input_shape[1:]),
        "side": _image_side(model),
        "layers": [
            {"name": layer.name, "kind": type(layer).__name__, "neurons": _has_neurons(layer)}
            for layer in model.layers
        ],
    }


def _has_neurons(layer) -> bool:
    return isinstance(layer, (Dense, Conv2D))


def look(model, x) -> dict:
    """What every layer does with the sample x: activations, feature maps, the output's bars."""
    capture = model.capture(x)
    panels = []
    for number, (node, out) in enumerate(zip(capture.nodes, capture.outputs), start=1):
        layer, a = node.layer, np.asarray(out[0], dtype=np.float64)
        activation = getattr(layer, "activation", None)
        panel = {
            "number": number,
            "name": layer.name,
            "kind": type(layer).__name__,
            "activation": activation.name if activation is not None else None,
            "shape": list(a.shape),
            "neurons": _has_neurons(layer),
        }
        if a.ndim == 3:  # (rows, cols, channels): feature maps, the first MAX_MAPS of them
            panel["view"] = "maps"
            panel["maps"] = np.moveaxis(a[..., :MAX_MAPS], -1, 0).round(4).tolist()
            panel["channels"] = a.shape[-1]
        else:
            panel["view"] = "vector"
            panel["values"] = a.reshape(-1).round(4).tolist()
        panels.append(panel)
    panels[-1]["view"] = "output"
    probabilities = np.asarray(capture.outputs[-1][0], dtype=np.float64).reshape(-1)
    return {
        "layers": panels,
        "prediction": int(np.argmax(probabilities)),
        "probabilities": probabilities.round(5).tolist(),
    }


def see_image(model, data: bytes) -> dict:
    """An image file's bytes, made MNIST-style as ``glassnet predict`` makes a photo, and what
    every layer does with it; the 28×28 image the network saw goes back with the answer."""
    try:  # a burst of large photos waits its turn instead of filling the memory
        image = DECODER.submit(read_digit_image, data, _image_side(model), "the image").result()
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    answer = look(model, image.reshape(1, *model.input_shape[1:]))
    answer["image"] = image.round(4).tolist()
    return answer


def neuron(model, x, number: int, index: int) -> dict:
    """Neuron ``index`` of layer ``number``: z = w·a + b with its largest terms, a = σ(z). For
    a filter, at the position where it answers most strongly."""
    capture = model.capture(x)
    if not 1 <= number <= len(capture.nodes):
        raise BadRequest(f"layer must be 1 to {len(capture.nodes)}; received {number}.")
    layer, cache = capture.nodes[number - 1].layer, capture.caches[number - 1]
    if not _has_neurons(layer):
        raise BadRequest(
            f"Layer {number} ({layer.name}, {type(layer).__name__}): the page shows the neurons "
            "of Dense and Conv2D layers."
        )
    W = layer.params["W"]  # (n_out, n_in): one row per neuron
    if not 0 <= index < W.shape[0]:
        raise BadRequest(f"Layer {number} has neurons 0 to {W.shape[0] - 1}; received {index}.")
    w = np.asarray(W[index], dtype=np.float64)
    b = float(layer.params["b"][index]) if "b" in layer.params else 0.0
    z_all = np.asarray(cache.z, dtype=np.float64)[0]  # this sample: (n_out,) or (r, c, n_out)
    a_all = np.asarray(capture.outputs[number - 1], dtype=np.float64)[0]
    result = {"layer": number, "name": layer.name, "index": index}
    if isinstance(layer, Conv2D):
        maps = z_all[..., index]  # (rows, cols)
        r, c = (int(v) for v in np.unravel_index(np.argmax(maps), maps.shape))
        inputs = np.asarray(cache.patches, dtype=np.float64)[r * maps.shape[1] + c]  # its window
        window = (*layer.kernel_size, layer.c_in)
        result.update(position=[r, c], window=list(window),
                      filter=w.reshape(window).round(4).tolist())  # fmt: skip
        z, a = float(maps[r, c]), float(a_all[r, c, index])
    else:
        inputs = np.asarray(cache.a_prev, dtype=np.float64)[0]
        z, a = float(z_all[index]), float(a_all[index])
    terms = w * inputs
    top = np.argsort(-np.abs(terms), kind="stable")[:TOP_TERMS]
    result.update(
        activation=layer.activation.name,
        terms=[
            {"j": int(j), "w": float(w[j]), "a": float(inputs[j]), "wa": float(terms[j])}
            for j in top
        ],
        rest=float(terms.sum() - terms[top].sum()),
        n_inputs=int(w.size),
        b=b,
        z=z,
        a=a,
        z_check=float(terms.sum() + b),
    )
    return result


def step(model, x, label: int, learning_rate: float) -> dict:
    """One training step on this image with this label, traced: each layer's own backward rule
    and numbers (case 1 at the output, case 2 for neurons below, pooling, flatten, … each by its
    rule), the finite-difference check (✓ by ``glassbox.trace.TOLERANCE``), the update and the
    new answer. The model itself is not changed: the glass box steps a copy."""
    target = glassbox.target_for_label(model, label)
    tr = glassbox.trace(model, x, target, learning_rate=learning_rate)
    layers = [_step_layer(lt) for lt in tr.layers]
    after = np.asarray(tr.a_new, dtype=np.float64)[0].reshape(-1)
    return {
        "label": label,
        "learning_rate": learning_rate,
        "C": tr.C,
        "C_new": tr.C_new,
        "tiny_loss": tr.tiny_loss,
        "suggested_label": tr.next_label(),  # its next choice, to try instead
        "dtype": tr.dtype,
        "tolerance": glassbox.TOLERANCE,
        "layers": layers,
        "probabilities": after.round(5).tolist(),
        "prediction": int(np.argmax(after)),
    }


def _step_layer(lt) -> dict:
    """One layer of a traced step, for the page: its rule, the sizes of what it received and
    sent back, its check and the weight that moved most."""
    entry = {"number": lt.number, "name": lt.name, "kind": lt.kind, "case_1": lt.case_1,
             "is_output": lt.is_output, "read_by": lt.read_by, "rule": lt.backward}  # fmt: skip
    for key in ("dC_da", "dC_dz", "dC_dx"):
        value = getattr(lt, key)
        if value is not None:
            flat = np.asarray(value, dtype=np.float64)[0].reshape(-1)  # this sample's
            entry[f"{key}_norm"] = float(np.linalg.norm(flat))
            if key == "dC_dz" and flat.size <= MAX_SHOWN:  # the output layer's: (a − y) in case 1
                entry["dC_dz"] = flat.tolist()
    if lt.dC_dh is not None:  # ‖∂C/∂h_t‖ from t = 1 to T: back through time
        entry["dC_dh_norms"] = lt.gradient_through_time().tolist()
    names = lt.parameter_names()
    if names:
        errors = [lt.relative_error(name) for name in names if name in lt.numeric]
        entry["error"] = max(errors) if errors else None
        entry["ok"] = lt.checks_ok()
        name = "W" if "W" in names else names[0]
        old, new = (np.asarray(v, dtype=np.float64) for v in (lt.before(name), lt.after(name)))
        grad = np.asarray(lt.gradient(name), dtype=np.float64)
        k = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)  # the weight that moves most
        entry.update(
            dC_dW_norm=float(np.linalg.norm(grad)),
            W_change=float(np.abs(new - old).max()),
            update={
                "name": name,
                "index": [int(i) for i in k],
                "w": float(old[k]),
                "grad": float(grad[k]),
                "w_new": float(new[k]),
            },
        )
    return entry


def deck(learning_rate: float) -> dict:
    """The deck's 2-2-2-2 sigmoid network on x = (1, −1): every number of one step."""
    model = glassbox.deck_network(learning_rate)
    tr = glassbox.trace(model, glassbox.DECK_INPUT, glassbox.DECK_TARGET)
    plain = lambda a: np.asarray(a, dtype=np.float64).round(4).tolist()  # noqa: E731
    return {
        "x": plain(tr.x[0]),
        "y": plain(tr.y[0]),
        "C": tr.C,
        "C_new": tr.C_new,
        "learning_rate": learning_rate,
        "layers": [
            {
                "W": plain(lt.W),
                "b": plain(lt.b),
                "z": plain(lt.z[0]),
                "a": plain(lt.a[0]),
                "dC_dz": plain(lt.dC_dz[0]),
                "W_new": plain(lt.W_new),
            }
            for lt in tr.layers
        ],
    }


def walk(curve: str, learning_rate: float, start: float | None, steps: int) -> dict:
    """Gradient descent on one of the deck's curves, for the slider: the curve and the walk."""
    if curve not in descent.CURVES:
        raise BadRequest(f"curve must be one of {', '.join(descent.CURVES)}; received {curve!r}.")
    shape = descent.get_curve(curve)
    start = shape.start if start is None else start
    run = descent.descend(shape, start, learning_rate, max_steps=steps)
    seen = [s.w for s in run.steps if abs(s.w) <= 10] + [start]
    ws = np.linspace(min(seen) - 1, max(seen) + 1, 200)
    return {
        "formula": shape.formula,
        "curve": [[float(w), float(shape.C(w))] for w in ws],
        "steps": [[s.w, s.C] for s in run.steps],
        "verdict": run.verdict,
        "summary": run.summary(),
    }


class _Reporter(Callback):
    """Puts the training's progress on a queue, REPORTS_PER_EPOCH times an epoch."""

    def __init__(self, events: queue.Queue, steps: int, stop: threading.Event):
        super().__init__()
        self.events, self.every, self.stop = events, max(1, steps // REPORTS_PER_EPOCH), stop
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            self.events.put({"epoch": self.epoch, "batch": batch + 1, **_plain(logs)})
        if self.stop.is_set():  # the page went away
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.events.put({"epoch": epoch, "end": True, **_plain(logs)})


def _plain(logs) -> dict:
    return {k: float(v) for k, v in (logs or {}).items()}


def _default_network():
    from glassnet.layers import Input
    from glassnet.models import Sequential

    return Sequential([Input(shape=(784,)), Dense(128, activation="relu"),
                       Dense(10, activation="softmax")])  # fmt: skip


def prepare_training(models: Models, name: str | None, samples: int) -> tuple:
    """What a short training run needs: ``name``'s architecture (or a 784-128-10 MLP where the
    server has no model) with fresh weights, compiled with Adam, and the first ``samples`` MNIST
    training images with 2,000 test images, shaped for it."""
    from glassnet.datasets import DatasetUnavailableError, mnist

    base = models.get(name) if name else _default_network()
    try:
        (x, y), (x_test, y_test) = mnist.load_data()
    except DatasetUnavailableError as exc:
        raise Unavailable(f"MNIST is not available here, so the page cannot train: {exc}") from None
    shape = (-1, *base.input_shape[1:])
    x = (x[:samples] / 255.0).reshape(shape).astype("float32")
    x_test = (x_test[:2000] / 255.0).reshape(shape).astype("float32")
    model = clone_model(base)  # the same layers, fresh weights
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, (x, y[:samples]), (x_test, y_test[:2000])


def train(models: Models, trained: str, model, data, test_data, epochs: int):
    """The training run, as lines of JSON: the loss and accuracy as it goes (batch 64), the test
    accuracy at the end; the trained model then joins the server's models as ``trained``."""
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    steps = -(-len(data[0]) // 64)
    yield json.dumps({"start": True, "samples": len(data[0]), "epochs": epochs,
                      "steps": steps}) + "\n"  # fmt: skip

    def run():
        try:
            model.fit(*data, batch_size=64, epochs=epochs, verbose=0,
                      callbacks=[_Reporter(events, steps, stop)])  # fmt: skip
            loss, accuracy = model.evaluate(*test_data, verbose=0)
            if not stop.is_set():
                models.add(trained, model)
            events.put({"done": True, "model": trained, "test_loss": float(loss),
                        "test_accuracy": float(accuracy)})  # fmt: skip
        except Exception as exc:  # whatever stops it, the page that asked for the run is told
            events.put({"error": f"Training stopped: {exc}"})
        finally:
            events.put(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        while (event := events.get()) is not None:
            yield json.dumps(event) + "\n"
    finally:
        stop.set()  # the page closed the stream early: stop at the next batch
        worker.join()


# ---- the web application: its handlers, then the routes to them ----------------------------


def _models(request) -> Models:
    """The models of the application that received ``request`` (see ``create_app``)."""
    return request.app.state.models


async def body(request, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(_too_large(int(declared), limit))
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLarge(_too_large(len(data), limit))
    return bytes(data)


async def json_body(request) -> dict:
    data = await body(request, MAX_JSON_BYTES)
    if _nesting(data) > MAX_JSON_DEPTH:
        raise BadRequest(f"The body nests deeper than {MAX_JSON_DEPTH} levels; the page's "
                         "requests nest two.")  # fmt: skip
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, a 5,000-digit number
        raise BadRequest(f"The body is not JSON: {exc}."[:300]) from None
    if not isinstance(value, dict):
        raise BadRequest("The body must be a JSON object.")
    return value


def field(data: dict, name: str, kind: type, check=None, default=None):
    """data[name], a whole number (kind int) or any number (kind float), checked."""
    value = data.get(name, default)
    if value is None:
        raise BadRequest(f"{name} is missing.")
    accepted = int if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, accepted):
        wanted = "a whole number" if kind is int else "a number"
        raise BadRequest(f"{name} must be {wanted}; received {value!r}."[:200])
    if check is not None and not check(value):
        raise BadRequest(f"{name}={value!r} is out of range."[:200])
    return value


def query_number(request, name: str, default: float, low: float, high: float) -> float:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{name} must be a number; received {text!r}.") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low:g} and {high:g}; received {value:g}.")
    return value


async def page(request):
    return FileResponse(STATIC / "index.html")


async def info(request):
    usable, unusable = {}, {}
    for name in _models(request).names():  # a broken file, or a model of text, is named, not served
        try:
            usable[name] = describe(_models(request).get(name))
        except BadRequest as exc:
            unusable[name] = str(exc)
    return JSONResponse({
        "models": usable,
        "unusable": unusable,
        "languages": i18n.LANGUAGES,
        "language": i18n.language(),
    })  # fmt: skip


async def messages(request):
    from glassnet.serve.words import PAGE_WORDS

    code = _language(request.query_params.get("lang", "en"))
    return JSONResponse(i18n.messages(code, PAGE_WORDS))


async def see(request):
    model = _models(request).get(request.query_params.get("model"))
    data = await body(request, MAX_IMAGE_BYTES)
    if not data:
        raise BadRequest("The body is empty: send an image file (PNG, JPEG, …).")
    return JSONResponse(await run_in_threadpool(see_image, model, data))


async def neuron_view(request):
    data = await json_body(request)
    model = _models(request).get(data.get("model"))
    x = _as_input(model, data.get("image"))
    number = field(data, "layer", int)
    index = field(data, "neuron", int)
    return JSONResponse(await run_in_threadpool(neuron, model, x, number, index))


async def step_view(request):
    data = await json_body(request)
    model = _models(request).get(data.get("model"))
    x = _as_input(model, data.get("image"))
    classes = model.output_shape[-1]
    label = field(data, "label", int, lambda v: 0 <= v < classes)
    rate = field(data, "learning_rate", float, lambda v: 0 < v <= 10, default=0.01)
    lang = _language(data.get("lang", "en"))
    return JSONResponse(
        await run_in_threadpool(_speaking, lang, step, model, x, label, float(rate))
    )


async def deck_view(request):
    return JSONResponse(deck(query_number(request, "learning_rate", 0.5, 1e-4, 100)))


async def descent_view(request):
    rate = query_number(request, "learning_rate", 0.1, 1e-4, 10)
    start = request.query_params.get("start")
    start = None if start is None else query_number(request, "start", 0, -10, 10)
    steps = int(query_number(request, "steps", 60, 1, 500))
    return JSONResponse(walk(request.query_params.get("curve", "quadratic"), rate, start, steps))


async def train_view(request):
    data = await json_body(request)
    name = data.get("model")
    if name is not None:
        _models(request).get(name)  # an unknown name is a 400 before the stream starts
    samples = field(data, "samples", int, lambda v: 64 <= v <= MAX_TRAINING_SAMPLES, 6000)
    epochs = field(data, "epochs", int, lambda v: 1 <= v <= 5, 1)
    if not _models(request).training.acquire(blocking=False):
        raise BadRequest("A training run is already going; wait for it to end.")
    try:
        model, data, test_data = await run_in_threadpool(
            prepare_training, _models(request), name, samples
        )
    except BaseException:
        _models(request).training.release()
        raise
    trained = f"{name or 'mlp'} · trained here"

    def lines():
        try:
            yield from train(_models(request), trained, model, data, test_data, epochs)
        finally:
            _models(request).training.release()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def bad_request(request, exc: BadRequest):
    status = 413 if isinstance(exc, TooLarge) else 503 if isinstance(exc, Unavailable) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)


async def http_error(request, exc: HTTPException):
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def create_app(models: Models):
    """The Starlette application serving the page for ``models`` (its handlers read them from
    ``request.app.state.models``)."""
    routes = [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/messages", messages),
        Route("/api/see", see, methods=["POST"]),
        Route("/api/neuron", neuron_view, methods=["POST"]),
        Route("/api/step", step_view, methods=["POST"]),
        Route("/api/deck", deck_view),
        Route("/api/descent", descent_view),
        Route("/api/train", train_view, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {BadRequest: bad_request, HTTPException: http_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.models = models
    return app


def _nesting(data: bytes) -> int:
    """How deep the brackets of a JSON text nest, counted without parsing it (a parser recurses
    once per level). Brackets inside strings count too: the bound is far above any real one."""
    chars = np.frombuffer(data, dtype=np.uint8)  # (n,)
    steps = np.isin(chars, (ord("["), ord("{"))).astype(np.int32)
    steps -= np.isin(chars, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _language(name) -> str:
    """A request's ``lang`` as a catalog code, or a 400 naming the languages."""
    code = i18n.normalize(name) if isinstance(name, str) else None
    if code is None:
        raise BadRequest(f"lang must be one of {', '.join(i18n.LANGUAGES)}.")
    return code


def _speaking(code: str, fn, *args):
    """``fn(*args)`` with its words in ``code``, for this request only."""
    with i18n.speaking(code):
        return fn(*args)


def _too_large(size: int, limit: int) -> str:
    return (
        f"The request is {size / 1e6:.1f} MB; the page takes images up to {limit / 1e6:.0f} MB. "
        "Crop the photo, or save it smaller."
    )
