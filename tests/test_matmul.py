"""The layers' matrix products (``kernels.matmul``): MKL's gemm where the mkl extra is installed,
NumPy's matmul otherwise, and the same answers from both — for every layout the layers hand it,
for what MKL cannot take (handed to NumPy), and for whole training steps."""

import subprocess
import sys
import threading

import numpy as np
import pytest

import glassnet
from glassnet import backend, kernels, layers

needs_mkl = pytest.mark.skipif(
    backend.mkl() is None,
    reason="MKL is not installed (pip install 'glassnet[mkl]') or GLASSNET_BLAS=numpy",
)
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-13}  # relative to the largest |a|·|b| sum


def layouts(rng, dtype, m, k, n):
    """(a, b) pairs of the layouts the layers pass: as they lie, transposed views (Wᵀ), rows of
    a larger array (an LSTM's piece of the batch), single rows and columns."""
    a, b = rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(k, n)).astype(dtype)
    wide = rng.normal(size=(m, k + 5)).astype(dtype)
    frozen = a.copy()
    frozen.flags.writeable = False  # a batch sliced from a read-only dataset
    return {
        "as they lie": (a, b),
        "b transposed": (a, np.ascontiguousarray(b.T).T),
        "a transposed": (np.ascontiguousarray(a.T).T, b),
        "both transposed": (np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T),
        "rows of a wider array": (wide[:, :k], b),
        "a piece of the rows": (a[m // 3 :], b),
        "one row": (a[:1], b),
        "one column": (a, b[:, :1]),
        "one row, transposed view": (np.ascontiguousarray(a[:1].T).T, b),
        "read-only": (frozen, b),
    }


def mkl_plan(a, b, out=None):
    """(trans_a, ld_a, trans_b, ld_b, ld_out) as MKL's gemm would take these operands, or None
    where kernels.matmul hands them to NumPy."""
    if not kernels._float_matrices(a, b, out):
        return None
    c = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype) if out is None else out
    plan = kernels._compiled_plan()(a, b, c)
    return plan if plan[0] else None


def check_close(got, a, b):
    want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    assert got.dtype == a.dtype and got.shape == want.shape
    assert (np.abs(got - want) <= TOLERANCE[a.dtype.type] * scale).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("blas", ["numpy", "mkl"])
def test_every_layout_gives_the_product(blas, dtype, monkeypatch):
    if blas == "mkl" and backend.mkl() is None:
        pytest.skip("MKL is not installed")
    if blas == "numpy":
        monkeypatch.setattr(kernels, "mkl", lambda: None)
    rng = np.random.default_rng(0)
    for name, (a, b) in layouts(rng, dtype, 37, 29, 23).items():
        check_close(kernels.matmul(a, b), a, b)
        out = np.full((a.shape[0], b.shape[1]), np.nan, dtype=dtype)
        assert kernels.matmul(a, b, out=out) is out, name
        check_close(out, a, b)
        rows = np.full((a.shape[0], b.shape[1] + 3), np.nan, dtype=dtype)  # out: rows of a
        kernels.matmul(a, b, out=rows[:, 1:-2])  # wider array, as an LSTM's step writes z
        check_close(rows[:, 1:-2], a, b)
        assert np.isnan(rows[:, 0]).all() and np.isnan(rows[:, -2:]).all(), name


@needs_mkl
def test_mkl_reads_the_layers_layouts_where_they_lie():
    """Each layout above goes to MKL (no copy, no fall-back), with its transpose flag."""
    rng = np.random.default_rng(1)
    for name, (a, b) in layouts(rng, np.float32, 37, 29, 23).items():
        assert mkl_plan(a, b, None) is not None, name
    a, b = layouts(rng, np.float32, 4, 3, 2)["both transposed"]
    assert mkl_plan(a, b, None) == (kernels._TRANS, 4, kernels._TRANS, 3, 2)
    wide = np.empty((4, 9), np.float32)
    assert mkl_plan(a, b, wide[:, 2:4])[-1] == 9  # out: rows of a wider array


def ones(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


CANNOT = {  # (a, b, out) that MKL's gemm cannot take as they lie
    "a vector": (ones(3), ones(3, 2), None),
    "a stack": (ones(2, 3, 4), ones(4, 5), None),
    "two float types": (ones(3, 4), ones(4, 2, dtype=np.float64), None),
    "integers": (ones(3, 4, dtype=np.int64), ones(4, 2, dtype=np.int64), None),
    "k = 0": (ones(3, 0), ones(0, 2), None),
    "reversed rows": (ones(6, 4)[::-2], ones(4, 2), None),
    "every other column": (ones(3, 8)[:, ::2], ones(4, 2), None),
    "out of float64": (ones(3, 4), ones(4, 2), ones(3, 2, dtype=np.float64)),
    "out transposed": (ones(3, 4), ones(4, 2), ones(2, 3).T),
    "out of every other column": (ones(3, 4), ones(4, 2), ones(3, 4)[:, ::2]),
    "out reversed": (ones(2, 4), ones(4, 2), ones(2, 2)[::-1]),
}


@pytest.mark.parametrize("case", CANNOT)
def test_what_mkl_cannot_take_goes_to_numpy(case):
    a, b, out = CANNOT[case]
    assert mkl_plan(a, b, out) is None
    want = np.matmul(a, b)
    got = kernels.matmul(a, b, out=out)
    np.testing.assert_array_equal(got, want)


def test_an_out_that_overlaps_an_operand_goes_to_numpy():
    """np.matmul copies an operand that its output overlaps; gemm would read what it wrote."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=(8, 8)).astype(np.float32)
    b = rng.normal(size=(8, 8)).astype(np.float32)
    want = a @ b
    assert mkl_plan(a, b, a) is None
    kernels.matmul(a, b, out=a)
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-5)


def test_a_shape_mismatch_is_numpys_error():
    with pytest.raises(ValueError, match="matmul: Input operand 1 has a mismatch"):
        kernels.matmul(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))


@needs_mkl
def test_threads_whose_first_products_come_at_once_all_get_them():
    """Each may compile the plan (``glassnet serve``'s first requests did, and two of sixteen
    failed: the second compiled what the first had compiled already)."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    kernels._compiled_plan()
    kernels._compiled_plan.cache_clear()  # as a second thread finds it, before the first is done
    assert kernels._compiled_plan()(a, b, np.empty((6, 3), np.float32))[0] == kernels._NO_TRANS
    results, start = [], threading.Barrier(8)

    def first_product():
        start.wait()
        results.append(kernels.matmul(a, b))

    threads = [threading.Thread(target=first_product) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    for got in results:
        check_close(got, a, b)


def test_a_product_uses_one_thread_within_a_share_or_a_small_block():
    assert backend.blas_threads() == backend.num_threads()
    with backend.blas_threads_for(0):
        assert backend.blas_threads() == 1
    with backend.blas_threads_for(backend.SMALL_PRODUCT_FLOPS):
        assert backend.blas_threads() == backend.num_threads()
    inside = []
    backend.parallel_map(lambda item: inside.append(backend.blas_threads()),
                         [(np.ones(1 << 18),), (np.ones(1 << 18),)])  # fmt: skip
    assert inside == [1, 1] or backend.num_threads() == 1
    assert backend.blas_threads() == backend.num_threads()


def run_choosing(value: str, code: str = "print(backend.mkl() is not None)"):
    script = f"from glassnet import backend\n{code}"
    env = {"GLASSNET_BLAS": value, "PATH": ""}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)


def test_glassnet_blas_chooses_the_library():
    """numpy: NumPy's BLAS; mkl: MKL; auto: MKL on an Intel processor only (on an AMD EPYC VM
    NumPy's OpenBLAS trained W1 1.09× as fast)."""
    assert run_choosing("numpy").stdout.strip() == "False"
    wrong = run_choosing("openblas")
    assert "GLASSNET_BLAS='openblas' is not one of auto, mkl, numpy." in wrong.stderr
    if backend.mkl() is not None:
        assert run_choosing("mkl").stdout.strip() == "True"
        assert run_choosing("auto").stdout.strip() == str(backend.intel_processor())


def test_the_processor_s_vendor_is_read_from_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    real_open = open

    def opening(path, *args, **kwargs):
        return real_open(cpuinfo if path == "/proc/cpuinfo" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", opening)
    for vendor, intel in (("GenuineIntel", True), ("AuthenticAMD", False)):
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: x\n")
        backend.intel_processor.cache_clear()
        try:
            assert backend.intel_processor() is intel
        finally:
            backend.intel_processor.cache_clear()


def test_asking_for_mkl_where_it_is_not_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("GLASSNET_BLAS", "mkl")
    monkeypatch.setattr(backend, "_mkl_path", lambda: None)
    backend.mkl.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r'pip install "glassnet\[mkl\]"'):
            backend.mkl()
        monkeypatch.setenv("GLASSNET_BLAS", "auto")
        backend.mkl.cache_clear()
        assert backend.mkl() is None  # auto: NumPy's BLAS, quietly
    finally:
        backend.mkl.cache_clear()
        monkeypatch.undo()


def training_step(model_fn, x, y, monkeypatch, numpy_products: bool):
    glassnet.utils.set_random_seed(0)
    model = model_fn()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    if numpy_products:
        monkeypatch.setattr(kernels, "mkl", lambda: None)
    out = model(x, training=True)
    model.train_on_batch(x, y)
    monkeypatch.undo()
    return np.asarray(out), model.get_weights()


MODELS = {
    "dense": (lambda: glassnet.Sequential([layers.Input((20,)), layers.Dense(32, activation="relu"),
                                           layers.Dense(5, activation="softmax")]), (64, 20)),
    "conv": (lambda: glassnet.Sequential([layers.Input((9, 9, 2)), layers.Conv2D(4, 3),
                                          layers.Flatten(), layers.Dense(5, activation="softmax")]),
             (16, 9, 9, 2)),
    "lstm": (lambda: glassnet.Sequential([layers.Input((7, 6)), layers.LSTM(16),
                                          layers.Dense(5, activation="softmax")]), (300, 7, 6)),
    "gru": (lambda: glassnet.Sequential([layers.Input((7, 6)), layers.GRU(8),
                                         layers.Dense(5, activation="softmax")]), (40, 7, 6)),
}  # fmt: skip


@needs_mkl
@pytest.mark.parametrize("kind", MODELS)
def test_a_training_step_with_mkls_products_is_numpys_to_rounding(kind, monkeypatch):
    """A step's output and updated weights with MKL's products and with NumPy's, from the same
    weights and batch (the LSTM's batch of 300 runs in pieces, one per thread)."""
    model_fn, shape = MODELS[kind]
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype(np.float32)
    y = rng.integers(0, 5, shape[0])
    out_mkl, weights_mkl = training_step(model_fn, x, y, monkeypatch, numpy_products=False)
    out_np, weights_np = training_step(model_fn, x, y, monkeypatch, numpy_products=True)
    np.testing.assert_allclose(out_mkl, out_np, rtol=1e-5, atol=1e-6)
    for a, b in zip(weights_mkl, weights_np):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
