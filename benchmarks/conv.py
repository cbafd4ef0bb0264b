"""W5 (keras-io's mnist_convnet) in one process: each convolution and the max pooling after it
as one step against layer by layer, a convolution's products block by block against the whole
batch in one product, and the size of predict's pieces.

    python benchmarks/conv.py                           # 8 rounds of each
    python benchmarks/conv.py --rounds 6 --only pooled

Training: epochs of ``--steps`` batches of 128 alternate between the ways, each after an untimed
epoch that settles the working arrays; ms a step, median and range over the rounds, and the ratio
within each round. "pooled": the model as it runs (``Model.fused_layers``) against a copy with
the same weights built with every layer on its own (as the glass box's recorded steps run it).
"blocks": ``Conv._block_samples`` as it is against ``blocks=False`` (one block: what
GLASSNET_KERNELS=numpy does), layer by layer. Prediction: the 10,000 test images in batches of
1,000 and 10,000, alternating, images a second: pooled against layer by layer, and several
``INFERENCE_ROWS`` (the fewest samples a piece holds). Comparing within one process leaves out
what differs between two (the machine's minute-to-minute speed, where the allocator puts the
arrays).
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


def timed_steps(ways: dict, x, y, rounds: int, steps: int) -> dict:
    """ms a training step for each way (name → (model, setup)), alternating epochs."""
    times: dict = {name: [] for name in ways}
    for _ in range(rounds):
        for name, (model, setup) in ways.items():
            setup()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # its working arrays
            start = time.perf_counter()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return times


def report_steps(times: dict, what: str, rounds: int, steps: int) -> None:
    print(f"W5 training step, ms ({rounds} alternating rounds of {steps} steps), {what}:")
    for name, values in times.items():
        print(f"  {name:15s} {spread(values)}")
    (first, a), (second, b) = times.items()
    print(f"  {second} ÷ {first}, within each round: {spread([y / x for x, y in zip(a, b)])}")


def predictions(ways: dict, xt, rounds: int) -> dict:
    """Images a second for each way (name → (model, setup)) and batch size, alternating."""
    rates: dict = {}
    for _ in range(rounds):
        for name, (model, setup) in ways.items():
            setup()
            for batch in (1000, 10000):
                model.predict(xt, batch_size=batch, verbose=0)
                start = time.perf_counter()
                model.predict(xt, batch_size=batch, verbose=0)
                rates.setdefault((name, batch), []).append(len(xt) / (time.perf_counter() - start))
    return rates


def report_predictions(rates: dict, what: str) -> None:
    print(f"W5 predictions, images a second, {what}:")
    for (name, batch), values in rates.items():
        print(f"  {name:24s} batch {batch:6,d}: {spread(values, '{:,.0f}')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="batches in a timed epoch")
    parser.add_argument("--only", choices=["pooled", "blocks", "pieces"], nargs="+",
                        default=["pooled", "blocks", "pieces"])  # fmt: skip
    args = parser.parse_args()
    x, y, xt, _ = compare.load_mnist()
    x, xt = x.reshape(-1, 28, 28, 1), xt.reshape(-1, 28, 28, 1)
    x, y = x[: 128 * args.steps], y[: 128 * args.steps]
    model = compare.glassnet_model(compare.WORKLOADS["W5"])
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # compiled, arrays made
    pools_in_one_pass = Conv.pools_in_one_pass
    Conv.pools_in_one_pass = lambda self, pool: False  # while the copy is built
    layer_by_layer = compare.glassnet_model(compare.WORKLOADS["W5"])
    Conv.pools_in_one_pass = pools_in_one_pass
    assert model.fused_layers() and not layer_by_layer.fused_layers()
    layer_by_layer.set_weights(model.get_weights())
    layer_by_layer.fit(x, y, batch_size=128, epochs=1, verbose=0)
    nothing = lambda: None  # noqa: E731
    block_samples = Conv._block_samples

    def blocks(on: bool):
        def set_blocks():
            Conv._block_samples = block_samples if on else (
                lambda self, rows, per_sample, blocks=True: block_samples(
                    self, rows, per_sample, blocks=False))  # fmt: skip

        return set_blocks

    if "pooled" in args.only:
        ways = {"pooled": (model, nothing), "layer by layer": (layer_by_layer, nothing)}
        report_steps(timed_steps(ways, x, y, args.rounds, args.steps), "each convolution "
                     "with its max pooling as one step, or layer by layer", args.rounds,
                     args.steps)  # fmt: skip
        report_predictions(predictions(ways, xt, args.rounds), "pooled or layer by layer")
    if "blocks" in args.only:
        ways = {"blocks": (layer_by_layer, blocks(True)),
                "one product": (layer_by_layer, blocks(False))}  # fmt: skip
        times = timed_steps(ways, x, y, args.rounds, args.steps)
        Conv._block_samples = block_samples
        report_steps(times, "layer by layer, products in blocks or in one go", args.rounds,
                     args.steps)  # fmt: skip
    if "pieces" in args.only:
        graph = type(model)
        default = graph.INFERENCE_ROWS

        def rows(n):
            def set_rows():
                graph.INFERENCE_ROWS = n

            return set_rows

        ways = {f"at least {n:3d} a piece": (model, rows(n)) for n in (1, 32, 64, 128)}
        rates = predictions(ways, xt, args.rounds)
        graph.INFERENCE_ROWS = default
        report_predictions(rates, f"pooled; INFERENCE_ROWS is {default}")


if __name__ == "__main__":
    main()
