"""W5 (keras-io's mnist_convnet) in one process: a convolution's products block by block against
the whole batch in one product, and the size of predict's pieces.

    python benchmarks/conv.py                 # 8 rounds of each
    python benchmarks/conv.py --rounds 4 --steps 50

Training: epochs of ``--steps`` batches of 128 alternate between the two ways of multiplying
(``Conv._block_samples`` as it is, and with ``blocks=False``: one block, what
GLASSNET_KERNELS=numpy and a prediction do), each after an untimed epoch that settles the working
arrays; ms a step, median and range over the rounds, and the ratio within each round.
Prediction: the 10,000 test images in batches of 1,000 and 10,000 for several ``INFERENCE_ROWS``
(the fewest samples a piece holds), alternating, images a second. Comparing within one process
leaves out what differs between two (the machine's minute-to-minute speed, where the allocator
puts the arrays).
"""

from __future__ import annotations

import argparse
import statistics
import time

import compare  # the workloads and their models, one definition

from glassnet.layers.convolutional import Conv


def spread(values, fmt="{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–" + (
        f"{fmt.format(max(values))})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="batches in a timed epoch")
    args = parser.parse_args()
    x, y, xt, _ = compare.load_mnist()
    x, xt = x.reshape(-1, 28, 28, 1), xt.reshape(-1, 28, 28, 1)
    x, y = x[: 128 * args.steps], y[: 128 * args.steps]
    model = compare.glassnet_model(compare.WORKLOADS["W5"])
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # compiled, arrays made

    block_samples = Conv._block_samples
    ways = {
        "blocks": block_samples,
        "one product": lambda self, rows, per_sample, blocks=True: block_samples(
            self, rows, per_sample, blocks=False
        ),
    }
    steps = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            Conv._block_samples = way
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # its working arrays
            start = time.perf_counter()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            steps[name].append((time.perf_counter() - start) / args.steps * 1e3)
    Conv._block_samples = block_samples
    print(f"W5 training step, ms ({args.rounds} alternating rounds of {args.steps} steps):")
    for name, times in steps.items():
        print(f"  {name:12s} {spread(times)}")
    ratios = [w / b for w, b in zip(steps["one product"], steps["blocks"])]
    print(f"  one product ÷ blocks, within each round: {spread(ratios)}")

    graph = type(model)
    default = graph.INFERENCE_ROWS
    rates: dict = {}
    for _ in range(args.rounds):
        for rows in (1, 32, 64, 128):
            graph.INFERENCE_ROWS = rows
            for batch in (1000, 10000):
                model.predict(xt, batch_size=batch, verbose=0)
                start = time.perf_counter()
                model.predict(xt, batch_size=batch, verbose=0)
                rates.setdefault((rows, batch), []).append(len(xt) / (time.perf_counter() - start))
    graph.INFERENCE_ROWS = default
    print(f"W5 predictions, images a second (INFERENCE_ROWS is {default}):")
    for (rows, batch), values in sorted(rates.items()):
        rate = spread(values, "{:,.0f}")
        print(f"  at least {rows:3d} samples a piece, batch {batch:6,d}: {rate}")


if __name__ == "__main__":
    main()
