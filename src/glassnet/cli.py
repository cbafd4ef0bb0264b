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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import glassnet
from glassnet import activations, datasets, distribution, i18n, utils
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
FALLBACK_NOTE = N_(
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
            print(f"{exc}\n\n" + _(FALLBACK_NOTE), file=sys.stderr)
        return "digits", datasets.digits.load_data()


def _prepare_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, h, w) as the float32 vectors (n, h·w) in [0, 1] the CLI's models take."""
    return images.reshape(len(images), -1).astype("float32") / 255


# ---- commands ---------------------------------------------------------------------------------


def _check_output(path: Path) -> None:
    """Fail now, not after training, if the model could not be saved to ``path``."""
    if not path.name.endswith(".keras"):
        raise CommandError(
            _("--output must end in .keras (Keras's format); received {path}.").format(path=path)
        )
    if path.is_dir():
        raise CommandError(
            _("--output {path} is a directory; give a file name ending in .keras.").format(
                path=path
            )
        )
    folder = path.resolve().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    try:  # the only sure test (permissions, read-only mounts, /proc): write a file there
        fd, probe = tempfile.mkstemp(prefix=".glassnet-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CommandError(
            _("Cannot write {path}: {folder} does not take new files ({why}).").format(
                path=path, folder=existing, why=exc.strerror
            )
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise CommandError(
            _("Cannot write {path}: the file exists and is read-only.").format(path=path)
        )


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
            _(
                "A {shape} network has {params} parameters: training it with {optimizer} needs "
                "about {needed} GB of memory, and {free} GB are free. Give --hidden smaller layers."
            ).format(
                shape=shape,
                params=f"{params:,}",
                optimizer=optimizer,
                needed=f"{needed / 1e9:,.1f}",
                free=f"{available / 1e9:.1f}",
            )
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


MODELS = {  # --model: its network for side×side images of n classes, and the shape it reads
    "mlp": lambda side, n, args: (_mlp(side * side, n, args), (side * side,)),
    "cnn": lambda side, n, args: (_convnet(side, n), (side, side, 1)),
    "rnn": lambda side, n, args: (_lstm(side, n), (side, side)),
}


# One function on purpose: the command reads top to bottom, as the deck trains MNIST: the data,
# the network, compile, fit (keeping what was learned on Ctrl-C), check, save, report.
def _train_on_processes(args) -> int:
    """Start this same ``glassnet train`` as ``args.processes`` MPI ranks on this machine, each
    with its share of the cores, and wait for them: a rank that fails ends them all."""
    try:
        command = distribution.launch_command(args.processes, ["-m", "glassnet.cli", *args.argv])
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    environment = dict(os.environ)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = str(max(1, (cores or 1) // args.processes))
    for name in ("GLASSNET_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        environment.setdefault(name, threads)
    if args.verbose:
        print(
            _("Starting {n} processes, each with {threads} of this machine's {cores} cores: "
              "{command}").format(n=args.processes, threads=environment["GLASSNET_NUM_THREADS"],
                                  cores=cores, command=" ".join(command))
        )  # fmt: skip
    sys.stdout.flush()
    return subprocess.run(command, env=environment).returncode


def _join_the_ranks() -> None:
    """In a rank that ``--processes`` started: train data-parallel; only rank 0 speaks."""
    distribution.set_distribution(distribution.DataParallel())
    if glassnet.backend.process_index():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process


def cmd_train(args) -> int:
    if args.processes > 1:
        if not distribution.launched():
            return _train_on_processes(args)
        _join_the_ranks()
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
    model, shape = MODELS[args.model](side, n_classes, args)
    x_train, x_test = (x.reshape(len(x), *shape) for x in (x_train, x_test))
    optimizer = glassnet.optimizers.get(args.optimizer)
    if args.learning_rate is not None:
        optimizer.learning_rate = args.learning_rate
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if args.verbose:
        print(
            _("Training on {name}: {train} training and {test} test images.").format(
                name=name, train=f"{len(x_train):,}", test=f"{len(x_test):,}"
            )
        )
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
        said = _("Interrupted: saved the model as trained so far to {path}").format(path=output)
        print("\n" + said, file=sys.stderr)
        raise
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if not np.isfinite(loss) or not all(np.isfinite(w).all() for w in model.get_weights()):
        kept = _(" ({path} is untouched)").format(path=output) if output.exists() else ""
        raise CommandError(
            _(
                "Training diverged: the loss became {loss} (NaN or infinite), so the model was "
                "not saved{kept}. Try a smaller --learning-rate."
            ).format(loss=loss, kept=kept)
        )
    model.save(output)
    done = (
        _("Test accuracy: {accuracy} (loss {loss}) after {epochs} epoch in {seconds} s.")
        if epochs == 1
        else _("Test accuracy: {accuracy} (loss {loss}) after {epochs} epochs in {seconds} s.")
    )
    print(done.format(accuracy=f"{accuracy:.4f}", loss=f"{loss:.4f}", epochs=epochs,
                      seconds=f"{seconds:.1f}"))  # fmt: skip
    print(_("Saved the model to {path}").format(path=output))
    if profiler:
        print("\n" + _("Where the training time went:"))
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
        print(_("Wrote {path}").format(path=plots.save(make(), folder / name)))


def _dataset_for_model(model, requested: str | None) -> str:
    if requested is not None:
        return requested
    return "digits" if int(np.prod(model.input_shape[1:])) == 64 else "mnist"  # 8×8 images


def cmd_evaluate(args) -> int:
    model = load_model(args.model)
    name = _dataset_for_model(model, args.dataset)
    (x_test, y_test) = _load_dataset(name)[1][1]
    reads, values = int(np.prod(model.input_shape[1:])), int(np.prod(x_test.shape[1:]))
    if reads != values:
        side = "×".join(map(str, x_test.shape[1:]))
        fits = _dataset_for_model(model, None)
        hint = _(" Evaluate it on --dataset {name}.").format(name=fits) if fits != name else ""
        raise CommandError(
            _(
                "{model} reads inputs of {reads} values {shape}, but the {name} images are "
                "{side} ({values} values).{hint}"
            ).format(
                model=args.model,
                reads=reads,
                shape=model.input_shape[1:],
                name=name,
                side=side,
                values=values,
                hint=hint,
            )
        )
    x_test = _prepare_images(x_test).reshape(len(x_test), *model.input_shape[1:])
    if not model.compiled:
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0, return_dict=True)
    print(
        _("{model} on the {name} test set ({n} images):").format(
            model=args.model, name=name, n=f"{len(x_test):,}"
        )
    )
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
            _("{model} takes inputs of shape {shape}, which is not a square image.").format(
                model=args.model, shape=model.input_shape[1:]
            )
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


# One function on purpose: the three things explain shows (the RNN, the deck's network, a saved
# model on your input) share the last half — the trace, --maps, --json and the suggestion.
def cmd_explain(args) -> int:
    from glassnet import glassbox

    if args.rnn:
        if args.model is not None or args.image is not None:
            raise CommandError(_("--rnn shows its own tiny recurrent network: give no MODEL."))
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
        if args.target:
            y = np.array([args.target], dtype=float)
        else:
            label = args.label
            if label is None:  # explain the network's own answer
                label = int(np.argmax(model.predict(x, verbose=0)[0]))
                print(
                    _("No --label given: using the predicted class, {label}.").format(label=label)
                )
            y = glassbox.target_for_label(model, label)
        learning_rate = args.learning_rate or 0.01
    if args.maps:
        from glassnet import plots

        if x.ndim != 4:
            raise CommandError(
                _("--maps draws a CNN's feature maps; this model has no conv layer.")
            )
        print(_("Wrote {path}").format(path=plots.save(plots.feature_maps(model, x[0]), args.maps)))
    tr = glassbox.trace(model, x, y, learning_rate=learning_rate, check=not args.no_check)
    if args.json:
        Path(args.json).write_text(tr.to_json(separators=(",", ":")))
        size = Path(args.json).stat().st_size / 1e6
        print(
            _(
                "Wrote the trace to {path} ({size} MB: every number of the step, each layer's "
                "input, z, a, weights before and after, ∂C/∂a, ∂C/∂z, ∂C/∂x, ∂C/∂W and the checks)"
            ).format(path=args.json, size=f"{size:.1f}")
        )
    print(tr.render(color=sys.stdout.isatty(), neuron=args.neuron, full=args.full))
    other = tr.next_label() if tr.tiny_loss else None
    if other is not None:
        print("\n" + _("C ≈ 0: try --label {other}, the network's next choice, to watch a step "
                       "that moves the weights.").format(other=other))  # fmt: skip
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
            print(_("Wrote {path}").format(path=plots.save(plots.descent_picture(runs), args.png)))
        if args.gif:
            print(
                _("Wrote {path}").format(path=plots.animate_descent(runs[len(runs) // 2], args.gif))
            )
        if args.contour:
            figure = plots.optimizer_paths(descent.paths_2d(), descent.ravine)
            print(_("Wrote {path}").format(path=plots.save(figure, args.contour)))
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
        print("BLAS     " + _("(unknown)"))
    try:
        from threadpoolctl import threadpool_info

        threads = [f"{p['internal_api']}: {p['num_threads']} threads" for p in threadpool_info()]
        print("Threads  " + (", ".join(threads) or _("no BLAS thread pool found")))
    except ImportError:
        pass
    print(f"Floats   {glassnet.config.floatx()}")
    for package in ("h5py", "numba"):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = _("not installed")
        print(f"{package:8} {version}")
    kernels = _("fused (Numba)") if glassnet.kernels.ENABLED else _("NumPy formulas")
    print(f"Kernels  {kernels}")
    print(_("Data:"))
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
            _("expected a positive integer, received {value}").format(value=repr(text))
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            _("expected a positive integer, received {value}").format(value=value)
        )
    return value


def _moderate_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("expected a number, received {value}").format(value=repr(text))
        ) from None
    if not abs(value) <= 1e6:  # also refuses NaN
        raise argparse.ArgumentTypeError(
            _("expected a number between -1e6 and 1e6, received {value}").format(value=text)
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("expected a positive number, received {value}").format(value=repr(text))
        ) from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(
            _("expected a positive number, received {value}").format(value=text)
        )
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            _("expected a rate in [0, 1), received {value}").format(value=text)
        )
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(_("{value} is not a port (1 to 65535)").format(value=text))
    return value


def _language(text: str) -> str:
    if i18n.normalize(text) is None:
        spoken = ", ".join(code.replace("_", "-") for code in i18n.LANGUAGES)
        raise argparse.ArgumentTypeError(
            _("{value}: glassnet speaks {spoken}").format(value=repr(text), spoken=spoken)
        )
    return text


def _add_language(command) -> None:
    command.add_argument(
        "--lang",
        type=_language,
        default=None,
        help=_("en or zh-TW (Traditional Chinese); default: from LANG/LC_ALL"),
    )


# argparse's own words ("usage:", "options", its errors), translated with glassnet's catalog.
ARGPARSE_WORDS = [
    N_("usage: "),
    N_("options"),
    N_("positional arguments"),
    N_("show this help message and exit"),
    N_("show program's version number and exit"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("expected at least one argument"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("%(prog)s: error: %(message)s\n"),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``glassnet`` command's parser, its help in the language in use: one function per
    command below adds that command's arguments."""
    argparse._ = _  # argparse looks its words up at use: "usage:", "options", its errors
    parser = argparse.ArgumentParser(
        prog="glassnet",
        description=_(
            "A from-scratch neural-network library you can see inside. Train, evaluate and use "
            "networks on MNIST from the command line."
        ),
    )
    parser.add_argument("--version", action="version", version=f"glassnet {glassnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_train_parser, _evaluate_parser, _predict_parser, _explain_parser,
                _descent_parser, _serve_parser, _info_parser):  # fmt: skip
        command = add(sub)
        if not any(a.dest == "lang" for a in command._actions):
            _add_language(command)
    return parser


# A list of train's arguments, one call each, read as a table: splitting it would hide none.
def _train_parser(sub) -> argparse.ArgumentParser:
    train = sub.add_parser(
        "train",
        help=_("train an MLP, a CNN or an RNN on MNIST (or another dataset) and save it"),
        description=_(
            "Train a multilayer perceptron (or, with --model cnn, keras-io's mnist_convnet; with "
            "--model rnn, an LSTM reading each image row by row) with Keras-style progress, print "
            "its test accuracy and save it as a .keras file. Without --dataset it uses MNIST, "
            "and if MNIST cannot be found or downloaded, scikit-learn's bundled digits."
        ),
    )
    train.add_argument("--model", choices=list(MODELS), default="mlp", help=_(
        "mlp: Dense layers (--hidden, --activation, --dropout); cnn: conv 32 → max pool → "
        "conv 64 → max pool → dropout 0.5 → softmax; rnn: LSTM(128) over the image's rows → "
        "softmax (default: mlp)"))  # fmt: skip
    train.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help=_("dataset to train on (default: mnist, with an offline fallback)"),
    )
    train.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=[512, 256],
        metavar="UNITS",
        help=_("hidden layer sizes of the mlp (default: 512 256)"),
    )
    train.add_argument(
        "--activation",
        default="relu",
        help=_("hidden-layer activation (default: relu)"),
        choices=[name for name in activations.names() if name != "softmax"],
    )
    train.add_argument(
        "--dropout",
        type=_rate,
        default=0.0,
        help=_("dropout rate after each hidden layer (default: 0)"),
    )
    train.add_argument(
        "--optimizer",
        default="adam",
        choices=glassnet.optimizers.names(),
        help=_("optimizer (default: adam)"),
    )
    train.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help=_("learning rate (default: the optimizer's Keras default)"),
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=_("epochs (default: 5; 50 for the small digits dataset)"),
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=128, help=_("batch size (default: 128)")
    )
    train.add_argument("--seed", type=int, default=None, help=_("random seed, for repeatable runs"))
    train.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        help=_(
            "train data-parallel on this many processes (MPI ranks) of this machine, sharing its "
            'cores; each takes its share of every batch (needs: pip install "glassnet[mpi]")'
        ),
    )
    train.add_argument(
        "--output",
        "-o",
        default=None,
        help=_("where to save the model (default: ./<dataset>-<model>.keras)"),
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=[0, 1, 2],
        default=1,
        help=_("0 silent, 1 progress bar, 2 one line per epoch (default: 1)"),
    )
    train.add_argument(
        "--plots",
        metavar="DIR",
        help=_("write pictures of the training and the trained network into DIR"),
    )
    train.add_argument(
        "--profile",
        action="store_true",
        help=_("after training, show where the time went, per layer and phase"),
    )
    train.set_defaults(func=cmd_train)
    return train


def _evaluate_parser(sub) -> argparse.ArgumentParser:
    evaluate = sub.add_parser(
        "evaluate",
        help=_("test loss and accuracy of a saved model"),
        description=_("Evaluate a saved .keras model on a test set."),
    )
    evaluate.add_argument("model", help=_("a .keras file"))
    evaluate.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help=_("test set (default: mnist, or digits for 8×8 models)"),
    )
    evaluate.add_argument(
        "--batch-size", type=_positive_int, default=256, help=_("batch size (default: 256)")
    )
    evaluate.set_defaults(func=cmd_evaluate)
    return evaluate


def _predict_parser(sub) -> argparse.ArgumentParser:
    predict = sub.add_parser(
        "predict",
        help=_("classify your own images of digits"),
        description=_(
            "Classify photos or scans of handwritten digits. Each image is made MNIST-style: the "
            "paper's shading and ruled lines taken away, the digit found (Otsu's threshold, its "
            "connected components), its strokes made as thick as MNIST's, fitted into a 20×20 "
            "box and centred by its centre of mass in 28×28."
        ),
    )
    predict.add_argument("model", help=_("a .keras file trained on 28×28 digits"))
    predict.add_argument("images", nargs="+", metavar="IMAGE", help=_("image files (PNG, JPEG, …)"))
    predict.add_argument(
        "--no-show", dest="show", action="store_false", help=_("do not print the converted image")
    )
    predict.set_defaults(func=cmd_predict)
    return predict


def _explain_parser(sub) -> argparse.ArgumentParser:
    explain = sub.add_parser(
        "explain",
        help=_("every number of one forward and backward pass, in the deck's notation"),
        description=_(
            "Show one gradient-descent step in the deck's notation: the forward pass "
            "(z = W·a + b, a = σ(z)) layer by layer, the loss, the backward pass from the output "
            "layer back with finite differences beside each gradient, the update and the new "
            "loss. Without MODEL: the deck's worked example, the 2-2-2-2 sigmoid network with "
            "input (1, −1)."
        ),
    )
    explain.add_argument("model", nargs="?", help=_("a .keras file (default: the deck's network)"))
    explain.add_argument("--image", help=_("a picture of a digit, as the input of MODEL"))
    explain.add_argument(
        "--input",
        type=float,
        nargs="+",
        metavar="VALUE",
        help=_("the input values (default for the deck: 1 -1)"),
    )
    explain.add_argument(
        "--target",
        type=float,
        nargs="+",
        metavar="VALUE",
        help=_("the target output values (default for the deck: 0 1)"),
    )
    explain.add_argument(
        "--label", type=int, help=_("the target class for MODEL (default: the class it predicts)")
    )
    explain.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help=_("step size of the update (default: 0.5 for the deck, 0.01 else)"),
    )
    explain.add_argument(
        "--neuron",
        type=_neuron,
        metavar="LAYER:NEURON",
        help=_("show one neuron in full, e.g. 1:0 (layers count from 1)"),
    )
    explain.add_argument("--full", action="store_true", help=_("print large arrays in full"))
    explain.add_argument(
        "--no-check", action="store_true", help=_("skip the finite-difference checks")
    )
    explain.add_argument("--json", metavar="FILE", help=_("also write the trace as JSON"))
    explain.add_argument(
        "--maps", metavar="PNG", help=_("for a CNN, also draw the feature maps of the input")
    )
    explain.add_argument(
        "--rnn",
        action="store_true",
        help=_(
            "a tiny recurrent network (2 units, 3 steps) unrolled: backpropagation through time"
        ),
    )
    explain.set_defaults(func=cmd_explain)
    return explain


def _descent_parser(sub) -> argparse.ArgumentParser:
    from glassnet.glassbox import descent

    desc = sub.add_parser(
        "descent",
        help=_("the deck's gradient-descent picture: a ball rolling down a loss curve"),
        description=_(
            "Walk down a loss curve with w ← w − learning_rate × slope and show every step (w, "
            "slope, step, loss) until the minimum, or until it diverges. --compare adds a "
            "learning rate too small (it crawls) and one too large (it diverges)."
        ),
    )
    desc.add_argument(
        "--curve",
        choices=[*descent.CURVES, "network"],
        default="quadratic",
        help=_(
            "the loss: a quadratic, a curve with two valleys, or the real loss "
            "of the deck's network along one weight (default: quadratic)"
        ),
    )
    desc.add_argument(
        "--start",
        type=_moderate_float,
        default=None,
        help=_("the starting w (default: the curve's own)"),
    )
    desc.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help=_("step size (default: 0.1; 30 for the flat network curve)"),
    )
    desc.add_argument("--steps", type=_positive_int, default=100, help=_("at most this many steps"))
    desc.add_argument(
        "--compare",
        action="store_true",
        help=_("also run a too small and a too large learning rate"),
    )
    desc.add_argument("--png", metavar="FILE", help=_("draw the walk(s) as a PNG"))
    desc.add_argument("--gif", metavar="FILE", help=_("animate the walk as a GIF"))
    desc.add_argument(
        "--contour",
        metavar="FILE",
        help=_("draw SGD, momentum and Adam on a two-weight loss surface (PNG)"),
    )
    desc.set_defaults(func=cmd_descent)
    return desc


def _serve_parser(sub) -> argparse.ArgumentParser:
    serve = sub.add_parser(
        "serve",
        help=_("the glass box in your browser: draw a digit and watch every layer"),
        description=_(
            "Serve a local page: draw a digit (or drop a photo) and watch every layer of MODEL "
            "answer, click a neuron for its z = W·a + b, take one training step and see ∂C/∂z "
            "layer by layer, the deck's worked example and gradient descent with a learning-rate "
            "slider. Without MODEL it offers the .keras files in this folder. Ctrl-C stops it."
        ),
    )
    serve.add_argument("model", nargs="?", help=_("a .keras file (default: those in this folder)"))
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help=_("address to listen on (default: 127.0.0.1, this machine only)"),
    )
    serve.add_argument("--port", type=_port, default=8000, help=_("port (default: 8000)"))
    serve.add_argument(
        "--no-browser", dest="browser", action="store_false", help=_("do not open a browser")
    )
    serve.set_defaults(func=cmd_serve)
    return serve


def _info_parser(sub) -> argparse.ArgumentParser:
    info = sub.add_parser(
        "info",
        help=_("versions, BLAS and where the data is"),
        description=_(
            "Show glassnet's version, NumPy and BLAS in use, and where each dataset was found."
        ),
    )
    info.set_defaults(func=cmd_info)
    return info


def _language_in(argv: list[str]) -> str | None:
    """The --lang the command line asks for, read before the parser is built (its help speaks
    it); None: the environment's."""
    for i, word in enumerate(argv):
        if word == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith("--lang="):
            return word.split("=", 1)[1]
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    asked = _language_in(argv)  # one glassnet does not speak: the parser says so, in English
    i18n.set_language(asked if asked and i18n.normalize(asked) else None)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # to start the same command again on several processes
    if args.command is None:
        parser.print_help()
        print("\nglassnet: " + _("choose a command, for example: glassnet train"), file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:  # `glassnet info | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0
    except (CommandError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("GLASSNET_DEBUG"):  # developers: the full traceback
            raise
        print("glassnet: " + _("error:") + f" {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nglassnet: " + _("interrupted"), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
