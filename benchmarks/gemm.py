"""The matrix products of each workload, in NumPy (glassnet's BLAS) and in PyTorch's, side by side.

    python benchmarks/gemm.py                    # every workload's products, W1 inference too
    python benchmarks/gemm.py --workloads W5 W6 --repeats 30
    python benchmarks/gemm.py --mkl /path/to/libmkl_rt.so.3     # and MKL's cblas_sgemm beside

Every training epoch of compare.py is, at its floor, these products; a framework that multiplies
the same matrices faster has a lower floor. NumPy's wheels carry OpenBLAS; PyTorch's CPU wheels
carry Intel's MKL (and oneDNN for convolutions and LSTMs). This times each product of a step (the
shapes and layouts of ``compare.step_products``) in both, on one thread and on every core, and
prints GFLOP/s and the time of a whole step's products; the 2048³ product, the machine's peak,
comes first. Medians of ``--repeats`` runs of each product. ``--mkl`` adds Intel's MKL called
directly (its ``cblas_sgemm`` through ctypes, from the ``mkl`` wheel's ``libmkl_rt``): what an
MKL-backed product would give glassnet, apart from PyTorch's own choices of layout and kernel.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import glassnet  # noqa: F401 - as training runs: OpenBLAS's idle threads go to sleep

sys.path.insert(0, str(Path(__file__).parent))
from compare import WORKLOADS, median_seconds, operands, step_products  # one definition

PEAK = [("2048³", 2048, 2048, 2048)]
W1_INFERENCE = [("z", 1000, 784, 512), ("z", 1000, 512, 512), ("z", 1000, 512, 10)]


class MKL:
    """``cblas_sgemm`` from MKL's runtime library: c = a·b for float32 matrices laid out in
    either order (a transposed view is passed as its memory, with CblasTrans)."""

    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)
        self.lib.MKL_Set_Num_Threads_Local.argtypes = [ctypes.c_int]
        p = ctypes.c_void_p
        self.lib.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [
            ctypes.c_float,
            p,
            ctypes.c_int,
            p,
            ctypes.c_int,
            ctypes.c_float,
            p,
            ctypes.c_int,
        ]

    def layout(self, x) -> tuple[int, int]:
        if x.flags.c_contiguous:
            return self.NO_TRANS, x.shape[1]
        return self.TRANS, x.shape[0]  # xᵀ is C-contiguous: x = (its memory)ᵀ

    def product(self, a, b, c) -> None:
        (ta, lda), (tb, ldb) = self.layout(a), self.layout(b)
        m, k, n = a.shape[0], a.shape[1], b.shape[1]
        self.lib.cblas_sgemm(self.ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda,
                             b.ctypes.data, ldb, 0.0, c.ctypes.data, n)  # fmt: skip


def timed(shapes, threads: int, repeats: int, torch, mkl=None) -> list[dict]:
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
    if mkl is not None:
        # this thread's count, which outranks the process's (threadpoolctl sets that one back)
        mkl.lib.MKL_Set_Num_Threads_Local(threads)
        for row in rows:
            c = np.empty((row["a"].shape[0], row["b"].shape[1]), np.float32)
            mkl.product(row["a"], row["b"], c)
            if not np.allclose(c, row["a"] @ row["b"], rtol=1e-4, atol=1e-3):
                raise RuntimeError(f"MKL's product of {row['shape']} is not NumPy's")
            row["mkl_s"] = median_seconds(lambda r=row, c=c: mkl.product(r["a"], r["b"], c),
                                          repeats)  # fmt: skip
        time.sleep(0.2)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = [*sorted(WORKLOADS), "W1-inference"]
    parser.add_argument("--workloads", nargs="+", choices=choices, default=choices)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--mkl", metavar="LIBMKL_RT", help="MKL's runtime library, to time too")
    args = parser.parse_args(argv)
    mkl = MKL(args.mkl) if args.mkl else None
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
                if mkl is not None:
                    mkl_ms = sum(r["mkl_s"] * r["count"] for r in rows) * 1e3
                    versus += f", MKL {mkl_ms:.2f} ms ({numpy_ms / mkl_ms:.2f}×)"
                print(f"{name + ' a step':16} {'':>16} {'':>8} {threads:>7}   NumPy "
                      f"{numpy_ms:.2f} ms{versus}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
