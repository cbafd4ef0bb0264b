"""Train the same MNIST workloads in glassnet and its peers, side by side, and compare.

    python benchmarks/compare.py                       # every framework that is installed
    python benchmarks/compare.py --frameworks glassnet --workloads W1 W2 --epochs 3
    python benchmarks/compare.py --rounds 3            # everything three times, interleaved

Each (framework, workload) pair runs in a fresh process of its own, so that peak memory (RSS) and
thread pools do not leak from one to the next. Every run trains on the same MNIST arrays (from
GLASSNET_DATA, or wherever glassnet finds them) with the same architecture, batch size, optimizer
and number of epochs, and reports the median seconds per epoch after one warm-up epoch, the peak
RSS, the test accuracy and, for W1 and W5, inference samples per second (predicting the 10,000
test images in batches of 1,000, and in one batch of 10,000). The "floor" row is the time the
epoch's matrix products alone take in NumPy at the same shapes: no framework can train faster
than that on this machine; beside it, glassnet's epoch as a multiple of it and the microseconds
per step glassnet spends beyond it (the per-step overhead). At the start of every round the
machine's float32 GEMM peak is measured (NumPy at 2048³, on one thread and on every core), and
printed above the table with the processor's name: every figure is read against it.

On a shared machine one run of a pair can be 20 % slower than the next. With ``--rounds N`` the
whole set runs N times, interleaved; each figure is the median over the rounds, and the time
relative to glassnet is taken within each round (the two ran minutes apart) and given as the
median and range over the rounds.

Results are printed as a table and written as JSON (benchmarks/results/compare.json by default).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# ---- the workloads ------------------------------------------------------------------------------

WORKLOADS = {
    "W1": {
        "title": "mnist_mlp: 784-512-512-10 relu, dropout 0.2, RMSprop 1e-3, batch 128",
        "hidden": [512, 512],
        "activation": "relu",
        "dropout": 0.2,
        "optimizer": "rmsprop",
        "lr": 1e-3,
        "batch": 128,
    },
    "W2": {
        "title": "784-128-10 relu, Adam 1e-3, batch 128",
        "hidden": [128],
        "activation": "relu",
        "dropout": 0.0,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch": 128,
    },
    "W3": {
        "title": "784-128-10 relu, Adam 1e-3, batch 32",
        "hidden": [128],
        "activation": "relu",
        "dropout": 0.0,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch": 32,
    },
    "W4": {
        "title": "textbook: 784-128 sigmoid-10 softmax, SGD 0.1, batch 64",
        "hidden": [128],
        "activation": "sigmoid",
        "dropout": 0.0,
        "optimizer": "sgd",
        "lr": 0.1,
        "batch": 64,
    },
    "W5": {
        "title": "mnist_convnet: conv32-pool-conv64-pool-dropout 0.5-dense 10, Adam, batch 128",
        "kind": "cnn",
        "dropout": 0.5,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch": 128,
        "train_samples": 54000,  # the script's validation_split=0.1 keeps 90 % for training
    },
    "W6": {
        "title": "row-by-row MNIST: LSTM(128) over 28 steps of 28 pixels, Adam, batch 128",
        "kind": "rnn",
        "dropout": 0.0,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch": 128,
    },
}
# "glassnet" multiplies with MKL where the mkl extra is installed and the processor is Intel's
# (or GLASSNET_BLAS=mkl is set: on another processor, to compare); "glassnet-numpy" is glassnet
# with NumPy's own BLAS (GLASSNET_BLAS=numpy), run only where MKL is there to compare against.
FRAMEWORKS = ["glassnet", "glassnet-numpy", "torch", "keras", "sklearn"]
INFERENCE_WORKLOADS = ("W1", "W5", "W6")
INFERENCE_BATCH = 1000
INFERENCE_BATCHES = (INFERENCE_BATCH, 10000)  # and the whole test set in one batch


def load_mnist():
    from glassnet.datasets import mnist

    (x, y), (xt, yt) = mnist.load_data()

    def prep(images):
        flat = images.reshape(len(images), -1).astype("float32")
        flat /= 255  # in place: no second copy of the dataset
        return flat

    return prep(x), y.astype("int64"), prep(xt), yt.astype("int64")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


# ---- one worker per framework; each returns epoch times, accuracy, inference rate --------------


def glassnet_model(w):
    """Workload ``w``'s model in glassnet, compiled, from seed 0 (benchmarks/distributed.py
    trains the same)."""
    import glassnet
    from glassnet.layers import Dense, Dropout, Input
    from glassnet.models import Sequential

    glassnet.utils.set_random_seed(0)
    if w.get("kind") == "cnn":
        from glassnet.layers import Conv2D, Flatten, MaxPooling2D

        model = Sequential([Input(shape=(28, 28, 1)), Conv2D(32, 3, activation="relu"),
                            MaxPooling2D(2), Conv2D(64, 3, activation="relu"), MaxPooling2D(2),
                            Flatten(), Dropout(w["dropout"])])  # fmt: skip
    elif w.get("kind") == "rnn":
        from glassnet.layers import LSTM

        model = Sequential([Input(shape=(28, 28)), LSTM(128)])
    else:
        model = Sequential([Input(shape=(784,))])
        for units in w["hidden"]:
            model.add(Dense(units, activation=w["activation"]))
            if w["dropout"]:
                model.add(Dropout(w["dropout"]))
    model.add(Dense(10, activation="softmax"))
    optimizer = glassnet.optimizers.get(w["optimizer"])
    optimizer.learning_rate = w["lr"]
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run_glassnet(w, x, y, xt, yt, epochs):
    import glassnet

    model = glassnet_model(w)
    times = []
    for _ in range(epochs + 1):  # the first is the warm-up
        start = time.perf_counter()
        model.fit(x, y, batch_size=w["batch"], epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    accuracy = model.evaluate(xt, yt, batch_size=INFERENCE_BATCH, verbose=0)[1]
    predict = lambda batch: model.predict(xt, batch_size=batch, verbose=0)  # noqa: E731
    blas = "MKL" if glassnet.backend.mkl() is not None else "NumPy's BLAS"
    return times, accuracy, predict, f"{glassnet.__version__} ({blas})"


def run_torch(w, x, y, xt, yt, epochs):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    nn = torch.nn
    if w.get("kind") == "cnn":  # PyTorch is channels first: (batch, 1, 28, 28)
        layers = [nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Dropout(w["dropout"]), nn.Linear(1600, 10)]  # fmt: skip
    elif w.get("kind") == "rnn":

        class LastStep(nn.Module):  # nn.LSTM returns (outputs, state): keep the last output
            def forward(self, outputs):
                return outputs[0][:, -1]

        layers = [nn.Unflatten(1, (28, 28)), nn.LSTM(28, 128, batch_first=True), LastStep(),
                  nn.Linear(128, 10)]  # fmt: skip
    else:
        layers, n_in = [], 784
        act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[w["activation"]]
        for units in w["hidden"]:
            layers += [nn.Linear(n_in, units), act()]
            if w["dropout"]:
                layers.append(nn.Dropout(w["dropout"]))
            n_in = units
        layers.append(nn.Linear(n_in, 10))
    model = nn.Sequential(*layers)
    optimizer = {
        # Keras's RMSprop puts ε inside the square root; PyTorch's outside. Same defaults else.
        "rmsprop": lambda: torch.optim.RMSprop(model.parameters(), lr=w["lr"], alpha=0.9, eps=1e-7),
        "adam": lambda: torch.optim.Adam(model.parameters(), lr=w["lr"], eps=1e-7),
        "sgd": lambda: torch.optim.SGD(model.parameters(), lr=w["lr"]),
    }[w["optimizer"]]()
    loss_fn = torch.nn.CrossEntropyLoss()
    X, Y, XT = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xt)
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(X))
        for i in range(0, len(X), w["batch"]):  # index batches directly: faster than DataLoader
            idx = order[i : i + w["batch"]]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), Y[idx])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)

    def predict(batch=INFERENCE_BATCH):
        model.eval()
        with torch.inference_mode():
            return torch.cat(
                [torch.softmax(model(XT[i : i + batch]), dim=1) for i in range(0, len(XT), batch)]
            ).numpy()

    accuracy = float((predict().argmax(axis=1) == yt).mean())
    return times, accuracy, predict, torch.__version__


def run_keras(w, x, y, xt, yt, epochs):
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    if w.get("kind") == "cnn":
        model = keras.Sequential([keras.Input(shape=(28, 28, 1)),
                                  L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Flatten(), L.Dropout(w["dropout"])])  # fmt: skip
    elif w.get("kind") == "rnn":
        model = keras.Sequential([keras.Input(shape=(28, 28)), L.LSTM(128)])
    else:
        model = keras.Sequential([keras.Input(shape=(784,))])
        for units in w["hidden"]:
            model.add(L.Dense(units, activation=w["activation"]))
            if w["dropout"]:
                model.add(L.Dropout(w["dropout"]))
    model.add(L.Dense(10, activation="softmax"))
    optimizer = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
    }[w["optimizer"]](learning_rate=w["lr"])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        model.fit(x, y, batch_size=w["batch"], epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    accuracy = model.evaluate(xt, yt, batch_size=INFERENCE_BATCH, verbose=0)[1]
    predict = lambda batch: model.predict(xt, batch_size=batch, verbose=0)  # noqa: E731
    version = f"{keras.__version__} ({keras.backend.backend()} backend)"
    return times, accuracy, predict, version


def run_sklearn(w, x, y, xt, yt, epochs):
    if w["dropout"] or w["optimizer"] == "rmsprop":
        return None  # MLPClassifier has neither dropout nor RMSprop (nor convolutions)
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=tuple(w["hidden"]),
        activation="logistic" if w["activation"] == "sigmoid" else w["activation"],
        solver=w["optimizer"],
        learning_rate_init=w["lr"],
        batch_size=w["batch"],
        alpha=0.0,
        momentum=0.0,
        nesterovs_momentum=False,
        epsilon=1e-7,
        max_iter=1,
        warm_start=True,
        shuffle=True,
        random_state=0,
        tol=0.0,
        n_iter_no_change=10**9,
    )
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs + 1):
            start = time.perf_counter()
            model.fit(x, y)
            times.append(time.perf_counter() - start)
    accuracy = float((model.predict(xt) == yt).mean())
    return times, accuracy, lambda batch: model.predict_proba(xt), sklearn.__version__


RUNNERS = {"glassnet": run_glassnet, "glassnet-numpy": run_glassnet, "torch": run_torch,
           "keras": run_keras, "sklearn": run_sklearn}  # fmt: skip


def worker(framework: str, workload: str, epochs: int) -> dict:
    if framework == "glassnet-numpy":
        os.environ["GLASSNET_BLAS"] = "numpy"  # read at glassnet's first product
    x, y, xt, yt = load_mnist()
    w = WORKLOADS[workload]
    if w.get("kind") == "cnn" and framework != "torch":  # channels last
        x, xt = x.reshape(-1, 28, 28, 1), xt.reshape(-1, 28, 28, 1)  # views: no copy
    if w.get("kind") == "rnn" and framework != "torch":  # 28 steps of 28 pixels
        x, xt = x.reshape(-1, 28, 28), xt.reshape(-1, 28, 28)
    n = w.get("train_samples", len(x))
    result = RUNNERS[framework](w, x[:n], y[:n], xt, yt, epochs)
    if result is None:
        return {"framework": framework, "workload": workload, "skipped": "does not apply"}
    times, accuracy, predict, version = result
    record = {
        "framework": framework,
        "workload": workload,
        "version": version,
        "epoch_seconds": times[1:],
        "warmup_seconds": times[0],
        "median_epoch_s": statistics.median(times[1:]),
        "test_accuracy": float(accuracy),
        "peak_rss_mb": peak_rss_mb(),  # training and evaluation; inference below comes after
    }
    if workload in INFERENCE_WORKLOADS:
        for batch in INFERENCE_BATCHES:
            seconds = median_seconds(lambda batch=batch: predict(batch), 5)
            record[f"inference_samples_per_s_b{batch}"] = len(xt) / seconds
    return record


def median_seconds(fn, repeats: int) -> float:
    """The median time of ``repeats`` calls of ``fn``, after one call to warm up."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


# ---- the GEMM floor -----------------------------------------------------------------------------


def layer_shapes(workload: str) -> list[tuple[int, int, int]]:
    """(rows, n_in, n_out) of each layer's product z = a·Wᵀ in one training step."""
    w = WORKLOADS[workload]
    batch = w["batch"]
    if w.get("kind") == "cnn":
        # Each product is (rows, n_in)·(n_in, n_out): a conv's rows are its output positions
        # and n_in its window's length (z = patches·Wᵀ); the Dense layer's rows are the batch.
        return [(batch * 26 * 26, 9, 32), (batch * 11 * 11, 288, 64), (batch, 1600, 10)]
    if w.get("kind") == "rnn":
        # The inputs' share of all 28 steps at once, then W_h·h_{t−1} once per step (its
        # ∂C/∂W_h summed over the steps as one product), and the Dense layer.
        return [(batch * 28, 28, 512), *[(batch, 128, 512)] * 28, (batch, 128, 10)]
    sizes = [784, *w["hidden"], 10]
    return [(batch, n_in, n_out) for n_in, n_out in itertools.pairwise(sizes)]


def step_products(workload: str) -> list[tuple[str, int, int, int]]:
    """(kind, m, k, n) for every matrix product of one training step, m×k times k×n: for every
    layer "z" (z = a·Wᵀ) and "dW" (∂C/∂W = ∂C/∂zᵀ·a), and "dx" (∂C/∂a = ∂C/∂z·W) for all but
    the first."""
    found = []
    for i, (rows, n_in, n_out) in enumerate(layer_shapes(workload)):
        found += [("z", rows, n_in, n_out), ("dW", n_out, rows, n_in)]
        if i > 0:
            found.append(("dx", rows, n_out, n_in))
    return found


def operands(kind: str, m: int, k: int, n: int, rng):
    """The two float32 matrices of a product, laid out as glassnet's layers hold them: W is
    (n_out, n_in), so z = a·Wᵀ reads W transposed and ∂C/∂W = ∂C/∂zᵀ·a reads ∂C/∂z so."""
    if kind == "z":  # a (rows, n_in) · Wᵀ
        return rng.random((m, k), dtype="float32"), rng.random((n, k), dtype="float32").T
    if kind == "dW":  # ∂C/∂zᵀ · a (rows, n_in)
        return rng.random((k, m), dtype="float32").T, rng.random((k, n), dtype="float32")
    return rng.random((m, k), dtype="float32"), rng.random((k, n), dtype="float32")  # ∂C/∂z · W


def gemm_floor(workload: str, repeats: int = 20) -> dict:
    """Seconds per epoch of the matrix products alone, in NumPy float32, at the workload's
    shapes and layouts (``step_products``, ``operands``)."""
    import numpy as np

    w = WORKLOADS[workload]
    steps = -(-w.get("train_samples", 60000) // w["batch"])
    rng = np.random.default_rng(0)
    products, flops = [], 0
    for kind, m, k, n in step_products(workload):
        a, b = operands(kind, m, k, n, rng)
        products.append(lambda a=a, b=b: a @ b)
        flops += 2 * m * k * n
    for product in products:
        product()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            for product in products:
                product()
        runs.append((time.perf_counter() - start) / repeats)
    step = statistics.median(runs)
    return {
        "workload": workload,
        "framework": "floor",
        "steps": steps,
        "median_epoch_s": step * steps,
        "gflops_per_s": flops / step / 1e9,
        "epoch_gflop": flops * steps / 1e9,
    }


def gemm_peak(size: int = 2048, repeats: int = 5) -> dict:
    """The machine's float32 GEMM rate in NumPy at size³, on one thread and on every core
    (median of ``repeats``): the peak that every speed figure is read against; and MKL's, where
    glassnet multiplies with it (the mkl extra)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from glassnet import backend, kernels

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    flop = 2 * size**3
    rates = {}
    for threads in (1, os.cpu_count()):
        with threadpool_limits(threads, user_api="blas"):
            rates[threads] = flop / median_seconds(lambda: a @ a, repeats) / 1e9
    peak = {"one_thread_gflops": rates[1], "all_cores_gflops": rates[os.cpu_count()]}
    if backend.mkl() is not None:
        c = np.empty_like(a)
        every_core = flop / median_seconds(lambda: kernels.matmul(a, a, out=c), repeats) / 1e9
        with backend.blas_threads_for(0):  # MKL on one thread
            one = flop / median_seconds(lambda: kernels.matmul(a, a, out=c), repeats) / 1e9
        peak.update(mkl_one_thread_gflops=one, mkl_all_cores_gflops=every_core)
    return peak


def cpu_name() -> str:
    """The processor's model name, as Linux reports it (else what Python knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- the parent: run everything, print the table ------------------------------------------------


def available(framework: str) -> bool:
    """Whether ``framework`` is installed; glassnet-numpy only where glassnet multiplies with
    MKL (else it is glassnet)."""
    probe = f"import importlib.util as u, sys; sys.exit(u.find_spec({framework!r}) is None)"
    if framework == "glassnet-numpy":
        probe = "import sys; from glassnet import backend; sys.exit(backend.mkl() is None)"
    return subprocess.run([sys.executable, "-c", probe]).returncode == 0


def run_in_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(records: list[dict]) -> list[dict]:
    """One row per (workload, framework): the median over the rounds of each figure, and the
    ratio of its time to glassnet's (glassnet's to the floor's, for the floor) taken within each
    round, where both ran minutes apart under the same load; its median and range."""
    runs: dict[tuple, list[dict]] = {}
    for r in records:
        runs.setdefault((r["workload"], r["framework"]), []).append(r)
    ours = {
        (r["workload"], r["round"]): r["median_epoch_s"]
        for r in records
        if r["framework"] == "glassnet" and "median_epoch_s" in r
    }
    rows = []
    for (workload, framework), group in runs.items():
        done = [r for r in group if "median_epoch_s" in r]
        row = {"workload": workload, "framework": framework, "rounds": len(done)}
        if not done:
            rows.append({**row, "note": group[0].get("skipped") or group[0].get("error")})
            continue
        for key in (
            "median_epoch_s",
            "peak_rss_mb",
            "test_accuracy",
            "gflops_per_s",
            *(f"inference_samples_per_s_b{b}" for b in INFERENCE_BATCHES),
        ):
            values = [r[key] for r in done if key in r]
            if values:
                row[key] = statistics.median(values)
        # A peer's time as a multiple of glassnet's; for the floor, glassnet's as a multiple of it.
        ratios = [
            r["median_epoch_s"] / ours[workload, r["round"]]
            if framework != "floor"
            else ours[workload, r["round"]] / r["median_epoch_s"]
            for r in done
            if (workload, r["round"]) in ours
        ]
        if ratios:
            row["ratio"] = statistics.median(ratios)
            row["ratio_range"] = [min(ratios), max(ratios)]
        beyond = [  # glassnet's time per step beyond its matrix products: the overhead
            (ours[workload, r["round"]] - r["median_epoch_s"]) / r["steps"] * 1e6
            for r in done
            if framework == "floor" and "steps" in r and (workload, r["round"]) in ours
        ]
        if beyond:
            row["beyond_us_per_step"] = statistics.median(beyond)
            row["beyond_range"] = [min(beyond), max(beyond)]
        rows.append(row)
    return rows


def _ratio(row: dict) -> str:
    """The ratio as 1.52×, or as 1.52× (1.31–1.80) when there were several rounds."""
    lo, hi = row["ratio_range"]
    text = f"{row['ratio']:.2f}×"
    return text if row["rounds"] == 1 else f"{text} ({lo:.2f}–{hi:.2f})"


def peak_line(peaks: list[dict]) -> str:
    """The GEMM peak measured at the start of each round: median and range, both thread counts."""
    peaks = [p for p in peaks if "one_thread_gflops" in p]
    if not peaks:
        return "float32 GEMM peak: not measured (threadpoolctl is missing)"
    lines = []
    for library, prefix in (("NumPy", ""), ("MKL", "mkl_")):
        parts = []
        for key, what in (("one_thread_gflops", "one thread"), ("all_cores_gflops", "every core")):
            values = [p[prefix + key] for p in peaks if prefix + key in p]
            if values:
                spread = f" ({min(values):.0f}–{max(values):.0f})" if len(values) > 1 else ""
                parts.append(f"{statistics.median(values):.0f}{spread} GFLOP/s on {what}")
        if parts:
            lines.append(f"float32 GEMM peak ({library}, 2048³): " + ", ".join(parts))
    return "\n".join(lines)


def print_table(rows: list[dict]) -> None:
    b_small, b_all = INFERENCE_BATCHES
    header = (
        f"{'workload':8} {'framework':14} {'s/epoch':>8} {'vs glassnet':>20} {'peak RSS':>9} "
        f"{'test acc':>8} {f'infer/s b{b_small}':>13} {f'infer/s b{b_all}':>14}"
    )
    print(header)
    print("-" * len(header))
    workload = None
    for row in rows:
        if workload is not None and row["workload"] != workload:
            print()
        workload = row["workload"]
        if "note" in row:
            print(f"{workload:8} {row['framework']:14} {row['note']}")
            continue
        if row["framework"] == "floor":
            ratio = f"{row['gflops_per_s']:.0f} GFLOP/s"
            if "ratio" in row:
                ratio += f"; glassnet = {_ratio(row)} floor"
            if "beyond_us_per_step" in row:
                lo, hi = row["beyond_range"]
                spread = "" if row["rounds"] == 1 else f" ({lo:.0f}–{hi:.0f})"
                ratio += f", +{row['beyond_us_per_step']:.0f} µs a step{spread}"
            print(f"{workload:8} {'floor':14} {row['median_epoch_s']:8.3f}  ({ratio})")
            continue
        ratio = _ratio(row) if "ratio" in row else ""
        rss = f"{row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else ""
        acc = f"{row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
        infer = [
            f"{row[key]:,.0f}" if key in row else ""
            for key in (f"inference_samples_per_s_b{b}" for b in INFERENCE_BATCHES)
        ]
        print(
            f"{workload:8} {row['framework']:14} {row['median_epoch_s']:8.3f} {ratio:>20} "
            f"{rss:>9} {acc:>8} {infer[0]:>13} {infer[1]:>14}"
        )
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=FRAMEWORKS)
    parser.add_argument(
        "--workloads", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS)
    )
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every pair this many times, interleaved; report medians over the rounds",
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "compare.json"
    )
    parser.add_argument(
        "--worker", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS
    )
    parser.add_argument("--floor", metavar="WORKLOAD", help=argparse.SUPPRESS)
    parser.add_argument("--peak", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("epochs", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    if args.worker:
        print(json.dumps(worker(*args.worker, args.epochs)))
        return 0
    if args.floor:
        print(json.dumps(gemm_floor(args.floor)))
        return 0
    if args.peak:
        print(json.dumps(gemm_peak()))
        return 0

    frameworks = [f for f in args.frameworks if available(f)]
    missing = sorted(set(args.frameworks) - set(frameworks))
    print(
        f"{platform.node()} · {cpu_name()} · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()} · {time.strftime('%Y-%m-%d')}"
    )
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}")
    records, peaks = [], []
    for round_ in range(args.rounds):
        peaks.append(run_in_subprocess(["--peak"]))  # the machine's own rate, this round
        # Each round runs every pair once; the order of the frameworks turns by one each round,
        # so that none is always the first to meet a quiet (or busy) machine.
        turn = round_ % len(frameworks)
        order = frameworks[turn:] + frameworks[:turn]
        for workload in args.workloads:
            print(f"round {round_ + 1}/{args.rounds} {workload}: ", end="", file=sys.stderr)
            for framework in order:
                record = run_in_subprocess(
                    ["--worker", framework, workload, "--epochs", str(args.epochs)]
                )
                records.append(
                    {"framework": framework, "workload": workload, "round": round_, **record}
                )
                seconds = record.get("median_epoch_s")
                shown = f"{seconds:.2f} s" if seconds else record.get("skipped") or "failed"
                print(f"{framework} {shown}; ", end="", file=sys.stderr)
            floor = run_in_subprocess(["--floor", workload])
            records.append({"framework": "floor", "workload": workload, "round": round_, **floor})
            print(file=sys.stderr, flush=True)
    rows = summarise(records)
    rows.sort(key=lambda r: (r["workload"], [*frameworks, "floor"].index(r["framework"])))
    print()
    print(peak_line(peaks))
    print_table(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": platform.uname()._asdict(),
                "date": time.strftime("%Y-%m-%d"),
                "epochs": args.epochs,
                "rounds": args.rounds,
                "cpu": cpu_name(),
                "gemm_peak": peaks,
                "summary": rows,
                "runs": records,
            },
            indent=2,
        )
    )
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
