"""Where training time goes (the Profiler) and how BLAS's threads and glassnet's share the cores."""

import os
import subprocess
import sys
import types

import pytest
import threadpoolctl

import glassnet
from glassnet import callbacks
from tests.small_models import small_model, small_problem


def test_profiler_accounts_for_each_layer_and_restores_methods(rng):
    x, y = small_problem(rng, n=64)
    model = small_model()
    profiler = callbacks.Profiler()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[profiler])
    assert profiler.steps == 8
    report = profiler.report().splitlines()
    assert report[0].split()[:4] == ["layer", "forward", "backward", "update"]
    assert [line.split()[0] for line in report[1:4]] == ["dense", "dropout", "dense_1"]
    assert profiler.rows["dense"]["update"] > 0 and profiler.rows["dropout"]["update"] == 0
    assert all(row["forward"] > 0 and row["backward"] > 0 for row in profiler.rows.values())
    # Nothing stays wrapped: the next fit runs the layers' own methods.
    assert "forward" not in vars(model.layers[0]) and "update" not in vars(model.optimizer)


def test_profiler_leaves_validation_out_of_the_training_steps(rng, monkeypatch):
    """Validation runs the layers' forward passes too, between the steps: not training time."""
    x, y = small_problem(rng, n=64)
    model = small_model()
    profiler = callbacks.Profiler()
    clock = iter(range(10**6))  # each reading of the clock one second later
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: float(next(clock)))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y),
              callbacks=[profiler])  # fmt: skip
    passes = sum(row["forward"] + row["backward"] for row in profiler.rows.values())
    assert passes <= profiler.total  # the steps' time holds the passes' time, nothing more
    assert profiler.rows["dense"]["forward"] == profiler.steps  # one timed forward per step


@pytest.mark.parametrize("spinning", [False, True])
def test_profiler_says_when_blas_threads_spin(rng, monkeypatch, spinning):
    monkeypatch.setattr(glassnet.backend, "BLAS_THREADS_SPIN", spinning)
    x, y = small_problem(rng, n=32)
    profiler = callbacks.Profiler()
    small_model().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[profiler])
    hint = "NumPy was imported before glassnet, so OpenBLAS's idle threads spin"
    assert (hint in profiler.report()) is spinning


@pytest.mark.parametrize(
    ("imports", "env", "spin", "threads"),
    [
        ("import glassnet", {}, False, "cpus"),
        # OpenBLAS loaded before glassnet could ask: it is asked to read its environment again
        ("import numpy, glassnet", {}, False, "cpus"),
        ("import numpy, glassnet", {"OPENBLAS_THREAD_TIMEOUT": "4"}, False, "cpus"),
        ("import numpy, glassnet", {"GLASSNET_NUM_THREADS": "3"}, False, 3),  # the user decides
    ],
)
def test_own_threads_follow_the_import_order(imports, env, spin, threads):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_THREAD_TIMEOUT", "GLASSNET_NUM_THREADS")
    }
    code = f"{imports}; b = glassnet.backend; print(b.BLAS_THREADS_SPIN, b.num_threads())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert out == [str(spin), str(cpus if threads == "cpus" else threads)]


SPIN_CHECK = """
import time, numpy
{import_glassnet}
a = numpy.ones((512, 512), numpy.float32)
a @ a  # OpenBLAS's workers join in, then spin or sleep
cpu = time.process_time()
time.sleep(0.2)
print(time.process_time() - cpu)
"""


@pytest.mark.skipif(
    (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) < 2,
    reason="one CPU: OpenBLAS starts no worker threads",
)
def test_blas_threads_sleep_after_a_product_though_numpy_came_first():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "GLASSNET"))}

    def cpu_while_asleep(import_glassnet: str) -> float:
        code = SPIN_CHECK.format(import_glassnet=import_glassnet)
        run = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                             text=True, check=True)  # fmt: skip
        return float(run.stdout)

    assert cpu_while_asleep("") > 0.03  # NumPy alone: a worker spins on for about 0.1 s
    assert cpu_while_asleep("import glassnet") < 0.02  # told to sleep after a short spin


def test_blas_threads_are_left_alone_where_openblas_cannot_restart_them(monkeypatch):
    class Library:  # a BLAS build without the functions that restart OpenBLAS's threads
        pass

    class Controller:  # threadpoolctl's view of the process: that one OpenBLAS (MKL may be
        def select(self, internal_api):  # loaded too, and threadpoolctl opens it with CDLL)
            assert internal_api == "openblas"
            return types.SimpleNamespace(lib_controllers=[types.SimpleNamespace(filepath="x.so")])

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Controller)
    monkeypatch.setattr(glassnet.backend.ctypes, "CDLL", lambda path: Library())
    assert glassnet.backend.restart_blas_threads() is False
