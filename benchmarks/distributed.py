"""Data-parallel training measured: time per step split into computing and communicating, the
Allreduce's cost against buffer size, and a model of N machines built from those measurements.

    python benchmarks/distributed.py                    # W1, W5, W6 at 1 and 2 ranks, 3 rounds
    python benchmarks/distributed.py --workloads W1 --rounds 5 --steps 100
    python benchmarks/distributed.py --accuracy --workloads W1 --epochs 3   # 1 and 2 ranks

Each (workload, ranks) pair runs as its own ``mpiexec -n R python -m mpi4py`` job, interleaved
over the rounds. A job trains the workload's model (benchmarks/compare.py's) with ``fit`` on
``steps`` global batches of MNIST after one warm-up pass, and times each step's exchange inside
``DataParallel.sum_gradients``: first a barrier (the wait for the slower rank: imbalance),
then the exchange itself (communication: within one machine the ranks add straight from each
other's shared memory, see ``DataParallel.sum_gradients``). Compute is the rest of the step. The
same job also times the forward and backward pass alone at the full and at half the batch on one
rank, which gives the per-step cost as fixed + per-row.

Two cores cannot show scaling, so the last table is a model: N machines, each computing
fixed + per_row·(B/N) and exchanging the gradient buffer by ring Allreduce,
2·(N−1)/N·bytes/bandwidth + 2·(N−1)·latency, at 10 and 25 Gbit/s (latency 20 µs a hop). It
gives the global batch B at which N = 8 and N = 64 reach 80 % efficiency (speed-up ÷ N).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import compare  # the workloads and their models, one definition

WORKLOADS = ("W1", "W5", "W6")
SIZES = [2**k for k in range(8, 25, 2)]  # float32 elements: 1 KB … 64 MB
LINKS = {"10 Gbit/s": 10e9 / 8, "25 Gbit/s": 25e9 / 8}  # bytes per second
LATENCY = 20e-6  # seconds per message of the ring


def shaped(workload: str, x):
    kind = compare.WORKLOADS[workload].get("kind")
    if kind == "cnn":
        return x.reshape(-1, 28, 28, 1)
    return x.reshape(-1, 28, 28) if kind == "rnn" else x


def worker(workload: str, steps: int) -> dict:
    """One rank of a job: train ``steps`` global batches and time their parts."""
    import glassnet
    from glassnet import distribution

    dist = distribution.DataParallel()
    distribution.set_distribution(dist)
    w = compare.WORKLOADS[workload]
    x, y, _, _ = compare.load_mnist()
    batch = w["batch"]
    x, y = shaped(workload, x[: batch * steps]), y[: batch * steps]
    model = compare.glassnet_model(w)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # warm-up: kernels, buffers
    waits, exchanges = [], []
    exchange = dist.sum_gradients

    def timed(model_):
        start = time.perf_counter()
        dist.barrier()
        middle = time.perf_counter()
        exchange(model_)
        waits.append(middle - start)
        exchanges.append(time.perf_counter() - middle)

    if dist.num_processes > 1:
        dist.sum_gradients = timed
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    step = (time.perf_counter() - start) / steps
    result = {
        "step_ms": step * 1e3,
        "wait_ms": 1e3 * sum(waits) / steps,
        "exchange_ms": 1e3 * sum(exchanges) / steps,
        "gradient_bytes": int(sum(g.nbytes for _, g in model.pack_parameters())),
        "accuracy_note": "see benchmarks/compare.py for accuracy",
    }
    if dist.num_processes == 1:  # forward + backward alone, at the batch and at half of it
        for rows in (batch, batch // 2):
            xb = glassnet.backend.xp.asarray(x[:rows], dtype="float32")
            times = []
            for _ in range(max(5, steps // 2)):
                t0 = time.perf_counter()
                out = model.forward(xb, training=True)
                model.backpropagate(y[:rows], out)
                times.append(time.perf_counter() - t0)
            result[f"compute_ms_{rows}"] = 1e3 * statistics.median(times)
    return result if dist.process_id == 0 else {}


def accuracy_worker(workload: str, epochs: int, seed: int) -> dict:
    """Train the workload on all of MNIST for ``epochs`` from ``seed``; its test accuracy."""
    import glassnet
    from glassnet import distribution

    if distribution.launched() and distribution.get_device_count() > 1:
        distribution.set_distribution(distribution.DataParallel())
    w = compare.WORKLOADS[workload]
    x, y, xt, yt = compare.load_mnist()
    n = w.get("train_samples", len(x))
    model = compare.glassnet_model(w)
    model.random_generators()["model"].bit_generator.state = glassnet.backend.make_rng(
        seed).bit_generator.state  # fmt: skip
    model.fit(shaped(workload, x[:n]), y[:n], batch_size=w["batch"], epochs=epochs, verbose=0)
    accuracy = model.evaluate(shaped(workload, xt), yt, batch_size=1000, verbose=0)[1]
    return {"accuracy": float(accuracy)} if glassnet.backend.process_index() == 0 else {}


def allreduce_worker(repeats: int = 30) -> dict:
    """The exchange alone, at each size: MPI's in-place Allreduce, and the sum straight from
    the machine's shared memory that fit uses (each buffer written just before, as a backward
    pass leaves it)."""
    import numpy as np

    from glassnet import distribution

    dist = distribution.DataParallel()
    out: dict = {"allreduce": {}, "shared": {}}
    for size in SIZES:
        buffers = {"allreduce": np.empty(size, dtype="float32"),
                   "shared": dist.shared_zeros(size, "float32")}  # fmt: skip
        exchange = {"allreduce": dist.sum_, "shared": dist.sum_shared_}
        times: dict = {"allreduce": [], "shared": []}
        for _ in range(repeats):
            for kind, buffer in buffers.items():
                buffer.fill(1.0)
                dist.barrier()
                start = time.perf_counter()
                exchange[kind](buffer)
                times[kind].append(time.perf_counter() - start)
        for kind in times:
            out[kind][str(size * 4)] = 1e3 * statistics.median(times[kind])
    return out if dist.process_id == 0 else {}


def job(ranks: int, *args: str) -> dict:
    from glassnet import distribution

    command = distribution.launch_command(ranks, [__file__, "--worker", *args])
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ring_ms(n: int, nbytes: int, bandwidth: float) -> float:
    if n == 1:
        return 0.0
    return 1e3 * (2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * LATENCY)


def batch_for(efficiency: float, n: int, fixed: float, per_row: float, comm: float) -> int | None:
    """The smallest global batch at which N machines reach ``efficiency``: T(B) on one machine
    is fixed + per_row·B; on N, fixed + per_row·B/N + comm."""
    for b in range(n, 1 << 22, n):
        one = fixed + per_row * b
        if one / (n * (fixed + per_row * b / n + comm)) >= efficiency:
            return b
    return None


def accuracy(args) -> int:
    """The same global batch on 1 and 2 ranks: test accuracy per seed, side by side."""
    print(f"Test accuracy after {args.epochs} epochs, the same global batch (rounded to 4 places)")
    print(f"{'':4} {'seed':>4} {'1 rank':>8} {'2 ranks':>8}")
    for workload in args.workloads:
        for seed in args.seeds:
            found = [job(ranks, "accuracy", workload, str(args.epochs), str(seed))["accuracy"]
                     for ranks in (1, 2)]  # fmt: skip
            print(f"{workload:4} {seed:>4} {found[0]:8.4f} {found[1]:8.4f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--accuracy", action="store_true",
                        help="instead: test accuracy after --epochs on all of MNIST, 1 and 2 "
                             "ranks, each of --seeds (the batch order's seed)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results/distributed.json"))
    args = parser.parse_args(argv)
    if args.worker is not None:
        if args.worker == ["allreduce"]:
            result = allreduce_worker()
        elif args.worker[0] == "accuracy":
            result = accuracy_worker(args.worker[1], int(args.worker[2]), int(args.worker[3]))
        else:
            result = worker(args.worker[0], int(args.worker[1]))
        if result:
            print(json.dumps(result))
        return 0
    if args.accuracy:
        return accuracy(args)

    runs: dict = {}
    for _ in range(args.rounds):
        for workload in args.workloads:
            for ranks in (1, 2):
                record = job(ranks, workload, str(args.steps))
                runs.setdefault(f"{workload}/{ranks}", []).append(record)
        runs.setdefault("allreduce", []).append(job(2, "allreduce"))

    def median(key, field):
        return statistics.median(r[field] for r in runs[key])

    cores = len(os.sched_getaffinity(0))
    print(f"Machine: {platform.machine()}, {cores} cores; medians of {args.rounds} rounds")
    print("\nTime per training step (ms), two ranks on this machine, one core each")
    print(f"{'':4} {'1 rank':>8} {'2 ranks':>8} {'wait':>7} {'exchange':>10} {'share':>7} "
          f"{'MB':>6}")  # fmt: skip
    summary = {}
    for workload in args.workloads:
        one, two = f"{workload}/1", f"{workload}/2"
        step2 = median(two, "step_ms")
        comm = median(two, "exchange_ms")
        summary[workload] = {
            "step_ms_1": median(one, "step_ms"),
            "step_ms_2": step2,
            "wait_ms": median(two, "wait_ms"),
            "exchange_ms": comm,
            "communication_share": comm / step2,
            "gradient_bytes": runs[two][0]["gradient_bytes"],
        }
        s = summary[workload]
        share, mb = 100 * s["communication_share"], s["gradient_bytes"] / 1e6
        print(f"{workload:4} {s['step_ms_1']:8.2f} {step2:8.2f} {s['wait_ms']:7.2f} "
              f"{comm:10.2f} {share:6.1f}% {mb:6.2f}")  # fmt: skip

    print("\nThe exchange alone between two local ranks (median ms): MPI's in-place Allreduce,")
    print("and the sum from shared memory that fit uses")
    sizes = {kind: {k: statistics.median(r[kind][k] for r in runs["allreduce"])
                    for k in runs["allreduce"][0][kind]}
             for kind in ("allreduce", "shared")}  # fmt: skip
    for nbytes in sizes["allreduce"]:
        a, b = sizes["allreduce"][nbytes], sizes["shared"][nbytes]
        print(f"  {int(nbytes) / 1e6:9.3f} MB  {a:8.3f} ms  {b:8.3f} ms")

    print("\nModel of N machines: smallest global batch for 80 % efficiency")
    print(f"{'':4} {'fixed ms':>9} {'µs/row':>7} {'link':>10} {'N = 8':>8} {'N = 64':>8}")
    model = {}
    for workload in args.workloads:
        batch = compare.WORKLOADS[workload]["batch"]
        full = median(f"{workload}/1", f"compute_ms_{batch}")
        half = median(f"{workload}/1", f"compute_ms_{batch // 2}")
        per_row = (full - half) / (batch - batch // 2)
        fixed = max(0.0, full - per_row * batch)
        nbytes = summary[workload]["gradient_bytes"]
        for link, bandwidth in LINKS.items():
            found = {n: batch_for(0.8, n, fixed, per_row, ring_ms(n, nbytes, bandwidth))
                     for n in (8, 64)}  # fmt: skip
            model[f"{workload} {link}"] = {"fixed_ms": fixed, "ms_per_row": per_row, **{
                f"batch_80pc_N{n}": b for n, b in found.items()}}  # fmt: skip
            print(f"{workload:4} {fixed:9.3f} {per_row * 1e3:7.2f} {link:>10} "
                  f"{found[8] or '-':>8} {found[64] or '-':>8}")  # fmt: skip

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "summary": summary, "exchange_ms": sizes,
                               "model": model}, indent=1))  # fmt: skip
    print(f"\nWrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
