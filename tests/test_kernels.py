"""The fused kernels against the NumPy formulas they replace: the same bits, step after step,
for every optimizer and option, in float32 and float64."""

import numpy as np
import pytest

from glassnet import kernels, optimizers

CASES = {
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(),
    "rmsprop momentum centered": lambda: optimizers.RMSprop(momentum=0.5, centered=True),
    "adam": lambda: optimizers.Adam(0.01),
    "adam amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(0.01, weight_decay=0.1),
    "sgd with decay": lambda: optimizers.SGD(0.1, momentum=0.5, weight_decay=0.01),
}


@pytest.mark.skipif(not kernels.ENABLED, reason="kernels are off (GLASSNET_KERNELS=numpy)")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_kernel_and_numpy_formulas_give_the_same_bits(case, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    shapes = [(70000,), (300, 7), (5,)]  # the large one is cut into pieces across threads
    start = [rng.normal(size=s).astype(dtype) for s in shapes]
    params = {"k": [a.copy() for a in start], "n": [a.copy() for a in start]}
    grads = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(5)]
    fused, plain = CASES[case](), CASES[case]()
    for step in grads:
        fused.apply(list(zip(params["k"], step)))
        monkeypatch.setattr(kernels, "ENABLED", False)
        plain.apply(list(zip(params["n"], step)))
        monkeypatch.setattr(kernels, "ENABLED", True)
    for a, b in zip(params["k"], params["n"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fused.variables(), plain.variables()):
        np.testing.assert_array_equal(a, b)


def test_the_switch_reads_the_environment():
    import subprocess
    import sys

    code = "import glassnet.kernels as k; print(k.ENABLED)"
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"GLASSNET_KERNELS": "numpy", "PATH": ""})  # fmt: skip
    assert off.stdout.strip() == "False"
