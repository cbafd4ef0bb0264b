"""The fused kernels against the NumPy formulas they replace, and glassnet's per-step overhead.

    python benchmarks/kernels.py

Prints medians over repeated calls, on one thread: each optimizer's update of the mnist_mlp first
layer (401,920 float32 parameters), bias + relu and the activation derivatives at (128, 512), and
the time of one training step of a tiny 8-8-10 model (batch 32), where the matrix products cost
next to nothing and what remains is glassnet's own per-step work.
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


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'':28} {'kernel':>11}  {'NumPy':>11}")
    optimizer_updates(rng)
    around_products(rng)
    step_overhead(rng)


if __name__ == "__main__":
    main()
