"""The ``glassnet`` command: train, evaluate, predict, info.

    glassnet train                      # an MLP on MNIST; saves mnist-mlp.keras
    glassnet evaluate mnist-mlp.keras   # test loss and accuracy
    glassnet predict mnist-mlp.keras my-digit.jpg
    glassnet info                       # versions, BLAS, where the data was found

Errors in what the user gave (a missing file, a bad option value, an unreadable image) are printed
as one line, ``glassnet: error: …``, with exit status 1 — never a traceback (set GLASSNET_DEBUG=1
to see one).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import glassnet
from glassnet import datasets, i18n, utils
from glassnet.datasets import DatasetUnavailableError, _fetch
from glassnet.i18n import N_, _
from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential, load_model

__all__ = ["main"]

DATASETS = {
    "mnist": datasets.mnist,
    "fashion-mnist": datasets.fashion_mnist,
    "digits": datasets.digits,
}
# About as many optimizer steps on the 1,438 digits as 5 epochs of MNIST's 60,000 images.
DEFAULT_EPOCHS = {"mnist": 5, "fashion-mnist": 5, "digits": 50}
FALLBACK_NOTE = (
    "MNIST is not available here (not found locally, download failed): training instead on the "
    "UCI handwritten digits bundled with scikit-learn (1,797 images, 8×8)."
)


UNSURE = 0.6  # predict says the model is unsure below this probability for its best guess
SMALL_MODEL_NOTE = N_(
    "This model reads 8×8 images (it was trained on the UCI digits, as MNIST was not "
    "available): at that size a drawn or photographed digit loses most of its shape, so expect "
    "mistakes. Train on MNIST for a better reader: GLASSNET_DATA=folder glassnet train."
)


class CommandError(Exception):
    """A problem with what the user asked for, reported as one line."""


# ---- data -------------------------------------------------------------------------------------


def _load_dataset(name: str | None, quiet: bool = False):
    """(name, ((x_train, y_train), (x_test, y_test))), falling back to digits if none was named."""
    if name is not None:
        return name, DATASETS[name].load_data()
    try:
        return "mnist", datasets.mnist.load_data()
    except DatasetUnavailableError as exc:
        if not quiet:
            print(f"{exc}\n\n{FALLBACK_NOTE}", file=sys.stderr)
        return "digits", datasets.digits.load_data()


def _prepare_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, h, w) as the float32 vectors (n, h·w) in [0, 1] the CLI's models take."""
    return images.reshape(len(images), -1).astype("float32") / 255


# ---- commands ---------------------------------------------------------------------------------


def _check_output(path: Path) -> None:
    """Fail now, not after training, if the model could not be saved to ``path``."""
    if not path.name.endswith(".keras"):
        raise CommandError(f"--output must end in .keras (Keras's format); received {path}.")
    if path.is_dir():
        raise CommandError(f"--output {path} is a directory; give a file name ending in .keras.")
    folder = path.resolve().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    try:  # the only sure test (permissions, read-only mounts, /proc): write a file there
        fd, probe = tempfile.mkstemp(prefix=".glassnet-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CommandError(
            f"Cannot write {path}: {existing} does not take new files ({exc.strerror})."
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise CommandError(f"Cannot write {path}: the file exists and is read-only.")


def _available_memory() -> int | None:
    """Bytes of memory free for a new process to use (Linux's MemAvailable), if known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check_size(sizes: list[int], optimizer: str) -> None:
    """Refuse a network whose training state (W, ∂C/∂W, the optimizer's m, v, …) cannot fit."""
    params = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes))
    copies = {"sgd": 3, "rmsprop": 4, "adam": 5, "adamw": 5}[optimizer]
    needed = params * 4 * copies  # float32
    available = _available_memory()
    if available is not None and needed > available:
        shape = "-".join(map(str, sizes))
        raise CommandError(
            f"A {shape} network has {params:,} parameters: training it with {optimizer} needs "
            f"about {needed / 1e9:,.1f} GB of memory, and {available / 1e9:.1f} GB are free. "
            "Give --hidden smaller layers."
        )


def _mlp(n_inputs: int, n_classes: int, args) -> Sequential:
    _check_size([n_inputs, *args.hidden, n_classes], args.optimizer)
    model = Sequential([Input(shape=(n_inputs,))])
    for units in args.hidden:
        model.add(Dense(units, activation=args.activation))
        if args.dropout:
            model.add(Dropout(args.dropout))
    model.add(Dense(n_classes, activation="softmax"))
    return model


def _convnet(side: int, n_classes: int) -> Sequential:
    """keras-io's mnist_convnet: two conv + max-pooling stages, dropout 0.5, a softmax layer.
    Images smaller than MNIST's (the 8×8 digits) keep their size through the convolutions."""
    from glassnet.layers import Conv2D, Flatten, MaxPooling2D

    padding = "valid" if side >= 28 else "same"
    return Sequential([
        Input(shape=(side, side, 1)),
        Conv2D(32, 3, activation="relu", padding=padding),
        MaxPooling2D(2),
        Conv2D(64, 3, activation="relu", padding=padding),
        MaxPooling2D(2),
        Flatten(),
        Dropout(0.5),
        Dense(n_classes, activation="softmax"),
    ])  # fmt: skip


def _lstm(side: int, n_classes: int) -> Sequential:
    """The deck's RNN on images: an LSTM(128) reading each image row by row (``side`` steps of
    ``side`` pixels), then a softmax layer reading its last h."""
    from glassnet.layers import LSTM

    return Sequential([Input(shape=(side, side)), LSTM(128),
                       Dense(n_classes, activation="softmax")])  # fmt: skip


def cmd_train(args) -> int:
    if args.seed is not None:
        utils.set_random_seed(args.seed)
    output = Path(args.output or f"{args.dataset or 'mnist'}-{args.model}.keras")
    _check_output(output)
    name, ((x_train, y_train), (x_test, y_test)) = _load_dataset(args.dataset)
    output = Path(args.output or f"{name}-{args.model}.keras")
    epochs = args.epochs or DEFAULT_EPOCHS[name]
    side = x_train.shape[1]
    x_train, x_test = _prepare_images(x_train), _prepare_images(x_test)
    n_classes = int(y_train.max()) + 1  # the loaders check every label is a class
    if args.model == "cnn":
        x_train, x_test = (x.reshape(len(x), side, side, 1) for x in (x_train, x_test))
        model = _convnet(side, n_classes)
    elif args.model == "rnn":
        x_train, x_test = (x.reshape(len(x), side, side) for x in (x_train, x_test))
        model = _lstm(side, n_classes)
    else:
        model = _mlp(x_train.shape[1], n_classes, args)
    optimizer = glassnet.optimizers.get(args.optimizer)
    if args.learning_rate is not None:
        optimizer.learning_rate = args.learning_rate
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if args.verbose:
        print(f"Training on {name}: {len(x_train):,} training and {len(x_test):,} test images.")
        model.summary()

    profiler = glassnet.callbacks.Profiler() if args.profile else None
    diverged = glassnet.callbacks.TerminateOnNaN()
    start = time.perf_counter()
    try:
        history = model.fit(
            x_train,
            y_train,
            batch_size=args.batch_size,
            epochs=epochs,
            verbose=args.verbose,
            validation_data=(x_test, y_test),
            callbacks=[diverged, *([profiler] if profiler else [])],
        )
    except KeyboardInterrupt:  # keep what was learned so far
        model.save(output)
        print(f"\nInterrupted: saved the model as trained so far to {output}", file=sys.stderr)
        raise
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if not np.isfinite(loss) or not all(np.isfinite(w).all() for w in model.get_weights()):
        kept = f" ({output} is untouched)" if output.exists() else ""
        raise CommandError(
            f"Training diverged: the loss became {loss} (NaN or infinite), so the model was not "
            f"saved{kept}. Try a smaller --learning-rate."
        )
    model.save(output)
    print(
        f"Test accuracy: {accuracy:.4f} (loss {loss:.4f}) after {epochs} "
        f"epoch{'s' if epochs != 1 else ''} in {seconds:.1f} s."
    )
    print(f"Saved the model to {output}")
    if profiler:
        print("\nWhere the training time went:")
        print(profiler.report())
    if args.plots:
        _write_training_plots(Path(args.plots), model, history, x_test, y_test)
    return 0


def _write_training_plots(folder: Path, model, history, x_test, y_test) -> None:
    from glassnet import plots

    figures = {
        "learning-curves.png": lambda: plots.learning_curves(history),
        "confusion-matrix.png": lambda: plots.confusion_matrix(model, x_test, y_test),
        "misclassified.png": lambda: plots.misclassified(model, x_test, y_test),
        "first-layer-weights.png": lambda: plots.first_layer_weights(model),
        "activations.png": lambda: plots.activation_histograms(model, x_test[:1000]),
    }
    if x_test.ndim == 4:  # a CNN: its filters are layer 1's weights; what it sees in an image
        figures["first-layer-weights.png"] = lambda: plots.filters(model)
        figures["feature-maps.png"] = lambda: plots.feature_maps(model, x_test[0])
    for name, make in figures.items():
        print(f"Wrote {plots.save(make(), folder / name)}")


def _dataset_for_model(model, requested: str | None) -> str:
    if requested is not None:
        return requested
    return "digits" if int(np.prod(model.input_shape[1:])) == 64 else "mnist"  # 8×8 images


def cmd_evaluate(args) -> int:
    model = load_model(args.model)
    name = _dataset_for_model(model, args.dataset)
    _, (_, (x_test, y_test)) = _load_dataset(name)
    reads, values = int(np.prod(model.input_shape[1:])), int(np.prod(x_test.shape[1:]))
    if reads != values:
        side = "×".join(map(str, x_test.shape[1:]))
        fits = _dataset_for_model(model, None)
        hint = f" Evaluate it on --dataset {fits}." if fits != name else ""
        raise CommandError(
            f"{args.model} reads inputs of {reads} values {model.input_shape[1:]}, but the "
            f"{name} images are {side} ({values} values).{hint}"
        )
    x_test = _prepare_images(x_test).reshape(len(x_test), *model.input_shape[1:])
    if not model.compiled:
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0, return_dict=True)
    print(f"{args.model} on the {name} test set ({len(x_test):,} images):")
    for key, value in logs.items():
        print(f"  {key}: {value:.4f}")
    return 0


def cmd_predict(args) -> int:
    from glassnet.images import load_digit_image, render_ascii

    model = load_model(args.model, compile=False)
    n_inputs = int(np.prod(model.input_shape[1:]))
    side = round(n_inputs**0.5)
    if side * side != n_inputs:
        raise CommandError(
            f"{args.model} takes inputs of shape {model.input_shape[1:]}, "
            "which is not a square image."
        )
    for path in args.images:
        image = load_digit_image(path, size=side)  # (side, side) in [0, 1]
        probabilities = model.predict(image.reshape(1, *model.input_shape[1:]), verbose=0)[0]
        best = int(np.argmax(probabilities))
        print(
            _("{path}: {digit}  ({p} sure)").format(
                path=path, digit=best, p=f"{probabilities[best]:.1%}"
            )
        )
        if probabilities[best] < UNSURE:
            unsure = _(
                "The model is unsure: its best guess has only {p}. Is the picture one digit, "
                "filling most of it, in ink that stands out from the paper?"
            )
            print("  " + unsure.format(p=f"{probabilities[best]:.1%}"))
        if args.show:
            print(render_ascii(image))
        for digit, p in enumerate(probabilities):
            bar = "█" * round(float(p) * 40)
            print(f"  {digit}: {p:6.1%} {bar}")
    if side == 8:
        print(_(SMALL_MODEL_NOTE), file=sys.stderr)
    return 0


def _neuron(text: str) -> tuple[int, int]:
    try:
        layer, index = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LAYER:NEURON such as 2:0 (layer 2, its first neuron), received {text!r}"
        ) from None
    return layer, index


def cmd_explain(args) -> int:
    from glassnet import glassbox

    if args.rnn:
        if args.model is not None or args.image is not None:
            raise CommandError("--rnn shows its own tiny recurrent network: give no MODEL.")
        print(glassbox.explain_rnn(learning_rate=args.learning_rate or 0.05))
        return 0
    if args.model is None:  # the deck's worked example
        if args.image is not None or args.label is not None:
            raise CommandError(
                "--image and --label need a MODEL; without one, explain shows "
                "the deck's worked example (use --input and --target)."
            )
        model = glassbox.deck_network()
        x = np.array([args.input], dtype=float) if args.input else glassbox.DECK_INPUT
        y = np.array([args.target], dtype=float) if args.target else glassbox.DECK_TARGET
        learning_rate = args.learning_rate or 0.5
        other = None  # no other label to suggest
    else:
        model = load_model(args.model)
        if args.image is not None:
            from glassnet.images import load_digit_image

            side = round(int(np.prod(model.input_shape[1:])) ** 0.5)
            x = load_digit_image(args.image, size=side).reshape(1, *model.input_shape[1:])
        elif args.input:
            x = np.array([args.input], dtype=float)
        else:
            raise CommandError(
                "Give the input: --image FILE (a picture of a digit) or --input VALUE [VALUE ...]."
            )
        if not model.compiled:
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        other = None
        if args.target:
            y = np.array([args.target], dtype=float)
        else:
            ranked = np.argsort(-model.predict(x, verbose=0)[0].reshape(-1), kind="stable")
            label = args.label
            if label is None:  # explain the network's own answer
                label = int(ranked[0])
                print(
                    _("No --label given: using the predicted class, {label}.").format(label=label)
                )
            other = next((int(k) for k in ranked if k != label), None)
            y = glassbox.target_for_label(model, label)
        learning_rate = args.learning_rate or 0.01
    if args.maps:
        from glassnet import plots

        if x.ndim != 4:
            raise CommandError("--maps draws a CNN's feature maps; this model has no conv layer.")
        print(f"Wrote {plots.save(plots.feature_maps(model, x[0]), args.maps)}")
    tr = glassbox.trace(model, x, y, learning_rate=learning_rate, check=not args.no_check)
    if args.json:
        Path(args.json).write_text(tr.to_json(indent=1))
        print(f"Wrote the trace to {args.json}")
    print(tr.render(color=sys.stdout.isatty(), neuron=args.neuron, full=args.full))
    if tr.tiny_loss and other is not None:
        print(
            "\n"
            + _(
                "C ≈ 0 at label {label}: try --label {other}, the network's next choice, "
                "to watch a step that moves the weights."
            ).format(label=label, other=other)
        )
    return 0


def cmd_descent(args) -> int:
    from glassnet.glassbox import descent

    curve = descent.get_curve(args.curve)
    start = curve.start if args.start is None else args.start
    rate = curve.learning_rate if args.learning_rate is None else args.learning_rate
    rates = [rate]
    if args.compare:  # too small, the one asked for, too large
        too_large = 2.2 / curve.curvature if curve.curvature else rate * 12
        rates = [rate / 20, rate, too_large]
    runs = [descent.descend(curve, start, lr, max_steps=args.steps) for lr in rates]
    print(
        _("Gradient descent on {curve}, from w = {start}: w ← w − learning_rate × slope").format(
            curve=_(curve.formula), start=f"{start:g}"
        )
    )
    for run in runs:
        print("\n" + _("learning rate {lr}").format(lr=f"{run.learning_rate:g}"))
        print(run.table())
        print(run.summary())
    if args.png or args.gif or args.contour:
        from glassnet import plots

        if args.png:
            print(f"Wrote {plots.save(plots.descent_picture(runs), args.png)}")
        if args.gif:
            print(f"Wrote {plots.animate_descent(runs[len(runs) // 2], args.gif)}")
        if args.contour:
            figure = plots.optimizer_paths(descent.paths_2d(), descent.ravine)
            print(f"Wrote {plots.save(figure, args.contour)}")
    return 0


def cmd_serve(args) -> int:
    from glassnet.serve import serve

    serve(args.model, host=args.host, port=args.port, open_browser=args.browser)
    return 0


def cmd_info(args) -> int:
    print(f"glassnet {glassnet.__version__}")
    print(f"Python   {platform.python_version()} ({sys.executable})")
    print(f"NumPy    {np.__version__}")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        print(f"BLAS     {blas.get('name')} {blas.get('version', '')}".rstrip())
    except Exception:  # show_config's layout differs between NumPy versions
        print("BLAS     (unknown)")
    try:
        from threadpoolctl import threadpool_info

        threads = [f"{p['internal_api']}: {p['num_threads']} threads" for p in threadpool_info()]
        print(f"Threads  {', '.join(threads) or 'no BLAS thread pool found'}")
    except ImportError:
        pass
    print(f"Floats   {glassnet.config.floatx()}")
    for package in ("h5py", "numba"):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{package:8} {version}")
    print(f"Kernels  {'fused (Numba)' if glassnet.kernels.ENABLED else 'NumPy formulas'}")
    print("Data:")
    for spec in (datasets.mnist.SPEC, datasets.fashion_mnist.SPEC):
        found = [
            (what, path) for what, path in _fetch.candidate_folders(spec) if _fetch._complete(path)
        ]
        where = (
            f"{found[0][1]} ({found[0][0]})"
            if found
            else "not found locally (will be downloaded on first use)"
        )
        print(f"  {spec.title:14} {where}")
    print(f"  cache          {_fetch.cache_dir() / 'datasets'}")
    return 0


# ---- argument parsing -------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {value}")
    return value


def _moderate_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not abs(value) <= 1e6:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number between -1e6 and 1e6, received {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), received {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1 to 65535)")
    return value


def _language(text: str) -> str:
    if i18n.normalize(text) is None:
        spoken = ", ".join(code.replace("_", "-") for code in i18n.LANGUAGES)
        raise argparse.ArgumentTypeError(f"{text!r}: glassnet speaks {spoken}")
    return text


def _add_language(command) -> None:
    command.add_argument(
        "--lang",
        type=_language,
        default=None,
        help="en or zh-TW (Traditional Chinese); default: from LANG/LC_ALL",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassnet",
        description="A from-scratch neural-network library you can see inside. "
        "Train, evaluate and use networks on MNIST from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"glassnet {glassnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train an MLP, a CNN or an RNN on MNIST (or another dataset) and save it",
        description="Train a multilayer perceptron (or, with --model cnn, keras-io's "
        "mnist_convnet; with --model rnn, an LSTM reading each image row by row) with "
        "Keras-style progress, print its test accuracy and save it as a "
        ".keras file. Without --dataset it uses MNIST, and if MNIST cannot be found or "
        "downloaded, scikit-learn's bundled digits.",
    )
    train.add_argument(
        "--model",
        choices=["mlp", "cnn", "rnn"],
        default="mlp",
        help="mlp: Dense layers (--hidden, --activation, --dropout); cnn: conv 32 → max pool → "
        "conv 64 → max pool → dropout 0.5 → softmax; rnn: LSTM(128) over the image's rows → "
        "softmax (default: mlp)",
    )
    train.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="dataset to train on (default: mnist, with an offline fallback)",
    )
    train.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=[512, 256],
        metavar="UNITS",
        help="hidden layer sizes of the mlp (default: 512 256)",
    )
    train.add_argument(
        "--activation",
        default="relu",
        choices=["relu", "sigmoid", "tanh", "elu", "leaky_relu", "swish"],
        help="hidden-layer activation (default: relu)",
    )
    train.add_argument(
        "--dropout",
        type=_rate,
        default=0.0,
        help="dropout rate after each hidden layer (default: 0)",
    )
    train.add_argument(
        "--optimizer",
        default="adam",
        choices=["sgd", "rmsprop", "adam", "adamw"],
        help="optimizer (default: adam)",
    )
    train.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="learning rate (default: the optimizer's Keras default)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="epochs (default: 5; 50 for the small digits dataset)",
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=128, help="batch size (default: 128)"
    )
    train.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    train.add_argument(
        "--output",
        "-o",
        default=None,
        help="where to save the model (default: ./<dataset>-<model>.keras)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=[0, 1, 2],
        default=1,
        help="0 silent, 1 progress bar, 2 one line per epoch (default: 1)",
    )
    train.add_argument(
        "--plots",
        metavar="DIR",
        help="write pictures of the training and the trained network into DIR",
    )
    train.add_argument(
        "--profile",
        action="store_true",
        help="after training, show where the time went, per layer and phase",
    )
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="test loss and accuracy of a saved model",
        description="Evaluate a saved .keras model on a test set.",
    )
    evaluate.add_argument("model", help="a .keras file")
    evaluate.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="test set (default: mnist, or digits for 8×8 models)",
    )
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser(
        "predict",
        help="classify your own images of digits",
        description="Classify photos or scans of handwritten digits. Each image is made "
        "MNIST-style: the paper's shading and ruled lines taken away, the digit found (Otsu's "
        "threshold, its connected components), its strokes made as thick as MNIST's, fitted "
        "into a 20×20 box and centred by its centre of mass in 28×28.",
    )
    predict.add_argument("model", help="a .keras file trained on 28×28 digits")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, …)")
    predict.add_argument(
        "--no-show", dest="show", action="store_false", help="do not print the converted image"
    )
    _add_language(predict)
    predict.set_defaults(func=cmd_predict)

    explain = sub.add_parser(
        "explain",
        help="every number of one forward and backward pass, in the deck's notation",
        description="Show one gradient-descent step in the deck's notation: the forward pass "
        "(z = W·a + b, a = σ(z)) layer by layer, the loss, the backward pass from the output "
        "layer back with finite differences beside each gradient, the update and the new "
        "loss. Without MODEL: the deck's worked example, the 2-2-2-2 sigmoid network with "
        "input (1, −1).",
    )
    explain.add_argument("model", nargs="?", help="a .keras file (default: the deck's network)")
    explain.add_argument("--image", help="a picture of a digit, as the input of MODEL")
    explain.add_argument(
        "--input",
        type=float,
        nargs="+",
        metavar="VALUE",
        help="the input values (default for the deck: 1 -1)",
    )
    explain.add_argument(
        "--target",
        type=float,
        nargs="+",
        metavar="VALUE",
        help="the target output values (default for the deck: 0 1)",
    )
    explain.add_argument(
        "--label", type=int, help="the target class for MODEL (default: the class it predicts)"
    )
    explain.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="step size of the update (default: 0.5 for the deck, 0.01 else)",
    )
    explain.add_argument(
        "--neuron",
        type=_neuron,
        metavar="LAYER:NEURON",
        help="show one neuron in full, e.g. 1:0 (layers count from 1)",
    )
    explain.add_argument("--full", action="store_true", help="print large arrays in full")
    explain.add_argument(
        "--no-check", action="store_true", help="skip the finite-difference checks"
    )
    explain.add_argument("--json", metavar="FILE", help="also write the trace as JSON")
    _add_language(explain)
    explain.add_argument(
        "--maps", metavar="PNG", help="for a CNN, also draw the feature maps of the input"
    )
    explain.add_argument(
        "--rnn",
        action="store_true",
        help="a tiny recurrent network (2 units, 3 steps) unrolled: backpropagation through time",
    )
    explain.set_defaults(func=cmd_explain)

    desc = sub.add_parser(
        "descent",
        help="the deck's gradient-descent picture: a ball rolling down a loss curve",
        description="Walk down a loss curve with w ← w − learning_rate × slope and show every "
        "step (w, slope, step, loss) until the minimum, or until it diverges. --compare adds a "
        "learning rate too small (it crawls) and one too large (it diverges).",
    )
    desc.add_argument(
        "--curve",
        choices=["quadratic", "bumpy", "network"],
        default="quadratic",
        help="the loss: a quadratic, a curve with two valleys, or the real loss "
        "of the deck's network along one weight (default: quadratic)",
    )
    desc.add_argument("--start", type=_moderate_float, default=None, help="the starting w")
    desc.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="step size (default: 0.1; 30 for the flat network curve)",
    )
    desc.add_argument("--steps", type=_positive_int, default=100, help="at most this many steps")
    desc.add_argument(
        "--compare", action="store_true", help="also run a too small and a too large learning rate"
    )
    desc.add_argument("--png", metavar="FILE", help="draw the walk(s) as a PNG")
    desc.add_argument("--gif", metavar="FILE", help="animate the walk as a GIF")
    desc.add_argument(
        "--contour",
        metavar="FILE",
        help="draw SGD, momentum and Adam on a two-weight loss surface (PNG)",
    )
    _add_language(desc)
    desc.set_defaults(func=cmd_descent)

    serve = sub.add_parser(
        "serve",
        help="the glass box in your browser: draw a digit and watch every layer",
        description="Serve a local page: draw a digit (or drop a photo) and watch every layer "
        "of MODEL answer, click a neuron for its z = W·a + b, take one training step and see "
        "∂C/∂z layer by layer, the deck's worked example and gradient descent with a "
        "learning-rate slider. Without MODEL it offers the .keras files in this folder. "
        "Ctrl-C stops it.",
    )
    serve.add_argument("model", nargs="?", help="a .keras file (default: those in this folder)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this "
        "machine only)"
    )  # fmt: skip
    serve.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--no-browser", dest="browser", action="store_false", help="do not open a browser"
    )
    _add_language(serve)
    serve.set_defaults(func=cmd_serve)

    info = sub.add_parser(
        "info",
        help="versions, BLAS and where the data is",
        description="Show glassnet's version, NumPy and BLAS in use, and "
        "where each dataset was found.",
    )
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        print("\nglassnet: choose a command, for example: glassnet train", file=sys.stderr)
        return 2
    try:
        i18n.set_language(getattr(args, "lang", None))
        return args.func(args)
    except BrokenPipeError:  # `glassnet info | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0
    except (CommandError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("GLASSNET_DEBUG"):  # developers: the full traceback
            raise
        print(f"glassnet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nglassnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
