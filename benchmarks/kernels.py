"""The fused kernels against the NumPy formulas they replace, and glassnet's per-step overhead.

    python benchmarks/kernels.py

Prints medians over repeated calls, on one thread: each optimizer's update of the mnist_mlp first
layer (401,920 float32 parameters), bias + relu and the activation derivatives at (128, 512), an
LSTM step's elementwise work at W6's shapes, forward and back, and the time of one training step
of a tiny 8-8-10 model (batch 32), where the matrix products cost next to nothing and what
remains is glassnet's own per-step work.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from glassnet import activations, kernels, optimizers
from glassnet.layers import Dense, Input
from glassnet.models import Sequential


def median_us(fn, repeats: int = 200) -> float:
    fn()  # compiled (or loaded from the cache) before the clock runs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def both(fn) -> tuple[float, float]:
    """fn's median time with the kernels, then with the NumPy formulas."""
    enabled = kernels.ENABLED
    try:
        kernels.ENABLED = True
        fused = median_us(fn)
        kernels.ENABLED = False
        plain = median_us(fn)
    finally:
        kernels.ENABLED = enabled
    return fused, plain


def optimizer_updates(rng) -> None:
    n = 784 * 512 + 512
    for name, make in (
        ("SGD with momentum", lambda: optimizers.SGD(momentum=0.9)),
        ("RMSprop", optimizers.RMSprop),
        ("Adam", optimizers.Adam),
    ):
        opt = make()
        p, g = rng.normal(size=n).astype("float32"), rng.normal(size=n).astype("float32")
        state = opt.init_state(p)
        opt.iterations = 1
        fused, plain = both(lambda opt=opt, p=p, g=g, state=state: opt.update(p, g, state))
        print(f"{name:28} {fused:8.0f} µs  {plain:8.0f} µs")


def around_products(rng) -> None:
    z0 = rng.normal(size=(128, 512)).astype("float32")
    b, d = rng.normal(size=512).astype("float32"), rng.normal(size=(128, 512)).astype("float32")

    def bias_relu():
        z = z0.copy()
        if kernels.ENABLED:
            kernels.bias_relu(z, np.empty_like(z), b, z.dtype.type(0))
        else:
            z += b
            activations.relu(z)

    copy = median_us(z0.copy)
    fused, plain = both(bias_relu)
    print(f"{'bias + relu (128, 512)':28} {fused - copy:8.1f} µs  {plain - copy:8.1f} µs")
    for name in ("relu", "sigmoid", "tanh"):
        fn = activations.get(name)
        a = fn(z0)
        fused, plain = both(lambda fn=fn, a=a: fn.backward(z0, a, d))
        print(f"{name + ' derivative (128, 512)':28} {fused:8.1f} µs  {plain:8.1f} µs")


def lstm_step(rng) -> None:
    """One LSTM step after its matrix product, W6's shapes (batch 128, 128 units): the gates,
    the cell state and h in one kernel, against the NumPy formulas of ``LSTM.step``."""
    from types import SimpleNamespace

    from glassnet.layers import LSTM

    n, u = 128, 128
    layer = LSTM(u)
    layer.build((None, 28, 28))
    layer.params["W_h"][...] = 0  # the product is timed elsewhere: here it adds nothing
    z0, zx = (rng.normal(size=(n, 4 * u)).astype("float32") for _ in range(2))
    h, c_prev = (rng.normal(size=(n, u)).astype("float32") for _ in range(2))
    z, gates, c, tanh_c, h_new = (np.empty_like(a) for a in (z0, z0, h, h, h))

    def fused():
        z[...] = zx  # z as the step's one product leaves it: W_h·h_{t−1} + W_x·x_t + b
        kernels.lstm_step(z, c_prev, gates, c, tanh_c, h_new)

    def plain():
        layer.step(zx, [h, c_prev], SimpleNamespace(z=z), None)

    kernel = median_us(fused) - median_us(lambda: z.__setitem__(..., z0))
    numpy_formulas = median_us(plain) - median_us(lambda: np.matmul(h, layer.params["W_h"].T))
    print(f"{'LSTM step (128, 4·128)':28} {kernel:8.1f} µs  {numpy_formulas:8.1f} µs")

    # Back: from the values the step above stored, ∂C/∂z, ∂C/∂c_{t−1} and ∂C/∂h_t
    s = SimpleNamespace(z=z.copy())
    layer.step(zx, [h, c_prev], s, None)
    dh_later, dh_output, dc0 = (rng.normal(size=(n, u)).astype("float32") for _ in range(3))
    dc, dz, dh, one = np.empty_like(dc0), np.empty_like(z0), np.empty_like(h), np.float32(1)

    def fused_back():
        dc[...] = dc0
        kernels.lstm_step_backward(dh_later, dh_output, dc, s.gates, c_prev, s.tanh_c, dz, dh,
                                   one)  # fmt: skip

    def plain_back():
        layer.step_backward([dh_later + dh_output, dc0], s, None)

    kernel = median_us(fused_back) - median_us(lambda: dc.__setitem__(..., dc0))
    numpy_formulas = median_us(plain_back) - median_us(lambda: np.matmul(dz, layer.params["W_h"]))
    print(f"{'LSTM step back (128, 4·128)':28} {kernel:8.1f} µs  {numpy_formulas:8.1f} µs")


def step_overhead(rng) -> None:
    x = rng.random((64000, 8), dtype=np.float32)
    y = rng.integers(0, 10, 64000)
    model = Sequential([Input((8,)), Dense(8, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:3200], y[:3200], batch_size=32, verbose=0)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - start)
    print(
        f"one step of a tiny model (8-8-10, batch 32, Adam, accuracy): {best / 2000 * 1e6:.0f} µs"
    )


COLD_START = """
import json, time
start = time.perf_counter()
import glassnet
from glassnet import layers
imported = time.perf_counter() - start
import numpy as np
rng = np.random.default_rng(0)
x, y = rng.random((64, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 64)
models = {
    "MLP (relu, dropout)": [layers.Flatten(), layers.Dense(16, activation="relu"),
                            layers.Dropout(0.2)],
    "MLP (sigmoid, tanh)": [layers.Flatten(), layers.Dense(16, activation="sigmoid"),
                            layers.Dense(16, activation="tanh")],
    "CNN": [layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(4, 3, activation="relu"), layers.Flatten()],
    "LSTM": [layers.Reshape((8, 8)), layers.LSTM(8)],
}
seconds = {"import glassnet": imported}
for kind, middle in models.items():
    start = time.perf_counter()
    for optimizer in ("sgd", "rmsprop", "adam"):
        model = glassnet.Sequential([layers.Input((8, 8, 1)), *middle,
                                     layers.Dense(10, activation="softmax")])
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        model.predict(x, verbose=0)
    seconds[kind] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def cold_start() -> None:
    """What a fresh install pays once: ``import glassnet``, then the first training steps of
    each kind of model with each optimizer, in this order, with Numba's disk cache empty (every
    kernel compiled when first used) and then full (loaded), each in a fresh process. A kind's
    compile cost is its first steps' time with the cache empty minus with it full; the first
    kind also pays for starting Numba's compiler."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = []
        for _ in range(2):  # compiling, then loading from the cache
            run = subprocess.run([sys.executable, "-c", COLD_START], env=env, check=True,
                                 capture_output=True, text=True)  # fmt: skip
            runs.append(json.loads(run.stdout))
    compiling, loading = runs
    print(f"import glassnet: {compiling.pop('import glassnet'):.2f} s; compiling the kernels, "
          "once after an install (first steps with the cache empty − with it full):")  # fmt: skip
    loading.pop("import glassnet")
    for kind, seconds in compiling.items():
        print(f"  {kind:26} {seconds - loading[kind]:5.2f} s")
    print(f"  {'all':26} {sum(compiling.values()) - sum(loading.values()):5.2f} s")


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'':28} {'kernel':>11}  {'NumPy':>11}")
    optimizer_updates(rng)
    around_products(rng)
    lstm_step(rng)
    step_overhead(rng)
    cold_start()


if __name__ == "__main__":
    main()
