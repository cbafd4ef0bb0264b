"""The matrix products of each workload, in NumPy (glassnet's BLAS) and in PyTorch's, side by side.

    python benchmarks/gemm.py                    # every workload's products, W1 inference too
    python benchmarks/gemm.py --workloads W5 W6 --repeats 30

Every training epoch of compare.py is, at its floor, these products; a framework that multiplies
the same matrices faster has a lower floor. NumPy's wheels carry OpenBLAS; PyTorch's CPU wheels
carry Intel's MKL (and oneDNN for convolutions and LSTMs). This times each product of a step (the
shapes and layouts of ``compare.step_products``) in both, on one thread and on every core, and
prints GFLOP/s and the time of a whole step's products; the 2048³ product, the machine's peak,
comes first. Medians of ``--repeats`` runs of each product. Where glassnet multiplies with
Intel's MKL (the ``mkl`` extra; ``backend.mkl()``), a third column times its products as the
layers make them, through ``kernels.matmul``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from glassnet import backend, kernels  # first, as training runs: OpenBLAS's idle threads sleep

sys.path.insert(0, str(Path(__file__).parent))
from compare import WORKLOADS, median_seconds, operands, step_products  # one definition

PEAK = [("2048³", 2048, 2048, 2048)]
W1_INFERENCE = [("z", 1000, 784, 512), ("z", 1000, 512, 512), ("z", 1000, 512, 10)]


def timed(shapes, threads: int, repeats: int, torch, mkl: bool) -> list[dict]:
    """Each distinct (kind, m, k, n) product, with how often a step runs it, in NumPy and then
    in PyTorch (when there) on ``threads``: one library's products, then the other's, so that
    neither one's idle threads, still spinning after its last product, slow the other's."""
    rng = np.random.default_rng(0)
    counts: dict = {}
    for shape in shapes:
        counts[shape] = counts.get(shape, 0) + 1
    rows = []
    for (kind, m, k, n), count in counts.items():
        a, b = operands(kind, m, k, n, rng)
        rows.append({"kind": kind, "shape": (m, k, n), "count": count, "flop": 2 * m * k * n,
                     "a": a, "b": b})  # fmt: skip
    with threadpool_limits(threads, user_api="blas"):
        for row in rows:
            row["numpy_s"] = median_seconds(lambda r=row: r["a"] @ r["b"], repeats)
    if torch is not None:
        torch.set_num_threads(threads)
        time.sleep(0.2)  # OpenBLAS's threads go to sleep
        for row in rows:
            ta, tb = torch.from_numpy(row["a"]), torch.from_numpy(row["b"])
            row["torch_s"] = median_seconds(lambda ta=ta, tb=tb: ta @ tb, repeats)
        time.sleep(0.2)
    if mkl:  # as the layers multiply: one thread in a one-thread block, else every core
        with backend.blas_threads_for(0) if threads == 1 else contextlib.nullcontext():
            for row in rows:
                c = np.empty((row["a"].shape[0], row["b"].shape[1]), np.float32)
                product = lambda r=row, c=c: kernels.matmul(r["a"], r["b"], out=c)  # noqa: E731
                row["mkl_s"] = median_seconds(product, repeats)
        time.sleep(0.2)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = [*sorted(WORKLOADS), "W1-inference"]
    parser.add_argument("--workloads", nargs="+", choices=choices, default=choices)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    mkl = backend.mkl() is not None
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: NumPy only (pip install torch==2.13.0)")
    print(f"{'product':16} {'m×k×n':>16} {'× a step':>8} {'threads':>7} {'NumPy GFLOP/s':>14} "
          f"{'PyTorch GFLOP/s':>16}" + (f" {'MKL GFLOP/s':>12}" if mkl else ""))  # fmt: skip
    for name in ["peak", *args.workloads]:
        shapes = {"peak": PEAK, "W1-inference": W1_INFERENCE}.get(name) or step_products(name)
        for threads in sorted({1, os.cpu_count()}):
            rows = timed(shapes, threads, 5 if name == "peak" else args.repeats, torch, mkl)
            for row in rows:
                shape = "×".join(map(str, row["shape"]))
                ours = row["flop"] / row["numpy_s"] / 1e9
                theirs = f"{row['flop'] / row['torch_s'] / 1e9:16.0f}" if "torch_s" in row else ""
                intel = f" {row['flop'] / row['mkl_s'] / 1e9:12.0f}" if "mkl_s" in row else ""
                print(f"{name + ' ' + row['kind']:16} {shape:>16} {row['count']:>8} {threads:>7} "
                      f"{ours:14.0f} {theirs:>16}{intel}")  # fmt: skip
            if name != "peak":
                numpy_ms = sum(r["numpy_s"] * r["count"] for r in rows) * 1e3
                versus = ""
                if torch is not None:
                    torch_ms = sum(r["torch_s"] * r["count"] for r in rows) * 1e3
                    versus = (f", PyTorch {torch_ms:.2f} ms: NumPy's time is "
                              f"{numpy_ms / torch_ms:.2f}× PyTorch's")  # fmt: skip
                if mkl:
                    mkl_ms = sum(r["mkl_s"] * r["count"] for r in rows) * 1e3
                    versus += f", MKL {mkl_ms:.2f} ms ({numpy_ms / mkl_ms:.2f}×)"
                print(f"{name + ' a step':16} {'':>16} {'':>8} {threads:>7}   NumPy "
                      f"{numpy_ms:.2f} ms{versus}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
