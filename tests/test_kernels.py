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


needs_kernels = pytest.mark.skipif(not kernels.ENABLED, reason="kernels are off")


@needs_kernels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bias_and_relu_in_one_pass_give_numpys_bits(dtype):
    from glassnet import activations

    rng = np.random.default_rng(1)
    z = rng.normal(size=(64, 37)).astype(dtype)
    z[0, :4] = [-0.0, 0.0, np.nan, -np.inf]  # the values where max(z, 0) has a choice to make
    b = rng.normal(size=37).astype(dtype)
    b[:4] = 0
    expected_z = z + b
    expected_a = activations.relu(expected_z)
    a = np.empty_like(z)
    kernels.bias_relu(z, a, b, z.dtype.type(0))
    np.testing.assert_array_equal(z, expected_z)
    assert (a.view(f"u{a.itemsize}") == expected_a.view(f"u{a.itemsize}")).all()  # bits, ±0


@needs_kernels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_derivatives_give_numpys_bits(name, dtype, monkeypatch):
    from glassnet import activations

    fn = activations.get(name)
    rng = np.random.default_rng(2)
    z = rng.normal(size=(50, 30)).astype(dtype)
    z[0, :2] = [0.0, -0.0]
    a = fn(z)
    dC_da = rng.normal(size=z.shape).astype(dtype)
    fused = fn.backward(z, a, dC_da)
    monkeypatch.setattr(kernels, "ENABLED", False)
    plain = fn.backward(z, a, dC_da)
    assert fused.dtype == plain.dtype
    assert (fused.view(f"u{fused.itemsize}") == plain.view(f"u{plain.itemsize}")).all()


@needs_kernels
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_training_with_and_without_kernels_gives_the_same_weights(activation, monkeypatch):
    import glassnet
    from glassnet.layers import Dense, Dropout, Input
    from glassnet.models import Sequential

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(96, 8)).astype("float32"), rng.integers(0, 3, 96)

    def train():
        glassnet.utils.set_random_seed(0)
        model = Sequential([Input((8,)), Dense(16, activation=activation), Dropout(0.2),
                            Dense(3, activation="softmax")])  # fmt: skip
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        return model.get_weights()

    fused = train()
    monkeypatch.setattr(kernels, "ENABLED", False)
    plain = train()
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a, b)


@needs_kernels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "pool, strides, padding",
    [((2, 2), None, "valid"), ((3, 3), (1, 2), "same"), ((2, 3), (2, 1), "valid")],
)
def test_max_pooling_kernels_give_the_numpy_formulas_bits(pool, strides, padding, dtype,
                                                          monkeypatch):  # fmt: skip
    """Forward (the largest value and which offset won) and backward, overlapping windows too."""
    from glassnet.layers import MaxPooling2D

    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 11, 12, 5)).astype(dtype)
    x[0, :2, :2, 0] = 1.0  # ties: the first offset wins in both
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    layer.build((None, 11, 12, 5))
    results = {}
    for enabled in (True, False):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        a = layer.forward(x)
        d = rng.normal(size=a.shape).astype(dtype) if enabled else results[True][2]
        results[enabled] = (a, layer.winner.copy(), d, layer.backward(d))
    for fused, plain in zip(results[True], results[False]):
        np.testing.assert_array_equal(fused, plain)


@needs_kernels
@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-6), ("float64", 1e-14)])
def test_conv_scatter_kernel_agrees_with_the_numpy_formula(dtype, tolerance, monkeypatch):
    """The same terms summed window by window instead of offset by offset: equal to rounding
    (relative to the largest |∂C/∂x|), exactly where no two windows overlap."""
    from glassnet.layers import Conv2D

    rng = np.random.default_rng(1)
    for kernel, strides, dilation, padding in [(3, 1, 1, "same"), (2, 2, 1, "valid"),
                                                (3, 1, 2, "valid")]:  # fmt: skip
        layer = Conv2D(4, kernel, strides=strides, dilation_rate=dilation, padding=padding)
        layer.build((None, 10, 9, 3))
        x = rng.normal(size=(6, 10, 9, 3)).astype(dtype)
        d = rng.normal(size=layer.compute_output_shape(x.shape)).astype(dtype)
        dx = {}
        for enabled in (True, False):
            monkeypatch.setattr(kernels, "ENABLED", enabled)
            layer.forward(x)
            dx[enabled] = layer.backward(d)
        scale = np.abs(dx[False]).max()
        assert np.abs(dx[True] - dx[False]).max() <= tolerance * scale
        if strides == kernel:  # windows side by side: each input gets at most one term
            np.testing.assert_array_equal(dx[True], dx[False])


def _ulps(actual, exact):
    """|actual − exact| in units in the last place of float32 at the exact value."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(actual.astype(np.float64) - exact) / spacing


@needs_kernels
@pytest.mark.parametrize(
    "name, exact, lo, hi",
    [("sigmoid32", lambda z: 1 / (1 + np.exp(-z)), -87.0, 87.0), ("tanh32", np.tanh, -10.0, 10.0)],
)
def test_vectorized_sigmoid_and_tanh_are_within_2_5_ulp(name, exact, lo, hi):
    """Against float64 on 400,001 points across the range and on tiny and huge ones."""
    z = np.concatenate([np.linspace(lo, hi, 400_001), [0.0, -0.0, 1e-30, -1e-30, 1e-45, 3e-8]])
    z = z.astype(np.float32)
    a = np.empty_like(z)
    getattr(kernels, name)(z, a)
    assert _ulps(a, exact(z.astype(np.float64))).max() <= 2.5


def test_the_exp_polynomial_is_the_least_squares_fit():
    """kernels._FIT is p in e^r − 1 = r + r²·p(r) on [−ln 2 / 2, ln 2 / 2]: the least-squares fit
    of (e^r − 1 − r)/r² at Chebyshev points, weighted so that it minimizes e^r's relative error."""
    half = np.log(2) / 2
    r = np.cos(np.linspace(0, np.pi, 4001)) * half
    r = r[np.abs(r) > 1e-6]
    target = (np.expm1(r) - r) / r**2
    weight = r**2 / np.exp(r)  # an error in p moves e^r by r²·(error); relative: divided by e^r
    fit, *_ = np.linalg.lstsq(np.vander(r, 5, increasing=True) * weight[:, None], target * weight)
    np.testing.assert_allclose(kernels._FIT, fit, rtol=1e-6)  # printed to 8 digits, used as float32


@needs_kernels
def test_vectorized_sigmoid_and_tanh_at_the_edges():
    """Saturation without overflow or subnormal numbers, NaN kept, odd symmetry of tanh."""
    z = np.array([np.inf, -np.inf, 1e30, -1e30, 100.0, -100.0, 88.5, -88.5, np.nan], np.float32)
    s, t = np.empty_like(z), np.empty_like(z)
    kernels.sigmoid32(z, s)
    kernels.tanh32(z, t)
    np.testing.assert_array_equal(s[[0, 2, 4, 6]], 1)
    assert (s[[1, 3, 5, 7]] > 0).all() and (s[[1, 3, 5, 7]] < 2e-38).all()  # tiny, never 0 …
    assert (s[[1, 3, 5, 7]] >= np.finfo(np.float32).tiny).all()  # … nor subnormal
    np.testing.assert_array_equal(t[:8], [1, -1, 1, -1, 1, -1, 1, -1])
    assert np.isnan(s[8]) and np.isnan(t[8])
    x = np.linspace(0, 9, 10001, dtype=np.float32)
    plus, minus = np.empty_like(x), np.empty_like(x)
    kernels.tanh32(x, plus)
    kernels.tanh32(-x, minus)
    np.testing.assert_array_equal(minus, -plus)


def _lstm_runs(dtype, options, batch, enabled, monkeypatch, initial=False):
    """An LSTM's output, final states, ∂C/∂x, ∂C/∂(initial state) and gradients, with the
    kernels on or off (the same weights and inputs each time)."""
    import glassnet
    from glassnet.layers import LSTM

    glassnet.config.set_floatx(dtype)  # the session fixture sets float32 back
    glassnet.utils.set_random_seed(4)
    layer = LSTM(6, return_state=True, **options)
    layer.build((None, 7, 3))
    layer.needs_input_gradient = True
    rng = np.random.default_rng(5)
    x = rng.normal(size=(batch, 7, 3)).astype(dtype) * 2
    states = [rng.normal(size=(batch, 6)).astype(dtype) for _ in range(2)]
    monkeypatch.setattr(kernels, "ENABLED", enabled)
    out = layer.forward([x, *states] if initial else x, training=True)
    d = [rng.normal(size=np.shape(o)).astype(dtype) for o in out]
    back = layer.backward(d)
    back = back if isinstance(back, list) else [back]
    return [*out, *back, *(g.copy() for g in layer.grads.values())], layer


@needs_kernels
@pytest.mark.parametrize("batch", [1, 5, 64])
@pytest.mark.parametrize(
    "options, initial",
    [
        ({}, False),
        ({"return_sequences": True}, False),
        ({"go_backwards": True}, True),
        ({"return_sequences": True, "dropout": 0.3}, True),
    ],
)
def test_fused_lstm_agrees_with_the_numpy_formulas(options, initial, batch, monkeypatch):
    """The whole sequence in kernels (float32, the batch in one piece per thread: 5 rows split
    2 and 3), forward and back, against the NumPy formulas: they differ only by sigmoid's and
    tanh's last bits (2.5 ulp) and the forward kernel's fused multiply-adds, which the recursion
    carries a few ulp further."""
    fused, layer = _lstm_runs("float32", options, batch, True, monkeypatch, initial)
    assert layer.fused
    plain, layer = _lstm_runs("float32", options, batch, False, monkeypatch, initial)
    assert not layer.fused
    for a, b in zip(fused, plain, strict=True):
        scale = max(np.abs(b).max(), 1e-3)
        assert np.abs(a - b).max() <= 2e-6 * scale


@needs_kernels
def test_fused_lstm_step_backward_gives_the_numpy_formulas_bits():
    """From the same stored values, the backward kernel and ``LSTM.step_backward`` (the NumPy
    formulas) give the same ∂C/∂z, ∂C/∂c_{t−1} and ∂C/∂h_t, bit for bit."""
    from types import SimpleNamespace

    from glassnet.layers import LSTM

    rng = np.random.default_rng(6)
    n, u = 9, 5
    layer = LSTM(u)
    layer.build((None, 3, 2))
    z = rng.normal(size=(n, 4 * u)).astype(np.float32) * 3
    s = SimpleNamespace(z=z, c_prev=rng.normal(size=(n, u)).astype(np.float32))
    layer.step(np.zeros_like(z), [np.zeros((n, u), np.float32), s.c_prev], s, None)
    s.z = z  # step added W_h·0 = 0 to it
    dh_later, dh_output, dc = (rng.normal(size=(n, u)).astype(np.float32) for _ in range(3))
    dz_plain, _, (_, dc_plain) = layer.step_backward([dh_later + dh_output, dc], s, None)
    dz, dh = np.empty_like(z), np.empty_like(dc)
    kernels.lstm_step_backward(dh_later, dh_output, dc, s.gates, s.c_prev, s.tanh_c, dz, dh,
                               np.float32(1))  # fmt: skip
    np.testing.assert_array_equal(dh, dh_later + dh_output)
    np.testing.assert_array_equal(dz, dz_plain)
    np.testing.assert_array_equal(dc, dc_plain)


@needs_kernels
def test_fused_lstm_predicts_as_it_trains():
    """A prediction (no step's values kept, each step's input share made inside the step,
    pieces of the batch on threads) gives the outputs of a training-mode forward pass (every
    step's input share made at once), bit for bit."""
    import glassnet
    from glassnet import layers

    glassnet.utils.set_random_seed(7)
    model = glassnet.Sequential([layers.Input((11, 4)), layers.LSTM(8, return_sequences=True),
                                 layers.LSTM(5), layers.Dense(3)])  # fmt: skip
    x = np.random.default_rng(8).normal(size=(300, 11, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, batch_size=300, verbose=0),
                                  model(x, training=True))  # fmt: skip


@needs_kernels
def test_the_lstm_step_moves_no_value_one_lane_at_a_time():
    """The LSTM step indexes each gate from 0, so that the compiler can prove the indices
    non-negative and reads and writes whole vectors: with an index such as 3u + k it kept
    Python's wraparound of negative indices and moved the values one lane at a time (x86's
    gather and scatter instructions), 1.7 to 1.9 times slower. The machine code of a fresh
    compilation (the cached one cannot be inspected) must have none of those instructions."""
    import numba

    rows, u = 4, 8
    wide, narrow = (
        (lambda: np.zeros((rows, 4 * u), np.float32)),
        (lambda: np.zeros((rows, u), np.float32)),
    )
    args = (wide(), narrow(), wide(), narrow(), narrow(), narrow())  # z, c_{t−1}, gates, c, …
    kernels.lstm_step(*args)  # compiles the scalar functions it calls
    fresh = numba.njit(error_model="numpy", fastmath={"contract"})(kernels.lstm_step.py_func)
    fresh(*args)
    machine_code = fresh.inspect_asm(fresh.signatures[0])
    assert "vgather" not in machine_code and "vscatter" not in machine_code


@pytest.mark.parametrize("kernels_on", [True, False] if kernels.ENABLED else [False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", [name for name, make in CASES.items() if make().slots()])
def test_running_averages_never_keep_subnormal_numbers(case, dtype, kernels_on, monkeypatch):
    """A weight whose gradient stays 0 (an MNIST pixel that is never ink) has its averages decay
    through the subnormal floats, on which x86 computes a hundred times slower: they become 0
    instead, in the kernels and the NumPy formulas alike; NaN stays NaN."""
    monkeypatch.setattr(kernels, "ENABLED", kernels_on)
    tiny = np.finfo(dtype).tiny
    optimizer = CASES[case]()
    p = np.ones(6, dtype=dtype)
    optimizer.apply([(p, np.zeros_like(p))])  # the state exists, all 0
    # (AMSGrad's v̂ is the largest v so far: it never decays, so it is not among them)
    slots = [name for group in optimizer.slots() for name in group if name != "v_hat"]
    state = optimizer.state[0]
    for name in slots:
        normal = 1.0 if name == "g_mean" else 3.0  # centered RMSprop: v − ḡ² stays > 0
        state[name][:] = [tiny * 1.5, tiny / 4, -tiny / 1024, 0.0, normal, np.nan]
    optimizer.apply([(p, np.zeros_like(p))])
    for name in slots:
        value = state[name]
        assert value[1] == 0 and value[2] == 0, (name, value)  # were subnormal
        assert value[4] > tiny and np.isnan(value[5]), (name, value)
        assert not ((value != 0) & (np.abs(value) < tiny)).any(), (name, value)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kernels_on", [True, False])
def test_a_models_parameters_are_updated_in_one_run_with_the_same_bits(case, kernels_on,
                                                                       monkeypatch):  # fmt: skip
    """The packed parameters, their gradients and each kind of the optimizer's state lie side by
    side in memory, so one call updates them all (a frozen layer between breaks the run in two);
    each parameter ends as it would, updated on its own, bit for bit."""
    from glassnet.layers import BatchNormalization, Dense, Input
    from glassnet.models import Sequential

    monkeypatch.setattr(kernels, "ENABLED", kernels_on)
    model = Sequential([Input(shape=(5,)), Dense(7, activation="relu"), BatchNormalization(),
                        Dense(4), Dense(3)])  # fmt: skip
    model.layers[-2].trainable = False
    model.pack_parameters()
    pairs = model.trainable_pairs()
    rng = np.random.default_rng(7)
    alone = [(p.copy(), rng.normal(size=p.shape).astype(p.dtype)) for p, _ in pairs]
    for (_, g), (_, mine) in zip(pairs, alone):
        g[...] = mine
    packed, apart = CASES[case](), CASES[case]()
    for _ in range(3):
        packed.apply(pairs)
        apart.apply(alone)  # each parameter its own array: a run each
    # Dense + BN's γ, β (trainable) run on; BN's moving statistics and the frozen Dense break it
    assert len(packed._work(pairs)) == 2
    assert len(apart._work(alone)) == len(alone)
    for (p, _), (q, _) in zip(pairs, alone, strict=True):
        np.testing.assert_array_equal(p, q)


def test_a_kernel_runs_in_one_call_where_there_is_too_little_to_share(monkeypatch):
    """run_split cuts the rows between the threads only where parallel_map would spread them:
    a W4 batch's sigmoid′ (64 × 128) in pieces was two calls in one thread, 31 µs against 12."""
    from glassnet import backend

    monkeypatch.setattr(backend, "num_threads", lambda: 2)
    calls = []
    monkeypatch.setattr(kernels, "counting", lambda a, out: calls.append(len(a)), raising=False)
    small, large = np.zeros((64, 128), np.float32), np.zeros((4096, 128), np.float32)
    kernels.run_split("counting", (small, small))
    assert calls == [64]
    calls.clear()
    kernels.run_split("counting", (large, large))
    assert sorted(calls) == [2048, 2048]
